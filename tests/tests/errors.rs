//! Error statuses of API.md's table: malformed input, unknown maps, ambiguous names, full
//! and frozen maps, operations the map type does not support. After all of them the daemon
//! still answers.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bpfmap_tests::api::pb::{
    data::Form, Data, DeleteRequest, DumpRequest, Format, GetMapRequest, GetNextKeyRequest,
    LookupRequest, MapType, UpdateRequest,
};
use bpfmap_tests::api::*;
use bpfmap_tests::{names, KernelMap, TestEnv};
use tonic::Code;

async fn hash48(t: &mut TestEnv, max: u32) -> (u32, KernelMap) {
    let name = names::unique("er");
    let info = create(&mut t.client, create_req(MapType::Hash, &name, 4, 8, max)).await;
    (info.id, KernelMap::from_pin(&t.fs.pin(&name)))
}

fn upd(id: u32, key: Option<Data>, value: Option<Data>) -> UpdateRequest {
    UpdateRequest {
        map: by_id(id),
        key,
        value,
        ..Default::default()
    }
}

#[tokio::test]
async fn wrong_key_length_names_expected_and_given() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let (id, k) = hash48(&mut t, 8).await;
    let c = &mut t.client;
    let words = ["key", "expected 4 bytes, got 3"];
    assert_status(
        c.update(upd(id, raw(&[1, 2, 3]), raw(&u64b(1)))).await,
        Code::InvalidArgument,
        &words,
    );
    assert_status(
        lookup(c, by_id(id), hex("01 02 03"), Format::Raw).await,
        Code::InvalidArgument,
        &words,
    );
    assert_status(
        c.delete(DeleteRequest {
            map: by_id(id),
            key: raw(&[1, 2, 3]),
        })
        .await,
        Code::InvalidArgument,
        &words,
    );
    assert_status(
        c.update(upd(id, raw(&[1, 2, 3, 4, 5]), raw(&u64b(1))))
            .await,
        Code::InvalidArgument,
        &["key", "expected 4 bytes, got 5"],
    );
    assert!(k.is_empty());
}

#[tokio::test]
async fn wrong_value_length_names_expected_and_given() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let (id, k) = hash48(&mut t, 8).await;
    assert_status(
        t.client.update(upd(id, num(1), raw(&[1, 2]))).await,
        Code::InvalidArgument,
        &["value", "expected 8 bytes, got 2"],
    );
    assert_status(
        t.client.update(upd(id, num(1), hex("01 02 03 04"))).await,
        Code::InvalidArgument,
        &["value", "expected 8 bytes, got 4"],
    );
    assert!(k.is_empty(), "a refused update wrote something");
}

#[tokio::test]
async fn bad_hex_is_invalid_argument() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let (id, k) = hash48(&mut t, 8).await;
    for bad in ["zz 00 00 00", "0x1 0x2 0x3 0x4 0x5", "c1 c", "0x"] {
        assert_status(
            t.client.update(upd(id, hex(bad), num(1))).await,
            Code::InvalidArgument,
            &["hex"],
        );
    }
    assert!(k.is_empty());
}

#[tokio::test]
async fn number_needs_a_1_2_4_or_8_byte_field() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let name = names::unique("er3");
    let info = create(&mut t.client, create_req(MapType::Hash, &name, 3, 8, 8)).await;
    assert_status(
        t.client.update(upd(info.id, num(1), num(1))).await,
        Code::InvalidArgument,
        &[],
    );
    // A number too big for a 4-byte key.
    let (id, _) = hash48(&mut t, 8).await;
    assert_status(
        t.client.update(upd(id, num(1 << 40), num(1))).await,
        Code::InvalidArgument,
        &[],
    );
}

