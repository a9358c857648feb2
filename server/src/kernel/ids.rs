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

/// The BTF object ids of the programs on the host that use map `map_id` (from each
/// program's `bpf_prog_info`: its map ids and its BTF id). Programs that go away meanwhile
/// are skipped.
pub fn prog_btf_ids_using_map(map_id: u32) -> Result<Vec<u32>, KernelError> {
    let mut out = Vec::new();
    let mut cur = 0u32;
    loop {
        let mut next = 0u32;
        // SAFETY: `next` is a valid u32 the kernel writes.
        let ret = unsafe { libbpf_sys::bpf_prog_get_next_id(cur, &mut next) };
        match check("prog_get_next_id", ret) {
            Ok(_) => cur = next,
            Err(e) if e.errno == libc::ENOENT => return Ok(out),
            Err(e) => return Err(e),
        }
        let prog = match open_prog_by_id(cur) {
            Ok(p) => p,
            Err(e) if e.errno == libc::ENOENT => continue,
            Err(e) => return Err(e),
        };
        let fd = prog.0.as_raw_fd();
        let mut info = libbpf_sys::bpf_prog_info::default();
        let mut len = std::mem::size_of::<libbpf_sys::bpf_prog_info>() as u32;
        // SAFETY: `info` and `len` are live and `len` is the size of `info`; every pointer
        // field of `info` is null, so the kernel only fills counts and scalars.
        let ret = unsafe { libbpf_sys::bpf_prog_get_info_by_fd(fd, &mut info, &mut len) };
        check("prog_get_info_by_fd", ret)?;
        if info.btf_id == 0 || info.nr_map_ids == 0 || out.contains(&info.btf_id) {
            continue;
        }
        let mut ids = vec![0u32; info.nr_map_ids as usize];
        let mut info2 = libbpf_sys::bpf_prog_info {
            nr_map_ids: info.nr_map_ids,
            map_ids: ids.as_mut_ptr() as u64,
            ..Default::default()
        };
        let mut len = std::mem::size_of::<libbpf_sys::bpf_prog_info>() as u32;
        // SAFETY: `info2.map_ids` points at `ids`, live and writable for `nr_map_ids` u32s,
        // which is all the kernel writes there; `info2` and `len` are live.
        let ret = unsafe { libbpf_sys::bpf_prog_get_info_by_fd(fd, &mut info2, &mut len) };
        check("prog_get_info_by_fd", ret)?;
        let n = (info2.nr_map_ids as usize).min(ids.len());
        if ids[..n].contains(&map_id) {
            out.push(info.btf_id);
        }
    }
}
