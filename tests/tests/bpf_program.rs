//! A real BPF program (tests/bpf/sockstats.bpf.c, a socket filter on a UDP socket) writes
//! its maps while a client reads them through the service; plus the map kinds that need a
//! program: PROG_ARRAY (values are program ids) and a value with a bpf_spin_lock (lock flag).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bpfmap_tests::api::pb::{DeleteRequest, Format, LookupRequest, MapType, UpdateRequest};
use bpfmap_tests::api::*;
use bpfmap_tests::{kernel, names, BpfProgram, KernelMap, TestEnv};
use tonic::Code;

async fn counter(t: &mut TestEnv, id: u32, key: u64) -> u64 {
    let v = lookup(&mut t.client, by_id(id), num(key), Format::Number)
        .await
        .unwrap();
    num_of(&v.value)
}

#[tokio::test]
async fn counts_move_by_exactly_the_traffic_sent() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let mut prog = BpfProgram::load();
    let id = prog.map_id("sock_counts");
    let pins = prog.pin_maps(&t.fs.path().join("prog"));
    let (p0, b0) = (counter(&mut t, id, 0).await, counter(&mut t, id, 1).await);
    assert_eq!((p0, b0), (0, 0), "a fresh program's counters");

    let lens: Vec<usize> = (0..40).map(|i| 10 + i * 31).collect();
    let bytes = prog.send(&lens);
    let (p1, b1) = (counter(&mut t, id, 0).await, counter(&mut t, id, 1).await);
    assert_eq!(p1 - p0, lens.len() as u64);
    assert_eq!(b1 - b0, bytes);

    let more = prog.send(&[1000; 7]);
    // Through the pin too, and equal to a direct kernel read.
    let pin = pins["sock_counts"].to_string_lossy().into_owned();
    let v = lookup(&mut t.client, by_pin(pin.clone()), num(0), Format::Number)
        .await
        .unwrap();
    assert_eq!(num_of(&v.value), p1 + 7);
    let direct = KernelMap::from_pin(&pins["sock_counts"])
        .lookup(&u32b(1))
        .unwrap();
    assert_eq!(u64b(b1 + more), direct);
    let entries = dump_entries(&mut t.client, by_pin(pin), Format::Number).await;
    let dumped: Vec<(u64, u64)> = entries
        .iter()
        .map(|e| (num_of(&e.key), num_of(&e.value)))
        .collect();
    assert_eq!(dumped, vec![(0, p1 + 7), (1, b1 + more)]);

    // The per-CPU copy: one value per possible CPU, summing to the same counts.
    let v = lookup(
        &mut t.client,
        by_id(prog.map_id("sock_pcpu")),
        num(0),
        Format::Number,
    )
    .await
    .unwrap();
    assert_eq!(v.per_cpu_values.len(), kernel::possible_cpus());
    let sum: u64 = v
        .per_cpu_values
        .iter()
        .map(|d| num_of(&Some(d.clone())))
        .sum();
    assert_eq!(sum, p1 + 7);
}

#[tokio::test]
async fn prog_array_takes_a_program_id_and_returns_it() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let prog = BpfProgram::load();
    let prog_id = prog.prog_id();
    let info = create(
        &mut t.client,
        create_req(MapType::ProgArray, &names::unique("pa"), 4, 4, 4),
    )
    .await;
    let k = KernelMap::from_id(info.id);
    t.client
        .update(UpdateRequest {
            map: by_id(info.id),
            key: num(1),
            value: num(u64::from(prog_id)),
            ..Default::default()
        })
        .await
        .unwrap();
    let v = lookup(&mut t.client, by_id(info.id), num(1), Format::Number)
        .await
        .unwrap();
    assert_eq!(num_of(&v.value), u64::from(prog_id));
    assert_eq!(
        k.lookup(&u32b(1)),
        Some(u32b(prog_id)),
        "the kernel holds another program"
    );
    assert_status(
        lookup(&mut t.client, by_id(info.id), num(0), Format::Raw).await,
        Code::NotFound,
        &[],
    );
    // Not a program id.
    let r = t
        .client
        .update(UpdateRequest {
            map: by_id(info.id),
            key: num(2),
            value: num(u64::from(u32::MAX - 1)),
            ..Default::default()
        })
        .await;
    assert_status(r, Code::NotFound, &[]);
    t.client
        .delete(DeleteRequest {
            map: by_id(info.id),
            key: num(1),
        })
        .await
        .unwrap();
    assert_eq!(k.lookup(&u32b(1)), None);
}

#[tokio::test]
async fn lock_flag_reads_and_writes_a_spin_locked_value() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let prog = BpfProgram::load();
    let id = prog.map_id("sock_locked");
    // struct { struct bpf_spin_lock lock; /* 4 bytes + 4 padding */ u64 count; }
    let value = |count: u64| {
        let mut v = vec![0u8; 8];
        v.extend_from_slice(&count.to_ne_bytes());
        v
    };
    t.client
        .update(UpdateRequest {
            map: by_id(id),
            key: num(3),
            value: raw(&value(41)),
            lock: true,
            ..Default::default()
        })
        .await
        .unwrap();
    let r = t
        .client
        .lookup(LookupRequest {
            map: by_id(id),
            key: num(3),
            lock: true,
            format: Format::Raw as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let got = bytes_of(&r.value);
    assert_eq!(got.len(), 16);
    assert_eq!(&got[8..], &41u64.to_ne_bytes());
    let direct = KernelMap::from_id(id).lookup(&u32b(3)).unwrap();
    assert_eq!(&direct[8..], &41u64.to_ne_bytes());
    // Without the flag it works too (the kernel just does not take the lock).
    update(&mut t.client, by_id(id), num(4), raw(&value(7))).await;
    assert_eq!(
        &KernelMap::from_id(id).lookup(&u32b(4)).unwrap()[8..],
        &7u64.to_ne_bytes()
    );
}
