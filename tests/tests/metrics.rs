//! Issue 8, metrics: after a known sequence of calls, the counters scraped from
//! `--metrics-listen` moved by exactly what was sent (deltas against a scrape taken before,
//! since the harness's readiness probe makes calls of its own).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use bpfmap_client::{Client, CreateMap, DumpOptions, Entry, Flag, MapRef};
use bpfmap_tests::daemon::free_loopback_port;
use bpfmap_tests::metrics::{get, Scrape};
use bpfmap_tests::{names, DaemonOptions, TestEnv};
use futures::StreamExt;

fn calls(s: &Scrape, rpc: &str, code: &str) -> f64 {
    s.get(&format!(
        "bpfmapd_rpc_calls_total{{rpc=\"{rpc}\",code=\"{code}\"}}"
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scraped_counters_equal_a_known_call_sequence() {
    let addr = free_loopback_port();
    let Some(t) = TestEnv::start_with(DaemonOptions {
        tcp: true,
        extra_args: vec!["--metrics-listen".into(), addr.to_string()],
        ..DaemonOptions::default()
    })
    .await
    else {
        return;
    };
    let before = get(addr, "/metrics").await;
    assert_eq!(before.code(), 200, "{}", before.status);
    assert!(
        before
            .content_type
            .starts_with("application/openmetrics-text"),
        "{}",
        before.content_type
    );
    assert_eq!(before.get("bpfmapd_managed_maps"), 0.0, "{}", before.text);

    let c = Client::connect(&t.daemon.unix_addr())
        .await
        .expect("connect");
    let name = names::unique("metrics");
    let map = MapRef::pin(name.as_str());
    c.create_map(CreateMap::hash(&name, 4, 8, 4096))
        .await
        .expect("create");
    for i in 0..3u32 {
        c.update_pod::<u32, u64>(&map, &i, &1, Flag::Any)
            .await
            .expect("update");
    }
    for i in 0..2u32 {
        c.lookup_pod::<u32, u64>(&map, &i).await.expect("lookup");
    }
    assert!(c
        .lookup_pod::<u32, u64>(&map, &999)
        .await
        .is_err_and(|e| e.is_not_found()));
    let batch = (100..200u32).map(|i| Entry::new(i.to_ne_bytes(), 2u64.to_ne_bytes()));
    assert_eq!(
        c.batch_update(&map, batch, Flag::Any).await.expect("batch"),
        100
    );
    let dumped = c.dump(&map).await.expect("dump").count().await;
    assert_eq!(dumped, 103);
    c.delete(&map, 0u32.to_ne_bytes()).await.expect("delete");
    let keys: Vec<[u8; 4]> = (100..110u32).map(u32::to_ne_bytes).collect();
    assert_eq!(
        c.batch_delete(&map, keys)
            .await
            .expect("batch delete")
            .deleted,
        10
    );
    // An anonymous TCP caller is refused by the default policy.
    let anon = Client::connect(&t.daemon.tcp_url()).await.expect("tcp");
    assert!(anon
        .get_map(&map)
        .await
        .is_err_and(|e| e.is_permission_denied()));

    let after = get(addr, "/metrics").await;
    let delta = |rpc: &str, code: &str| calls(&after, rpc, code) - calls(&before, rpc, code);
    // get_map is called by batch_update and dump (to learn the layout), and by the anonymous caller.
    for (rpc, code, n) in [
        ("CreateMap", "OK", 1.0),
        ("Update", "OK", 3.0),
        ("Lookup", "OK", 2.0),
        ("Lookup", "NOT_FOUND", 1.0),
        ("BatchUpdate", "OK", 1.0),
        ("Dump", "OK", 1.0),
        ("Delete", "OK", 1.0),
        ("BatchDelete", "OK", 1.0),
        ("GetMap", "OK", 2.0),
        ("GetMap", "PERMISSION_DENIED", 1.0),
    ] {
        assert_eq!(delta(rpc, code), n, "{rpc} {code}\n{}", after.text);
        let hist = |s: &Scrape| {
            s.get(&format!(
                "bpfmapd_rpc_duration_seconds_count{{rpc=\"{rpc}\"}}"
            ))
        };
        assert!(
            hist(&after) - hist(&before) >= n,
            "{rpc} latency\n{}",
            after.text
        );
    }
    let d = |name: &str| after.get(name) - before.get(name);
    assert_eq!(d("bpfmapd_entries_written_total"), 103.0, "{}", after.text);
    assert_eq!(d("bpfmapd_entries_streamed_total"), 103.0, "{}", after.text);
    assert_eq!(d("bpfmapd_entries_deleted_total"), 11.0, "{}", after.text);
    assert_eq!(
        d("bpfmapd_policy_denials_total{rpc=\"GetMap\",access=\"read\"}"),
        1.0,
        "{}",
        after.text
    );
    assert_eq!(after.get("bpfmapd_managed_maps"), 1.0);
    assert_eq!(after.get("bpfmapd_active_streams"), 0.0);

    // An open dump is an active stream; a client that walks away is a CANCELLED call. The
    // map holds 16 MB, far more than the HTTP/2 windows and the daemon's two-message
    // channel: the dump cannot finish while the client does not read.
    let big_name = names::unique("metricsbig");
    let big = MapRef::pin(big_name.as_str());
    c.create_map(CreateMap::hash(&big_name, 4, 4096, 4096))
        .await
        .expect("create big");
    let fill = (0..4000u32).map(|i| Entry::new(i.to_ne_bytes(), vec![3u8; 4096]));
    c.batch_update(&big, fill, Flag::Any).await.expect("fill");
    let mut open = c
        .dump_with(
            &big,
            DumpOptions {
                batch_size: 1,
                delete: false,
            },
        )
        .await
        .expect("dump");
    let _first = open.next().await;
    let mut active = 0.0;
    for _ in 0..50 {
        active = get(addr, "/metrics").await.get("bpfmapd_active_streams");
        if active == 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(active, 1.0);
    drop(open);
    let mut last = get(addr, "/metrics").await;
    for _ in 0..100 {
        if last.get("bpfmapd_active_streams") == 0.0 && calls(&last, "Dump", "CANCELLED") == 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        last = get(addr, "/metrics").await;
    }
    assert_eq!(last.get("bpfmapd_active_streams"), 0.0, "{}", last.text);
    assert_eq!(calls(&last, "Dump", "CANCELLED"), 1.0, "{}", last.text);
    assert_eq!(get(addr, "/nope").await.code(), 404);
}
