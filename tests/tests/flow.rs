//! Dump flow control: a client that stops reading slows the daemon down instead of making it
//! buffer the map: its memory stays flat, and the stream still completes afterwards.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use bpfmap_tests::api::pb::{DumpRequest, Format, MapType};
use bpfmap_tests::api::*;
use bpfmap_tests::{names, TestEnv};

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

#[tokio::test]
async fn a_stalled_dump_client_does_not_grow_the_daemon() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    const N: u32 = 150_000;
    const VALUE: usize = 1024; // 150k × 1 KiB: ~150 MiB that must not pile up in the daemon
    const LIMIT: u64 = 48 << 20;
    let name = names::unique("flow");
    let info = create(
        &mut t.client,
        create_req(MapType::Hash, &name, 4, VALUE as u32, N),
    )
    .await;
    let pairs: Vec<(Vec<u8>, Vec<u8>)> = (0..N)
        .map(|i| (u32b(i), vec![(i % 251) as u8; VALUE]))
        .collect();
    let updated = batch_update_packed(&mut t.client, by_id(info.id), &pairs, 1000)
        .await
        .unwrap();
    assert_eq!(updated, u64::from(N));
    drop(pairs);
    let pid = t.daemon.pid().unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let base = rss(pid);

    let req = DumpRequest {
        map: by_id(info.id),
        format: Format::Raw as i32,
        batch_size: 256,
        ..Default::default()
    };
    let mut stream = t.client.dump(req).await.unwrap().into_inner();
    let first = stream.message().await.unwrap().expect("a first message");
    let mut count = first.entries.len();
    // Stop reading for a while; the daemon must wait for us.
    let mut peak = base;
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        peak = peak.max(rss(pid));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "daemon RSS: {} MiB before the dump, peak {} MiB while the client stalled",
        base >> 20,
        peak >> 20
    );
    assert!(
        peak.saturating_sub(base) < LIMIT,
        "daemon grew by {} MiB while the client did not read (limit {} MiB)",
        (peak - base) >> 20,
        LIMIT >> 20
    );
    // Then the stream completes, with every entry once.
    let mut seen = std::collections::HashSet::new();
    for e in &first.entries {
        assert!(seen.insert(bytes_of(&e.key)));
    }
    while let Some(msg) = stream.message().await.unwrap() {
        count += msg.entries.len();
        for e in &msg.entries {
            assert!(seen.insert(bytes_of(&e.key)), "key twice");
            assert_eq!(bytes_of(&e.value).len(), VALUE);
        }
        peak = peak.max(rss(pid));
    }
    assert_eq!(count, N as usize);
    assert!(
        peak.saturating_sub(base) < LIMIT,
        "daemon grew by {} MiB during the dump",
        (peak - base) >> 20
    );
}
