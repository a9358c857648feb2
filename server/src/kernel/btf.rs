//! BTF objects in the kernel: load a blob (`BPF_BTF_LOAD`), open one by id and read its
//! blob back (`BPF_OBJ_GET_INFO_BY_FD`). The blob's meaning is [`crate::btf`]'s business.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::{check, KernelError};

/// Size of the kernel's BTF verifier log kept when a load fails.
const LOG_SIZE: usize = 64 << 10;

/// An open BTF object.
#[derive(Debug)]
pub struct BtfFd(OwnedFd);

/// A refused `BPF_BTF_LOAD`: the errno and the last lines of the kernel's log.
#[derive(Debug, Clone)]
pub struct BtfLoadError {
    /// The syscall error.
    pub error: KernelError,
    /// What the kernel's BTF checker said (may be empty).
    pub log: String,
}

impl BtfFd {
    /// Loads a raw BTF blob into the kernel.
    pub fn load(raw: &[u8]) -> Result<BtfFd, BtfLoadError> {
        match Self::load_with_log(raw, None) {
            Ok(fd) => Ok(fd),
            Err(error) => {
                // Again with the log on, to say why.
                let mut log = vec![0u8; LOG_SIZE];
                let _ = Self::load_with_log(raw, Some(&mut log));
                let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
                let text = String::from_utf8_lossy(&log[..end]);
                let tail: Vec<&str> = text.lines().rev().take(3).collect();
                let log = tail.into_iter().rev().collect::<Vec<_>>().join(" / ");
                Err(BtfLoadError { error, log })
            }
        }
    }

    fn load_with_log(raw: &[u8], log: Option<&mut [u8]>) -> Result<BtfFd, KernelError> {
        let mut opts = libbpf_sys::bpf_btf_load_opts {
            sz: std::mem::size_of::<libbpf_sys::bpf_btf_load_opts>() as libbpf_sys::size_t,
            ..Default::default()
        };
        if let Some(buf) = log {
            opts.log_buf = buf.as_mut_ptr().cast();
            opts.log_size = buf.len() as u32;
            opts.log_level = 1;
        }
        // SAFETY: `raw` is a live buffer of `raw.len()` bytes; `opts` is a properly sized
        // options struct whose log buffer (when set) is a live, writable slice of
        // `log_size` bytes. The kernel copies the blob and writes at most log_size bytes.
        let ret = unsafe {
            libbpf_sys::bpf_btf_load(
                raw.as_ptr().cast(),
                raw.len() as libbpf_sys::size_t,
                &mut opts,
            )
        };
        let fd = check("btf_load", ret)?;
        // SAFETY: a non-negative return is a new fd that nobody else owns.
        Ok(BtfFd(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Opens BTF object `id` (`BPF_BTF_GET_FD_BY_ID`). Holding the fd keeps the object, and
    /// so its id, alive.
    pub fn open_id(id: u32) -> Result<BtfFd, KernelError> {
        // SAFETY: plain syscall wrapper with no pointers.
        let ret = unsafe { libbpf_sys::bpf_btf_get_fd_by_id(id) };
        let fd = check("btf_get_fd_by_id", ret)?;
        // SAFETY: a non-negative return is a new fd that nobody else owns.
        Ok(BtfFd(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// The object's raw blob, as it was loaded.
    pub fn raw(&self) -> Result<Vec<u8>, KernelError> {
        let mut info = libbpf_sys::bpf_btf_info::default();
        let mut len = std::mem::size_of::<libbpf_sys::bpf_btf_info>() as u32;
        // SAFETY: `info` and `len` are live and `len` is the size of `info`; with btf = 0
        // the kernel only fills the sizes.
        let ret =
            unsafe { libbpf_sys::bpf_btf_get_info_by_fd(self.0.as_raw_fd(), &mut info, &mut len) };
        check("btf_get_info_by_fd", ret)?;
        let size = info.btf_size as usize;
        let mut buf = vec![0u8; size];
        let mut info = libbpf_sys::bpf_btf_info {
            btf: buf.as_mut_ptr() as u64,
            btf_size: size as u32,
            ..Default::default()
        };
        let mut len = std::mem::size_of::<libbpf_sys::bpf_btf_info>() as u32;
        // SAFETY: `info.btf` points at `buf`, live and writable for `btf_size` bytes, which
        // is all the kernel writes there; `info` and `len` are live.
        let ret =
            unsafe { libbpf_sys::bpf_btf_get_info_by_fd(self.0.as_raw_fd(), &mut info, &mut len) };
        check("btf_get_info_by_fd", ret)?;
        buf.truncate((info.btf_size as usize).min(size));
        Ok(buf)
    }
}

impl AsFd for BtfFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}
