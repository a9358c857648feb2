//! Unique kernel map names: tests share one kernel, and map names are global.
//!
//! A name is `<prefix><pid hex>_<counter hex>`, at most 15 characters of `[A-Za-z0-9_]`
//! (the kernel's limit is 15 plus the NUL).

use std::sync::atomic::{AtomicU32, Ordering};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Longest map name the kernel keeps.
pub const MAX_NAME: usize = 15;

/// A map name unique on this machine while this process lives, starting with (as much as
/// fits of) `prefix`.
pub fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let suffix = format!("{:x}_{n:x}", std::process::id());
    let room = MAX_NAME.saturating_sub(suffix.len());
    let prefix: String = prefix
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(room)
        .collect();
    let name = format!("{prefix}{suffix}");
    assert!(name.len() <= MAX_NAME, "map name {name:?} too long");
    name
}
