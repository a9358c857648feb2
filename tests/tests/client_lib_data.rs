//! The `bpfmap_client` library against the real daemon, data side: plain-old-data and
//! per-CPU helpers, queues, stacks and bloom filters, `dump` / `dump_batches` / draining,
//! `batch_update` from iterators and streams (flags, per-CPU values), `batch_delete`, and
//! maps of maps; checked against direct kernel reads.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};

use bpfmap_client::{Client, CreateMap, DumpOptions, Entry, Flag, MapRef, MapType};
use bpfmap_tests::{kernel, names, KernelMap, TestEnv};
use futures::TryStreamExt;

async fn start() -> Option<(TestEnv, Client)> {
    let t = TestEnv::start().await?;
    let c = Client::connect(&t.daemon.unix_addr()).await.unwrap();
    Some((t, c))
}

fn u32b(n: u32) -> Vec<u8> {
    n.to_ne_bytes().to_vec()
}

fn u64b(n: u64) -> Vec<u8> {
    n.to_ne_bytes().to_vec()
}

#[tokio::test]
async fn plain_old_data_and_per_cpu_helpers() {
    let Some((t, c)) = start().await else {
        return;
    };
    let name = names::unique("libpod");
    let info = c.create_map(CreateMap::hash(&name, 4, 8, 8)).await.unwrap();
    let map = MapRef::from(info.id);
    c.update_pod::<u32, u64>(&map, &1, &42, Flag::Any)
        .await
        .unwrap();
    assert_eq!(c.lookup_pod::<u32, u64>(&map, &1).await.unwrap(), 42);
    let k = KernelMap::from_pin(&t.fs.pin(&name));
    assert_eq!(k.lookup(&u32b(1)), Some(u64b(42)));
    // Arrays are POD too; a size mismatch is refused before sending.
    c.update_pod::<u32, [u32; 2]>(&map, &2, &[7, 8], Flag::Any)
        .await
        .unwrap();
    assert_eq!(
        c.lookup_pod::<u32, [u32; 2]>(&map, &2).await.unwrap(),
        [7, 8]
    );
    let e = c.lookup_pod::<u32, u32>(&map, &1).await.unwrap_err();
    assert!(e.is_invalid_argument(), "{e}");
    c.delete_pod(&map, &1u32).await.unwrap();
    assert!(c
        .lookup_pod::<u32, u64>(&map, &1)
        .await
        .unwrap_err()
        .is_not_found());

    // Per-CPU: one value per possible CPU.
    let cpus = kernel::possible_cpus();
    let pname = names::unique("libpc");
    let pinfo = c
        .create_map(
            CreateMap::new(&pname, MapType::PercpuArray)
                .key_size(4)
                .value_size(8)
                .max_entries(2),
        )
        .await
        .unwrap();
    assert_eq!(pinfo.possible_cpus as usize, cpus);
    let values: Vec<u64> = (0..cpus as u64).map(|c| c * 100 + 1).collect();
    c.update_per_cpu_pod::<u32, u64>(pinfo.id, &0, &values, Flag::Any)
        .await
        .unwrap();
    assert_eq!(
        c.lookup_per_cpu_pod::<u32, u64>(pinfo.id, &0)
            .await
            .unwrap(),
        values
    );
    let pk = KernelMap::from_pin(&t.fs.pin(&pname));
    assert_eq!(
        pk.lookup_percpu(&u32b(0)),
        Some(values.iter().map(|v| u64b(*v)).collect())
    );
    // A single value goes to every CPU.
    c.update(pinfo.id, &u32b(1), &u64b(9), Flag::Any)
        .await
        .unwrap();
    assert_eq!(
        c.lookup_per_cpu(pinfo.id, &u32b(1)).await.unwrap(),
        vec![u64b(9); cpus]
    );
    let e = c.lookup(pinfo.id, &u32b(1)).await.unwrap_err();
    assert!(e.is_invalid_argument(), "lookup() on a per-CPU map: {e}");
    if cpus > 1 {
        let e = c
            .update_per_cpu(pinfo.id, &u32b(1), [u64b(1)], Flag::Any)
            .await
            .unwrap_err();
        assert!(e.is_invalid_argument(), "{e}");
    }

    // Queues and stacks.
    let q = c
        .create_map(CreateMap::queue(names::unique("libq"), 4, 4).ephemeral(true))
        .await
        .unwrap();
    c.push_pod(q.id, &1u32).await.unwrap();
    c.push(q.id, &u32b(2)).await.unwrap();
    assert_eq!(c.peek_pod::<u32>(q.id).await.unwrap(), 1);
    assert_eq!(c.pop_pod::<u32>(q.id).await.unwrap(), 1);
    assert_eq!(c.pop(q.id).await.unwrap(), u32b(2));
    assert!(c.pop(q.id).await.unwrap_err().is_not_found());
    assert!(c.peek(q.id).await.unwrap_err().is_not_found());
    let s = c
        .create_map(
            CreateMap::new(names::unique("libs"), MapType::Stack)
                .value_size(4)
                .max_entries(4)
                .ephemeral(true),
        )
        .await
        .unwrap();
    c.push_pod(s.id, &1u32).await.unwrap();
    c.push_pod(s.id, &2u32).await.unwrap();
    assert_eq!(c.pop_pod::<u32>(s.id).await.unwrap(), 2);

    // Bloom filter.
    let b = c
        .create_map(
            CreateMap::new(names::unique("libbf"), MapType::BloomFilter)
                .value_size(4)
                .max_entries(64)
                .map_extra(3)
                .ephemeral(true),
        )
        .await
        .unwrap();
    c.bloom_add(b.id, &u32b(0xdead)).await.unwrap();
    assert!(c.bloom_contains(b.id, &u32b(0xdead)).await.unwrap());
    assert!(!c.bloom_contains(b.id, &u32b(0xbeef)).await.unwrap());
}

