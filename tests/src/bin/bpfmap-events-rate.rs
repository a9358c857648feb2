//! `bpfmap-events-rate [SECONDS] [BURST]`: how many ring-buffer records per second reach one
//! ReadEvents subscriber, against how many the program produced in the same run.
//!
//! The program is tests/bpf/events.bpf.c: each UDP datagram a sender thread pushes through
//! the filtered socket makes it write BURST (default 64) 16-byte records. Two phases of
//! SECONDS (default 5) each, on a fresh program and daemon:
//!
//! 1. local floor: a libbpf ring-buffer consumer in this process (no daemon, no gRPC), what
//!    `bpftool map event_pipe`-like local tools get;
//! 2. the daemon: one `Client::read_events` subscriber over the Unix socket.
//!
//! For each: records the program wrote per second, records the ring refused (it was full:
//! the consumer fell behind), records the consumer got per second, and for the daemon the
//! records its queue dropped for the subscriber (Event.lost). Run it with a release daemon
//! (`scripts/events_rate.sh` builds both in release); needs root.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bpfmap_tests::events::Stats;
use bpfmap_tests::{Bpffs, Daemon, EventsProgram};
use futures::StreamExt;
use libbpf_rs::{MapHandle, RingBufferBuilder};

/// Runs the sender for `secs` seconds; returns the program's counts before and after and
/// the elapsed time.
fn produce(prog: &EventsProgram, secs: f64) -> (Stats, Stats, Duration) {
    let before = prog.stats();
    let start = Instant::now();
    let until = start + Duration::from_secs_f64(secs);
    let mut seq = 0u64;
    while Instant::now() < until {
        prog.send(seq..seq + 16);
        seq += 16;
    }
    (before, prog.stats(), start.elapsed())
}

fn rate(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn report(what: &str, before: Stats, after: Stats, elapsed: Duration, got: u64, lost: u64) {
    let written = after.ring_written - before.ring_written;
    let refused = after.ring_refused - before.ring_refused;
    println!(
        "{what:<34} produced {:>10.0}/s  ring full {:>9}  delivered {:>10.0}/s ({:>5.1}% of produced)  lost in queue {lost}",
        rate(written, elapsed),
        refused,
        rate(got, elapsed),
        100.0 * got as f64 / written.max(1) as f64,
    );
}

fn local_floor(secs: f64, burst: u32) {
    let prog = EventsProgram::load();
    prog.configure(burst, false);
    let map = MapHandle::from_map_id(prog.ring_id()).expect("open the ring");
    let got = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let consumer = {
        let (got, stop) = (got.clone(), stop.clone());
        std::thread::spawn(move || {
            let counter = got.clone();
            let mut b = RingBufferBuilder::new();
            b.add(&map, move |_data: &[u8]| {
                counter.fetch_add(1, SeqCst);
                0
            })
            .expect("add the ring");
            let rb = b.build().expect("ring buffer");
            while !stop.load(SeqCst) {
                let _ = rb.poll(Duration::from_millis(50));
            }
            let _ = rb.consume();
        })
    };
    let (before, after, elapsed) = produce(&prog, secs);
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, SeqCst);
    consumer.join().unwrap();
    report(
        "local libbpf consumer (floor)",
        before,
        after,
        elapsed,
        got.load(SeqCst),
        0,
    );
}

async fn through_daemon(secs: f64, burst: u32) {
    let fs = Bpffs::new();
    let daemon = Daemon::start(&fs).await;
    let prog = EventsProgram::load();
    prog.configure(burst, false);
    let client = bpfmap_client::Client::connect(&daemon.unix_addr())
        .await
        .expect("connect");
    let mut events = client
        .read_events(bpfmap_client::MapRef::from(prog.ring_id()))
        .await
        .expect("ReadEvents");
    let got = Arc::new(AtomicU64::new(0));
    let lost = Arc::new(AtomicU64::new(0));
    let reader = {
        let (got, lost) = (got.clone(), lost.clone());
        tokio::spawn(async move {
            while let Some(Ok(e)) = events.next().await {
                lost.fetch_add(e.lost, SeqCst);
                if e.data.is_some() {
                    got.fetch_add(1, SeqCst);
                }
            }
        })
    };
    let (before, after, elapsed) = tokio::task::block_in_place(|| produce(&prog, secs));
    // Let the stream drain what is in flight.
    let written = after.ring_written - before.ring_written;
    let deadline = Instant::now() + Duration::from_secs(5);
    while got.load(SeqCst) + lost.load(SeqCst) < written && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    reader.abort();
    report(
        "bpfmapd -> one gRPC subscriber",
        before,
        after,
        elapsed,
        got.load(SeqCst),
        lost.load(SeqCst),
    );
    drop(daemon);
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let secs: f64 = args.get(1).map_or(5.0, |s| s.parse().expect("SECONDS"));
    let burst: u32 = args.get(2).map_or(64, |s| s.parse().expect("BURST"));
    if !bpfmap_tests::require_bpf() {
        std::process::exit(1);
    }
    println!(
        "ring buffer, 16-byte records, {burst} per datagram, {secs} s per phase, {} CPUs",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    local_floor(secs, burst);
    through_daemon(secs, burst).await;
}
