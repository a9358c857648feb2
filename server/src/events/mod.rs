//! Live records of ring buffers and perf event arrays, for `ReadEvents`.
//!
//! A ring buffer has one consumer position: two readers of the same ring would steal records
//! from each other. So the daemon is the one consumer of each map it serves events of: the
//! first subscriber of a map starts a [`Hub`] (a consuming thread, see [`reader`]), later
//! subscribers join it, and every record read is offered to each of them through a bounded
//! queue ([`fanout`]). The last subscriber to leave stops the hub, which closes everything it
//! opened. Hubs are found by map id; a map cannot go away (and its id be reused) while a hub
//! holds it open.

mod fanout;
mod reader;
mod record_type;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use bytes::Bytes;
use nix::sys::eventfd::{EfdFlags, EventFd};
use parking_lot::Mutex;
use tokio::sync::watch;

pub use fanout::{Inlet, Item, Record};
pub use record_type::RecordType;

use crate::error::{Error, KernelCtx, Result};
use crate::kernel::{KernelError, Map, Op, RawEvent};
use crate::registry::desc;

/// Caps and sizes of event streams.
#[derive(Debug, Clone, Copy)]
pub struct EventLimits {
    /// Subscribers in total, over all maps (0: no limit).
    pub max_subscribers: usize,
    /// Byte budget of one subscriber's queue.
    pub queue_bytes: usize,
    /// Records in one subscriber's queue.
    pub queue_records: usize,
}

impl Default for EventLimits {
    fn default() -> Self {
        EventLimits {
            max_subscribers: 256,
            queue_bytes: 4 << 20,
            queue_records: 64 * 1024,
        }
    }
}

/// Whether a hub's consumer is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ready {
    /// The consumer thread is opening the map's buffers.
    Opening,
    /// Records flow.
    Running,
    /// Opening or reading failed: subscribers get this error.
    Failed(KernelError),
}

/// The daemon's one consumer of one map, and its subscribers.
#[derive(Debug)]
pub struct Hub {
    map_id: u32,
    /// Read by the consuming thread for every record; changed under `Events::hubs`.
    outlets: ArcSwap<Vec<Arc<fanout::Outlet>>>,
    stopping: AtomicBool,
    /// Written to wake the consuming thread (stop requests).
    wake: EventFd,
    ready: watch::Sender<Ready>,
    /// The consuming thread, for a successor to wait on.
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Records read from the map.
    records: AtomicU64,
}

impl Hub {
    fn is_stopping(&self) -> bool {
        self.stopping.load(SeqCst)
    }

    fn set_ready(&self, r: Ready) {
        self.ready.send_replace(r);
    }

    /// Called by the consuming thread for every record and loss report.
    fn fan_out(&self, ev: RawEvent<'_>) {
        let outlets = self.outlets.load();
        match ev {
            RawEvent::Record { cpu, data } => {
                self.records.fetch_add(1, SeqCst);
                if outlets.is_empty() {
                    return;
                }
                let record = Record {
                    data: Bytes::copy_from_slice(data),
                    cpu,
                    time_ns: now_ns(),
                };
                for o in outlets.iter() {
                    o.offer(&record);
                }
            }
            RawEvent::Lost { cpu, count } => {
                tracing::debug!(map = self.map_id, cpu, count, "perf buffer overflowed");
                for o in outlets.iter() {
                    o.lost(count);
                }
            }
        }
    }

    fn stop(&self) {
        self.stopping.store(true, SeqCst);
        let _ = self.wake.write(1);
    }
}

/// Nanoseconds since the Unix epoch.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Every hub, by map id.
#[derive(Debug)]
pub struct Events {
    hubs: Mutex<HashMap<u32, Arc<Hub>>>,
    subscribers: AtomicUsize,
    next_id: AtomicU64,
    limits: EventLimits,
}

/// One subscriber of one map: its queue, and its place in the hub until dropped.
#[derive(Debug)]
pub struct Subscription {
    events: Arc<Events>,
    hub: Arc<Hub>,
    id: u64,
    inlet: Inlet,
    ready: watch::Receiver<Ready>,
}

impl Events {
    /// No hub yet; subscribers within `limits`.
    pub fn new(limits: EventLimits) -> Events {
        Events {
            hubs: Mutex::new(HashMap::new()),
            subscribers: AtomicUsize::new(0),
            next_id: AtomicU64::new(1),
            limits,
        }
    }

