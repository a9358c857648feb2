//! `bpfmapctl` end to end against the real daemon: the map verbs on hash maps, bpftool's
//! text and JSON layouts (compared with bpftool's own output on the same kernel map), exit
//! codes and error lines, help and completions. Per-CPU maps, queues, bloom filters, pins:
//! cli_map_kinds.rs; dump/load and several servers: cli_transfer.rs; the README: cli_readme.rs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cli_support;

use bpfmap_tests::{bpftool, kernel, names, TestEnv};
use cli_support::{bpftool_json, bpftool_text, parse_json, run_cmd, sorted_entries, Ctl};
use serde_json::json;

async fn start() -> Option<(TestEnv, Ctl)> {
    let t = TestEnv::start().await?;
    let ctl = Ctl::new(&t.daemon.unix_addr(), t.fs.tmp());
    Some((t, ctl))
}

fn create(ctl: &Ctl, name: &str, ty: &str, key: u32, value: u32, entries: u32) -> String {
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
    ])
}

fn sorted_lines(text: &str) -> Vec<&str> {
    let mut v: Vec<&str> = text.lines().collect();
    v.sort_unstable();
    v
}

#[tokio::test]
async fn create_show_list_rm() {
    let Some((t, ctl)) = start().await else {
        return;
    };
    let name = names::unique("cli");
    let out = create(&ctl, &name, "hash", 2, 2, 8);
    let pin = t.fs.pin(&name);
    let id = bpftool::show_pinned(&pin).id;
    let expected = format!(
        "{id}: hash  name {name}  flags 0x0\n\tkey 2B  value 2B  max_entries 8\n\tpinned {}\n",
        pin.display()
    );
    assert_eq!(out, expected);
    for r in [
        format!("id:{id}"),
        format!("pin:{name}"),
        format!("pin:{}", pin.display()),
        format!("name:{name}"),
        name.clone(),
    ] {
        assert_eq!(ctl.ok(&["map", "show", &r]), expected, "map show {r}");
    }

    // JSON: bpftool -j's fields and values, plus the daemon's pins.
    let j = parse_json(&ctl.ok(&["--json", "map", "show", &name]));
    let b = bpftool_json(&["map", "show", "pinned", &pin.to_string_lossy()]);
    for k in [
        "id",
        "type",
        "name",
        "flags",
        "bytes_key",
        "bytes_value",
        "max_entries",
        "frozen",
    ] {
        assert_eq!(j[k], b[k], "field {k}: {j} vs bpftool {b}");
    }
    assert_eq!(j["pinned"], json!([pin.to_string_lossy()]));
    assert_eq!(j["managed"], json!(true));

    // list: managed maps; --all: the host's too.
    let fname = names::unique("clif");
    let fpin = t.fs.path().join(&fname);
    let foreign = bpftool::create_map(&fpin, "array", 4, 4, 2, &fname, 0);
    let list = ctl.ok(&["map", "list"]);
    assert!(list.contains(&expected), "{list}");
    assert!(!list.contains(&fname), "{list}");
    let all = ctl.ok(&["map", "list", "--all"]);
    assert!(all.contains(&expected), "{all}");
    assert!(
        all.contains(&format!("{}: array  name {fname}  flags 0x0\n", foreign.id)),
        "{all}"
    );
    let jl = parse_json(&ctl.ok(&["-j", "map", "list"]));
    let ids: Vec<u64> = jl
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_u64().unwrap())
        .collect();
    assert!(ids.contains(&u64::from(id)), "{jl}");

    // rm: the pin goes, the map is gone.
    assert_eq!(ctl.ok(&["map", "rm", &name]), "");
    assert!(!pin.exists(), "{} still pinned", pin.display());
    ctl.remote_err(&["map", "show", &name], "NOT_FOUND");
    let other = names::unique("cli");
    create(&ctl, &other, "array", 4, 4, 1);
    assert_eq!(ctl.ok(&["-j", "map", "rm", &other]), "null\n");
}

