//! [`Client::dump`]: every entry of a map, streamed over the packed fast path.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures::{Stream, StreamExt};

use crate::client::Client;
use crate::data::{raw_of, Entry, Value};
use crate::error::Error;
use crate::layout::Layout;
use crate::mapref::MapRef;
use crate::proto::{self, Format, MapInfo};

/// Options of a dump.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DumpOptions {
    /// Entries per message (0: the daemon's default).
    pub batch_size: u32,
    /// Drain the map: every entry streamed is deleted.
    pub delete: bool,
}

/// One message of a dump: `len()` entries in the kernel's batch layout.
#[derive(Debug, Clone)]
pub struct Batch {
    layout: Layout,
    count: usize,
    keys: bytes::Bytes,
    values: bytes::Bytes,
}

impl Batch {
    fn from_packed(layout: Layout, p: proto::PackedEntries) -> Result<Self, Error> {
        let count = p.count as usize;
        let (ks, vs) = (layout.key_size as usize, layout.value_stride());
        if p.keys.len() != count * ks || p.values.len() != count * vs {
            return Err(Error::Protocol(format!(
                "packed batch of {count} entries has {} key bytes and {} value bytes; \
                 expected {} and {} (key size {ks}, value stride {vs})",
                p.keys.len(),
                p.values.len(),
                count * ks,
                count * vs
            )));
        }
        Ok(Batch {
            layout,
            count,
            keys: p.keys,
            values: p.values,
        })
    }

    fn from_entries(layout: Layout, entries: Vec<proto::Entry>) -> Result<Self, Error> {
        let mut keys = Vec::with_capacity(entries.len() * layout.key_size as usize);
        let mut values = Vec::with_capacity(entries.len() * layout.value_stride());
        let count = entries.len();
        for e in entries {
            let key = raw_of(e.key, "key")?;
            if key.len() != layout.key_size as usize {
                return Err(Error::Protocol(format!(
                    "dumped key has {} bytes, the map's key size is {}",
                    key.len(),
                    layout.key_size
                )));
            }
            keys.extend_from_slice(&key);
            let value = Value::from_parts(e.value, e.per_cpu_values)?;
            layout
                .pack_value(&value, &mut values)
                .map_err(|e| Error::Protocol(e.to_string()))?;
        }
        Ok(Batch {
            layout,
            count,
            keys: keys.into(),
            values: values.into(),
        })
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when the batch holds no entry.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The layout of the map the batch came from.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// All keys back to back, `key_size` bytes each.
    pub fn keys(&self) -> &[u8] {
        &self.keys
    }

    /// All values back to back, [`Layout::value_stride`] bytes each.
    pub fn values(&self) -> &[u8] {
        &self.values
    }

    /// The `i`-th key and packed value (per-CPU: all CPUs, padded to 8 bytes each).
    pub fn get(&self, i: usize) -> Option<(&[u8], &[u8])> {
        if i >= self.count {
            return None;
        }
        let (ks, vs) = (self.layout.key_size as usize, self.layout.value_stride());
        Some((
            &self.keys[i * ks..(i + 1) * ks],
            &self.values[i * vs..(i + 1) * vs],
        ))
    }

    /// The `i`-th entry, values split per CPU.
    pub fn entry(&self, i: usize) -> Option<Entry> {
        self.get(i).map(|(k, v)| Entry {
            key: k.to_vec(),
            value: self.layout.unpack_value(v),
        })
    }
}

type BatchStream = Pin<Box<dyn Stream<Item = Result<Batch, Error>> + Send>>;

/// The batches of a dump, as the daemon sends them (see [`Client::dump_batches`]).
pub struct DumpBatches {
    info: MapInfo,
    inner: BatchStream,
}

impl std::fmt::Debug for DumpBatches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DumpBatches")
            .field("map", &self.info.id)
            .finish()
    }
}

impl DumpBatches {
    /// The dumped map, as described before the dump started.
    pub fn info(&self) -> &MapInfo {
        &self.info
    }
}

