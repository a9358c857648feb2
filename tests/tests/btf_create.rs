//! Maps created with C-like key_type / value_type: the daemon builds and loads the BTF,
//! the kernel and bpftool see the types, and typed JSON goes in and out of every RPC.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bpfmap_tests::api::pb::{
    BatchDeleteRequest, BatchUpdateRequest, CreateMapRequest, DumpRequest, Entry, Format,
    GetNextKeyRequest, MapType, UpdateRequest,
};
use bpfmap_tests::api::*;
use bpfmap_tests::{bpftool, kernel, names, Daemon, TestEnv};
use serde_json::{json, Value};
use tonic::Code;

const FLOW: &str =
    "struct flow { __u32 saddr; __u32 daddr; __u16 sport; __u16 dport; __u8 proto; }";
const STATS: &str = "struct stats { __u64 packets; __u64 bytes; }; \
     struct flow_val { char comm[16]; struct stats in; struct stats out; __s32 delta; bool seen; }";

fn typed(ty: MapType, name: &str, key: &str, value: &str) -> CreateMapRequest {
    CreateMapRequest {
        r#type: ty as i32,
        name: name.to_owned(),
        key_type: key.to_owned(),
        value_type: value.to_owned(),
        max_entries: 16,
        ..Default::default()
    }
}

/// bpftool's `formatted` key and value of every entry of the map pinned at `pin`.
fn bpftool_formatted(pin: &std::path::Path) -> Vec<(Value, Value)> {
    let dump = bpftool::json(&["map", "dump", "pinned", &pin.to_string_lossy()]);
    dump.as_array()
        .expect("array")
        .iter()
        .map(|e| {
            (
                e["formatted"]["key"].clone(),
                e["formatted"]["value"].clone(),
            )
        })
        .collect()
}

fn sorted(mut v: Vec<(Value, Value)>) -> Vec<(Value, Value)> {
    v.sort_by_key(|(k, _)| k.to_string());
    v
}

#[tokio::test]
async fn created_with_types_bpftool_shows_the_same_fields_and_values() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let name = names::unique("flows");
    let info = create(&mut t.client, typed(MapType::Hash, &name, FLOW, STATS)).await;
    assert_eq!(
        (info.key_size, info.value_size),
        (16, 56),
        "sizes follow from the types"
    );
    assert_ne!(info.btf_id, 0);
    assert_eq!(info.key_type, FLOW);
    assert_eq!(
        info.value_type,
        "struct stats { __u64 packets; __u64 bytes; }; struct flow_val { char comm[16]; struct stats in; struct stats out; __s32 delta; _Bool seen; }"
    );
    let show = bpftool::show_pinned(&t.fs.root().join(&name));
    assert_eq!((show.key_size, show.value_size), (16, 56));
    assert_eq!(show.raw["btf_id"], json!(info.btf_id));

    let mut written = Vec::new();
    for i in 0..5u64 {
        let k = json!({"saddr": 0x0100007f, "daddr": 0x0200007f + i, "sport": 1000 + i, "dport": 53, "proto": 17});
        let v = json!({
            "comm": format!("proc{i}"),
            "in": {"packets": i, "bytes": u64::MAX - i},
            "out": {"packets": i * 2, "bytes": 1u64 << 40},
            "delta": -(i as i64) * 1000,
            "seen": i % 2 == 0,
        });
        update(
            &mut t.client,
            by_name(&name),
            json(&k.to_string()),
            json(&v.to_string()),
        )
        .await;
        written.push((k, v));
    }
    let ours: Vec<(Value, Value)> = dump_entries(&mut t.client, by_name(&name), Format::Json)
        .await
        .iter()
        .map(|e| (json_of(&e.key), json_of(&e.value)))
        .collect();
    let ours = sorted(ours);
    assert_eq!(
        ours,
        sorted(written),
        "the dump gives back what was written"
    );
    assert_eq!(ours, sorted(bpftool_formatted(&t.fs.root().join(&name))));
}

