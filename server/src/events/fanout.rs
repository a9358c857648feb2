//! Fan-out of one map's records to its subscribers, with bounded queues and exact loss counts.
//!
//! The consuming thread copies each record once into a shared buffer ([`Record`]) and
//! offers it to every subscriber's queue ([`Outlet::offer`]). A queue takes a record while
//! it holds fewer than its byte budget and its record cap; otherwise the record is dropped
//! *for that subscriber only* and counted. The count travels with the next record that
//! gets in (`Item::lost`), or, when the subscriber drains its queue and nothing new comes,
//! as an item of its own (see [`Inlet::next`]). So for every subscriber, records received
//! plus records reported lost equals records read from the map, and a slow subscriber never
//! slows the others or grows the daemon's memory beyond its budget.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;

/// Bytes charged per queued record on top of its data (the queue slot, the shared buffer's
/// header), so that a flood of tiny records is bounded too.
pub(super) const RECORD_OVERHEAD: usize = 64;

/// One record as read from the map, shared by every queue it is in.
#[derive(Debug, Clone)]
pub struct Record {
    /// The bytes the program wrote.
    pub data: Bytes,
    /// Perf event arrays: the CPU whose buffer held it.
    pub cpu: Option<u32>,
    /// When the daemon read it (ns since the Unix epoch).
    pub time_ns: u64,
}

/// What a subscriber receives: a record, and the records it lost just before it.
#[derive(Debug, Clone)]
pub struct Item {
    /// The record (None: the item only reports losses).
    pub record: Option<Record>,
    /// Records lost since the previous item.
    pub lost: u64,
}

/// Counters shared by both ends of one subscriber's queue.
#[derive(Debug)]
struct Shared {
    /// Records dropped and not reported yet.
    dropped: AtomicU64,
    /// Bytes held in the queue (data + overhead).
    held: AtomicUsize,
    /// Byte budget of the queue.
    budget: usize,
}

/// The consuming thread's end of one subscriber's queue.
#[derive(Debug)]
pub(super) struct Outlet {
    pub(super) id: u64,
    tx: mpsc::Sender<Item>,
    shared: Arc<Shared>,
}

/// The subscriber's end of its queue.
#[derive(Debug)]
pub struct Inlet {
    rx: mpsc::Receiver<Item>,
    shared: Arc<Shared>,
}

/// A new queue of at most `records` records and `budget` bytes.
pub(super) fn queue(id: u64, records: usize, budget: usize) -> (Outlet, Inlet) {
    let (tx, rx) = mpsc::channel(records.max(1));
    let shared = Arc::new(Shared {
        dropped: AtomicU64::new(0),
        held: AtomicUsize::new(0),
        budget,
    });
    (
        Outlet {
            id,
            tx,
            shared: shared.clone(),
        },
        Inlet { rx, shared },
    )
}

fn cost(r: &Record) -> usize {
    r.data.len() + RECORD_OVERHEAD
}

impl Outlet {
    /// Queues `record` for this subscriber, or counts it lost when the queue is full.
    /// Called by one thread only (the map's consumer).
    pub(super) fn offer(&self, record: &Record) {
        let s = &self.shared;
        let cost = cost(record);
        // An empty queue always takes a record, however large: otherwise a record above
        // the budget would be lost with nobody ever told.
        let held = s.held.load(SeqCst);
        if held > 0 && held + cost > s.budget {
            s.dropped.fetch_add(1, SeqCst);
            return;
        }
        s.held.fetch_add(cost, SeqCst);
        let lost = s.dropped.swap(0, SeqCst);
        let item = Item {
            record: Some(record.clone()),
            lost,
        };
        if let Err(e) = self.tx.try_send(item) {
            s.held.fetch_sub(cost, SeqCst);
            if matches!(e, mpsc::error::TrySendError::Full(_)) {
                s.dropped.fetch_add(lost + 1, SeqCst);
            }
        }
    }

    /// Reports `count` records the kernel lost (all subscribers missed them).
    pub(super) fn lost(&self, count: u64) {
        let s = &self.shared;
        let lost = s.dropped.swap(0, SeqCst) + count;
        let item = Item { record: None, lost };
        if self.tx.try_send(item).is_err() {
            s.dropped.fetch_add(lost, SeqCst);
        }
    }
}

