//! A Watch client that goes away in the middle of its stream (changes pending, or a big
//! snapshot it never read) leaves nothing behind: the daemon's fds and threads (the map's
//! poller) go back to what they were, and watching again works.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use bpfmap_tests::api::pb::{Format, GetMapRequest, MapType};
use bpfmap_tests::api::*;
use bpfmap_tests::live::{fds_and_threads, next_batch, settle, watch};
use bpfmap_tests::{names, TestEnv};

const WAIT: Duration = Duration::from_secs(10);

async fn leaves_nothing_behind(close_connection: bool, big: bool) {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let pid = t.daemon.pid().unwrap();
    let n: u32 = if big { 50_000 } else { 16 };
    let info = create(
        &mut t.client,
        create_req(MapType::Hash, &names::unique("wdisc"), 4, 64, n),
    )
    .await;
    let pairs: Vec<(Vec<u8>, Vec<u8>)> = (0..n).map(|i| (u32b(i), vec![1u8; 64])).collect();
    batch_update_packed(&mut t.client, by_id(info.id), &pairs, 10_000)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before_connection = fds_and_threads(pid);
    let mut client = t.daemon.client().await;
    client
        .get_map(GetMapRequest {
            map: by_id(info.id),
        })
        .await
        .unwrap();
    let baseline = if close_connection {
        before_connection
    } else {
        fds_and_threads(pid)
    };

    // Hex triples the big snapshot (10 MiB): well past what HTTP/2 windows take in.
    let format = if big { Format::Hex } else { Format::Raw };
    let mut stream = watch(&mut client, by_id(info.id), format, 100).await;
    if !big {
        assert!(next_batch(&mut stream, WAIT).await.unwrap().initial);
        // Changes the client will not read.
        for i in 0..4 {
            update(
                &mut t.client,
                by_id(info.id),
                raw(&u32b(i)),
                raw(&[2u8; 64]),
            )
            .await;
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let during = fds_and_threads(pid);
    assert_eq!(during.1, baseline.1 + 1, "one poller thread");
    drop(stream);
    if close_connection {
        drop(client);
    }
    let after = settle(pid, baseline, Duration::from_secs(5)).await;
    assert_eq!(after, baseline, "fds and threads after the client left");

    let mut again = watch(&mut t.client, by_id(info.id), Format::Raw, 0).await;
    let snap = next_batch(&mut again, WAIT).await.unwrap();
    assert!(snap.initial);
    assert_eq!(snap.count, u64::from(n));
    assert_eq!(snap.changes.len(), n as usize);
}

#[tokio::test]
async fn watch_stream_dropped_with_changes_pending_leaves_nothing() {
    leaves_nothing_behind(false, false).await;
}

#[tokio::test]
async fn watch_connection_closed_with_changes_pending_leaves_nothing() {
    leaves_nothing_behind(true, false).await;
}

#[tokio::test]
async fn watch_connection_closed_in_an_unread_big_snapshot_leaves_nothing() {
    leaves_nothing_behind(true, true).await;
}