#[tokio::test]
async fn plain_types_keep_64_bit_values_and_arrays_default_to_u32_keys() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let name = names::unique("plain");
    let info = create(&mut t.client, typed(MapType::Array, &name, "", "__u64")).await;
    assert_eq!(
        (info.key_type.as_str(), info.value_type.as_str()),
        ("__u32", "__u64")
    );
    assert_eq!((info.key_size, info.value_size), (4, 8));
    update(
        &mut t.client,
        by_name(&name),
        json("3"),
        json("18446744073709551615"),
    )
    .await;
    let v = lookup(&mut t.client, by_name(&name), json("3"), Format::Json)
        .await
        .unwrap();
    assert_eq!(
        v.value,
        Some(pb::Data {
            form: Some(pb::data::Form::Json("18446744073709551615".into()))
        }),
        "exactly, not through a float"
    );
    let v = lookup(&mut t.client, by_name(&name), num(3), Format::Number)
        .await
        .unwrap();
    assert_eq!(num_of(&v.value), u64::MAX);

    let name = names::unique("chars");
    let info = create(
        &mut t.client,
        typed(MapType::Hash, &name, "char[16]", "s8[3]"),
    )
    .await;
    assert_eq!((info.key_size, info.value_size), (16, 3));
    update(
        &mut t.client,
        by_name(&name),
        json(r#""hello""#),
        json("[-1, 0, 127]"),
    )
    .await;
    let e = dump_entries(&mut t.client, by_name(&name), Format::Json).await;
    assert_eq!(
        (json_of(&e[0].key), json_of(&e[0].value)),
        (json!("hello"), json!([-1, 0, 127]))
    );
    let raw = dump_entries(&mut t.client, by_name(&name), Format::Raw).await;
    assert_eq!(bytes_of(&raw[0].key), b"hello\0\0\0\0\0\0\0\0\0\0\0");
    assert_eq!(bytes_of(&raw[0].value), [0xff, 0, 0x7f]);
}

#[tokio::test]
async fn padding_alignment_and_bitfields_follow_c() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let name = names::unique("pad");
    let value = "struct p { __u8 a; __u64 b; __u16 c; unsigned int f1: 3, f2: 30; int s: 4; }";
    let info = create(&mut t.client, typed(MapType::Hash, &name, "__u32", value)).await;
    // As clang lays it out (bpftool btf dump of the same struct compiled with clang -g):
    // a@0, b@8, c@16, f1 at bit 144 (it shares the u32 unit holding c), f2 does not fit
    // that unit: bit 160, s at bit 192; size 32.
    assert_eq!(info.value_size, 32);
    update(
        &mut t.client,
        by_name(&name),
        num(1),
        json(r#"{"a":1,"b":2,"c":3,"f1":7,"f2":1073741823,"s":-8}"#),
    )
    .await;
    let v = lookup(&mut t.client, by_name(&name), num(1), Format::Raw)
        .await
        .unwrap();
    let b = bytes_of(&v.value);
    assert_eq!(b[0], 1);
    assert_eq!(&b[1..8], &[0; 7], "padding after a is zero");
    assert_eq!(u64::from_ne_bytes(b[8..16].try_into().unwrap()), 2);
    assert_eq!(u16::from_ne_bytes([b[16], b[17]]), 3);
    assert_eq!(b[18], 7, "f1");
    assert_eq!(
        u32::from_ne_bytes(b[20..24].try_into().unwrap()),
        (1 << 30) - 1
    );
    assert_eq!(b[24], 0b1000, "s = -8 in 4 bits");
    assert_eq!(&b[25..32], &[0; 7], "tail padding");
    let v = lookup(&mut t.client, by_name(&name), num(1), Format::Json)
        .await
        .unwrap();
    assert_eq!(
        json_of(&v.value),
        json!({"a":1,"b":2,"c":3,"f1":7,"f2":1073741823,"s":-8})
    );
    // bpftool lays the bitfields out the same way (it shows them as hex strings).
    let theirs = bpftool_formatted(&t.fs.root().join(&name));
    assert_eq!(
        theirs[0].1,
        json!({"a":1,"b":2,"c":3,"f1":"0x7","f2":"0x3fffffff","s":"0x8"})
    );
}