#[tokio::test]
async fn dumps_and_batches() {
    let Some((t, c)) = start().await else {
        return;
    };
    const N: u32 = 20_000;
    let name = names::unique("libdb");
    let info = c
        .create_map(CreateMap::hash(&name, 4, 8, N + 10))
        .await
        .unwrap();
    let map = MapRef::from(info.id);
    let k = KernelMap::from_pin(&t.fs.pin(&name));

    // batch_update from an iterator, in packed chunks.
    let entries = (0..N).map(|i| Entry::new(u32b(i), u64b(u64::from(i) << 8)));
    assert_eq!(
        c.batch_update(&map, entries, Flag::Any).await.unwrap(),
        u64::from(N)
    );
    assert_eq!(k.len(), N as usize);
    assert_eq!(k.lookup(&u32b(77)), Some(u64b(77 << 8)));

    // dump: the packed stream equals a direct kernel read.
    let dump = c.dump(&map).await.unwrap();
    assert_eq!(dump.info().id, info.id);
    let got: BTreeMap<Vec<u8>, Vec<u8>> = dump
        .map_ok(|e| (e.key, e.value.into_single().unwrap()))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(got, k.entries());

    // Small batches: every message holds at most batch_size entries, and all arrive.
    let batches: Vec<_> = c
        .dump_batches(
            &map,
            DumpOptions {
                batch_size: 7,
                delete: false,
            },
        )
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(batches.iter().map(|b| b.len()).sum::<usize>(), N as usize);
    assert!(
        batches.iter().all(|b| b.len() <= 7),
        "a batch exceeded batch_size"
    );
    let keys: BTreeSet<Vec<u8>> = batches
        .iter()
        .flat_map(|b| (0..b.len()).map(|i| b.get(i).unwrap().0.to_vec()))
        .collect();
    assert_eq!(keys.len(), N as usize, "each key exactly once");

    // batch_update from a stream.
    let more = futures::stream::iter((N..N + 5).map(|i| Entry::new(u32b(i), u64b(1))));
    assert_eq!(
        c.batch_update_stream(&map, more, Flag::Any).await.unwrap(),
        5
    );
    // A wrong size is refused before anything is sent.
    let before = k.len();
    let bad = [
        Entry::new(u32b(N + 100), u64b(1)),
        Entry::new(vec![1u8, 2], u64b(1)),
    ];
    let e = c.batch_update(&map, bad, Flag::Any).await.unwrap_err();
    assert!(e.is_invalid_argument(), "{e}");
    assert_eq!(k.len(), before);
    assert_eq!(k.lookup(&u32b(N + 100)), None);

    // batch_delete counts deleted and missing keys.
    let keys: Vec<Vec<u8>> = (0..100).chain(N + 1000..N + 1005).map(u32b).collect();
    let d = c.batch_delete(&map, keys).await.unwrap();
    assert_eq!((d.deleted, d.missing), (100, 5));
    assert_eq!(k.len(), before - 100);

    // Draining dump.
    let drained: Vec<Entry> = c
        .dump_with(
            &map,
            DumpOptions {
                batch_size: 0,
                delete: true,
            },
        )
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(drained.len(), before - 100);
    assert!(k.is_empty());
    assert_eq!(
        c.dump(&map)
            .await
            .unwrap()
            .try_collect::<Vec<_>>()
            .await
            .unwrap(),
        []
    );
    assert!(c.dump(u32::MAX).await.unwrap_err().is_not_found());
}