/// bpftool's classic walkthrough, with bpftool's plain output as the reference.
#[tokio::test]
async fn text_output_matches_bpftool() {
    let Some((t, ctl)) = start().await else {
        return;
    };
    let name = names::unique("stats");
    create(&ctl, &name, "hash", 2, 2, 8);
    let pin = t.fs.pin(&name);
    let p = pin.to_string_lossy().into_owned();

    assert_eq!(
        ctl.ok(&["map", "update", &name, "--key", "c1", "c2", "--value", "a1", "a2"]),
        ""
    );
    let dump = ctl.ok(&["map", "dump", &name]);
    assert_eq!(dump, "key: c1 c2  value: a1 a2\nFound 1 element\n");
    assert_eq!(dump, bpftool_text(&["map", "dump", "pinned", &p]));

    ctl.ok(&[
        "map",
        "update",
        &name,
        "--key",
        "0x01 0x02",
        "--value",
        "0304",
    ]);
    let dump = ctl.ok(&["map", "dump", &name]);
    assert!(dump.ends_with("Found 2 elements\n"), "{dump}");
    assert_eq!(
        sorted_lines(&dump),
        sorted_lines(&bpftool_text(&["map", "dump", "pinned", &p]))
    );

    let lookup = ctl.ok(&["map", "lookup", &name, "--key", "c1", "c2"]);
    assert_eq!(lookup, "key: c1 c2  value: a1 a2\n");
    assert_eq!(
        lookup,
        bpftool_text(&["map", "lookup", "pinned", &p, "key", "0xc1", "0xc2"])
    );

    // getnext: same walk as bpftool's.
    let first = ctl.ok(&["map", "getnext", &name]);
    assert_eq!(first, bpftool_text(&["map", "getnext", "pinned", &p]));
    assert!(first.starts_with("key: None\nnext key:\n"), "{first}");
    let first_key = first.lines().nth(2).unwrap().to_owned();
    let second = ctl.ok(&["map", "getnext", &name, "--key", &first_key]);
    let mut bt = vec!["map", "getnext", "pinned", &p, "key", "hex"];
    bt.extend(first_key.split(' '));
    assert_eq!(second, bpftool_text(&bt));
    assert_eq!(
        second,
        format!(
            "key:\n{first_key}\nnext key:\n{}\n",
            second.lines().nth(3).unwrap()
        )
    );
    let last = second.lines().nth(3).unwrap().to_owned();
    ctl.remote_err(&["map", "getnext", &name, "--key", &last], "NOT_FOUND");

    assert_eq!(ctl.ok(&["map", "delete", &name, "--key", "c1c2"]), "");
    ctl.remote_err(&["map", "lookup", &name, "--key", "c1", "c2"], "NOT_FOUND");
    ctl.remote_err(&["map", "delete", &name, "--key", "c1", "c2"], "NOT_FOUND");
    assert_eq!(
        bpftool_text(&["map", "dump", "pinned", &p]),
        "key: 01 02  value: 03 04\nFound 1 element\n"
    );
}

#[tokio::test]
async fn json_output_matches_bpftool() {
    let Some((t, ctl)) = start().await else {
        return;
    };
    let name = names::unique("clij");
    create(&ctl, &name, "hash", 2, 2, 8);
    let p = t.fs.pin(&name).to_string_lossy().into_owned();
    assert_eq!(
        ctl.ok(&["-j", "map", "update", &name, "--key", "c1 c2", "--value", "a1 a2"]),
        "null\n"
    );
    ctl.ok(&["map", "update", &name, "--key", "01 02", "--value", "03 04"]);

    let dump = parse_json(&ctl.ok(&["-j", "map", "dump", &name]));
    let reference = bpftool_json(&["map", "dump", "pinned", &p]);
    assert_eq!(sorted_entries(&dump), sorted_entries(&reference));
    assert_eq!(
        parse_json(&ctl.ok(&["-j", "map", "lookup", &name, "--key", "c1", "c2"])),
        json!({"key": ["0xc1", "0xc2"], "value": ["0xa1", "0xa2"]})
    );
    assert_eq!(
        parse_json(&ctl.ok(&["-j", "map", "getnext", &name])),
        bpftool_json(&["map", "getnext", "pinned", &p])
    );
    let first = parse_json(&ctl.ok(&["-j", "map", "getnext", &name]))["next_key"].clone();
    let first_hex: Vec<String> = first
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_str().unwrap().to_owned())
        .collect();
    let mut args = vec!["-j", "map", "getnext", &name, "--key"];
    args.extend(first_hex.iter().map(String::as_str));
    let next = parse_json(&ctl.ok(&args));
    assert_eq!(next["key"], first);
    assert!(
        next["next_key"].is_array() && next["next_key"] != first,
        "{next}"
    );
    // -p: the same document, indented.
    let pretty = ctl.ok(&["-p", "map", "dump", &name]);
    assert!(pretty.contains("\n  {\n"), "{pretty}");
    assert_eq!(
        sorted_entries(&parse_json(&pretty)),
        sorted_entries(&reference)
    );
    // Empty map.
    let empty = names::unique("clie");
    create(&ctl, &empty, "hash", 4, 4, 4);
    assert_eq!(ctl.ok(&["-j", "map", "dump", &empty]), "[]\n");
    assert_eq!(ctl.ok(&["map", "dump", &empty]), "Found 0 elements\n");
}