impl Inlet {
    /// The next item, waiting for one. Drops that happened while the queue was full are
    /// reported as soon as the queue is empty, in their place in the stream. None when the
    /// consumer is gone.
    pub async fn next(&mut self) -> Option<Item> {
        if let Some(item) = self.try_next() {
            return Some(item);
        }
        let item = self.rx.recv().await?;
        Some(self.took(item))
    }

    /// The next item if one is ready.
    pub fn try_next(&mut self) -> Option<Item> {
        if let Ok(item) = self.rx.try_recv() {
            return Some(self.took(item));
        }
        let lost = self.shared.dropped.swap(0, SeqCst);
        if lost == 0 {
            return None;
        }
        // A record queued before those drops may have landed after the first look: it
        // comes first, and the drops travel on (with the next record, or alone later).
        if let Ok(item) = self.rx.try_recv() {
            self.shared.dropped.fetch_add(lost, SeqCst);
            return Some(self.took(item));
        }
        Some(Item { record: None, lost })
    }

    fn took(&self, item: Item) -> Item {
        if let Some(r) = &item.record {
            self.shared.held.fetch_sub(cost(r), SeqCst);
        }
        item
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(n: u8, len: usize) -> Record {
        Record {
            data: Bytes::from(vec![n; len]),
            cpu: None,
            time_ns: 0,
        }
    }

    fn drain(inlet: &mut Inlet) -> (Vec<u8>, u64) {
        let (mut got, mut lost) = (Vec::new(), 0);
        while let Some(item) = inlet.try_next() {
            lost += item.lost;
            if let Some(r) = item.record {
                got.push(r.data[0]);
            }
        }
        (got, lost)
    }

    #[test]
    fn a_full_queue_counts_what_it_drops_and_reports_it_once() {
        let (out, mut inlet) = queue(1, 4, 1 << 20);
        for n in 0..10 {
            out.offer(&rec(n, 8));
        }
        let (got, lost) = drain(&mut inlet);
        assert_eq!(got, vec![0, 1, 2, 3]);
        assert_eq!(lost, 6);
        // The next record carries nothing more.
        out.offer(&rec(10, 8));
        assert_eq!(drain(&mut inlet), (vec![10], 0));
    }

    #[test]
    fn losses_ride_on_the_next_record_that_gets_in() {
        let (out, mut inlet) = queue(1, 2, 1 << 20);
        out.offer(&rec(0, 1));
        out.offer(&rec(1, 1));
        out.offer(&rec(2, 1)); // dropped
        let first = inlet
            .try_next()
            .map(|i| (i.record.map(|r| r.data[0]), i.lost));
        assert_eq!(first, Some((Some(0), 0)));
        out.offer(&rec(3, 1)); // gets in and carries the drop
        let rest: Vec<_> = std::iter::from_fn(|| inlet.try_next())
            .map(|i| (i.record.map(|r| r.data[0]), i.lost))
            .collect();
        assert_eq!(rest, vec![(Some(1), 0), (Some(3), 1)]);
    }

    #[test]
    fn the_byte_budget_bounds_the_queue_but_an_empty_queue_takes_anything() {
        let (out, mut inlet) = queue(1, 1000, 3 * (100 + RECORD_OVERHEAD));
        for n in 0..5 {
            out.offer(&rec(n, 100));
        }
        assert_eq!(drain(&mut inlet), (vec![0, 1, 2], 2));
        out.offer(&rec(9, 10_000));
        out.offer(&rec(10, 1));
        assert_eq!(drain(&mut inlet), (vec![9], 1));
    }

    #[test]
    fn kernel_losses_reach_the_subscriber_even_when_its_queue_is_full() {
        let (out, mut inlet) = queue(1, 1, 1 << 20);
        out.offer(&rec(0, 1));
        out.lost(5);
        assert_eq!(drain(&mut inlet), (vec![0], 5));
        out.lost(2);
        assert_eq!(drain(&mut inlet), (vec![], 2));
    }
}
