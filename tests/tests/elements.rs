//! Element RPCs on a hash map: Lookup, Update (flags), Delete, LookupAndDelete, GetNextKey,
//! BatchUpdate, BatchDelete; the Data forms (raw, hex, number) in and out. The kernel is
//! read directly after each write.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use bpfmap_tests::api::pb::{
    BatchDeleteRequest, BatchUpdateRequest, DeleteRequest, Entry, Format, GetNextKeyRequest,
    LookupAndDeleteRequest, MapType, UpdateFlag, UpdateRequest,
};
use bpfmap_tests::api::*;
use bpfmap_tests::{names, KernelMap, TestEnv};
use tonic::Code;

async fn hash(t: &mut TestEnv, key: u32, value: u32, max: u32) -> (u32, KernelMap) {
    let name = names::unique("el");
    let info = create(
        &mut t.client,
        create_req(MapType::Hash, &name, key, value, max),
    )
    .await;
    (info.id, KernelMap::from_pin(&t.fs.pin(&name)))
}

#[tokio::test]
async fn update_lookup_delete_in_every_data_form() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let (id, k) = hash(&mut t, 4, 8, 16).await;
    let c = &mut t.client;

    update(
        c,
        by_id(id),
        raw(&u32b(7)),
        raw(&u64b(0x1122_3344_5566_7788)),
    )
    .await;
    assert_eq!(k.lookup(&u32b(7)), Some(u64b(0x1122_3344_5566_7788)));
    update(c, by_id(id), num(8), num(42)).await;
    assert_eq!(k.lookup(&u32b(8)), Some(u64b(42)));
    update(
        c,
        by_id(id),
        hex("09 00 00 00"),
        hex("ff 00 00 00 00 00 00 01"),
    )
    .await;
    assert_eq!(k.lookup(&u32b(9)), Some(vec![0xff, 0, 0, 0, 0, 0, 0, 1]));

    let v = lookup(c, by_id(id), num(7), Format::Raw).await.unwrap();
    assert_eq!(bytes_of(&v.value), u64b(0x1122_3344_5566_7788));
    let v = lookup(c, by_id(id), raw(&u32b(8)), Format::Number)
        .await
        .unwrap();
    assert_eq!(num_of(&v.value), 42);
    let v = lookup(c, by_id(id), num(9), Format::Hex).await.unwrap();
    assert_eq!(hex_of(&v.value), "ff 00 00 00 00 00 00 01");
    assert!(v.per_cpu_values.is_empty());

    c.delete(DeleteRequest {
        map: by_id(id),
        key: num(8),
    })
    .await
    .unwrap();
    assert_eq!(k.lookup(&u32b(8)), None);
    assert_status(
        lookup(c, by_id(id), num(8), Format::Raw).await,
        Code::NotFound,
        &[],
    );
    assert_status(
        c.delete(DeleteRequest {
            map: by_id(id),
            key: num(8),
        })
        .await,
        Code::NotFound,
        &[],
    );
    assert_eq!(k.len(), 2);
}

#[tokio::test]
async fn hex_accepts_the_bpftool_spellings() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let (id, k) = hash(&mut t, 2, 2, 8).await;
    let c = &mut t.client;
    update(c, by_id(id), hex("c1 c2"), hex("a1 a2")).await;
    assert_eq!(k.lookup(&[0xc1, 0xc2]), Some(vec![0xa1, 0xa2]));
    for spelling in ["c1 c2", "c1c2", "0xc1 0xc2", "C1 C2", "0XC1 0Xc2"] {
        let v = lookup(c, by_id(id), hex(spelling), Format::Hex).await;
        assert_eq!(
            hex_of(&v.unwrap().value),
            "a1 a2",
            "key spelled {spelling:?}"
        );
    }
    update(c, by_id(id), hex("0xc1 0xc2"), hex("B1B2")).await;
    assert_eq!(k.lookup(&[0xc1, 0xc2]), Some(vec![0xb1, 0xb2]));
    assert_eq!(k.len(), 1);
}

