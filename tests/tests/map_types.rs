//! Every map type that userspace can create without a program (issue 2 item 2): created
//! through the service, seen by the kernel with the right type, and its element operations
//! as the kernel allows them (PROG_ARRAY is in bpf_program.rs: it needs a program).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bpfmap_tests::api::pb::{
    Data, DeleteRequest, Format, LookupAndDeleteRequest, LookupRequest, MapInfo, MapType,
    UpdateFlag, UpdateRequest,
};
use bpfmap_tests::api::*;
use bpfmap_tests::{bpftool, kernel, names, KernelMap, TestEnv};
use tonic::Code;

/// Creates a map and checks the kernel's view of its type and sizes.
async fn make(
    t: &mut TestEnv,
    req: bpfmap_tests::api::pb::CreateMapRequest,
    bpftool_type: &str,
) -> MapInfo {
    let want = (req.r#type, req.key_size, req.value_size, req.max_entries);
    let info = create(&mut t.client, req).await;
    assert_eq!(
        (
            info.r#type,
            info.key_size,
            info.value_size,
            info.max_entries
        ),
        want
    );
    let show = bpftool::show_id(info.id);
    assert_eq!(show.type_name, bpftool_type);
    assert_eq!(
        (show.key_size, show.value_size, show.max_entries),
        (want.1, want.2, want.3)
    );
    assert!(info.pins.iter().all(|p| std::path::Path::new(p).exists()));
    info
}

fn per_cpu_nums(values: &[Data]) -> Vec<u64> {
    values.iter().map(|d| num_of(&Some(d.clone()))).collect()
}

#[tokio::test]
async fn array_has_every_index_and_refuses_out_of_range() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let info = make(
        &mut t,
        create_req(MapType::Array, &names::unique("arr"), 4, 8, 4),
        "array",
    )
    .await;
    let k = KernelMap::from_id(info.id);
    let c = &mut t.client;
    // Fresh arrays hold zeros at every index.
    let v = lookup(c, by_id(info.id), num(3), Format::Number)
        .await
        .unwrap();
    assert_eq!(num_of(&v.value), 0);
    update(c, by_id(info.id), num(2), num(99)).await;
    assert_eq!(k.lookup(&u32b(2)), Some(u64b(99)));
    assert_status(
        lookup(c, by_id(info.id), num(4), Format::Raw).await,
        Code::NotFound,
        &[],
    );
    // Every index exists: NOEXIST can never succeed.
    let r = c
        .update(UpdateRequest {
            map: by_id(info.id),
            key: num(1),
            value: num(1),
            flag: UpdateFlag::Noexist as i32,
            ..Default::default()
        })
        .await;
    assert_status(r, Code::AlreadyExists, &[]);
    assert_eq!(k.len(), 4);
}

#[tokio::test]
async fn percpu_array_returns_one_value_per_possible_cpu() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let ncpu = kernel::possible_cpus();
    let info = make(
        &mut t,
        create_req(MapType::PercpuArray, &names::unique("pca"), 4, 8, 4),
        "percpu_array",
    )
    .await;
    assert_eq!(info.possible_cpus as usize, ncpu);
    let k = KernelMap::from_id(info.id);
    let c = &mut t.client;
    let v = lookup(c, by_id(info.id), num(0), Format::Number)
        .await
        .unwrap();
    assert_eq!(per_cpu_nums(&v.per_cpu_values), vec![0; ncpu]);
    assert!(v.value.is_none(), "per-CPU lookup also filled `value`");
    // `value` writes every CPU.
    update(c, by_id(info.id), num(1), num(7)).await;
    assert_eq!(k.lookup_percpu(&u32b(1)).unwrap(), vec![u64b(7); ncpu]);
    // `per_cpu_values`: one per CPU, index = CPU.
    let per: Vec<Data> = (0..ncpu as u64).map(|i| num(100 + i).unwrap()).collect();
    t.client
        .update(UpdateRequest {
            map: by_id(info.id),
            key: num(2),
            per_cpu_values: per,
            ..Default::default()
        })
        .await
        .unwrap();
    let want: Vec<Vec<u8>> = (0..ncpu as u64).map(|i| u64b(100 + i)).collect();
    assert_eq!(k.lookup_percpu(&u32b(2)).unwrap(), want);
    let v = lookup(&mut t.client, by_id(info.id), num(2), Format::Raw)
        .await
        .unwrap();
    let got: Vec<Vec<u8>> = v
        .per_cpu_values
        .iter()
        .map(|d| bytes_of(&Some(d.clone())))
        .collect();
    assert_eq!(got, want);
    // Wrong number of per-CPU values.
    let r = t
        .client
        .update(UpdateRequest {
            map: by_id(info.id),
            key: num(3),
            per_cpu_values: vec![num(1).unwrap(); ncpu + 1],
            ..Default::default()
        })
        .await;
    assert_status(r, Code::InvalidArgument, &[]);
    assert_eq!(k.lookup_percpu(&u32b(3)).unwrap(), vec![u64b(0); ncpu]);
}

