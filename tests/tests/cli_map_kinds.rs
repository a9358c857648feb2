//! `bpfmapctl` end to end on the map kinds with their own verbs and layouts: per-CPU maps
//! (`value (CPU NN)` lines, `--cpu-value`), queues, stacks and bloom filters (push, pop,
//! peek, lookup --value), and pins and freezing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cli_support;

use bpfmap_tests::{bpftool, kernel, names, TestEnv};
use cli_support::{bpftool_json, bpftool_text, parse_json, Ctl};
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

#[tokio::test]
async fn per_cpu_maps() {
    let Some((t, ctl)) = start().await else {
        return;
    };
    let cpus = kernel::possible_cpus();
    let name = names::unique("clipc");
    create(&ctl, &name, "percpu_array", 4, 4, 2);
    let p = t.fs.pin(&name).to_string_lossy().into_owned();

    // One --value goes to every CPU.
    ctl.ok(&[
        "map",
        "update",
        &name,
        "--key",
        "00 00 00 00",
        "--value",
        "05 00 00 00",
    ]);
    // --cpu-value: one per CPU.
    let per_cpu: Vec<String> = (0..cpus).map(|c| format!("{c:02x} 00 00 00")).collect();
    let mut args = vec!["map", "update", &name, "--key", "01 00 00 00"];
    for v in &per_cpu {
        args.extend(["--cpu-value", v]);
    }
    ctl.ok(&args);

    let dump = ctl.ok(&["map", "dump", &name]);
    assert_eq!(dump, bpftool_text(&["map", "dump", "pinned", &p]));
    let mut expect = "key:\n01 00 00 00\n".to_string();
    for (c, v) in per_cpu.iter().enumerate() {
        expect.push_str(&format!("value (CPU {c:02}): {v}\n"));
    }
    assert_eq!(ctl.ok(&["map", "lookup", &name, "--key-num", "1"]), expect);
    assert_eq!(
        parse_json(&ctl.ok(&["-j", "map", "dump", &name])),
        bpftool_json(&["map", "dump", "pinned", &p])
    );
    let j = parse_json(&ctl.ok(&["-j", "map", "lookup", &name, "--key-num", "0"]));
    assert_eq!(j["values"].as_array().map(Vec::len), Some(cpus));
    assert_eq!(j["values"][cpus - 1]["cpu"], json!(cpus - 1));
    assert_eq!(
        j["values"][0]["value"],
        json!(["0x05", "0x00", "0x00", "0x00"])
    );
    // Too few per-CPU values.
    if cpus > 1 {
        ctl.remote_err(
            &[
                "map",
                "update",
                &name,
                "--key-num",
                "0",
                "--cpu-value",
                "01000000",
            ],
            "INVALID_ARGUMENT",
        );
    }
}

#[tokio::test]
async fn queue_stack_and_bloom_filter() {
    let Some((_t, ctl)) = start().await else {
        return;
    };
    let q = names::unique("cliq");
    let out = ctl.ok(&[
        "map",
        "create",
        &q,
        "--type",
        "queue",
        "--value-size",
        "4",
        "--entries",
        "4",
        "--ephemeral",
    ]);
    assert!(
        out.contains(&format!(
            ": queue  name {q}  flags 0x0\n\tkey 0B  value 4B  max_entries 4\n"
        )),
        "{out}"
    );
    assert!(!out.contains("pinned"), "ephemeral maps have no pin: {out}");
    assert_eq!(ctl.ok(&["map", "push", &q, "--value", "01 02 03 04"]), "");
    ctl.ok(&["map", "push", &q, "--value", "05060708"]);
    assert_eq!(ctl.ok(&["map", "peek", &q]), "value: 01 02 03 04\n");
    assert_eq!(
        parse_json(&ctl.ok(&["-j", "map", "peek", &q])),
        json!({"key": [], "value": ["0x01", "0x02", "0x03", "0x04"]})
    );
    assert_eq!(ctl.ok(&["map", "pop", &q]), "value: 01 02 03 04\n");
    assert_eq!(ctl.ok(&["map", "pop", &q]), "value: 05 06 07 08\n");
    ctl.remote_err(&["map", "pop", &q], "NOT_FOUND");
    ctl.remote_err(&["map", "peek", &q], "NOT_FOUND");

    let s = names::unique("clis");
    ctl.ok(&[
        "map",
        "create",
        &s,
        "--type",
        "stack",
        "--value-size",
        "4",
        "--entries",
        "4",
        "--ephemeral",
    ]);
    ctl.ok(&["map", "push", &s, "--value-num", "1"]);
    ctl.ok(&["map", "push", &s, "--value-num", "2"]);
    let two = format!(
        "value: {}\n",
        bpfmap_proto::hex::format(&2u32.to_ne_bytes())
    );
    assert_eq!(ctl.ok(&["map", "pop", &s]), two);

    let b = names::unique("clib");
    ctl.ok(&[
        "map",
        "create",
        &b,
        "--type",
        "bloom_filter",
        "--value-size",
        "4",
        "--entries",
        "64",
        "--map-extra",
        "3",
        "--ephemeral",
    ]);
    assert_eq!(ctl.ok(&["map", "push", &b, "--value", "de ad be ef"]), "");
    assert_eq!(
        ctl.ok(&["map", "lookup", &b, "--value", "de ad be ef"]),
        "value: de ad be ef\n"
    );
    ctl.remote_err(
        &["map", "lookup", &b, "--value", "01 02 03 04"],
        "NOT_FOUND",
    );
}

#[tokio::test]
async fn pin_unpin_freeze() {
    let Some((t, ctl)) = start().await else {
        return;
    };
    let name = names::unique("clip");
    create(&ctl, &name, "hash", 4, 4, 4);
    let extra = format!("{name}_b");
    assert_eq!(ctl.ok(&["map", "pin", &name, &extra]), "");
    let extra_pin = t.fs.pin(&extra);
    assert!(extra_pin.exists());
    assert_eq!(bpftool::show_pinned(&extra_pin).name, name);
    let show = ctl.ok(&["map", "show", &name]);
    assert!(
        show.contains(&format!("\tpinned {}\n", extra_pin.display())),
        "{show}"
    );
    ctl.remote_err(&["map", "pin", &name, &extra], "ALREADY_EXISTS");
    assert_eq!(ctl.ok(&["map", "unpin", &extra]), "");
    assert!(!extra_pin.exists());
    ctl.remote_err(&["map", "unpin", &extra], "NOT_FOUND");

    ctl.ok(&["map", "update", &name, "--key-num", "1", "--value-num", "1"]);
    assert_eq!(ctl.ok(&["map", "freeze", &name]), "");
    let show = ctl.ok(&["map", "show", &name]);
    assert!(show.contains("\n\tfrozen\n"), "{show}");
    assert_eq!(
        parse_json(&ctl.ok(&["-j", "map", "show", &name]))["frozen"],
        json!(1)
    );
    ctl.remote_err(
        &["map", "update", &name, "--key-num", "2", "--value-num", "1"],
        "FAILED_PRECONDITION",
    );
    // Reads still work.
    assert!(ctl
        .ok(&["map", "dump", &name])
        .ends_with("Found 1 element\n"));
}
