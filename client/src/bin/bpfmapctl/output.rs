//! bpftool's text and JSON layouts: entries, next keys and map descriptions.

use bpfmap_client::{map_type_name, JsonValue, MapInfo, MapType, Value};
use serde_json::{json, Map, Value as Json};

/// Bytes as bpftool's `fprint_hex` prints them: lowercase pairs separated by spaces, two
/// spaces after every 8 bytes, a new line after every 16.
pub fn hex_block(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            out.push_str(if i % 16 == 0 {
                "\n"
            } else if i % 8 == 0 {
                "  "
            } else {
                " "
            });
        }
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

/// One entry in bpftool's plain layout (`print_entry_plain`), with a final new line.
/// An empty key (queues, stacks) is left out.
pub fn entry_text(key: &[u8], value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Single(v) => {
            let break_names = key.len() > 16 || v.len() > 16;
            let single_line = key.len() + v.len() <= 24 && !break_names;
            let sep = if break_names { '\n' } else { ' ' };
            if !key.is_empty() {
                out.push_str(&format!("key:{sep}{}", hex_block(key)));
                out.push_str(if single_line { "  " } else { "\n" });
            }
            if !v.is_empty() {
                out.push_str(&format!("value:{sep}{}", hex_block(v)));
            }
            out.push('\n');
        }
        Value::PerCpu(values) => {
            if !key.is_empty() {
                out.push_str(&format!("key:\n{}\n", hex_block(key)));
            }
            for (cpu, v) in values.iter().enumerate() {
                let sep = if v.len() > 16 { '\n' } else { ' ' };
                out.push_str(&format!("value (CPU {cpu:02}):{sep}{}\n", hex_block(v)));
            }
        }
    }
    out
}

/// bpftool's closing line of a dump.
pub fn found(n: u64) -> String {
    if n == 1 {
        "Found 1 element\n".into()
    } else {
        format!("Found {n} elements\n")
    }
}

/// Bytes as bpftool -j prints them: `["0x01","0x02"]`.
pub fn hex_json(bytes: &[u8]) -> Json {
    Json::Array(
        bytes
            .iter()
            .map(|b| Json::String(format!("0x{b:02x}")))
            .collect(),
    )
}

/// One entry as bpftool -j prints it: `{"key":[..],"value":[..]}`, per-CPU
/// `{"key":[..],"values":[{"cpu":0,"value":[..]},..]}`.
pub fn entry_json(key: &[u8], value: &Value) -> Json {
    match value {
        Value::Single(v) => json!({"key": hex_json(key), "value": hex_json(v)}),
        Value::PerCpu(vs) => json!({
            "key": hex_json(key),
            "values": vs
                .iter()
                .enumerate()
                .map(|(cpu, v)| json!({"cpu": cpu, "value": hex_json(v)}))
                .collect::<Vec<_>>(),
        }),
    }
}

/// One typed entry as bpftool -j prints it under `formatted`: `{"key":..,"value":..}`,
/// per-CPU `{"key":..,"values":[{"cpu":0,"value":..},..]}`, with the daemon's JSON inside.
pub fn typed_entry_json(key: Json, value: &JsonValue) -> Json {
    let parse = |s: &String| serde_json::from_str(s).unwrap_or_else(|_| Json::String(s.clone()));
    match value {
        JsonValue::Single(v) => json!({"key": key, "value": parse(v)}),
        JsonValue::PerCpu(vs) => json!({
            "key": key,
            "values": vs
                .iter()
                .enumerate()
                .map(|(cpu, v)| json!({"cpu": cpu, "value": parse(v)}))
                .collect::<Vec<_>>(),
        }),
    }
}

/// [`entry_json`] written straight into `out`, compact: the fast path of big dumps.
pub fn push_entry_json(out: &mut String, key: &[u8], value: &Value) {
    fn bytes(out: &mut String, b: &[u8]) {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        out.push('[');
        for (i, x) in b.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str("\"0x");
            out.push(char::from(DIGITS[usize::from(x >> 4)]));
            out.push(char::from(DIGITS[usize::from(x & 15)]));
            out.push('"');
        }
        out.push(']');
    }
    out.push_str("{\"key\":");
    bytes(out, key);
    match value {
        Value::Single(v) => {
            out.push_str(",\"value\":");
            bytes(out, v);
        }
        Value::PerCpu(vs) => {
            out.push_str(",\"values\":[");
            for (cpu, v) in vs.iter().enumerate() {
                if cpu > 0 {
                    out.push(',');
                }
                out.push_str(&format!("{{\"cpu\":{cpu},\"value\":"));
                bytes(out, v);
                out.push('}');
            }
            out.push(']');
        }
    }
    out.push('}');
}

