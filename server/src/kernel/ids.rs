//! Walking the host's map ids, and opening programs by id (PROG_ARRAY values).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::{check, KernelError};

/// Every map id on the host, in ascending order (`BPF_MAP_GET_NEXT_ID`).
pub fn all_map_ids() -> Result<Vec<u32>, KernelError> {
    let mut ids = Vec::new();
    let mut cur = 0u32;
    loop {
        let mut next = 0u32;
        // SAFETY: `next` is a valid u32 the kernel writes.
        let ret = unsafe { libbpf_sys::bpf_map_get_next_id(cur, &mut next) };
        match check("map_get_next_id", ret) {
            Ok(_) => {
                ids.push(next);
                cur = next;
            }
            Err(e) if e.errno == libc::ENOENT => return Ok(ids),
            Err(e) => return Err(e),
        }
    }
}

/// An open program, held only while its fd is written into a PROG_ARRAY.
#[derive(Debug)]
pub struct ProgFd(OwnedFd);

impl ProgFd {
    /// The fd as the 4-byte value the kernel expects in a PROG_ARRAY update.
    pub fn as_value(&self) -> [u8; 4] {
        (self.0.as_raw_fd() as u32).to_ne_bytes()
    }
}

/// Opens program `id` (`BPF_PROG_GET_FD_BY_ID`).
pub fn open_prog_by_id(id: u32) -> Result<ProgFd, KernelError> {
    // SAFETY: plain syscall wrapper with no pointers.
    let ret = unsafe { libbpf_sys::bpf_prog_get_fd_by_id(id) };
    let fd = check("prog_get_fd_by_id", ret)?;
    // SAFETY: a non-negative return is a new fd that nobody else owns.
    Ok(ProgFd(unsafe { OwnedFd::from_raw_fd(fd) }))
}
