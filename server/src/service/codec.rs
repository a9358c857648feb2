//! Keys and values between the wire's `Data` forms and the kernel's bytes.
//!
//! Input forms: raw bytes, bpftool hex, a host-order number, typed JSON (through the map's
//! BTF, see [`crate::btf`]). Output in the requested `Format`. The BTF is looked up only
//! when a JSON form is used ([`Types`]). Per-CPU values are laid out as the kernel wants them:
//! round_up(value_size, 8) bytes for each possible CPU.

use std::sync::Arc;
use std::sync::OnceLock;

use bpfmap_proto::v1::{data::Form, Data, Format};
use bytes::Bytes;

use crate::btf::{json, BtfCache, MapTypes};
use crate::error::{Error, Result};
use crate::kernel::Map;
use crate::registry::desc;

/// Which half of an entry a `Data` is: picks the BTF type for the JSON forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The key.
    Key,
    /// The value.
    Value,
}

/// A map's BTF types for one request, looked up only when a JSON form needs them.
#[derive(Debug)]
pub struct Types<'a> {
    map: Option<&'a Map>,
    cache: Option<&'a BtfCache>,
    loaded: OnceLock<Option<Arc<MapTypes>>>,
}

impl<'a> Types<'a> {
    /// Looks the types up in `cache` on first use.
    pub fn lazy(map: &'a Map, cache: &'a BtfCache) -> Types<'a> {
        Types {
            map: Some(map),
            cache: Some(cache),
            loaded: OnceLock::new(),
        }
    }

    /// Types already looked up (the dump's reader thread).
    pub fn fixed(map: &'a Map, types: Option<Arc<MapTypes>>) -> Types<'a> {
        let loaded = OnceLock::new();
        let _ = loaded.set(types);
        Types {
            map: Some(map),
            cache: None,
            loaded,
        }
    }

    /// No types at all: JSON forms are refused.
    pub fn none() -> Types<'static> {
        let loaded = OnceLock::new();
        let _ = loaded.set(None);
        Types {
            map: None,
            cache: None,
            loaded,
        }
    }

    fn map_desc(&self) -> String {
        self.map
            .map(|m| desc(m).to_string())
            .unwrap_or_else(|| "this map".into())
    }

    /// The map's types, None when it has no BTF.
    pub fn get(&self) -> Result<Option<&Arc<MapTypes>>> {
        if let Some(t) = self.loaded.get() {
            return Ok(t.as_ref());
        }
        let t = match (self.cache, self.map) {
            (Some(c), Some(m)) => c.map_types(m)?.map(Arc::new),
            _ => None,
        };
        Ok(self.loaded.get_or_init(|| t).as_ref())
    }

    /// The BTF type of `side`, or an error saying why JSON cannot be used.
    fn of(&self, side: Side, what: &str) -> Result<(&Arc<MapTypes>, u32)> {
        let half = match side {
            Side::Key => "key",
            Side::Value => "value",
        };
        let Some(t) = self.get()? else {
            return Err(Error::InvalidArgument(format!(
                "{what}: JSON needs BTF type information, and {} has none (create maps with key_type and value_type to get it); use raw, hex or number",
                self.map_desc()
            )));
        };
        let id = match side {
            Side::Key => t.key,
            Side::Value => t.value,
        };
        if id == 0 {
            return Err(Error::InvalidArgument(format!(
                "{what}: JSON needs a BTF type for the {half}, and the {half} of {} has none; use raw, hex or number",
                self.map_desc()
            )));
        }
        Ok((t, id))
    }
}

/// Decodes `data` into exactly `size` bytes. `what` names the field in messages.
pub fn decode(
    data: &Data,
    size: usize,
    what: &str,
    types: &Types<'_>,
    side: Side,
) -> Result<Vec<u8>> {
    let bytes = match &data.form {
        None => {
            return Err(Error::InvalidArgument(format!(
                "{what} is empty: set raw, hex, number or json"
            )))
        }
        Some(Form::Raw(b)) => b.to_vec(),
        Some(Form::Hex(h)) => bpfmap_proto::hex::parse(h)
            .map_err(|e| Error::InvalidArgument(format!("{what}: {e}")))?,
        Some(Form::Number(n)) => return number_bytes(*n, size, what),
        Some(Form::Json(text)) => return json_bytes(text, size, what, types, side),
    };
    if bytes.len() != size {
        return Err(Error::InvalidArgument(format!(
            "{what}: expected {size} bytes, got {}",
            bytes.len()
        )));
    }
    Ok(bytes)
}

