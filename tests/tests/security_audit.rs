//! The audit trail (issue 4): every mutation and every denial is logged with the caller's
//! identity (`uid:N`, `anonymous`, ...), the map id, the RPC and the result, in text and,
//! with `--log-format json`, as one JSON object per line with `caller`, `rpc` and `map`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use bpfmap_tests::api::pb::{DeleteMapRequest, Format, MapType, UpdateRequest};
use bpfmap_tests::api::*;
use bpfmap_tests::daemon::log_lines_with;
use bpfmap_tests::peer::Peer;
use bpfmap_tests::policy::{PolicyEnv, Rule};
use bpfmap_tests::{names, DaemonOptions};
use serde_json::Value;

/// What the tests do, and what the log must show afterwards.
struct Done {
    /// Map written by root (Update), read-only for uid 65534 and anonymous callers.
    a: u32,
    /// Map uid 65534 may not read.
    s: u32,
    /// Map created and deleted by root.
    b: u32,
}

fn hex_of_u32(n: u32) -> String {
    n.to_ne_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

async fn scenario(json: bool) -> Option<(PolicyEnv, Done)> {
    let a_name = names::unique("aa");
    let rules = [
        Rule::root_all(),
        Rule::allow(&["uid:65534"], &[&format!("name:{a_name}")], &["read"]),
        Rule::allow(&["anonymous"], &[&format!("name:{a_name}")], &["read"]),
    ];
    let mut opts = DaemonOptions {
        tcp: true,
        ..Default::default()
    };
    if json {
        opts.extra_args = vec!["--log-format".into(), "json".into()];
    }
    let mut e = PolicyEnv::start(&rules, opts).await?;
    let c = &mut e.t.client;
    let a = create(c, create_req(MapType::Hash, &a_name, 4, 8, 8))
        .await
        .id;
    update(c, by_id(a), num(1), num(10)).await;
    let s = create(c, create_req(MapType::Hash, &names::unique("as"), 4, 8, 8))
        .await
        .id;
    let b = create(c, create_req(MapType::Hash, &names::unique("ab"), 4, 8, 8))
        .await
        .id;
    c.delete_map(DeleteMapRequest { map: by_id(b) })
        .await
        .unwrap();

    // Denials: uid 65534 writes A and reads S; an anonymous TCP caller writes A.
    let k = hex_of_u32(1);
    let ops = [
        format!("update id:{a} {k} {k}{k}"),
        format!("lookup id:{s} {k}"),
    ];
    let ops: Vec<&str> = ops.iter().map(String::as_str).collect();
    let r = Peer::nobody().run(&e.t.daemon, &ops);
    r[0].assert_code("PermissionDenied", &[]);
    r[1].assert_code("PermissionDenied", &[]);
    let mut tcp = e.t.daemon.tcp_client().await;
    assert!(tcp
        .update(UpdateRequest {
            map: by_id(a),
            key: num(1),
            value: num(2),
            ..Default::default()
        })
        .await
        .is_err());
    // A successful read by the peer is not a mutation: no need to log it (not asserted).
    lookup(&mut tcp, by_id(a), num(1), Format::Number)
        .await
        .unwrap();
    // Logs are written asynchronously.
    let _ =
        e.t.daemon
            .wait_log(&["anonymous", "Update"], Duration::from_secs(3))
            .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    Some((e, Done { a, s, b }))
}

#[tokio::test]
async fn text_log_names_caller_map_rpc_and_result() {
    let Some((e, d)) = scenario(false).await else {
        return;
    };
    let log = e.t.daemon.log();
    let has = |words: &[&str], what: &str| {
        assert!(
            !log_lines_with(&log, words).is_empty(),
            "no log line for {what} (with {words:?}):\n{log}"
        );
    };
    let (a, s, b) = (d.a.to_string(), d.s.to_string(), d.b.to_string());
    has(&["uid:0", "CreateMap", &a], "root's CreateMap");
    has(&["uid:0", "Update", &a], "root's Update");
    has(&["uid:0", "DeleteMap", &b], "root's DeleteMap");
    has(
        &["uid:65534", "Update", &a, "denied"],
        "uid 65534's refused Update",
    );
    has(
        &["uid:65534", "Lookup", &s, "denied"],
        "uid 65534's refused Lookup",
    );
    has(
        &["anonymous", "Update", &a, "denied"],
        "the anonymous refused Update",
    );
}

/// Field `name` of a tracing JSON line: top level, or under `fields` / `span`.
fn field<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    v.get(name)
        .or_else(|| v.get("fields").and_then(|f| f.get(name)))
        .or_else(|| v.get("span").and_then(|f| f.get(name)))
}

fn text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

#[tokio::test]
async fn json_log_has_caller_rpc_and_map_fields() {
    let Some((e, d)) = scenario(true).await else {
        return;
    };
    let log = e.t.daemon.log();
    let mut objects = Vec::new();
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|err| panic!("a log line is not JSON ({err}): {line}\n{log}"));
        assert!(v.is_object(), "{line}");
        objects.push(v);
    }
    let find = |caller: &str, rpc: &str, map: u32, denied: bool| {
        objects.iter().any(|v| {
            text(field(v, "caller")).contains(caller)
                && text(field(v, "rpc")) == rpc
                && text(field(v, "map")) == map.to_string()
                && (!denied || v.to_string().to_lowercase().contains("denied"))
        })
    };
    for (caller, rpc, map, denied) in [
        ("uid:0", "CreateMap", d.a, false),
        ("uid:0", "Update", d.a, false),
        ("uid:0", "DeleteMap", d.b, false),
        ("uid:65534", "Update", d.a, true),
        ("uid:65534", "Lookup", d.s, true),
        ("anonymous", "Update", d.a, true),
    ] {
        assert!(
            find(caller, rpc, map, denied),
            "no JSON line with caller {caller}, rpc {rpc}, map {map}{}:\n{log}",
            if denied { ", denied" } else { "" }
        );
    }
}
