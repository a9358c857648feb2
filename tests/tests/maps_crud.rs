//! Map-level RPCs: CreateMap, GetMap, ListMaps, DeleteMap, PinMap, UnpinMap, FreezeMap,
//! checked against the kernel (bpftool, direct reads) and the bpffs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bpfmap_tests::api::pb::{
    DeleteMapRequest, Format, FreezeMapRequest, GetMapRequest, MapType, PinMapRequest,
    UnpinMapRequest, UpdateRequest,
};
use bpfmap_tests::api::*;
use bpfmap_tests::{bpftool, kernel, names, KernelMap, TestEnv};
use tonic::Code;

#[tokio::test]
async fn create_hash_pins_under_root_and_matches_the_kernel() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let name = names::unique("crud");
    let info = create(&mut t.client, create_req(MapType::Hash, &name, 4, 8, 64)).await;
    let pin = t.fs.pin(&name);
    assert_eq!(info.name, name);
    assert_eq!(info.r#type, MapType::Hash as i32);
    assert_eq!(
        (info.key_size, info.value_size, info.max_entries),
        (4, 8, 64)
    );
    assert!(info.managed && !info.ephemeral && !info.frozen);
    assert_eq!(info.pins, vec![pin.to_string_lossy().into_owned()]);
    assert!(pin.exists(), "no pin at {}", pin.display());

    let show = bpftool::show_pinned(&pin);
    assert_eq!(show.id, info.id);
    assert_eq!(show.type_name, "hash");
    assert_eq!(show.name, name);
    assert_eq!(
        (show.key_size, show.value_size, show.max_entries),
        (4, 8, 64)
    );

    for r in [
        by_id(info.id),
        by_pin(name.clone()),
        by_name(name.clone()),
        by_pin(pin.to_string_lossy()),
    ] {
        let got = get(&mut t.client, r).await;
        assert_eq!(got.id, info.id);
        assert_eq!(got.name, name);
        assert!(got.managed);
    }
}

#[tokio::test]
async fn create_with_pin_and_flags_sets_what_the_kernel_reports() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let name = names::unique("crudf");
    let pin_rel = format!("p_{name}");
    let mut req = create_req(MapType::Hash, &name, 8, 16, 32);
    req.pin = pin_rel.clone();
    req.flags = 1; // BPF_F_NO_PREALLOC
    let info = create(&mut t.client, req).await;
    let pin = t.fs.pin(&pin_rel);
    assert_eq!(info.pins, vec![pin.to_string_lossy().into_owned()]);
    assert!(
        !t.fs.pin(&name).exists(),
        "pinned at the name although a pin was given"
    );
    let k = KernelMap::from_pin(&pin).info();
    assert_eq!(k.id, info.id);
    assert_eq!(k.flags & 1, 1, "BPF_F_NO_PREALLOC not passed to the kernel");
    assert_eq!(info.flags & 1, 1);
}

#[tokio::test]
async fn list_maps_shows_managed_maps_and_with_all_the_foreign_ones() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let a = create(
        &mut t.client,
        create_req(MapType::Hash, &names::unique("la"), 4, 4, 8),
    )
    .await;
    let b = create(
        &mut t.client,
        create_req(MapType::Array, &names::unique("lb"), 4, 4, 8),
    )
    .await;
    let foreign_name = names::unique("lf");
    let foreign = bpftool::create_map(&t.fs.path().join("f"), "hash", 4, 4, 8, &foreign_name, 0);

    let managed = list(&mut t.client, false).await;
    let ids: Vec<u32> = managed.iter().map(|m| m.id).collect();
    assert!(ids.contains(&a.id) && ids.contains(&b.id), "{ids:?}");
    assert!(
        !ids.contains(&foreign.id),
        "a foreign map listed as managed"
    );
    assert!(managed.iter().all(|m| m.managed));

    let all = list(&mut t.client, true).await;
    let find = |id: u32| all.iter().find(|m| m.id == id);
    assert!(find(a.id).unwrap().managed);
    assert!(find(b.id).unwrap().managed);
    let f = find(foreign.id).expect("foreign map missing from ListMaps{all}");
    assert!(!f.managed);
    assert_eq!(f.name, foreign_name);
    assert_eq!(f.r#type, MapType::Hash as i32);
}

