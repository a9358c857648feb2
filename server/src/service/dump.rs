//! Dump: stream every entry of a map.
//!
//! A producer on a blocking thread walks the map with the kernel's batch lookup (until
//! ENOENT, growing the batch on ENOSPC, never stopping on a short batch) or, for types
//! without batch support, with get-next-key + lookup; it hands each message to a channel of
//! two slots. A slow client fills the channel and the producer waits: memory stays flat and
//! the kernel reads follow the client's pace.

use std::sync::Arc;
use std::time::Instant;

use bpfmap_proto::v1 as pb;
use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc;
use tonic::Status;

use super::codec::{check_format, encode, value_out, Side, Types};
use crate::btf::{BtfCache, MapTypes};
use crate::error::{Error, KernelCtx, Result};
use crate::kernel::{BatchCursor, KernelError, Map, Op, ENOTSUPP};
use crate::limits::StreamSlot;
use crate::registry::{desc, Resolved};
use prometheus_client::metrics::counter::Counter;

/// Messages in flight between the kernel reader and the encoder.
const CHANNEL_SLOTS: usize = 2;
/// Default bytes of entries per message.
const DEFAULT_MESSAGE_BYTES: usize = 512 << 10;
/// Largest message we build: under grpcurl's and tonic's default 4 MiB decode limit.
const MAX_MESSAGE_BYTES: usize = 2 << 20;
/// Largest batch the kernel is asked for when a bucket does not fit (ENOSPC).
const MAX_BATCH: usize = 1 << 20;

/// A validated dump request.
#[derive(Debug, Clone)]
pub struct DumpPlan {
    format: pb::Format,
    /// The map's BTF types, looked up for FORMAT_JSON only.
    types: Option<Arc<MapTypes>>,
    packed: bool,
    delete: bool,
    batch: usize,
}

/// Checks a dump request against the map and picks the batch size.
pub fn plan(
    map: &Map,
    req: &pb::DumpRequest,
    max_batch_entries: usize,
    btf: &BtfCache,
) -> Result<DumpPlan> {
    let format = super::format_of(req.format)?;
    if req.packed && format != pb::Format::Raw {
        return Err(Error::InvalidArgument(
            "packed dumps carry raw bytes: use FORMAT_RAW with packed=true".into(),
        ));
    }
    let lazy = Types::lazy(map, btf);
    check_format(map, format, &lazy)?;
    let types = if format == pb::Format::Json {
        lazy.get()?.cloned()
    } else {
        None
    };
    let op = if req.delete {
        if map.kind.is_keyless() {
            Op::Pop
        } else {
            Op::Delete
        }
    } else {
        Op::Dump
    };
    if !map.kind.supports(op) || (!req.delete && map.kind.is_keyless()) {
        return Err(Error::unsupported(
            map.kind,
            if req.delete { op } else { Op::Dump },
        ));
    }
    let entry = (map.key_size as usize + map.value_stride()).max(1);
    let max = (MAX_MESSAGE_BYTES / entry).max(1);
    let batch = match req.batch_size {
        0 => (DEFAULT_MESSAGE_BYTES / entry).clamp(64, 16384).min(max),
        n => (n as usize).min(max),
    };
    // The configured cap on entries per message applies to what the daemon sends too.
    let batch = if max_batch_entries > 0 {
        batch.min(max_batch_entries)
    } else {
        batch
    };
    Ok(DumpPlan {
        format,
        types,
        packed: req.packed,
        delete: req.delete,
        batch,
    })
}

/// Starts the producer and returns the receiving end of the stream.
pub fn start(
    r: Resolved,
    plan: DumpPlan,
    slot: StreamSlot,
    streamed: Counter,
) -> mpsc::Receiver<Result<pb::DumpResponse, Status>> {
    let (tx, rx) = mpsc::channel(CHANNEL_SLOTS);
    tokio::task::spawn_blocking(move || {
        // The identity's stream slot is held until the producer ends.
        let _slot = slot;
        let started = Instant::now();
        let map = r.map;
        let delete = plan.delete;
        let mut out = Sink {
            tx,
            map: map.clone(),
            plan,
            sent: 0,
            streamed,
        };
        let result = if map.kind.is_keyless() {
            pop_all(&map, &mut out)
        } else {
            walk_batched(&map, &mut out)
        };
        let entries = out.sent;
        match result {
            Ok(()) | Err(Stop::ClientGone) => {
                tracing::debug!(
                    map = map.id,
                    entries,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    delete,
                    "dump finished"
                );
                if delete {
                    tracing::info!(map = map.id, entries, "drained by dump with delete");
                }
            }
            Err(Stop::Failed(e)) => {
                tracing::warn!(map = map.id, entries, error = %e, "dump failed");
                let _ = out.tx.blocking_send(Err(Status::from(
                    e.prefixed(&format!("dump stopped after {entries} entries: ")),
                )));
            }
        }
    });
    rx
}

