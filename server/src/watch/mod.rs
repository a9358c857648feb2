//! Watching maps change, for `Watch`: the current contents first, then batches of changes.
//!
//! The kernel does not say when a map changes, so the daemon reads it again and compares.
//! Reading a map costs syscalls in proportion to its size, so watchers of one map share one
//! [`poller`] (found by map id), which reads at the shortest interval any of them asked for
//! and merges each read's changes into every watcher's pending set ([`changes`]). A watcher
//! sends its pending set at most once per its own interval. The number of watchers and the
//! shortest interval are capped: both bound the work a client can make the daemon do.

mod changes;
mod poller;
mod snapshot;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::time::Instant;

pub use changes::{Change, Kind};
pub use snapshot::ReadError;

use crate::error::{Error, KernelCtx, Result};
use crate::kernel::Map;
use crate::registry::desc;
use poller::{Inbox, Poller, Slot};

/// Interval of a watch that asks for none.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);

/// Caps of watches.
#[derive(Debug, Clone, Copy)]
pub struct WatchLimits {
    /// Watchers in total, over all maps (0: no limit).
    pub max_watchers: usize,
    /// The shortest interval a watcher may ask for.
    pub min_interval: Duration,
}

impl Default for WatchLimits {
    fn default() -> Self {
        WatchLimits {
            max_watchers: 256,
            min_interval: Duration::from_millis(100),
        }
    }
}

/// Every poller, by map id.
#[derive(Debug)]
pub struct Watches {
    pollers: Mutex<HashMap<u32, Arc<Poller>>>,
    watchers: AtomicUsize,
    next_id: AtomicU64,
    limits: WatchLimits,
}

/// What a watcher sends next.
#[derive(Debug)]
pub enum Update {
    /// The map's contents when the watcher joined, in the map's order.
    Snapshot {
        /// (key, value) pairs; values are value_stride bytes.
        entries: Vec<(Bytes, Bytes)>,
        /// When the map was read (ns since the Unix epoch).
        time_ns: u64,
    },
    /// What changed since the previous update, at most one change per key.
    Changes {
        /// The changes, in the order they were first seen.
        changes: Vec<Change>,
        /// Entries in the map at the latest read.
        count: u64,
        /// When the map was read (ns since the Unix epoch).
        time_ns: u64,
    },
}

/// One watcher of one map; leaves its poller when dropped.
#[derive(Debug)]
pub struct Watcher {
    watches: Arc<Watches>,
    poller: Arc<Poller>,
    slot: Arc<Slot>,
    snapshot_sent: bool,
    /// No batch of changes before this instant.
    not_before: Instant,
}

impl Watches {
    /// No poller yet; watchers within `limits`.
    pub fn new(limits: WatchLimits) -> Watches {
        Watches {
            pollers: Mutex::new(HashMap::new()),
            watchers: AtomicUsize::new(0),
            next_id: AtomicU64::new(1),
            limits,
        }
    }

    /// The interval a request asks for (`0`: the default), checked against the minimum.
    pub fn interval(&self, ms: u32) -> Result<Duration> {
        let interval = if ms == 0 {
            DEFAULT_INTERVAL.max(self.limits.min_interval)
        } else {
            Duration::from_millis(u64::from(ms))
        };
        if interval < self.limits.min_interval {
            return Err(Error::ResourceExhausted(format!(
                "interval_ms {ms} is below the daemon's minimum of {} ms (--min-watch-interval-ms): ask for a longer interval",
                self.limits.min_interval.as_millis()
            )));
        }
        Ok(interval)
    }

    /// Starts watching `map` every `interval`, joining its poller or starting one.
    pub fn join(self: &Arc<Self>, map: Arc<Map>, interval: Duration) -> Result<Watcher> {
        let max = self.limits.max_watchers;
        let n = self.watchers.fetch_add(1, SeqCst);
        if max > 0 && n >= max {
            self.watchers.fetch_sub(1, SeqCst);
            return Err(Error::ResourceExhausted(format!(
                "{n} watches are open (--max-watchers {max}); close one first"
            )));
        }
        let slot = Arc::new(Slot {
            id: self.next_id.fetch_add(1, SeqCst),
            interval,
            inbox: Mutex::new(Inbox {
                wants_snapshot: true,
                ..Default::default()
            }),
            notify: tokio::sync::Notify::new(),
        });
        let mut pollers = self.pollers.lock();
        let poller = match pollers.get(&map.id) {
            Some(p) if !p.is_stopping() => p.clone(),
            _ => {
                let p = Arc::new(Poller::new(map.clone()));
                if let Err(e) = p.spawn() {
                    self.watchers.fetch_sub(1, SeqCst);
                    return Err(Error::Internal(format!(
                        "cannot start the watch poller thread: {e}"
                    )));
                }
                pollers.insert(map.id, p.clone());
                tracing::info!(map = map.id, "watch poller started");
                p
            }
        };
        poller.add(slot.clone());
        drop(pollers);
        Ok(Watcher {
            watches: self.clone(),
            poller,
            slot,
            snapshot_sent: false,
            not_before: Instant::now(),
        })
    }

    fn leave(&self, poller: &Arc<Poller>, id: u64) {
        self.watchers.fetch_sub(1, SeqCst);
        let mut pollers = self.pollers.lock();
        if poller.remove(id) {
            if pollers
                .get(&poller.map.id)
                .is_some_and(|p| Arc::ptr_eq(p, poller))
            {
                pollers.remove(&poller.map.id);
            }
            tracing::info!(
                map = poller.map.id,
                "last watcher left: watch poller stopping"
            );
        }
    }
}

impl Watcher {
    /// The next update: first the snapshot (as soon as the poller has read the map), then
    /// batches of changes, no two closer than the watcher's interval, none while nothing
    /// changes. Err when the poller could not read the map.
    pub async fn next(&mut self) -> Result<Update> {
        loop {
            let notified = self.slot.notify.notified();
            {
                let mut inbox = self.slot.inbox.lock();
                if let Some(e) = inbox.failed {
                    return Err(read_error(&self.poller.map, e));
                }
                if !self.snapshot_sent {
                    if let Some(entries) = inbox.snapshot.take() {
                        self.snapshot_sent = true;
                        self.not_before = Instant::now() + self.slot.interval;
                        return Ok(Update::Snapshot {
                            entries,
                            time_ns: inbox.time_ns,
                        });
                    }
                } else if Instant::now() >= self.not_before && !inbox.pending.is_empty() {
                    self.not_before = Instant::now() + self.slot.interval;
                    return Ok(Update::Changes {
                        changes: inbox.pending.take(),
                        count: inbox.count,
                        time_ns: inbox.time_ns,
                    });
                }
            }
            if self.snapshot_sent && Instant::now() < self.not_before {
                tokio::select! {
                    _ = notified => {}
                    _ = tokio::time::sleep_until(self.not_before) => {}
                }
            } else {
                notified.await;
            }
        }
    }

    /// The watched map.
    pub fn map(&self) -> &Arc<Map> {
        &self.poller.map
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.watches.leave(&self.poller, self.slot.id);
    }
}

/// Explains a failed read of a watched map.
fn read_error(map: &Map, e: ReadError) -> Error {
    match e {
        ReadError::Kernel(op, e) => Error::kernel(&desc(map), op, KernelCtx::default(), e)
            .prefixed("watch stopped: reading the map failed: "),
        ReadError::Restarted => Error::Aborted(format!(
            "watch stopped: {} changed so fast that a key-by-key read kept restarting",
            desc(map)
        )),
    }
}
