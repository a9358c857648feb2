//! Watch: a watcher of a map ([`crate::watch`]) turned into a stream of `WatchResponse`
//! messages: the snapshot first (`initial`), then batches of changes, each split into
//! messages of at most [`MESSAGE_BYTES`].
//!
//! The stream owns the watcher: when the client goes away, tonic drops the stream and the
//! watcher leaves its poller (the last one stops it).

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;

use bpfmap_proto::v1 as pb;
use bytes::Bytes;
use futures::Stream;
use prost::Message;
use tokio::sync::watch;
use tonic::Status;

use super::codec::{check_format, encode, value_out, Side, Types};
use crate::btf::{BtfCache, MapTypes};
use crate::error::{Error, Result};
use crate::kernel::{types::num, Map};
use crate::limits::StreamSlot;
use crate::registry::desc;
use crate::watch::{Change, Kind, Update, Watcher};

/// Largest message built (under the 4 MiB default decode limit of grpcurl and tonic).
const MESSAGE_BYTES: usize = 1 << 20;

/// The response stream of Watch.
pub type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::WatchResponse, Status>> + Send>>;

/// How entries are sent: a format, and the map's BTF types for FORMAT_JSON.
#[derive(Debug, Clone)]
pub struct EntryFormat {
    format: pb::Format,
    types: Option<Arc<MapTypes>>,
}

/// Checks that `map` can be watched in `format`.
pub fn plan(map: &Map, req: &pb::WatchRequest, btf: &BtfCache) -> Result<EntryFormat> {
    let watchable = matches!(
        map.kind.0,
        num::HASH
            | num::ARRAY
            | num::PERCPU_HASH
            | num::PERCPU_ARRAY
            | num::LRU_HASH
            | num::LRU_PERCPU_HASH
            | num::LPM_TRIE
            | num::ARRAY_OF_MAPS
            | num::HASH_OF_MAPS
    );
    if !watchable {
        let hint = if matches!(map.kind.0, num::RINGBUF | num::PERF_EVENT_ARRAY) {
            ": use ReadEvents for its records"
        } else {
            ""
        };
        return Err(Error::InvalidArgument(format!(
            "Watch reads hash, array, LRU, LPM trie, per-CPU and map-in-map maps; {} is not one{hint}",
            desc(map)
        )));
    }
    let format = super::format_of(req.format)?;
    let lazy = Types::lazy(map, btf);
    check_format(map, format, &lazy)?;
    let types = if format == pb::Format::Json {
        lazy.get()?.cloned()
    } else {
        None
    };
    Ok(EntryFormat { format, types })
}

/// The stream of `watcher`'s updates, until the client leaves, the daemon stops or a read
/// of the map fails.
pub fn stream(
    watcher: Watcher,
    format: EntryFormat,
    slot: StreamSlot,
    shutdown: watch::Receiver<bool>,
) -> WatchStream {
    struct State {
        watcher: Watcher,
        format: EntryFormat,
        _slot: StreamSlot,
        shutdown: watch::Receiver<bool>,
        queued: VecDeque<pb::WatchResponse>,
        done: bool,
    }
    let state = State {
        watcher,
        format,
        _slot: slot,
        shutdown,
        queued: VecDeque::new(),
        done: false,
    };
    Box::pin(futures::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(msg) = st.queued.pop_front() {
                return Some((Ok(msg), st));
            }
            if st.done {
                return None;
            }
            let next = tokio::select! {
                biased;
                () = super::stopping(&mut st.shutdown) => return None,
                next = st.watcher.next() => next,
            };
            match next.and_then(|u| messages(st.watcher.map(), u, &st.format)) {
                Ok(msgs) => st.queued = msgs,
                Err(e) => {
                    st.done = true;
                    return Some((Err(Status::from(e)), st));
                }
            }
        }
    }))
}

/// An update as one or more messages, each under [`MESSAGE_BYTES`].
fn messages(
    map: &Map,
    update: Update,
    format: &EntryFormat,
) -> Result<VecDeque<pb::WatchResponse>> {
    let types = Types::fixed(map, format.types.clone());
    let (initial, changes, count, time_ns) = match update {
        Update::Snapshot { entries, time_ns } => {
            let count = entries.len() as u64;
            let changes = entries
                .into_iter()
                .map(|(key, value)| Change {
                    key,
                    kind: Kind::Added,
                    value: Some(value),
                })
                .collect::<Vec<_>>();
            (true, changes, count, time_ns)
        }
        Update::Changes {
            changes,
            count,
            time_ns,
        } => (false, changes, count, time_ns),
    };
    let new = |changes| pb::WatchResponse {
        initial,
        changes,
        more: true,
        time_ns,
        count,
    };
    let mut out = VecDeque::new();
    let (mut batch, mut bytes) = (Vec::new(), 0usize);
    for c in changes {
        let c = change(map, c, format.format, &types)?;
        let len = c.encoded_len() + 4;
        if !batch.is_empty() && bytes + len > MESSAGE_BYTES {
            out.push_back(new(std::mem::take(&mut batch)));
            bytes = 0;
        }
        bytes += len;
        batch.push(c);
    }
    out.push_back(new(batch));
    if let Some(last) = out.back_mut() {
        last.more = false;
    }
    Ok(out)
}

fn change(map: &Map, c: Change, format: pb::Format, types: &Types<'_>) -> Result<pb::Change> {
    let kind = match c.kind {
        Kind::Added => pb::change::Kind::Added,
        Kind::Changed => pb::change::Kind::Changed,
        Kind::Removed => pb::change::Kind::Removed,
    };
    let (value, per_cpu_values) = match c.value {
        Some(v) => value_out(map, v, format, types)?,
        None => (None, Vec::new()),
    };
    Ok(pb::Change {
        kind: kind as i32,
        key: Some(encode(
            Bytes::clone(&c.key),
            format,
            "key",
            types,
            Side::Key,
        )?),
        value,
        per_cpu_values,
    })
}
