//! bpfmapctl with typed maps: `create --key-type/--value-type`, `--key-json/--value-json`,
//! typed `--json` output, checked against bpftool's formatted view of the same map.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cli_support;

use bpfmap_tests::{names, TestEnv};
use cli_support::{bpftool_json, parse_json, Ctl};
use serde_json::json;

#[tokio::test]
async fn typed_maps_from_the_command_line() {
    let Some(t) = TestEnv::start().await else {
        return;
    };
    let ctl = Ctl::new(&t.daemon.unix_addr(), t.fs.tmp());
    let name = names::unique("cflows");
    let key_type = "struct flow { __u32 saddr; __u32 daddr; __u16 sport; __u16 dport; }";
    let value_type = "struct stats { __u64 packets; __u64 bytes; char comm[16]; }";
    let shown = parse_json(&ctl.ok(&[
        "--json",
        "map",
        "create",
        &name,
        "--type",
        "hash",
        "--entries",
        "8",
        "--key-type",
        key_type,
        "--value-type",
        value_type,
    ]));
    assert_eq!(shown["bytes_key"], json!(12));
    assert_eq!(shown["bytes_value"], json!(32));
    assert_eq!(shown["key_type"], json!(key_type));
    assert_eq!(shown["value_type"], json!(value_type));
    let text = ctl.ok(&["map", "show", &name]);
    assert!(text.contains(&format!("\tkey_type {key_type}\n")), "{text}");

    let key = r#"{"saddr":16777343,"daddr":33554559,"sport":53,"dport":4000}"#;
    let value = r#"{"packets":3,"bytes":18446744073709551615,"comm":"dig"}"#;
    ctl.ok(&[
        "map",
        "update",
        &name,
        "--key-json",
        key,
        "--value-json",
        value,
    ]);
    let got = parse_json(&ctl.ok(&["--json", "map", "lookup", &name, "--key-json", key]));
    assert_eq!(
        got,
        json!({"key": parse_json(key), "value": parse_json(value)})
    );
    // Plain output keeps bpftool's hex for the value.
    let plain = ctl.ok(&["map", "lookup", &name, "--key-json", key]);
    assert!(plain.starts_with(&format!("key: {key}\n")), "{plain}");
    assert!(plain.contains("03 00 00 00 00 00 00 00"), "{plain}");

    let dump = parse_json(&ctl.ok(&["--json", "map", "dump", &name]));
    assert_eq!(
        dump,
        json!([{"key": parse_json(key), "value": parse_json(value)}])
    );
    // The same as bpftool's formatted view of the pin.
    let pin = t.fs.root().join(&name);
    let theirs = bpftool_json(&["map", "dump", "pinned", &pin.to_string_lossy()]);
    assert_eq!(dump[0], theirs[0]["formatted"]);

    let next = parse_json(&ctl.ok(&["--json", "map", "getnext", &name]));
    assert_eq!(next, json!({"key": null, "next_key": parse_json(key)}));

    // Errors name the field; the exit code says the daemon refused.
    let err = ctl.remote_err(
        &[
            "map",
            "update",
            &name,
            "--key-json",
            key,
            "--value-json",
            r#"{"packets":1,"bytes":2}"#,
        ],
        "INVALID_ARGUMENT",
    );
    assert!(err.contains("value.comm: missing"), "{err}");
    ctl.ok(&["map", "delete", &name, "--key-json", key]);
    assert_eq!(
        parse_json(&ctl.ok(&["--json", "map", "dump", &name])),
        json!([])
    );
}
