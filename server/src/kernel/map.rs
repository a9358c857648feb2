//! An open map: its fd and what the kernel says about it, plus create / open / pin / freeze.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::{check, cpus::possible_cpus, KernelError, MapKind};

/// Parameters of a new map (the kernel's `BPF_MAP_CREATE` attributes).
#[derive(Debug, Clone, Default)]
pub struct CreateParams<'a> {
    /// Kernel map type number.
    pub kind: u32,
    /// Kernel map name (at most 15 bytes).
    pub name: &'a str,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// Maximum number of entries.
    pub max_entries: u32,
    /// BPF_F_* flags.
    pub flags: u32,
    /// Type-specific extra (bloom filter hash count, arena address).
    pub map_extra: u64,
    /// Template map for map-in-map types.
    pub inner_map: Option<&'a Map>,
    /// BTF describing the key and value: the object and the type ids in it.
    pub btf: Option<MapBtf<'a>>,
}

/// The BTF types of a new map (`btf_fd`, `btf_key_type_id`, `btf_value_type_id`).
#[derive(Debug, Clone, Copy)]
pub struct MapBtf<'a> {
    /// The loaded BTF object.
    pub fd: &'a super::BtfFd,
    /// Key type id (0: none, for keyless maps).
    pub key: u32,
    /// Value type id.
    pub value: u32,
}

/// An open BPF map. Owns its fd; the fields are a snapshot of `bpf_map_info` taken at open.
#[derive(Debug)]
pub struct Map {
    fd: OwnedFd,
    /// Kernel map id.
    pub id: u32,
    /// Kernel map name.
    pub name: String,
    /// Map type.
    pub kind: MapKind,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes (per CPU for per-CPU maps).
    pub value_size: u32,
    /// Maximum number of entries.
    pub max_entries: u32,
    /// BPF_F_* creation flags.
    pub flags: u32,
    /// Type-specific extra.
    pub map_extra: u64,
    /// BTF object id (0: none).
    pub btf_id: u32,
    /// BTF type id of the key.
    pub btf_key_type_id: u32,
    /// BTF type id of the value.
    pub btf_value_type_id: u32,
}

