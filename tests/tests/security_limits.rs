//! Configured caps (issue 4): each exceeded gives RESOURCE_EXHAUSTED and changes nothing (no
//! map, no pin, no entry written or deleted); under the cap everything works.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use bpfmap_tests::api::pb::{
    BatchDeleteRequest, BatchUpdateRequest, DeleteMapRequest, DumpRequest, DumpResponse, Entry,
    Format, MapType, PackedEntries, UpdateRequest,
};
use bpfmap_tests::api::*;
use bpfmap_tests::peer::Peer;
use bpfmap_tests::policy::{PolicyEnv, Rule};
use bpfmap_tests::{names, DaemonOptions, KernelMap, TestEnv};
use tonic::{Code, Status, Streaming};

fn with(args: &[&str]) -> DaemonOptions {
    DaemonOptions {
        extra_args: args.iter().map(|s| (*s).to_owned()).collect(),
        ..Default::default()
    }
}

/// True when some map (managed or not) has this name.
async fn exists(c: &mut Client, name: &str) -> bool {
    list(c, true).await.iter().any(|m| m.name == name)
}

#[tokio::test]
async fn max_entries_per_map() {
    let Some(mut t) = TestEnv::start_with(with(&["--max-entries-per-map", "100"])).await else {
        return;
    };
    let c = &mut t.client;
    for ty in [MapType::Hash, MapType::Array] {
        let name = names::unique("big");
        assert_status(
            c.create_map(create_req(ty, &name, 4, 8, 101)).await,
            Code::ResourceExhausted,
            &[],
        );
        assert!(!exists(c, &name).await, "the refused map exists");
        assert!(!t.fs.pin(&name).exists(), "the refused map was pinned");
        let ok = names::unique("fit");
        assert_eq!(
            create(c, create_req(ty, &ok, 4, 8, 100)).await.max_entries,
            100
        );
    }
}

#[tokio::test]
async fn max_maps_in_total() {
    let Some(mut t) = TestEnv::start_with(with(&["--max-maps", "2"])).await else {
        return;
    };
    let c = &mut t.client;
    let a = create(c, create_req(MapType::Hash, &names::unique("ma"), 4, 8, 8)).await;
    create(c, create_req(MapType::Hash, &names::unique("mb"), 4, 8, 8)).await;
    let third = names::unique("mc");
    assert_status(
        c.create_map(create_req(MapType::Hash, &third, 4, 8, 8))
            .await,
        Code::ResourceExhausted,
        &[],
    );
    assert!(!exists(c, &third).await);
    assert!(!t.fs.pin(&third).exists());
    let mut eph = create_req(MapType::Hash, &names::unique("me"), 4, 8, 8);
    eph.ephemeral = true;
    assert_status(c.create_map(eph).await, Code::ResourceExhausted, &[]);
    assert_eq!(list(c, false).await.len(), 2);
    // Freeing one makes room again.
    c.delete_map(DeleteMapRequest { map: by_id(a.id) })
        .await
        .unwrap();
    create(c, create_req(MapType::Hash, &third, 4, 8, 8)).await;
    assert!(t.fs.pin(&third).exists());
}

#[tokio::test]
async fn max_maps_per_identity() {
    let rules = [
        Rule::root_all(),
        Rule::allow(&["uid:65534"], &["all"], &["create", "read"]),
    ];
    let Some(mut e) = PolicyEnv::start(&rules, with(&["--max-maps-per-identity", "1"])).await
    else {
        return;
    };
    let c = &mut e.t.client;
    create(c, create_req(MapType::Hash, &names::unique("ra"), 4, 8, 8)).await;
    let refused = names::unique("rb");
    assert_status(
        c.create_map(create_req(MapType::Hash, &refused, 4, 8, 8))
            .await,
        Code::ResourceExhausted,
        &[],
    );
    assert!(!exists(c, &refused).await);
    // Another identity has its own allowance.
    let (p1, p2) = (names::unique("pa"), names::unique("pb"));
    let ops = [format!("create {p1} {p1}"), format!("create {p2} {p2}")];
    let ops: Vec<&str> = ops.iter().map(String::as_str).collect();
    let r = Peer::nobody().run(&e.t.daemon, &ops);
    r[0].assert_ok();
    r[1].assert_code("ResourceExhausted", &[]);
    assert!(e.t.fs.pin(&p1).exists());
    assert!(!e.t.fs.pin(&p2).exists());
    assert!(!exists(c, &p2).await);
}

