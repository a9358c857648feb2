//! The `bpfmap_client` library against the real daemon, control side: connecting, managing
//! maps, element calls, and each error code as a typed `Error`; checked against the kernel
//! (direct reads) and bpftool. The data side (POD, per-CPU, dumps, batches) is in
//! client_lib_data.rs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use bpfmap_client::{
    Client, ConnectOptions, CreateMap, Data, Flag, MapRef, MapType, TlsOptions, Value,
};
use bpfmap_tests::{bpftool, names, DaemonOptions, KernelMap, TestEnv};
use tonic::Code;

async fn start() -> Option<(TestEnv, Client)> {
    let t = TestEnv::start().await?;
    let c = Client::connect(&t.daemon.unix_addr()).await.unwrap();
    Some((t, c))
}

fn u32b(n: u32) -> Vec<u8> {
    n.to_ne_bytes().to_vec()
}

fn u64b(n: u64) -> Vec<u8> {
    n.to_ne_bytes().to_vec()
}

#[tokio::test]
async fn connects_by_every_address_form() {
    let Some(t) = TestEnv::start_with(DaemonOptions {
        tcp: true,
        ..Default::default()
    })
    .await
    else {
        return;
    };
    let tcp = t.daemon.tcp_addr().unwrap();
    for addr in [
        t.daemon.unix_addr(),
        format!("unix://{}", t.daemon.socket().display()),
        tcp.to_string(),
        format!("http://{tcp}"),
    ] {
        let c = Client::connect(&addr).await.unwrap();
        assert_eq!(c.address(), addr);
        c.list_maps(false).await.unwrap();
    }
    let opts = ConnectOptions::default().request_timeout(std::time::Duration::from_secs(5));
    let c = Client::connect_with(&t.daemon.unix_addr(), &opts)
        .await
        .unwrap();
    c.list_maps(true).await.unwrap();
    // The generated client, for the raw API.
    let mut raw = bpfmap_client::connect(&t.daemon.unix_addr()).await.unwrap();
    raw.list_maps(bpfmap_client::proto::ListMapsRequest { all: false })
        .await
        .unwrap();

    // BPFMAP_SERVER is the default address.
    std::env::set_var("BPFMAP_SERVER", t.daemon.unix_addr());
    let c = Client::from_env().await.unwrap();
    std::env::remove_var("BPFMAP_SERVER");
    assert_eq!(c.address(), t.daemon.unix_addr());
    c.list_maps(false).await.unwrap();

    // Failures are typed.
    let e = Client::connect("unix:/nonexistent/bpfmapd.sock")
        .await
        .unwrap_err();
    assert!(e.is_unavailable() && e.code() == Code::Unavailable, "{e}");
    let e = Client::connect("ftp://host:1").await.unwrap_err();
    assert!(e.is_invalid_argument(), "{e}");
    // TLS against a plain-text port fails the handshake.
    let e = Client::connect_with(
        &format!("https://{tcp}"),
        &ConnectOptions::default()
            .tls(TlsOptions::new().domain("localhost"))
            .connect_timeout(std::time::Duration::from_secs(3)),
    )
    .await
    .unwrap_err();
    assert!(e.is_unavailable(), "{e}");
}

