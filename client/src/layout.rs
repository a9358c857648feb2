//! Map types by name, and the byte layout of packed entries ([`Layout`]).

use crate::error::Error;
use crate::proto::{MapInfo, MapType};

/// bpftool's name of a map type: `hash`, `percpu_array`, `lru_hash`, `bloom_filter`...
///
/// ```
/// use bpfmap_client::{map_type_name, MapType};
/// assert_eq!(map_type_name(MapType::PercpuHash), "percpu_hash");
/// ```
pub fn map_type_name(t: MapType) -> String {
    t.as_str_name()
        .trim_start_matches("MAP_TYPE_")
        .to_ascii_lowercase()
}

/// Parses a map type by bpftool name (`hash`), proto name (`MAP_TYPE_HASH`) or number.
///
/// ```
/// use bpfmap_client::{parse_map_type, MapType};
/// assert_eq!(parse_map_type("lpm_trie"), Some(MapType::LpmTrie));
/// assert_eq!(parse_map_type("MAP_TYPE_QUEUE"), Some(MapType::Queue));
/// assert_eq!(parse_map_type("1"), Some(MapType::Hash));
/// assert_eq!(parse_map_type("nope"), None);
/// ```
pub fn parse_map_type(text: &str) -> Option<MapType> {
    if let Ok(n) = text.parse::<i32>() {
        return MapType::try_from(n).ok();
    }
    let upper = text.trim().to_ascii_uppercase().replace('-', "_");
    let full = if upper.starts_with("MAP_TYPE_") {
        upper
    } else {
        format!("MAP_TYPE_{upper}")
    };
    MapType::from_str_name(&full).filter(|t| *t != MapType::Unspec)
}

/// True for map types whose values are per CPU.
pub fn is_per_cpu(t: MapType) -> bool {
    matches!(
        t,
        MapType::PercpuHash
            | MapType::PercpuArray
            | MapType::LruPercpuHash
            | MapType::PercpuCgroupStorage
    )
}

/// How a map's entries are laid out in `PackedEntries` (the kernel's batch layout).
///
/// ```
/// use bpfmap_client::Layout;
/// let l = Layout { key_size: 4, value_size: 12, cpus: Some(2) };
/// assert_eq!(l.value_stride(), 32); // round_up(12, 8) * 2 CPUs
/// assert_eq!(Layout { cpus: None, ..l }.value_stride(), 12);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Bytes per key.
    pub key_size: u32,
    /// Bytes per value (per CPU for per-CPU maps).
    pub value_size: u32,
    /// Number of possible CPUs of a per-CPU map, `None` for other maps.
    pub cpus: Option<u32>,
}

impl Layout {
    /// The layout of a map described by the daemon.
    pub fn of(info: &MapInfo) -> Result<Self, Error> {
        let cpus = if is_per_cpu(info.r#type()) {
            if info.possible_cpus == 0 {
                return Err(Error::Protocol(format!(
                    "map {} is per-CPU but the daemon did not report possible_cpus",
                    info.id
                )));
            }
            Some(info.possible_cpus)
        } else {
            None
        };
        Ok(Layout {
            key_size: info.key_size,
            value_size: info.value_size,
            cpus,
        })
    }

    /// Bytes between one CPU's value and the next: `round_up(value_size, 8)`.
    pub fn cpu_stride(&self) -> usize {
        (self.value_size as usize).div_ceil(8) * 8
    }

    /// Bytes of one entry's value in packed form: `value_size`, or for per-CPU maps
    /// `round_up(value_size, 8) * cpus`.
    pub fn value_stride(&self) -> usize {
        match self.cpus {
            Some(n) => self.cpu_stride() * n as usize,
            None => self.value_size as usize,
        }
    }

    /// Splits one packed value into the map's [`Value`](crate::Value).
    pub fn unpack_value(&self, bytes: &[u8]) -> crate::Value {
        match self.cpus {
            None => crate::Value::Single(bytes.to_vec()),
            Some(_) => crate::Value::PerCpu(
                bytes
                    .chunks(self.cpu_stride().max(1))
                    .map(|c| c[..c.len().min(self.value_size as usize)].to_vec())
                    .collect(),
            ),
        }
    }

    /// Appends one value in packed form to `out`, checking its size. A single value of a
    /// per-CPU map is repeated for every CPU.
    pub fn pack_value(&self, value: &crate::Value, out: &mut Vec<u8>) -> Result<(), Error> {
        let size = self.value_size as usize;
        let check = |v: &[u8]| {
            if v.len() == size {
                Ok(())
            } else {
                Err(Error::InvalidInput(format!(
                    "value is {} bytes, the map's value size is {size}",
                    v.len()
                )))
            }
        };
        match (self.cpus, value) {
            (None, crate::Value::Single(v)) => {
                check(v)?;
                out.extend_from_slice(v);
            }
            (None, crate::Value::PerCpu(_)) => {
                return Err(Error::InvalidInput(
                    "per-CPU values given for a map that is not per-CPU".into(),
                ))
            }
            (Some(n), crate::Value::Single(v)) => {
                check(v)?;
                for _ in 0..n {
                    out.extend_from_slice(v);
                    out.resize(out.len() + self.cpu_stride() - size, 0);
                }
            }
            (Some(n), crate::Value::PerCpu(vs)) => {
                if vs.len() != n as usize {
                    return Err(Error::InvalidInput(format!(
                        "{} per-CPU values given, the map has {n} possible CPUs",
                        vs.len()
                    )));
                }
                for v in vs {
                    check(v)?;
                    out.extend_from_slice(v);
                    out.resize(out.len() + self.cpu_stride() - size, 0);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Value;

    #[test]
    fn type_names_round_trip() {
        for n in 1..=33 {
            let t = MapType::try_from(n).ok();
            let t = t.unwrap_or(MapType::Unspec);
            assert_eq!(parse_map_type(&map_type_name(t)), Some(t));
        }
        assert_eq!(parse_map_type("percpu-array"), Some(MapType::PercpuArray));
        assert_eq!(parse_map_type("unspec"), None);
    }

    #[test]
    fn packs_and_unpacks_per_cpu_values() {
        let l = Layout {
            key_size: 4,
            value_size: 4,
            cpus: Some(2),
        };
        let mut out = Vec::new();
        l.pack_value(&Value::Single(vec![1, 2, 3, 4]), &mut out)
            .ok();
        assert_eq!(out, [1, 2, 3, 4, 0, 0, 0, 0, 1, 2, 3, 4, 0, 0, 0, 0]);
        assert_eq!(
            l.unpack_value(&out),
            Value::PerCpu(vec![vec![1, 2, 3, 4], vec![1, 2, 3, 4]])
        );
        let mut out = Vec::new();
        assert!(l
            .pack_value(&Value::PerCpu(vec![vec![1, 2, 3, 4]]), &mut out)
            .is_err());
        assert!(l.pack_value(&Value::Single(vec![1]), &mut out).is_err());
        let plain = Layout { cpus: None, ..l };
        assert!(plain
            .pack_value(&Value::PerCpu(vec![vec![0; 4]]), &mut out)
            .is_err());
    }

    #[test]
    fn layout_of_map_info() {
        let mut info = MapInfo {
            key_size: 4,
            value_size: 8,
            ..Default::default()
        };
        info.set_type(MapType::PercpuArray);
        assert!(Layout::of(&info).is_err());
        info.possible_cpus = 4;
        assert_eq!(Layout::of(&info).ok().map(|l| l.value_stride()), Some(32));
        info.set_type(MapType::Hash);
        assert_eq!(Layout::of(&info).ok().map(|l| l.value_stride()), Some(8));
    }
}
