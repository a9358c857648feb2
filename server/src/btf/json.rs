//! Typed JSON of a key or value: out in bpftool's formatted layout, in with strict checks.
//!
//! Out (as `bpftool -j map dump` prints under `formatted`): integers as JSON numbers (64-bit
//! too, written from the integer, never through a float), `char[N]` as a string when it
//! holds a NUL-terminated printable string, other arrays as lists, structs and unions as
//! objects by field name, enums by name (the number when no name matches), booleans,
//! bitfields as numbers. Two choices differ from bpftool on purpose: pointers are hex
//! strings (`"0xffff..."`) and bitfields are numbers rather than hex strings; a `char[N]`
//! whose bytes after the NUL are not all zero is a list, so that no byte is lost.
//!
//! In: the same shape. Every struct field is required and no other is accepted; a union
//! takes one member (or several that agree, as the output shows them); numbers must fit
//! their type. Errors name the field path: `value.stats.bytes: 300 does not fit u8`.

use serde_json::Value as Json;

use super::model::{Btf, Kind, Type, INT_BOOL, INT_CHAR, INT_SIGNED};

/// Deepest nesting followed (BTF of values is acyclic; this guards hostile BTF).
const MAX_DEPTH: usize = 64;

/// Writes the JSON of `bytes` (a value of type `id`) into `out`.
pub fn format(btf: &Btf, id: u32, bytes: &[u8], out: &mut String) -> Result<(), String> {
    let size = btf.size_of(id).ok_or("type has no size")?;
    if (bytes.len() as u64) < size {
        return Err(format!("{} bytes for a {size}-byte type", bytes.len()));
    }
    write(btf, id, bytes, 0, out, 0)
}

/// Fills `bytes` (zeroed, the size of type `id`) from `json`; `path` names the root in
/// errors (`key`, `value`, `per_cpu_values[1]`).
pub fn parse(btf: &Btf, id: u32, json: &Json, bytes: &mut [u8], path: &str) -> Result<(), String> {
    let size = btf.size_of(id).ok_or("type has no size")?;
    if (bytes.len() as u64) < size {
        return Err(format!("{} bytes for a {size}-byte type", bytes.len()));
    }
    let mut p = path.to_owned();
    read(btf, id, json, bytes, 0, &mut p, 0)
}

fn kind_of(btf: &Btf, id: u32) -> Result<&Type, String> {
    btf.resolve(id)
        .map(|(_, t)| t)
        .ok_or_else(|| format!("type {id} is missing from the BTF"))
}

/// The short name of an integer in messages: u8, s32, u64, ...
fn int_name(size: u32, bits: u8, signed: bool, bitfield: bool) -> String {
    if bitfield || u32::from(bits) != size * 8 {
        format!(
            "a {bits}-bit {} bitfield",
            if signed { "signed" } else { "unsigned" }
        )
    } else {
        format!("{}{}", if signed { 's' } else { 'u' }, bits)
    }
}

/// Reads `bits` bits at `bit` bits from the start of `bytes` (host order), zero-extended.
fn get_bits(bytes: &[u8], bit: u64, bits: u32) -> u128 {
    let first = (bit / 8) as usize;
    let shift = (bit % 8) as u32;
    let n = (shift + bits).div_ceil(8) as usize;
    let mut buf = [0u8; 17];
    let end = (first + n).min(bytes.len());
    let src = bytes.get(first..end).unwrap_or(&[]);
    buf[..src.len()].copy_from_slice(src);
    let mask = if bits >= 128 {
        u128::MAX
    } else {
        (1u128 << bits) - 1
    };
    if cfg!(target_endian = "little") {
        let mut lo = [0u8; 16];
        lo.copy_from_slice(&buf[..16]);
        let v = u128::from_le_bytes(lo) >> shift;
        let v = if shift > 0 && n == 17 {
            v | (u128::from(buf[16]) << (128 - shift))
        } else {
            v
        };
        v & mask
    } else {
        // Big-endian: bit offsets count from the most significant bit of the storage.
        let mut v = 0u128;
        for b in &buf[..n.min(16)] {
            v = (v << 8) | u128::from(*b);
        }
        (v >> (n as u32 * 8 - shift - bits)) & mask
    }
}

