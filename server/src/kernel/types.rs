//! Map types: the kernel's names for them and which userspace operations each allows.
//!
//! The table follows ../shared/KERNEL-NOTES.md. Handlers consult it before the syscall so that
//! an impossible operation gets a precise message ("delete is not supported on array maps")
//! instead of a bare EINVAL.

/// The kernel's `enum bpf_map_type`, kept as its number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MapKind(pub u32);

/// A userspace operation on a map, for capability checks and messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Lookup by key.
    Lookup,
    /// Update by key.
    Update,
    /// Delete by key.
    Delete,
    /// Get-next-key.
    GetNextKey,
    /// Lookup-and-delete by key.
    LookupAndDelete,
    /// Peek (lookup without key).
    Peek,
    /// Push (update without key).
    Push,
    /// Pop (lookup-and-delete without key).
    Pop,
    /// Iterating over the map (Dump).
    Dump,
    /// Freeze.
    Freeze,
}

impl Op {
    /// The word used in messages.
    pub fn name(self) -> &'static str {
        match self {
            Op::Lookup => "lookup",
            Op::Update => "update",
            Op::Delete => "delete",
            Op::GetNextKey => "get-next-key",
            Op::LookupAndDelete => "lookup-and-delete",
            Op::Peek => "peek",
            Op::Push => "push",
            Op::Pop => "pop",
            Op::Dump => "dump",
            Op::Freeze => "freeze",
        }
    }
}

/// Kernel map type numbers used in this crate.
pub mod num {
    pub const HASH: u32 = 1;
    pub const ARRAY: u32 = 2;
    pub const PROG_ARRAY: u32 = 3;
    pub const PERF_EVENT_ARRAY: u32 = 4;
    pub const PERCPU_HASH: u32 = 5;
    pub const PERCPU_ARRAY: u32 = 6;
    pub const STACK_TRACE: u32 = 7;
    pub const CGROUP_ARRAY: u32 = 8;
    pub const LRU_HASH: u32 = 9;
    pub const LRU_PERCPU_HASH: u32 = 10;
    pub const LPM_TRIE: u32 = 11;
    pub const ARRAY_OF_MAPS: u32 = 12;
    pub const HASH_OF_MAPS: u32 = 13;
    pub const PERCPU_CGROUP_STORAGE: u32 = 21;
    pub const QUEUE: u32 = 22;
    pub const STACK: u32 = 23;
    pub const STRUCT_OPS: u32 = 26;
    pub const RINGBUF: u32 = 27;
    pub const BLOOM_FILTER: u32 = 30;
    pub const USER_RINGBUF: u32 = 31;
    pub const ARENA: u32 = 33;
}

const NAMES: &[&str] = &[
    "unspec",
    "hash",
    "array",
    "prog_array",
    "perf_event_array",
    "percpu_hash",
    "percpu_array",
    "stack_trace",
    "cgroup_array",
    "lru_hash",
    "lru_percpu_hash",
    "lpm_trie",
    "array_of_maps",
    "hash_of_maps",
    "devmap",
    "sockmap",
    "cpumap",
    "xskmap",
    "sockhash",
    "cgroup_storage",
    "reuseport_sockarray",
    "percpu_cgroup_storage",
    "queue",
    "stack",
    "sk_storage",
    "devmap_hash",
    "struct_ops",
    "ringbuf",
    "inode_storage",
    "task_storage",
    "bloom_filter",
    "user_ringbuf",
    "cgrp_storage",
    "arena",
];

impl MapKind {
    /// The kernel's (and bpftool's) name, e.g. `"lpm_trie"`.
    pub fn name(self) -> String {
        NAMES
            .get(self.0 as usize)
            .map_or_else(|| format!("type {}", self.0), |n| (*n).to_owned())
    }

    /// Parses a bpftool-style name (`hash`, `lpm_trie`, ...) into a kind.
    pub fn from_name(name: &str) -> Option<MapKind> {
        NAMES
            .iter()
            .position(|n| *n == name)
            .map(|i| MapKind(i as u32))
    }

    /// Values are per CPU: round_up(value_size, 8) bytes for each possible CPU.
    pub fn is_percpu(self) -> bool {
        matches!(
            self.0,
            num::PERCPU_HASH
                | num::PERCPU_ARRAY
                | num::LRU_PERCPU_HASH
                | num::PERCPU_CGROUP_STORAGE
        )
    }