#[tokio::test]
async fn max_message_bytes() {
    let Some(mut t) = TestEnv::start_with(with(&["--max-message-bytes", "4096"])).await else {
        return;
    };
    let c = &mut t.client;
    let info = create(
        c,
        create_req(MapType::Hash, &names::unique("msg"), 4, 8192, 4),
    )
    .await;
    let k = KernelMap::from_id(info.id);
    assert_status(
        c.update(UpdateRequest {
            map: by_id(info.id),
            key: raw(&u32b(1)),
            value: raw(&[7u8; 8192]),
            ..Default::default()
        })
        .await,
        Code::ResourceExhausted,
        &[],
    );
    assert!(k.is_empty(), "the oversized Update was written");
    assert_status(
        batch_update_entries(c, by_id(info.id), &[(u32b(2), vec![7u8; 8192])]).await,
        Code::ResourceExhausted,
        &[],
    );
    assert!(k.is_empty(), "the oversized BatchUpdate was written");
    // Small messages still work, also after the refusals on the same connection.
    let small = create(c, create_req(MapType::Hash, &names::unique("msm"), 4, 8, 4)).await;
    update(c, by_id(small.id), num(1), num(1)).await;
    assert_eq!(KernelMap::from_id(small.id).len(), 1);
}

fn entries(range: std::ops::Range<u32>) -> Vec<Entry> {
    range
        .map(|i| Entry {
            key: raw(&u32b(i)),
            value: raw(&u64b(u64::from(i))),
            per_cpu_values: Vec::new(),
        })
        .collect()
}

fn packed(range: std::ops::Range<u32>) -> PackedEntries {
    let mut keys = Vec::new();
    let mut values = Vec::new();
    for i in range.clone() {
        keys.extend(u32b(i));
        values.extend(u64b(u64::from(i)));
    }
    PackedEntries {
        count: range.len() as u32,
        keys: keys.into(),
        values: values.into(),
    }
}

#[tokio::test]
async fn max_batch_entries() {
    let Some(mut t) = TestEnv::start_with(with(&["--max-batch-entries", "10"])).await else {
        return;
    };
    let c = &mut t.client;
    let info = create(
        c,
        create_req(MapType::Hash, &names::unique("bat"), 4, 8, 100),
    )
    .await;
    let k = KernelMap::from_id(info.id);
    let msg = |entries: Vec<Entry>, packed: Option<PackedEntries>| BatchUpdateRequest {
        map: by_id(info.id),
        entries,
        packed,
        flag: 0,
    };
    assert_status(
        c.batch_update(tokio_stream::iter(vec![msg(entries(0..11), None)]))
            .await,
        Code::ResourceExhausted,
        &[],
    );
    assert!(k.is_empty(), "a refused BatchUpdate (entries) wrote");
    assert_status(
        c.batch_update(tokio_stream::iter(vec![msg(
            Vec::new(),
            Some(packed(0..11)),
        )]))
        .await,
        Code::ResourceExhausted,
        &[],
    );
    assert!(k.is_empty(), "a refused BatchUpdate (packed) wrote");
    // The cap is per message: two messages of 10 are fine.
    let mut second = msg(entries(10..20), None);
    second.map = None;
    let r = c
        .batch_update(tokio_stream::iter(vec![
            msg(Vec::new(), Some(packed(0..10))),
            second,
        ]))
        .await
        .unwrap();
    assert_eq!(r.into_inner().updated, 20);
    assert_eq!(k.len(), 20);

    // Dump's batch_size is capped silently; every entry still comes.
    for (packed_dump, batch_size) in [(false, 1000), (false, 0), (true, 1000)] {
        let msgs = dump(
            c,
            DumpRequest {
                map: by_id(info.id),
                format: Format::Raw as i32,
                batch_size,
                packed: packed_dump,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let mut total = 0;
        for m in &msgs {
            let n = m.entries.len() + m.packed.as_ref().map_or(0, |p| p.count as usize);
            assert!(
                n <= 10,
                "a dump message of {n} entries (batch_size {batch_size})"
            );
            total += n;
        }
        assert_eq!(total, 20, "packed {packed_dump}, batch_size {batch_size}");
    }

    let keys = |r: std::ops::Range<u32>| r.map(|i| raw(&u32b(i)).unwrap()).collect::<Vec<_>>();
    assert_status(
        c.batch_delete(BatchDeleteRequest {
            map: by_id(info.id),
            keys: keys(0..11),
        })
        .await,
        Code::ResourceExhausted,
        &[],
    );
    assert_eq!(k.len(), 20, "a refused BatchDelete deleted");
    let r = c
        .batch_delete(BatchDeleteRequest {
            map: by_id(info.id),
            keys: keys(0..10),
        })
        .await
        .unwrap();
    assert_eq!(r.into_inner().deleted, 10);
    assert_eq!(k.len(), 10);
}

/// Starts a Dump and reads its first message: Ok(stream) while it stays open, Err when the
/// daemon refused it (at the call or as the stream's first item).
async fn open_dump(c: &mut Client, id: u32) -> Result<Streaming<DumpResponse>, Status> {
    let mut s = c
        .dump(DumpRequest {
            map: by_id(id),
            format: Format::Raw as i32,
            batch_size: 1,
            ..Default::default()
        })
        .await?
        .into_inner();
    match s.message().await? {
        Some(_) => Ok(s),
        None => Err(Status::internal("the dump ended at once")),
    }
}

/// Retries [`open_dump`] for up to 5 s while it is refused with RESOURCE_EXHAUSTED (the
/// daemon notices a closed stream asynchronously).
async fn open_dump_eventually(c: &mut Client, id: u32) -> Streaming<DumpResponse> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match open_dump(c, id).await {
            Ok(s) => return s,
            Err(s) if s.code() == Code::ResourceExhausted && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(s) => panic!("a dump within the limit was refused: {s:?}"),
        }
    }
}