#[tokio::test]
async fn percpu_hash_with_a_4_byte_value() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let ncpu = kernel::possible_cpus();
    let info = make(
        &mut t,
        create_req(MapType::PercpuHash, &names::unique("pch"), 4, 4, 8),
        "percpu_hash",
    )
    .await;
    assert_eq!(info.possible_cpus as usize, ncpu);
    let k = KernelMap::from_id(info.id);
    let per: Vec<Data> = (0..ncpu as u32)
        .map(|i| raw(&(0xa0 + i).to_ne_bytes()).unwrap())
        .collect();
    t.client
        .update(UpdateRequest {
            map: by_id(info.id),
            key: num(5),
            per_cpu_values: per,
            ..Default::default()
        })
        .await
        .unwrap();
    let want: Vec<Vec<u8>> = (0..ncpu as u32)
        .map(|i| (0xa0 + i).to_ne_bytes().to_vec())
        .collect();
    assert_eq!(k.lookup_percpu(&u32b(5)).unwrap(), want);
    let v = lookup(&mut t.client, by_id(info.id), num(5), Format::Hex)
        .await
        .unwrap();
    let got: Vec<String> = v
        .per_cpu_values
        .iter()
        .map(|d| hex_of(&Some(d.clone())))
        .collect();
    let want_hex: Vec<String> = want.iter().map(|b| bpfmap_proto::hex::format(b)).collect();
    assert_eq!(
        got, want_hex,
        "per-CPU values are value_size bytes each, in CPU order"
    );
    t.client
        .delete(DeleteRequest {
            map: by_id(info.id),
            key: num(5),
        })
        .await
        .unwrap();
    assert!(k.is_empty());
}

#[tokio::test]
async fn lru_hash_evicts_instead_of_failing() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let info = make(
        &mut t,
        create_req(MapType::LruHash, &names::unique("lru"), 4, 8, 16),
        "lru_hash",
    )
    .await;
    let k = KernelMap::from_id(info.id);
    for i in 0..64u64 {
        update(&mut t.client, by_id(info.id), num(i), num(i * 10)).await;
    }
    let n = k.len();
    assert!(n > 0 && n <= 16, "{n} entries in a 16-entry LRU map");
    assert_eq!(
        k.lookup(&u32b(63)),
        Some(u64b(630)),
        "the newest entry was evicted"
    );
    let dumped = dump_entries(&mut t.client, by_id(info.id), Format::Raw).await;
    assert_eq!(dumped.len(), n);
}

#[tokio::test]
async fn lru_percpu_hash_takes_per_cpu_values() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let ncpu = kernel::possible_cpus();
    let info = make(
        &mut t,
        create_req(MapType::LruPercpuHash, &names::unique("lrup"), 4, 8, 16),
        "lru_percpu_hash",
    )
    .await;
    assert_eq!(info.possible_cpus as usize, ncpu);
    let per: Vec<Data> = (0..ncpu as u64).map(|i| num(i + 1).unwrap()).collect();
    t.client
        .update(UpdateRequest {
            map: by_id(info.id),
            key: num(9),
            per_cpu_values: per,
            ..Default::default()
        })
        .await
        .unwrap();
    let v = lookup(&mut t.client, by_id(info.id), num(9), Format::Number)
        .await
        .unwrap();
    assert_eq!(
        per_cpu_nums(&v.per_cpu_values),
        (1..=ncpu as u64).collect::<Vec<_>>()
    );
    let direct = KernelMap::from_id(info.id).lookup_percpu(&u32b(9)).unwrap();
    assert_eq!(direct, (1..=ncpu as u64).map(u64b).collect::<Vec<_>>());
}