#[tokio::test]
async fn per_cpu_dump_and_batch_update() {
    let Some((t, c)) = start().await else {
        return;
    };
    let cpus = kernel::possible_cpus();
    let name = names::unique("libpcd");
    let info = c
        .create_map(
            CreateMap::new(&name, MapType::PercpuHash)
                .key_size(4)
                .value_size(12)
                .max_entries(256),
        )
        .await
        .unwrap();
    let k = KernelMap::from_pin(&t.fs.pin(&name));
    let value = |i: u32, cpu: usize| {
        let mut v = vec![0u8; 12];
        v[..4].copy_from_slice(&i.to_ne_bytes());
        v[8] = cpu as u8;
        v
    };
    let entries =
        (0..100u32).map(|i| Entry::per_cpu(u32b(i), (0..cpus).map(|c| value(i, c)).collect()));
    assert_eq!(
        c.batch_update(info.id, entries, Flag::Any).await.unwrap(),
        100
    );
    // A single value goes to every CPU.
    c.batch_update(info.id, [Entry::new(u32b(500), value(5, 0))], Flag::Any)
        .await
        .unwrap();
    assert_eq!(k.lookup_percpu(&u32b(500)), Some(vec![value(5, 0); cpus]));

    let got: BTreeMap<Vec<u8>, Vec<Vec<u8>>> = c
        .dump(info.id)
        .await
        .unwrap()
        .map_ok(|e| {
            assert!(e.value.is_per_cpu());
            (e.key, e.value.into_per_cpu())
        })
        .try_collect()
        .await
        .unwrap();
    assert_eq!(got.len(), 101);
    assert_eq!(got, k.percpu_entries());
}

#[tokio::test]
async fn map_in_map() {
    let Some((_t, c)) = start().await else {
        return;
    };
    let inner = c
        .create_map(CreateMap::array(names::unique("libin"), 4, 1))
        .await
        .unwrap();
    let inner2 = c
        .create_map(CreateMap::array(names::unique("libin"), 4, 1))
        .await
        .unwrap();
    let outer = c
        .create_map(
            CreateMap::new(names::unique("libout"), MapType::ArrayOfMaps)
                .key_size(4)
                .value_size(4)
                .max_entries(2)
                .inner_map(&inner),
        )
        .await
        .unwrap();
    c.update_inner_map(outer.id, &u32b(0), inner2.id, Flag::Any)
        .await
        .unwrap();
    assert_eq!(c.lookup(outer.id, &u32b(0)).await.unwrap(), u32b(inner2.id));
    assert_eq!(
        c.lookup_pod::<u32, u32>(outer.id, &0).await.unwrap(),
        inner2.id
    );
}

/// API.md: BatchUpdate carries an UpdateFlag; NOEXIST/EXIST must behave as for Update.
#[tokio::test]
async fn batch_update_honours_update_flags() {
    let Some((t, c)) = start().await else {
        return;
    };
    let name = names::unique("libbf");
    let info = c
        .create_map(CreateMap::hash(&name, 4, 8, 64))
        .await
        .unwrap();
    let k = KernelMap::from_pin(&t.fs.pin(&name));
    let new = (0..5u32).map(|i| Entry::new(u32b(i), u64b(1)));
    assert_eq!(
        c.batch_update(info.id, new, Flag::NoExist).await.unwrap(),
        5
    );
    assert_eq!(k.len(), 5);
    let e = c
        .batch_update(info.id, [Entry::new(u32b(0), u64b(2))], Flag::NoExist)
        .await
        .unwrap_err();
    assert!(e.is_already_exists(), "{e}");
    let e = c
        .batch_update(info.id, [Entry::new(u32b(99), u64b(2))], Flag::Exist)
        .await
        .unwrap_err();
    assert!(e.is_not_found(), "{e}");
    assert_eq!(k.lookup(&u32b(0)), Some(u64b(1)));
    assert_eq!(k.len(), 5);
}
