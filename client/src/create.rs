//! [`CreateMap`]: the options of a new map, as a builder.

use crate::mapref::MapRef;
use crate::proto::{self, MapType};

/// `BPF_F_NO_PREALLOC`: needed by LPM tries, optional for hash maps.
pub const BPF_F_NO_PREALLOC: u32 = 1;

/// A map to create, for [`Client::create_map`](crate::Client::create_map).
///
/// ```
/// use bpfmap_client::{CreateMap, MapType};
/// let req = CreateMap::new("stats_map", MapType::Hash)
///     .key_size(4)
///     .value_size(8)
///     .max_entries(1024);
/// assert_eq!(req.to_proto().key_size, 4);
/// // The common shapes have shortcuts:
/// let q = CreateMap::queue("jobs", 8, 64).ephemeral(true);
/// assert_eq!(q.to_proto().key_size, 0);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct CreateMap {
    map_type: MapType,
    name: String,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    flags: u32,
    map_extra: u64,
    inner_map: Option<MapRef>,
    pin: Option<String>,
    ephemeral: bool,
    key_type: String,
    value_type: String,
}

impl CreateMap {
    /// A map of this type and kernel name (up to 15 characters of `[A-Za-z0-9_.]`); set
    /// the sizes with the other methods.
    pub fn new(name: impl Into<String>, map_type: MapType) -> Self {
        CreateMap {
            map_type,
            name: name.into(),
            key_size: 0,
            value_size: 0,
            max_entries: 0,
            flags: 0,
            map_extra: 0,
            inner_map: None,
            pin: None,
            ephemeral: false,
            key_type: String::new(),
            value_type: String::new(),
        }
    }

    /// A hash map.
    pub fn hash(name: impl Into<String>, key_size: u32, value_size: u32, entries: u32) -> Self {
        Self::new(name, MapType::Hash)
            .key_size(key_size)
            .value_size(value_size)
            .max_entries(entries)
    }

    /// An array (4-byte keys: the index).
    pub fn array(name: impl Into<String>, value_size: u32, entries: u32) -> Self {
        Self::new(name, MapType::Array)
            .key_size(4)
            .value_size(value_size)
            .max_entries(entries)
    }

    /// A FIFO queue (no keys).
    pub fn queue(name: impl Into<String>, value_size: u32, entries: u32) -> Self {
        Self::new(name, MapType::Queue)
            .value_size(value_size)
            .max_entries(entries)
    }

    /// Bytes per key.
    pub fn key_size(mut self, n: u32) -> Self {
        self.key_size = n;
        self
    }

    /// Bytes per value.
    pub fn value_size(mut self, n: u32) -> Self {
        self.value_size = n;
        self
    }

    /// Capacity.
    pub fn max_entries(mut self, n: u32) -> Self {
        self.max_entries = n;
        self
    }

    /// The kernel's `BPF_F_*` creation flags, e.g. [`BPF_F_NO_PREALLOC`].
    pub fn flags(mut self, flags: u32) -> Self {
        self.flags = flags;
        self
    }

    /// Bloom filter: low 4 bits = number of hashes. Arena: start address.
    pub fn map_extra(mut self, extra: u64) -> Self {
        self.map_extra = extra;
        self
    }

    /// The template of `*_OF_MAPS` maps.
    pub fn inner_map(mut self, map: impl Into<MapRef>) -> Self {
        self.inner_map = Some(map.into());
        self
    }

    /// Pin path relative to the daemon's bpffs root (default: the name).
    pub fn pin(mut self, path: impl Into<String>) -> Self {
        self.pin = Some(path.into());
        self
    }

    /// Do not pin: the map lives until `delete_map` or the daemon's exit.
    pub fn ephemeral(mut self, yes: bool) -> Self {
        self.ephemeral = yes;
        self
    }

    /// The key's C type, e.g. `"struct flow { __u32 saddr; __u16 sport; }"` or `"__u64"`:
    /// the daemon builds BTF from it, so the map's keys can be read and written as typed
    /// JSON ([`Data::json`](crate::Data::json)) and the key size follows from the type.
    pub fn key_type(mut self, decl: impl Into<String>) -> Self {
        self.key_type = decl.into();
        self
    }

    /// The value's C type (see [`key_type`](CreateMap::key_type)); arrays whose key type
    /// is not given get `__u32`.
    ///
    /// ```
    /// use bpfmap_client::{CreateMap, MapType};
    /// let req = CreateMap::new("flows", MapType::Hash)
    ///     .key_type("struct flow { __u32 saddr; __u32 daddr; __u16 sport; __u16 dport; }")
    ///     .value_type("struct stats { __u64 packets; __u64 bytes; char comm[16]; }")
    ///     .max_entries(1024);
    /// assert_eq!(req.to_proto().key_size, 0); // follows from the type
    /// ```
    pub fn value_type(mut self, decl: impl Into<String>) -> Self {
        self.value_type = decl.into();
        self
    }

    /// The wire form.
    pub fn to_proto(&self) -> proto::CreateMapRequest {
        proto::CreateMapRequest {
            r#type: self.map_type as i32,
            name: self.name.clone(),
            key_size: self.key_size,
            value_size: self.value_size,
            max_entries: self.max_entries,
            flags: self.flags,
            map_extra: self.map_extra,
            inner_map: self.inner_map.as_ref().map(MapRef::to_proto),
            pin: self.pin.clone().unwrap_or_default(),
            ephemeral: self.ephemeral,
            key_type: self.key_type.clone(),
            value_type: self.value_type.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_every_field() {
        let r = CreateMap::new("m", MapType::HashOfMaps)
            .key_size(4)
            .value_size(4)
            .max_entries(8)
            .flags(BPF_F_NO_PREALLOC)
            .map_extra(3)
            .inner_map(7)
            .pin("dir/m")
            .ephemeral(true)
            .to_proto();
        assert_eq!(r.r#type, MapType::HashOfMaps as i32);
        assert_eq!((r.key_size, r.value_size, r.max_entries), (4, 4, 8));
        assert_eq!((r.flags, r.map_extra), (1, 3));
        assert_eq!(r.inner_map, Some(MapRef::Id(7).to_proto()));
        assert_eq!(r.pin, "dir/m");
        assert!(r.ephemeral);
        assert_eq!(CreateMap::array("a", 8, 2).to_proto().key_size, 4);
        assert_eq!(CreateMap::hash("h", 2, 2, 8).to_proto().max_entries, 8);
    }
}