fn lpm_key(prefix: u32, ip: [u8; 4]) -> Vec<u8> {
    let mut k = prefix.to_ne_bytes().to_vec();
    k.extend_from_slice(&ip);
    k
}

#[tokio::test]
async fn lpm_trie_matches_the_longest_prefix() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let mut req = create_req(MapType::LpmTrie, &names::unique("lpm"), 8, 8, 3);
    req.flags = 1; // BPF_F_NO_PREALLOC
    let info = make(&mut t, req, "lpm_trie").await;
    let c = &mut t.client;
    update(c, by_id(info.id), raw(&lpm_key(8, [10, 0, 0, 0])), num(1)).await;
    update(c, by_id(info.id), raw(&lpm_key(16, [10, 1, 0, 0])), num(2)).await;
    let at = |ip| raw(&lpm_key(32, ip));
    let v = lookup(c, by_id(info.id), at([10, 1, 2, 3]), Format::Number)
        .await
        .unwrap();
    assert_eq!(num_of(&v.value), 2);
    let v = lookup(c, by_id(info.id), at([10, 2, 0, 1]), Format::Number)
        .await
        .unwrap();
    assert_eq!(num_of(&v.value), 1);
    assert_status(
        lookup(c, by_id(info.id), at([11, 0, 0, 1]), Format::Raw).await,
        Code::NotFound,
        &[],
    );
    update(c, by_id(info.id), raw(&lpm_key(24, [10, 1, 2, 0])), num(3)).await;
    // Full (3 entries): the kernel says ENOSPC.
    let r = c
        .update(UpdateRequest {
            map: by_id(info.id),
            key: raw(&lpm_key(24, [192, 168, 0, 0])),
            value: num(4),
            ..Default::default()
        })
        .await;
    assert_status(r, Code::ResourceExhausted, &[]);
    c.delete(DeleteRequest {
        map: by_id(info.id),
        key: raw(&lpm_key(16, [10, 1, 0, 0])),
    })
    .await
    .unwrap();
    let v = lookup(c, by_id(info.id), at([10, 1, 9, 9]), Format::Number)
        .await
        .unwrap();
    assert_eq!(num_of(&v.value), 1);
    assert_eq!(KernelMap::from_id(info.id).len(), 2);
}

#[tokio::test]
async fn queue_pushes_peeks_and_pops_in_fifo_order() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let info = make(
        &mut t,
        create_req(MapType::Queue, &names::unique("que"), 0, 8, 3),
        "queue",
    )
    .await;
    let c = &mut t.client;
    for v in [1u64, 2, 3] {
        update(c, by_id(info.id), None, num(v)).await;
    }
    // Full: the kernel says E2BIG for a plain push.
    let r = c
        .update(UpdateRequest {
            map: by_id(info.id),
            value: num(4),
            ..Default::default()
        })
        .await;
    assert_status(r, Code::ResourceExhausted, &[]);
    let peek = lookup(c, by_id(info.id), None, Format::Number)
        .await
        .unwrap();
    assert_eq!(num_of(&peek.value), 1);
    // UPDATE_FLAG_EXIST on a full queue overwrites the oldest (BPF_EXIST).
    c.update(UpdateRequest {
        map: by_id(info.id),
        value: num(4),
        flag: UpdateFlag::Exist as i32,
        ..Default::default()
    })
    .await
    .unwrap();
    let mut popped = vec![];
    for _ in 0..3 {
        let r = c
            .lookup_and_delete(LookupAndDeleteRequest {
                map: by_id(info.id),
                key: None,
                format: Format::Number as i32,
            })
            .await
            .unwrap()
            .into_inner();
        popped.push(num_of(&r.value));
    }
    assert_eq!(popped, vec![2, 3, 4]);
    let r = c
        .lookup_and_delete(LookupAndDeleteRequest {
            map: by_id(info.id),
            key: None,
            format: 0,
        })
        .await;
    assert_status(r, Code::NotFound, &["empty"]);
    assert_status(
        lookup(c, by_id(info.id), None, Format::Raw).await,
        Code::NotFound,
        &[],
    );
}

