//! `bpfmapctl map events`: records printed as they come, bpftool event_pipe style (or JSON
//! lines), until Ctrl+C or `--count`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cli_support;

use std::time::{Duration, Instant};

use bpfmap_tests::{EventsProgram, TestEnv};
use cli_support::Ctl;

const WAIT: Duration = Duration::from_secs(10);

/// A record's bytes as the CLI prints them (bpftool's fprint_hex: two spaces after 8 bytes).
fn record_hex(seq: u64) -> String {
    let mut b = seq.to_ne_bytes().to_vec();
    b.extend_from_slice(&32u32.to_ne_bytes());
    b.extend_from_slice(&0u32.to_ne_bytes());
    let h: Vec<String> = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}  {}", h[..8].join(" "), h[8..].join(" "))
}

#[tokio::test]
async fn map_events_prints_ring_records_until_ctrl_c() {
    let Some(t) = TestEnv::start().await else {
        return;
    };
    let ctl = Ctl::new(&t.daemon.unix_addr(), t.daemon.dir());
    let prog = EventsProgram::load();
    // A ring buffer keeps what nobody has read: these wait for the first reader.
    prog.send([7, 8, 9]);
    let id = format!("id:{}", prog.ring_id());
    let mut run = ctl.follow(&["map", "events", &id]);
    for seq in [7, 8, 9] {
        let header = run.line(WAIT).expect("a header");
        assert!(
            header.starts_with("== @") && header.ends_with(" =====") && !header.contains("CPU"),
            "{header:?}"
        );
        assert_eq!(run.line(WAIT).as_deref(), Some(record_hex(seq).as_str()));
    }
    // Printed as they come, not when the command ends.
    prog.send([10]);
    run.until("=====", WAIT);
    assert_eq!(run.line(WAIT), Some(record_hex(10)));
    run.interrupt();
    assert_eq!(
        run.exit(WAIT),
        0,
        "Ctrl+C ends it quietly: {}",
        run.stderr()
    );
}

#[tokio::test]
async fn map_events_json_lines_stop_after_count() {
    let Some(t) = TestEnv::start().await else {
        return;
    };
    let ctl = Ctl::new(&t.daemon.unix_addr(), t.daemon.dir());
    let prog = EventsProgram::load();
    let id = format!("id:{}", prog.perf_id());
    let mut run = ctl.follow(&["--json", "map", "events", &id, "--count", "2"]);
    // Perf records only go somewhere once the daemon's buffers are in the map: keep
    // sending until the command has its two.
    let deadline = Instant::now() + WAIT;
    let mut seq = 0;
    while run.try_exit().is_none() && Instant::now() < deadline {
        prog.send([seq]);
        seq += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(run.exit(WAIT), 0, "{}", run.stderr());
    let mut lines = Vec::new();
    while let Some(l) = run.line(Duration::from_millis(500)) {
        lines.push(l);
    }
    assert_eq!(lines.len(), 2, "{lines:?}");
    let mut seqs = Vec::new();
    for l in &lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        assert!(v["timestamp"].as_u64().is_some_and(|t| t > 0), "{v}");
        assert!(v["cpu"].as_u64().is_some(), "{v}");
        let data: Vec<u8> = v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| u8::from_str_radix(b.as_str().unwrap().trim_start_matches("0x"), 16).unwrap())
            .collect();
        assert!(data.len() >= 16);
        seqs.push(u64::from_ne_bytes(data[..8].try_into().unwrap()));
    }
    assert_ne!(seqs[0], seqs[1], "two different records");
}

#[tokio::test]
async fn map_events_refuses_what_it_cannot_follow() {
    let Some(t) = TestEnv::start().await else {
        return;
    };
    let ctl = Ctl::new(&t.daemon.unix_addr(), t.daemon.dir());
    ctl.ok(&[
        "map",
        "create",
        "notaring",
        "--type",
        "hash",
        "--key-size",
        "4",
        "--value-size",
        "4",
        "--entries",
        "4",
        "--ephemeral",
    ]);
    let err = ctl.remote_err(&["map", "events", "notaring"], "INVALID_ARGUMENT");
    assert!(err.contains("ringbuf"), "{err}");
    let two = Ctl {
        servers: vec![t.daemon.unix_addr(), t.daemon.unix_addr()],
        cwd: t.daemon.dir().to_owned(),
    };
    let err = two.usage_err(&["map", "events", "id:1"]);
    assert!(err.contains("one --server"), "{err}");
}

#[tokio::test]
async fn map_events_decodes_records_with_a_record_type() {
    let Some(t) = TestEnv::start().await else {
        return;
    };
    let ctl = Ctl::new(&t.daemon.unix_addr(), t.daemon.dir());
    let prog = EventsProgram::load();
    prog.send([5, 6]);
    let id = format!("id:{}", prog.ring_id());
    let out = ctl.ok(&[
        "map",
        "events",
        &id,
        "--record-type",
        "struct event",
        "--count",
        "2",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(lines[0].starts_with("== @"), "{out}");
    assert_eq!(lines[1], r#"{"seq":5,"len":32,"index":0}"#);
    assert_eq!(lines[3], r#"{"seq":6,"len":32,"index":0}"#);
    prog.send([7]);
    let out = ctl.ok(&[
        "--json",
        "map",
        "events",
        &id,
        "-t",
        "struct e { __u64 seq; }",
        "-c",
        "1",
    ]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["formatted"], serde_json::json!({"seq": 7}));
}