/// Writes the low `bits` bits of `v` at `bit` bits from the start of `bytes`.
fn set_bits(bytes: &mut [u8], bit: u64, bits: u32, v: u128) {
    for i in 0..bits {
        let on = (v >> i) & 1 == 1;
        let pos = if cfg!(target_endian = "little") {
            bit + u64::from(i)
        } else {
            bit + u64::from(bits - 1 - i)
        };
        let byte = (pos / 8) as usize;
        let mask = if cfg!(target_endian = "little") {
            1u8 << (pos % 8)
        } else {
            0x80u8 >> (pos % 8)
        };
        if let Some(b) = bytes.get_mut(byte) {
            if on {
                *b |= mask;
            } else {
                *b &= !mask;
            }
        }
    }
}

fn sign_extend(v: u128, bits: u32) -> i128 {
    if bits == 0 || bits >= 128 {
        return v as i128;
    }
    let shift = 128 - bits;
    ((v << shift) as i128) >> shift
}

/// A value at `bit` bits into `bytes`, `bitfield` bits wide when not 0.
fn write(
    btf: &Btf,
    id: u32,
    bytes: &[u8],
    bit: u64,
    out: &mut String,
    depth: usize,
) -> Result<(), String> {
    write_field(btf, id, bytes, bit, 0, out, depth)
}

fn write_field(
    btf: &Btf,
    id: u32,
    bytes: &[u8],
    bit: u64,
    bitfield: u32,
    out: &mut String,
    depth: usize,
) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err("types nest too deep".into());
    }
    let t = kind_of(btf, id)?;
    match &t.kind {
        Kind::Int {
            encoding,
            offset,
            bits,
        } => {
            let signed = encoding & INT_SIGNED != 0;
            let width = if bitfield != 0 {
                bitfield
            } else {
                u32::from(*bits)
            };
            let raw = get_bits(bytes, bit + u64::from(*offset), width);
            if encoding & INT_BOOL != 0 && bitfield == 0 {
                out.push_str(if raw != 0 { "true" } else { "false" });
            } else if encoding & INT_CHAR != 0 && bitfield == 0 && width == 8 {
                let c = raw as u8;
                if (0x20..0x7f).contains(&c) {
                    push_string(out, &char::from(c).to_string());
                } else {
                    out.push_str(&format!("\"\\u{c:04x}\""));
                }
            } else if width > 64 && bitfield == 0 {
                out.push_str(&format!("\"0x{raw:x}\""));
            } else if signed {
                out.push_str(&sign_extend(raw, width).to_string());
            } else {
                out.push_str(&raw.to_string());
            }
        }
        Kind::Ptr(_) => {
            let v = get_bits(bytes, bit, 64);
            out.push_str(&format!("\"0x{v:x}\""));
        }
        Kind::Float => {
            let v = get_bits(bytes, bit, t.size * 8);
            let f = if t.size == 4 {
                f64::from(f32::from_bits(v as u32))
            } else if t.size == 8 {
                f64::from_bits(v as u64)
            } else {
                return Err(format!("{}-byte floats are not supported", t.size));
            };
            match serde_json::Number::from_f64(f) {
                Some(n) => out.push_str(&n.to_string()),
                None => push_string(out, &f.to_string()),
            }
        }
        Kind::Enum { signed, values, .. } => {
            let raw = get_bits(bytes, bit, t.size * 8);
            let v = if *signed {
                sign_extend(raw, t.size * 8)
            } else {
                raw as i128
            };
            match values.iter().find(|(_, x)| *x == v) {
                Some((name, _)) => push_string(out, name),
                None => out.push_str(&v.to_string()),
            }
        }
        Kind::Array { elem, len, .. } => {
            let start = (bit / 8) as usize;
            if let Some(s) = char_string(btf, *elem, bytes, start, *len as usize) {
                push_string(out, &s);
                return Ok(());
            }
            let esize = btf.size_of(*elem).ok_or("array of a type without size")?;
            out.push('[');
            for i in 0..u64::from(*len) {
                if i > 0 {
                    out.push(',');
                }
                write(btf, *elem, bytes, bit + i * esize * 8, out, depth + 1)?;
            }
            out.push(']');
        }
        Kind::Struct(ms) | Kind::Union(ms) => {
            out.push('{');
            for (i, m) in ms.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_string(out, &m.name);
                out.push(':');
                write_field(
                    btf,
                    m.ty,
                    bytes,
                    bit + u64::from(m.bit_offset),
                    m.bitfield_size,
                    out,
                    depth + 1,
                )?;
            }
            out.push('}');
        }
        other => {
            return Err(format!(
                "{} types cannot be shown as JSON",
                kind_word(other)
            ))
        }
    }
    Ok(())
}

