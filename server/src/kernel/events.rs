//! Reading ring buffers and perf event arrays: libbpf's `ring_buffer` and `perf_buffer`,
//! wrapped so that the rest of the daemon never touches a raw pointer.
//!
//! An [`EventReader`] owns everything it opens: a fd of the map of its own (opened by id: a
//! perf event array's entries belong to the *file* that inserted them, so closing that fd
//! takes our perf events out of the map again), libbpf's object with its mmaps and epoll
//! fd, and for a perf event array one perf event and buffer per CPU, which libbpf installs
//! in the map. Dropping the reader releases all of it.
//!
//! The reader never blocks: [`EventReader::consume`] hands what is there to the sink and
//! returns; the caller waits on [`EventReader::epoll_fd`] (readable when data is there).

use std::ffi::{c_int, c_void};
use std::os::fd::BorrowedFd;
use std::ptr::NonNull;

use super::types::num;
use super::{check, KernelError, Map};

/// What a reader hands its sink.
#[derive(Debug, Clone, Copy)]
pub enum RawEvent<'a> {
    /// One record: the bytes the program wrote; the CPU for perf event arrays.
    Record {
        /// The CPU whose perf buffer held the record (None for ring buffers).
        cpu: Option<u32>,
        /// The record.
        data: &'a [u8],
    },
    /// The kernel dropped `count` records of `cpu`'s perf buffer (it was full).
    Lost {
        /// The CPU.
        cpu: u32,
        /// How many records.
        count: u64,
    },
}

/// Where a reader's events go: called on the consuming thread, once per record.
pub type EventSink = Box<dyn FnMut(RawEvent<'_>) + Send>;

enum Buffer {
    Ring(NonNull<libbpf_sys::ring_buffer>),
    Perf(NonNull<libbpf_sys::perf_buffer>),
}

/// The daemon's consumer of one RINGBUF or PERF_EVENT_ARRAY map.
pub struct EventReader {
    buf: Buffer,
    /// The sink, boxed twice (libbpf keeps a thin pointer to it as its callback context)
    /// and leaked into a raw pointer while libbpf holds it; freed in Drop.
    sink: NonNull<EventSink>,
    /// Our own fd of the map (closed after `buf` is freed).
    map: Map,
}

impl std::fmt::Debug for EventReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.buf {
            Buffer::Ring(_) => "ringbuf",
            Buffer::Perf(_) => "perf_event_array",
        };
        f.debug_struct("EventReader")
            .field("map", &self.map.id)
            .field("kind", &kind)
            .finish()
    }
}

// SAFETY: libbpf's ring_buffer and perf_buffer are plain heap objects with no thread
// affinity (no thread-local state, no signal handlers). EventReader only reaches them through
// `&mut self` (consume) or `&self` reads of the epoll fd, so moving it to another thread
// cannot create concurrent access; the sink it calls is `Send`.
unsafe impl Send for EventReader {}

unsafe extern "C" fn ring_sample(
    ctx: *mut c_void,
    data: *mut c_void,
    size: libbpf_sys::size_t,
) -> c_int {
    // SAFETY: `ctx` is the `Box<EventSink>` of the reader that registered this callback; it
    // lives as long as the ring_buffer, and libbpf calls back only from inside
    // `ring_buffer__consume_n`, which `EventReader::consume` runs under `&mut self`, so this is
    // the only reference. `data` points at `size` bytes of the mapped ring, readable for the
    // duration of the call.
    let (sink, data) = unsafe {
        (
            &mut *ctx.cast::<EventSink>(),
            std::slice::from_raw_parts(data.cast::<u8>().cast_const(), size as usize),
        )
    };
    sink(RawEvent::Record { cpu: None, data });
    0
}

unsafe extern "C" fn perf_sample(ctx: *mut c_void, cpu: c_int, data: *mut c_void, size: u32) {
    // SAFETY: as in `ring_sample`: `ctx` is the reader's sink, reached only from inside
    // `perf_buffer__consume` under `&mut self`; `data` holds `size` readable bytes (libbpf
    // copies records that wrap around the ring into a buffer of its own first).
    let (sink, data) = unsafe {
        (
            &mut *ctx.cast::<EventSink>(),
            std::slice::from_raw_parts(data.cast::<u8>().cast_const(), size as usize),
        )
    };
    sink(RawEvent::Record {
        cpu: u32::try_from(cpu).ok(),
        data,
    });
}

unsafe extern "C" fn perf_lost(ctx: *mut c_void, cpu: c_int, count: u64) {
    // SAFETY: as in `perf_sample`.
    let sink = unsafe { &mut *ctx.cast::<EventSink>() };
    sink(RawEvent::Lost {
        cpu: u32::try_from(cpu).unwrap_or(0),
        count,
    });
}

