//! Checks of the harness itself, without the daemon: the bpffs guard, the BPF program,
//! bpftool parsing and the direct kernel reader agree with each other.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use bpfmap_tests::{bpftool, kernel, names, require_bpf, BpfProgram, Bpffs, KernelMap};

const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

fn mounted(path: &std::path::Path) -> bool {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let p = path.to_string_lossy();
    mounts
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(p.as_ref()))
}

#[test]
fn bpffs_guard_mounts_a_private_bpffs_and_cleans_up() {
    if !require_bpf() {
        return;
    }
    let fs = Bpffs::new();
    let mnt = fs.path().to_path_buf();
    let tmp = fs.tmp().to_path_buf();
    let st = nix::sys::statfs::statfs(&mnt).unwrap();
    assert_eq!(st.filesystem_type().0 as i64, BPF_FS_MAGIC, "not a bpffs");
    assert!(mounted(&mnt));
    let pin = fs.path().join("probe");
    let show = bpftool::create_map(&pin, "array", 4, 4, 1, &names::unique("hb"), 0);
    assert!(pin.exists());
    drop(fs);
    assert!(!mounted(&mnt), "{} still mounted", mnt.display());
    assert!(!tmp.exists(), "{} not removed", tmp.display());
    // The pin was the map's only reference: the kernel frees it (asynchronously).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while kernel::map_exists(show.id) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        !kernel::map_exists(show.id),
        "map {} outlived its bpffs",
        show.id
    );
}

#[test]
fn unique_names_are_distinct_and_fit_the_kernel() {
    let all: BTreeSet<String> = (0..300).map(|_| names::unique("prefix_long")).collect();
    assert_eq!(all.len(), 300);
    for n in &all {
        assert!(n.len() <= 15, "{n}");
        assert!(
            n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{n}"
        );
    }
}

#[test]
fn bpftool_and_the_kernel_reader_agree_on_a_foreign_map() {
    if !require_bpf() {
        return;
    }
    let fs = Bpffs::new();
    let pin = fs.path().join("fx");
    let name = names::unique("hfx");
    let show = bpftool::create_map(&pin, "hash", 4, 8, 16, &name, 0);
    assert_eq!(
        (show.type_name.as_str(), show.name.as_str()),
        ("hash", name.as_str())
    );
    assert_eq!(
        (show.key_size, show.value_size, show.max_entries),
        (4, 8, 16)
    );
    let k = KernelMap::from_pin(&pin);
    assert_eq!(k.id(), show.id);
    assert!(k.is_empty());
    for i in 0..5u32 {
        k.update(&i.to_ne_bytes(), &(u64::from(i) * 1000).to_ne_bytes());
    }
    let dumped = bpftool::dump_pinned(&pin);
    assert_eq!(dumped.len(), 5);
    let direct = KernelMap::from_id(show.id).entries();
    for e in &dumped {
        assert_eq!(direct.get(&e.key), e.value.as_ref());
    }
    assert!(bpftool::try_show_id(u32::MAX - 7).is_err());
}

#[test]
fn possible_cpus_matches_libbpf() {
    assert_eq!(
        kernel::possible_cpus(),
        libbpf_rs::num_possible_cpus().unwrap()
    );
}

#[test]
fn sockstats_program_counts_packets_and_bytes() {
    if !require_bpf() {
        return;
    }
    let fs = Bpffs::new();
    let mut prog = BpfProgram::load();
    let names: BTreeSet<String> = prog.map_names().into_iter().collect();
    for n in ["sock_counts", "sock_pcpu", "sock_locked"] {
        assert!(names.contains(n), "{names:?}");
    }
    assert!(prog.prog_id() > 0);
    let pins = prog.pin_maps(&fs.path().join("prog"));
    let counts = KernelMap::from_pin(&pins["sock_counts"]);
    assert_eq!(counts.id(), prog.map_id("sock_counts"));
    let read = |k: u32| {
        u64::from_ne_bytes(
            counts.lookup(&k.to_ne_bytes()).unwrap()[..8]
                .try_into()
                .unwrap(),
        )
    };
    let (p0, b0) = (read(0), read(1));
    let lens = [1usize, 10, 100, 1000, 1400, 0, 64];
    let bytes = prog.send(&lens);
    assert_eq!(read(0) - p0, lens.len() as u64);
    assert_eq!(read(1) - b0, bytes);
    // bpftool agrees with the direct read.
    let dumped = bpftool::dump_pinned(&pins["sock_counts"]);
    assert_eq!(dumped.len(), 2);
    assert_eq!(dumped[0].value.as_deref(), Some(&read(0).to_ne_bytes()[..]));
    // Per-CPU copy: the sum over CPUs is the same.
    let pcpu = KernelMap::from_pin(&pins["sock_pcpu"]);
    let per = pcpu.lookup_percpu(&0u32.to_ne_bytes()).unwrap();
    assert_eq!(per.len(), kernel::possible_cpus());
    let sum: u64 = per
        .iter()
        .map(|v| u64::from_ne_bytes(v[..8].try_into().unwrap()))
        .sum();
    assert_eq!(sum, read(0));
    // The spin-locked map has BTF and a 16-byte value.
    let locked = KernelMap::from_id(prog.map_id("sock_locked")).info();
    assert_eq!((locked.key_size, locked.value_size), (4, 16));
}