#[tokio::test]
async fn delete_map_removes_the_pins_and_frees_the_map() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let name = names::unique("del");
    let info = create(&mut t.client, create_req(MapType::Hash, &name, 4, 4, 8)).await;
    let extra = format!("x_{name}");
    t.client
        .pin_map(PinMapRequest {
            map: by_id(info.id),
            pin: extra.clone(),
        })
        .await
        .unwrap();
    let resp = t
        .client
        .delete_map(DeleteMapRequest {
            map: by_id(info.id),
        })
        .await
        .unwrap()
        .into_inner();
    let mut removed = resp.removed_pins.clone();
    removed.sort();
    let mut want = vec![
        t.fs.pin(&name).to_string_lossy().into_owned(),
        t.fs.pin(&extra).to_string_lossy().into_owned(),
    ];
    want.sort();
    assert_eq!(removed, want);
    assert!(!t.fs.pin(&name).exists() && !t.fs.pin(&extra).exists());
    assert_status(
        t.client
            .get_map(GetMapRequest {
                map: by_id(info.id),
            })
            .await,
        Code::NotFound,
        &[],
    );
    assert!(!list(&mut t.client, false)
        .await
        .iter()
        .any(|m| m.id == info.id));
    // Nothing holds it any more: the kernel frees it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while kernel::map_exists(info.id) && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        !kernel::map_exists(info.id),
        "map {} still alive after DeleteMap",
        info.id
    );
    assert_status(
        t.client
            .delete_map(DeleteMapRequest {
                map: by_id(info.id),
            })
            .await,
        Code::NotFound,
        &[],
    );
}

