//! Issue 8, fleet: three daemons, each in its own network namespace with its own bpffs and
//! mutual-TLS certificates (its own CA), driven from a hub namespace by the library's
//! `Fleet` and by `bpfmapctl --servers-file`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use bpfmap_client::{CreateMap, Flag, Fleet, MapRef};
use bpfmap_tests::lab::Lab;
use bpfmap_tests::names;
use futures::TryStreamExt;

const HOSTS: usize = 3;

/// stdout and stderr of a finished command.
pub fn text(out: &std::process::Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The table rows of a fleet run's stdout: (host, result, detail).
pub fn rows(stdout: &str) -> Vec<(String, String, String)> {
    let table = stdout.rsplit_once("\nHOST ").map_or("", |(_, t)| t);
    table
        .lines()
        .skip(1)
        .map(|l| {
            let mut w = l.split_whitespace();
            let host = w.next().unwrap_or("").to_owned();
            let result = w.next().unwrap_or("").to_owned();
            let _time = w.next();
            (host, result, w.collect::<Vec<_>>().join(" "))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn library_fleet_update_and_dump_reach_every_host_and_a_stopped_host_is_reported() {
    let Some(mut lab) = Lab::start(HOSTS).await else {
        return;
    };
    let name = names::unique("fleet");
    let (hosts, n) = (lab.fleet_hosts(), name.clone());
    let dumps = lab
        .run_in_hub(move || async move {
            let fleet = Fleet::from_hosts(hosts).concurrency(2);
            let pin = MapRef::pin(n.as_str());
            let created = fleet
                .run(|c| {
                    let n = n.clone();
                    async move { c.create_map(CreateMap::hash(&n, 4, 8, 64)).await }
                })
                .await;
            assert!(created.iter().all(|r| r.is_ok()), "{created:?}");
            let updated = fleet
                .run(|c| {
                    let pin = pin.clone();
                    async move { c.update_pod::<u32, u64>(pin, &7, &49, Flag::Any).await }
                })
                .await;
            assert!(updated.iter().all(|r| r.is_ok()), "{updated:?}");
            fleet
                .run(|c| {
                    let pin = pin.clone();
                    async move { c.dump(pin).await?.try_collect::<Vec<_>>().await }
                })
                .await
        })
        .await;
    assert_eq!(dumps.len(), HOSTS);
    for (r, h) in dumps.iter().zip(&lab.hosts) {
        assert_eq!(r.host, h.url());
        let entries = r.result.as_ref().expect("every host answers the dump");
        assert_eq!(entries.len(), 1, "{}: {entries:?}", r.host);
        assert_eq!(entries[0].key, 7u32.to_ne_bytes());
        // Each daemon pinned its own map on its own bpffs.
        assert!(h.fs.pin(&name).exists(), "{}", h.fs.pin(&name).display());
    }

    // One daemon stopped: the others succeed, the stopped one is reported, fast.
    lab.hosts[1].daemon.kill9();
    let stopped = lab.hosts[1].url();
    let (hosts, n) = (lab.fleet_hosts(), name.clone());
    let started = Instant::now();
    let results = lab
        .run_in_hub(move || async move {
            Fleet::from_hosts(hosts)
                .deadline(Some(Duration::from_secs(10)))
                .run(|c| {
                    let n = n.clone();
                    async move { c.lookup_pod::<u32, u64>(MapRef::pin(n), &7).await }
                })
                .await
        })
        .await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(results.len(), HOSTS);
    for r in &results {
        if r.host == stopped {
            let err = r.result.as_ref().expect_err("the stopped host fails");
            assert!(err.is_unavailable(), "{err}");
        } else {
            assert_eq!(
                r.result.as_ref().ok(),
                Some(&49),
                "{}: {:?}",
                r.host,
                r.result
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_fleet_prints_a_table_per_host_and_exits_1_when_a_host_fails() {
    let Some(mut lab) = Lab::start(HOSTS).await else {
        return;
    };
    let servers = lab.servers_file(&[]);
    let servers = servers.to_str().expect("utf-8 path");
    let name = names::unique("fleetcli");
    let pin = format!("pin:{name}");
    let run = |lab: &Lab, args: &[&str]| {
        let mut all = vec!["--servers-file", servers];
        all.extend_from_slice(args);
        lab.ctl(&all)
    };
    let out = run(
        &lab,
        &[
            "map",
            "create",
            &name,
            "--type",
            "hash",
            "--key-size",
            "2",
            "--value-size",
            "2",
            "--entries",
            "8",
        ],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let table = rows(&stdout);
    let want: Vec<String> = lab.hosts.iter().map(|h| h.url()).collect();
    assert_eq!(
        table.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
        want,
        "{stdout}"
    );
    assert!(table.iter().all(|r| r.1 == "ok"), "{stdout}");

    let out = run(
        &lab,
        &["map", "update", &pin, "--key", "01 02", "--value", "03 04"],
    );
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let out = run(&lab, &["map", "dump", &pin]);
    let (stdout, _) = text(&out);
    for h in &lab.hosts {
        assert!(
            stdout.contains(&format!(
                "== {} ==\nkey: 01 02  value: 03 04\nFound 1 element\n",
                h.url()
            )),
            "{stdout}"
        );
    }

    // Host 2 stopped: exit 1, its row names the failure, the others are fine.
    lab.hosts[2].daemon.kill9();
    let out = run(
        &lab,
        &["--deadline", "10", "map", "lookup", &pin, "--key", "01 02"],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    let table = rows(&stdout);
    assert_eq!(table.len(), HOSTS, "{stdout}");
    assert_eq!(
        (table[0].1.as_str(), table[1].1.as_str()),
        ("ok", "ok"),
        "{stdout}"
    );
    assert_eq!(table[2].0, lab.hosts[2].url());
    assert_eq!(table[2].1, "UNAVAILABLE", "{stdout}");
    assert!(stderr.contains(&lab.hosts[2].url()), "{stderr}");
    assert_eq!(stdout.matches("value: 03 04").count(), 2, "{stdout}");

    // --json: one object with a row per host.
    let out = run(&lab, &["--json", "map", "show", &pin]);
    let (stdout, _) = text(&out);
    let last = stdout.lines().last().unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(last).expect("the summary is JSON");
    let ok: Vec<bool> = v["hosts"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|h| h["ok"].as_bool().unwrap_or(true))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(ok, vec![true, true, false], "{stdout}");
}

#[test]
fn namespaces_are_deleted_even_when_a_test_fails() {
    if !bpfmap_tests::require_bpf() {
        return;
    }
    let made = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = made.clone();
    let failed = std::thread::spawn(move || {
        let ns = bpfmap_tests::netns::Namespaces::new(2);
        if let Ok(mut m) = seen.lock() {
            m.push(ns.hub.clone());
            m.extend(ns.hosts.iter().cloned());
        }
        panic!("a fleet test failing on purpose (its namespaces must still go)");
    })
    .join();
    assert!(failed.is_err());
    let out = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    let list = String::from_utf8_lossy(&out.stdout);
    let made = made.lock().map(|m| m.clone()).unwrap_or_default();
    assert_eq!(made.len(), 3);
    for name in made {
        assert!(!list.contains(&name), "{name} left behind:\n{list}");
    }
}