#[tokio::test]
async fn every_declarable_kind_round_trips() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let name = names::unique("kinds");
    let value = "enum color { RED, GREEN = 5, BLUE }; \
        typedef __u16 port_t; \
        union addr { __u32 v4; __u8 b[4]; }; \
        struct k { \
          __u8 u8v; __s8 s8v; __u16 u16v; __s16 s16v; __u32 u32v; __s32 s32v; \
          uint64_t u64v; int64_t s64v; unsigned char uc; signed char sc; char c; \
          short sh; unsigned long long ull; long l; __int128 big; \
          char name[8]; __u32 grid[2][2]; struct { __u8 x, y; } pt; union addr a; \
          enum color col; port_t port; bool on; void *ptr; __u8 bits: 5; }";
    let info = create(&mut t.client, typed(MapType::Hash, &name, "__u32", value)).await;
    let v = json!({
        "u8v": 200, "s8v": -100, "u16v": 60000, "s16v": -30000, "u32v": 4000000000u64,
        "s32v": -2000000000, "u64v": 18446744073709551615u64, "s64v": -9223372036854775807i64,
        "uc": 255, "sc": -1, "c": 65, "sh": -2, "ull": 1, "l": -1,
        "big": "0x123456789abcdef0123456789",
        "name": "abc", "grid": [[1, 2], [3, 4]], "pt": {"x": 1, "y": 2},
        "a": {"v4": 16777343, "b": [127, 0, 0, 1]},
        "col": "BLUE", "port": 8080, "on": false, "ptr": "0x0", "bits": 31,
    });
    update(&mut t.client, by_name(&name), num(9), json(&v.to_string())).await;
    let got = lookup(&mut t.client, by_name(&name), num(9), Format::Json)
        .await
        .unwrap();
    let mut expected = v.clone();
    if cfg!(target_endian = "big") {
        expected["a"]["v4"] = json!(u32::from_be_bytes([127, 0, 0, 1]));
    }
    assert_eq!(json_of(&got.value), expected);
    assert!(
        info.value_type.contains("typedef __u16 port_t;"),
        "{}",
        info.value_type
    );
    assert!(info
        .value_type
        .contains("enum color { RED = 0, GREEN = 5, BLUE = 6 }"));
    // An enum value without a name comes back as its number.
    let mut other = v.clone();
    other["col"] = json!(4);
    update(
        &mut t.client,
        by_name(&name),
        num(9),
        json(&other.to_string()),
    )
    .await;
    let got = lookup(&mut t.client, by_name(&name), num(9), Format::Json)
        .await
        .unwrap();
    assert_eq!(json_of(&got.value)["col"], json!(4));
}