#[tokio::test]
async fn pin_and_unpin_manage_extra_pins() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let name = names::unique("pin");
    let info = create(&mut t.client, create_req(MapType::Hash, &name, 4, 4, 8)).await;
    let other = format!("o_{name}");
    let other_abs = t.fs.pin(&other).to_string_lossy().into_owned();
    let pinned = t
        .client
        .pin_map(PinMapRequest {
            map: by_name(name.clone()),
            pin: other.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(pinned.id, info.id);
    assert!(pinned.pins.contains(&other_abs), "{:?}", pinned.pins);
    assert_eq!(pinned.pins.len(), 2);
    assert_eq!(bpftool::show_pinned(&t.fs.pin(&other)).id, info.id);
    // Reachable through the new pin.
    assert_eq!(get(&mut t.client, by_pin(other.clone())).await.id, info.id);

    assert_status(
        t.client
            .pin_map(PinMapRequest {
                map: by_id(info.id),
                pin: other.clone(),
            })
            .await,
        Code::AlreadyExists,
        &[],
    );

    t.client
        .unpin_map(UnpinMapRequest { pin: other.clone() })
        .await
        .unwrap();
    assert!(!t.fs.pin(&other).exists());
    let after = get(&mut t.client, by_id(info.id)).await;
    assert_eq!(
        after.pins,
        vec![t.fs.pin(&name).to_string_lossy().into_owned()]
    );
    assert_status(
        t.client.unpin_map(UnpinMapRequest { pin: other }).await,
        Code::NotFound,
        &[],
    );
}

#[tokio::test]
async fn freeze_blocks_writes_and_keeps_reads() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let name = names::unique("frz");
    let info = create(&mut t.client, create_req(MapType::Hash, &name, 4, 8, 8)).await;
    update(&mut t.client, by_id(info.id), raw(&u32b(1)), raw(&u64b(11))).await;
    let frozen = t
        .client
        .freeze_map(FreezeMapRequest {
            map: by_id(info.id),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(frozen.frozen);
    assert!(get(&mut t.client, by_id(info.id)).await.frozen);
    assert!(
        bpftool::show_id(info.id).frozen,
        "kernel does not report the map frozen"
    );

    let r = t
        .client
        .update(UpdateRequest {
            map: by_id(info.id),
            key: raw(&u32b(2)),
            value: raw(&u64b(22)),
            ..Default::default()
        })
        .await;
    assert_status(r, Code::FailedPrecondition, &["frozen"]);
    let r = t
        .client
        .delete(bpfmap_tests::api::pb::DeleteRequest {
            map: by_id(info.id),
            key: raw(&u32b(1)),
        })
        .await;
    assert_status(r, Code::FailedPrecondition, &["frozen"]);
    let v = lookup(&mut t.client, by_id(info.id), raw(&u32b(1)), Format::Number)
        .await
        .unwrap();
    assert_eq!(num_of(&v.value), 11);
    assert_eq!(KernelMap::from_id(info.id).len(), 1);
}

#[tokio::test]
async fn create_map_errors_are_invalid_argument_or_already_exists() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let c = &mut t.client;
    let name = names::unique("cerr");
    assert_status(
        c.create_map(create_req(MapType::Unspec, &name, 4, 4, 8))
            .await,
        Code::InvalidArgument,
        &[],
    );
    let mut unknown = create_req(MapType::Hash, &name, 4, 4, 8);
    unknown.r#type = 9999;
    assert_status(c.create_map(unknown).await, Code::InvalidArgument, &[]);
    assert_status(
        c.create_map(create_req(MapType::Hash, &name, 0, 4, 8))
            .await,
        Code::InvalidArgument,
        &[],
    );
    assert_status(
        c.create_map(create_req(MapType::Hash, "bad-name!", 4, 4, 8))
            .await,
        Code::InvalidArgument,
        &[],
    );
    assert_status(
        c.create_map(create_req(MapType::Hash, "name_is_16_chars", 4, 4, 8))
            .await,
        Code::InvalidArgument,
        &[],
    );
    // An LPM trie needs BPF_F_NO_PREALLOC.
    assert_status(
        c.create_map(create_req(MapType::LpmTrie, &names::unique("lpm"), 8, 8, 8))
            .await,
        Code::InvalidArgument,
        &[],
    );
    // Nothing was pinned by the failures.
    let leftovers: Vec<_> = std::fs::read_dir(t.fs.root())
        .map(|d| d.filter_map(Result::ok).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "failed creates left {leftovers:?}");

    let first = create(c, create_req(MapType::Hash, &name, 4, 4, 8)).await;
    assert_status(
        c.create_map(create_req(MapType::Hash, &name, 4, 4, 8))
            .await,
        Code::AlreadyExists,
        &[],
    );
    // The first map still owns the pin.
    assert_eq!(bpftool::show_pinned(&t.fs.pin(&name)).id, first.id);
}

#[tokio::test]
async fn pin_paths_that_leave_the_allowed_tree_are_refused() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let name = names::unique("esc");
    let info = create(&mut t.client, create_req(MapType::Hash, &name, 4, 4, 8)).await;
    // A map in the same bpffs but outside the daemon's root.
    let outside = t.fs.path().join("outside");
    let foreign = bpftool::create_map(&outside, "hash", 4, 4, 8, &names::unique("out"), 0);
    // Absolute paths inside a bpffs are fine.
    assert_eq!(
        get(&mut t.client, by_pin(outside.to_string_lossy()))
            .await
            .id,
        foreign.id
    );
    let refused = |s: tonic::Status| {
        assert!(
            matches!(s.code(), Code::InvalidArgument | Code::PermissionDenied),
            "expected a refusal, got {s:?}"
        );
    };
    // Relative paths may not climb out of the root.
    let r = t
        .client
        .get_map(GetMapRequest {
            map: by_pin("../outside"),
        })
        .await;
    refused(r.expect_err("../outside accepted"));
    let r = t
        .client
        .get_map(GetMapRequest {
            map: by_pin(format!("{name}/../../outside")),
        })
        .await;
    refused(r.expect_err("climbing .. accepted"));
    // Absolute paths must lie in a bpffs.
    let plain = t.fs.tmp().join("plain_file");
    std::fs::write(&plain, b"not a map").unwrap();
    let r = t
        .client
        .get_map(GetMapRequest {
            map: by_pin(plain.to_string_lossy()),
        })
        .await;
    refused(r.expect_err("a path outside any bpffs accepted"));
    // A symlink under the root that points out of bpffs.
    let link = t.fs.root().join("lnk");
    std::os::unix::fs::symlink(&plain, &link).unwrap();
    let r = t.client.get_map(GetMapRequest { map: by_pin("lnk") }).await;
    refused(r.expect_err("a symlink out of the bpffs accepted"));
    // Pinning outside the root through .. is refused and creates nothing.
    let r = t
        .client
        .pin_map(PinMapRequest {
            map: by_id(info.id),
            pin: "../escaped".into(),
        })
        .await;
    refused(r.expect_err("PinMap ../escaped accepted"));
    assert!(!t.fs.path().join("escaped").exists());
}
