//! Watch: the map's contents first, then what bpftool changes behind the daemon's back
//! (an update, an insert, a delete) within two intervals, and nothing while nothing changes.
//! Per-CPU and array maps, other formats, and a slow watcher whose changes are coalesced.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bpfmap_tests::api::pb::{change::Kind, Format, MapType, UpdateRequest};
use bpfmap_tests::api::*;
use bpfmap_tests::live::{next_batch, watch, Batch};
use bpfmap_tests::{bpftool, kernel, names, TestEnv};

const INTERVAL_MS: u32 = 400;
const INTERVAL: Duration = Duration::from_millis(INTERVAL_MS as u64);

/// Batches that arrive until `deadline`, their changes folded by key (a later change of a
/// key replaces an earlier one).
async fn changes_until(
    stream: &mut tonic::Streaming<bpfmap_tests::api::pb::WatchResponse>,
    deadline: Instant,
) -> (BTreeMap<Vec<u8>, (Kind, Option<Vec<u8>>)>, Vec<Batch>) {
    let mut all = BTreeMap::new();
    let mut batches = Vec::new();
    while let Some(b) = next_batch(stream, deadline.saturating_duration_since(Instant::now())).await
    {
        assert!(!b.initial, "a second snapshot");
        all.extend(b.by_key());
        batches.push(b);
    }
    (all, batches)
}

#[tokio::test]
async fn watch_reports_bpftool_changes_within_two_intervals_and_nothing_else() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let name = names::unique("watched");
    let info = create(&mut t.client, create_req(MapType::Hash, &name, 4, 8, 64)).await;
    let pin = t.fs.root().join(&name);
    for k in 1..=3u32 {
        update(
            &mut t.client,
            by_id(info.id),
            raw(&u32b(k)),
            raw(&u64b(u64::from(k) * 10)),
        )
        .await;
    }
    let mut stream = watch(&mut t.client, by_id(info.id), Format::Raw, INTERVAL_MS).await;

    let snap = next_batch(&mut stream, Duration::from_secs(5))
        .await
        .expect("the initial snapshot");
    assert!(snap.initial);
    assert_eq!(snap.count, 3);
    let want: BTreeMap<_, _> = (1..=3u32)
        .map(|k| (u32b(k), (Kind::Added, Some(u64b(u64::from(k) * 10)))))
        .collect();
    assert_eq!(snap.by_key(), want);

    // Nothing changes: nothing comes.
    assert!(
        next_batch(&mut stream, INTERVAL * 3).await.is_none(),
        "a batch while nothing changed"
    );

    // An update, an insert and a delete, behind the daemon's back.
    bpftool::update_pinned(&pin, &u32b(1), &u64b(111));
    bpftool::update_pinned(&pin, &u32b(9), &u64b(99));
    bpftool::delete_pinned(&pin, &u32b(2));
    let done = Instant::now();
    let (got, batches) = changes_until(&mut stream, done + INTERVAL * 2).await;
    let want: BTreeMap<_, _> = [
        (u32b(1), (Kind::Changed, Some(u64b(111)))),
        (u32b(9), (Kind::Added, Some(u64b(99)))),
        (u32b(2), (Kind::Removed, None)),
    ]
    .into_iter()
    .collect();
    assert_eq!(
        got, want,
        "within two intervals of the last change: {batches:?}"
    );
    assert_eq!(batches.last().map(|b| b.count), Some(3));
    // And then nothing again.
    assert!(next_batch(&mut stream, INTERVAL * 3).await.is_none());
    // The daemon's own writes are changes like any other.
    update(&mut t.client, by_id(info.id), raw(&u32b(3)), raw(&u64b(7))).await;
    let b = next_batch(&mut stream, INTERVAL * 2)
        .await
        .expect("a batch");
    assert_eq!(b.changes, vec![(Kind::Changed, u32b(3), Some(u64b(7)))]);
}