#[tokio::test]
async fn each_input_error_names_the_field_path() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let name = names::unique("errs");
    let value = "enum mode { OFF, ON }; struct stats { __u8 bytes; __u32 n; }; \
                 struct v { struct stats stats; char comm[4]; __u16 arr[2]; bool ok; enum mode m; }";
    create(&mut t.client, typed(MapType::Hash, &name, "__u32", value)).await;
    let good =
        json!({"stats": {"bytes": 1, "n": 2}, "comm": "ab", "arr": [1, 2], "ok": false, "m": "ON"});
    update(
        &mut t.client,
        by_name(&name),
        json("1"),
        json(&good.to_string()),
    )
    .await;
    let with = |path: &[&str], v: Value| {
        let mut j = good.clone();
        let mut at = &mut j;
        for p in &path[..path.len() - 1] {
            at = &mut at[*p];
        }
        at[path[path.len() - 1]] = v;
        j.to_string()
    };
    let mut missing = good.clone();
    missing["stats"].as_object_mut().unwrap().remove("n");
    let cases: Vec<(String, &str)> = vec![
        (
            with(&["stats", "bytes"], json!(300)),
            "value.stats.bytes: 300 does not fit u8",
        ),
        (
            with(&["stats", "n"], json!(-1)),
            "value.stats.n: -1 does not fit u32",
        ),
        (missing.to_string(), "value.stats.n: missing"),
        (
            with(&["stats", "extra"], json!(1)),
            "value.stats: unknown field \"extra\"",
        ),
        (
            with(&["stats", "bytes"], json!("1")),
            "value.stats.bytes: expected a number (u8)",
        ),
        (
            with(&["stats", "bytes"], json!(1.5)),
            "value.stats.bytes: 1.5 is not an integer",
        ),
        (
            with(&["comm"], json!("toolong")),
            "value.comm: \"toolong\" does not fit char[4]",
        ),
        (
            with(&["arr"], json!([1])),
            "value.arr: expected 2 elements, got 1",
        ),
        (
            with(&["arr"], json!([1, 65536])),
            "value.arr[1]: 65536 does not fit u16",
        ),
        (
            with(&["ok"], json!("yes")),
            "value.ok: expected true or false",
        ),
        (
            with(&["m"], json!("MAYBE")),
            "value.m: \"MAYBE\" is not a value of enum mode (OFF, ON)",
        ),
        (
            with(&["stats"], json!([1, 2])),
            "value.stats: expected an object",
        ),
        ("{not json".to_owned(), "value: not JSON"),
    ];
    for (text, words) in cases {
        let r = t
            .client
            .update(UpdateRequest {
                map: by_name(&name),
                key: json("1"),
                value: Some(pb::Data {
                    form: Some(pb::data::Form::Json(text.clone())),
                }),
                ..Default::default()
            })
            .await;
        assert_status(r, Code::InvalidArgument, &[words]);
    }
    // Keys too, and the stored value never changed.
    let r = lookup(
        &mut t.client,
        by_name(&name),
        json("4294967296"),
        Format::Json,
    )
    .await;
    assert_status(
        r,
        Code::InvalidArgument,
        &["key: 4294967296 does not fit u32"],
    );
    let v = lookup(&mut t.client, by_name(&name), json("1"), Format::Json)
        .await
        .unwrap();
    assert_eq!(json_of(&v.value), good);

    // A map without BTF refuses JSON both ways, naming why.
    let plain = names::unique("plain");
    create(&mut t.client, create_req(MapType::Hash, &plain, 4, 4, 4)).await;
    let r = lookup(&mut t.client, by_name(&plain), json("1"), Format::Raw).await;
    assert_status(r, Code::InvalidArgument, &["key", "BTF", "key_type"]);
    let r = dump(
        &mut t.client,
        DumpRequest {
            map: by_name(&plain),
            format: Format::Json as i32,
            ..Default::default()
        },
    )
    .await;
    assert_status(r, Code::InvalidArgument, &["FORMAT_JSON", "BTF"]);
}