#[tokio::test]
async fn full_hash_map_is_resource_exhausted() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let (id, k) = hash48(&mut t, 4).await;
    for i in 0..4 {
        update(&mut t.client, by_id(id), num(i), num(i)).await;
    }
    assert_status(
        t.client.update(upd(id, num(99), num(1))).await,
        Code::ResourceExhausted,
        &["full"],
    );
    assert_eq!(k.len(), 4);
    assert_eq!(k.lookup(&u32b(99)), None);
    // Replacing an existing key still works when full.
    update(&mut t.client, by_id(id), num(2), num(222)).await;
    assert_eq!(k.lookup(&u32b(2)), Some(u64b(222)));
}

#[tokio::test]
async fn delete_on_an_array_names_the_type_and_the_operation() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let name = names::unique("erarr");
    let info = create(&mut t.client, create_req(MapType::Array, &name, 4, 8, 4)).await;
    update(&mut t.client, by_id(info.id), num(1), num(5)).await;
    assert_status(
        t.client
            .delete(DeleteRequest {
                map: by_id(info.id),
                key: num(1),
            })
            .await,
        Code::InvalidArgument,
        &["array", "delete"],
    );
    assert_eq!(KernelMap::from_id(info.id).lookup(&u32b(1)), Some(u64b(5)));
}

#[tokio::test]
async fn unknown_maps_are_not_found() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let c = &mut t.client;
    for map in [
        by_id(u32::MAX - 3),
        by_pin("no_such_pin"),
        by_pin(t.fs.path().join("nothing_here").to_string_lossy()),
        by_name(names::unique("nosuch")),
    ] {
        let what = format!("{map:?}");
        let s = assert_status(
            c.get_map(GetMapRequest { map: map.clone() }).await,
            Code::NotFound,
            &[],
        );
        assert!(!s.message().is_empty(), "{what}: empty message");
        assert_status(
            lookup(c, map.clone(), num(1), Format::Raw).await,
            Code::NotFound,
            &[],
        );
        assert_status(
            c.update(UpdateRequest {
                map,
                key: num(1),
                value: num(1),
                ..Default::default()
            })
            .await,
            Code::NotFound,
            &[],
        );
    }
}

#[tokio::test]
async fn ambiguous_name_is_failed_precondition_listing_the_ids() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let name = names::unique("amb");
    let a = create(&mut t.client, create_req(MapType::Hash, &name, 4, 4, 8)).await;
    let mut second = create_req(MapType::Hash, &name, 4, 4, 8);
    second.pin = format!("second_{name}");
    let b = create(&mut t.client, second).await;
    assert_ne!(a.id, b.id);
    let s = assert_status(
        t.client
            .get_map(GetMapRequest {
                map: by_name(name.clone()),
            })
            .await,
        Code::FailedPrecondition,
        &[&a.id.to_string(), &b.id.to_string()],
    );
    assert!(
        s.message().contains(&name) || s.message().contains("ambiguous"),
        "{s:?}"
    );
    assert_status(
        lookup(&mut t.client, by_name(name), num(1), Format::Raw).await,
        Code::FailedPrecondition,
        &[],
    );
}

#[tokio::test]
async fn missing_fields_are_invalid_argument() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let (id, _) = hash48(&mut t, 8).await;
    let c = &mut t.client;
    assert_status(
        c.get_map(GetMapRequest { map: None }).await,
        Code::InvalidArgument,
        &[],
    );
    assert_status(
        c.get_map(GetMapRequest {
            map: Some(Default::default()),
        })
        .await,
        Code::InvalidArgument,
        &[],
    );
    // A hash map needs a key and a value.
    assert_status(
        c.update(upd(id, None, num(1))).await,
        Code::InvalidArgument,
        &[],
    );
    assert_status(
        c.update(upd(id, num(1), None)).await,
        Code::InvalidArgument,
        &[],
    );
    assert_status(
        lookup(c, by_id(id), None, Format::Raw).await,
        Code::InvalidArgument,
        &[],
    );
    assert_status(
        c.update(upd(id, Some(Data { form: None }), num(1))).await,
        Code::InvalidArgument,
        &[],
    );
}