    /// Subscribes to the records of `map` (a RINGBUF or PERF_EVENT_ARRAY), starting its
    /// consumer if it has none. Returns once the consumer reads the map (or failed to).
    pub async fn subscribe(self: &Arc<Self>, map: Arc<Map>) -> Result<Subscription> {
        let max = self.limits.max_subscribers;
        let n = self.subscribers.fetch_add(1, SeqCst);
        if max > 0 && n >= max {
            self.subscribers.fetch_sub(1, SeqCst);
            return Err(Error::ResourceExhausted(format!(
                "{n} event streams are open (--max-event-subscribers {max}); close one first"
            )));
        }
        let id = self.next_id.fetch_add(1, SeqCst);
        let (outlet, inlet) = fanout::queue(id, self.limits.queue_records, self.limits.queue_bytes);
        let hub = match self.attach(&map, outlet) {
            Ok(hub) => hub,
            Err(e) => {
                self.subscribers.fetch_sub(1, SeqCst);
                return Err(e);
            }
        };
        let mut sub = Subscription {
            events: self.clone(),
            ready: hub.ready.subscribe(),
            hub,
            id,
            inlet,
        };
        let state = match sub.ready.wait_for(|r| *r != Ready::Opening).await {
            Ok(r) => *r,
            Err(_) => Ready::Failed(KernelError {
                op: "ring_buffer__new",
                errno: libc::EIO,
            }),
        };
        if let Ready::Failed(e) = state {
            return Err(read_error(&map, e));
        }
        Ok(sub)
    }

    /// Adds `outlet` to the map's running hub, or starts a new hub.
    fn attach(self: &Arc<Self>, map: &Arc<Map>, outlet: fanout::Outlet) -> Result<Arc<Hub>> {
        let mut hubs = self.hubs.lock();
        let prev = match hubs.get(&map.id) {
            Some(hub) if !hub.is_stopping() && !matches!(*hub.ready.borrow(), Ready::Failed(_)) => {
                let mut list = Vec::clone(&hub.outlets.load());
                list.push(Arc::new(outlet));
                hub.outlets.store(Arc::new(list));
                return Ok(hub.clone());
            }
            Some(old) => old.thread.lock().take(),
            None => None,
        };
        let wake = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
            .map_err(|e| Error::Internal(format!("eventfd: {e}")))?;
        let (ready, _) = watch::channel(Ready::Opening);
        let hub = Arc::new(Hub {
            map_id: map.id,
            outlets: ArcSwap::from_pointee(vec![Arc::new(outlet)]),
            stopping: AtomicBool::new(false),
            wake,
            ready,
            thread: Mutex::new(None),
            records: AtomicU64::new(0),
        });
        let thread = reader::spawn(self.clone(), hub.clone(), map.clone(), prev)
            .map_err(|e| Error::Internal(format!("cannot start the event consumer thread: {e}")))?;
        *hub.thread.lock() = Some(thread);
        hubs.insert(map.id, hub.clone());
        tracing::info!(map = map.id, "event consumer starting");
        Ok(hub)
    }

    /// Takes subscriber `id` out of `hub`; the last one stops it.
    fn leave(&self, hub: &Arc<Hub>, id: u64) {
        self.subscribers.fetch_sub(1, SeqCst);
        let hubs = self.hubs.lock();
        let list: Vec<_> = hub
            .outlets
            .load()
            .iter()
            .filter(|o| o.id != id)
            .cloned()
            .collect();
        let last = list.is_empty();
        hub.outlets.store(Arc::new(list));
        if last {
            hub.stop();
            tracing::info!(
                map = hub.map_id,
                records = hub.records.load(SeqCst),
                "last subscriber left: event consumer stopping"
            );
        }
        drop(hubs);
    }

    /// Called by a consuming thread that ended: forgets its hub unless a successor took
    /// its place already.
    fn forget(&self, hub: &Arc<Hub>) {
        let mut hubs = self.hubs.lock();
        if hubs.get(&hub.map_id).is_some_and(|h| Arc::ptr_eq(h, hub)) {
            hubs.remove(&hub.map_id);
        }
        // A thread that ended on an error still has subscribers: they see Failed.
        hub.stopping.store(true, SeqCst);
    }
}

/// Explains a failure to read a map's events.
fn read_error(map: &Map, e: KernelError) -> Error {
    match e.errno {
        libc::EPERM | libc::EACCES => Error::PermissionDenied(format!(
            "the kernel refused to let the daemon read {}: {e}",
            desc(map)
        )),
        _ => Error::kernel(&desc(map), Op::Dump, KernelCtx::default(), e)
            .prefixed("reading events: "),
    }
}

impl Subscription {
    /// The next record (or loss report). Err when the consumer failed; never ends otherwise.
    pub async fn next(&mut self) -> Result<Item> {
        loop {
            if let Ready::Failed(e) = *self.ready.borrow() {
                return Err(Error::Internal(format!(
                    "reading events of map {} stopped: {e}",
                    self.hub.map_id
                )));
            }
            tokio::select! {
                item = self.inlet.next() => match item {
                    Some(item) => return Ok(item),
                    None => {
                        return Err(Error::Internal(format!(
                            "the event consumer of map {} went away",
                            self.hub.map_id
                        )))
                    }
                },
                changed = self.ready.changed() => {
                    if changed.is_err() {
                        return Err(Error::Internal("the event consumer went away".into()));
                    }
                }
            }
        }
    }

    /// The next item if one is waiting, without waiting (a failure of the consumer shows
    /// in [`Subscription::next`] once the queue is empty).
    pub fn try_next(&mut self) -> Option<Item> {
        self.inlet.try_next()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.events.leave(&self.hub, self.id);
    }
}