fn kind_word(k: &Kind) -> &'static str {
    match k {
        Kind::Void => "void",
        Kind::Fwd { .. } => "forward-declared",
        Kind::Func { .. } | Kind::FuncProto { .. } => "function",
        Kind::Var { .. } | Kind::Datasec(_) => "variable",
        _ => "these",
    }
}

/// Whether the element type prints arrays as strings: a 1-byte int named `char` or with
/// the CHAR encoding (bpftool's rule; typedefs of char do not count).
fn is_char(btf: &Btf, elem: u32) -> bool {
    let mut id = elem;
    for _ in 0..MAX_DEPTH {
        let Some(t) = btf.get(id) else { return false };
        match t.kind {
            Kind::Volatile(to) | Kind::Const(to) | Kind::Restrict(to) | Kind::TypeTag(to) => {
                id = to
            }
            Kind::Int { encoding, .. } => {
                return t.size == 1 && (encoding & INT_CHAR != 0 || t.name == "char")
            }
            _ => return false,
        }
    }
    false
}

/// The string in a `char[len]` at `start`: printable bytes, a NUL, then only NULs.
fn char_string(btf: &Btf, elem: u32, bytes: &[u8], start: usize, len: usize) -> Option<String> {
    if len == 0 || !is_char(btf, elem) {
        return None;
    }
    let s = bytes.get(start..start + len)?;
    let nul = s.iter().position(|&b| b == 0)?;
    if !s[..nul].iter().all(|&b| (0x20..0x7f).contains(&b)) || s[nul..].iter().any(|&b| b != 0) {
        return None;
    }
    Some(String::from_utf8_lossy(&s[..nul]).into_owned())
}

fn push_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A short description of a JSON value for messages.
fn shown(j: &Json) -> String {
    let s = j.to_string();
    if s.len() > 40 {
        format!(
            "{}...",
            &s[..s.char_indices().nth(37).map_or(s.len(), |(i, _)| i)]
        )
    } else {
        s
    }
}

/// The integer in `j`, if it is one: JSON integers, and floats only to say they do not fit.
enum Int {
    Val(i128),
    Huge(String),
}

fn json_int(j: &Json) -> Option<Int> {
    let n = j.as_number()?;
    if let Some(u) = n.as_u64() {
        return Some(Int::Val(i128::from(u)));
    }
    if let Some(i) = n.as_i64() {
        return Some(Int::Val(i128::from(i)));
    }
    let f = n.as_f64()?;
    if f.fract() == 0.0 && f.abs() >= 9.0e18 {
        return Some(Int::Huge(format!("{f:.0}")));
    }
    None
}

/// A number given as a hex string (`"0x1f"`), as pointers and 128-bit integers are shown.
fn hex_string(j: &Json) -> Option<Result<u128, ()>> {
    let s = j.as_str()?;
    let h = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"))?;
    Some(u128::from_str_radix(h, 16).map_err(|_| ()))
}

fn read(
    btf: &Btf,
    id: u32,
    j: &Json,
    bytes: &mut [u8],
    bit: u64,
    path: &mut String,
    depth: usize,
) -> Result<(), String> {
    read_field(btf, id, j, bytes, bit, 0, path, depth)
}

