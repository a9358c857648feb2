//! `bpfmapctl map dump` / `map load` round trips (JSON lines and raw snapshots) into fresh
//! maps that bpftool confirms identical, refused inputs, and several `--server`s at once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cli_support;

use std::fmt::Write as _;

use bpfmap_tests::{kernel, names, TestEnv};
use cli_support::{bpftool_json, parse_json, sorted_entries, Ctl};

async fn start() -> Option<(TestEnv, Ctl)> {
    let t = TestEnv::start().await?;
    let ctl = Ctl::new(&t.daemon.unix_addr(), t.fs.tmp());
    Some((t, ctl))
}

fn create(ctl: &Ctl, name: &str, ty: &str, key: u32, value: u32, entries: u32) {
    let (k, v, n) = (key.to_string(), value.to_string(), entries.to_string());
    ctl.ok(&[
        "map",
        "create",
        name,
        "--type",
        ty,
        "--key-size",
        &k,
        "--value-size",
        &v,
        "--entries",
        &n,
    ]);
}

fn bpftool_dump(t: &TestEnv, name: &str) -> Vec<String> {
    sorted_entries(&bpftool_json(&[
        "map",
        "dump",
        "pinned",
        &t.fs.pin(name).to_string_lossy(),
    ]))
}

fn hex_json(bytes: &[u8]) -> String {
    let items: Vec<String> = bytes.iter().map(|b| format!("\"0x{b:02x}\"")).collect();
    format!("[{}]", items.join(","))
}

/// A JSON-lines file of `n` entries of a 4-byte-key, 8-byte-value map.
fn jsonl(n: u32) -> String {
    let mut s = String::new();
    for i in 0..n {
        let v = u64::from(i) * 1_000_003;
        writeln!(
            s,
            "{{\"key\":{},\"value\":{}}}",
            hex_json(&i.to_ne_bytes()),
            hex_json(&v.to_ne_bytes())
        )
        .unwrap();
    }
    s
}

#[tokio::test]
async fn dump_load_round_trips_json_and_raw() {
    let Some((t, ctl)) = start().await else {
        return;
    };
    const N: u32 = 3000;
    let src = names::unique("rts");
    create(&ctl, &src, "hash", 4, 8, 4096);
    let seed = t.fs.tmp().join("seed.jsonl");
    std::fs::write(&seed, jsonl(N)).unwrap();
    assert_eq!(
        ctl.ok(&["map", "load", &src, "--input", "seed.jsonl"]),
        format!("Loaded {N} elements\n")
    );
    let reference = bpftool_dump(&t, &src);
    assert_eq!(reference.len(), N as usize);
    let k = kernel::KernelMap::from_pin(&t.fs.pin(&src));
    assert_eq!(
        k.lookup(&7u32.to_ne_bytes()),
        Some((7u64 * 1_000_003).to_ne_bytes().to_vec())
    );

    // JSON lines.
    assert_eq!(
        ctl.ok(&["map", "dump", &src, "--format", "json", "--output", "d.jsonl"]),
        format!("Wrote {N} elements to d.jsonl\n")
    );
    let text = std::fs::read_to_string(t.fs.tmp().join("d.jsonl")).unwrap();
    assert_eq!(text.lines().count(), N as usize);
    assert!(text.lines().all(|l| l.starts_with("{\"key\":[\"0x")));
    let dst = names::unique("rtj");
    create(&ctl, &dst, "hash", 4, 8, 4096);
    assert_eq!(
        ctl.ok(&["map", "load", &dst, "--input", "d.jsonl", "--format", "json"]),
        format!("Loaded {N} elements\n")
    );
    assert_eq!(bpftool_dump(&t, &dst), reference);

    // Raw snapshot: header, then key+value records.
    let out = ctl.ok(&["-j", "map", "dump", &src, "-f", "raw", "-o", "d.bin"]);
    assert_eq!(parse_json(&out)["elements"], serde_json::json!(N));
    let raw = std::fs::read(t.fs.tmp().join("d.bin")).unwrap();
    assert_eq!(&raw[..8], b"BPFMRAW1");
    assert_eq!(
        u64::from_le_bytes(raw[32..40].try_into().unwrap()),
        u64::from(N)
    );
    assert_eq!(raw.len(), 40 + N as usize * 12);
    let dst = names::unique("rtr");
    create(&ctl, &dst, "hash", 4, 8, 4096);
    // The format is detected from the magic.
    assert_eq!(
        ctl.ok(&["map", "load", &dst, "--input", "d.bin"]),
        format!("Loaded {N} elements\n")
    );
    assert_eq!(bpftool_dump(&t, &dst), reference);

    // JSON lines on standard output equal the file.
    let stdout = ctl.ok(&["map", "dump", &src, "--format", "json"]);
    let mut a: Vec<&str> = stdout.lines().collect();
    let mut b: Vec<&str> = text.lines().collect();
    a.sort_unstable();
    b.sort_unstable();
    assert_eq!(a, b);
}

