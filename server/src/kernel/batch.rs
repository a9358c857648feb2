//! Batch syscalls, driven directly: libbpf-rs 0.27's batch iterator ends silently on a short
//! batch, on ENOSPC and on any error (KERNEL-NOTES hazard 1), which lost 99.6 % of a 1M map.
//!
//! [`BatchCursor`] walks a map with `BPF_MAP_LOOKUP_BATCH` (or its lookup-and-delete twin)
//! until the kernel says ENOENT: a short count is *not* the end (hash maps return whole
//! buckets), ENOSPC means the first bucket did not fit and the caller must grow the batch.

use std::ffi::c_void;
use std::ptr;

use super::{check, KernelError, Map};

fn batch_opts(elem_flags: u64) -> libbpf_sys::bpf_map_batch_opts {
    libbpf_sys::bpf_map_batch_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_map_batch_opts>() as libbpf_sys::size_t,
        elem_flags,
        flags: 0,
    }
}

/// The position of a batch walk: the kernel's opaque in/out batch tokens.
#[derive(Debug)]
pub struct BatchCursor {
    token_in: Vec<u8>,
    token_out: Vec<u8>,
    started: bool,
    done: bool,
}

/// What one batch step produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchStep {
    /// Entries written to the key and value buffers.
    pub count: usize,
    /// The kernel reported the end of the map (ENOENT): no further step is needed.
    pub end: bool,
}

impl BatchCursor {
    /// A cursor at the start of `map`. Hash maps use a 4-byte bucket token, other types the
    /// key itself: room for both.
    pub fn new(map: &Map) -> BatchCursor {
        let len = (map.key_size as usize).max(8);
        BatchCursor {
            token_in: vec![0; len],
            token_out: vec![0; len],
            started: false,
            done: false,
        }
    }

    /// The walk has reached the end of the map.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// One `BPF_MAP_LOOKUP_BATCH` (or `..._AND_DELETE_BATCH`) of up to `max` entries into
    /// `keys` (max × key_size bytes) and `values` (max × value_stride bytes).
    ///
    /// Errors keep their errno: ENOSPC (first bucket larger than `max`: grow and retry, the
    /// cursor has not moved), ENOTSUPP/EINVAL (no batch support for this type).
    pub fn step(
        &mut self,
        map: &Map,
        keys: &mut [u8],
        values: &mut [u8],
        max: usize,
        delete: bool,
    ) -> Result<BatchStep, KernelError> {
        let op = if delete {
            "map_lookup_and_delete_batch"
        } else {
            "map_lookup_batch"
        };
        if self.done {
            return Ok(BatchStep {
                count: 0,
                end: true,
            });
        }
        if keys.len() < max * map.key_size as usize || values.len() < max * map.value_stride() {
            return Err(KernelError {
                op,
                errno: libc::EINVAL,
            });
        }
        let mut count = u32::try_from(max).map_err(|_| KernelError {
            op,
            errno: libc::EINVAL,
        })?;
        let opts = batch_opts(0);
        let in_ptr: *mut c_void = if self.started {
            self.token_in.as_mut_ptr().cast()
        } else {
            ptr::null_mut()
        };
        // SAFETY: the token buffers hold max(key_size, 8) bytes, enough for either kind of
        // token; `keys` and `values` were checked above to hold `count` entries of the sizes
        // the kernel writes; `count` and `opts` are valid for the call.
        let ret = unsafe {
            let f = if delete {
                libbpf_sys::bpf_map_lookup_and_delete_batch
            } else {
                libbpf_sys::bpf_map_lookup_batch
            };
            f(
                map.raw(),
                in_ptr,
                self.token_out.as_mut_ptr().cast(),
                keys.as_mut_ptr().cast(),
                values.as_mut_ptr().cast(),
                &mut count,
                &opts,
            )
        };
        match check(op, ret) {
            Ok(_) => {
                self.started = true;
                std::mem::swap(&mut self.token_in, &mut self.token_out);
                Ok(BatchStep {
                    count: count as usize,
                    end: false,
                })
            }
            // ENOENT: the end; `count` holds the last entries (possibly zero).
            Err(e) if e.errno == libc::ENOENT => {
                self.done = true;
                Ok(BatchStep {
                    count: (count as usize).min(max),
                    end: true,
                })
            }
            Err(e) => Err(e),
        }
    }
}

impl Map {
    /// `BPF_MAP_UPDATE_BATCH` of `count` entries. On error, returns how many were written
    /// before it together with the error.
    pub fn update_batch(
        &self,
        keys: &[u8],
        values: &[u8],
        count: usize,
        elem_flags: u64,
    ) -> Result<usize, (usize, KernelError)> {
        const OP: &str = "map_update_batch";
        if keys.len() != count * self.key_size as usize
            || values.len() != count * self.value_stride()
        {
            return Err((
                0,
                KernelError {
                    op: OP,
                    errno: libc::EINVAL,
                },
            ));
        }
        let mut n = u32::try_from(count).map_err(|_| {
            (
                0,
                KernelError {
                    op: OP,
                    errno: libc::E2BIG,
                },
            )
        })?;
        let opts = batch_opts(elem_flags);
        // SAFETY: `keys` and `values` hold exactly `count` entries in the kernel's layout,
        // checked above; the kernel only reads them.
        let ret = unsafe {
            libbpf_sys::bpf_map_update_batch(
                self.raw(),
                keys.as_ptr().cast(),
                values.as_ptr().cast(),
                &mut n,
                &opts,
            )
        };
        match check(OP, ret) {
            Ok(_) => Ok(count),
            Err(e) => Err(((n as usize).min(count), e)),
        }
    }

    /// `BPF_MAP_DELETE_BATCH` of `count` keys. On error, returns how many were deleted before
    /// it (the key at that index is the one that failed) together with the error.
    pub fn delete_batch(&self, keys: &[u8], count: usize) -> Result<usize, (usize, KernelError)> {
        const OP: &str = "map_delete_batch";
        if keys.len() != count * self.key_size as usize {
            return Err((
                0,
                KernelError {
                    op: OP,
                    errno: libc::EINVAL,
                },
            ));
        }
        let mut n = u32::try_from(count).map_err(|_| {
            (
                0,
                KernelError {
                    op: OP,
                    errno: libc::E2BIG,
                },
            )
        })?;
        let opts = batch_opts(0);
        // SAFETY: `keys` holds exactly `count` keys of key_size bytes; the kernel only reads.
        let ret = unsafe {
            libbpf_sys::bpf_map_delete_batch(self.raw(), keys.as_ptr().cast(), &mut n, &opts)
        };
        match check(OP, ret) {
            Ok(_) => Ok(count),
            Err(e) => Err(((n as usize).min(count), e)),
        }
    }
}