#[tokio::test]
async fn stack_pops_in_lifo_order() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let info = make(
        &mut t,
        create_req(MapType::Stack, &names::unique("stk"), 0, 4, 8),
        "stack",
    )
    .await;
    let c = &mut t.client;
    for v in [10u64, 20, 30] {
        update(c, by_id(info.id), None, num(v)).await;
    }
    let peek = lookup(c, by_id(info.id), None, Format::Number)
        .await
        .unwrap();
    assert_eq!(num_of(&peek.value), 30);
    let mut popped = vec![];
    for _ in 0..3 {
        let r = c
            .lookup_and_delete(LookupAndDeleteRequest {
                map: by_id(info.id),
                key: None,
                format: Format::Number as i32,
            })
            .await
            .unwrap()
            .into_inner();
        popped.push(num_of(&r.value));
    }
    assert_eq!(popped, vec![30, 20, 10]);
    let r = c
        .lookup_and_delete(LookupAndDeleteRequest {
            map: by_id(info.id),
            key: None,
            format: 0,
        })
        .await;
    assert_status(r, Code::NotFound, &["empty"]);
}

#[tokio::test]
async fn bloom_filter_adds_and_tests() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let mut req = create_req(MapType::BloomFilter, &names::unique("blm"), 0, 4, 100);
    req.map_extra = 3;
    let info = make(&mut t, req, "bloom_filter").await;
    assert_eq!(info.map_extra, 3);
    assert_eq!(KernelMap::from_id(info.id).info().map_extra, 3);
    let c = &mut t.client;
    for v in [11u64, 22, 33] {
        update(c, by_id(info.id), None, num(v)).await;
    }
    let test = |v: u64| LookupRequest {
        map: by_id(info.id),
        value: num(v),
        ..Default::default()
    };
    for v in [11u64, 22, 33] {
        c.lookup(test(v))
            .await
            .unwrap_or_else(|s| panic!("{v} added but tested absent: {s:?}"));
    }
    // Never added: absent (a false positive, 3 elements in 512 bits with 3 hashes, is ~5e-6).
    assert_status(c.lookup(test(44)).await, Code::NotFound, &[]);
    assert_status(c.lookup(test(12345)).await, Code::NotFound, &[]);
}

#[tokio::test]
async fn array_of_maps_stores_inner_maps_and_returns_their_ids() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let inner = |n: &str| create_req(MapType::Array, &names::unique(n), 4, 8, 4);
    let template = create(&mut t.client, inner("tpl")).await;
    let a_req = inner("ina");
    let a_name = a_req.name.clone();
    let a = create(&mut t.client, a_req).await;
    let b = create(&mut t.client, inner("inb")).await;
    let mut req = create_req(MapType::ArrayOfMaps, &names::unique("aom"), 4, 4, 4);
    req.inner_map = by_id(template.id);
    let outer = make(&mut t, req, "array_of_maps").await;
    let c = &mut t.client;
    c.update(UpdateRequest {
        map: by_id(outer.id),
        key: num(0),
        inner_map: by_pin(a_name),
        ..Default::default()
    })
    .await
    .unwrap();
    c.update(UpdateRequest {
        map: by_id(outer.id),
        key: num(1),
        inner_map: by_id(b.id),
        ..Default::default()
    })
    .await
    .unwrap();
    let v = lookup(c, by_id(outer.id), num(0), Format::Number)
        .await
        .unwrap();
    assert_eq!(num_of(&v.value), u64::from(a.id));
    let v = lookup(c, by_id(outer.id), num(1), Format::Raw)
        .await
        .unwrap();
    assert_eq!(bytes_of(&v.value), u32b(b.id));
    let k = KernelMap::from_id(outer.id);
    assert_eq!(k.lookup(&u32b(0)), Some(u32b(a.id)));
    assert_status(
        lookup(c, by_id(outer.id), num(2), Format::Raw).await,
        Code::NotFound,
        &[],
    );
    // An inner map that does not fit the template is refused.
    let odd = create(
        c,
        create_req(MapType::Array, &names::unique("odd"), 4, 16, 4),
    )
    .await;
    let r = c
        .update(UpdateRequest {
            map: by_id(outer.id),
            key: num(2),
            inner_map: by_id(odd.id),
            ..Default::default()
        })
        .await;
    assert_status(r, Code::InvalidArgument, &[]);
    c.delete(DeleteRequest {
        map: by_id(outer.id),
        key: num(0),
    })
    .await
    .unwrap();
    assert_eq!(k.lookup(&u32b(0)), None);
}