enum Stop {
    ClientGone,
    Failed(Error),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Stop {
        Stop::Failed(e)
    }
}

struct Sink {
    tx: mpsc::Sender<Result<pb::DumpResponse, Status>>,
    map: Arc<Map>,
    plan: DumpPlan,
    sent: u64,
    /// `bpfmapd_entries_streamed_total`.
    streamed: Counter,
}

impl Sink {
    /// Sends `count` entries laid out back to back in `keys` / `values`.
    fn send(&mut self, keys: Bytes, values: Bytes, count: usize) -> Result<(), Stop> {
        if count == 0 {
            return Ok(());
        }
        let ks = self.map.key_size as usize;
        let vs = self.map.value_stride();
        let types = Types::fixed(&self.map, self.plan.types.clone());
        let msg = if self.plan.packed {
            pb::DumpResponse {
                entries: Vec::new(),
                packed: Some(pb::PackedEntries {
                    count: count as u32,
                    keys: keys.slice(..count * ks),
                    values: values.slice(..count * vs),
                }),
            }
        } else {
            let mut entries = Vec::with_capacity(count);
            for i in 0..count {
                // Queue and stack entries have no key.
                let key = if ks == 0 {
                    None
                } else {
                    Some(encode(
                        keys.slice(i * ks..(i + 1) * ks),
                        self.plan.format,
                        "key",
                        &types,
                        Side::Key,
                    )?)
                };
                let (value, per_cpu_values) = value_out(
                    &self.map,
                    values.slice(i * vs..(i + 1) * vs),
                    self.plan.format,
                    &types,
                )?;
                entries.push(pb::Entry {
                    key,
                    value,
                    per_cpu_values,
                });
            }
            pb::DumpResponse {
                entries,
                packed: None,
            }
        };
        self.tx
            .blocking_send(Ok(msg))
            .map_err(|_| Stop::ClientGone)?;
        self.sent += count as u64;
        self.streamed.inc_by(count as u64);
        Ok(())
    }
}

fn fail(map: &Map, op: Op, e: KernelError) -> Stop {
    Stop::Failed(Error::kernel(&desc(map), op, KernelCtx::default(), e))
}

/// The batch walk, falling back to get-next-key where the type has no batch lookup.
fn walk_batched(map: &Map, out: &mut Sink) -> Result<(), Stop> {
    let ks = map.key_size as usize;
    let vs = map.value_stride();
    let mut cursor = BatchCursor::new(map);
    let mut batch = out.plan.batch;
    let mut first = true;
    let mut empty_steps = 0;
    loop {
        let mut keys = BytesMut::zeroed(batch * ks);
        let mut values = BytesMut::zeroed(batch * vs);
        match cursor.step(map, &mut keys, &mut values, batch, out.plan.delete) {
            Ok(step) => {
                first = false;
                out.send(keys.freeze(), values.freeze(), step.count)?;
                if step.end {
                    return Ok(());
                }
                // A short or even empty batch is not the end; only ENOENT is. Guard against a
                // kernel that keeps answering zero without ENOENT.
                empty_steps = if step.count == 0 { empty_steps + 1 } else { 0 };
                if empty_steps > 1000 {
                    return Err(Stop::Failed(Error::Internal(
                        "the kernel's batch walk made no progress".into(),
                    )));
                }
            }
            Err(e) if e.errno == libc::ENOSPC && batch < MAX_BATCH => batch *= 2,
            Err(e) if first && matches!(e.errno, ENOTSUPP | libc::EOPNOTSUPP | libc::EINVAL) => {
                return if out.plan.delete {
                    drain_by_key(map, out)
                } else {
                    walk_by_key(map, out)
                };
            }
            Err(e) => {
                return Err(fail(
                    map,
                    if out.plan.delete {
                        Op::LookupAndDelete
                    } else {
                        Op::Dump
                    },
                    e,
                ))
            }
        }
    }
}

