//! One full read of a map, for the poller: the kernel's batch lookup where the type has it
//! (as Dump does: until ENOENT, growing the batch on ENOSPC), get-next-key + lookup where it
//! has not, bounded so that a map changing under the walk cannot keep it going forever.

use bytes::{Bytes, BytesMut};

use crate::kernel::{BatchCursor, KernelError, Map, Op, ENOTSUPP};

/// Entries per batch to start with.
const BATCH: usize = 4096;
/// Largest batch tried when a hash bucket does not fit (ENOSPC).
const MAX_BATCH: usize = 1 << 20;

/// Why a read failed.
#[derive(Debug, Clone, Copy)]
pub enum ReadError {
    /// A syscall failed.
    Kernel(Op, KernelError),
    /// A key-by-key walk kept restarting (the map changed too much under it).
    Restarted,
}

/// Every entry of `map` as (key, value) pairs in the kernel's iteration order; the values
/// are `value_stride()` bytes (all CPUs for per-CPU maps). Keys and values are slices of a
/// few large buffers.
pub fn read_all(map: &Map) -> Result<Vec<(Bytes, Bytes)>, ReadError> {
    let ks = map.key_size as usize;
    let vs = map.value_stride();
    let mut batch = BATCH.min(map.max_entries.max(1) as usize);
    let mut cursor = BatchCursor::new(map);
    let mut out = Vec::new();
    let mut first = true;
    let mut empty_steps = 0;
    loop {
        let mut keys = BytesMut::zeroed(batch * ks);
        let mut values = BytesMut::zeroed(batch * vs);
        match cursor.step(map, &mut keys, &mut values, batch, false) {
            Ok(step) => {
                first = false;
                let (keys, values) = (keys.freeze(), values.freeze());
                for i in 0..step.count {
                    out.push((
                        keys.slice(i * ks..(i + 1) * ks),
                        values.slice(i * vs..(i + 1) * vs),
                    ));
                }
                if step.end {
                    return Ok(out);
                }
                empty_steps = if step.count == 0 { empty_steps + 1 } else { 0 };
                if empty_steps > 1000 {
                    return Err(ReadError::Restarted);
                }
            }
            Err(e) if e.errno == libc::ENOSPC && batch < MAX_BATCH => batch *= 2,
            Err(e) if first && matches!(e.errno, ENOTSUPP | libc::EOPNOTSUPP | libc::EINVAL) => {
                return read_by_key(map)
            }
            Err(e) => return Err(ReadError::Kernel(Op::Dump, e)),
        }
    }
}

/// get-next-key + lookup, at most max_entries + 1 keys.
fn read_by_key(map: &Map) -> Result<Vec<(Bytes, Bytes)>, ReadError> {
    let mut out = Vec::new();
    let mut prev: Option<Bytes> = None;
    let mut next = vec![0u8; map.key_size as usize];
    let mut value = vec![0u8; map.value_stride()];
    for _ in 0..=u64::from(map.max_entries) {
        match map.next_key(prev.as_deref(), &mut next) {
            Ok(()) => {}
            Err(e) if e.errno == libc::ENOENT => return Ok(out),
            Err(e) => return Err(ReadError::Kernel(Op::GetNextKey, e)),
        }
        let key = Bytes::copy_from_slice(&next);
        match map.lookup(Some(&next), &mut value, 0) {
            Ok(()) => out.push((key.clone(), Bytes::copy_from_slice(&value))),
            // Deleted between the two calls, or an empty slot of a map-in-map array.
            Err(e) if e.errno == libc::ENOENT => {}
            Err(e) => return Err(ReadError::Kernel(Op::Lookup, e)),
        }
        prev = Some(key);
    }
    Err(ReadError::Restarted)
}