#[tokio::test]
async fn hash_of_maps_stores_inner_maps_by_key() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let template = create(
        &mut t.client,
        create_req(MapType::Hash, &names::unique("htpl"), 4, 4, 8),
    )
    .await;
    let a = create(
        &mut t.client,
        create_req(MapType::Hash, &names::unique("hina"), 4, 4, 8),
    )
    .await;
    let mut req = create_req(MapType::HashOfMaps, &names::unique("hom"), 4, 4, 8);
    req.inner_map = by_pin(template.pins[0].clone());
    let outer = make(&mut t, req, "hash_of_maps").await;
    let c = &mut t.client;
    c.update(UpdateRequest {
        map: by_id(outer.id),
        key: num(7),
        inner_map: by_id(a.id),
        ..Default::default()
    })
    .await
    .unwrap();
    let v = lookup(c, by_id(outer.id), num(7), Format::Number)
        .await
        .unwrap();
    assert_eq!(num_of(&v.value), u64::from(a.id));
    assert_eq!(
        KernelMap::from_id(outer.id).lookup(&u32b(7)),
        Some(u32b(a.id))
    );
    let entries = dump_entries(c, by_id(outer.id), Format::Number).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(num_of(&entries[0].key), 7);
    assert_eq!(num_of(&entries[0].value), u64::from(a.id));
    c.delete(DeleteRequest {
        map: by_id(outer.id),
        key: num(7),
    })
    .await
    .unwrap();
    assert!(KernelMap::from_id(outer.id).is_empty());
}

#[tokio::test]
async fn ringbuf_is_created_and_element_ops_are_refused() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let info = make(
        &mut t,
        create_req(MapType::Ringbuf, &names::unique("rb"), 0, 0, 64 * 1024),
        "ringbuf",
    )
    .await;
    let r = lookup(&mut t.client, by_id(info.id), None, Format::Raw).await;
    assert_status(r, Code::InvalidArgument, &["ringbuf"]);
    let r = t
        .client
        .update(UpdateRequest {
            map: by_id(info.id),
            value: raw(&[1]),
            ..Default::default()
        })
        .await;
    assert_status(r, Code::InvalidArgument, &["ringbuf"]);
    // A size that is not a power of two is refused.
    let r = t
        .client
        .create_map(create_req(
            MapType::Ringbuf,
            &names::unique("rbx"),
            0,
            0,
            5000,
        ))
        .await;
    assert_status(r, Code::InvalidArgument, &[]);
}

#[tokio::test]
async fn perf_event_array_is_created_and_lookup_is_refused() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let ncpu = u32::try_from(kernel::possible_cpus()).unwrap();
    let info = make(
        &mut t,
        create_req(MapType::PerfEventArray, &names::unique("pea"), 4, 4, ncpu),
        "perf_event_array",
    )
    .await;
    let r = lookup(&mut t.client, by_id(info.id), num(0), Format::Raw).await;
    assert_status(r, Code::InvalidArgument, &["perf_event_array"]);
    // Its values are perf event fds, which no remote caller can give.
    let r = t
        .client
        .update(UpdateRequest {
            map: by_id(info.id),
            key: num(0),
            value: num(1),
            ..Default::default()
        })
        .await;
    assert_status(r, Code::InvalidArgument, &[]);
}
