//! [`BpfProgram`]: the socket filter of `tests/bpf/sockstats.bpf.c`, loaded and attached.
//!
//! `tests/build.rs` compiles the C with clang into `$OUT_DIR/sockstats.bpf.o`; [`load`]
//! opens it with libbpf-rs, loads it (creating its maps), and attaches the program with
//! `SO_ATTACH_BPF` to a UDP socket bound on 127.0.0.1. Every datagram [`send`] delivers
//! to that socket runs the program, which counts it:
//!
//! - `sock_counts` (ARRAY, u32 → u64): key 0 packets, key 1 bytes (`skb->len`, which for a
//!   UDP socket is the 8-byte UDP header plus the payload);
//! - `sock_pcpu` (PERCPU_ARRAY): the same per CPU;
//! - `sock_locked` (HASH u32 → `{ bpf_spin_lock; u64 }`, 16-byte value, unused by the
//!   program): a map with a spin lock in its BTF value, for BPF_F_LOCK tests.
//!
//! The maps' names are the same for every load, so several loads (other tests, other
//! processes) make name lookups ambiguous: address them by id or pin.
//!
//! [`load`]: BpfProgram::load
//! `tests/bpf/typed.bpf.c` ([`BpfProgram::load_typed`]) keeps BTF-typed per-flow stats
//! instead: struct keys and values, for the typed-JSON tests.
//!
//! [`send`]: BpfProgram::send

use std::collections::BTreeMap;
use std::net::UdpSocket;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use libbpf_rs::{MapCore, Object, ObjectBuilder};

/// The compiled object file.
pub const SOCKSTATS_OBJ: &str = concat!(env!("OUT_DIR"), "/sockstats.bpf.o");

/// The compiled object of `tests/bpf/typed.bpf.c`: typed per-flow stats (program
/// `track_flows`; maps `flows`, `flow_pcpu`, `kinds`), see [`BpfProgram::load_typed`].
pub const TYPED_OBJ: &str = concat!(env!("OUT_DIR"), "/typed.bpf.o");

/// Bytes the kernel counts in `skb->len` beyond the payload of a UDP datagram (its header).
pub const UDP_HEADER_LEN: u64 = 8;

/// The loaded program with its maps and its sockets; everything is released on drop
/// (maps survive only through pins).
#[derive(Debug)]
pub struct BpfProgram {
    obj: Object,
    rx: UdpSocket,
    tx: UdpSocket,
    path: &'static str,
    prog: &'static str,
}

impl BpfProgram {
    /// Loads `sockstats.bpf.o` and attaches it to a fresh UDP socket on 127.0.0.1.
    pub fn load() -> BpfProgram {
        Self::load_object(SOCKSTATS_OBJ, "count_packets")
    }

    /// Loads `typed.bpf.o` (BTF-typed maps `flows`, `flow_pcpu`, `kinds`; see its source)
    /// and attaches its `track_flows` to a fresh UDP socket on 127.0.0.1. Each datagram
    /// [`send_payloads`](BpfProgram::send_payloads) delivers updates the flow of
    /// ([`tx_addr`](BpfProgram::tx_addr) → [`rx_addr`](BpfProgram::rx_addr)).
    pub fn load_typed() -> BpfProgram {
        Self::load_object(TYPED_OBJ, "track_flows")
    }

