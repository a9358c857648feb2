//! [`EventsProgram`]: the socket filter of `tests/bpf/events.bpf.c`, loaded and attached,
//! which writes records to a ring buffer and to a perf event array.
//!
//! Every datagram [`send`] delivers to the filtered UDP socket runs the program once, and it
//! writes `burst` records (default 1) to each of `ev_ring` (RINGBUF, 1 MiB) and `ev_perf`
//! (PERF_EVENT_ARRAY, current CPU). A record is an [`Event`]: the datagram's sequence number
//! (its payload's first 8 bytes), `skb->len` (8-byte UDP header + payload) and the record's
//! index in the datagram; with `big`, records are [`BIG`] bytes, the [`Event`] then zeroes.
//! [`stats`] reads the program's own counts of records written and refused.
//!
//! [`send`]: EventsProgram::send
//! [`stats`]: EventsProgram::stats

use std::net::UdpSocket;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use libbpf_rs::{MapCore, MapFlags, Object, ObjectBuilder};

/// The compiled object file.
pub const EVENTS_OBJ: &str = concat!(env!("OUT_DIR"), "/events.bpf.o");
/// Bytes of a big record.
pub const BIG: usize = 4096;
/// Bytes of a small record (`struct event`).
pub const EVENT_LEN: usize = 16;
/// Most records per datagram.
pub const MAX_BURST: u32 = 64;
/// Bytes of each datagram's payload that [`EventsProgram::send`] sends.
pub const PAYLOAD_LEN: usize = 24;

/// One record as the program writes it (`struct event`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// The datagram's sequence number.
    pub seq: u64,
    /// `skb->len`: 8 + payload bytes.
    pub len: u32,
    /// The record's index within its datagram (0..burst).
    pub index: u32,
}

impl Event {
    /// Parses the first [`EVENT_LEN`] bytes of a record (host byte order).
    pub fn parse(record: &[u8]) -> Event {
        assert!(
            record.len() >= EVENT_LEN,
            "a record of {} bytes: shorter than struct event",
            record.len()
        );
        let u64_at = |o: usize| u64::from_ne_bytes(record[o..o + 8].try_into().unwrap());
        let u32_at = |o: usize| u32::from_ne_bytes(record[o..o + 4].try_into().unwrap());
        Event {
            seq: u64_at(0),
            len: u32_at(8),
            index: u32_at(12),
        }
    }
}

/// The program's counts (`ev_stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Records written to the ring buffer.
    pub ring_written: u64,
    /// Records the ring buffer refused (full).
    pub ring_refused: u64,
    /// Records written to a perf buffer.
    pub perf_written: u64,
    /// Records refused by the perf event array (no reader on that CPU, or full).
    pub perf_refused: u64,
}

/// The loaded program with its maps and sockets; everything is released on drop (maps
/// survive only through pins).
#[derive(Debug)]
pub struct EventsProgram {
    obj: Object,
    rx: UdpSocket,
    tx: UdpSocket,
}

impl EventsProgram {
    /// Loads `events.bpf.o` and attaches it to a fresh UDP socket on 127.0.0.1.
    pub fn load() -> EventsProgram {
        let obj = ObjectBuilder::default()
            .open_file(EVENTS_OBJ)
            .unwrap_or_else(|e| panic!("open {EVENTS_OBJ}: {e}"))
            .load()
            .unwrap_or_else(|e| panic!("load {EVENTS_OBJ}: {e}"));
        let rx = UdpSocket::bind("127.0.0.1:0").expect("bind the receiving UDP socket");
        rx.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("read timeout");
        let tx = UdpSocket::bind("127.0.0.1:0").expect("bind the sending UDP socket");
        let prog_fd = {
            let prog = obj
                .progs()
                .find(|p| p.name() == "emit_events")
                .expect("program emit_events in the object");
            prog.as_fd().as_raw_fd()
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
        EventsProgram { obj, rx, tx }
    }

    fn map(&self, name: &str) -> libbpf_rs::Map<'_> {
        self.obj
            .maps()
            .find(|m| m.name() == name)
            .unwrap_or_else(|| panic!("no map {name} in {EVENTS_OBJ}"))
    }

    /// The kernel id of the map called `name` (`ev_ring`, `ev_perf`, ...).
    pub fn map_id(&self, name: &str) -> u32 {
        self.map(name).info().expect("bpf_map_info").info.id
    }

    /// The ring buffer's id.
    pub fn ring_id(&self) -> u32 {
        self.map_id("ev_ring")
    }

    /// The perf event array's id.
    pub fn perf_id(&self) -> u32 {
        self.map_id("ev_perf")
    }

    /// Pins the map `name` at `dir/name` (`dir` on a bpffs) and returns the path.
    pub fn pin(&mut self, name: &str, dir: &Path) -> PathBuf {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        let path = dir.join(name);
        let mut map = self
            .obj
            .maps_mut()
            .find(|m| m.name() == name)
            .unwrap_or_else(|| panic!("no map {name}"));
        map.pin(&path)
            .unwrap_or_else(|e| panic!("pin {name} at {}: {e}", path.display()));
        path
    }

    /// Sets records per datagram (1..=64) and whether records are [`BIG`] bytes.
    pub fn configure(&self, burst: u32, big: bool) {
        assert!((1..=MAX_BURST).contains(&burst), "burst {burst}");
        let mut value = burst.to_ne_bytes().to_vec();
        value.extend_from_slice(&u32::from(big).to_ne_bytes());
        self.map("ev_config")
            .update(&0u32.to_ne_bytes(), &value, MapFlags::ANY)
            .expect("write ev_config");
    }

    /// The program's counts of records written and refused.
    pub fn stats(&self) -> Stats {
        let m = self.map("ev_stats");
        let get = |k: u32| {
            let v = m
                .lookup(&k.to_ne_bytes(), MapFlags::ANY)
                .expect("read ev_stats")
                .expect("ev_stats entry");
            u64::from_ne_bytes(v[..8].try_into().unwrap())
        };
        Stats {
            ring_written: get(0),
            ring_refused: get(1),
            perf_written: get(2),
            perf_refused: get(3),
        }
    }

    /// Sends one datagram per sequence number (payload: the number, then zeroes, 24 bytes)
    /// and receives each back, so that the program has run for all of them on return.
    pub fn send(&self, seqs: impl IntoIterator<Item = u64>) -> u64 {
        let to = self.rx.local_addr().expect("rx address");
        let mut buf = [0u8; 256];
        let mut n = 0;
        for seq in seqs {
            let mut payload = [0u8; PAYLOAD_LEN];
            payload[..8].copy_from_slice(&seq.to_ne_bytes());
            self.tx.send_to(&payload, to).expect("send a datagram");
            let (got, _) = self
                .rx
                .recv_from(&mut buf)
                .expect("receive the datagram back (socket filter dropped it?)");
            assert_eq!(got, PAYLOAD_LEN);
            n += 1;
        }
        n
    }
}
