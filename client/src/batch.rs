//! Batch writes of [`Client`]: [`batch_update`](Client::batch_update) in packed chunks over
//! the client-streaming RPC, and [`batch_delete`](Client::batch_delete).

use futures::{Stream, StreamExt};

use crate::client::Client;
use crate::data::{Data, Entry, Flag};
use crate::error::Error;
use crate::layout::Layout;
use crate::mapref::MapRef;
use crate::proto;

/// Counts returned by [`Client::batch_delete`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchDeleted {
    /// Keys deleted.
    pub deleted: u64,
    /// Keys that were not in the map.
    pub missing: u64,
}

/// Target bytes per `BatchUpdate` message.
const CHUNK_BYTES: usize = 1 << 20;
/// Most entries per `BatchUpdate` message.
const CHUNK_ENTRIES: usize = 8192;

impl Client {
    /// Writes many entries in packed chunks over the client-streaming `BatchUpdate`;
    /// returns how many the daemon updated. Takes any iterator of [`Entry`]; see
    /// [`batch_update_stream`](Client::batch_update_stream) for streams.
    ///
    /// Entries are checked against the map's sizes as they are packed: a bad one cancels
    /// the call with `INVALID_ARGUMENT`, but chunks already sent may have been applied.
    ///
    /// ```no_run
    /// # async fn f(client: bpfmap_client::Client) -> Result<(), bpfmap_client::Error> {
    /// use bpfmap_client::{Entry, Flag, MapRef};
    /// let entries = (0u32..1000).map(|i| Entry::new(i.to_ne_bytes(), u64::from(i).to_ne_bytes()));
    /// let n = client.batch_update(MapRef::name("counters"), entries, Flag::Any).await?;
    /// assert_eq!(n, 1000);
    /// # Ok(()) }
    /// ```
    pub async fn batch_update<I>(
        &self,
        map: impl Into<MapRef>,
        entries: I,
        flag: Flag,
    ) -> Result<u64, Error>
    where
        I: IntoIterator<Item = Entry>,
    {
        self.batch_update_stream(map, futures::stream::iter(entries), flag)
            .await
    }

    /// [`batch_update`](Client::batch_update) from a [`Stream`] of entries.
    pub async fn batch_update_stream<S>(
        &self,
        map: impl Into<MapRef>,
        entries: S,
        flag: Flag,
    ) -> Result<u64, Error>
    where
        S: Stream<Item = Entry>,
    {
        self.batch_update_try_stream(map, entries.map(Ok), flag)
            .await
    }

    /// [`batch_update`](Client::batch_update) from a stream of `Result`s, e.g. records
    /// read from a file: the first `Err` cancels the call and is returned (chunks already
    /// sent may have been applied).
    pub async fn batch_update_try_stream<S>(
        &self,
        map: impl Into<MapRef>,
        entries: S,
        flag: Flag,
    ) -> Result<u64, Error>
    where
        S: Stream<Item = Result<Entry, Error>>,
    {
        let info = self.get_map(map).await?;
        let layout = Layout::of(&info)?;
        let per_entry = layout.key_size as usize + layout.value_stride();
        let chunk = (CHUNK_BYTES / per_entry.max(1)).clamp(1, CHUNK_ENTRIES);
        let flag = proto::UpdateFlag::from(flag) as i32;
        let map_ref = MapRef::Id(info.id).to_proto();

        let (tx, rx) = tokio::sync::mpsc::channel::<proto::BatchUpdateRequest>(2);
        let rpc = {
            let mut inner = self.inner.clone();
            async move {
                inner
                    .batch_update(tokio_stream::wrappers::ReceiverStream::new(rx))
                    .await
            }
        };
        // The producer borrows `tx`: on a local error the call is dropped (cancelled)
        // before `tx`, so the daemon never sees a clean end of a partial stream.
        let producer = async {
            let mut entries = std::pin::pin!(entries);
            let mut first = true;
            loop {
                let mut keys = Vec::with_capacity(chunk * layout.key_size as usize);
                let mut values = Vec::with_capacity(chunk * layout.value_stride());
                let mut count = 0usize;
                while count < chunk {
                    let Some(e) = entries.next().await else { break };
                    let e = e.map_err(Some)?;
                    if e.key.len() != layout.key_size as usize {
                        return Err(Some(Error::InvalidInput(format!(
                            "key is {} bytes, the map's key size is {}",
                            e.key.len(),
                            layout.key_size
                        ))));
                    }
                    keys.extend_from_slice(&e.key);
                    layout.pack_value(&e.value, &mut values).map_err(Some)?;
                    count += 1;
                }
                if count == 0 && !first {
                    return Ok(());
                }
                let msg = proto::BatchUpdateRequest {
                    map: Some(map_ref.clone()),
                    entries: Vec::new(),
                    packed: Some(proto::PackedEntries {
                        count: count as u32,
                        keys: keys.into(),
                        values: values.into(),
                    }),
                    flag,
                };
                first = false;
                // A closed channel means the call ended: its result tells why.
                tx.send(msg).await.map_err(|_| None)?;
                if count < chunk {
                    return Ok(());
                }
            }
        };
        let mut rpc = std::pin::pin!(rpc);
        let produced = {
            let mut producer = std::pin::pin!(producer);
            tokio::select! {
                res = &mut rpc => Err(res),
                done = &mut producer => Ok(done),
            }
        };
        let result = match produced {
            Err(res) => res,
            // Returning drops `rpc` (declared after `tx`) first: the call is cancelled.
            Ok(Err(Some(local))) => return Err(local),
            Ok(Ok(()) | Err(None)) => {
                drop(tx);
                rpc.await
            }
        };
        Ok(result?.into_inner().updated)
    }

    /// Deletes many keys (`BatchDelete`).
    pub async fn batch_delete<K: Into<Data>>(
        &self,
        map: impl Into<MapRef>,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<BatchDeleted, Error> {
        let req = proto::BatchDeleteRequest {
            map: Some(map.into().to_proto()),
            keys: keys.into_iter().map(|k| k.into().to_proto()).collect(),
        };
        let resp = self.inner.clone().batch_delete(req).await?.into_inner();
        Ok(BatchDeleted {
            deleted: resp.deleted,
            missing: resp.missing,
        })
    }
}