/// bpftool's `map getnext` text.
pub fn next_key_text(key: Option<&[u8]>, next: &[u8]) -> String {
    match key {
        Some(k) => format!("key:\n{}\nnext key:\n{}\n", hex_block(k), hex_block(next)),
        None => format!("key: None\nnext key:\n{}\n", hex_block(next)),
    }
}

/// bpftool -j's `map getnext` object.
pub fn next_key_json(key: Option<&[u8]>, next: &[u8]) -> Json {
    json!({"key": key.map(hex_json), "next_key": hex_json(next)})
}

fn type_name(info: &MapInfo) -> String {
    match MapType::try_from(info.r#type) {
        Ok(t) if t != MapType::Unspec => map_type_name(t),
        _ => format!("type {}", info.r#type),
    }
}

/// A map as bpftool's `map show` prints it, with the daemon's pins as `pinned` lines.
pub fn map_text(info: &MapInfo) -> String {
    let mut out = format!("{}: {}  ", info.id, type_name(info));
    if !info.name.is_empty() {
        out.push_str(&format!("name {}  ", info.name));
    }
    out.push_str(&format!("flags 0x{:x}\n", info.flags));
    out.push_str(&format!(
        "\tkey {}B  value {}B  max_entries {}",
        info.key_size, info.value_size, info.max_entries
    ));
    if info.map_extra != 0 {
        out.push_str(&format!("  map_extra 0x{:x}", info.map_extra));
    }
    if info.btf_id != 0 || info.frozen {
        out.push_str("\n\t");
    }
    if info.btf_id != 0 {
        out.push_str(&format!("btf_id {}", info.btf_id));
    }
    if info.frozen {
        out.push_str(if info.btf_id != 0 {
            "  frozen"
        } else {
            "frozen"
        });
    }
    out.push('\n');
    for pin in &info.pins {
        out.push_str(&format!("\tpinned {pin}\n"));
    }
    if !info.key_type.is_empty() {
        out.push_str(&format!("\tkey_type {}\n", info.key_type));
    }
    if !info.value_type.is_empty() {
        out.push_str(&format!("\tvalue_type {}\n", info.value_type));
    }
    out
}

/// A map as bpftool -j's `map show` object, plus the daemon's `managed`, `ephemeral` and
/// `possible_cpus`.
pub fn map_json(info: &MapInfo) -> Json {
    let mut m = Map::new();
    m.insert("id".into(), json!(info.id));
    m.insert("type".into(), json!(type_name(info)));
    if !info.name.is_empty() {
        m.insert("name".into(), json!(info.name));
    }
    m.insert("flags".into(), json!(info.flags));
    m.insert("bytes_key".into(), json!(info.key_size));
    m.insert("bytes_value".into(), json!(info.value_size));
    m.insert("max_entries".into(), json!(info.max_entries));
    if info.map_extra != 0 {
        m.insert("map_extra".into(), json!(info.map_extra));
    }
    if info.btf_id != 0 {
        m.insert("btf_id".into(), json!(info.btf_id));
    }
    m.insert("frozen".into(), json!(u8::from(info.frozen)));
    if !info.pins.is_empty() {
        m.insert("pinned".into(), json!(info.pins));
    }
    m.insert("managed".into(), json!(info.managed));
    if info.ephemeral {
        m.insert("ephemeral".into(), json!(true));
    }
    if info.possible_cpus != 0 {
        m.insert("possible_cpus".into(), json!(info.possible_cpus));
    }
    if !info.key_type.is_empty() {
        m.insert("key_type".into(), json!(info.key_type));
    }
    if !info.value_type.is_empty() {
        m.insert("value_type".into(), json!(info.value_type));
    }
    Json::Object(m)
}

/// Serializes for printing: one line, or bpftool -p's indented form.
pub fn to_json_text(v: &Json, pretty: bool) -> String {
    let text = if pretty {
        serde_json::to_string_pretty(v)
    } else {
        serde_json::to_string(v)
    };
    text.unwrap_or_else(|_| "null".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(n: u8) -> Vec<u8> {
        (1..=n).collect()
    }

    // Expected strings are bpftool v7.1's output on the same maps.
    #[test]
    fn short_entries_fit_one_line() {
        assert_eq!(
            entry_text(&[0xc1, 0xc2], &Value::Single(vec![0xa1, 0xa2])),
            "key: c1 c2  value: a1 a2\n"
        );
        assert_eq!(
            entry_text(&[0, 0, 0, 0], &Value::Single(vec![0; 8])),
            "key: 00 00 00 00  value: 00 00 00 00 00 00 00 00\n"
        );
    }

    #[test]
    fn long_values_break_like_bpftool() {
        assert_eq!(
            entry_text(&[1, 0, 0, 0], &Value::Single(seq(24))),
            "key:\n01 00 00 00\nvalue:\n01 02 03 04 05 06 07 08  09 0a 0b 0c 0d 0e 0f 10\n11 12 13 14 15 16 17 18\n"
        );
        assert_eq!(
            entry_text(&seq(40), &Value::Single(seq(4))),
            "key:\n01 02 03 04 05 06 07 08  09 0a 0b 0c 0d 0e 0f 10\n11 12 13 14 15 16 17 18  19 1a 1b 1c 1d 1e 1f 20\n21 22 23 24 25 26 27 28\nvalue:\n01 02 03 04\n"
        );
        // Neither side over 16 bytes but together over 24: two lines, names kept inline.
        assert_eq!(
            entry_text(&seq(12), &Value::Single(seq(16))),
            "key: 01 02 03 04 05 06 07 08  09 0a 0b 0c\nvalue: 01 02 03 04 05 06 07 08  09 0a 0b 0c 0d 0e 0f 10\n"
        );
    }

    #[test]
    fn per_cpu_and_keyless_entries() {
        assert_eq!(
            entry_text(&[1, 0, 0, 0], &Value::PerCpu(vec![vec![5, 0, 0, 0]; 2])),
            "key:\n01 00 00 00\nvalue (CPU 00): 05 00 00 00\nvalue (CPU 01): 05 00 00 00\n"
        );
        assert_eq!(
            entry_text(&[], &Value::Single(vec![1, 2, 3, 4])),
            "value: 01 02 03 04\n"
        );
        assert_eq!(found(1), "Found 1 element\n");
        assert_eq!(found(0), "Found 0 elements\n");
        assert_eq!(found(2), "Found 2 elements\n");
    }

    #[test]
    fn json_matches_bpftool() {
        let j = |v: Json| to_json_text(&v, false);
        assert_eq!(
            j(entry_json(&[1, 2], &Value::Single(vec![3, 4]))),
            r#"{"key":["0x01","0x02"],"value":["0x03","0x04"]}"#
        );
        assert_eq!(
            j(entry_json(
                &[1, 0, 0, 0],
                &Value::PerCpu(vec![vec![5, 0, 0, 0]; 2])
            )),
            r#"{"key":["0x01","0x00","0x00","0x00"],"values":[{"cpu":0,"value":["0x05","0x00","0x00","0x00"]},{"cpu":1,"value":["0x05","0x00","0x00","0x00"]}]}"#
        );
        assert_eq!(
            j(next_key_json(None, &[1, 2])),
            r#"{"key":null,"next_key":["0x01","0x02"]}"#
        );
        assert_eq!(
            next_key_text(None, &[1, 2]),
            "key: None\nnext key:\n01 02\n"
        );
        assert_eq!(
            next_key_text(Some(&[1, 2]), &[0xc1, 0xc2]),
            "key:\n01 02\nnext key:\nc1 c2\n"
        );
    }

    #[test]
    fn fast_json_equals_serde_json() {
        for (k, v) in [
            (vec![1u8, 2], Value::Single(vec![3, 4])),
            (vec![], Value::Single(vec![0xff])),
            (vec![9], Value::PerCpu(vec![vec![1, 2], vec![3, 4], vec![]])),
        ] {
            let mut fast = String::new();
            push_entry_json(&mut fast, &k, &v);
            assert_eq!(fast, entry_json(&k, &v).to_string());
        }
    }

    #[test]
    fn maps_show_like_bpftool() {
        let mut info = MapInfo {
            id: 25,
            name: "stats_map".into(),
            key_size: 2,
            value_size: 2,
            max_entries: 8,
            pins: vec!["/sys/fs/bpf/bpfmapd/stats_map".into()],
            managed: true,
            ..Default::default()
        };
        info.set_type(MapType::Hash);
        assert_eq!(
            map_text(&info),
            "25: hash  name stats_map  flags 0x0\n\tkey 2B  value 2B  max_entries 8\n\tpinned /sys/fs/bpf/bpfmapd/stats_map\n"
        );
        assert_eq!(
            to_json_text(&map_json(&info), false),
            r#"{"id":25,"type":"hash","name":"stats_map","flags":0,"bytes_key":2,"bytes_value":2,"max_entries":8,"frozen":0,"pinned":["/sys/fs/bpf/bpfmapd/stats_map"],"managed":true}"#
        );
        info.frozen = true;
        info.pins.clear();
        assert_eq!(
            map_text(&info),
            "25: hash  name stats_map  flags 0x0\n\tkey 2B  value 2B  max_entries 8\n\tfrozen\n"
        );
        info.r#type = 99;
        assert!(map_text(&info).starts_with("25: type 99  name"));
    }
}