/// get-next-key + lookup. Restarts (a deleted cursor key sends the kernel back to the first
/// key) could repeat keys forever: the walk is bounded by the map's capacity.
fn walk_by_key(map: &Map, out: &mut Sink) -> Result<(), Stop> {
    let ks = map.key_size as usize;
    let vs = map.value_stride();
    let batch = out.plan.batch;
    let bound = u64::from(map.max_entries) + 1;
    let mut prev: Option<Vec<u8>> = None;
    let mut visited = 0u64;
    let (mut keys, mut values, mut n) = (
        BytesMut::zeroed(batch * ks),
        BytesMut::zeroed(batch * vs),
        0usize,
    );
    let mut next = vec![0u8; ks];
    loop {
        match map.next_key(prev.as_deref(), &mut next) {
            Ok(()) => {}
            Err(e) if e.errno == libc::ENOENT => break,
            Err(e) => return Err(fail(map, Op::GetNextKey, e)),
        }
        visited += 1;
        if visited > bound {
            return Err(Stop::Failed(Error::Aborted(format!(
                "{} changed while it was walked key by key (the walk restarted); dump again",
                desc(map)
            ))));
        }
        match map.lookup(Some(&next), &mut values[n * vs..(n + 1) * vs], 0) {
            Ok(()) => {
                keys[n * ks..(n + 1) * ks].copy_from_slice(&next);
                n += 1;
            }
            // Deleted between the two calls, or an empty slot of a prog/fd array.
            Err(e) if e.errno == libc::ENOENT => {}
            Err(e) => return Err(fail(map, Op::Lookup, e)),
        }
        prev = Some(next.clone());
        if n == batch {
            out.send(keys.freeze(), values.freeze(), n)?;
            (keys, values, n) = (
                BytesMut::zeroed(batch * ks),
                BytesMut::zeroed(batch * vs),
                0,
            );
        }
    }
    out.send(keys.freeze(), values.freeze(), n)
}

/// Drain without a lookup-and-delete batch: read a key, delete it, go on. Hash-like maps
/// restart from the first key (the deleted cursor is gone); arrays walk their indexes forward.
fn drain_by_key(map: &Map, out: &mut Sink) -> Result<(), Stop> {
    let ks = map.key_size as usize;
    let vs = map.value_stride();
    let batch = out.plan.batch;
    let (mut keys, mut values, mut n) = (
        BytesMut::zeroed(batch * ks),
        BytesMut::zeroed(batch * vs),
        0usize,
    );
    let mut key = vec![0u8; ks];
    let mut prev: Option<Vec<u8>> = None;
    for _ in 0..=u64::from(map.max_entries) * 2 {
        match map.next_key(prev.as_deref(), &mut key) {
            Ok(()) => {}
            Err(e) if e.errno == libc::ENOENT => {
                return out.send(keys.freeze(), values.freeze(), n)
            }
            Err(e) => return Err(fail(map, Op::GetNextKey, e)),
        }
        let slot = &mut values[n * vs..(n + 1) * vs];
        let read = if map.kind.supports(Op::LookupAndDelete) {
            map.lookup_and_delete(Some(&key), slot)
        } else {
            map.lookup(Some(&key), slot, 0)
                .and_then(|()| map.delete(&key))
        };
        if map.kind.is_array() {
            prev = Some(key.clone());
        }
        match read {
            Ok(()) => {
                keys[n * ks..(n + 1) * ks].copy_from_slice(&key);
                n += 1;
            }
            Err(e) if e.errno == libc::ENOENT => continue,
            Err(e) => return Err(fail(map, Op::Delete, e)),
        }
        if n == batch {
            out.send(keys.freeze(), values.freeze(), n)?;
            (keys, values, n) = (
                BytesMut::zeroed(batch * ks),
                BytesMut::zeroed(batch * vs),
                0,
            );
        }
    }
    out.send(keys.freeze(), values.freeze(), n)?;
    Err(Stop::Failed(Error::Aborted(format!(
        "{} kept refilling while it was drained; stopped",
        desc(map)
    ))))
}

/// Queue / stack with delete: pop until empty.
fn pop_all(map: &Map, out: &mut Sink) -> Result<(), Stop> {
    let vs = map.value_stride();
    let batch = out.plan.batch;
    let (mut values, mut n) = (BytesMut::zeroed(batch * vs), 0usize);
    loop {
        match map.lookup_and_delete(None, &mut values[n * vs..(n + 1) * vs]) {
            Ok(()) => n += 1,
            Err(e) if e.errno == libc::ENOENT => return out.send(Bytes::new(), values.freeze(), n),
            Err(e) => return Err(fail(map, Op::Pop, e)),
        }
        if n == batch {
            out.send(Bytes::new(), values.freeze(), n)?;
            (values, n) = (BytesMut::zeroed(batch * vs), 0);
        }
    }
}