#[allow(clippy::too_many_arguments)]
fn read_field(
    btf: &Btf,
    id: u32,
    j: &Json,
    bytes: &mut [u8],
    bit: u64,
    bitfield: u32,
    path: &mut String,
    depth: usize,
) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!("{path}: types nest too deep"));
    }
    let t = kind_of(btf, id)?;
    match &t.kind {
        Kind::Int {
            encoding,
            offset,
            bits,
        } => {
            let signed = encoding & INT_SIGNED != 0;
            let width = if bitfield != 0 {
                bitfield
            } else {
                u32::from(*bits)
            };
            let at = bit + u64::from(*offset);
            if encoding & INT_BOOL != 0 && bitfield == 0 {
                let b = j
                    .as_bool()
                    .ok_or_else(|| format!("{path}: expected true or false, got {}", shown(j)))?;
                set_bits(bytes, at, width, u128::from(b));
                return Ok(());
            }
            let name = int_name(t.size, width as u8, signed, bitfield != 0);
            if encoding & INT_CHAR != 0 {
                if let Some(s) = j.as_str() {
                    let mut chars = s.bytes();
                    return match (chars.next(), chars.next()) {
                        (Some(c), None) => {
                            set_bits(bytes, at, width, u128::from(c));
                            Ok(())
                        }
                        _ => Err(format!("{path}: expected one character, got {}", shown(j))),
                    };
                }
            }
            let v = if width > 64 {
                match (hex_string(j), json_int(j)) {
                    (Some(Ok(v)), _) => {
                        if width < 128 && v >> width != 0 {
                            return Err(format!("{path}: {} does not fit {name}", shown(j)));
                        }
                        set_bits(bytes, at, width, v);
                        return Ok(());
                    }
                    (Some(Err(())), _) => {
                        return Err(format!("{path}: {} is not a hex number", shown(j)))
                    }
                    (None, Some(Int::Val(v))) => v,
                    (None, Some(Int::Huge(s))) => {
                        return Err(format!(
                            "{path}: {s} is too large; give it as a \"0x...\" hex string"
                        ))
                    }
                    (None, None) => {
                        return Err(format!(
                            "{path}: expected a number or a \"0x...\" string ({name}), got {}",
                            shown(j)
                        ))
                    }
                }
            } else {
                match json_int(j) {
                    Some(Int::Val(v)) => v,
                    Some(Int::Huge(s)) => return Err(format!("{path}: {s} does not fit {name}")),
                    None if j.is_number() => {
                        return Err(format!("{path}: {} is not an integer ({name})", shown(j)))
                    }
                    None => {
                        return Err(format!(
                            "{path}: expected a number ({name}), got {}",
                            shown(j)
                        ))
                    }
                }
            };
            let (min, max) = if signed {
                (-(1i128 << (width - 1)), (1i128 << (width - 1)) - 1)
            } else {
                (
                    0,
                    if width >= 127 {
                        i128::MAX
                    } else {
                        (1i128 << width) - 1
                    },
                )
            };
            if v < min || v > max {
                return Err(format!("{path}: {v} does not fit {name}"));
            }
            set_bits(bytes, at, width, v as u128);
        }
        Kind::Ptr(_) => {
            let v = match (hex_string(j), json_int(j)) {
                (Some(Ok(v)), _) if v <= u128::from(u64::MAX) => v,
                (None, Some(Int::Val(v))) if (0..=i128::from(u64::MAX)).contains(&v) => v as u128,
                _ => {
                    return Err(format!(
                        "{path}: expected a pointer as a \"0x...\" hex string or a 64-bit number, got {}",
                        shown(j)
                    ))
                }
            };
            set_bits(bytes, bit, 64, v);
        }
        Kind::Float => {
            let f = j
                .as_f64()
                .ok_or_else(|| format!("{path}: expected a number, got {}", shown(j)))?;
            match t.size {
                4 => set_bits(bytes, bit, 32, u128::from((f as f32).to_bits())),
                8 => set_bits(bytes, bit, 64, u128::from(f.to_bits())),
                n => return Err(format!("{path}: {n}-byte floats are not supported")),
            }
        }
        Kind::Enum { signed, values, .. } => {
            let tname = if t.name.is_empty() {
                "enum".to_owned()
            } else {
                format!("enum {}", t.name)
            };
            let width = t.size * 8;
            let v = if let Some(s) = j.as_str() {
                values
                    .iter()
                    .find(|(n, _)| n == s)
                    .map(|(_, v)| *v)
                    .ok_or_else(|| {
                        let names: Vec<&str> = values.iter().map(|(n, _)| n.as_str()).collect();
                        format!(
                            "{path}: {} is not a value of {tname} ({})",
                            shown(j),
                            names.join(", ")
                        )
                    })?
            } else {
                match json_int(j) {
                    Some(Int::Val(v)) => {
                        let (min, max) = if *signed {
                            (-(1i128 << (width - 1)), (1i128 << (width - 1)) - 1)
                        } else {
                            (0, (1i128 << width) - 1)
                        };
                        // Accept the other signedness's spelling of the same bits too.
                        let (lo, hi) = (
                            min.min(-(1i128 << (width - 1))),
                            max.max((1i128 << width) - 1),
                        );
                        if v < lo || v > hi {
                            return Err(format!(
                                "{path}: {v} does not fit {tname} ({} bytes)",
                                t.size
                            ));
                        }
                        v
                    }
                    _ => {
                        return Err(format!(
                            "{path}: expected a name of {tname} or a number, got {}",
                            shown(j)
                        ))
                    }
                }
            };
            set_bits(bytes, bit, width, v as u128);
        }
        Kind::Array { elem, len, .. } => {
            let esize = btf.size_of(*elem).ok_or("array of a type without size")?;
            if let (Some(s), true) = (j.as_str(), is_char(btf, *elem)) {
                if s.len() > *len as usize || s.bytes().any(|b| b == 0) {
                    return Err(format!(
                        "{path}: {} does not fit char[{len}] (at most {len} bytes, no NUL)",
                        shown(j)
                    ));
                }
                let start = (bit / 8) as usize;
                if let Some(dst) = bytes.get_mut(start..start + s.len()) {
                    dst.copy_from_slice(s.as_bytes());
                }
                return Ok(());
            }
            let items = j.as_array().ok_or_else(|| {
                if is_char(btf, *elem) {
                    format!(
                        "{path}: expected a string or a list of {len} numbers, got {}",
                        shown(j)
                    )
                } else {
                    format!(
                        "{path}: expected a list of {len} elements, got {}",
                        shown(j)
                    )
                }
            })?;
            if items.len() != *len as usize {
                return Err(format!(
                    "{path}: expected {len} elements, got {}",
                    items.len()
                ));
            }
            let base = path.len();
            for (i, item) in items.iter().enumerate() {
                path.push_str(&format!("[{i}]"));
                read(
                    btf,
                    *elem,
                    item,
                    bytes,
                    bit + i as u64 * esize * 8,
                    path,
                    depth + 1,
                )?;
                path.truncate(base);
            }
        }
        Kind::Struct(ms) | Kind::Union(ms) => {
            let union = matches!(t.kind, Kind::Union(_));
            let what = match (union, t.name.is_empty()) {
                (false, false) => format!("struct {}", t.name),
                (true, false) => format!("union {}", t.name),
                (false, true) => "struct".to_owned(),
                (true, true) => "union".to_owned(),
            };
            let names = || {
                ms.iter()
                    .map(|m| m.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let obj = j.as_object().ok_or_else(|| {
                format!(
                    "{path}: expected an object ({what}: {}), got {}",
                    names(),
                    shown(j)
                )
            })?;
            if let Some(k) = obj.keys().find(|k| !ms.iter().any(|m| &m.name == *k)) {
                return Err(format!(
                    "{path}: unknown field {k:?} ({what} has {})",
                    names()
                ));
            }
            let base = path.len();
            let mut given = Vec::new();
            for m in ms {
                let Some(v) = obj.get(&m.name) else {
                    if union {
                        continue;
                    }
                    let sep = if m.name.is_empty() { "" } else { "." };
                    return Err(format!(
                        "{path}{sep}{}: missing ({what} needs {})",
                        m.name,
                        names()
                    ));
                };
                if !m.name.is_empty() {
                    path.push('.');
                    path.push_str(&m.name);
                }
                read_field(
                    btf,
                    m.ty,
                    v,
                    bytes,
                    bit + u64::from(m.bit_offset),
                    m.bitfield_size,
                    path,
                    depth + 1,
                )?;
                path.truncate(base);
                given.push((m, v));
            }
            if union {
                if given.is_empty() {
                    return Err(format!("{path}: give one member of {what} ({})", names()));
                }
                // Several members: they must describe the same bytes (as our output does).
                for (m, v) in &given {
                    let mut shown_now = String::new();
                    write_field(
                        btf,
                        m.ty,
                        bytes,
                        bit + u64::from(m.bit_offset),
                        m.bitfield_size,
                        &mut shown_now,
                        depth + 1,
                    )?;
                    let now: Json = serde_json::from_str(&shown_now).unwrap_or(Json::Null);
                    if &now != *v {
                        return Err(format!(
                            "{path}: the members given disagree ({} is {} with the others written); a union holds one value: give one member",
                            m.name, shown_now
                        ));
                    }
                }
            }
        }
        other => {
            return Err(format!(
                "{path}: {} types cannot be written as JSON",
                kind_word(other)
            ))
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::panic)]
mod tests {
    use super::super::decl::Builder;
    use super::*;

    fn typed(src: &str) -> (Btf, u32) {
        let mut b = Builder::new();
        let id = b.declare(src).unwrap_or_else(|e| panic!("{src}: {e}"));
        (b.into_btf(), id)
    }

    fn to_bytes(btf: &Btf, id: u32, text: &str) -> Result<Vec<u8>, String> {
        let j: Json = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let mut bytes = vec![0u8; btf.size_of(id).unwrap_or(0) as usize];
        parse(btf, id, &j, &mut bytes, "value")?;
        Ok(bytes)
    }

    fn to_text(btf: &Btf, id: u32, bytes: &[u8]) -> String {
        let mut s = String::new();
        format(btf, id, bytes, &mut s).unwrap_or_else(|e| panic!("{e}"));
        s
    }

    #[test]
    fn integers_of_every_size_and_sign() {
        let (btf, id) = typed(
            "struct i { __u8 a; __s8 b; __u16 c; __s16 d; __u32 e; __s32 f; __u64 g; __s64 h; }",
        );
        let text = r#"{"a":255,"b":-128,"c":65535,"d":-32768,"e":4294967295,"f":-2147483648,"g":18446744073709551615,"h":-9223372036854775808}"#;
        let bytes = to_bytes(&btf, id, text).unwrap_or_default();
        assert_eq!(bytes.len(), 32);
        assert_eq!(bytes[0], 255);
        assert_eq!(bytes[1], 0x80);
        assert_eq!(&bytes[16..24], &u64::MAX.to_ne_bytes());
        assert_eq!(&bytes[24..32], &i64::MIN.to_ne_bytes());
        assert_eq!(to_text(&btf, id, &bytes), text);
    }

    #[test]
    fn strings_arrays_bools_pointers_unions_enums() {
        let (btf, id) = typed(
            "enum dir { IN, OUT }; union u { __u32 x; __u8 b[4]; }; struct v { char comm[8]; __u16 ports[2]; bool on; enum dir d; union u u; void *p; __u128 big; }",
        );
        let mut bytes = to_bytes(
            &btf,
            id,
            r#"{"comm":"curl","ports":[80,443],"on":true,"d":"OUT","u":{"x":16909060},"p":"0xffff8880","big":"0x1000000000000000000"}"#,
        )
        .unwrap_or_default();
        assert_eq!(&bytes[..8], b"curl\0\0\0\0");
        let text = to_text(&btf, id, &bytes);
        let expected_b: Vec<u8> = 16909060u32.to_ne_bytes().to_vec();
        assert_eq!(
            text,
            format!(
                r#"{{"comm":"curl","ports":[80,443],"on":true,"d":"OUT","u":{{"x":16909060,"b":[{},{},{},{}]}},"p":"0xffff8880","big":"0x1000000000000000000"}}"#,
                expected_b[0], expected_b[1], expected_b[2], expected_b[3]
            )
        );
        // The output goes back in unchanged (the union's members agree).
        assert_eq!(to_bytes(&btf, id, &text).ok(), Some(bytes.clone()));
        // Garbage after the NUL keeps every byte: a list.
        bytes[6] = b'x';
        assert!(to_text(&btf, id, &bytes).starts_with(r#"{"comm":[99,117,114,108,0,0,120,0]"#));
        // An enum value without a name is its number.
        let d_at = 16;
        bytes[d_at..d_at + 4].copy_from_slice(&7u32.to_ne_bytes());
        assert!(to_text(&btf, id, &bytes).contains(r#""d":7"#));
    }

    #[test]
    fn bitfields_read_and_write() {
        let (btf, id) = typed("struct b { __u32 a: 3; int s: 4; __u32 c: 25; __u8 tail; }");
        let text = r#"{"a":5,"s":-3,"c":33554431,"tail":9}"#;
        let bytes = to_bytes(&btf, id, text).unwrap_or_default();
        let word = u32::from_ne_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        assert_eq!(word & 7, 5);
        assert_eq!((word >> 3) & 15, 13); // -3 in 4 bits
        assert_eq!(to_text(&btf, id, &bytes), text);
        let e = to_bytes(&btf, id, r#"{"a":8,"s":0,"c":0,"tail":0}"#)
            .err()
            .unwrap_or_default();
        assert_eq!(e, "value.a: 8 does not fit a 3-bit unsigned bitfield");
    }

    #[test]
    fn errors_name_the_field_path() {
        let (btf, id) = typed(
            "struct stats { __u8 bytes; __u32 n; }; struct v { struct stats stats; char comm[4]; __u16 arr[2]; bool ok; }",
        );
        let good = r#"{"stats":{"bytes":1,"n":2},"comm":"ab","arr":[1,2],"ok":false}"#;
        assert!(to_bytes(&btf, id, good).is_ok());
        for (text, want) in [
            (
                r#"{"stats":{"bytes":300,"n":2},"comm":"ab","arr":[1,2],"ok":false}"#,
                "value.stats.bytes: 300 does not fit u8",
            ),
            (
                r#"{"stats":{"bytes":-1,"n":2},"comm":"ab","arr":[1,2],"ok":false}"#,
                "value.stats.bytes: -1 does not fit u8",
            ),
            (
                r#"{"stats":{"n":2},"comm":"ab","arr":[1,2],"ok":false}"#,
                "value.stats.bytes: missing (struct stats needs bytes, n)",
            ),
            (
                r#"{"stats":{"bytes":1,"n":2,"x":1},"comm":"ab","arr":[1,2],"ok":false}"#,
                "value.stats: unknown field \"x\" (struct stats has bytes, n)",
            ),
            (
                r#"{"stats":{"bytes":"1","n":2},"comm":"ab","arr":[1,2],"ok":false}"#,
                "value.stats.bytes: expected a number (u8), got \"1\"",
            ),
            (
                r#"{"stats":{"bytes":1.5,"n":2},"comm":"ab","arr":[1,2],"ok":false}"#,
                "value.stats.bytes: 1.5 is not an integer (u8)",
            ),
            (
                r#"{"stats":{"bytes":1,"n":2},"comm":"abcde","arr":[1,2],"ok":false}"#,
                "value.comm: \"abcde\" does not fit char[4] (at most 4 bytes, no NUL)",
            ),
            (
                r#"{"stats":{"bytes":1,"n":2},"comm":"ab","arr":[1],"ok":false}"#,
                "value.arr: expected 2 elements, got 1",
            ),
            (
                r#"{"stats":{"bytes":1,"n":2},"comm":"ab","arr":[1,70000],"ok":false}"#,
                "value.arr[1]: 70000 does not fit u16",
            ),
            (
                r#"{"stats":{"bytes":1,"n":2},"comm":"ab","arr":[1,2],"ok":1}"#,
                "value.ok: expected true or false, got 1",
            ),
            (
                r#"[1]"#,
                "value: expected an object (struct v: stats, comm, arr, ok), got [1]",
            ),
        ] {
            assert_eq!(
                to_bytes(&btf, id, text).err().as_deref(),
                Some(want),
                "{text}"
            );
        }
        let (btf, id) = typed("__u64");
        assert_eq!(
            to_bytes(&btf, id, "18446744073709551616").err().as_deref(),
            Some("value: 18446744073709551616 does not fit u64")
        );
        let (btf, id) = typed("enum e { A, B }");
        assert_eq!(
            to_bytes(&btf, id, r#""C""#).err().as_deref(),
            Some("value: \"C\" is not a value of enum e (A, B)")
        );
        let (btf, id) = typed("union u { __u32 x; __u8 b; }");
        assert!(to_bytes(&btf, id, r#"{"x":1,"b":2}"#)
            .err()
            .is_some_and(|e| e.contains("disagree")));
    }
}
