//! Hostile request shapes (issue 4; the API's "no input may crash the daemon"): messages
//! that are small on the wire but ask the daemon to reserve huge buffers, or carry counts
//! that do not match their bytes. Each gets an error status; the daemon keeps serving and
//! the map is unchanged.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bpfmap_tests::api::pb::{
    BatchDeleteRequest, BatchUpdateRequest, Data, DumpRequest, Entry, Format, MapType,
    PackedEntries,
};
use bpfmap_tests::api::*;
use bpfmap_tests::{names, KernelMap, TestEnv};

/// Largest hash value the kernel takes is just under KMALLOC_MAX_SIZE (4 MiB).
const BIG_VALUE: u32 = 4_000_000;

/// The daemon still runs and answers.
async fn alive(t: &mut TestEnv) {
    assert!(
        t.daemon.try_wait().is_none(),
        "bpfmapd died:\n{}",
        t.daemon.log()
    );
    let mut c = t.daemon.client().await;
    list(&mut c, false).await;
}

#[tokio::test]
async fn many_empty_batch_entries_on_a_big_value_map() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let mut req = create_req(MapType::Hash, &names::unique("bigv"), 4, BIG_VALUE, 2);
    req.flags = 1; // BPF_F_NO_PREALLOC
    let info = create(&mut t.client, req).await;
    // 1M empty entries: 2 MB on the wire, 4 TB if the daemon sized a buffer by
    // entries × value size before looking at them.
    let msg = BatchUpdateRequest {
        map: by_id(info.id),
        entries: vec![Entry::default(); 1_000_000],
        packed: None,
        flag: 0,
    };
    let r = t.client.batch_update(tokio_stream::iter(vec![msg])).await;
    assert!(r.is_err(), "empty entries were accepted: {r:?}");
    alive(&mut t).await;
    // Entries with keys but no value: same.
    let msg = BatchUpdateRequest {
        map: by_id(info.id),
        entries: vec![
            Entry {
                key: raw(&u32b(1)),
                value: None,
                per_cpu_values: Vec::new(),
            };
            300_000
        ],
        packed: None,
        flag: 0,
    };
    let r = t.client.batch_update(tokio_stream::iter(vec![msg])).await;
    assert!(r.is_err(), "entries without values were accepted: {r:?}");
    alive(&mut t).await;
    assert!(KernelMap::from_id(info.id).is_empty());
}

#[tokio::test]
async fn packed_counts_that_do_not_match_their_bytes() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let info = create(
        &mut t.client,
        create_req(MapType::Hash, &names::unique("pk"), 4, 8, 16),
    )
    .await;
    for (count, keys, values) in [
        (u32::MAX, 0usize, 0usize),
        (u32::MAX, 4, 8),
        (2, 4, 8),
        (1, 8, 8),
        (0, 4, 8),
    ] {
        let msg = BatchUpdateRequest {
            map: by_id(info.id),
            entries: Vec::new(),
            packed: Some(PackedEntries {
                count,
                keys: vec![1u8; keys].into(),
                values: vec![2u8; values].into(),
            }),
            flag: 0,
        };
        let r = t.client.batch_update(tokio_stream::iter(vec![msg])).await;
        assert_status(r, tonic::Code::InvalidArgument, &["packed"]);
        alive(&mut t).await;
    }
    assert!(KernelMap::from_id(info.id).is_empty());
}

#[tokio::test]
async fn many_empty_keys_in_a_batch_delete() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let info = create(
        &mut t.client,
        create_req(MapType::Hash, &names::unique("bdk"), 512, 8, 4),
    )
    .await;
    update(&mut t.client, by_id(info.id), raw(&[7u8; 512]), num(1)).await;
    let r = t
        .client
        .batch_delete(BatchDeleteRequest {
            map: by_id(info.id),
            keys: vec![Data::default(); 2_000_000],
        })
        .await;
    assert_status(r, tonic::Code::InvalidArgument, &[]);
    alive(&mut t).await;
    assert_eq!(KernelMap::from_id(info.id).len(), 1);
}

#[tokio::test]
async fn huge_dump_batch_sizes_are_bounded() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let info = create(
        &mut t.client,
        create_req(MapType::Hash, &names::unique("dbs"), 4, 8, 64),
    )
    .await;
    for i in 0..64 {
        update(&mut t.client, by_id(info.id), num(i), num(i)).await;
    }
    for packed in [false, true] {
        let msgs = dump(
            &mut t.client,
            DumpRequest {
                map: by_id(info.id),
                format: Format::Raw as i32,
                batch_size: u32::MAX,
                packed,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let n: usize = msgs
            .iter()
            .map(|m| m.entries.len() + m.packed.as_ref().map_or(0, |p| p.count as usize))
            .sum();
        assert_eq!(n, 64);
    }
    alive(&mut t).await;
}
