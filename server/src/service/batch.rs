//! BatchUpdate and BatchDelete, on the kernel's batch syscalls.
//!
//! Large batches run on a blocking thread; small ones inline (the hop costs more than a few
//! hundred syscalls). Types without batch support fall back to one syscall per entry. A
//! failure reports how many entries were written before it, so nothing is silently lost.

use std::sync::Arc;

use bpfmap_proto::v1 as pb;
use bytes::Bytes;

use super::codec::{decode, value_in, Side, Types};
use crate::btf::BtfCache;
use crate::error::{Error, KernelCtx, Result};
use crate::kernel::{KernelError, Map, Op, ENOTSUPP};
use crate::registry::desc;

/// Entries from which a batch runs on a blocking thread.
const BLOCKING_FROM: usize = 1024;

/// Bytes to reserve up front for `n` items of `size`: the request's own size bounds what it
/// can decode to, but not `n × size` for empty entries of a huge map, so cap the guess and
/// let the vectors grow with what really arrives.
fn reserve(n: usize, size: usize) -> usize {
    n.saturating_mul(size).min(16 << 20)
}

/// Keys and values of one batch in the kernel's layout. A packed request's buffers are
/// used as they arrived (prost decodes `bytes` fields without copying).
#[derive(Debug, Default)]
pub struct Packed {
    keys: Bytes,
    values: Bytes,
    count: usize,
}

/// Checks the batch update's target type.
pub fn check_update_target(map: &Map) -> Result<()> {
    if map.kind.is_map_of_maps()
        || map.kind.0 == crate::kernel::types::num::PROG_ARRAY
        || map.kind.is_fd_valued_foreign()
    {
        return Err(Error::InvalidArgument(format!(
            "BatchUpdate cannot write {} maps: their values are file descriptors; use Update (inner_map or program id) per entry",
            map.kind.name()
        )));
    }
    if !map.kind.supports(Op::Update) && !map.kind.supports(Op::Push) {
        return Err(Error::unsupported(map.kind, Op::Update));
    }
    Ok(())
}

/// Decodes one BatchUpdateRequest's entries (or packed block) into the kernel's layout.
pub fn pack(map: &Map, req: &pb::BatchUpdateRequest, types: &Types<'_>) -> Result<Packed> {
    let ks = map.key_size as usize;
    let vs = map.value_stride();
    if let Some(p) = &req.packed {
        if !req.entries.is_empty() {
            return Err(Error::InvalidArgument(
                "a message carries either entries or packed, not both".into(),
            ));
        }
        let count = p.count as usize;
        if p.keys.len() != count * ks || p.values.len() != count * vs {
            return Err(Error::InvalidArgument(format!(
                "packed: count {count} needs {} key bytes and {} value bytes ({ks} and {vs} per entry), got {} and {}",
                count * ks,
                count * vs,
                p.keys.len(),
                p.values.len()
            )));
        }
        return Ok(Packed {
            keys: p.keys.clone(),
            values: p.values.clone(),
            count,
        });
    }
    let mut keys = Vec::with_capacity(reserve(req.entries.len(), ks));
    let mut values = Vec::with_capacity(reserve(req.entries.len(), vs));
    for (i, e) in req.entries.iter().enumerate() {
        if map.kind.is_keyless() {
            if e.key.is_some() {
                return Err(Error::InvalidArgument(format!(
                    "entries[{i}]: {} maps have no keys",
                    map.kind.name()
                )));
            }
        } else {
            let key = e
                .key
                .as_ref()
                .ok_or_else(|| Error::InvalidArgument(format!("entries[{i}].key is required")))?;
            keys.extend(decode(
                key,
                ks,
                &format!("entries[{i}].key"),
                types,
                Side::Key,
            )?);
        }
        values.extend(
            value_in(map, e.value.as_ref(), &e.per_cpu_values, types)
                .map_err(|e| e.prefixed(&format!("entries[{i}]: ")))?,
        );
    }
    Ok(Packed {
        keys: keys.into(),
        values: values.into(),
        count: req.entries.len(),
    })
}

/// Writes one packed batch; returns the entries written or the error with that count.
pub async fn apply_update(map: Arc<Map>, batch: Packed, flag: u64) -> (usize, Result<()>) {
    if batch.count >= BLOCKING_FROM {
        match tokio::task::spawn_blocking(move || update_sync(&map, &batch, flag)).await {
            Ok(r) => r,
            Err(e) => (0, Err(Error::Internal(format!("batch worker failed: {e}")))),
        }
    } else {
        update_sync(&map, &batch, flag)
    }
}