#[tokio::test]
async fn manages_maps() {
    let Some((t, c)) = start().await else {
        return;
    };
    let name = names::unique("lib");
    let info = c
        .create_map(CreateMap::hash(&name, 4, 8, 16))
        .await
        .unwrap();
    let pin = t.fs.pin(&name);
    assert_eq!(info.name, name);
    assert_eq!(info.r#type(), MapType::Hash);
    assert_eq!(
        (info.key_size, info.value_size, info.max_entries),
        (4, 8, 16)
    );
    assert!(info.managed && !info.frozen && !info.ephemeral);
    assert_eq!(info.pins, [pin.display().to_string()]);
    assert_eq!(bpftool::show_pinned(&pin).id, info.id);

    for r in [
        MapRef::from(info.id),
        MapRef::pin(&name),
        MapRef::pin(pin.display().to_string()),
        MapRef::name(&name),
        name.parse().unwrap(),
        format!("id:{}", info.id).parse().unwrap(),
        MapRef::from(&info),
    ] {
        assert_eq!(c.get_map(&r).await.unwrap().id, info.id, "{r}");
    }

    let fname = names::unique("libf");
    let foreign = bpftool::create_map(&t.fs.path().join(&fname), "array", 4, 4, 2, &fname, 0);
    let managed: BTreeSet<u32> = c
        .list_maps(false)
        .await
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    assert!(managed.contains(&info.id) && !managed.contains(&foreign.id));
    let all = c.list_maps(true).await.unwrap();
    let f = all.iter().find(|m| m.id == foreign.id).unwrap();
    assert!(!f.managed);
    assert_eq!(
        c.get_map(MapRef::name(&fname)).await.unwrap().id,
        foreign.id
    );

    // Pins.
    let extra = format!("{name}_x");
    let pinned = c.pin_map(&MapRef::from(info.id), &extra).await.unwrap();
    assert!(pinned
        .pins
        .contains(&t.fs.pin(&extra).display().to_string()));
    assert_eq!(bpftool::show_pinned(&t.fs.pin(&extra)).id, info.id);
    let e = c.pin_map(info.id, &extra).await.unwrap_err();
    assert!(e.is_already_exists(), "{e}");
    c.unpin_map(&extra).await.unwrap();
    assert!(!t.fs.pin(&extra).exists());
    assert!(c.unpin_map(&extra).await.unwrap_err().is_not_found());

    // Freeze.
    let frozen = c.freeze_map(info.id).await.unwrap();
    assert!(frozen.frozen);
    assert!(bpftool::show_pinned(&pin).frozen);

    // Ephemeral maps have no pin.
    let eph = c
        .create_map(CreateMap::queue(names::unique("libe"), 4, 4).ephemeral(true))
        .await
        .unwrap();
    assert!(eph.ephemeral && eph.pins.is_empty());
    assert_eq!(eph.key_size, 0);

    // Delete.
    let removed = c.delete_map(MapRef::name(&name)).await.unwrap();
    assert_eq!(removed, [pin.display().to_string()]);
    assert!(!pin.exists());
    let e = c.get_map(MapRef::pin(&name)).await.unwrap_err();
    assert!(e.is_not_found(), "{e}");
    c.delete_map(eph.id).await.unwrap();
    assert!(c.get_map(eph.id).await.unwrap_err().is_not_found());
}

#[tokio::test]
async fn element_calls() {
    let Some((t, c)) = start().await else {
        return;
    };
    let name = names::unique("libel");
    let info = c
        .create_map(CreateMap::hash(&name, 4, 8, 64))
        .await
        .unwrap();
    let map = MapRef::from(info.id);
    let k = KernelMap::from_pin(&t.fs.pin(&name));

    c.update(&map, &u32b(1), &u64b(10), Flag::Any)
        .await
        .unwrap();
    c.update(&map, 2u32.to_ne_bytes(), u64b(20), Flag::NoExist)
        .await
        .unwrap();
    c.update(&map, &3u32.to_ne_bytes(), Data::number(30), Flag::Any)
        .await
        .unwrap();
    c.update(&map, Data::hex("04 00 00 00"), &u64b(40)[..], Flag::Any)
        .await
        .unwrap();
    assert_eq!(k.lookup(&u32b(3)), Some(u64b(30)));
    assert_eq!(k.lookup(&u32b(4)), Some(u64b(40)));
    assert_eq!(c.lookup(&map, &u32b(1)).await.unwrap(), u64b(10));
    assert_eq!(
        c.lookup_value(&map, &u32b(2)).await.unwrap(),
        Value::Single(u64b(20))
    );
    c.update(&map, &u32b(1), &u64b(11), Flag::Exist)
        .await
        .unwrap();
    assert_eq!(k.lookup(&u32b(1)), Some(u64b(11)));

    // Walk the keys.
    let mut order: Vec<Vec<u8>> = Vec::new();
    loop {
        match c.get_next_key(&map, order.last().map(Vec::as_slice)).await {
            Ok(next) => order.push(next),
            Err(e) if e.is_not_found() => break,
            Err(e) => panic!("{e}"),
        }
    }
    let keys: BTreeSet<Vec<u8>> = order.iter().cloned().collect();
    let expect: BTreeSet<Vec<u8>> = (1..=4).map(u32b).collect();
    assert_eq!(keys, expect);
    assert_eq!(order.len(), 4);
    // The key in number form names the same key.
    let first = u32::from_ne_bytes(order[0].clone().try_into().unwrap());
    let after_first = c
        .get_next_key_with(&map, Some(Data::number(u64::from(first))))
        .await
        .unwrap();
    assert_eq!(after_first, order[1]);

    assert_eq!(
        c.lookup_and_delete(&map, &u32b(4)).await.unwrap(),
        Value::Single(u64b(40))
    );
    assert_eq!(k.lookup(&u32b(4)), None);
    c.delete(&map, &u32b(3)).await.unwrap();
    assert_eq!(k.len(), 2);
}

#[tokio::test]
async fn every_error_code_is_typed() {
    let Some((t, c)) = start().await else {
        return;
    };
    let name = names::unique("liber");
    let info = c.create_map(CreateMap::hash(&name, 4, 8, 2)).await.unwrap();
    let map = MapRef::from(info.id);

    // NOT_FOUND: key, map, past the last key, empty queue.
    let e = c.lookup(&map, &u32b(9)).await.unwrap_err();
    assert!(e.is_not_found() && e.code() == Code::NotFound, "{e}");
    assert!(e.to_string().starts_with("NOT_FOUND: "), "{e}");
    assert_eq!(e.status().map(tonic::Status::code), Some(Code::NotFound));
    assert!(c.get_map(u32::MAX).await.unwrap_err().is_not_found());
    assert!(c
        .get_map(MapRef::name(names::unique("none")))
        .await
        .unwrap_err()
        .is_not_found());
    assert!(c.get_next_key(&map, None).await.unwrap_err().is_not_found());
    assert!(c
        .update(&map, &u32b(9), &u64b(1), Flag::Exist)
        .await
        .unwrap_err()
        .is_not_found());
    assert!(c.delete(&map, &u32b(9)).await.unwrap_err().is_not_found());

    // ALREADY_EXISTS.
    c.update(&map, &u32b(1), &u64b(1), Flag::Any).await.unwrap();
    let e = c
        .update(&map, &u32b(1), &u64b(2), Flag::NoExist)
        .await
        .unwrap_err();
    assert!(e.is_already_exists(), "{e}");

    // INVALID_ARGUMENT: wrong sizes (the message names both), bad hex, unsupported op.
    let e = c.lookup(&map, &[1u8, 2]).await.unwrap_err();
    assert!(e.is_invalid_argument(), "{e}");
    assert!(
        e.message().contains('4') && e.message().contains('2'),
        "{e}"
    );
    let e = c
        .update(&map, &u32b(2), &u32b(2), Flag::Any)
        .await
        .unwrap_err();
    assert!(e.is_invalid_argument(), "{e}");
    let e = c
        .update(&map, Data::hex("zz"), &u64b(2), Flag::Any)
        .await
        .unwrap_err();
    assert!(e.is_invalid_argument(), "{e}");
    let arr = c
        .create_map(CreateMap::array(names::unique("libea"), 4, 2))
        .await
        .unwrap();
    let e = c.delete(arr.id, &u32b(0)).await.unwrap_err();
    assert!(e.is_invalid_argument(), "delete on an array: {e}");
    assert!(e.message().contains("array"), "{e}");

    // RESOURCE_EXHAUSTED: full map.
    c.update(&map, &u32b(2), &u64b(2), Flag::Any).await.unwrap();
    let e = c
        .update(&map, &u32b(3), &u64b(3), Flag::Any)
        .await
        .unwrap_err();
    assert!(e.is_resource_exhausted(), "{e}");

    // FAILED_PRECONDITION: frozen map, ambiguous name.
    c.freeze_map(&map).await.unwrap();
    let e = c
        .update(&map, &u32b(1), &u64b(5), Flag::Any)
        .await
        .unwrap_err();
    assert!(e.is_failed_precondition(), "{e}");
    let twin = names::unique("libtw");
    let a = c
        .create_map(CreateMap::hash(&twin, 4, 4, 1).pin(format!("{twin}_a")))
        .await
        .unwrap();
    let b = c
        .create_map(CreateMap::hash(&twin, 4, 4, 1).pin(format!("{twin}_b")))
        .await
        .unwrap();
    let e = c.get_map(MapRef::name(&twin)).await.unwrap_err();
    assert!(e.is_failed_precondition(), "{e}");
    assert!(
        e.message().contains(&a.id.to_string()) && e.message().contains(&b.id.to_string()),
        "the message lists the ids: {e}"
    );
    drop(t);
}

#[tokio::test]
async fn tcp_callers_may_only_read() {
    // Anonymous TCP callers get nothing by default; this policy lets them read.
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        "[[rule]]\nwho = [\"uid:0\"]\nmaps = [\"all\"]\nallow = [\"read\", \"write\", \"create\", \"admin\"]\n\n\
         [[rule]]\nwho = [\"anonymous\"]\nmaps = [\"managed\"]\nallow = [\"read\"]\n",
    )
    .unwrap();
    let Some(t) = TestEnv::start_with(DaemonOptions {
        tcp: true,
        extra_args: vec!["--policy".into(), policy.display().to_string()],
        ..Default::default()
    })
    .await
    else {
        return;
    };
    let local = Client::connect(&t.daemon.unix_addr()).await.unwrap();
    let name = names::unique("libtcp");
    let info = local
        .create_map(CreateMap::hash(&name, 4, 4, 4))
        .await
        .unwrap();
    let remote = Client::connect(&t.daemon.tcp_addr().unwrap().to_string())
        .await
        .unwrap();
    assert_eq!(remote.get_map(info.id).await.unwrap().id, info.id);
    let e = remote
        .update(info.id, &u32b(1), &u32b(1), Flag::Any)
        .await
        .unwrap_err();
    assert!(e.is_permission_denied(), "{e}");
    let e = remote
        .create_map(CreateMap::hash(names::unique("libtcp"), 4, 4, 4))
        .await
        .unwrap_err();
    assert!(e.is_permission_denied(), "{e}");
}
