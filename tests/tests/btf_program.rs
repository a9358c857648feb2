//! Typed JSON on the maps of a real BPF program compiled with clang -g
//! (tests/bpf/typed.bpf.c): the program writes struct keys and values, the service shows
//! them by field name, checked against the raw bytes and against bpftool's formatted dump.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bpfmap_tests::api::pb::{Format, GetMapRequest, LookupRequest, UpdateRequest};
use bpfmap_tests::api::*;
use bpfmap_tests::{bpftool, kernel, names, BpfProgram, TestEnv};
use serde_json::{json, Value};

/// 127.0.0.1 as the kernel stores it (network byte order), read as a host u32.
fn localhost() -> u64 {
    u64::from(u32::from_ne_bytes([127, 0, 0, 1]))
}

fn flow_key(prog: &BpfProgram) -> Value {
    json!({
        "saddr": localhost(),
        "daddr": localhost(),
        "sport": prog.tx_addr().port(),
        "dport": prog.rx_addr().port(),
        "proto": 17,
    })
}

/// A datagram whose first 16 bytes are `tag`, NUL-padded (the program copies them to comm).
fn payload(tag: &str, len: usize) -> Vec<u8> {
    let mut p = vec![0u8; len];
    p[..tag.len()].copy_from_slice(tag.as_bytes());
    for (i, b) in p.iter_mut().enumerate().skip(16) {
        *b = b'a' + (i % 26) as u8;
    }
    p
}

/// bpftool prints bitfields as hex strings and pointers as numbers; we print bitfields as
/// numbers and pointers as hex strings. Hex strings become numbers on both sides.
fn normalize(v: &Value) -> Value {
    match v {
        Value::String(s) if s.starts_with("0x") => u64::from_str_radix(&s[2..], 16)
            .map(Value::from)
            .unwrap_or_else(|_| v.clone()),
        Value::Array(a) => Value::Array(a.iter().map(normalize).collect()),
        Value::Object(o) => {
            Value::Object(o.iter().map(|(k, v)| (k.clone(), normalize(v))).collect())
        }
        _ => v.clone(),
    }
}

/// bpftool's formatted (key, value) of every entry of map `id`.
fn bpftool_formatted(id: u32) -> Vec<(Value, Value)> {
    let dump = bpftool::json(&["map", "dump", "id", &id.to_string()]);
    dump.as_array()
        .expect("bpftool dump is an array")
        .iter()
        .map(|e| {
            let f = &e["formatted"];
            assert!(f.is_object(), "bpftool printed no formatted view: {e}");
            (f["key"].clone(), f["value"].clone())
        })
        .collect()
}

fn u16_at(b: &[u8], at: usize) -> u64 {
    u64::from(u16::from_ne_bytes([b[at], b[at + 1]]))
}
fn u32_at(b: &[u8], at: usize) -> u64 {
    u64::from(u32::from_ne_bytes(b[at..at + 4].try_into().unwrap()))
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_ne_bytes(b[at..at + 8].try_into().unwrap())
}

#[tokio::test]
async fn flows_dump_names_every_field_with_what_the_program_wrote() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let prog = BpfProgram::load_typed();
    let id = prog.map_id("flows");
    // skb->len = payload + 8 (UDP header): 108, 68, 1308.
    let p = [
        payload("bpfmap-test", 100),
        payload("bpfmap-test", 60),
        payload("bpfmap-test", 1300),
    ];
    prog.send_payloads(&[&p[0], &p[1], &p[2]]);

    let entries = dump_entries(&mut t.client, by_id(id), Format::Json).await;
    let key = flow_key(&prog);
    let ours: Vec<&pb::Entry> = entries.iter().filter(|e| json_of(&e.key) == key).collect();
    assert_eq!(ours.len(), 1, "one flow for our socket pair in {entries:?}");
    let value = json_of(&ours[0].value);
    assert_eq!(
        value,
        json!({
            "comm": "bpfmap-test",
            "packets": 3,
            "bytes": 108 + 68 + 1308,
            "sizes": {"min": 68, "max": 1308},
            "last": "VERDICT_BIG",
            "is_udp": 1,
            "len_class": 5,
            "reserved": 0,
            "seen": true,
            "delta": 68 - 1308,
        })
    );

    // The same entry in raw bytes, read at the offsets clang laid out.
    let raw = lookup(
        &mut t.client,
        by_id(id),
        json(&key.to_string()),
        Format::Raw,
    )
    .await
    .unwrap();
    let b = bytes_of(&raw.value);
    assert_eq!(b.len(), 48);
    assert_eq!(&b[..16], b"bpfmap-test\0\0\0\0\0");
    assert_eq!(u64_at(&b, 16), value["packets"].as_u64().unwrap());
    assert_eq!(u64_at(&b, 24), value["bytes"].as_u64().unwrap());
    assert_eq!((u16_at(&b, 32), u16_at(&b, 34)), (68, 1308));
    assert_eq!(u32_at(&b, 36), 2, "VERDICT_BIG");
    let bits = u32_at(&b, 40);
    assert_eq!((bits & 1, (bits >> 1) & 7, bits >> 4), (1, 5, 0));
    assert_eq!(b[44], 1);
    assert_eq!(i16::from_ne_bytes([b[46], b[47]]), 68 - 1308);

    // bpftool reads the same fields and values from the kernel.
    let theirs = bpftool_formatted(id);
    let (_, v) = theirs
        .iter()
        .find(|(k, _)| *k == key)
        .expect("our flow in bpftool's dump");
    assert_eq!(normalize(v), normalize(&value));
}