#[tokio::test]
async fn update_flags_noexist_and_exist() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let (id, k) = hash(&mut t, 4, 8, 16).await;
    let c = &mut t.client;
    let upd = |key: u32, val: u64, flag: UpdateFlag| UpdateRequest {
        map: by_id(id),
        key: num(u64::from(key)),
        value: num(val),
        flag: flag as i32,
        ..Default::default()
    };
    c.update(upd(1, 10, UpdateFlag::Noexist)).await.unwrap();
    assert_eq!(k.lookup(&u32b(1)), Some(u64b(10)));
    assert_status(
        c.update(upd(1, 11, UpdateFlag::Noexist)).await,
        Code::AlreadyExists,
        &[],
    );
    assert_eq!(
        k.lookup(&u32b(1)),
        Some(u64b(10)),
        "a failed NOEXIST changed the value"
    );
    assert_status(
        c.update(upd(2, 20, UpdateFlag::Exist)).await,
        Code::NotFound,
        &[],
    );
    assert_eq!(k.lookup(&u32b(2)), None, "a failed EXIST created the key");
    c.update(upd(1, 12, UpdateFlag::Exist)).await.unwrap();
    assert_eq!(k.lookup(&u32b(1)), Some(u64b(12)));
    c.update(upd(1, 13, UpdateFlag::Any)).await.unwrap();
    c.update(upd(3, 30, UpdateFlag::Any)).await.unwrap();
    assert_eq!(k.lookup(&u32b(1)), Some(u64b(13)));
    assert_eq!(k.lookup(&u32b(3)), Some(u64b(30)));
}

