//! The kernel layer: the one owner of map file descriptors and the only module with `unsafe`.
//!
//! Everything here is a thin, synchronous wrapper over a BPF syscall (through libbpf-sys, or
//! libbpf-rs where it keeps the errno). Each failure comes back as a [`KernelError`] that keeps
//! the raw errno, because the difference between ENOSPC, EBUSY and ENOTSUPP matters to the
//! caller and libbpf-rs folds them together (KERNEL-NOTES hazard 4). Deciding what an errno
//! *means* for a user is left to [`crate::error`].

mod batch;
mod bpffs;
mod btf;
mod cpus;
pub mod elem;
mod events;
mod ids;
mod map;
pub mod types;

pub use batch::{BatchCursor, BatchStep};
pub use bpffs::{ensure_bpffs_dir, is_bpffs};
pub use btf::{BtfFd, BtfLoadError};
pub use cpus::possible_cpus;
pub use events::{EventReader, EventSink, RawEvent};
pub use ids::{all_map_ids, open_prog_by_id, prog_btf_ids_using_map, ProgFd};
pub use map::{CreateParams, Map, MapBtf};
pub use types::{MapKind, Op};

use std::fmt;

/// ENOTSUPP: the kernel-internal "operation not supported" (524), which libc does not name.
pub const ENOTSUPP: i32 = 524;

/// A failed BPF syscall: which operation and the errno the kernel gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelError {
    /// The operation, e.g. `"map_update_elem"`.
    pub op: &'static str,
    /// The positive errno.
    pub errno: i32,
}

impl KernelError {
    /// Builds the error from libbpf's negative return value (or the current errno).
    pub(crate) fn from_ret(op: &'static str, ret: i32) -> Self {
        let errno = if ret < 0 {
            -ret
        } else {
            std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO)
        };
        KernelError { op, errno }
    }

    /// The errno's symbolic name, e.g. `"ENOENT"`.
    pub fn errno_name(&self) -> String {
        errno_name(self.errno)
    }
}

/// The symbolic name of an errno (`ENOTSUPP` included).
pub fn errno_name(errno: i32) -> String {
    if errno == ENOTSUPP {
        return "ENOTSUPP".to_owned();
    }
    format!("{:?}", nix::errno::Errno::from_raw(errno))
}

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = if self.errno == ENOTSUPP {
            "operation not supported".to_owned()
        } else {
            std::io::Error::from_raw_os_error(self.errno).to_string()
        };
        write!(f, "{} failed: {} ({})", self.op, self.errno_name(), text)
    }
}

impl std::error::Error for KernelError {}

/// Turns libbpf's `int` return convention (negative errno on failure) into a `Result`.
pub(crate) fn check(op: &'static str, ret: i32) -> Result<i32, KernelError> {
    if ret < 0 {
        Err(KernelError::from_ret(op, ret))
    } else {
        Ok(ret)
    }
}
