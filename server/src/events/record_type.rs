//! The BTF type that ReadEvents decodes records with (`record_type`, FORMAT_JSON).
//!
//! A ring buffer or perf event array has no key or value type: what a program writes to it
//! is only described by the program's own BTF. So `record_type` is either a *name* (`struct
//! event`, `event_t`), looked up in the BTF of the programs that use the map (found through
//! each program's `bpf_prog_info`), or a C *declaration* (`struct event { __u64 seq; __u32
//! len; }`, `__u64`, `char[16]`), built into BTF the way CreateMap's key_type is.

use std::sync::Arc;

use crate::btf::decl::{is_builtin_name, Builder};
use crate::btf::model::{Btf, Kind};
use crate::btf::{json, BtfCache};
use crate::error::{Error, Result};
use crate::kernel::{prog_btf_ids_using_map, Map};
use crate::registry::desc;

/// A resolved record type.
#[derive(Debug, Clone)]
pub struct RecordType {
    btf: Arc<Btf>,
    id: u32,
    size: usize,
    /// Where it came from, for messages.
    source: String,
}

/// The identifier of a bare type name: `struct event` → (Some("struct"), "event").
fn bare_name(src: &str) -> Option<(Option<&str>, &str)> {
    let words: Vec<&str> = src.split_whitespace().collect();
    let ident = |w: &str| {
        w.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    match words.as_slice() {
        [tag @ ("struct" | "union" | "enum"), name] if ident(name) => Some((Some(tag), name)),
        [name] if ident(name) => Some((None, name)),
        _ => None,
    }
}

/// The id of a type called `name` in `btf` (of the tag's kind when one is given).
fn find(btf: &Btf, tag: Option<&str>, name: &str) -> Option<u32> {
    (1..btf.len() as u32).find(|&id| {
        let Some(t) = btf.get(id) else { return false };
        if t.name != name {
            return false;
        }
        matches!(
            (tag, &t.kind),
            (Some("struct"), Kind::Struct(_))
                | (Some("union"), Kind::Union(_))
                | (Some("enum"), Kind::Enum { .. })
                | (
                    None,
                    Kind::Struct(_)
                        | Kind::Union(_)
                        | Kind::Enum { .. }
                        | Kind::Typedef(_)
                        | Kind::Int { .. }
                        | Kind::Float
                )
        )
    })
}

impl RecordType {
    /// Resolves `src` for records of `map` (see the module docs).
    pub fn resolve(map: &Map, src: &str, cache: &BtfCache) -> Result<RecordType> {
        let src = src.trim();
        if let Some((tag, name)) = bare_name(src).filter(|(_, n)| !is_builtin_name(n)) {
            let mut ids = prog_btf_ids_using_map(map.id).map_err(|e| Error::Kernel {
                context: "listing the programs that use the map".into(),
                source: e,
            })?;
            if map.btf_id != 0 && !ids.contains(&map.btf_id) {
                ids.push(map.btf_id);
            }
            for btf_id in &ids {
                let btf = cache.get(*btf_id)?;
                if let Some(id) = find(&btf, tag, name) {
                    return RecordType::new(btf, id, format!("{src} of BTF object {btf_id}"));
                }
            }
            let where_ = if ids.is_empty() {
                format!("no program with BTF uses {}", desc(map))
            } else {
                let list: Vec<String> = ids.iter().map(u32::to_string).collect();
                format!(
                    "the BTF of the programs that use {} (objects {}) has no type {src}",
                    desc(map),
                    list.join(", ")
                )
            };
            return Err(Error::InvalidArgument(format!(
                "record_type {src:?}: {where_}; give a C declaration instead, e.g. \"struct event {{ __u64 seq; __u32 len; }}\""
            )));
        }
        let mut b = Builder::new();
        let id = b
            .declare(src)
            .map_err(|e| Error::InvalidArgument(format!("record_type: {e}")))?;
        RecordType::new(Arc::new(b.into_btf()), id, src.to_owned())
    }

    fn new(btf: Arc<Btf>, id: u32, source: String) -> Result<RecordType> {
        let size = btf
            .size_of(id)
            .filter(|s| *s > 0)
            .ok_or_else(|| Error::InvalidArgument(format!("record_type {source}: no size")))?;
        Ok(RecordType {
            btf,
            id,
            size: size as usize,
            source,
        })
    }

    /// Bytes of a record of this type.
    pub fn size(&self) -> usize {
        self.size
    }

    /// A record as typed JSON. Bytes past the type (a perf sample's padding) are not shown;
    /// a record shorter than the type is an error.
    pub fn format(&self, record: &[u8]) -> Result<String> {
        if record.len() < self.size {
            return Err(Error::InvalidArgument(format!(
                "a record of {} bytes is shorter than record_type {} ({} bytes)",
                record.len(),
                self.source,
                self.size
            )));
        }
        let mut out = String::with_capacity(record.len() * 4);
        json::format(&self.btf, self.id, &record[..self.size], &mut out)
            .map_err(|e| Error::Internal(format!("record as JSON: {e}")))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_declarations_are_told_apart() {
        assert_eq!(bare_name("struct event"), Some((Some("struct"), "event")));
        assert_eq!(bare_name(" event_t "), Some((None, "event_t")));
        assert_eq!(bare_name("struct event { __u64 seq; }"), None);
        assert_eq!(bare_name("char[16]"), None);
        assert_eq!(bare_name("unsigned long"), None);
    }

    #[test]
    fn a_declared_type_formats_records_and_refuses_short_ones() -> Result<()> {
        let mut b = Builder::new();
        let id = b
            .declare("struct ev { __u64 seq; __u32 len; __u32 index; }")
            .map_err(Error::InvalidArgument)?;
        let t = RecordType::new(Arc::new(b.into_btf()), id, "test".into())?;
        assert_eq!(t.size(), 16);
        let mut rec = 7u64.to_ne_bytes().to_vec();
        rec.extend_from_slice(&32u32.to_ne_bytes());
        rec.extend_from_slice(&1u32.to_ne_bytes());
        rec.extend_from_slice(&[0, 0, 0, 0]); // perf padding
        assert_eq!(t.format(&rec)?, r#"{"seq":7,"len":32,"index":1}"#);
        assert!(t.format(&rec[..10]).is_err());
        Ok(())
    }
}