#[tokio::test]
async fn per_cpu_round_trip() {
    let Some((t, ctl)) = start().await else {
        return;
    };
    let cpus = kernel::possible_cpus();
    let src = names::unique("rtpc");
    create(&ctl, &src, "percpu_hash", 4, 12, 64);
    let k = kernel::KernelMap::from_pin(&t.fs.pin(&src));
    for i in 0..40u32 {
        let values: Vec<Vec<u8>> = (0..cpus)
            .map(|c| {
                let mut v = vec![0u8; 12];
                v[..4].copy_from_slice(&i.to_ne_bytes());
                v[4..8].copy_from_slice(&(c as u32).to_ne_bytes());
                v[11] = 0xee;
                v
            })
            .collect();
        k.update_percpu(&i.to_ne_bytes(), &values);
    }
    let reference = bpftool_dump(&t, &src);
    for (format, file) in [("raw", "pc.bin"), ("json", "pc.jsonl")] {
        ctl.ok(&["map", "dump", &src, "--format", format, "--output", file]);
        let dst = names::unique("rtpd");
        create(&ctl, &dst, "percpu_hash", 4, 12, 64);
        assert_eq!(
            ctl.ok(&["map", "load", &dst, "--input", file]),
            "Loaded 40 elements\n"
        );
        assert_eq!(bpftool_dump(&t, &dst), reference, "{format}");
    }
    // Raw header: per-CPU stride = round_up(12, 8) * cpus.
    let raw = std::fs::read(t.fs.tmp().join("pc.bin")).unwrap();
    assert_eq!(
        u32::from_le_bytes(raw[16..20].try_into().unwrap()) as usize,
        16 * cpus
    );
    assert_eq!(
        u32::from_le_bytes(raw[20..24].try_into().unwrap()) as usize,
        cpus
    );
}

#[tokio::test]
async fn load_reads_a_bpftool_json_dump() {
    let Some((t, ctl)) = start().await else {
        return;
    };
    let src = names::unique("bts");
    create(&ctl, &src, "hash", 2, 2, 8);
    ctl.ok(&["map", "update", &src, "--key", "c1 c2", "--value", "a1 a2"]);
    ctl.ok(&["map", "update", &src, "--key", "01 02", "--value", "03 04"]);
    let dump = bpftool_json(&["map", "dump", "pinned", &t.fs.pin(&src).to_string_lossy()]);
    std::fs::write(t.fs.tmp().join("bt.json"), dump.to_string()).unwrap();
    let dst = names::unique("btd");
    create(&ctl, &dst, "hash", 2, 2, 8);
    assert_eq!(
        ctl.ok(&["map", "load", &dst, "-i", "bt.json"]),
        "Loaded 2 elements\n"
    );
    assert_eq!(bpftool_dump(&t, &dst), bpftool_dump(&t, &src));
}