fn json_bytes(
    text: &str,
    size: usize,
    what: &str,
    types: &Types<'_>,
    side: Side,
) -> Result<Vec<u8>> {
    let (t, id) = types.of(side, what)?;
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| Error::InvalidArgument(format!("{what}: not JSON: {e}")))?;
    let mut bytes = vec![0u8; size];
    json::parse(&t.btf, id, &value, &mut bytes, what).map_err(Error::InvalidArgument)?;
    Ok(bytes)
}
fn number_bytes(n: u64, size: usize, what: &str) -> Result<Vec<u8>> {
    let fits = |max: u64| {
        if n <= max {
            Ok(())
        } else {
            Err(Error::InvalidArgument(format!(
                "{what}: {n} does not fit in {size} bytes (max {max})"
            )))
        }
    };
    Ok(match size {
        1 => {
            fits(u8::MAX.into())?;
            vec![n as u8]
        }
        2 => {
            fits(u16::MAX.into())?;
            (n as u16).to_ne_bytes().to_vec()
        }
        4 => {
            fits(u32::MAX.into())?;
            (n as u32).to_ne_bytes().to_vec()
        }
        8 => n.to_ne_bytes().to_vec(),
        _ => {
            return Err(Error::InvalidArgument(format!(
                "{what}: a number fits only keys/values of 1, 2, 4 or 8 bytes; this one has {size} bytes (use raw or hex)"
            )))
        }
    })
}

/// Encodes `bytes` in `format`.
pub fn encode(
    bytes: Bytes,
    format: Format,
    what: &str,
    types: &Types<'_>,
    side: Side,
) -> Result<Data> {
    let form = match format {
        Format::Raw => Form::Raw(bytes),
        Format::Hex => Form::Hex(bpfmap_proto::hex::format(&bytes)),
        Format::Number => {
            let n = match bytes.len() {
                1 => u64::from(bytes[0]),
                2 => u64::from(u16::from_ne_bytes([bytes[0], bytes[1]])),
                4 => u64::from(u32::from_ne_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])),
                8 => {
                    let mut a = [0u8; 8];
                    a.copy_from_slice(&bytes);
                    u64::from_ne_bytes(a)
                }
                n => {
                    return Err(Error::InvalidArgument(format!(
                        "FORMAT_NUMBER needs a {what} of 1, 2, 4 or 8 bytes; this map's {what} has {n} bytes (use FORMAT_HEX or FORMAT_RAW)"
                    )))
                }
            };
            Form::Number(n)
        }
        Format::Json => {
            let (t, id) = types.of(side, what)?;
            let mut text = String::with_capacity(bytes.len() * 4);
            json::format(&t.btf, id, &bytes, &mut text)
                .map_err(|e| Error::Internal(format!("{what}: cannot show as JSON: {e}")))?;
            Form::Json(text)
        }
    };
    Ok(Data { form: Some(form) })
}

/// Checks up front that `format` can express this map's keys and values, so that a dump
/// fails before its first message rather than in the middle.
pub fn check_format(map: &Map, format: Format, types: &Types<'_>) -> Result<()> {
    match format {
        Format::Raw | Format::Hex => Ok(()),
        Format::Json => {
            if map.key_size != 0 {
                types.of(Side::Key, "FORMAT_JSON")?;
            }
            types.of(Side::Value, "FORMAT_JSON").map(drop)
        }
        Format::Number => {
            for (what, size) in [("key", map.key_size), ("value", map.value_size)] {
                if !matches!(size, 0 | 1 | 2 | 4 | 8) {
                    return Err(Error::InvalidArgument(format!(
                        "FORMAT_NUMBER needs a {what} of 1, 2, 4 or 8 bytes; this map's {what} has {size} bytes (use FORMAT_HEX or FORMAT_RAW)"
                    )));
                }
            }
            Ok(())
        }
    }
}

