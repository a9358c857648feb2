//! Policy reloads (issue 4): on a file change and on SIGHUP, while clients hammer reads; no
//! call fails except those the new policy denies, an in-flight dump survives a reload that
//! denies its map, a broken file at reload keeps the old policy (and the log says so), and a
//! broken file at start stops the daemon with the line and the reason.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bpfmap_tests::api::pb::{DumpRequest, Format, MapType};
use bpfmap_tests::api::*;
use bpfmap_tests::daemon::{log_lines_with, run_expecting_exit};
use bpfmap_tests::policy::{render, PolicyEnv, PolicyFile, Rule};
use bpfmap_tests::{bins, names, Bpffs, Daemon, DaemonOptions};
use tonic::Code;

/// One Lookup made by a hammer task.
#[derive(Debug, Clone)]
struct Call {
    /// Index of the map in the hammer's list.
    map: usize,
    start: Instant,
    end: Instant,
    /// None: success; else the code and message.
    err: Option<(Code, String)>,
}

/// Tasks that Lookup key 1 of each map in turn, each on its own connection, until stopped.
struct Hammer {
    stop: Arc<AtomicBool>,
    /// Per map: successes and PERMISSION_DENIED answers so far (any task).
    ok: Arc<Vec<AtomicU64>>,
    denied: Arc<Vec<AtomicU64>>,
    tasks: Vec<tokio::task::JoinHandle<Vec<Call>>>,
}

