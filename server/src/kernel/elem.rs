//! Single-element syscalls: lookup, update, delete, lookup-and-delete, get-next-key.
//!
//! Each is one syscall of ~1 µs, so callers run them inline on the async worker (a
//! `spawn_blocking` hop costs 25-40 µs here). Buffer sizes are checked against the map before
//! every call: the kernel writes `value_stride()` bytes, and a short buffer would be a heap
//! overflow (the libbpf-rs per-CPU bug of KERNEL-NOTES hazard 2).

use std::ffi::c_void;
use std::ptr;

use super::{check, KernelError, Map};

/// `BPF_F_LOCK`: do the element operation under the value's `bpf_spin_lock`.
pub const BPF_F_LOCK: u64 = 4;

fn key_ptr(map: &Map, op: &'static str, key: Option<&[u8]>) -> Result<*const c_void, KernelError> {
    match key {
        Some(k) if k.len() == map.key_size as usize => Ok(k.as_ptr().cast()),
        None if map.key_size == 0 => Ok(ptr::null()),
        _ => Err(KernelError {
            op,
            errno: libc::EINVAL,
        }),
    }
}

fn check_value(map: &Map, op: &'static str, len: usize) -> Result<(), KernelError> {
    if len == map.value_stride() {
        Ok(())
    } else {
        Err(KernelError {
            op,
            errno: libc::EINVAL,
        })
    }
}

impl Map {
    /// Looks up `key` (None: peek, for keyless maps) into `value` (`value_stride()` bytes).
    /// For a bloom filter, `value` holds the element to test on entry.
    pub fn lookup(
        &self,
        key: Option<&[u8]>,
        value: &mut [u8],
        flags: u64,
    ) -> Result<(), KernelError> {
        const OP: &str = "map_lookup_elem";
        let k = key_ptr(self, OP, key)?;
        check_value(self, OP, value.len())?;
        // SAFETY: `k` is null or points at key_size readable bytes; `value` has exactly the
        // value_stride() bytes the kernel writes for this map; both outlive the call.
        let ret = unsafe {
            libbpf_sys::bpf_map_lookup_elem_flags(self.raw(), k, value.as_mut_ptr().cast(), flags)
        };
        check(OP, ret).map(drop)
    }

    /// Creates or replaces `key` (None: push) with `value` (`value_stride()` bytes).
    pub fn update(&self, key: Option<&[u8]>, value: &[u8], flags: u64) -> Result<(), KernelError> {
        const OP: &str = "map_update_elem";
        let k = key_ptr(self, OP, key)?;
        check_value(self, OP, value.len())?;
        // SAFETY: `k` is null or points at key_size bytes; `value` holds value_stride() bytes;
        // the kernel only reads them during the call.
        let ret =
            unsafe { libbpf_sys::bpf_map_update_elem(self.raw(), k, value.as_ptr().cast(), flags) };
        check(OP, ret).map(drop)
    }

    /// Deletes `key`.
    pub fn delete(&self, key: &[u8]) -> Result<(), KernelError> {
        const OP: &str = "map_delete_elem";
        let k = key_ptr(self, OP, Some(key))?;
        // SAFETY: `k` points at key_size readable bytes alive for the call.
        let ret = unsafe { libbpf_sys::bpf_map_delete_elem(self.raw(), k) };
        check(OP, ret).map(drop)
    }

    /// Looks up and deletes `key` (None: pop) into `value` (`value_stride()` bytes).
    pub fn lookup_and_delete(
        &self,
        key: Option<&[u8]>,
        value: &mut [u8],
    ) -> Result<(), KernelError> {
        const OP: &str = "map_lookup_and_delete_elem";
        let k = key_ptr(self, OP, key)?;
        check_value(self, OP, value.len())?;
        // SAFETY: as in `lookup`: `value` is exactly the size the kernel writes (per-CPU maps
        // included, which libbpf-rs 0.27 gets wrong).
        let ret = unsafe {
            libbpf_sys::bpf_map_lookup_and_delete_elem(self.raw(), k, value.as_mut_ptr().cast())
        };
        check(OP, ret).map(drop)
    }

    /// Writes the key after `key` (None: the first key) into `next` (key_size bytes).
    /// ENOENT after the last key.
    pub fn next_key(&self, key: Option<&[u8]>, next: &mut [u8]) -> Result<(), KernelError> {
        const OP: &str = "map_get_next_key";
        let k = match key {
            None => ptr::null(),
            Some(k) => key_ptr(self, OP, Some(k))?,
        };
        if next.len() != self.key_size as usize {
            return Err(KernelError {
                op: OP,
                errno: libc::EINVAL,
            });
        }
        // SAFETY: `k` is null or key_size readable bytes; `next` has key_size writable bytes.
        let ret =
            unsafe { libbpf_sys::bpf_map_get_next_key(self.raw(), k, next.as_mut_ptr().cast()) };
        check(OP, ret).map(drop)
    }
}