#[tokio::test]
async fn typed_update_and_lookup_round_trip_every_kind() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let prog = BpfProgram::load_typed();
    let id = prog.map_id("kinds");
    let given = json!({
        "u8v": 255, "s8v": -128, "u16v": 65535, "s16v": -32768,
        "u32v": 4294967295u64, "s32v": -2147483648i64,
        "u64v": 18446744073709551615u64, "s64v": -9223372036854775807i64 - 1,
        "name": "kinds", "arr": [1, 2, 65535], "in": {"a": 7, "b": -7},
        "u": {"num": 16909060}, "v": "VERDICT_SMALL",
        "flag_a": 1, "flag_b": 2, "sflag": -3, "ok": true,
        "ptr": "0xffff888012345678", "id": 42, "pad_before": 9,
        "after_pad": 1234567890123u64, "cv": 77,
    });
    update(
        &mut t.client,
        by_id(id),
        json("1"),
        json(&given.to_string()),
    )
    .await;

    let got = lookup(&mut t.client, by_id(id), json("1"), Format::Json)
        .await
        .unwrap();
    let got = json_of(&got.value);
    let union_bytes: Vec<u8> = 16909060u32.to_ne_bytes().to_vec();
    let mut expected = given.clone();
    expected["u"] = json!({"num": 16909060, "bytes": union_bytes});
    assert_eq!(
        got, expected,
        "every field back as written (the union shows each member)"
    );

    // The output is valid input: writing it again changes no byte.
    let before = bytes_of(
        &lookup(&mut t.client, by_id(id), num(1), Format::Raw)
            .await
            .unwrap()
            .value,
    );
    update(&mut t.client, by_id(id), num(1), json(&got.to_string())).await;
    let after = bytes_of(
        &lookup(&mut t.client, by_id(id), num(1), Format::Raw)
            .await
            .unwrap()
            .value,
    );
    assert_eq!(before, after);

    // Offsets from clang's layout: padding is zero, the u64 after it is at 80.
    let b = before;
    assert_eq!(b.len(), 96);
    assert_eq!((b[0], b[1] as i8), (255, -128));
    assert_eq!(u64_at(&b, 16), u64::MAX);
    assert_eq!(&b[32..40], b"kinds\0\0\0");
    assert_eq!(u16_at(&b, 44), 65535);
    assert_eq!(u32_at(&b, 52), 16909060);
    assert_eq!(u32_at(&b, 56), 1, "VERDICT_SMALL");
    assert_eq!(b[60] & 1, 1, "flag_a");
    assert_eq!((b[60] >> 1) & 3, 2, "flag_b");
    assert_eq!((b[60] >> 3) & 7, 0b101, "sflag = -3 in 3 bits");
    assert_eq!(b[61], 1, "ok");
    assert_eq!(u64_at(&b, 64), 0xffff_8880_1234_5678);
    assert_eq!(u32_at(&b, 72), 42);
    assert_eq!(b[76], 9);
    assert_eq!(&b[77..80], &[0, 0, 0], "padding");
    assert_eq!(u64_at(&b, 80), 1234567890123);
    assert_eq!(u32_at(&b, 88), 77);

    // bpftool agrees field by field.
    let theirs = bpftool_formatted(id);
    let (_, v) = theirs
        .iter()
        .find(|(k, _)| *k == json!(1))
        .expect("index 1 in bpftool's dump");
    // bpftool shows a bitfield's raw bits ("0x5"); we show the signed value -3.
    let mut raw_bits = expected.clone();
    raw_bits["sflag"] = json!(0b101);
    assert_eq!(normalize(v), normalize(&raw_bits));

    // A value that does not fit is refused with the field's path, and nothing changes.
    let mut bad = given.clone();
    bad["in"]["b"] = json!(200);
    let r = t
        .client
        .update(UpdateRequest {
            map: by_id(id),
            key: num(1),
            value: json(&bad.to_string()),
            ..Default::default()
        })
        .await;
    assert_status(
        r,
        tonic::Code::InvalidArgument,
        &["value.in.b: 200 does not fit s8"],
    );
    let still = bytes_of(
        &lookup(&mut t.client, by_id(id), num(1), Format::Raw)
            .await
            .unwrap()
            .value,
    );
    assert_eq!(still, b);
}

