//! Typed records: ReadEvents with FORMAT_JSON decodes each record with `record_type`, a type
//! of the BTF of the program that writes the map (`struct event` of events.bpf.c, compiled
//! with -g) or a C declaration; and Watch with FORMAT_JSON on a map with BTF types.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use bpfmap_tests::api::pb::{change::Kind, Format, MapType, ReadEventsRequest};
use bpfmap_tests::api::*;
use bpfmap_tests::live::watch;
use bpfmap_tests::{names, EventsProgram, TestEnv};
use serde_json::json;
use tonic::Code;

const WAIT: Duration = Duration::from_secs(10);

fn typed(map: u32, record_type: &str) -> ReadEventsRequest {
    ReadEventsRequest {
        map: by_id(map),
        format: Format::Json as i32,
        record_type: record_type.into(),
    }
}

#[tokio::test]
async fn records_decode_with_a_type_of_the_programs_btf_or_a_declaration() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let prog = EventsProgram::load();
    // A name: found in the BTF of the program that uses the ring.
    let mut by_name = t
        .client
        .read_events(typed(prog.ring_id(), "struct event"))
        .await
        .unwrap()
        .into_inner();
    // A declaration, on the perf array (whose samples carry 4 bytes of padding).
    let mut by_decl = t
        .client
        .read_events(typed(
            prog.perf_id(),
            "struct rec { __u64 seq; __u32 len; __u16 index; __u16 hi; }",
        ))
        .await
        .unwrap()
        .into_inner();
    prog.send([41, 42]);
    for seq in [41, 42] {
        let e = tokio::time::timeout(WAIT, by_name.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(
            json_of(&e.data),
            json!({"seq": seq, "len": 32, "index": 0}),
            "struct event from the program's BTF"
        );
        let e = tokio::time::timeout(WAIT, by_decl.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(e.cpu.is_some());
        assert_eq!(
            json_of(&e.data),
            json!({"seq": seq, "len": 32, "index": 0, "hi": 0})
        );
    }
}

#[tokio::test]
async fn record_types_that_do_not_fit_are_refused_with_the_reason() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let prog = EventsProgram::load();
    let r = t
        .client
        .read_events(typed(prog.ring_id(), "struct nosuch"))
        .await;
    assert_status(
        r,
        Code::InvalidArgument,
        &["no type", "struct nosuch", "declaration"],
    );
    let r = t
        .client
        .read_events(typed(prog.ring_id(), "struct broken { __u64 }"))
        .await;
    assert_status(r, Code::InvalidArgument, &["record_type"]);
    let r = t
        .client
        .read_events(ReadEventsRequest {
            record_type: "struct event".into(),
            ..typed(prog.ring_id(), "")
        })
        .await;
    assert!(r.is_ok());
    let r = t
        .client
        .read_events(ReadEventsRequest {
            format: Format::Hex as i32,
            ..typed(prog.ring_id(), "struct event")
        })
        .await;
    assert_status(r, Code::InvalidArgument, &["record_type", "FORMAT_JSON"]);
    // A type larger than the records: the stream says so at the first record.
    let mut big = t
        .client
        .read_events(typed(prog.ring_id(), "struct big { char bytes[64]; }"))
        .await
        .unwrap()
        .into_inner();
    prog.send([1]);
    let r = tokio::time::timeout(WAIT, big.message()).await.unwrap();
    assert_status(
        r,
        Code::InvalidArgument,
        &["16 bytes", "shorter", "64 bytes"],
    );
}

#[tokio::test]
async fn watch_speaks_json_for_maps_with_btf_types() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let mut req = create_req(MapType::Hash, &names::unique("wtyped"), 0, 0, 8);
    req.key_type = "__u32".into();
    req.value_type = "struct stats { __u64 packets; char comm[8]; }".into();
    let info = create(&mut t.client, req).await;
    t.client
        .update(bpfmap_tests::api::pb::UpdateRequest {
            map: by_id(info.id),
            key: json("1"),
            value: json(r#"{"packets": 3, "comm": "dig"}"#),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut w = watch(&mut t.client, by_id(info.id), Format::Json, 200).await;
    let snap = w.message().await.unwrap().unwrap();
    assert!(snap.initial);
    assert_eq!(json_of(&snap.changes[0].key), json!(1));
    assert_eq!(
        json_of(&snap.changes[0].value),
        json!({"packets": 3, "comm": "dig"})
    );
    t.client
        .update(bpfmap_tests::api::pb::UpdateRequest {
            map: by_id(info.id),
            key: json("1"),
            value: json(r#"{"packets": 4, "comm": "dig"}"#),
            ..Default::default()
        })
        .await
        .unwrap();
    let msg = tokio::time::timeout(WAIT, w.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let c = &msg.changes[0];
    assert_eq!(Kind::try_from(c.kind).unwrap(), Kind::Changed);
    assert_eq!(json_of(&c.value), json!({"packets": 4, "comm": "dig"}));
    // A map without BTF types: FORMAT_JSON is refused up front.
    let plain = create(
        &mut t.client,
        create_req(MapType::Hash, &names::unique("wplain"), 4, 4, 8),
    )
    .await;
    let r = t
        .client
        .watch(bpfmap_tests::api::pb::WatchRequest {
            map: by_id(plain.id),
            format: Format::Json as i32,
            interval_ms: 0,
        })
        .await;
    assert_status(r, Code::InvalidArgument, &["BTF"]);
}