impl EventReader {
    /// Opens the daemon's consumer of `map` (a RINGBUF or a PERF_EVENT_ARRAY, else EINVAL).
    /// Perf event arrays get `perf_pages` pages of buffer per CPU (a power of two).
    pub fn open(map: &Map, perf_pages: usize, sink: EventSink) -> Result<EventReader, KernelError> {
        let own = Map::open_id(map.id)?;
        if own.kind != map.kind {
            // The id was reused by another map since `map` was opened.
            return Err(KernelError {
                op: "map_get_fd_by_id",
                errno: libc::ENOENT,
            });
        }
        let sink = SinkBox::new(sink);
        let ctx: *mut c_void = sink.0.as_ptr().cast();
        let buf = match own.kind.0 {
            num::RINGBUF => {
                let opts = libbpf_sys::ring_buffer_opts {
                    sz: std::mem::size_of::<libbpf_sys::ring_buffer_opts>() as libbpf_sys::size_t,
                };
                // SAFETY: `own` is an open ringbuf fd; `ctx` points at the boxed sink, which
                // outlives the ring_buffer (freed first in Drop); `opts` is a sized options
                // struct alive for the call.
                let rb = unsafe {
                    libbpf_sys::ring_buffer__new(own.raw(), Some(ring_sample), ctx, &opts)
                };
                Buffer::Ring(
                    NonNull::new(rb).ok_or_else(|| KernelError::from_ret("ring_buffer__new", 0))?,
                )
            }
            num::PERF_EVENT_ARRAY => {
                let opts = libbpf_sys::perf_buffer_opts {
                    sz: std::mem::size_of::<libbpf_sys::perf_buffer_opts>() as libbpf_sys::size_t,
                    ..Default::default()
                };
                // SAFETY: `own` is an open perf event array fd that stays open until the
                // perf_buffer is freed (libbpf deletes its entries through it then); `ctx` as
                // above; `opts` is a sized options struct alive for the call.
                let pb = unsafe {
                    libbpf_sys::perf_buffer__new(
                        own.raw(),
                        perf_pages as libbpf_sys::size_t,
                        Some(perf_sample),
                        Some(perf_lost),
                        ctx,
                        &opts,
                    )
                };
                Buffer::Perf(
                    NonNull::new(pb).ok_or_else(|| KernelError::from_ret("perf_buffer__new", 0))?,
                )
            }
            _ => {
                return Err(KernelError {
                    op: "ring_buffer__new",
                    errno: libc::EINVAL,
                })
            }
        };
        Ok(EventReader {
            buf,
            sink: sink.into_raw(),
            map: own,
        })
    }

    /// The epoll fd that becomes readable when records are waiting.
    pub fn epoll_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: both pointers are live libbpf objects owned by self; the calls only read.
        let fd = unsafe {
            match self.buf {
                Buffer::Ring(rb) => libbpf_sys::ring_buffer__epoll_fd(rb.as_ptr()),
                Buffer::Perf(pb) => libbpf_sys::perf_buffer__epoll_fd(pb.as_ptr()),
            }
        };
        // SAFETY: the epoll fd is owned by the libbpf object, which lives as long as `self`,
        // and the borrow cannot outlive `self`.
        unsafe { BorrowedFd::borrow_raw(fd) }
    }

    /// Hands the waiting records to the sink without blocking: at most `max` of a ring
    /// buffer (so that a busy ring cannot keep the caller here forever), everything in every
    /// CPU's buffer of a perf event array. Returns the records of a ring buffer read.
    pub fn consume(&mut self, max: usize) -> Result<usize, KernelError> {
        match self.buf {
            Buffer::Ring(rb) => {
                // SAFETY: `rb` is live and used by this thread only (`&mut self`); the
                // callback's context (the sink) is alive.
                let n = unsafe {
                    libbpf_sys::ring_buffer__consume_n(rb.as_ptr(), max as libbpf_sys::size_t)
                };
                check("ring_buffer__consume_n", n).map(|n| n as usize)
            }
            Buffer::Perf(pb) => {
                // SAFETY: as above, for the perf_buffer.
                let ret = unsafe { libbpf_sys::perf_buffer__consume(pb.as_ptr()) };
                check("perf_buffer__consume", ret).map(|_| 0)
            }
        }
    }

    /// The map's kernel id.
    pub fn map_id(&self) -> u32 {
        self.map.id
    }
}

impl Drop for EventReader {
    fn drop(&mut self) {
        // SAFETY: the pointers came from *_new and are freed exactly once, here.
        unsafe {
            match self.buf {
                Buffer::Ring(rb) => libbpf_sys::ring_buffer__free(rb.as_ptr()),
                Buffer::Perf(pb) => libbpf_sys::perf_buffer__free(pb.as_ptr()),
            }
        }
        // libbpf no longer calls the sink: take it back and drop it.
        drop(SinkBox(self.sink));
    }
}

/// The leaked sink until it is handed to an [`EventReader`]; frees it when dropped (an
/// open that failed).
struct SinkBox(NonNull<EventSink>);

impl SinkBox {
    fn new(sink: EventSink) -> SinkBox {
        SinkBox(NonNull::from(Box::leak(Box::new(sink))))
    }

    fn into_raw(self) -> NonNull<EventSink> {
        let p = self.0;
        std::mem::forget(self);
        p
    }
}

impl Drop for SinkBox {
    fn drop(&mut self) {
        // SAFETY: the pointer came from Box::leak in `new` and is given back exactly once:
        // here, or in EventReader's Drop through a SinkBox made of the same pointer, after
        // libbpf stopped using it.
        drop(unsafe { Box::from_raw(self.0.as_ptr()) });
    }
}