    /// Hash-family maps: batch lookup, lookup-and-delete and delete batches.
    pub fn is_hash_family(self) -> bool {
        matches!(
            self.0,
            num::HASH | num::PERCPU_HASH | num::LRU_HASH | num::LRU_PERCPU_HASH | num::HASH_OF_MAPS
        )
    }

    /// Array-like maps: keys are indexes 0..max_entries that always exist (fd arrays can
    /// clear a slot, but its index stays in the key space).
    pub fn is_array(self) -> bool {
        matches!(
            self.0,
            num::ARRAY
                | num::PERCPU_ARRAY
                | num::ARRAY_OF_MAPS
                | num::PROG_ARRAY
                | num::PERF_EVENT_ARRAY
                | num::CGROUP_ARRAY
        )
    }

    /// Keyless maps (queue, stack, bloom filter): push/pop/peek instead of keys.
    pub fn is_keyless(self) -> bool {
        matches!(self.0, num::QUEUE | num::STACK | num::BLOOM_FILTER)
    }

    /// Map-in-map: values are maps (fds in, ids out).
    pub fn is_map_of_maps(self) -> bool {
        matches!(self.0, num::ARRAY_OF_MAPS | num::HASH_OF_MAPS)
    }

    /// Maps whose values are file descriptors in the writer's fd table, other than map-in-map
    /// and prog arrays (which the daemon translates from ids).
    pub fn is_fd_valued_foreign(self) -> bool {
        matches!(
            self.0,
            num::PERF_EVENT_ARRAY | num::CGROUP_ARRAY | 14..=18 | 20 | 25
        )
    }

    /// Whether userspace can do `op` on this kind at all.
    pub fn supports(self, op: Op) -> bool {
        let t = self.0;
        match op {
            Op::Freeze => t != num::STRUCT_OPS,
            _ if matches!(
                t,
                num::RINGBUF | num::USER_RINGBUF | num::ARENA | num::STRUCT_OPS
            ) =>
            {
                false
            }
            Op::Peek | Op::Pop => matches!(t, num::QUEUE | num::STACK),
            Op::Push => matches!(t, num::QUEUE | num::STACK | num::BLOOM_FILTER),
            _ if self.is_keyless() => op == Op::Lookup && t == num::BLOOM_FILTER,
            Op::Lookup => t != num::PERF_EVENT_ARRAY && t != num::CGROUP_ARRAY,
            Op::Update => t != num::STACK_TRACE,
            // Plain arrays cannot delete; fd arrays (map-in-map, prog, perf) clear the slot.
            Op::Delete => !matches!(t, num::ARRAY | num::PERCPU_ARRAY),
            Op::GetNextKey => true,
            // A dump reads every value.
            Op::Dump => self.supports(Op::Lookup),
            Op::LookupAndDelete => matches!(
                t,
                num::HASH
                    | num::PERCPU_HASH
                    | num::LRU_HASH
                    | num::LRU_PERCPU_HASH
                    | num::HASH_OF_MAPS
                    | num::STACK_TRACE
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_kernel_numbers() {
        assert_eq!(MapKind(num::LPM_TRIE).name(), "lpm_trie");
        assert_eq!(MapKind(num::BLOOM_FILTER).name(), "bloom_filter");
        assert_eq!(MapKind::from_name("arena"), Some(MapKind(num::ARENA)));
        assert_eq!(MapKind(99).name(), "type 99");
    }

    #[test]
    fn capabilities_follow_the_kernel_table() {
        assert!(!MapKind(num::ARRAY).supports(Op::Delete));
        assert!(MapKind(num::ARRAY_OF_MAPS).supports(Op::Delete));
        assert!(MapKind(num::PROG_ARRAY).supports(Op::Delete));
        assert!(MapKind(num::HASH).supports(Op::Delete));
        assert!(!MapKind(num::QUEUE).supports(Op::GetNextKey));
        assert!(MapKind(num::QUEUE).supports(Op::Pop));
        assert!(MapKind(num::BLOOM_FILTER).supports(Op::Lookup));
        assert!(!MapKind(num::BLOOM_FILTER).supports(Op::Delete));
        assert!(!MapKind(num::RINGBUF).supports(Op::Lookup));
        assert!(MapKind(num::RINGBUF).supports(Op::Freeze));
        assert!(!MapKind(num::ARRAY).supports(Op::LookupAndDelete));
    }
}