impl Hammer {
    async fn start(daemon: &Daemon, maps: &[u32], tasks: usize) -> Hammer {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(maps.iter().map(|_| AtomicU64::new(0)).collect::<Vec<_>>());
        let denied = Arc::new(maps.iter().map(|_| AtomicU64::new(0)).collect::<Vec<_>>());
        let mut handles = Vec::new();
        for _ in 0..tasks {
            let mut c = daemon.client().await;
            let (stop, ok, denied) = (stop.clone(), ok.clone(), denied.clone());
            let maps = maps.to_vec();
            handles.push(tokio::spawn(async move {
                let mut calls = Vec::new();
                let mut i = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let m = i % maps.len();
                    i += 1;
                    let start = Instant::now();
                    let r = lookup(&mut c, by_id(maps[m]), num(1), Format::Number).await;
                    let end = Instant::now();
                    let err = match r {
                        Ok(_) => {
                            ok[m].fetch_add(1, Ordering::Relaxed);
                            None
                        }
                        Err(s) => {
                            if s.code() == Code::PermissionDenied {
                                denied[m].fetch_add(1, Ordering::Relaxed);
                            }
                            Some((s.code(), s.message().to_owned()))
                        }
                    };
                    calls.push(Call {
                        map: m,
                        start,
                        end,
                        err,
                    });
                }
                calls
            }));
        }
        Hammer {
            stop,
            ok,
            denied,
            tasks: handles,
        }
    }

    fn ok(&self, m: usize) -> u64 {
        self.ok[m].load(Ordering::Relaxed)
    }

    fn denied(&self, m: usize) -> u64 {
        self.denied[m].load(Ordering::Relaxed)
    }

    /// Waits up to `timeout` for `cond`.
    async fn until(&self, timeout: Duration, what: &str, cond: impl Fn(&Hammer) -> bool) {
        let deadline = Instant::now() + timeout;
        while !cond(self) {
            assert!(Instant::now() < deadline, "timed out waiting for: {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the tasks; every task's calls, in order.
    async fn finish(self) -> Vec<Vec<Call>> {
        self.stop.store(true, Ordering::Relaxed);
        let mut out = Vec::new();
        for t in self.tasks {
            out.push(t.await.unwrap());
        }
        out
    }
}

/// A hash map u32 → u64 holding 1 → 10, named `name`.
async fn map(c: &mut Client, name: &str) -> u32 {
    let info = create(c, create_req(MapType::Hash, name, 4, 8, 8)).await;
    update(c, by_id(info.id), num(1), num(10)).await;
    info.id
}

/// Every failure is a PERMISSION_DENIED of a Lookup needing read, on a map in `deniable`.
fn only_denials(tasks: &[Vec<Call>], deniable: &[usize]) {
    for calls in tasks {
        for c in calls {
            if let Some((code, msg)) = &c.err {
                assert!(
                    deniable.contains(&c.map),
                    "a call on map #{} failed: {code:?} {msg}",
                    c.map
                );
                assert_eq!(*code, Code::PermissionDenied, "{msg}");
                assert!(msg.contains("Lookup") && msg.contains("read"), "{msg}");
            }
        }
    }
}

#[tokio::test]
async fn reloads_on_change_and_on_sighup_under_load() {
    let Some(mut e) = PolicyEnv::start(&[Rule::root_all()], DaemonOptions::default()).await else {
        return;
    };
    let (a_name, b_name, c_name) = (
        names::unique("ra"),
        names::unique("rb"),
        names::unique("rc"),
    );
    let a = map(&mut e.t.client, &a_name).await;
    let b = map(&mut e.t.client, &b_name).await;
    // 2048 × 4 KiB: a dump of it outlasts HTTP/2 flow control while its reader waits.
    let big = create(
        &mut e.t.client,
        create_req(MapType::Array, &c_name, 4, 4096, 2048),
    )
    .await
    .id;
    let hammer = Hammer::start(&e.t.daemon, &[a, b], 4).await;
    hammer
        .until(Duration::from_secs(5), "first reads", |h| {
            h.ok(0) > 20 && h.ok(1) > 20
        })
        .await;

    // A dump of the big map, in flight across the reload that denies it.
    let mut dc = e.t.daemon.client().await;
    let mut stream = dc
        .dump(DumpRequest {
            map: by_id(big),
            format: Format::Raw as i32,
            batch_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut dumped = stream.message().await.unwrap().unwrap().entries.len();

    // Reload 1: the file changes (atomic rename).
    let deny_b_c = [
        Rule::root_all(),
        Rule::deny(&["uid:0"], &[&format!("name:{b_name}")], &["read"]),
        Rule::deny(&["uid:0"], &[&format!("name:{c_name}")], &["read"]),
    ];
    e.policy.rewrite(&deny_b_c);
    hammer
        .until(
            Duration::from_secs(5),
            "B denied after the file changed",
            |h| h.denied(1) > 0,
        )
        .await;
    let a_ok = hammer.ok(0);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        hammer.ok(0) > a_ok + 20,
        "reads of A stalled after the reload"
    );
    // The in-flight dump completes, whole.
    while let Some(m) = stream.message().await.unwrap() {
        dumped += m.entries.len();
    }
    assert_eq!(dumped, 2048, "the in-flight dump lost entries");
    // A new read of the big map is refused.
    assert_status(
        lookup(&mut dc, by_id(big), num(1), Format::Raw).await,
        Code::PermissionDenied,
        &["Lookup", "read"],
    );

    // Reload 2: same size, same mtime, then SIGHUP: the names denied are changed to names no
    // map has, so B is allowed again.
    let v3: Vec<Rule> = deny_b_c
        .iter()
        .map(|r| {
            let mut r = r.clone();
            for m in &mut r.maps {
                *m = m.replace(&b_name, &"q".repeat(b_name.len()));
                *m = m.replace(&c_name, &"q".repeat(c_name.len()));
            }
            r
        })
        .collect();
    let t_v3 = Instant::now();
    e.policy.overwrite_keeping_mtime(&render(&v3));
    e.t.daemon.sighup();
    let b_ok = hammer.ok(1);
    hammer
        .until(Duration::from_secs(5), "B readable after SIGHUP", |h| {
            h.ok(1) > b_ok
        })
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let tasks = hammer.finish().await;
    only_denials(&tasks, &[1]);
    let total: usize = tasks.iter().map(Vec::len).sum();
    assert!(total > 200, "the hammer made only {total} calls");
    // Once a task saw B denied, B stays denied for it until the second reload began.
    for calls in &tasks {
        let Some(first_denied) = calls.iter().find(|c| c.map == 1 && c.err.is_some()) else {
            continue;
        };
        let fd = first_denied.end;
        let bad: Vec<&Call> = calls
            .iter()
            .filter(|c| c.map == 1 && c.err.is_none() && c.start > fd && c.end < t_v3)
            .collect();
        assert!(
            bad.is_empty(),
            "B read again between reloads: {:?}",
            bad.first()
        );
    }
    // The big map is readable again too.
    let v = lookup(&mut dc, by_id(big), num(1), Format::Raw)
        .await
        .unwrap();
    assert_eq!(bytes_of(&v.value).len(), 4096);
}

#[tokio::test]
async fn a_broken_file_at_reload_keeps_the_old_policy() {
    let b_name = names::unique("kb");
    let v1 = [
        Rule::root_all(),
        Rule::deny(&["uid:0"], &[&format!("name:{b_name}")], &["read"]),
    ];
    let Some(mut e) = PolicyEnv::start(&v1, DaemonOptions::default()).await else {
        return;
    };
    let a = map(&mut e.t.client, &names::unique("ka")).await;
    let b = map(&mut e.t.client, &b_name).await;
    let hammer = Hammer::start(&e.t.daemon, &[a, b], 3).await;
    hammer
        .until(Duration::from_secs(5), "first reads", |h| {
            h.ok(0) > 20 && h.denied(1) > 20
        })
        .await;
    let keeping = |d: &Daemon| log_lines_with(&d.log(), &["policy", "keeping"]).len();
    assert_eq!(keeping(&e.t.daemon), 0, "{}", e.t.daemon.log());

    // A TOML syntax error (line 4), on a file change and again on SIGHUP.
    e.policy
        .rewrite_text("[[rule]]\nwho = [\"uid:0\"]\nmaps = [\"all\"]\nallow = [read]\n");
    let deadline = Instant::now() + Duration::from_secs(5);
    while keeping(&e.t.daemon) == 0 {
        assert!(
            Instant::now() < deadline,
            "no log line says the broken policy was refused and the old one kept:\n{}",
            e.t.daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let line = log_lines_with(&e.t.daemon.log(), &["policy", "keeping"]).remove(0);
    assert!(
        line.contains("line 4"),
        "the log line does not name line 4: {line}"
    );
    let n = keeping(&e.t.daemon);
    e.t.daemon.sighup();
    let deadline = Instant::now() + Duration::from_secs(5);
    while keeping(&e.t.daemon) == n {
        assert!(
            Instant::now() < deadline,
            "SIGHUP with a broken policy logged nothing:\n{}",
            e.t.daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A well-formed file that names an unknown access kind (line 5).
    e.policy.rewrite_text(
        "# v2\n[[rule]]\nwho = [\"uid:0\"]\nmaps = [\"all\"]\nallow = [\"read\", \"fly\"]\n",
    );
    let n = keeping(&e.t.daemon);
    let deadline = Instant::now() + Duration::from_secs(5);
    while keeping(&e.t.daemon) == n {
        assert!(
            Instant::now() < deadline,
            "an invalid policy at reload logged nothing:\n{}",
            e.t.daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let lines = log_lines_with(&e.t.daemon.log(), &["policy", "keeping", "fly"]);
    assert!(
        !lines.is_empty(),
        "the log does not say why (fly):\n{}",
        e.t.daemon.log()
    );
    // The old policy is still in force: A readable, B denied (not a fallback policy).
    let (ok_a, den_b) = (hammer.ok(0), hammer.denied(1));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(hammer.ok(0) > ok_a + 10 && hammer.denied(1) > den_b + 10);

    // A good file again: B becomes readable.
    let t_fixed = Instant::now();
    e.policy.rewrite(&[Rule::root_all()]);
    let b_ok = hammer.ok(1);
    hammer
        .until(Duration::from_secs(5), "B readable after the fix", |h| {
            h.ok(1) > b_ok
        })
        .await;
    let tasks = hammer.finish().await;
    only_denials(&tasks, &[1]);
    for calls in &tasks {
        for c in calls {
            assert!(
                !(c.map == 1 && c.err.is_none() && c.end < t_fixed),
                "B was readable while a broken policy was in the file"
            );
        }
    }
}

/// Starts bpfmapd with `--policy <file holding text>` and expects it to exit non-zero within
/// 10 s; returns its output.
fn refused_at_start(text: &str) -> String {
    let fs = Bpffs::new();
    let policy = PolicyFile::with_text(text);
    let dir = tempfile::tempdir().unwrap();
    let mut args: Vec<std::ffi::OsString> = vec![
        "--listen".into(),
        format!("unix:{}", dir.path().join("s.sock").display()).into(),
        "--bpffs-root".into(),
        fs.root().into(),
    ];
    args.extend(policy.args().into_iter().map(Into::into));
    let (status, out) = run_expecting_exit(&bins::bpfmapd(), &args, Duration::from_secs(10));
    let status =
        status.unwrap_or_else(|| panic!("bpfmapd started with the policy:\n{text}\n{out}"));
    assert!(!status.success(), "exit 0 with a bad policy:\n{out}");
    out
}

#[tokio::test]
async fn a_bad_policy_at_start_stops_the_daemon_naming_the_line() {
    if !bpfmap_tests::require_bpf() {
        return;
    }
    let good = "# header\n[[rule]]\nwho = [\"uid:0\"]\nmaps = [\"all\"]\nallow = [\"read\"]\n";
    // (text, line, a word of the reason)
    let cases: Vec<(String, usize, &str)> = vec![
        (good.replace("[\"read\"]", "[read]"), 5, ""),
        (
            good.replace("\"uid:0\"", "\"uid:0\", \"bogus:1\""),
            3,
            "bogus",
        ),
        (good.replace("\"uid:0\"", "\"uid:abc\""), 3, "abc"),
        (good.replace("\"all\"", "\"path:/x\""), 4, "path"),
        (good.replace("\"read\"", "\"fly\""), 5, "fly"),
        (
            format!("{good}\n[[rule]]\nwho = [\"any\"]\nmaps = [\"id:x\"]\ndeny = [\"write\"]\n"),
            9,
            "id:x",
        ),
    ];
    for (text, line, word) in cases {
        let out = refused_at_start(&text);
        assert!(
            out.contains(&format!("line {line}")),
            "the error does not name line {line}:\n{text}\n---\n{out}"
        );
        assert!(
            out.contains(word),
            "the error does not say {word:?}:\n{out}"
        );
    }
    // A missing file names the path.
    let fs = Bpffs::new();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.toml");
    let args: Vec<std::ffi::OsString> = vec![
        "--listen".into(),
        format!("unix:{}", dir.path().join("s.sock").display()).into(),
        "--bpffs-root".into(),
        fs.root().into(),
        "--policy".into(),
        missing.clone().into(),
    ];
    let (status, out) = run_expecting_exit(&bins::bpfmapd(), &args, Duration::from_secs(10));
    assert!(status.is_some_and(|s| !s.success()), "{out}");
    assert!(out.contains(&missing.display().to_string()), "{out}");
}
