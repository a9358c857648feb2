//! bpftool's view of maps, parsed from its JSON output (`bpftool -j ...`).
//!
//! bpftool is the independent witness: what it prints is what the kernel holds, read
//! without the daemon's code. Also makes "foreign" maps (`bpftool map create`).

use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// Runs `bpftool -j <args>` and parses its output; Err holds bpftool's error text.
pub fn try_json(args: &[&str]) -> Result<Value, String> {
    let out = Command::new("bpftool")
        .arg("-j")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run bpftool (scripts/setup.sh installs it): {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let parsed: Option<Value> = serde_json::from_str(stdout.trim()).ok();
    if let Some(err) = parsed
        .as_ref()
        .and_then(|v| v.get("error"))
        .and_then(Value::as_str)
    {
        return Err(err.to_owned());
    }
    if !out.status.success() {
        return Err(format!(
            "bpftool -j {} failed ({}): {}{}",
            args.join(" "),
            out.status,
            stdout,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    if stdout.trim().is_empty() {
        return Ok(Value::Null);
    }
    parsed.ok_or_else(|| format!("bpftool -j {}: not JSON: {stdout}", args.join(" ")))
}

/// Runs `bpftool -j <args>`; panics on failure.
pub fn json(args: &[&str]) -> Value {
    try_json(args).unwrap_or_else(|e| panic!("{e}"))
}

/// One entry of `bpftool map dump`: a key and its value, or one value per CPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpEntry {
    /// The key bytes.
    pub key: Vec<u8>,
    /// The value bytes (not per-CPU maps).
    pub value: Option<Vec<u8>>,
    /// Per-CPU maps: the value of each CPU, index = CPU.
    pub values: Vec<Vec<u8>>,
}

/// `bpftool map show`: the fields tests look at.
#[derive(Debug, Clone)]
pub struct MapShow {
    /// Kernel map id.
    pub id: u32,
    /// bpftool's type name, e.g. `hash`, `percpu_array`.
    pub type_name: String,
    /// Kernel map name.
    pub name: String,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// max_entries.
    pub max_entries: u32,
    /// BPF_F_* flags.
    pub flags: u64,
    /// Frozen (bpftool reads /proc fdinfo).
    pub frozen: bool,
    /// The whole JSON object.
    pub raw: Value,
}

fn hex_bytes(v: &Value) -> Vec<u8> {
    v.as_array()
        .unwrap_or_else(|| panic!("bpftool: expected a byte array, got {v}"))
        .iter()
        .map(|b| {
            let s = b.as_str().unwrap_or_else(|| panic!("bpftool: byte {b}"));
            u8::from_str_radix(s.trim_start_matches("0x"), 16)
                .unwrap_or_else(|e| panic!("bpftool: byte {s}: {e}"))
        })
        .collect()
}

fn parse_dump(v: &Value) -> Vec<DumpEntry> {
    let items = v
        .as_array()
        .unwrap_or_else(|| panic!("bpftool map dump: expected an array, got {v}"));
    items
        .iter()
        .map(|e| DumpEntry {
            key: hex_bytes(&e["key"]),
            value: e.get("value").map(hex_bytes),
            values: e
                .get("values")
                .and_then(Value::as_array)
                .map(|cpus| cpus.iter().map(|c| hex_bytes(&c["value"])).collect())
                .unwrap_or_default(),
        })
        .collect()
}

fn parse_show(v: Value) -> MapShow {
    let num = |k: &str| {
        v.get(k)
            .and_then(Value::as_u64)
            .unwrap_or_else(|| panic!("bpftool map show: no {k} in {v}"))
    };
    MapShow {
        id: u32::try_from(num("id")).expect("id"),
        type_name: v["type"].as_str().unwrap_or_default().to_owned(),
        name: v["name"].as_str().unwrap_or_default().to_owned(),
        key_size: u32::try_from(num("bytes_key")).expect("key"),
        value_size: u32::try_from(num("bytes_value")).expect("value"),
        max_entries: u32::try_from(num("max_entries")).expect("max_entries"),
        flags: num("flags"),
        frozen: v.get("frozen").and_then(Value::as_u64).unwrap_or(0) != 0,
        raw: v,
    }
}

/// `bpftool -j map dump pinned <path>`.
pub fn dump_pinned(path: &Path) -> Vec<DumpEntry> {
    parse_dump(&json(&["map", "dump", "pinned", &path.to_string_lossy()]))
}

/// `bpftool -j map dump id <id>`.
pub fn dump_id(id: u32) -> Vec<DumpEntry> {
    parse_dump(&json(&["map", "dump", "id", &id.to_string()]))
}

/// `bpftool -j map show id <id>`; Err when there is no such map.
pub fn try_show_id(id: u32) -> Result<MapShow, String> {
    try_json(&["map", "show", "id", &id.to_string()]).map(parse_show)
}

/// `bpftool -j map show id <id>`.
pub fn show_id(id: u32) -> MapShow {
    try_show_id(id).unwrap_or_else(|e| panic!("{e}"))
}

/// `bpftool -j map show pinned <path>`.
pub fn show_pinned(path: &Path) -> MapShow {
    parse_show(json(&["map", "show", "pinned", &path.to_string_lossy()]))
}

/// `bpftool map create <pin> type <ty> key <k> value <v> entries <n> name <name> [flags f]`:
/// a map that the daemon did not make, pinned at `pin` (which must lie in a bpffs).
pub fn create_map(
    pin: &Path,
    ty: &str,
    key: u32,
    value: u32,
    entries: u32,
    name: &str,
    flags: u32,
) -> MapShow {
    let pin_s = pin.to_string_lossy();
    let (k, v, n, f) = (
        key.to_string(),
        value.to_string(),
        entries.to_string(),
        flags.to_string(),
    );
    let mut args = vec![
        "map", "create", &pin_s, "type", ty, "key", &k, "value", &v, "entries", &n, "name", name,
    ];
    if flags != 0 {
        args.extend(["flags", &f]);
    }
    json(&args);
    show_pinned(pin)
}

fn hex_words(bytes: &[u8]) -> Vec<String> {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `bpftool map update pinned <path> key hex .. value hex ..`: a write that does not go
/// through the daemon.
pub fn update_pinned(path: &Path, key: &[u8], value: &[u8]) {
    let p = path.to_string_lossy();
    let (k, v) = (hex_words(key), hex_words(value));
    let mut args = vec!["map", "update", "pinned", &p, "key", "hex"];
    args.extend(k.iter().map(String::as_str));
    args.extend(["value", "hex"]);
    args.extend(v.iter().map(String::as_str));
    json(&args);
}

/// `bpftool map delete pinned <path> key hex ..`.
pub fn delete_pinned(path: &Path, key: &[u8]) {
    let p = path.to_string_lossy();
    let k = hex_words(key);
    let mut args = vec!["map", "delete", "pinned", &p, "key", "hex"];
    args.extend(k.iter().map(String::as_str));
    json(&args);
}
