//! A ReadEvents client that goes away in the middle of a stream (records flowing, records
//! waiting) leaves nothing behind in the daemon: its open fds (map, epoll, eventfd, perf
//! events) and threads (the map's consumer) go back to what they were, and a perf event
//! array no longer holds the daemon's perf events.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use bpfmap_tests::api::pb::{Format, GetMapRequest};
use bpfmap_tests::api::*;
use bpfmap_tests::live::{fds_and_threads, read_events, receive, settle};
use bpfmap_tests::{EventsProgram, TestEnv};

const WAIT: Duration = Duration::from_secs(20);

/// How the client leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leave {
    /// Drops the stream (RST_STREAM) and keeps its connection.
    Stream,
    /// Closes the whole connection.
    Connection,
    /// Stops reading until its queue and HTTP/2 window are full, then closes the connection.
    StalledConnection,
}

async fn leaves_nothing_behind(perf: bool, leave: Leave) {
    let Some(t) = TestEnv::start().await else {
        return;
    };
    let prog = EventsProgram::load();
    let map = if perf { prog.perf_id() } else { prog.ring_id() };
    let pid = t.daemon.pid().unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Closing the connection takes its socket too: count before it is made.
    let before_connection = fds_and_threads(pid);
    let mut client = t.daemon.client().await;
    client
        .get_map(GetMapRequest { map: by_id(map) })
        .await
        .unwrap();
    let baseline = match leave {
        Leave::Stream => fds_and_threads(pid),
        Leave::Connection | Leave::StalledConnection => before_connection,
    };
    let mut stream = read_events(&mut client, by_id(map), Format::Raw).await;
    prog.send(0..50);
    let got = receive(&mut stream, 50, WAIT).await;
    assert_eq!(got.records.len(), 50);
    let during = fds_and_threads(pid);
    let extra_fds = if perf {
        // map + epoll + eventfd + one perf event per online CPU (at least one).
        3 + 1
    } else {
        3
    };
    assert!(
        during.0 >= baseline.0 + extra_fds,
        "a consumer holds its map, epoll and eventfd (and perf events): {baseline:?} -> {during:?}"
    );
    assert_eq!(during.1, baseline.1 + 1, "one consumer thread");
    // Records the client will never read: for a stalled client, 25 MiB of them.
    if leave == Leave::StalledConnection {
        prog.configure(16, true);
        for chunk in 0..50 {
            prog.send(chunk * 8..chunk * 8 + 8);
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        prog.configure(1, false);
    }
    prog.send(50..100);
    match leave {
        Leave::Stream => drop(stream),
        Leave::Connection | Leave::StalledConnection => {
            drop(stream);
            drop(client);
        }
    }
    let after = settle(pid, baseline, Duration::from_secs(5)).await;
    assert_eq!(
        after, baseline,
        "fds and threads after the client left (during: {during:?})"
    );
    if perf {
        // The daemon's perf events are out of the map: new records have nowhere to go.
        let before = prog.stats().perf_refused;
        prog.send(100..110);
        assert_eq!(prog.stats().perf_refused, before + 10);
    }
    // A new subscriber starts from scratch and works.
    let mut fresh = t.daemon.client().await;
    let mut stream = read_events(&mut fresh, by_id(map), Format::Raw).await;
    prog.send([1000]);
    let got = receive(&mut stream, 1, WAIT).await;
    assert!(!got.records.is_empty());
}

#[tokio::test]
async fn ring_buffer_stream_dropped_mid_flow_leaves_nothing() {
    leaves_nothing_behind(false, Leave::Stream).await;
}

#[tokio::test]
async fn ring_buffer_connection_closed_mid_flow_leaves_nothing() {
    leaves_nothing_behind(false, Leave::Connection).await;
}

#[tokio::test]
async fn perf_stream_dropped_mid_flow_leaves_nothing() {
    leaves_nothing_behind(true, Leave::Stream).await;
}

#[tokio::test]
async fn perf_connection_closed_mid_flow_leaves_nothing() {
    leaves_nothing_behind(true, Leave::Connection).await;
}

#[tokio::test]
async fn ring_buffer_stalled_client_closing_leaves_nothing() {
    leaves_nothing_behind(false, Leave::StalledConnection).await;
}

#[tokio::test]
async fn perf_stalled_client_closing_leaves_nothing() {
    leaves_nothing_behind(true, Leave::StalledConnection).await;
}
