//! Issue 8, desired state: `map sync` converges every host of a namespace fleet to a file's
//! entries, reports the changes per host, and changes nothing when run again. Also times a
//! sync of 100,000 entries across the hosts (printed; run with --nocapture to see it).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fmt::Write as _;
use std::time::Instant;

use bpfmap_client::{Client, Entry, Flag, MapRef};
use bpfmap_tests::lab::Lab;
use bpfmap_tests::names;
use futures::TryStreamExt;

const HOSTS: usize = 3;

fn text(out: &std::process::Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Sync details by host, from the table.
fn details(stdout: &str) -> Vec<(String, String, String)> {
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

fn hex_bytes(b: &[u8]) -> String {
    let parts: Vec<String> = b.iter().map(|x| format!("\"0x{x:02x}\"")).collect();
    format!("[{}]", parts.join(","))
}

/// JSON lines of `n` entries: key i (u32), value i * 3 (u64), as `map dump --format json`.
fn jsonl(n: u32) -> String {
    let mut s = String::with_capacity(n as usize * 120);
    for i in 0..n {
        let _ = writeln!(
            s,
            "{{\"key\":{},\"value\":{}}}",
            hex_bytes(&i.to_ne_bytes()),
            hex_bytes(&(u64::from(i) * 3).to_ne_bytes())
        );
    }
    s
}

/// Creates the map on every host (through the Unix sockets) and returns clients to them.
async fn create_everywhere(lab: &Lab, name: &str, max: u32) -> Vec<Client> {
    let mut clients = Vec::new();
    for h in &lab.hosts {
        let c = Client::connect(&h.daemon.unix_addr())
            .await
            .expect("connect");
        c.create_map(bpfmap_client::CreateMap::hash(name, 4, 8, max))
            .await
            .expect("create");
        clients.push(c);
    }
    clients
}

async fn contents(c: &Client, name: &str) -> Vec<(u32, u64)> {
    let d = c.dump(MapRef::pin(name)).await.expect("dump");
    let mut all: Vec<(u32, u64)> = d
        .map_ok(|e: Entry| {
            let k = u32::from_ne_bytes(e.key[..4].try_into().unwrap_or_default());
            let v = e.value.into_single().unwrap_or_default();
            (k, u64::from_ne_bytes(v[..8].try_into().unwrap_or_default()))
        })
        .try_collect()
        .await
        .expect("dump entries");
    all.sort_unstable();
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_converges_every_host_and_a_second_run_changes_nothing() {
    let Some(lab) = Lab::start(HOSTS).await else {
        return;
    };
    let name = names::unique("sync");
    let clients = create_everywhere(&lab, &name, 256).await;
    // Host 0 empty; host 1: 10 wrong values and 5 keys not in the file; host 2 already right.
    let map = MapRef::pin(name.as_str());
    let wrong = (0u32..10).map(|i| Entry::new(i.to_ne_bytes(), 999u64.to_ne_bytes()));
    let extra = (500u32..505).map(|i| Entry::new(i.to_ne_bytes(), 1u64.to_ne_bytes()));
    clients[1]
        .batch_update(&map, wrong.chain(extra), Flag::Any)
        .await
        .expect("seed 1");
    let right = (0u32..100).map(|i| Entry::new(i.to_ne_bytes(), (u64::from(i) * 3).to_ne_bytes()));
    clients[2]
        .batch_update(&map, right, Flag::Any)
        .await
        .expect("seed 2");

    let input = lab.dir().join("desired.jsonl");
    std::fs::write(&input, jsonl(100)).expect("write the input");
    let servers = lab.servers_file(&[]);
    let sync = |extra: &[&str]| {
        let mut args = vec![
            "--servers-file",
            servers.to_str().unwrap_or_default(),
            "map",
            "sync",
            name.as_str(),
            "--input",
            input.to_str().unwrap_or_default(),
        ];
        args.extend_from_slice(extra);
        lab.ctl(&args)
    };

    // A dry run reports and changes nothing.
    let out = sync(&["--prune", "--dry-run"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("Would sync: inserted 100, updated 0, deleted 0, unchanged 0"),
        "{stdout}"
    );
    assert_eq!(contents(&clients[0], &name).await.len(), 0);

    let out = sync(&["--prune"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let got: Vec<(String, String)> = details(&stdout)
        .into_iter()
        .map(|(_, r, d)| (r, d))
        .collect();
    let ok = |d: &str| ("ok".to_owned(), d.to_owned());
    assert_eq!(
        got,
        vec![
            ok("inserted 100, updated 0, deleted 0, unchanged 0"),
            ok("inserted 90, updated 10, deleted 5, unchanged 0"),
            ok("inserted 0, updated 0, deleted 0, unchanged 100"),
        ],
        "{stdout}"
    );
    let want: Vec<(u32, u64)> = (0u32..100).map(|i| (i, u64::from(i) * 3)).collect();
    for c in &clients {
        assert_eq!(contents(c, &name).await, want);
    }

    // Again: nothing changes anywhere.
    let out = sync(&["--prune"]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    for (_, r, d) in details(&stdout) {
        assert_eq!(
            (r.as_str(), d.as_str()),
            ("ok", "inserted 0, updated 0, deleted 0, unchanged 100"),
            "{stdout}"
        );
    }

    // Without --prune, keys not in the file stay and are reported.
    clients[0]
        .update_pod::<u32, u64>(&map, &7777, &1, Flag::Any)
        .await
        .expect("add");
    let out = sync(&[]);
    let (stdout, _) = text(&out);
    assert!(
        stdout.contains("unchanged 100, 1 not in the input kept (no --prune)"),
        "{stdout}"
    );
    assert_eq!(contents(&clients[0], &name).await.len(), 101);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_of_100k_entries_across_the_namespace_hosts_is_timed() {
    const N: u32 = 100_000;
    let Some(lab) = Lab::start(HOSTS).await else {
        return;
    };
    let name = names::unique("sync100k");
    let clients = create_everywhere(&lab, &name, N + 1000).await;
    let input = lab.dir().join("desired.jsonl");
    std::fs::write(&input, jsonl(N)).expect("write the input");
    let input = input.to_str().unwrap_or_default().to_owned();
    let servers = lab.servers_file(&[]);
    let all = servers.to_str().unwrap_or_default().to_owned();
    let one = lab.dir().join("one.txt");
    let first_line = std::fs::read_to_string(&servers)
        .unwrap_or_default()
        .lines()
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    std::fs::write(&one, format!("{first_line}\n")).expect("write one-host file");
    let one = one.to_str().unwrap_or_default().to_owned();
    let timed = |file: &str, verb: &[&str]| {
        let mut args = vec!["--servers-file", file, "map"];
        args.extend_from_slice(verb);
        let started = Instant::now();
        let out = lab.ctl(&args);
        let secs = started.elapsed().as_secs_f64();
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
        (secs, stdout)
    };
    let sync = ["sync", name.as_str(), "--input", input.as_str(), "--prune"];
    let (t_one, _) = timed(&one, &sync);
    let (t_all, stdout) = timed(&all, &sync);
    let rows = details(&stdout);
    assert_eq!(rows.len(), HOSTS);
    assert_eq!(
        rows[0].2,
        format!("inserted 0, updated 0, deleted 0, unchanged {N}")
    );
    for r in &rows[1..] {
        assert_eq!(
            r.2,
            format!("inserted {N}, updated 0, deleted 0, unchanged 0"),
            "{stdout}"
        );
    }
    let (t_again, stdout) = timed(&all, &sync);
    assert!(details(&stdout)
        .iter()
        .all(|r| r.2.starts_with("inserted 0, updated 0, deleted 0")));
    let out_tmpl = format!("{}/d-{{host}}.jsonl", lab.dir().display());
    let dump = [
        "dump",
        name.as_str(),
        "--format",
        "json",
        "--output",
        out_tmpl.as_str(),
    ];
    let (t_dump, _) = timed(&all, &dump);
    for c in &clients {
        assert_eq!(contents(c, &name).await.len(), N as usize);
    }
    println!(
        "sync of {N} entries (bpfmapctl in the hub namespace, mTLS): one host (all inserts) {t_one:.2} s; \
         {HOSTS} hosts (host 0 unchanged, {} hosts all inserts) {t_all:.2} s; \
         {HOSTS} hosts again (no change) {t_again:.2} s; dump of {HOSTS} hosts to JSON files {t_dump:.2} s",
        HOSTS - 1
    );
}