impl Stream for DumpBatches {
    type Item = Result<Batch, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

/// The entries of a dump, one by one (see [`Client::dump`]).
#[derive(Debug)]
pub struct Dump {
    batches: DumpBatches,
    current: Option<Batch>,
    next: usize,
}

impl Dump {
    /// The dumped map, as described before the dump started.
    pub fn info(&self) -> &MapInfo {
        self.batches.info()
    }
}

impl Stream for Dump {
    type Item = Result<Entry, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            let this = &mut *self;
            if let Some(batch) = &this.current {
                if let Some(e) = batch.entry(this.next) {
                    this.next += 1;
                    return Poll::Ready(Some(Ok(e)));
                }
                this.current = None;
            }
            match this.batches.poll_next_unpin(cx) {
                Poll::Ready(Some(Ok(b))) => {
                    this.current = Some(b);
                    this.next = 0;
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl Client {
    /// Streams every entry of a map, using the packed fast path (`packed = true`).
    ///
    /// ```no_run
    /// # async fn f(client: bpfmap_client::Client) -> Result<(), bpfmap_client::Error> {
    /// use futures::TryStreamExt;
    /// let mut dump = client.dump(bpfmap_client::MapRef::name("stats_map")).await?;
    /// while let Some(entry) = dump.try_next().await? {
    ///     println!("{:?} => {:?}", entry.key, entry.value);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn dump(&self, map: impl Into<MapRef>) -> Result<Dump, Error> {
        self.dump_with(map, DumpOptions::default()).await
    }

    /// [`dump`](Client::dump) with a batch size, or draining the map.
    pub async fn dump_with(
        &self,
        map: impl Into<MapRef>,
        opts: DumpOptions,
    ) -> Result<Dump, Error> {
        Ok(Dump {
            batches: self.dump_batches(map, opts).await?,
            current: None,
            next: 0,
        })
    }

    /// The dump as the daemon's packed batches: the fastest way to copy a map.
    pub async fn dump_batches(
        &self,
        map: impl Into<MapRef>,
        opts: DumpOptions,
    ) -> Result<DumpBatches, Error> {
        let map = map.into();
        let info = self.get_map(&map).await?;
        let layout = Layout::of(&info)?;
        // Dump by id so that the dump reads the map just described.
        let req = proto::DumpRequest {
            map: Some(MapRef::Id(info.id).to_proto()),
            format: Format::Raw as i32,
            batch_size: opts.batch_size,
            packed: true,
            delete: opts.delete,
        };
        let stream = self.inner.clone().dump(req).await?.into_inner();
        let inner = stream.filter_map(move |msg| {
            let out = match msg {
                Err(status) => Some(Err(Error::from(status))),
                Ok(resp) => {
                    let batch = match resp.packed {
                        Some(p) if p.count > 0 || resp.entries.is_empty() => {
                            Batch::from_packed(layout, p)
                        }
                        _ => Batch::from_entries(layout, resp.entries),
                    };
                    match batch {
                        Ok(b) if b.is_empty() => None,
                        other => Some(other),
                    }
                }
            };
            futures::future::ready(out)
        });
        Ok(DumpBatches {
            info,
            inner: Box::pin(inner),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(cpus: Option<u32>) -> Layout {
        Layout {
            key_size: 2,
            value_size: 3,
            cpus,
        }
    }

    #[test]
    fn splits_packed_batches() {
        let p = proto::PackedEntries {
            count: 2,
            keys: vec![1, 2, 3, 4].into(),
            values: vec![10, 11, 12, 13, 14, 15].into(),
        };
        let b = Batch::from_packed(layout(None), p).ok();
        let b = b.as_ref();
        assert_eq!(b.map(Batch::len), Some(2));
        assert_eq!(
            b.and_then(|b| b.entry(1)),
            Some(Entry::new(vec![3, 4], vec![13, 14, 15]))
        );
        assert_eq!(b.and_then(|b| b.entry(2)), None);
    }

    #[test]
    fn splits_per_cpu_values_by_stride() {
        let mut values = vec![1, 2, 3, 0, 0, 0, 0, 0];
        values.extend([4, 5, 6, 0, 0, 0, 0, 0]);
        let p = proto::PackedEntries {
            count: 1,
            keys: vec![9, 9].into(),
            values: values.into(),
        };
        let b = Batch::from_packed(layout(Some(2)), p).ok();
        assert_eq!(
            b.and_then(|b| b.entry(0)),
            Some(Entry::per_cpu(
                vec![9, 9],
                vec![vec![1, 2, 3], vec![4, 5, 6]]
            ))
        );
    }

    #[test]
    fn refuses_inconsistent_batches() {
        let p = proto::PackedEntries {
            count: 2,
            keys: vec![1, 2, 3].into(),
            values: vec![0; 6].into(),
        };
        assert!(Batch::from_packed(layout(None), p).is_err());
    }

    #[test]
    fn accepts_unpacked_entries() {
        use proto::data::Form;
        let raw = |b: &[u8]| {
            Some(proto::Data {
                form: Some(Form::Raw(b.to_vec().into())),
            })
        };
        let e = proto::Entry {
            key: raw(&[1, 2]),
            value: raw(&[3, 4, 5]),
            per_cpu_values: vec![],
        };
        let b = Batch::from_entries(layout(None), vec![e]).ok();
        assert_eq!(
            b.and_then(|b| b.entry(0)),
            Some(Entry::new(vec![1, 2], vec![3, 4, 5]))
        );
    }
}