fn update_sync(map: &Map, b: &Packed, flag: u64) -> (usize, Result<()>) {
    if b.count == 0 {
        return (0, Ok(()));
    }
    let ks = map.key_size as usize;
    let vs = map.value_stride();
    let explain = |done: usize, op: Op, e: KernelError| {
        let key = (ks > 0).then(|| bpfmap_proto::hex::format(&b.keys[done * ks..(done + 1) * ks]));
        let frozen = matches!(e.errno, libc::EPERM | libc::EACCES) && map.is_frozen();
        Error::kernel(
            &desc(map),
            op,
            KernelCtx {
                key: key.as_deref(),
                update_flag: flag,
                frozen,
                ..Default::default()
            },
            e,
        )
    };
    if map.kind.is_keyless() {
        for i in 0..b.count {
            if let Err(e) = map.update(None, &b.values[i * vs..(i + 1) * vs], flag) {
                return (i, Err(explain(i, Op::Push, e)));
            }
        }
        return (b.count, Ok(()));
    }
    let one_by_one = || {
        for i in 0..b.count {
            if let Err(e) = map.update(
                Some(&b.keys[i * ks..(i + 1) * ks]),
                &b.values[i * vs..(i + 1) * vs],
                flag,
            ) {
                return (i, Err(explain(i, Op::Update, e)));
            }
        }
        (b.count, Ok(()))
    };
    // The kernel's batch update takes only BPF_ANY (elem_flags other than BPF_F_LOCK are
    // EINVAL): NOEXIST and EXIST go element by element, with their exact semantics.
    if flag != 0 {
        return one_by_one();
    }
    match map.update_batch(&b.keys, &b.values, b.count, flag) {
        Ok(n) => (n, Ok(())),
        Err((0, e)) if matches!(e.errno, ENOTSUPP | libc::EOPNOTSUPP) => one_by_one(),
        Err((done, e)) => (done, Err(explain(done.min(b.count - 1), Op::Update, e))),
    }
}

/// Deletes `keys`; keys that are not in the map are counted as missing, not as errors.
/// Returns (deleted, missing).
pub async fn delete(map: Arc<Map>, keys: &[pb::Data], btf: &BtfCache) -> Result<(u64, u64)> {
    if !map.kind.supports(Op::Delete) {
        return Err(Error::unsupported(map.kind, Op::Delete));
    }
    let ks = map.key_size as usize;
    let mut flat = Vec::with_capacity(reserve(keys.len(), ks));
    {
        let types = Types::lazy(&map, btf);
        for (i, k) in keys.iter().enumerate() {
            flat.extend(decode(k, ks, &format!("keys[{i}]"), &types, Side::Key)?);
        }
    }
    let count = keys.len();
    if count >= BLOCKING_FROM {
        tokio::task::spawn_blocking(move || delete_sync(&map, &flat, count))
            .await
            .map_err(|e| Error::Internal(format!("batch worker failed: {e}")))?
    } else {
        delete_sync(&map, &flat, count)
    }
}

fn delete_sync(map: &Map, keys: &[u8], count: usize) -> Result<(u64, u64)> {
    let ks = map.key_size as usize;
    let (mut deleted, mut missing, mut off) = (0u64, 0u64, 0usize);
    let mut batched = true;
    while off < count {
        if !batched {
            let key = &keys[off * ks..(off + 1) * ks];
            match map.delete(key) {
                Ok(()) => deleted += 1,
                Err(e) if e.errno == libc::ENOENT => missing += 1,
                Err(e) => return Err(fail_delete(map, key, e, deleted)),
            }
            off += 1;
            continue;
        }
        match map.delete_batch(&keys[off * ks..], count - off) {
            Ok(n) => {
                deleted += n as u64;
                off += n;
            }
            Err((n, e)) if e.errno == libc::ENOENT => {
                deleted += n as u64;
                missing += 1;
                off += n + 1;
            }
            Err((0, e)) if matches!(e.errno, ENOTSUPP | libc::EOPNOTSUPP) => batched = false,
            Err((n, e)) => {
                deleted += n as u64;
                let at = (off + n).min(count - 1);
                return Err(fail_delete(map, &keys[at * ks..(at + 1) * ks], e, deleted));
            }
        }
    }
    Ok((deleted, missing))
}

fn fail_delete(map: &Map, key: &[u8], e: KernelError, deleted: u64) -> Error {
    let k = bpfmap_proto::hex::format(key);
    let frozen = matches!(e.errno, libc::EPERM | libc::EACCES) && map.is_frozen();
    Error::kernel(
        &desc(map),
        Op::Delete,
        KernelCtx {
            key: Some(&k),
            frozen,
            ..Default::default()
        },
        e,
    )
    .prefixed(&format!("after {deleted} keys were deleted: "))
}