#[tokio::test]
async fn lookup_and_delete_returns_the_value_and_removes_the_key() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let (id, k) = hash(&mut t, 4, 8, 16).await;
    let c = &mut t.client;
    update(c, by_id(id), num(5), num(555)).await;
    update(c, by_id(id), num(6), num(666)).await;
    let r = c
        .lookup_and_delete(LookupAndDeleteRequest {
            map: by_id(id),
            key: num(5),
            format: Format::Number as i32,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(num_of(&r.value), 555);
    assert_eq!(k.lookup(&u32b(5)), None);
    assert_eq!(k.lookup(&u32b(6)), Some(u64b(666)));
    assert_status(
        c.lookup_and_delete(LookupAndDeleteRequest {
            map: by_id(id),
            key: num(5),
            format: 0,
        })
        .await,
        Code::NotFound,
        &[],
    );
}

#[tokio::test]
async fn get_next_key_walks_every_key_once_then_not_found() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let (id, k) = hash(&mut t, 4, 8, 64).await;
    let c = &mut t.client;
    let want: BTreeSet<u64> = (0..25u64).map(|i| i * 37 + 3).collect();
    for &key in &want {
        update(c, by_id(id), num(key), num(key * 2)).await;
    }
    let mut seen = BTreeSet::new();
    let mut cursor = None;
    loop {
        let r = c
            .get_next_key(GetNextKeyRequest {
                map: by_id(id),
                key: cursor.clone(),
                format: Format::Number as i32,
            })
            .await;
        match r {
            Ok(r) => {
                let next = r.into_inner().next_key;
                assert!(seen.insert(num_of(&next)), "key {} twice", num_of(&next));
                assert!(seen.len() <= want.len(), "walk does not end");
                cursor = next;
            }
            Err(s) => {
                assert_eq!(s.code(), Code::NotFound, "{s:?}");
                break;
            }
        }
    }
    assert_eq!(seen, want);
    let kernel: BTreeSet<u64> = k
        .keys()
        .iter()
        .map(|b| u64::from(u32::from_ne_bytes(b[..4].try_into().unwrap())))
        .collect();
    assert_eq!(seen, kernel);
    // The first key in raw form is 4 bytes.
    let first = c
        .get_next_key(GetNextKeyRequest {
            map: by_id(id),
            key: None,
            format: Format::Raw as i32,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(bytes_of(&first.next_key).len(), 4);
}

#[tokio::test]
async fn batch_update_with_entries_and_packed_then_batch_delete() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let (id, k) = hash(&mut t, 4, 8, 1024).await;
    let c = &mut t.client;
    let pairs: Vec<(Vec<u8>, Vec<u8>)> = (0..100u32)
        .map(|i| (u32b(i), u64b(u64::from(i) + 1000)))
        .collect();
    assert_eq!(
        batch_update_entries(c, by_id(id), &pairs[..40])
            .await
            .unwrap(),
        40
    );
    assert_eq!(
        batch_update_packed(c, by_id(id), &pairs[40..], 7)
            .await
            .unwrap(),
        60
    );
    let kernel = k.entries();
    assert_eq!(kernel.len(), 100);
    for (key, value) in &pairs {
        assert_eq!(kernel.get(key), Some(value));
    }

    let mut keys: Vec<_> = (0..10u32).map(|i| raw(&u32b(i)).unwrap()).collect();
    keys.push(raw(&u32b(5000)).unwrap());
    keys.push(raw(&u32b(6000)).unwrap());
    let r = c
        .batch_delete(BatchDeleteRequest {
            map: by_id(id),
            keys,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((r.deleted, r.missing), (10, 2));
    assert_eq!(k.len(), 90);
    assert_eq!(k.lookup(&u32b(3)), None);
    assert_eq!(k.lookup(&u32b(10)), Some(u64b(1010)));
}

#[tokio::test]
async fn batch_update_over_several_messages_names_the_map_once() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let (id, k) = hash(&mut t, 4, 8, 64).await;
    let msg = |i: u32, map| BatchUpdateRequest {
        map,
        entries: vec![Entry {
            key: hex(&bpfmap_proto::hex::format(&u32b(i))),
            value: num(u64::from(i) * 3),
            per_cpu_values: vec![],
        }],
        packed: None,
        flag: 0,
    };
    let msgs = vec![msg(1, by_id(id)), msg(2, None), msg(3, None)];
    let r = t
        .client
        .batch_update(tokio_stream::iter(msgs))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.updated, 3);
    for i in 1..=3u32 {
        assert_eq!(k.lookup(&u32b(i)), Some(u64b(u64::from(i) * 3)));
    }
    // Without a map in the first message: refused, nothing written.
    let r = t
        .client
        .batch_update(tokio_stream::iter(vec![msg(9, None)]))
        .await;
    assert_status(r, Code::InvalidArgument, &[]);
    assert_eq!(k.lookup(&u32b(9)), None);
}

#[tokio::test]
async fn batch_update_of_a_per_cpu_map_packed_and_with_entries() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let ncpu = bpfmap_tests::kernel::possible_cpus();
    let name = names::unique("elpc");
    let info = create(
        &mut t.client,
        create_req(MapType::PercpuHash, &name, 4, 4, 64),
    )
    .await;
    let k = KernelMap::from_id(info.id);
    let val = |key: u32, cpu: usize| (key * 100 + cpu as u32).to_ne_bytes().to_vec();
    // Packed: round_up(4, 8) = 8 bytes per CPU per entry, the kernel's batch layout.
    let pairs: Vec<(Vec<u8>, Vec<u8>)> = (0..10u32)
        .map(|key| {
            let mut v = Vec::new();
            for cpu in 0..ncpu {
                v.extend_from_slice(&val(key, cpu));
                v.extend_from_slice(&[0; 4]);
            }
            (u32b(key), v)
        })
        .collect();
    assert_eq!(
        batch_update_packed(&mut t.client, by_id(info.id), &pairs, 4)
            .await
            .unwrap(),
        10
    );
    // Entries with per_cpu_values.
    let entries = (10..15u32)
        .map(|key| Entry {
            key: raw(&u32b(key)),
            value: None,
            per_cpu_values: (0..ncpu).map(|cpu| raw(&val(key, cpu)).unwrap()).collect(),
        })
        .collect();
    let r = t
        .client
        .batch_update(tokio_stream::iter(vec![BatchUpdateRequest {
            map: by_id(info.id),
            entries,
            packed: None,
            flag: 0,
        }]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.updated, 5);
    let direct = k.percpu_entries();
    assert_eq!(direct.len(), 15);
    for key in 0..15u32 {
        let want: Vec<Vec<u8>> = (0..ncpu).map(|cpu| val(key, cpu)).collect();
        assert_eq!(direct[&u32b(key)], want, "key {key}");
    }
}
