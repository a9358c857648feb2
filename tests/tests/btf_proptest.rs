//! Property: for generated struct types and random values, JSON → bytes → JSON is the
//! identity, through a real daemon and a real map created with the generated declaration.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bpfmap_tests::api::pb::{CreateMapRequest, DeleteMapRequest, Format, MapType};
use bpfmap_tests::api::*;
use bpfmap_tests::{names, TestEnv};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Value};

/// A field type the generator knows: its C spelling and a strategy for its JSON values.
#[derive(Debug, Clone)]
enum Field {
    Int {
        c: &'static str,
        bits: u32,
        signed: bool,
    },
    Bool,
    Chars(u32),
    Array(Box<Field>, u32),
    Struct(Vec<Field>),
}

fn leaf() -> impl Strategy<Value = Field> {
    prop_oneof![
        Just(Field::Int {
            c: "__u8",
            bits: 8,
            signed: false
        }),
        Just(Field::Int {
            c: "__s8",
            bits: 8,
            signed: true
        }),
        Just(Field::Int {
            c: "__u16",
            bits: 16,
            signed: false
        }),
        Just(Field::Int {
            c: "__s16",
            bits: 16,
            signed: true
        }),
        Just(Field::Int {
            c: "__u32",
            bits: 32,
            signed: false
        }),
        Just(Field::Int {
            c: "int",
            bits: 32,
            signed: true
        }),
        Just(Field::Int {
            c: "__u64",
            bits: 64,
            signed: false
        }),
        Just(Field::Int {
            c: "__s64",
            bits: 64,
            signed: true
        }),
        Just(Field::Bool),
        (1u32..20).prop_map(Field::Chars),
    ]
}

fn field() -> impl Strategy<Value = Field> {
    leaf().prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            (inner.clone(), 1u32..4).prop_map(|(f, n)| Field::Array(Box::new(f), n)),
            prop::collection::vec(inner, 1..5).prop_map(Field::Struct),
        ]
    })
}

/// `type name[dims]` for a member; nested structs are written inline.
fn member(f: &Field, name: &str) -> String {
    match f {
        Field::Int { c, .. } => format!("{c} {name};"),
        Field::Bool => format!("bool {name};"),
        Field::Chars(n) => format!("char {name}[{n}];"),
        Field::Array(inner, n) => {
            // Arrays of arrays and of structs: declare the element through a wrapper name.
            let elem = member(inner, "__ELEM__");
            let (head, tail) = elem.split_once("__ELEM__").unwrap_or((&elem, ";"));
            format!("{head}{name}[{n}]{tail}")
        }
        Field::Struct(fields) => format!("struct {{ {} }} {name};", body(fields)),
    }
}

fn body(fields: &[Field]) -> String {
    fields
        .iter()
        .enumerate()
        .map(|(i, f)| member(f, &format!("f{i}")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A random JSON value of field type `f`.
fn value(f: &Field) -> BoxedStrategy<Value> {
    match f {
        Field::Int { bits, signed, .. } => {
            let (bits, signed) = (*bits, *signed);
            if signed {
                let lo = -(1i128 << (bits - 1));
                let hi = (1i128 << (bits - 1)) - 1;
                (lo..=hi).prop_map(|v| json!(v as i64)).boxed()
            } else {
                let hi = if bits == 64 {
                    u64::MAX
                } else {
                    (1u64 << bits) - 1
                };
                (0..=hi).prop_map(|v| json!(v)).boxed()
            }
        }
        Field::Bool => any::<bool>().prop_map(|b| json!(b)).boxed(),
        // Printable ASCII, shorter than the array (a NUL ends it): shown as a string.
        Field::Chars(n) => prop::collection::vec(0x20u8..0x7f, 0..*n as usize)
            .prop_map(|b| json!(String::from_utf8(b).unwrap_or_default()))
            .boxed(),
        Field::Array(inner, n) => prop::collection::vec(value(inner), *n as usize)
            .prop_map(Value::Array)
            .boxed(),
        Field::Struct(fields) => {
            let parts: Vec<BoxedStrategy<Value>> = fields.iter().map(value).collect();
            parts
                .prop_map(|vals| {
                    Value::Object(
                        vals.into_iter()
                            .enumerate()
                            .map(|(i, v)| (format!("f{i}"), v))
                            .collect(),
                    )
                })
                .boxed()
        }
    }
}

fn case() -> impl Strategy<Value = (String, Value)> {
    prop::collection::vec(field(), 1..7).prop_flat_map(|fields| {
        let decl = format!("struct gen {{ {} }}", body(&fields));
        (Just(decl), value(&Field::Struct(fields)))
    })
}

#[tokio::test]
async fn json_to_bytes_to_json_is_the_identity() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    // Generate the cases first (the runner is synchronous), then drive the daemon.
    let mut runner = TestRunner::new(Config {
        cases: 64,
        ..Config::default()
    });
    let strategy = case();
    let cases: Vec<(String, Value)> = (0..64)
        .map(|_| strategy.new_tree(&mut runner).unwrap().current())
        .collect();
    assert_eq!(cases.len(), 64);
    for (i, (decl, v)) in cases.iter().enumerate() {
        let name = names::unique("prop");
        let info = t
            .client
            .create_map(CreateMapRequest {
                r#type: MapType::Hash as i32,
                name: name.clone(),
                key_type: "__u32".into(),
                value_type: decl.clone(),
                max_entries: 2,
                ephemeral: true,
                ..Default::default()
            })
            .await
            .unwrap_or_else(|s| panic!("case {i}: CreateMap with {decl}: {s:?}"))
            .into_inner();
        let text = v.to_string();
        update(&mut t.client, by_id(info.id), json("0"), json(&text)).await;
        let back = lookup(&mut t.client, by_id(info.id), json("0"), Format::Json)
            .await
            .unwrap_or_else(|s| panic!("case {i}: lookup: {s:?}"));
        assert_eq!(json_of(&back.value), *v, "case {i}: {decl}");
        t.client
            .delete_map(DeleteMapRequest {
                map: by_id(info.id),
            })
            .await
            .unwrap();
    }
}
