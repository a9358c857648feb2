//! `bpfmapctl map watch`: the entries as `map dump` prints them, then each batch of changes
//! made behind the daemon's back (bpftool), as it happens, until Ctrl+C or `--count`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cli_support;

use std::time::Duration;

use bpfmap_tests::{bpftool, TestEnv};
use cli_support::Ctl;

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn map_watch_prints_the_entries_then_each_change() {
    let Some(t) = TestEnv::start().await else {
        return;
    };
    let ctl = Ctl::new(&t.daemon.unix_addr(), t.daemon.dir());
    ctl.ok(&[
        "map",
        "create",
        "watched_map",
        "--type",
        "hash",
        "--key-size",
        "2",
        "--value-size",
        "2",
        "--entries",
        "8",
    ]);
    ctl.ok(&[
        "map",
        "update",
        "watched_map",
        "--key",
        "c1 c2",
        "--value",
        "a1 a2",
    ]);
    let pin = t.fs.root().join("watched_map");
    let mut run = ctl.follow(&["map", "watch", "watched_map", "--interval", "200"]);
    assert_eq!(
        run.until("Found", WAIT),
        vec!["key: c1 c2  value: a1 a2", "Found 1 element"]
    );
    bpftool::update_pinned(&pin, &[0xc1, 0xc2], &[0xb1, 0xb2]);
    let header = run.line(WAIT).expect("a batch");
    assert!(
        header.starts_with("== @") && header.ends_with(" 1 change (1 element) ====="),
        "{header:?}"
    );
    assert_eq!(
        run.line(WAIT).as_deref(),
        Some("changed: key: c1 c2  value: b1 b2")
    );
    bpftool::update_pinned(&pin, &[0x01, 0x02], &[0x00, 0x07]);
    bpftool::delete_pinned(&pin, &[0xc1, 0xc2]);
    let mut changes = Vec::new();
    while changes.len() < 2 {
        let l = run.line(WAIT).expect("more changes");
        if !l.starts_with("==") {
            changes.push(l);
        }
    }
    changes.sort();
    assert_eq!(
        changes,
        vec!["added: key: 01 02  value: 00 07", "removed: key: c1 c2"]
    );
    // Nothing changes, nothing is printed.
    assert_eq!(run.line(Duration::from_millis(800)), None);
    run.interrupt();
    assert_eq!(run.exit(WAIT), 0, "{}", run.stderr());
}

#[tokio::test]
async fn map_watch_json_lines_stop_after_count() {
    let Some(t) = TestEnv::start().await else {
        return;
    };
    let ctl = Ctl::new(&t.daemon.unix_addr(), t.daemon.dir());
    ctl.ok(&[
        "map",
        "create",
        "wjson",
        "--type",
        "array",
        "--key-size",
        "4",
        "--value-size",
        "4",
        "--entries",
        "2",
    ]);
    let mut run = ctl.follow(&[
        "--json", "map", "watch", "wjson", "-i", "200", "--count", "1",
    ]);
    let first: serde_json::Value =
        serde_json::from_str(&run.line(WAIT).expect("the snapshot")).unwrap();
    assert_eq!(first["initial"], true);
    assert_eq!(first["count"], 2);
    assert_eq!(
        first["entries"],
        serde_json::json!([
            {"key": ["0x00", "0x00", "0x00", "0x00"], "value": ["0x00", "0x00", "0x00", "0x00"]},
            {"key": ["0x01", "0x00", "0x00", "0x00"], "value": ["0x00", "0x00", "0x00", "0x00"]},
        ])
    );
    ctl.ok(&[
        "map",
        "update",
        "wjson",
        "--key-num",
        "1",
        "--value",
        "2a 00 00 00",
    ]);
    let line: serde_json::Value = serde_json::from_str(&run.line(WAIT).expect("a batch")).unwrap();
    assert_eq!(
        line["changes"],
        serde_json::json!([{"change": "changed", "key": ["0x01", "0x00", "0x00", "0x00"], "value": ["0x2a", "0x00", "0x00", "0x00"]}])
    );
    assert!(line["timestamp"].as_u64().is_some_and(|t| t > 0));
    assert_eq!(
        run.exit(WAIT),
        0,
        "--count 1 ends after one batch: {}",
        run.stderr()
    );
}
