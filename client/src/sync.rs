//! [`Client::sync`]: make a map hold exactly the given entries (desired state).
//!
//! The map is dumped, compared with the desired entries key by key (values compared in the
//! kernel's packed layout, so per-CPU padding never counts as a difference), and only the
//! difference is written: missing keys are inserted, differing values updated, and with
//! [`SyncOptions::prune`] keys that are not desired are deleted (first, so that a full map
//! has room for the inserts). A second sync with the same entries changes nothing.
//!
//! ```no_run
//! # async fn f(client: bpfmap_client::Client) -> Result<(), bpfmap_client::Error> {
//! use bpfmap_client::{Entry, MapRef, SyncOptions};
//! let desired: Vec<Entry> = (0u32..100)
//!     .map(|i| Entry::new(i.to_ne_bytes(), u64::from(i).to_ne_bytes()))
//!     .collect();
//! let report = client
//!     .sync(MapRef::pin("allow_list"), &desired, SyncOptions { prune: true, dry_run: false })
//!     .await?;
//! println!("{report}"); // inserted 100, updated 0, deleted 3, unchanged 0
//! # Ok(()) }
//! ```

use std::collections::HashMap;

use futures::TryStreamExt;

use crate::client::Client;
use crate::data::{Entry, Flag};
use crate::dump::DumpOptions;
use crate::error::Error;
use crate::layout::Layout;
use crate::mapref::MapRef;

/// Keys per `BatchDelete` call while pruning.
const DELETE_CHUNK: usize = 4096;

/// How to sync.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncOptions {
    /// Also delete the keys that are not among the desired entries.
    pub prune: bool,
    /// Compute the report without changing the map.
    pub dry_run: bool,
}

/// What a sync changed (or, with [`SyncOptions::dry_run`], would change).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Keys that were missing and were written.
    pub inserted: u64,
    /// Keys whose value differed and was replaced.
    pub updated: u64,
    /// Keys that were not desired and were deleted (with `prune`).
    pub deleted: u64,
    /// Keys that already held the desired value.
    pub unchanged: u64,
    /// Keys that are not desired and were kept (without `prune`).
    pub extra: u64,
}

impl SyncReport {
    /// True when the sync wrote or deleted anything.
    pub fn changed(&self) -> bool {
        self.inserted + self.updated + self.deleted > 0
    }
}

impl std::fmt::Display for SyncReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "inserted {}, updated {}, deleted {}, unchanged {}",
            self.inserted, self.updated, self.deleted, self.unchanged
        )?;
        if self.extra > 0 {
            write!(f, ", {} not in the input kept (no --prune)", self.extra)?;
        }
        Ok(())
    }
}

impl Client {
    /// Makes the map hold `desired` (see the [module docs](crate::sync)); returns what
    /// changed. A key given twice takes its last value.
    ///
    /// Fails with `INVALID_ARGUMENT` for maps without keys (queues, stacks, bloom filters)
    /// and for entries whose sizes do not fit the map, before anything is written.
    pub async fn sync(
        &self,
        map: impl Into<MapRef>,
        desired: &[Entry],
        opts: SyncOptions,
    ) -> Result<SyncReport, Error> {
        let info = self.get_map(map).await?;
        let layout = Layout::of(&info)?;
        if layout.key_size == 0 {
            return Err(Error::InvalidInput(format!(
                "map {} has no keys: sync needs a map with keys (hash, array, lru, lpm_trie, ...)",
                info.id
            )));
        }
        let mut want: HashMap<&[u8], Vec<u8>> = HashMap::with_capacity(desired.len());
        for e in desired {
            if e.key.len() != layout.key_size as usize {
                return Err(Error::InvalidInput(format!(
                    "key is {} bytes, the map's key size is {}",
                    e.key.len(),
                    layout.key_size
                )));
            }
            let mut packed = Vec::with_capacity(layout.value_stride());
            layout.pack_value(&e.value, &mut packed)?;
            want.insert(&e.key, packed);
        }

        let mut report = SyncReport::default();
        let mut writes: Vec<Entry> = Vec::new();
        let mut deletes: Vec<Vec<u8>> = Vec::new();
        let mut batches = self
            .dump_batches(MapRef::Id(info.id), DumpOptions::default())
            .await?;
        let mut canon = Vec::with_capacity(layout.value_stride());
        while let Some(batch) = batches.try_next().await? {
            for i in 0..batch.len() {
                let Some((key, value)) = batch.get(i) else {
                    break;
                };
                match want.remove(key) {
                    Some(w) => {
                        canon.clear();
                        layout.pack_value(&layout.unpack_value(value), &mut canon)?;
                        if canon == w {
                            report.unchanged += 1;
                        } else {
                            report.updated += 1;
                            writes.push(Entry {
                                key: key.to_vec(),
                                value: layout.unpack_value(&w),
                            });
                        }
                    }
                    None if opts.prune => deletes.push(key.to_vec()),
                    None => report.extra += 1,
                }
            }
        }
        report.inserted = want.len() as u64;
        if opts.dry_run {
            report.deleted = deletes.len() as u64;
            return Ok(report);
        }
        for chunk in deletes.chunks(DELETE_CHUNK) {
            let done = self
                .batch_delete(MapRef::Id(info.id), chunk.iter().map(Vec::as_slice))
                .await?;
            report.deleted += done.deleted;
        }
        writes.extend(want.into_iter().map(|(k, v)| Entry {
            key: k.to_vec(),
            value: layout.unpack_value(&v),
        }));
        if !writes.is_empty() {
            self.batch_update(MapRef::Id(info.id), writes, Flag::Any)
                .await?;
        }
        Ok(report)
    }
}