/// A value for the kernel: `value_stride()` bytes. Per-CPU maps take either one value
/// (written to every CPU) or exactly one per possible CPU.
pub fn value_in(
    map: &Map,
    value: Option<&Data>,
    per_cpu: &[Data],
    types: &Types<'_>,
) -> Result<Vec<u8>> {
    let vs = map.value_size as usize;
    if !map.kind.is_percpu() {
        if !per_cpu.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "per_cpu_values is only for per-CPU maps; this is a {} map: set value",
                map.kind.name()
            )));
        }
        let value = value.ok_or_else(|| Error::InvalidArgument("value is required".into()))?;
        return decode(value, vs, "value", types, Side::Value);
    }
    let ncpu = map.percpu_count() as usize;
    let slot = vs.div_ceil(8) * 8;
    let mut out = vec![0u8; slot * ncpu];
    match (value, per_cpu.is_empty()) {
        (Some(_), false) => {
            return Err(Error::InvalidArgument(
                "set either value (for every CPU) or per_cpu_values, not both".into(),
            ))
        }
        (None, true) => {
            return Err(Error::InvalidArgument(
                "value or per_cpu_values is required".into(),
            ))
        }
        (Some(v), true) => {
            let bytes = decode(v, vs, "value", types, Side::Value)?;
            for cpu in 0..ncpu {
                out[cpu * slot..cpu * slot + vs].copy_from_slice(&bytes);
            }
        }
        (None, false) => {
            if per_cpu.len() != ncpu {
                return Err(Error::InvalidArgument(format!(
                    "per_cpu_values: expected {ncpu} values (one per possible CPU), got {}",
                    per_cpu.len()
                )));
            }
            for (cpu, v) in per_cpu.iter().enumerate() {
                let bytes = decode(v, vs, &format!("per_cpu_values[{cpu}]"), types, Side::Value)?;
                out[cpu * slot..cpu * slot + vs].copy_from_slice(&bytes);
            }
        }
    }
    Ok(out)
}

/// Splits a kernel value (`value_stride()` bytes, shared) into the wire's value or per-CPU
/// values: `(value, per_cpu_values)`.
pub fn value_out(
    map: &Map,
    raw: Bytes,
    format: Format,
    types: &Types<'_>,
) -> Result<(Option<Data>, Vec<Data>)> {
    let vs = map.value_size as usize;
    if !map.kind.is_percpu() {
        return Ok((
            Some(encode(raw, format, "value", types, Side::Value)?),
            Vec::new(),
        ));
    }
    let slot = vs.div_ceil(8) * 8;
    let per_cpu = (0..map.percpu_count() as usize)
        .map(|cpu| {
            encode(
                raw.slice(cpu * slot..cpu * slot + vs),
                format,
                "value",
                types,
                Side::Value,
            )
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((None, per_cpu))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Data {
        Data {
            form: Some(Form::Hex(s.into())),
        }
    }

    #[test]
    fn decodes_each_form_and_names_the_field() {
        assert_eq!(
            decode(&hex("c1 c2"), 2, "key", &Types::none(), Side::Key).ok(),
            Some(vec![0xc1, 0xc2])
        );
        let e = decode(&hex("c1 c2 c3"), 4, "key", &Types::none(), Side::Key)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains("key") && e.contains("expected 4 bytes, got 3"),
            "{e}"
        );
        let e = decode(&hex("zz"), 1, "value", &Types::none(), Side::Value)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("hex"), "{e}");
        let n = Data {
            form: Some(Form::Number(258)),
        };
        assert_eq!(
            decode(&n, 4, "key", &Types::none(), Side::Key).ok(),
            Some(258u32.to_ne_bytes().to_vec())
        );
        assert!(decode(&n, 1, "key", &Types::none(), Side::Key).is_err());
        assert!(decode(&n, 3, "key", &Types::none(), Side::Key).is_err());
        assert!(decode(
            &Data {
                form: Some(Form::Json("1".into()))
            },
            4,
            "key",
            &Types::none(),
            Side::Key
        )
        .err()
        .is_some_and(|e| e.to_string().contains("BTF")));
    }

    #[test]
    fn encodes_like_bpftool() {
        let d = encode(
            Bytes::from_static(&[0xa1, 0xa2]),
            Format::Hex,
            "value",
            &Types::none(),
            Side::Value,
        )
        .ok();
        assert_eq!(d, Some(hex("a1 a2")));
        let d = encode(
            Bytes::copy_from_slice(&7u64.to_ne_bytes()),
            Format::Number,
            "value",
            &Types::none(),
            Side::Value,
        )
        .ok();
        assert_eq!(
            d,
            Some(Data {
                form: Some(Form::Number(7))
            })
        );
        assert!(encode(
            Bytes::from_static(&[1, 2, 3]),
            Format::Number,
            "key",
            &Types::none(),
            Side::Key
        )
        .is_err());
    }
}