#[tokio::test]
async fn per_cpu_and_array_maps_are_watched_in_any_format() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let cpus = kernel::possible_cpus();
    let pcpu = create(
        &mut t.client,
        create_req(MapType::PercpuHash, &names::unique("wpcpu"), 4, 4, 8),
    )
    .await;
    let arr = create(
        &mut t.client,
        create_req(MapType::Array, &names::unique("warr"), 4, 4, 3),
    )
    .await;
    let mut p = watch(&mut t.client, by_id(pcpu.id), Format::Number, INTERVAL_MS).await;
    let mut a = watch(&mut t.client, by_id(arr.id), Format::Hex, INTERVAL_MS).await;

    let first = p.message().await.unwrap().unwrap();
    assert!(first.initial && first.changes.is_empty() && !first.more);
    assert_eq!(first.count, 0);
    let first = a.message().await.unwrap().unwrap();
    assert!(first.initial);
    let snap: Vec<(String, String)> = first
        .changes
        .iter()
        .map(|c| (hex_of(&c.key), hex_of(&c.value)))
        .collect();
    assert_eq!(
        snap,
        vec![
            ("00 00 00 00".into(), "00 00 00 00".into()),
            ("01 00 00 00".into(), "00 00 00 00".into()),
            ("02 00 00 00".into(), "00 00 00 00".into()),
        ],
        "an array's snapshot is every index, in order"
    );

    t.client
        .update(UpdateRequest {
            map: by_id(pcpu.id),
            key: num(5),
            per_cpu_values: (0..cpus as u64).map(|c| num(c + 100).unwrap()).collect(),
            ..Default::default()
        })
        .await
        .unwrap();
    update(&mut t.client, by_id(arr.id), num(1), hex("aa bb cc dd")).await;

    let msg = p.message().await.unwrap().unwrap();
    assert!(!msg.initial);
    assert_eq!(msg.changes.len(), 1);
    let c = &msg.changes[0];
    assert_eq!(Kind::try_from(c.kind).unwrap(), Kind::Added);
    assert_eq!(num_of(&c.key), 5);
    assert!(c.value.is_none(), "per-CPU values come per CPU");
    let values: Vec<u64> = c
        .per_cpu_values
        .iter()
        .map(|d| num_of(&Some(d.clone())))
        .collect();
    assert_eq!(
        values,
        (0..cpus as u64).map(|c| c + 100).collect::<Vec<_>>()
    );

    let msg = a.message().await.unwrap().unwrap();
    let got: Vec<(Kind, String, String)> = msg
        .changes
        .iter()
        .map(|c| {
            (
                Kind::try_from(c.kind).unwrap(),
                hex_of(&c.key),
                hex_of(&c.value),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![(Kind::Changed, "01 00 00 00".into(), "aa bb cc dd".into())]
    );
}

#[tokio::test]
async fn a_slow_watcher_gets_coalesced_changes_and_a_fast_one_sees_each() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let info = create(
        &mut t.client,
        create_req(MapType::Hash, &names::unique("wcoal"), 4, 8, 16),
    )
    .await;
    update(&mut t.client, by_id(info.id), raw(&u32b(1)), raw(&u64b(0))).await;
    let mut other = t.daemon.client().await;
    // One poller for both: it reads every 100 ms, the slow watcher sends every 3 s.
    let mut fast = watch(&mut t.client, by_id(info.id), Format::Raw, 100).await;
    let mut slow = watch(&mut other, by_id(info.id), Format::Raw, 3000).await;
    assert!(
        next_batch(&mut fast, Duration::from_secs(5))
            .await
            .unwrap()
            .initial
    );
    assert!(
        next_batch(&mut slow, Duration::from_secs(5))
            .await
            .unwrap()
            .initial
    );
    let start = Instant::now();

    // Within the slow watcher's interval: key 7 comes and goes, key 1 changes four times.
    let step = Duration::from_millis(250);
    update(&mut t.client, by_id(info.id), raw(&u32b(7)), raw(&u64b(7))).await;
    for v in 1..=4u64 {
        update(&mut t.client, by_id(info.id), raw(&u32b(1)), raw(&u64b(v))).await;
        tokio::time::sleep(step).await;
    }
    t.client
        .delete(bpfmap_tests::api::pb::DeleteRequest {
            map: by_id(info.id),
            key: raw(&u32b(7)),
        })
        .await
        .unwrap();
    let changes_done = start.elapsed();
    assert!(
        changes_done < Duration::from_millis(2500),
        "the machine is too slow for this test's timing ({changes_done:?})"
    );

    // The fast watcher saw key 7 come and go, and several values of key 1.
    let (_, batches) = changes_until(&mut fast, Instant::now() + Duration::from_millis(600)).await;
    let seen: Vec<_> = batches.iter().flat_map(|b| b.changes.clone()).collect();
    assert!(
        seen.contains(&(Kind::Added, u32b(7), Some(u64b(7)))),
        "{seen:?}"
    );
    assert!(seen.contains(&(Kind::Removed, u32b(7), None)), "{seen:?}");
    let key1 = seen.iter().filter(|(_, k, _)| *k == u32b(1)).count();
    assert!(
        key1 >= 3,
        "the fast watcher saw {key1} values of key 1: {seen:?}"
    );

    // The slow one: one batch, no sooner than its interval, with only the net change.
    let b = next_batch(&mut slow, Duration::from_secs(5))
        .await
        .expect("a batch");
    assert!(
        start.elapsed() >= Duration::from_millis(2900),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(b.changes, vec![(Kind::Changed, u32b(1), Some(u64b(4)))]);
    assert!(next_batch(&mut slow, Duration::from_millis(3500))
        .await
        .is_none());
}