#[tokio::test]
async fn max_streams_per_identity() {
    let rules = [
        Rule::root_all(),
        Rule::allow(&["anonymous"], &["all"], &["read"]),
    ];
    let mut opts = with(&["--max-streams-per-identity", "2"]);
    opts.tcp = true;
    let Some(mut e) = PolicyEnv::start(&rules, opts).await else {
        return;
    };
    // 8192 × 4 KiB = 32 MiB: far more than HTTP/2 flow control lets the daemon send ahead,
    // so a dump whose reader stalls stays open in the daemon.
    let info = create(
        &mut e.t.client,
        create_req(MapType::Array, &names::unique("str"), 4, 4096, 8192),
    )
    .await;
    let id = info.id;
    let d = &e.t.daemon;
    // Each stream on its own connection.
    let (mut c1, mut c2, mut c3) = (d.client().await, d.client().await, d.client().await);
    let s1 = open_dump(&mut c1, id).await.expect("first dump");
    let s2 = open_dump(&mut c2, id).await.expect("second dump");
    assert_status(open_dump(&mut c3, id).await, Code::ResourceExhausted, &[]);
    // Another identity is not affected.
    let mut anon = d.tcp_client().await;
    let s_anon = open_dump(&mut anon, id).await.expect("anonymous dump");
    drop(s_anon);

    // Closing one makes room for one.
    drop(s1);
    let s3 = open_dump_eventually(&mut c3, id).await;
    assert_status(open_dump(&mut c1, id).await, Code::ResourceExhausted, &[]);

    // A BatchUpdate stream counts too: with one dump closed and a BatchUpdate held open,
    // a new dump is refused; once the BatchUpdate ends, it is not.
    drop(s3);
    let mut held = open_dump_eventually(&mut c3, id).await; // 2 open: s2 + held
    drop(s2);
    // Start a BatchUpdate and keep its request stream open. Until the daemon has noticed
    // that s2 closed, it is refused at once: retry then.
    let deadline = Instant::now() + Duration::from_secs(5);
    let (tx, batch) = loop {
        let (tx, rx) = tokio::sync::mpsc::channel::<BatchUpdateRequest>(4);
        tx.send(BatchUpdateRequest {
            map: by_id(id),
            entries: vec![Entry {
                key: raw(&u32b(1)),
                value: raw(&[1u8; 4096]),
                per_cpu_values: Vec::new(),
            }],
            packed: None,
            flag: 0,
        })
        .await
        .unwrap();
        let mut cb = d.client().await;
        let batch = tokio::spawn(async move {
            cb.batch_update(tokio_stream::wrappers::ReceiverStream::new(rx))
                .await
                .map(|r| r.into_inner().updated)
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        if !batch.is_finished() {
            break (tx, batch);
        }
        let r = batch.await.unwrap();
        assert!(
            matches!(&r, Err(s) if s.code() == Code::ResourceExhausted)
                && Instant::now() < deadline,
            "a BatchUpdate within the limit: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Wait until the BatchUpdate is counted (the dump slot fills), then check the refusal.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match open_dump(&mut c1, id).await {
            Err(s) if s.code() == Code::ResourceExhausted => break,
            Err(s) => panic!("unexpected {s:?}"),
            Ok(s) => {
                drop(s);
                assert!(
                    Instant::now() < deadline,
                    "an open BatchUpdate stream is not counted against the limit"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    drop(tx);
    assert_eq!(batch.await.unwrap().unwrap(), 1);
    let s4 = open_dump_eventually(&mut c1, id).await;
    // The held dump still works: read a few more messages.
    for _ in 0..3 {
        assert!(held.message().await.unwrap().is_some());
    }
    drop((s4, held));
}