#[tokio::test]
async fn bad_inputs_are_refused_before_writing() {
    let Some((t, ctl)) = start().await else {
        return;
    };
    let src = names::unique("bis");
    create(&ctl, &src, "hash", 4, 8, 64);
    std::fs::write(t.fs.tmp().join("ok.jsonl"), jsonl(10)).unwrap();
    ctl.ok(&["map", "load", &src, "--input", "ok.jsonl"]);
    ctl.ok(&["map", "dump", &src, "-f", "raw", "-o", "s.bin"]);

    let dst = names::unique("bid");
    create(&ctl, &dst, "hash", 4, 4, 64);
    let k = kernel::KernelMap::from_pin(&t.fs.pin(&dst));
    // Sizes differ from the map's.
    let err = ctl.remote_err(
        &["map", "load", &dst, "--input", "s.bin"],
        "INVALID_ARGUMENT",
    );
    assert!(err.contains("s.bin"), "{err}");
    ctl.remote_err(
        &["map", "load", &dst, "--input", "ok.jsonl"],
        "INVALID_ARGUMENT",
    );
    // Truncated snapshot.
    let raw = std::fs::read(t.fs.tmp().join("s.bin")).unwrap();
    std::fs::write(t.fs.tmp().join("cut.bin"), &raw[..raw.len() - 5]).unwrap();
    let same = names::unique("bic");
    create(&ctl, &same, "hash", 4, 8, 64);
    let kc = kernel::KernelMap::from_pin(&t.fs.pin(&same));
    let err = ctl.remote_err(
        &["map", "load", &same, "--input", "cut.bin"],
        "INVALID_ARGUMENT",
    );
    assert!(err.contains("truncated"), "{err}");
    // A bad line: the line number is named.
    let mut text = jsonl(3);
    text.push_str("{\"key\":[\"0x01\"],\"value\":\n");
    std::fs::write(t.fs.tmp().join("bad.jsonl"), text).unwrap();
    let err = ctl.remote_err(
        &["map", "load", &same, "--input", "bad.jsonl"],
        "INVALID_ARGUMENT",
    );
    assert!(err.contains("line 4"), "{err}");
    // Missing file.
    ctl.remote_err(&["map", "load", &same, "--input", "nope.jsonl"], "INTERNAL");
    assert!(
        k.is_empty() && kc.is_empty(),
        "a refused load wrote entries"
    );
    // Unknown map.
    ctl.remote_err(
        &["map", "load", &names::unique("none"), "--input", "ok.jsonl"],
        "NOT_FOUND",
    );
}

#[tokio::test]
async fn several_servers_run_concurrently_under_headers() {
    let Some((a, ctl_a)) = start().await else {
        return;
    };
    let Some((b, _ctl_b)) = start().await else {
        return;
    };
    let (addr_a, addr_b) = (a.daemon.unix_addr(), b.daemon.unix_addr());
    let name = names::unique("fleet");
    let both = Ctl {
        servers: vec![addr_a.clone(), addr_b.clone()],
        cwd: ctl_a.cwd.clone(),
    };
    // The same command creates one map on each daemon (kernel names may repeat).
    let out = both.ok(&[
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
        "4",
    ]);
    let sections: Vec<&str> = out.split("== ").skip(1).collect();
    assert_eq!(sections.len(), 2, "{out}");
    assert!(sections[0].starts_with(&format!("{addr_a} ==\n")), "{out}");
    assert!(sections[1].starts_with(&format!("{addr_b} ==\n")), "{out}");
    assert!(
        out.contains(&a.fs.pin(&name).display().to_string()),
        "{out}"
    );
    assert!(
        out.contains(&b.fs.pin(&name).display().to_string()),
        "{out}"
    );

    let by_pin = format!("pin:{name}");
    Ctl::new(&addr_b, b.fs.tmp()).ok(&[
        "map", "update", &by_pin, "--key", "01 02", "--value", "03 04",
    ]);
    // Each host's output under its header, then one table row per host.
    let out = both.ok(&["map", "dump", &by_pin]);
    let (sections, table) = out.split_once("\n\nHOST ").unwrap_or((&out, ""));
    assert_eq!(
        format!("{sections}\n"),
        format!(
            "== {addr_a} ==\nFound 0 elements\n== {addr_b} ==\nkey: 01 02  value: 03 04\nFound 1 element\n"
        )
    );
    let rows: Vec<&str> = table.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{out}");
    assert!(
        rows[0].starts_with(&addr_a) && rows[0].contains(" ok "),
        "{out}"
    );
    assert!(
        rows[1].starts_with(&addr_b) && rows[1].contains(" ok "),
        "{out}"
    );
    // One file per host with {host}.
    let out = both.ok(&["map", "dump", &by_pin, "-f", "json", "-o", "f-{host}.jsonl"]);
    assert_eq!(out.matches("Wrote ").count(), 2, "{out}");
    let files: Vec<_> = std::fs::read_dir(&ctl_a.cwd)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.starts_with("f-"))
        .collect();
    assert_eq!(files.len(), 2, "{files:?}");

    // An unreachable host fails the run (exit 1) but the others still answer.
    let three = Ctl {
        servers: vec![
            addr_a.clone(),
            "unix:/nonexistent/bpfmapd.sock".into(),
            addr_b.clone(),
        ],
        cwd: ctl_a.cwd.clone(),
    };
    let r = three.run(&["map", "show", &by_pin]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.starts_with("Error: UNAVAILABLE: "), "{r:?}");
    assert_eq!(r.stdout.matches("hash  name").count(), 2, "{r:?}");
    assert!(
        r.stdout
            .contains("== unix:/nonexistent/bpfmapd.sock ==\n== "),
        "{r:?}"
    );
}
