//! A subscriber that stops reading must not hold back the others or grow the daemon: the
//! fast subscriber of the same map receives every record, the stalled one loses records and
//! is told how many (records received + records reported lost = records written), and the
//! daemon's memory stays bounded while 64 MiB of records flow past the stalled one.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use bpfmap_tests::api::by_id;
use bpfmap_tests::api::pb::Format;
use bpfmap_tests::events::{Event, BIG};
use bpfmap_tests::live::{read_events, receive, receive_more, Received};
use bpfmap_tests::{EventsProgram, TestEnv};

const WAIT: Duration = Duration::from_secs(30);
/// Daemon growth allowed while the stalled subscriber does not read: its queue (4 MiB by
/// default), HTTP/2 windows and allocator slack, far below the 64 MiB that flow past it.
const LIMIT: u64 = 32 << 20;

/// Resident memory of a process, in bytes (VmRSS of /proc/<pid>/status).
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS");
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// Checks that the records are (seq, index) pairs of `burst` records per datagram, in
/// order, with gaps only where losses were reported: returns how many there were.
fn check_order(got: &Received, burst: u64) -> u64 {
    let mut last: Option<u64> = None;
    for (_, bytes) in &got.records {
        // Perf samples come padded (4-byte size + data, rounded up to 8 bytes).
        assert!(
            (BIG..BIG + 8).contains(&bytes.len()),
            "{} bytes",
            bytes.len()
        );
        let e = Event::parse(bytes);
        let n = e.seq * burst + u64::from(e.index);
        assert!(last.is_none_or(|l| n > l), "record {n} after {last:?}");
        last = Some(n);
    }
    got.records.len() as u64
}

async fn stalled_and_fast(perf: bool) {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    const BURST: u64 = 16;
    // The ring holds 1 MiB: 256 big records. A perf buffer holds 256 KiB per CPU, and all
    // records of one datagram land on the same CPU.
    let (datagrams, chunk) = if perf { (1024, 2) } else { (1024, 8) };
    let total = datagrams * BURST;
    let prog = EventsProgram::load();
    prog.configure(BURST as u32, true);
    let map = if perf { prog.perf_id() } else { prog.ring_id() };
    let pid = t.daemon.pid().unwrap();

    // The stalled subscriber has a connection of its own and never reads until the end.
    let mut stalled_client = t.daemon.client().await;
    let mut stalled = read_events(&mut stalled_client, by_id(map), Format::Raw).await;
    let mut fast = read_events(&mut t.client, by_id(map), Format::Raw).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let base = rss(pid);
    let mut peak = base;

    let mut got = Received::default();
    let mut sent = 0;
    while sent < datagrams {
        prog.send(sent..sent + chunk);
        sent += chunk;
        receive_more(&mut fast, &mut got, sent * BURST, WAIT).await;
        assert_eq!(
            got.lost, 0,
            "the fast subscriber lost records after {sent} datagrams"
        );
        peak = peak.max(rss(pid));
    }
    assert_eq!(
        check_order(&got, BURST),
        total,
        "the fast subscriber got everything"
    );
    let stats = prog.stats();
    let written = if perf {
        (stats.perf_written, stats.perf_refused)
    } else {
        (stats.ring_written, stats.ring_refused)
    };
    assert_eq!(written, (total, 0), "the kernel took every record");
    eprintln!(
        "daemon RSS: {} MiB with both subscribers, peak {} MiB while {} MiB of records flowed",
        base >> 20,
        peak >> 20,
        (total as usize * BIG) >> 20
    );
    assert!(
        peak.saturating_sub(base) < LIMIT,
        "the daemon grew by {} MiB while a subscriber did not read (limit {} MiB)",
        (peak - base) >> 20,
        LIMIT >> 20
    );

    // Now the stalled one reads: what it kept, then how much it lost, all accounted for.
    let slow = receive(&mut stalled, total, WAIT).await;
    let kept = check_order(&slow, BURST);
    eprintln!(
        "stalled subscriber: {kept} records kept, {} reported lost in {} loss reports",
        slow.lost, slow.loss_reports
    );
    assert!(
        slow.lost > 0,
        "the stalled subscriber lost nothing? {kept} kept"
    );
    assert!(kept > 0, "the stalled subscriber's queue kept nothing");
    assert_eq!(slow.accounted(), total, "kept + lost = written");
    // It still gets new records, and loses none of them.
    prog.configure(1, false);
    prog.send([1 << 40]);
    let next = receive(&mut stalled, 1, WAIT).await;
    assert_eq!(next.lost, 0);
    assert_eq!(Event::parse(&next.records[0].1).seq, 1 << 40);
}

#[tokio::test]
async fn a_stalled_ring_buffer_subscriber_loses_counted_records_and_holds_nobody_back() {
    stalled_and_fast(false).await;
}

#[tokio::test]
async fn a_stalled_perf_subscriber_loses_counted_records_and_holds_nobody_back() {
    stalled_and_fast(true).await;
}
