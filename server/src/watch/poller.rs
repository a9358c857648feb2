//! The shared poller of one watched map: a thread that reads the whole map every interval
//! (the shortest interval any of its watchers asked for), compares it with the previous
//! read, and hands the changes to every watcher's pending set, or a fresh snapshot to a
//! watcher that just joined.
//!
//! A thread, not a tokio task: a read of a large map is a long run of syscalls. It sleeps on
//! a condition variable between reads, wakes early when a watcher joins (so that its
//! snapshot is current) or when the last one leaves (and returns).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::{Condvar, Mutex};
use tokio::sync::Notify;

use super::changes::{diff, Change, Pending};
use super::snapshot::{read_all, ReadError};
use crate::events::now_ns;
use crate::kernel::Map;

/// A snapshot or batch of changes ready for one watcher.
#[derive(Debug, Default)]
pub(super) struct Inbox {
    /// The watcher waits for its first snapshot.
    pub wants_snapshot: bool,
    /// The snapshot to send: entries in the map's order.
    pub snapshot: Option<Vec<(Bytes, Bytes)>>,
    /// Changes since what the watcher last sent (or its snapshot).
    pub pending: Pending,
    /// The poller failed: the watcher ends with this.
    pub failed: Option<ReadError>,
    /// Entries at the latest read, and when it was made.
    pub count: u64,
    pub time_ns: u64,
}

/// One watcher as the poller sees it.
#[derive(Debug)]
pub(super) struct Slot {
    pub id: u64,
    pub interval: Duration,
    pub inbox: Mutex<Inbox>,
    pub notify: Notify,
}

#[derive(Debug, Default)]
struct State {
    slots: Vec<Arc<Slot>>,
    stopping: bool,
    /// Read now (a watcher joined).
    poll_now: bool,
}

/// The poller of one map.
#[derive(Debug)]
pub(super) struct Poller {
    pub map: Arc<Map>,
    state: Mutex<State>,
    cv: Condvar,
}

impl Poller {
    pub fn new(map: Arc<Map>) -> Poller {
        Poller {
            map,
            state: Mutex::new(State::default()),
            cv: Condvar::new(),
        }
    }

    pub fn is_stopping(&self) -> bool {
        self.state.lock().stopping
    }

    /// Adds a watcher; the poller reads the map at once to give it its snapshot.
    pub fn add(&self, slot: Arc<Slot>) {
        let mut st = self.state.lock();
        st.slots.push(slot);
        st.poll_now = true;
        self.cv.notify_all();
    }

    /// Removes a watcher; returns true when it was the last (the poller then stops).
    pub fn remove(&self, id: u64) -> bool {
        let mut st = self.state.lock();
        st.slots.retain(|s| s.id != id);
        if st.slots.is_empty() {
            st.stopping = true;
            self.cv.notify_all();
            return true;
        }
        false
    }

    /// Starts the thread.
    pub fn spawn(self: &Arc<Self>) -> std::io::Result<()> {
        let me = self.clone();
        std::thread::Builder::new()
            .name(format!("watch-{}", self.map.id))
            .spawn(move || me.run())
            .map(drop)
    }

    fn run(&self) {
        let mut known: HashMap<Bytes, Bytes> = HashMap::new();
        let mut next: Option<Instant> = None;
        loop {
            {
                let mut st = self.state.lock();
                loop {
                    if st.stopping {
                        tracing::debug!(map = self.map.id, "watch poller stopped");
                        return;
                    }
                    let due = next.is_none_or(|t| Instant::now() >= t);
                    if st.poll_now || due {
                        st.poll_now = false;
                        break;
                    }
                    if let Some(t) = next {
                        self.cv.wait_until(&mut st, t);
                    }
                }
            }
            let read = read_all(&self.map);
            let time_ns = now_ns();
            let entries = match read {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!(map = self.map.id, error = ?e, "watch poll failed");
                    let mut st = self.state.lock();
                    for s in &st.slots {
                        s.inbox.lock().failed = Some(e);
                        s.notify.notify_one();
                    }
                    st.stopping = true;
                    return;
                }
            };
            let (now, changes) = diff(&known, &entries);
            self.deliver(&entries, &changes, time_ns);
            known = now;
            let interval = {
                let st = self.state.lock();
                st.slots.iter().map(|s| s.interval).min()
            };
            next = Some(Instant::now() + interval.unwrap_or(Duration::from_secs(1)));
        }
    }

    /// Gives every watcher its part of this read.
    fn deliver(&self, entries: &[(Bytes, Bytes)], changes: &[Change], time_ns: u64) {
        let st = self.state.lock();
        for s in &st.slots {
            let mut inbox = s.inbox.lock();
            let news = if inbox.wants_snapshot {
                inbox.wants_snapshot = false;
                inbox.snapshot = Some(entries.to_vec());
                true
            } else {
                // Changes after a snapshot that is still unsent come after it.
                inbox.pending.merge(changes);
                !changes.is_empty()
            };
            inbox.count = entries.len() as u64;
            inbox.time_ns = time_ns;
            drop(inbox);
            if news {
                s.notify.notify_one();
            }
        }
    }
}