    fn load_object(path: &'static str, prog: &'static str) -> BpfProgram {
        let open = ObjectBuilder::default()
            .open_file(path)
            .unwrap_or_else(|e| panic!("open {path}: {e}"));
        let obj = open.load().unwrap_or_else(|e| panic!("load {path}: {e}"));
        let rx = UdpSocket::bind("127.0.0.1:0").expect("bind the receiving UDP socket");
        rx.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("read timeout");
        let tx = UdpSocket::bind("127.0.0.1:0").expect("bind the sending UDP socket");
        let prog_fd = {
            let p = obj
                .progs()
                .find(|p| p.name() == prog)
                .unwrap_or_else(|| panic!("program {prog} in {path}"));
            p.as_fd().as_raw_fd()
        };
        // SAFETY: setsockopt reads size_of::<c_int>() bytes from a live c_int.
        let rc = unsafe {
            libc::setsockopt(
                rx.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_ATTACH_BPF,
                (&prog_fd as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(
            rc,
            0,
            "setsockopt(SO_ATTACH_BPF): {}",
            std::io::Error::last_os_error()
        );
        BpfProgram {
            obj,
            rx,
            tx,
            path,
            prog,
        }
    }

    /// The names of the program's maps (as in the C source).
    pub fn map_names(&self) -> Vec<String> {
        self.obj
            .maps()
            .map(|m| m.name().to_string_lossy().into_owned())
            .collect()
    }

    /// The kernel id of the map called `name`.
    pub fn map_id(&self, name: &str) -> u32 {
        let map = self
            .obj
            .maps()
            .find(|m| m.name() == name)
            .unwrap_or_else(|| panic!("no map {name} in {}", self.path));
        map.info().expect("bpf_map_info").info.id
    }

    /// The kernel id of the program.
    pub fn prog_id(&self) -> u32 {
        let prog = self
            .obj
            .progs()
            .find(|p| p.name() == self.prog)
            .expect("the program");
        let mut info = libbpf_sys::bpf_prog_info::default();
        let mut len = std::mem::size_of::<libbpf_sys::bpf_prog_info>() as u32;
        // SAFETY: info and len are live and len is the size of info.
        let rc = unsafe {
            libbpf_sys::bpf_prog_get_info_by_fd(prog.as_fd().as_raw_fd(), &mut info, &mut len)
        };
        assert_eq!(
            rc,
            0,
            "bpf_prog_get_info_by_fd: {}",
            std::io::Error::last_os_error()
        );
        info.id
    }

    /// Pins every map at `<dir>/<map name>` (creating `dir`, which must lie in a bpffs) and
    /// returns name → pin path. The pins outlive this object: the bpffs guard removes them.
    pub fn pin_maps(&mut self, dir: &Path) -> BTreeMap<String, PathBuf> {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        let mut pins = BTreeMap::new();
        for mut map in self.obj.maps_mut() {
            let name = map.name().to_string_lossy().into_owned();
            let path = dir.join(&name);
            map.pin(&path)
                .unwrap_or_else(|e| panic!("pin {name} at {}: {e}", path.display()));
            pins.insert(name, path);
        }
        pins
    }

    /// Sends one datagram per payload length to the filtered socket and receives them all
    /// (so the program has run for each). Returns the bytes the program counts:
    /// Σ (payload + UDP header).
    pub fn send(&self, payload_lens: &[usize]) -> u64 {
        let to = self.rx.local_addr().expect("rx address");
        let mut buf = vec![0u8; 65536];
        let mut bytes = 0u64;
        for (i, &len) in payload_lens.iter().enumerate() {
            let payload = vec![(i % 251) as u8; len];
            let sent = self.tx.send_to(&payload, to).expect("send a datagram");
            assert_eq!(sent, len);
            let (got, _) = self
                .rx
                .recv_from(&mut buf)
                .expect("receive the datagram back (socket filter dropped it?)");
            assert_eq!(got, len, "datagram truncated by the filter");
            bytes += len as u64 + UDP_HEADER_LEN;
        }
        bytes
    }

    /// Sends each payload as one datagram to the filtered socket and receives it back (so
    /// the program has run for each).
    pub fn send_payloads(&self, payloads: &[&[u8]]) {
        let to = self.rx.local_addr().expect("rx address");
        let mut buf = vec![0u8; 65536];
        for p in payloads {
            let sent = self.tx.send_to(p, to).expect("send a datagram");
            assert_eq!(sent, p.len());
            let (got, _) = self
                .rx
                .recv_from(&mut buf)
                .expect("receive the datagram back (socket filter dropped it?)");
            assert_eq!(got, p.len(), "datagram truncated by the filter");
        }
    }

    /// The sending socket's address.
    pub fn tx_addr(&self) -> std::net::SocketAddr {
        self.tx.local_addr().expect("tx address")
    }

    /// The receiving socket's address.
    pub fn rx_addr(&self) -> std::net::SocketAddr {
        self.rx.local_addr().expect("rx address")
    }
}
