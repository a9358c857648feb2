//! Dump: complete and correct against a direct kernel read, packed and unpacked, on a
//! 1,000,000-entry hash map and on arrays, LPM tries and per-CPU maps; `delete` drains.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, HashMap, HashSet};

use bpfmap_tests::api::pb::{DumpRequest, Format, MapType};
use bpfmap_tests::api::*;
use bpfmap_tests::{kernel, names, KernelMap, TestEnv};

fn value_of(i: u32) -> u64 {
    u64::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5555
}

async fn filled_hash(
    t: &mut TestEnv,
    n: u32,
    chunk: usize,
) -> (u32, KernelMap, Vec<(Vec<u8>, Vec<u8>)>) {
    let name = names::unique("dmp");
    let info = create(&mut t.client, create_req(MapType::Hash, &name, 4, 8, n)).await;
    let pairs: Vec<(Vec<u8>, Vec<u8>)> = (0..n)
        .map(|i| {
            let key = i.wrapping_mul(2_654_435_761); // spread the keys
            (u32b(key), u64b(value_of(key)))
        })
        .collect();
    let updated = batch_update_packed(&mut t.client, by_id(info.id), &pairs, chunk)
        .await
        .unwrap();
    assert_eq!(updated, u64::from(n));
    (info.id, KernelMap::from_pin(&t.fs.pin(&name)), pairs)
}

#[tokio::test]
async fn million_entry_hash_dumps_completely_packed() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    const N: u32 = 1_000_000;
    let (id, k, pairs) = filled_hash(&mut t, N, 50_000).await;
    let started = std::time::Instant::now();
    let msgs = dump(
        &mut t.client,
        DumpRequest {
            map: by_id(id),
            format: Format::Raw as i32,
            packed: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let took = started.elapsed();
    let dumped = unpack(&msgs, 4, 8);
    eprintln!(
        "dump of {N} entries (packed, debug build): {took:?}, {:.0} entries/s, {} messages",
        f64::from(N) / took.as_secs_f64(),
        msgs.len()
    );
    assert_eq!(dumped.len(), N as usize, "entries streamed");
    let as_map: HashMap<Vec<u8>, Vec<u8>> = dumped.into_iter().collect();
    assert_eq!(as_map.len(), N as usize, "a key was streamed twice");
    // Equal to a direct kernel read, count and content ...
    let direct = k.entries();
    assert_eq!(direct.len(), N as usize);
    for (key, value) in &direct {
        assert_eq!(as_map.get(key), Some(value), "key {key:?}");
    }
    // ... and to what was written.
    for (key, value) in &pairs {
        assert_eq!(as_map.get(key), Some(value));
    }
}

#[tokio::test]
async fn hex_dump_equals_the_kernel_and_respects_batch_size() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let (id, k, _) = filled_hash(&mut t, 10_000, 3_000).await;
    let msgs = dump(
        &mut t.client,
        DumpRequest {
            map: by_id(id),
            format: Format::Hex as i32,
            batch_size: 1000,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(
        msgs.len() >= 10,
        "batch_size 1000 gave {} messages for 10000 entries",
        msgs.len()
    );
    assert!(msgs
        .iter()
        .all(|m| m.entries.len() <= 1000 && m.packed.is_none()));
    let mut seen = BTreeMap::new();
    for e in msgs.iter().flat_map(|m| m.entries.iter()) {
        let (kh, vh) = (hex_of(&e.key), hex_of(&e.value));
        assert_eq!(kh, kh.to_lowercase());
        assert_eq!(kh.split(' ').count(), 4, "{kh:?}");
        let key = bpfmap_proto::hex::parse(&kh).unwrap();
        let value = bpfmap_proto::hex::parse(&vh).unwrap();
        assert!(seen.insert(key, value).is_none(), "key {kh} twice");
    }
    assert_eq!(seen, k.entries());
}

#[tokio::test]
async fn array_dump_lists_every_index() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let info = create(
        &mut t.client,
        create_req(MapType::Array, &names::unique("darr"), 4, 8, 16),
    )
    .await;
    for i in [0u64, 3, 15] {
        update(&mut t.client, by_id(info.id), num(i), num(i + 100)).await;
    }
    let entries = dump_entries(&mut t.client, by_id(info.id), Format::Number).await;
    let got: BTreeMap<u64, u64> = entries
        .iter()
        .map(|e| (num_of(&e.key), num_of(&e.value)))
        .collect();
    assert_eq!(got.len(), 16);
    let direct: BTreeMap<u64, u64> = KernelMap::from_id(info.id)
        .entries()
        .into_iter()
        .map(|(k, v)| {
            (
                u64::from(u32::from_ne_bytes(k.try_into().unwrap())),
                u64::from_ne_bytes(v.try_into().unwrap()),
            )
        })
        .collect();
    assert_eq!(got, direct);
    assert_eq!(got[&3], 103);
    assert_eq!(got[&4], 0);
}

#[tokio::test]
async fn lpm_trie_dump_equals_the_kernel() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let mut req = create_req(MapType::LpmTrie, &names::unique("dlpm"), 8, 8, 64);
    req.flags = 1;
    let info = create(&mut t.client, req).await;
    for (i, prefix) in [8u32, 16, 24, 32, 12].into_iter().enumerate() {
        let mut key = prefix.to_ne_bytes().to_vec();
        key.extend_from_slice(&[10, i as u8, 0, 0]);
        update(&mut t.client, by_id(info.id), raw(&key), num(i as u64)).await;
    }
    let entries = dump_entries(&mut t.client, by_id(info.id), Format::Raw).await;
    let got: BTreeMap<Vec<u8>, Vec<u8>> = entries
        .iter()
        .map(|e| (bytes_of(&e.key), bytes_of(&e.value)))
        .collect();
    assert_eq!(entries.len(), 5);
    assert_eq!(got, KernelMap::from_id(info.id).entries());
}

