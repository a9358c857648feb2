//! Watchers of one map share one poller (one daemon thread per watched map, not per
//! watcher); the number of watchers and the shortest interval are capped
//! (RESOURCE_EXHAUSTED); maps that cannot be watched are refused with the reason.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use bpfmap_tests::api::pb::{change::Kind, Format, MapType, WatchRequest};
use bpfmap_tests::api::*;
use bpfmap_tests::live::{fds_and_threads, next_batch, settle, watch};
use bpfmap_tests::{names, DaemonOptions, EventsProgram, TestEnv};
use tonic::Code;

const WAIT: Duration = Duration::from_secs(5);

fn threads(pid: u32) -> usize {
    fds_and_threads(pid).1
}

#[tokio::test]
async fn watchers_of_a_map_share_one_poller_and_the_caps_hold() {
    let opts = DaemonOptions {
        extra_args: ["--max-watchers", "3", "--min-watch-interval-ms", "50"]
            .map(String::from)
            .to_vec(),
        ..Default::default()
    };
    let Some(mut t) = TestEnv::start_with(opts).await else {
        return;
    };
    let pid = t.daemon.pid().unwrap();
    let a = create(
        &mut t.client,
        create_req(MapType::Hash, &names::unique("wa"), 4, 4, 8),
    )
    .await;
    let b = create(
        &mut t.client,
        create_req(MapType::Array, &names::unique("wb"), 4, 4, 2),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let base = fds_and_threads(pid);

    let req = |id, interval_ms| WatchRequest {
        map: by_id(id),
        format: Format::Raw as i32,
        interval_ms,
    };
    let r = t.client.watch(req(a.id, 10)).await;
    assert_status(
        r,
        Code::ResourceExhausted,
        &["interval", "50", "--min-watch-interval-ms"],
    );

    let mut other = t.daemon.client().await;
    let mut a1 = watch(&mut t.client, by_id(a.id), Format::Raw, 100).await;
    let mut a2 = watch(&mut other, by_id(a.id), Format::Raw, 50).await;
    let mut b1 = watch(&mut other, by_id(b.id), Format::Raw, 0).await;
    for s in [&mut a1, &mut a2, &mut b1] {
        assert!(next_batch(s, WAIT).await.unwrap().initial);
    }
    assert_eq!(threads(pid), base.1 + 2, "one poller per watched map");
    let r = t.client.watch(req(b.id, 100)).await;
    assert_status(r, Code::ResourceExhausted, &["--max-watchers", "3"]);

    // Both watchers of `a` see the same change.
    update(&mut t.client, by_id(a.id), raw(&u32b(1)), raw(&u32b(2))).await;
    for s in [&mut a1, &mut a2] {
        let got = next_batch(s, WAIT).await.expect("a batch");
        assert_eq!(got.changes, vec![(Kind::Added, u32b(1), Some(u32b(2)))]);
    }
    // The poller stays while one watcher of `a` is left, and goes with the last one.
    drop(a1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(threads(pid), base.1 + 2);
    update(&mut t.client, by_id(a.id), raw(&u32b(1)), raw(&u32b(3))).await;
    let got = next_batch(&mut a2, WAIT).await.expect("a batch");
    assert_eq!(got.changes, vec![(Kind::Changed, u32b(1), Some(u32b(3)))]);
    drop(a2);
    let now = settle(pid, (usize::MAX, base.1 + 1), WAIT).await;
    assert_eq!(
        now.1,
        base.1 + 1,
        "the poller of a stopped with its last watcher"
    );
    // A slot is free again.
    let mut again = watch(&mut t.client, by_id(a.id), Format::Raw, 0).await;
    let snap = next_batch(&mut again, WAIT).await.unwrap();
    assert_eq!(snap.changes, vec![(Kind::Added, u32b(1), Some(u32b(3)))]);
    drop((again, b1, other));
    assert_eq!(settle(pid, base, WAIT).await, base);
}

#[tokio::test]
async fn maps_that_cannot_be_watched_are_refused_with_the_reason() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let prog = EventsProgram::load();
    let req = |map, format: Format| WatchRequest {
        map,
        format: format as i32,
        interval_ms: 0,
    };
    let r = t
        .client
        .watch(req(by_id(prog.ring_id()), Format::Raw))
        .await;
    assert_status(r, Code::InvalidArgument, &["ringbuf", "ReadEvents"]);
    let q = create(
        &mut t.client,
        create_req(MapType::Queue, &names::unique("wq"), 0, 4, 8),
    )
    .await;
    let r = t.client.watch(req(by_id(q.id), Format::Raw)).await;
    assert_status(r, Code::InvalidArgument, &["queue"]);
    let h = create(
        &mut t.client,
        create_req(MapType::Hash, &names::unique("wh"), 3, 4, 8),
    )
    .await;
    let r = t.client.watch(req(by_id(h.id), Format::Number)).await;
    assert_status(r, Code::InvalidArgument, &["FORMAT_NUMBER", "3 bytes"]);
    let r = t.client.watch(req(by_id(h.id), Format::Json)).await;
    assert_status(r, Code::InvalidArgument, &["BTF"]);
    let r = t
        .client
        .watch(req(by_name(names::unique("nosuch")), Format::Raw))
        .await;
    assert_status(r, Code::NotFound, &[]);
}
