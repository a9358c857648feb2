//! The JSON-lines file format of `map dump --format json` and `map load`.
//!
//! One entry per line, the objects of `bpftool -j map dump`:
//! `{"key":["0x01","0x02"],"value":["0x03","0x04"]}`, per-CPU
//! `{"key":[..],"values":[{"cpu":0,"value":[..]},..]}`. `load` also reads a whole
//! `bpftool -j map dump` array, bytes written as `"0x1f"`, `"1f"` or numbers 0-255, and
//! keys and values given as one hex string (`"01 02"`).

use bpfmap_client::{Entry, Value};
use serde_json::Value as Json;

use crate::output::push_entry_json;

/// Appends one line of the file to `out`.
pub fn push_entry_line(out: &mut String, key: &[u8], value: &Value) {
    push_entry_json(out, key, value);
    out.push('\n');
}

fn bytes_of(v: &Json, what: &str) -> Result<Vec<u8>, String> {
    match v {
        Json::String(s) => {
            bpfmap_client::proto_crate::hex::parse(s).map_err(|e| format!("{what}: {}", e.reason))
        }
        Json::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Json::String(s) => {
                    let d = s
                        .strip_prefix("0x")
                        .or_else(|| s.strip_prefix("0X"))
                        .unwrap_or(s);
                    u8::from_str_radix(d, 16)
                        .map_err(|_| format!("{what}[{i}]: {s:?} is not a hex byte like \"0x1f\""))
                }
                Json::Number(n) => n
                    .as_u64()
                    .and_then(|n| u8::try_from(n).ok())
                    .ok_or_else(|| format!("{what}[{i}]: {n} is not a byte (0-255)")),
                other => Err(format!(
                    "{what}[{i}]: expected a hex byte string, got {other}"
                )),
            })
            .collect(),
        other => Err(format!(
            "{what}: expected an array of hex bytes, got {other}"
        )),
    }
}

/// One entry object.
pub fn parse_entry(v: &Json) -> Result<Entry, String> {
    let obj = v
        .as_object()
        .ok_or_else(|| format!("expected an object with \"key\" and \"value\", got {v}"))?;
    let key = match obj.get("key") {
        Some(Json::Null) | None => Vec::new(),
        Some(k) => bytes_of(k, "key")?,
    };
    if let Some(value) = obj.get("value") {
        return Ok(Entry {
            key,
            value: Value::Single(bytes_of(value, "value")?),
        });
    }
    let Some(values) = obj.get("values") else {
        return Err("missing \"value\" (or \"values\" for per-CPU maps)".into());
    };
    let list = values
        .as_array()
        .ok_or_else(|| "\"values\" must be an array of {\"cpu\":N,\"value\":[..]}".to_string())?;
    let mut per_cpu: Vec<Option<Vec<u8>>> = vec![None; list.len()];
    for (i, item) in list.iter().enumerate() {
        let cpu = item.get("cpu").and_then(Json::as_u64).map_or(Ok(i), |c| {
            usize::try_from(c).map_err(|_| "cpu out of range".to_string())
        })?;
        let slot = per_cpu
            .get_mut(cpu)
            .ok_or_else(|| format!("values[{i}]: cpu {cpu} but only {} values", list.len()))?;
        let value = item
            .get("value")
            .ok_or_else(|| format!("values[{i}]: missing \"value\""))?;
        *slot = Some(bytes_of(value, &format!("values[{i}].value"))?);
    }
    let per_cpu = per_cpu
        .into_iter()
        .enumerate()
        .map(|(cpu, v)| v.ok_or_else(|| format!("no value for cpu {cpu}")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Entry {
        key,
        value: Value::PerCpu(per_cpu),
    })
}

/// Every entry of a JSON-lines text (or of one JSON array); errors name the line.
pub fn parse_entries(text: &str) -> Result<Vec<Entry>, String> {
    if text.trim_start().starts_with('[') {
        let all: Json = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
        let items = all.as_array().map(Vec::as_slice).unwrap_or_default();
        return items
            .iter()
            .enumerate()
            .map(|(i, v)| parse_entry(v).map_err(|e| format!("element {i}: {e}")))
            .collect();
    }
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: Json =
            serde_json::from_str(line).map_err(|e| format!("line {}: invalid JSON: {e}", n + 1))?;
        out.push(parse_entry(&v).map_err(|e| format!("line {}: {e}", n + 1))?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip() {
        let entries = vec![
            Entry::new(vec![0xc1, 0xc2], vec![0xa1, 0xa2]),
            Entry::per_cpu(vec![1, 0, 0, 0], vec![vec![5, 0, 0, 0], vec![6, 0, 0, 0]]),
        ];
        let mut text = String::new();
        for e in &entries {
            push_entry_line(&mut text, &e.key, &e.value);
        }
        assert_eq!(
            text.lines().next(),
            Some(r#"{"key":["0xc1","0xc2"],"value":["0xa1","0xa2"]}"#)
        );
        assert_eq!(parse_entries(&text), Ok(entries));
    }

    #[test]
    fn reads_bpftool_arrays_and_loose_forms() {
        let bpftool = r#"[{"key":["0x01","0x02"],"value":["0x03","0x04"]},{"key":["0xc1","0xc2"],"value":["0xa1","0xa2"]}]"#;
        assert_eq!(parse_entries(bpftool).map(|e| e.len()), Ok(2));
        let loose = "{\"key\":\"c1 c2\",\"value\":[161,\"a2\"]}\n\n";
        assert_eq!(
            parse_entries(loose),
            Ok(vec![Entry::new(vec![0xc1, 0xc2], vec![0xa1, 0xa2])])
        );
        let unordered = r#"{"key":[1],"values":[{"cpu":1,"value":[2]},{"cpu":0,"value":[1]}]}"#;
        assert_eq!(
            parse_entries(unordered),
            Ok(vec![Entry::per_cpu(vec![1], vec![vec![1], vec![2]])])
        );
    }

    #[test]
    fn errors_name_the_line() {
        let text = "{\"key\":[1],\"value\":[2]}\n{\"key\":[\"0xzz\"],\"value\":[2]}\n";
        let err = parse_entries(text).err().unwrap_or_default();
        assert!(err.starts_with("line 2: key[0]"), "{err}");
        assert!(parse_entries("{\"key\":[1]}").is_err());
        assert!(parse_entries("not json").is_err());
        assert!(parse_entries("{\"key\":[1],\"value\":[256]}").is_err());
        assert!(parse_entries(r#"{"key":[1],"values":[{"cpu":3,"value":[1]}]}"#).is_err());
    }
}
