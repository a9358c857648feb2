//! Configured caps: entries per map, managed maps (total and per identity), entries per
//! batch, concurrent streams per identity, event subscribers and watchers. Each is checked before anything changes, so a
//! refused call leaves no trace.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::events::EventLimits;
use crate::watch::WatchLimits;

/// The caps (0 = unlimited).
#[derive(Debug, Clone, Default)]
pub struct Limits {
    /// Largest max_entries of a created map.
    pub max_entries_per_map: u32,
    /// Managed maps in total.
    pub max_maps: usize,
    /// Managed maps created by one identity.
    pub max_maps_per_identity: usize,
    /// Entries in one BatchUpdate message or keys in one BatchDelete.
    pub max_batch_entries: usize,
    /// Concurrent streams (Dump, BatchUpdate, ReadEvents, Watch) of one identity.
    pub max_streams_per_identity: usize,
    /// Event subscribers in total and the size of their queues.
    pub events: EventLimits,
    /// Watchers in total and the shortest interval.
    pub watch: WatchLimits,
}

/// Open streams per identity.
#[derive(Debug, Default)]
pub struct StreamCounter {
    open: Mutex<HashMap<String, usize>>,
}

/// Holds one stream slot until dropped.
#[derive(Debug)]
pub struct StreamSlot {
    counter: Arc<StreamCounter>,
    key: String,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.counter.open.lock();
        if let Some(n) = open.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

impl StreamCounter {
    /// Streams open now, all identities together.
    pub fn total(&self) -> usize {
        self.open.lock().values().sum()
    }

    /// Takes a slot for `key`, or RESOURCE_EXHAUSTED when `max` are open (0 = unlimited).
    pub fn acquire(self: &Arc<Self>, key: &str, max: usize) -> Result<StreamSlot> {
        let mut open = self.open.lock();
        let n = open.entry(key.to_owned()).or_insert(0);
        if max > 0 && *n >= max {
            return Err(Error::ResourceExhausted(format!(
                "{key} already has {n} streams open (--max-streams-per-identity {max}); close one first"
            )));
        }
        *n += 1;
        Ok(StreamSlot {
            counter: self.clone(),
            key: key.to_owned(),
        })
    }
}

impl Limits {
    /// Checks a batch's size.
    pub fn check_batch(&self, n: usize, what: &str) -> Result<()> {
        if self.max_batch_entries > 0 && n > self.max_batch_entries {
            return Err(Error::ResourceExhausted(format!(
                "{what} has {n} entries; the limit is {} per message (--max-batch-entries): send smaller chunks",
                self.max_batch_entries
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_slots_are_counted_and_released() {
        let c = Arc::new(StreamCounter::default());
        let a = c.acquire("uid:1", 2);
        let b = c.acquire("uid:1", 2);
        assert!(a.is_ok() && b.is_ok());
        assert!(c.acquire("uid:1", 2).is_err());
        assert!(c.acquire("uid:2", 2).is_ok());
        drop(a);
        assert!(c.acquire("uid:1", 2).is_ok());
    }
}
