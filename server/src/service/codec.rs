//! Keys and values between the wire's `Data` forms and the kernel's bytes.
//!
//! Input forms: raw bytes, bpftool hex, a host-order number, typed JSON (BTF, later). Output in
//! the requested `Format`. Per-CPU values are laid out as the kernel wants them:
//! round_up(value_size, 8) bytes for each possible CPU.

use bpfmap_proto::v1::{data::Form, Data, Format};
use bytes::Bytes;

use crate::error::{Error, Result};
use crate::kernel::Map;

/// The message for FORMAT_JSON until BTF support lands.
fn no_btf(what: &str) -> Error {
    Error::InvalidArgument(format!(
        "{what}: JSON needs BTF type information, and this map has no BTF types the daemon can decode yet; use raw, hex or number"
    ))
}

/// Decodes `data` into exactly `size` bytes. `what` names the field in messages.
pub fn decode(data: &Data, size: usize, what: &str) -> Result<Vec<u8>> {
    let bytes = match &data.form {
        None => {
            return Err(Error::InvalidArgument(format!(
                "{what} is empty: set raw, hex or number"
            )))
        }
        Some(Form::Raw(b)) => b.to_vec(),
        Some(Form::Hex(h)) => bpfmap_proto::hex::parse(h)
            .map_err(|e| Error::InvalidArgument(format!("{what}: {e}")))?,
        Some(Form::Number(n)) => return number_bytes(*n, size, what),
        Some(Form::Json(_)) => return Err(no_btf(what)),
    };
    if bytes.len() != size {
        return Err(Error::InvalidArgument(format!(
            "{what}: expected {size} bytes, got {}",
            bytes.len()
        )));
    }
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
pub fn encode(bytes: Bytes, format: Format, what: &str) -> Result<Data> {
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
        Format::Json => return Err(no_btf(what)),
    };
    Ok(Data { form: Some(form) })
}

/// Checks up front that `format` can express this map's keys and values, so that a dump
/// fails before its first message rather than in the middle.
pub fn check_format(map: &Map, format: Format) -> Result<()> {
    match format {
        Format::Raw | Format::Hex => Ok(()),
        Format::Json => Err(no_btf("format")),
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
pub fn value_in(map: &Map, value: Option<&Data>, per_cpu: &[Data]) -> Result<Vec<u8>> {
    let vs = map.value_size as usize;
    if !map.kind.is_percpu() {
        if !per_cpu.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "per_cpu_values is only for per-CPU maps; this is a {} map: set value",
                map.kind.name()
            )));
        }
        let value = value.ok_or_else(|| Error::InvalidArgument("value is required".into()))?;
        return decode(value, vs, "value");
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
            let bytes = decode(v, vs, "value")?;
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
                let bytes = decode(v, vs, &format!("per_cpu_values[{cpu}]"))?;
                out[cpu * slot..cpu * slot + vs].copy_from_slice(&bytes);
            }
        }
    }
    Ok(out)
}

/// Splits a kernel value (`value_stride()` bytes, shared) into the wire's value or per-CPU
/// values: `(value, per_cpu_values)`.
pub fn value_out(map: &Map, raw: Bytes, format: Format) -> Result<(Option<Data>, Vec<Data>)> {
    let vs = map.value_size as usize;
    if !map.kind.is_percpu() {
        return Ok((Some(encode(raw, format, "value")?), Vec::new()));
    }
    let slot = vs.div_ceil(8) * 8;
    let per_cpu = (0..map.percpu_count() as usize)
        .map(|cpu| encode(raw.slice(cpu * slot..cpu * slot + vs), format, "value"))
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
        assert_eq!(decode(&hex("c1 c2"), 2, "key").ok(), Some(vec![0xc1, 0xc2]));
        let e = decode(&hex("c1 c2 c3"), 4, "key")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains("key") && e.contains("expected 4 bytes, got 3"),
            "{e}"
        );
        let e = decode(&hex("zz"), 1, "value")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("hex"), "{e}");
        let n = Data {
            form: Some(Form::Number(258)),
        };
        assert_eq!(
            decode(&n, 4, "key").ok(),
            Some(258u32.to_ne_bytes().to_vec())
        );
        assert!(decode(&n, 1, "key").is_err());
        assert!(decode(&n, 3, "key").is_err());
        assert!(decode(
            &Data {
                form: Some(Form::Json("1".into()))
            },
            4,
            "key"
        )
        .err()
        .is_some_and(|e| e.to_string().contains("BTF")));
    }

    #[test]
    fn encodes_like_bpftool() {
        let d = encode(Bytes::from_static(&[0xa1, 0xa2]), Format::Hex, "value").ok();
        assert_eq!(d, Some(hex("a1 a2")));
        let d = encode(
            Bytes::copy_from_slice(&7u64.to_ne_bytes()),
            Format::Number,
            "value",
        )
        .ok();
        assert_eq!(
            d,
            Some(Data {
                form: Some(Form::Number(7))
            })
        );
        assert!(encode(Bytes::from_static(&[1, 2, 3]), Format::Number, "key").is_err());
    }
}