impl Map {
    /// Takes ownership of `fd` and reads its `bpf_map_info`. Fails with EINVAL when the fd is
    /// not a map (e.g. a pinned program).
    fn from_fd(fd: OwnedFd, verify_is_map: bool) -> Result<Map, KernelError> {
        // bpf_obj_get_info_by_fd on a program fd fills a bpf_prog_info: only pins can be
        // something else than a map, so only they pay for the fdinfo check.
        if verify_is_map && !is_map_fd(fd.as_fd()) {
            return Err(KernelError {
                op: "obj_get_info_by_fd",
                errno: libc::EINVAL,
            });
        }
        let info = libbpf_rs::MapInfo::new(fd.as_fd()).map_err(|_| KernelError {
            op: "obj_get_info_by_fd",
            errno: std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EINVAL),
        })?;
        let raw = info.info;
        if raw.id == 0 || raw.type_ == 0 {
            return Err(KernelError {
                op: "obj_get_info_by_fd",
                errno: libc::EINVAL,
            });
        }
        let name = info.name().map(str::to_owned).unwrap_or_default();
        Ok(Map {
            fd,
            id: raw.id,
            name,
            kind: MapKind(raw.type_),
            key_size: raw.key_size,
            value_size: raw.value_size,
            max_entries: raw.max_entries,
            flags: raw.map_flags,
            map_extra: raw.map_extra,
            btf_id: raw.btf_id,
            btf_key_type_id: raw.btf_key_type_id,
            btf_value_type_id: raw.btf_value_type_id,
        })
    }

    /// Creates a map (`BPF_MAP_CREATE`).
    pub fn create(p: &CreateParams<'_>) -> Result<Map, KernelError> {
        let name = CString::new(p.name).map_err(|_| KernelError {
            op: "map_create",
            errno: libc::EINVAL,
        })?;
        let opts = libbpf_sys::bpf_map_create_opts {
            sz: std::mem::size_of::<libbpf_sys::bpf_map_create_opts>() as libbpf_sys::size_t,
            map_flags: p.flags,
            map_extra: p.map_extra,
            inner_map_fd: p.inner_map.map_or(0, |m| m.fd.as_raw_fd() as u32),
            btf_fd: p.btf.map_or(0, |b| b.fd.as_fd().as_raw_fd() as u32),
            btf_key_type_id: p.btf.map_or(0, |b| b.key),
            btf_value_type_id: p.btf.map_or(0, |b| b.value),
            ..Default::default()
        };
        // SAFETY: `name` is a valid NUL-terminated string and `opts` a properly sized options
        // struct, both alive for the duration of the call; libbpf copies what it needs.
        let ret = unsafe {
            libbpf_sys::bpf_map_create(
                p.kind,
                name.as_ptr(),
                p.key_size,
                p.value_size,
                p.max_entries,
                &opts,
            )
        };
        let fd = check("map_create", ret)?;
        // SAFETY: a non-negative return of bpf_map_create is a new fd that nobody else owns.
        Map::from_fd(unsafe { OwnedFd::from_raw_fd(fd) }, false)
    }

    /// Opens the map with kernel id `id` (`BPF_MAP_GET_FD_BY_ID`).
    pub fn open_id(id: u32) -> Result<Map, KernelError> {
        // SAFETY: plain syscall wrapper with no pointers.
        let ret = unsafe { libbpf_sys::bpf_map_get_fd_by_id(id) };
        let fd = check("map_get_fd_by_id", ret)?;
        // SAFETY: a non-negative return is a new fd that nobody else owns.
        let map = Map::from_fd(unsafe { OwnedFd::from_raw_fd(fd) }, false)?;
        // Ids are reused cyclically: the info read from the fd is the truth, check it matches.
        if map.id != id {
            return Err(KernelError {
                op: "map_get_fd_by_id",
                errno: libc::ENOENT,
            });
        }
        Ok(map)
    }

    /// Opens a pinned map (`BPF_OBJ_GET`). EINVAL when the pin is not a map.
    pub fn open_pinned(path: &Path) -> Result<Map, KernelError> {
        let c = path_cstring(path, "obj_get")?;
        // SAFETY: `c` is a valid NUL-terminated path alive for the call.
        let ret = unsafe { libbpf_sys::bpf_obj_get(c.as_ptr()) };
        let fd = check("obj_get", ret)?;
        // SAFETY: a non-negative return is a new fd that nobody else owns.
        Map::from_fd(unsafe { OwnedFd::from_raw_fd(fd) }, true)
    }

    /// Pins the map at `path` (`BPF_OBJ_PIN`).
    pub fn pin(&self, path: &Path) -> Result<(), KernelError> {
        let c = path_cstring(path, "obj_pin")?;
        // SAFETY: valid fd owned by self and a valid NUL-terminated path.
        let ret = unsafe { libbpf_sys::bpf_obj_pin(self.fd.as_raw_fd(), c.as_ptr()) };
        check("obj_pin", ret).map(drop)
    }

    /// Freezes the map (`BPF_MAP_FREEZE`).
    pub fn freeze(&self) -> Result<(), KernelError> {
        // SAFETY: valid fd owned by self.
        let ret = unsafe { libbpf_sys::bpf_map_freeze(self.fd.as_raw_fd()) };
        check("map_freeze", ret).map(drop)
    }

    /// Whether the map is frozen (read from `/proc/self/fdinfo`, the only place that says).
    pub fn is_frozen(&self) -> bool {
        libbpf_rs::MapFdInfo::from_fd(self.fd.as_fd())
            .ok()
            .and_then(|i| i.frozen)
            .unwrap_or(false)
    }

    /// Possible CPUs for per-CPU maps, 0 otherwise.
    pub fn percpu_count(&self) -> u32 {
        if self.kind.is_percpu() {
            possible_cpus()
        } else {
            0
        }
    }

    /// Bytes of one value as the kernel reads and writes it: per-CPU maps hold
    /// round_up(value_size, 8) for each possible CPU.
    pub fn value_stride(&self) -> usize {
        if self.kind.is_percpu() {
            (self.value_size as usize).div_ceil(8) * 8 * possible_cpus() as usize
        } else {
            self.value_size as usize
        }
    }

    /// The raw fd, for the element and batch wrappers of this module.
    pub(super) fn raw(&self) -> i32 {
        self.fd.as_raw_fd()
    }
}

impl AsFd for Map {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn path_cstring(path: &Path, op: &'static str) -> Result<CString, KernelError> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| KernelError {
        op,
        errno: libc::EINVAL,
    })
}

/// Whether the fd is a BPF map (its fdinfo has a `map_type:` line).
fn is_map_fd(fd: BorrowedFd<'_>) -> bool {
    std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd()))
        .map(|s| s.lines().any(|l| l.starts_with("map_type:")))
        .unwrap_or(false)
}

impl Map {
    /// The map's fd as the 4-byte value the kernel expects in a map-in-map update.
    pub fn fd_value(&self) -> [u8; 4] {
        (self.fd.as_raw_fd() as u32).to_ne_bytes()
    }
}