#[tokio::test]
async fn json_format_and_json_input_need_btf() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let (id, _) = hash48(&mut t, 8).await;
    update(&mut t.client, by_id(id), num(1), num(2)).await;
    assert_status(
        lookup(&mut t.client, by_id(id), num(1), Format::Json).await,
        Code::InvalidArgument,
        &["BTF"],
    );
    let json = Some(Data {
        form: Some(Form::Json("1".into())),
    });
    assert_status(
        t.client.update(upd(id, json, num(1))).await,
        Code::InvalidArgument,
        &["BTF"],
    );
    let r = dump(
        &mut t.client,
        DumpRequest {
            map: by_id(id),
            format: Format::Json as i32,
            ..Default::default()
        },
    )
    .await;
    assert_status(r, Code::InvalidArgument, &["BTF"]);
}

#[tokio::test]
async fn lock_flag_on_a_map_without_spin_lock_is_invalid_argument() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let (id, k) = hash48(&mut t, 8).await;
    let r = t
        .client
        .update(UpdateRequest {
            map: by_id(id),
            key: num(1),
            value: num(1),
            lock: true,
            ..Default::default()
        })
        .await;
    assert_status(r, Code::InvalidArgument, &[]);
    assert!(k.is_empty());
    update(&mut t.client, by_id(id), num(1), num(1)).await;
    let r = t
        .client
        .lookup(LookupRequest {
            map: by_id(id),
            key: num(1),
            lock: true,
            ..Default::default()
        })
        .await;
    assert_status(r, Code::InvalidArgument, &[]);
}

#[tokio::test]
async fn unsupported_operations_name_the_map_type() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let name = names::unique("erq");
    let mut req = create_req(MapType::Queue, &name, 0, 8, 4);
    req.max_entries = 4;
    let q = create(&mut t.client, req).await;
    let r = t
        .client
        .get_next_key(GetNextKeyRequest {
            map: by_id(q.id),
            key: None,
            format: 0,
        })
        .await;
    assert_status(r, Code::InvalidArgument, &["queue"]);
    let r = t
        .client
        .delete(DeleteRequest {
            map: by_id(q.id),
            key: None,
        })
        .await;
    assert_status(r, Code::InvalidArgument, &["queue"]);
}

#[tokio::test]
async fn the_daemon_survives_bad_requests() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let (id, _) = hash48(&mut t, 8).await;
    let c = &mut t.client;
    let big = vec![0xabu8; 1 << 20];
    let _ = c.update(upd(id, raw(&big), raw(&big))).await;
    let _ = c.update(upd(id, hex(&"zz".repeat(10_000)), num(0))).await;
    let _ = c.update(upd(u32::MAX, num(1), num(1))).await;
    let _ = c.update(upd(0, num(1), num(1))).await;
    let _ = c
        .get_map(GetMapRequest {
            map: by_pin("\0/../..\n"),
        })
        .await;
    let _ = c
        .get_map(GetMapRequest {
            map: by_name("x".repeat(1000)),
        })
        .await;
    let _ = lookup(c, by_id(id), num(1), Format::Raw).await;
    let mut bad = create_req(MapType::Hash, &names::unique("huge"), 4, 8, u32::MAX);
    bad.flags = 0;
    let _ = c.create_map(bad).await;
    let mut bad = create_req(MapType::Array, &names::unique("huge"), 4, 1 << 30, 1 << 20);
    bad.ephemeral = true;
    let _ = c.create_map(bad).await;
    // Still serving, and the map is intact.
    update(c, by_id(id), num(1), num(77)).await;
    let v = lookup(c, by_id(id), num(1), Format::Number).await.unwrap();
    assert_eq!(num_of(&v.value), 77);
    assert!(t.daemon.try_wait().is_none(), "the daemon exited");
}
