//! Issue 8, configuration file: `--config FILE` carries every flag; the file and the same
//! flags make daemons that behave alike; flags win over the file; a bad file stops the daemon
//! with its line.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::ffi::OsString;
use std::time::Duration;

use bpfmap_client::{Client, CreateMap};
use bpfmap_tests::daemon::{free_loopback_port, run_expecting_exit};
use bpfmap_tests::metrics::get;
use bpfmap_tests::policy::{render, Rule};
use bpfmap_tests::{bins, names, DaemonOptions, TestEnv};

fn print_config(args: &[&str]) -> (Option<i32>, String) {
    let mut argv: Vec<OsString> = args.iter().map(OsString::from).collect();
    argv.push("--print-config".into());
    let (status, out) = run_expecting_exit(&bins::bpfmapd(), &argv, Duration::from_secs(10));
    (status.and_then(|s| s.code()), out)
}

/// Creates maps of `entries` until refused; returns what each attempt gave.
async fn probe_limits(c: &Client) -> Vec<String> {
    let mut seen = Vec::new();
    for entries in [65, 64, 64, 64] {
        let r = c
            .create_map(CreateMap::hash(names::unique("cfg"), 4, 4, entries).ephemeral(true))
            .await;
        seen.push(match r {
            Ok(_) => format!("{entries}: ok"),
            Err(e) => format!("{entries}: {}", bpfmap_client::code_name(e.code())),
        });
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_file_and_the_same_flags_behave_alike() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("policy.toml"), render(&[Rule::root_all()])).expect("policy");
    let (port_a, port_b) = (free_loopback_port(), free_loopback_port());
    let file = dir.path().join("bpfmapd.toml");
    std::fs::write(
        &file,
        format!(
            "# as an operator writes it\nmax-entries-per-map = 64\nmax-maps = 2\n\
             policy = \"policy.toml\"            # relative to this file\n\
             metrics-listen = \"{port_b}\"\nlog-format = \"json\"\n"
        ),
    )
    .expect("config");
    let policy = dir.path().join("policy.toml").display().to_string();
    let flags = |port: std::net::SocketAddr| -> Vec<String> {
        [
            "--max-entries-per-map",
            "64",
            "--max-maps",
            "2",
            "--policy",
            &policy,
            "--metrics-listen",
            &port.to_string(),
            "--log-format",
            "json",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
    };
    // The effective configurations are the same text.
    let file_s = file.display().to_string();
    let (code, from_file) = print_config(&["--config", &file_s]);
    assert_eq!(code, Some(0), "{from_file}");
    let f = flags(port_b);
    let (code, from_flags) = print_config(&f.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, Some(0), "{from_flags}");
    assert_eq!(from_file, from_flags);

    // And two daemons, one from each, behave alike.
    let Some(a) = TestEnv::start_with(DaemonOptions {
        extra_args: flags(port_a),
        ..DaemonOptions::default()
    })
    .await
    else {
        return;
    };
    let Some(b) = TestEnv::start_with(DaemonOptions {
        extra_args: vec!["--config".into(), file_s.clone()],
        ..DaemonOptions::default()
    })
    .await
    else {
        return;
    };
    let ca = Client::connect(&a.daemon.unix_addr()).await.expect("a");
    let cb = Client::connect(&b.daemon.unix_addr()).await.expect("b");
    let (la, lb) = (probe_limits(&ca).await, probe_limits(&cb).await);
    assert_eq!(
        la,
        [
            "65: RESOURCE_EXHAUSTED",
            "64: ok",
            "64: ok",
            "64: RESOURCE_EXHAUSTED"
        ]
    );
    assert_eq!(la, lb);
    for port in [port_a, port_b] {
        let s = get(port, "/metrics").await;
        assert_eq!(s.get("bpfmapd_managed_maps"), 2.0, "{}", s.text);
    }
    for env in [&a, &b] {
        let log = env.daemon.log();
        assert!(
            log.contains(&policy) || log.contains("policy.toml"),
            "{log}"
        );
        assert!(log.lines().any(|l| l.starts_with('{')), "json logs: {log}");
    }
}

#[test]
fn flags_win_over_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("c.toml");
    std::fs::write(
        &file,
        "max-maps = 5\nlisten = [\"unix:/tmp/from-file.sock\"]\nsocket-mode = \"0600\"\n",
    )
    .expect("write");
    let f = file.display().to_string();
    let (code, out) = print_config(&["--config", &f, "--max-maps", "9", "--socket-mode", "0660"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("max-maps = 9\n"), "{out}");
    assert!(out.contains("socket-mode = \"0660\"\n"), "{out}");
    assert!(
        out.contains("listen = [\"unix:/tmp/from-file.sock\"]\n"),
        "{out}"
    );
    // The printed configuration is itself a valid file that gives the same configuration.
    let again = dir.path().join("again.toml");
    std::fs::write(&again, &out).expect("write");
    let (code, out2) = print_config(&["--config", &again.display().to_string()]);
    assert_eq!((code, out2), (Some(0), out));
}

#[test]
fn a_bad_config_file_stops_the_daemon_naming_its_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (text, line, word) in [
        (
            "max-maps = 2\n\nmax-batch-entries = \"many\"\n",
            "line 3",
            "invalid type",
        ),
        (
            "# ok\nlisten = [\"127.0.0.1:1\"]\nmax_maps = 1\n",
            "line 3",
            "unknown field",
        ),
        ("socket-mode = \"0999\"\n", "line 1", "octal"),
        ("[listen\n", "line 1", ""),
    ] {
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, text).expect("write");
        let args: Vec<OsString> = vec!["--config".into(), file.clone().into()];
        let (status, out) = run_expecting_exit(&bins::bpfmapd(), &args, Duration::from_secs(10));
        assert_eq!(status.and_then(|s| s.code()), Some(1), "{text:?}: {out}");
        assert!(
            out.contains(&format!("config file {} {line}", file.display())) && out.contains(word),
            "{text:?}: {out}"
        );
    }
    let (status, out) = run_expecting_exit(
        &bins::bpfmapd(),
        &["--config".into(), "/nonexistent/bpfmapd.toml".into()],
        Duration::from_secs(10),
    );
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{out}");
    assert!(out.contains("/nonexistent/bpfmapd.toml"), "{out}");
}
