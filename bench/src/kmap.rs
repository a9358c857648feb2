//! Maps made and read in-process through bpfmapd's kernel layer: the test maps and the
//! kernel floors (batch lookup, batch update, single-element syscalls).

use std::time::Instant;

use anyhow::{bail, Context, Result};
use bpfmapd::kernel::{BatchCursor, CreateParams, Map};

/// `BPF_MAP_TYPE_HASH`.
const HASH: u32 = 1;
/// Key and value sizes of every benchmark map: u32 -> u64.
pub const KEY: usize = 4;
/// See [`KEY`].
pub const VALUE: usize = 8;
/// Entries per batch syscall in the floors: the daemon's dump batch for 12-byte entries, and
/// the client library's BatchUpdate chunk.
pub const FLOOR_BATCH: usize = 8192;

/// The key of entry `i`.
pub fn key(i: u32) -> [u8; KEY] {
    i.to_ne_bytes()
}

/// The value of entry `i`.
pub fn value(i: u32) -> [u8; VALUE] {
    (u64::from(i) * 3 + 1).to_ne_bytes()
}

/// Keys and values of entries `0..n`, back to back (the kernel's batch layout).
pub fn packed(n: u32) -> (Vec<u8>, Vec<u8>) {
    let mut keys = Vec::with_capacity(n as usize * KEY);
    let mut values = Vec::with_capacity(n as usize * VALUE);
    for i in 0..n {
        keys.extend_from_slice(&key(i));
        values.extend_from_slice(&value(i));
    }
    (keys, values)
}

/// A new u32 -> u64 hash map sized for `max` entries.
pub fn create(name: &str, max: u32) -> Result<Map> {
    Map::create(&CreateParams {
        kind: HASH,
        name,
        key_size: KEY as u32,
        value_size: VALUE as u32,
        max_entries: max,
        ..Default::default()
    })
    .with_context(|| format!("creating map {name} ({max} entries)"))
}

/// Fills `map` with entries `0..n`.
pub fn fill(map: &Map, n: u32) -> Result<()> {
    let (keys, values) = packed(n);
    update_all(map, &keys, &values, FLOOR_BATCH)?;
    Ok(())
}

/// The bulk-load floor: `BPF_MAP_UPDATE_BATCH` over `keys`/`values` in chunks of `batch`.
pub fn update_all(map: &Map, keys: &[u8], values: &[u8], batch: usize) -> Result<u64> {
    let n = keys.len() / KEY;
    let mut off = 0;
    while off < n {
        let c = batch.min(n - off);
        map.update_batch(
            &keys[off * KEY..(off + c) * KEY],
            &values[off * VALUE..(off + c) * VALUE],
            c,
            0,
        )
        .map_err(|(done, e)| anyhow::anyhow!("update batch at {}: {e}", off + done))?;
        off += c;
    }
    Ok(n as u64)
}

/// The dump floor: `BPF_MAP_LOOKUP_BATCH` to the end into reused buffers; returns the entries.
pub fn lookup_all(map: &Map, batch: usize) -> Result<u64> {
    let mut keys = vec![0u8; batch * KEY];
    let mut values = vec![0u8; batch * VALUE];
    let mut cursor = BatchCursor::new(map);
    let mut n = 0u64;
    loop {
        let step = cursor
            .step(map, &mut keys, &mut values, batch, false)
            .context("lookup batch")?;
        n += step.count as u64;
        if step.end {
            return Ok(n);
        }
    }
}

/// Times `f` once.
pub fn timed<T>(f: impl FnOnce() -> Result<T>) -> Result<(f64, T)> {
    let t = Instant::now();
    let v = f()?;
    Ok((t.elapsed().as_secs_f64(), v))
}

/// Checks that a run moved the whole map.
pub fn expect_count(what: &str, got: u64, want: u64) -> Result<()> {
    if got != want {
        bail!("{what}: {got} entries, expected {want}");
    }
    Ok(())
}