#[tokio::test]
async fn create_refuses_bad_declarations() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let n = || names::unique("bad");
    for (req, words) in [
        (
            typed(MapType::Hash, &n(), "__u32", "struct x { float f; }"),
            vec!["value_type", "unknown type \"float\""],
        ),
        (
            typed(MapType::Hash, &n(), "struct k { __u32 a }", "__u64"),
            vec!["key_type", "expected ';'"],
        ),
        (
            typed(MapType::Hash, &n(), "__u32", ""),
            vec!["value_type is required"],
        ),
        (
            typed(MapType::Hash, &n(), "", "__u64"),
            vec!["key_type is required", "hash"],
        ),
        (
            typed(MapType::Queue, &n(), "__u32", "__u64"),
            vec!["queue maps have no keys"],
        ),
        (
            CreateMapRequest {
                key_size: 8,
                ..typed(MapType::Hash, &n(), "__u32", "__u64")
            },
            vec!["key_size 8 disagrees with key_type, which is 4 bytes"],
        ),
    ] {
        let r = t.client.create_map(req).await;
        assert_status(r, Code::InvalidArgument, &words);
    }
    // A matching size is fine; a queue takes a value type alone.
    create(
        &mut t.client,
        CreateMapRequest {
            key_size: 4,
            ..typed(MapType::Hash, &n(), "__u32", "__u64")
        },
    )
    .await;
    let r = t
        .client
        .create_map(typed(MapType::Queue, &n(), "", "__u64"))
        .await;
    assert_status(r, Code::InvalidArgument, &["queue maps may not take"]);
    // A bloom filter takes a value type alone, and tests typed values.
    let bloom = names::unique("tbloom");
    let info = create(
        &mut t.client,
        typed(
            MapType::BloomFilter,
            &bloom,
            "",
            "struct job { __u32 id; char tag[4]; }",
        ),
    )
    .await;
    assert_eq!(
        (info.key_size, info.value_size, info.key_type.as_str()),
        (0, 8, "")
    );
    t.client
        .update(UpdateRequest {
            map: by_name(&bloom),
            value: json(r#"{"id":7,"tag":"abc"}"#),
            ..Default::default()
        })
        .await
        .unwrap();
    let probe = |id: u32| pb::LookupRequest {
        map: by_name(&bloom),
        value: json(&format!(r#"{{"id":{id},"tag":"abc"}}"#)),
        ..Default::default()
    };
    t.client.lookup(probe(7)).await.unwrap();
    assert_status(
        t.client.lookup(probe(8)).await,
        Code::NotFound,
        &["surely absent"],
    );
}

#[tokio::test]
async fn batches_next_key_and_per_cpu_speak_json() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let name = names::unique("tbatch");
    create(
        &mut t.client,
        typed(
            MapType::PercpuHash,
            &name,
            "struct k { __u16 port; __u8 proto; }",
            "struct c { __u64 n; }",
        ),
    )
    .await;
    let entries: Vec<Entry> = (0..10u32)
        .map(|i| Entry {
            key: json(&format!(r#"{{"port":{i},"proto":6}}"#)),
            value: json(&format!(r#"{{"n":{}}}"#, i * 100)),
            per_cpu_values: Vec::new(),
        })
        .collect();
    let updated = t
        .client
        .batch_update(tokio_stream::iter(vec![BatchUpdateRequest {
            map: by_name(&name),
            entries,
            ..Default::default()
        }]))
        .await
        .unwrap()
        .into_inner()
        .updated;
    assert_eq!(updated, 10);
    let ncpu = kernel::possible_cpus();
    let dumped = dump_entries(&mut t.client, by_name(&name), Format::Json).await;
    assert_eq!(dumped.len(), 10);
    for e in &dumped {
        let port = json_of(&e.key)["port"].as_u64().unwrap();
        assert_eq!(e.per_cpu_values.len(), ncpu);
        for v in &e.per_cpu_values {
            assert_eq!(json_of(&Some(v.clone())), json!({"n": port * 100}));
        }
    }
    let next = t
        .client
        .get_next_key(GetNextKeyRequest {
            map: by_name(&name),
            key: None,
            format: Format::Json as i32,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(json_of(&next.next_key)["proto"], json!(6));
    let deleted = t
        .client
        .batch_delete(BatchDeleteRequest {
            map: by_name(&name),
            keys: (0..5)
                .map(|i| json(&format!(r#"{{"port":{i},"proto":6}}"#)).unwrap())
                .collect(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((deleted.deleted, deleted.missing), (5, 0));
    let bad = t
        .client
        .batch_update(tokio_stream::iter(vec![BatchUpdateRequest {
            map: by_name(&name),
            entries: vec![Entry {
                key: json(r#"{"port":1}"#),
                value: json(r#"{"n":1}"#),
                per_cpu_values: Vec::new(),
            }],
            ..Default::default()
        }]))
        .await;
    assert_status(
        bad,
        Code::InvalidArgument,
        &["entries[0].key.proto: missing"],
    );
}

#[tokio::test]
async fn types_survive_a_daemon_restart() {
    let Some(t) = TestEnv::start().await else {
        return;
    };
    let TestEnv {
        mut client,
        daemon,
        fs,
    } = t;
    let name = names::unique("keep");
    let before = create(&mut client, typed(MapType::Hash, &name, FLOW, STATS)).await;
    drop(client);
    drop(daemon);
    // A new daemon adopts the pin and reads the BTF back from the kernel.
    let daemon = Daemon::start(&fs).await;
    let mut client = daemon.client().await;
    let after = get(&mut client, by_name(&name)).await;
    assert_eq!(
        (after.key_type.as_str(), after.value_type.as_str()),
        (before.key_type.as_str(), before.value_type.as_str())
    );
    let k = json!({"saddr": 1, "daddr": 2, "sport": 3, "dport": 4, "proto": 6});
    let v = json!({"comm": "x", "in": {"packets": 1, "bytes": 2}, "out": {"packets": 3, "bytes": 4}, "delta": -1, "seen": true});
    update(
        &mut client,
        by_name(&name),
        json(&k.to_string()),
        json(&v.to_string()),
    )
    .await;
    let got = lookup(
        &mut client,
        by_name(&name),
        json(&k.to_string()),
        Format::Json,
    )
    .await
    .unwrap();
    assert_eq!(json_of(&got.value), v);
}