#[tokio::test]
async fn numbers_flags_and_size_errors() {
    let Some((t, ctl)) = start().await else {
        return;
    };
    let name = names::unique("clin");
    create(&ctl, &name, "hash", 4, 8, 4);
    let k = kernel::KernelMap::from_pin(&t.fs.pin(&name));

    ctl.ok(&[
        "map",
        "update",
        &name,
        "--key-num",
        "1",
        "--value-num",
        "42",
    ]);
    assert_eq!(
        k.lookup(&1u32.to_ne_bytes()),
        Some(42u64.to_ne_bytes().to_vec())
    );
    let expect = format!(
        "key: {}  value: {}\n",
        bpfmap_proto::hex::format(&1u32.to_ne_bytes()),
        bpfmap_proto::hex::format(&42u64.to_ne_bytes())
    );
    assert_eq!(ctl.ok(&["map", "lookup", &name, "--key-num", "1"]), expect);
    assert_eq!(
        ctl.ok(&["map", "lookup", &name, "--key-num", "0x1"]),
        expect
    );

    ctl.remote_err(
        &[
            "map",
            "update",
            &name,
            "--key-num",
            "1",
            "--value-num",
            "7",
            "--noexist",
        ],
        "ALREADY_EXISTS",
    );
    ctl.remote_err(
        &[
            "map",
            "update",
            &name,
            "--key-num",
            "2",
            "--value-num",
            "7",
            "--exist",
        ],
        "NOT_FOUND",
    );
    ctl.ok(&[
        "map",
        "update",
        &name,
        "--key-num",
        "1",
        "--value-num",
        "7",
        "--exist",
    ]);
    ctl.ok(&[
        "map",
        "update",
        &name,
        "--key-num",
        "2",
        "--value-num",
        "8",
        "--noexist",
    ]);
    ctl.ok(&[
        "map",
        "update",
        &name,
        "--key-num",
        "3",
        "--value-num",
        "9",
        "--any",
    ]);
    assert_eq!(
        k.lookup(&1u32.to_ne_bytes()),
        Some(7u64.to_ne_bytes().to_vec())
    );
    assert_eq!(k.len(), 3);

    // Wrong sizes: the daemon says INVALID_ARGUMENT, naming both sizes.
    let err = ctl.remote_err(
        &["map", "update", &name, "--key", "01", "--value-num", "1"],
        "INVALID_ARGUMENT",
    );
    assert!(err.contains('4') && err.contains('1'), "{err}");
    ctl.remote_err(
        &["map", "lookup", &name, "--key", "01 02"],
        "INVALID_ARGUMENT",
    );
    // Full map.
    ctl.ok(&["map", "update", &name, "--key-num", "4", "--value-num", "1"]);
    ctl.remote_err(
        &["map", "update", &name, "--key-num", "5", "--value-num", "1"],
        "RESOURCE_EXHAUSTED",
    );
    // Unknown map.
    ctl.remote_err(&["map", "show", "id:4294967295"], "NOT_FOUND");
    ctl.remote_err(
        &["map", "lookup", &names::unique("none"), "--key-num", "1"],
        "NOT_FOUND",
    );
}

