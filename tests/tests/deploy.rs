//! Issue 8, operations: what `deploy/` ships works. The configuration file is valid and is
//! the one the DaemonSet carries; its policy loads; the systemd units pass
//! `systemd-analyze verify`; and the daemon serves a socket passed by socket activation
//! (`systemd-socket-activate`, as `bpfmapd.socket` would) without binding it again.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bpfmap_client::Client;
use bpfmap_tests::daemon::run_expecting_exit;
use bpfmap_tests::{bins, require_bpf, Bpffs, DaemonOptions, TestEnv};

fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo_file(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
}

#[test]
fn the_shipped_configuration_is_valid_and_is_the_daemonsets() {
    let file = repo_file("deploy/bpfmapd.toml");
    let args: Vec<OsString> = vec!["--config".into(), file.into(), "--print-config".into()];
    let (status, out) = run_expecting_exit(&bins::bpfmapd(), &args, Duration::from_secs(10));
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{out}");
    for key in [
        "metrics-listen = \"0.0.0.0:9464\"",
        "tls-client-ca = ",
        "policy = ",
    ] {
        assert!(out.contains(key), "{key}: {out}");
    }
    // The DaemonSet's ConfigMap carries the same two files.
    let ds = read("deploy/kubernetes/bpfmapd.yaml");
    for (key, rel) in [
        ("bpfmapd.toml", "deploy/bpfmapd.toml"),
        ("policy.toml", "deploy/policy.toml"),
    ] {
        let marker = format!("  {key}: |\n");
        let embedded: String = ds
            .split_once(&marker)
            .map(|(_, rest)| {
                rest.lines()
                    .take_while(|l| l.starts_with("    ") || l.is_empty())
                    .map(|l| format!("{}\n", l.strip_prefix("    ").unwrap_or(l)))
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(embedded.trim_end(), read(rel).trim_end(), "{key}");
    }
    for want in [
        "privileged: true",
        "mountPropagation: Bidirectional",
        "path: /run/bpfmapd",
        "hostPort: 50051",
    ] {
        assert!(ds.contains(want), "{want}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_policy_loads() {
    let Some(t) = TestEnv::start_with(DaemonOptions {
        extra_args: vec![
            "--policy".into(),
            repo_file("deploy/policy.toml").display().to_string(),
        ],
        ..DaemonOptions::default()
    })
    .await
    else {
        return;
    };
    let c = Client::connect(&t.daemon.unix_addr())
        .await
        .expect("connect");
    assert!(c.list_maps(false).await.is_ok(), "root keeps full access");
}

#[test]
fn the_systemd_units_verify() {
    let dir = tempfile::tempdir().expect("tempdir");
    let service = read("deploy/systemd/bpfmapd.service").replace(
        "/usr/local/bin/bpfmapd",
        &bins::bpfmapd().display().to_string(),
    );
    std::fs::write(dir.path().join("bpfmapd.service"), service).expect("write");
    std::fs::write(
        dir.path().join("bpfmapd.socket"),
        read("deploy/systemd/bpfmapd.socket"),
    )
    .expect("write");
    let out = Command::new("systemd-analyze")
        .args(["verify", "./bpfmapd.socket", "./bpfmapd.service"])
        .current_dir(dir.path())
        .output()
        .expect("systemd-analyze (scripts/setup.sh installs systemd)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && text.trim().is_empty(), "{text}");
    assert!(read("deploy/systemd/bpfmapd.service")
        .contains("ExecStart=/usr/local/bin/bpfmapd --config /etc/bpfmapd/bpfmapd.toml"));
}

/// Kills the activated daemon on drop.
struct Activated(Child);

impl Drop for Activated {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_passed_by_systemd_is_served_and_not_bound_again() {
    if !require_bpf() {
        return;
    }
    let fs = Bpffs::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let sock = dir.path().join("bpfmapd.sock");
    let log = dir.path().join("bpfmapd.log");
    let logf = std::fs::File::create(&log).expect("log");
    // The same --listen as the socket: covered by the passed socket, so not bound.
    let child = Command::new("systemd-socket-activate")
        .arg("-l")
        .arg(&sock)
        .arg(bins::bpfmapd())
        .arg("--bpffs-root")
        .arg(fs.root())
        .arg("--listen")
        .arg(format!("unix:{}", sock.display()))
        .stdin(Stdio::null())
        .stdout(logf.try_clone().expect("dup"))
        .stderr(logf)
        .env("RUST_LOG", "info")
        .spawn()
        .expect("systemd-socket-activate (scripts/setup.sh installs systemd)");
    let _guard = Activated(child);
    let addr = format!("unix:{}", sock.display());
    let deadline = Instant::now() + Duration::from_secs(20);
    let maps = loop {
        // The first connection starts the daemon, which then accepts it.
        if let Ok(c) = Client::connect(&addr).await {
            if let Ok(Ok(m)) =
                tokio::time::timeout(Duration::from_secs(5), c.list_maps(false)).await
            {
                break m;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no answer: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(maps.is_empty());
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(text.contains("passed by systemd"), "{text}");
    assert!(!text.contains("replacing stale socket"), "{text}");
}