#[tokio::test]
async fn percpu_dump_unpacked_and_packed_equal_the_kernel() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let ncpu = kernel::possible_cpus();
    let info = create(
        &mut t.client,
        create_req(MapType::PercpuHash, &names::unique("dpc"), 4, 4, 512),
    )
    .await;
    let k = KernelMap::from_id(info.id);
    for i in 0..300u32 {
        let per: Vec<Vec<u8>> = (0..ncpu as u32)
            .map(|c| (i * 10 + c).to_ne_bytes().to_vec())
            .collect();
        k.update_percpu(&u32b(i), &per);
    }
    let direct = k.percpu_entries();
    assert_eq!(direct.len(), 300);

    let entries = dump_entries(&mut t.client, by_id(info.id), Format::Raw).await;
    let got: BTreeMap<Vec<u8>, Vec<Vec<u8>>> = entries
        .iter()
        .map(|e| {
            assert!(e.value.is_none());
            (
                bytes_of(&e.key),
                e.per_cpu_values
                    .iter()
                    .map(|d| bytes_of(&Some(d.clone())))
                    .collect(),
            )
        })
        .collect();
    assert_eq!(entries.len(), 300);
    assert_eq!(got, direct);

    // Packed: round_up(4, 8) = 8 bytes per CPU per entry.
    let msgs = dump(
        &mut t.client,
        DumpRequest {
            map: by_id(info.id),
            packed: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let packed = unpack(&msgs, 4, 8 * ncpu);
    assert_eq!(packed.len(), 300);
    for (key, values) in packed {
        let want = &direct[&key];
        for (cpu, w) in want.iter().enumerate() {
            assert_eq!(
                &values[cpu * 8..cpu * 8 + 4],
                &w[..],
                "key {key:?} cpu {cpu}"
            );
        }
    }
}

#[tokio::test]
async fn dump_with_delete_drains_the_map() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let (id, k, pairs) = filled_hash(&mut t, 5_000, 5_000).await;
    let msgs = dump(
        &mut t.client,
        DumpRequest {
            map: by_id(id),
            delete: true,
            batch_size: 700,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let drained: HashMap<Vec<u8>, Vec<u8>> = msgs
        .iter()
        .flat_map(|m| m.entries.iter())
        .map(|e| (bytes_of(&e.key), bytes_of(&e.value)))
        .collect();
    let want: HashMap<Vec<u8>, Vec<u8>> = pairs.into_iter().collect();
    assert_eq!(drained, want);
    assert!(
        k.is_empty(),
        "{} entries left after a draining dump",
        k.len()
    );
}

#[tokio::test]
async fn empty_map_dumps_nothing_and_small_maps_fit_one_message() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let info = create(
        &mut t.client,
        create_req(MapType::Hash, &names::unique("dem"), 4, 8, 64),
    )
    .await;
    let entries = dump_entries(&mut t.client, by_id(info.id), Format::Raw).await;
    assert!(entries.is_empty());
    for i in 0..3u64 {
        update(&mut t.client, by_id(info.id), num(i), num(i)).await;
    }
    let keys: HashSet<u64> = dump_entries(&mut t.client, by_id(info.id), Format::Number)
        .await
        .iter()
        .map(|e| num_of(&e.key))
        .collect();
    assert_eq!(keys, HashSet::from([0, 1, 2]));
}