#[tokio::test]
async fn usage_errors_exit_2_and_send_nothing() {
    let Some((t, ctl)) = start().await else {
        return;
    };
    let name = names::unique("cliu");
    create(&ctl, &name, "hash", 2, 2, 8);
    for args in [
        vec!["map", "update", &name, "--key", "zz", "--value", "01 02"],
        vec!["map", "update", &name, "--key", "c", "--value", "01 02"],
        vec!["map", "update", &name, "--value", "01 02"],
        vec!["map", "update", &name, "--key", "01 02"],
        vec![
            "map",
            "update",
            &name,
            "--key",
            "01 02",
            "--value",
            "01 02",
            "--exist",
            "--noexist",
        ],
        vec![
            "map",
            "update",
            &name,
            "--key",
            "01 02",
            "--key-num",
            "1",
            "--value",
            "01 02",
        ],
        vec!["map", "lookup", &name],
        vec!["map", "show", "id:x"],
        vec!["map", "show", ""],
        vec!["map", "create", "x", "--type", "nope", "--entries", "1"],
        vec!["map", "create", "x", "--type", "hash", "--entries", "-1"],
        vec!["map", "frobnicate"],
        vec!["map"],
        vec!["--no-such-flag", "map", "list"],
    ] {
        ctl.usage_err(&args);
    }
    let two = Ctl {
        servers: vec![ctl.servers[0].clone(), ctl.servers[0].clone()],
        cwd: ctl.cwd.clone(),
    };
    let err = two.usage_err(&["map", "dump", &name, "--output", "x.jsonl"]);
    assert!(err.contains("{host}"), "{err}");
    assert_eq!(
        bpftool_text(&["map", "dump", "pinned", &t.fs.pin(&name).to_string_lossy()]),
        "Found 0 elements\n"
    );
    // Connection failures are remote errors: exit 1.
    let gone = Ctl::new("unix:/nonexistent/bpfmapd.sock", t.fs.tmp());
    let err = gone.remote_err(&["map", "list"], "UNAVAILABLE");
    assert!(err.contains("/nonexistent/bpfmapd.sock"), "{err}");
}

#[tokio::test]
async fn default_server_from_environment() {
    let Some((t, _ctl)) = start().await else {
        return;
    };
    let name = names::unique("clienv");
    let mut cmd = std::process::Command::new(bpfmap_tests::bins::bpfmapctl());
    cmd.env("BPFMAP_SERVER", t.daemon.unix_addr()).args([
        "map",
        "create",
        &name,
        "--type",
        "array",
        "--key-size",
        "4",
        "--value-size",
        "4",
        "--entries",
        "1",
    ]);
    let r = run_cmd(&mut cmd);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains(&format!("name {name}")), "{r:?}");
}

#[test]
fn every_verb_has_help_with_an_example() {
    let verbs = [
        "list", "show", "create", "update", "lookup", "delete", "getnext", "dump", "load", "push",
        "pop", "peek", "pin", "unpin", "freeze", "rm",
    ];
    let ctl = Ctl::new("unix:/unused.sock", &std::env::temp_dir());
    for verb in verbs {
        let help = ctl.ok(&["map", verb, "--help"]);
        assert!(
            help.contains("Example") && help.contains(&format!("bpfmapctl map {verb}")),
            "map {verb} --help has no example:\n{help}"
        );
    }
    let top = ctl.ok(&["--help"]);
    assert!(top.contains("--server") && top.contains("--json"), "{top}");
}

#[test]
fn completions_for_every_shell() {
    let ctl = Ctl::new("unix:/unused.sock", &std::env::temp_dir());
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let script = ctl.ok(&["completions", shell]);
        assert!(script.contains("bpfmapctl"), "{shell}: {script}");
    }
    assert!(ctl.ok(&["completions", "bash"]).contains("getnext"));
    ctl.usage_err(&["completions", "tcsh"]);
}