#[tokio::test]
async fn per_cpu_values_come_typed_one_per_cpu() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let prog = BpfProgram::load_typed();
    let id = prog.map_id("flow_pcpu");
    let p = payload("pcpu", 50);
    prog.send_payloads(&[&p, &p, &p, &p]);
    let port = prog.rx_addr().port();
    let v = lookup(
        &mut t.client,
        by_id(id),
        json(&port.to_string()),
        Format::Json,
    )
    .await
    .unwrap();
    assert!(v.value.is_none());
    assert_eq!(v.per_cpu_values.len(), kernel::possible_cpus());
    let (mut packets, mut bytes) = (0, 0);
    for d in &v.per_cpu_values {
        let j = json_of(&Some(d.clone()));
        packets += j["packets"].as_u64().expect("packets");
        bytes += j["bytes"].as_u64().expect("bytes");
    }
    assert_eq!((packets, bytes), (4, 4 * 58));

    // Writing per-CPU values as JSON: one per CPU.
    let n = kernel::possible_cpus();
    let values: Vec<pb::Data> = (0..n)
        .map(|cpu| json(&format!(r#"{{"packets":{cpu},"bytes":{}}}"#, cpu * 10)).unwrap())
        .collect();
    t.client
        .update(UpdateRequest {
            map: by_id(id),
            key: json("7"),
            per_cpu_values: values,
            ..Default::default()
        })
        .await
        .unwrap();
    let v = t
        .client
        .lookup(LookupRequest {
            map: by_id(id),
            key: json("7"),
            format: Format::Json as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    for (cpu, d) in v.per_cpu_values.iter().enumerate() {
        assert_eq!(
            json_of(&Some(d.clone())),
            json!({"packets": cpu, "bytes": cpu * 10})
        );
    }
}

#[tokio::test]
async fn map_info_shows_the_c_types_and_they_create_the_same_layout() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let prog = BpfProgram::load_typed();
    let info = t
        .client
        .get_map(GetMapRequest {
            map: by_id(prog.map_id("flows")),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        info.key_type,
        "struct flow_key { __u32 saddr; __u32 daddr; __u16 sport; __u16 dport; __u8 proto; }"
    );
    assert_eq!(
        info.value_type,
        "struct len_range { __u16 min; __u16 max; }; \
         enum verdict { VERDICT_NONE = 0, VERDICT_SMALL = 1, VERDICT_BIG = 2 }; \
         struct flow_stats { char comm[16]; __u64 packets; __u64 bytes; struct len_range sizes; \
         enum verdict last; __u32 is_udp: 1; __u32 len_class: 3; __u32 reserved: 28; \
         _Bool seen; __s16 delta; }"
    );
    let kinds = get(&mut t.client, by_id(prog.map_id("kinds"))).await;
    assert_eq!(kinds.key_type, "__u32");
    for part in [
        "typedef __u32 obj_id_t;",
        "union num_or_bytes { __u32 num; __u8 bytes[4]; };",
        "void *ptr;",
        "__s8 sflag: 3;",
        "obj_id_t id;",
    ] {
        assert!(
            kinds.value_type.contains(part),
            "{part} in {}",
            kinds.value_type
        );
    }

    // What MapInfo prints, CreateMap takes back: the same sizes, the same bytes for the same
    // JSON (bitfields and padding included).
    let mut copies = Vec::new();
    for (src, name) in [("flows", "fcopy"), ("kinds", "kcopy")] {
        let from = get(&mut t.client, by_id(prog.map_id(src))).await;
        let name = names::unique(name);
        let copy = create(
            &mut t.client,
            pb::CreateMapRequest {
                r#type: pb::MapType::Hash as i32,
                name: name.clone(),
                key_type: from.key_type.clone(),
                value_type: from.value_type.clone(),
                max_entries: 4,
                ..Default::default()
            },
        )
        .await;
        assert_eq!(
            (copy.key_size, copy.value_size),
            (from.key_size, from.value_size)
        );
        assert_eq!(
            (copy.key_type.as_str(), copy.value_type.as_str()),
            (from.key_type.as_str(), from.value_type.as_str())
        );
        copies.push(copy);
    }
    let flows = prog.map_id("flows");
    let p = payload("layout", 30);
    prog.send_payloads(&[&p]);
    let entries = dump_entries(&mut t.client, by_id(flows), Format::Json).await;
    let e = entries
        .iter()
        .find(|e| json_of(&e.key) == flow_key(&prog))
        .expect("our flow");
    let raw_value = bytes_of(
        &lookup(&mut t.client, by_id(flows), e.key.clone(), Format::Raw)
            .await
            .unwrap()
            .value,
    );
    let copy = &copies[0];
    update(
        &mut t.client,
        by_id(copy.id),
        e.key.clone(),
        e.value.clone(),
    )
    .await;
    let copied = lookup(&mut t.client, by_id(copy.id), e.key.clone(), Format::Raw)
        .await
        .unwrap();
    assert_eq!(
        bytes_of(&copied.value),
        raw_value,
        "same JSON, same bytes in both maps"
    );
}
