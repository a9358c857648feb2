//! Direct kernel reads through libbpf-rs, to compare the service's answers with the truth.
//!
//! [`KernelMap`] opens a map by pin or id (its own fd, independent of the daemon) and reads
//! it with get-next-key + lookup, one syscall at a time: slow, simple and trustworthy.

use std::collections::BTreeMap;
use std::path::Path;

use libbpf_rs::{MapCore, MapFlags, MapHandle, MapType};

/// A map opened directly in the kernel.
#[derive(Debug)]
pub struct KernelMap {
    handle: MapHandle,
}

/// The `bpf_map_info` fields tests compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelInfo {
    /// Kernel map id.
    pub id: u32,
    /// The kernel's `enum bpf_map_type` number.
    pub map_type: u32,
    /// Map name.
    pub name: String,
    /// Key size.
    pub key_size: u32,
    /// Value size.
    pub value_size: u32,
    /// max_entries.
    pub max_entries: u32,
    /// BPF_F_* flags.
    pub flags: u32,
    /// map_extra.
    pub map_extra: u64,
}

impl KernelMap {
    /// Opens the map pinned at `path`.
    pub fn from_pin(path: &Path) -> KernelMap {
        let handle = MapHandle::from_pinned_path(path)
            .unwrap_or_else(|e| panic!("open pinned map {}: {e}", path.display()));
        KernelMap { handle }
    }

    /// Opens the map with kernel id `id`.
    pub fn from_id(id: u32) -> KernelMap {
        let handle = MapHandle::from_map_id(id).unwrap_or_else(|e| panic!("open map id {id}: {e}"));
        KernelMap { handle }
    }

    /// The kernel's description of the map.
    pub fn info(&self) -> KernelInfo {
        let info = self.handle.info().expect("bpf_map_info");
        KernelInfo {
            id: info.info.id,
            map_type: info.info.type_,
            name: info.name().unwrap_or_default().to_owned(),
            key_size: info.info.key_size,
            value_size: info.info.value_size,
            max_entries: info.info.max_entries,
            flags: info.info.map_flags,
            map_extra: info.info.map_extra,
        }
    }

    /// Kernel map id.
    pub fn id(&self) -> u32 {
        self.info().id
    }

    /// True for per-CPU map types.
    pub fn is_percpu(&self) -> bool {
        self.handle.map_type().is_percpu()
    }

    /// Every key, in get-next-key order.
    pub fn keys(&self) -> Vec<Vec<u8>> {
        self.handle.keys().collect()
    }

    /// Number of entries (get-next-key walk).
    pub fn len(&self) -> usize {
        self.handle.keys().count()
    }

    /// True when the map has no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value at `key` (not per-CPU maps).
    pub fn lookup(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.handle
            .lookup(key, MapFlags::ANY)
            .unwrap_or_else(|e| panic!("kernel lookup {key:?}: {e}"))
    }

    /// The per-CPU values at `key`, index = CPU, each `value_size` bytes.
    pub fn lookup_percpu(&self, key: &[u8]) -> Option<Vec<Vec<u8>>> {
        self.handle
            .lookup_percpu(key, MapFlags::ANY)
            .unwrap_or_else(|e| panic!("kernel per-CPU lookup {key:?}: {e}"))
    }

    /// Every entry (not per-CPU maps).
    pub fn entries(&self) -> BTreeMap<Vec<u8>, Vec<u8>> {
        let mut out = BTreeMap::new();
        for key in self.handle.keys() {
            if let Some(value) = self.lookup(&key) {
                out.insert(key, value);
            }
        }
        out
    }

    /// Every entry of a per-CPU map.
    pub fn percpu_entries(&self) -> BTreeMap<Vec<u8>, Vec<Vec<u8>>> {
        let mut out = BTreeMap::new();
        for key in self.handle.keys() {
            if let Some(values) = self.lookup_percpu(&key) {
                out.insert(key, values);
            }
        }
        out
    }

    /// Writes one element (BPF_ANY).
    pub fn update(&self, key: &[u8], value: &[u8]) {
        self.handle
            .update(key, value, MapFlags::ANY)
            .unwrap_or_else(|e| panic!("kernel update {key:?}: {e}"));
    }

    /// Writes one element of a per-CPU map: one value (value_size bytes) per possible CPU.
    pub fn update_percpu(&self, key: &[u8], values: &[Vec<u8>]) {
        self.handle
            .update_percpu(key, values, MapFlags::ANY)
            .unwrap_or_else(|e| panic!("kernel per-CPU update {key:?}: {e}"));
    }

    /// The underlying libbpf-rs handle.
    pub fn handle(&self) -> &MapHandle {
        &self.handle
    }
}

/// True when a map with this id exists.
pub fn map_exists(id: u32) -> bool {
    MapHandle::from_map_id(id).is_ok()
}

/// Number of possible CPUs, from `/sys/devices/system/cpu/possible` (e.g. `0-1`, `0,2-5`).
pub fn possible_cpus() -> usize {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/possible")
        .expect("read /sys/devices/system/cpu/possible");
    let mut max = 0usize;
    for part in text.trim().split(',') {
        let last = part.rsplit('-').next().unwrap_or(part);
        let n: usize = last.trim().parse().expect("cpu number");
        max = max.max(n + 1);
    }
    max
}

/// Creates (and closes) a tiny array map: Ok when this process may use BPF.
pub fn probe_map_create() -> Result<(), String> {
    let opts = libbpf_sys::bpf_map_create_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_map_create_opts>() as libbpf_sys::size_t,
        ..Default::default()
    };
    MapHandle::create(MapType::Array, Some("bpfmap_probe"), 4, 4, 1, &opts)
        .map(drop)
        .map_err(|e| e.to_string())
}
