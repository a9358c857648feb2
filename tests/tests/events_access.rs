//! ReadEvents and Watch under the security model: both are `read` access (plus `admin` for
//! maps the daemon does not manage, as every call), checked for a peer that really runs as
//! uid 65534; both count against --max-streams-per-identity while they are open.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use bpfmap_tests::api::pb::{Format, MapType, ReadEventsRequest, WatchRequest};
use bpfmap_tests::api::*;
use bpfmap_tests::live::{next_batch, read_events, watch};
use bpfmap_tests::peer::Peer;
use bpfmap_tests::policy::{PolicyEnv, Rule};
use bpfmap_tests::{names, DaemonOptions, EventsProgram, TestEnv};
use tonic::Code;

#[tokio::test]
async fn live_streams_need_read_access_and_admin_on_foreign_maps() {
    let rules = [
        Rule::root_all(),
        Rule::allow(&["uid:65534"], &["pin:public/*"], &["read"]),
        Rule::allow(&["uid:65534"], &["name:ev_perf"], &["read"]),
        Rule::allow(&["uid:65534"], &["name:ev_ring"], &["read", "admin"]),
    ];
    let Some(mut e) = PolicyEnv::start(&rules, DaemonOptions::default()).await else {
        return;
    };
    let c = &mut e.t.client;
    let public = names::unique("pubw");
    let mut req = create_req(MapType::Hash, &public, 4, 8, 8);
    req.pin = format!("public/{public}");
    let pubm = create(c, req).await;
    update(c, by_id(pubm.id), num(1), num(10)).await;
    let secret = create(
        c,
        create_req(MapType::Hash, &names::unique("secw"), 4, 8, 8),
    )
    .await;
    let prog = EventsProgram::load();

    let ops = [
        format!("watch pin:public/{public}"),
        format!("watch id:{}", secret.id),
        format!("events id:{}", prog.ring_id()),
        format!("events id:{}", prog.perf_id()),
        format!("events id:{}", secret.id),
    ];
    let ops: Vec<&str> = ops.iter().map(String::as_str).collect();
    let r = Peer::nobody().run(&e.t.daemon, &ops);
    assert_eq!(r[0].assert_ok().text, "n=1");
    r[1].assert_code("PermissionDenied", &["Watch", "read"]);
    r[2].assert_ok();
    // Foreign map (the program's): read alone is not enough.
    r[3].assert_code("PermissionDenied", &["ReadEvents", "admin"]);
    r[4].assert_code("PermissionDenied", &["ReadEvents", "read"]);
    let log =
        e.t.daemon
            .wait_log(&["denied", "Watch", "uid:65534"], Duration::from_secs(5))
            .await;
    assert!(log.is_some(), "the denial is in the audit log");
}

#[tokio::test]
async fn live_streams_count_against_the_per_identity_cap() {
    let opts = DaemonOptions {
        extra_args: vec!["--max-streams-per-identity".into(), "2".into()],
        ..Default::default()
    };
    let Some(mut t) = TestEnv::start_with(opts).await else {
        return;
    };
    let prog = EventsProgram::load();
    let info = create(
        &mut t.client,
        create_req(MapType::Hash, &names::unique("wcap"), 4, 4, 4),
    )
    .await;
    let mut w = watch(&mut t.client, by_id(info.id), Format::Raw, 0).await;
    assert!(
        next_batch(&mut w, Duration::from_secs(5))
            .await
            .unwrap()
            .initial
    );
    let ev = read_events(&mut t.client, by_id(prog.ring_id()), Format::Raw).await;
    let r = t
        .client
        .watch(WatchRequest {
            map: by_id(info.id),
            ..Default::default()
        })
        .await;
    assert_status(r, Code::ResourceExhausted, &["--max-streams-per-identity"]);
    let r = t
        .client
        .read_events(ReadEventsRequest {
            map: by_id(prog.perf_id()),
            ..Default::default()
        })
        .await;
    assert_status(r, Code::ResourceExhausted, &["--max-streams-per-identity"]);
    // A stream that ends gives its slot back.
    drop(ev);
    let mut slot_back = false;
    for _ in 0..50 {
        let r = t
            .client
            .read_events(ReadEventsRequest {
                map: by_id(prog.perf_id()),
                ..Default::default()
            })
            .await;
        if r.is_ok() {
            slot_back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(slot_back, "the slot of a closed stream came back");
    drop(w);
}
