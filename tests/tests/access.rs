//! Access control without a policy file (issue 4's default): uid 0 over the Unix socket may
//! do everything and nobody else anything: TCP loopback callers (anonymous) and other Unix
//! peers (SO_PEERCRED) are refused. With a policy that grants anonymous callers read access,
//! TCP callers may read, and still not write.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use bpfmap_client::proto_crate::hex;
use bpfmap_tests::api::pb::{
    BatchDeleteRequest, DeleteMapRequest, DeleteRequest, DumpRequest, Format, FreezeMapRequest,
    GetNextKeyRequest, LookupAndDeleteRequest, MapType, PinMapRequest, UnpinMapRequest,
    UpdateRequest,
};
use bpfmap_tests::api::*;
use bpfmap_tests::peer::Peer;
use bpfmap_tests::policy::{PolicyEnv, Rule};
use bpfmap_tests::{names, DaemonOptions, KernelMap, TestEnv};
use tonic::Code;

#[tokio::test]
async fn tcp_callers_are_refused_everything_without_a_policy() {
    let Some(mut t) = TestEnv::start_with(DaemonOptions {
        tcp: true,
        ..Default::default()
    })
    .await
    else {
        return;
    };
    let name = names::unique("tcpn");
    let info = create(&mut t.client, create_req(MapType::Hash, &name, 4, 8, 8)).await;
    update(&mut t.client, by_id(info.id), num(1), num(10)).await;
    let mut tcp = t.daemon.tcp_client().await;
    let denied = Code::PermissionDenied;
    // ListMaps may answer (filtered to nothing) or refuse; either way no map shows.
    match tcp.list_maps(pb::ListMapsRequest { all: true }).await {
        Ok(r) => assert!(
            r.into_inner().maps.is_empty(),
            "anonymous ListMaps shows maps"
        ),
        Err(s) => assert_eq!(s.code(), denied, "{s:?}"),
    }
    assert_status(
        tcp.get_map(pb::GetMapRequest {
            map: by_id(info.id),
        })
        .await,
        denied,
        &["GetMap", "read"],
    );
    assert_status(
        lookup(&mut tcp, by_id(info.id), num(1), Format::Number).await,
        denied,
        &["Lookup", "read"],
    );
    assert_status(
        tcp.get_next_key(GetNextKeyRequest {
            map: by_id(info.id),
            key: None,
            format: 0,
        })
        .await,
        denied,
        &["GetNextKey", "read"],
    );
    assert_status(
        dump(
            &mut tcp,
            DumpRequest {
                map: by_id(info.id),
                ..Default::default()
            },
        )
        .await,
        denied,
        &["Dump", "read"],
    );
    assert_status(
        tcp.update(UpdateRequest {
            map: by_id(info.id),
            key: num(2),
            value: num(2),
            ..Default::default()
        })
        .await,
        denied,
        &["Update", "write"],
    );
    assert_status(
        tcp.create_map(create_req(MapType::Hash, &names::unique("tcpn"), 4, 8, 8))
            .await,
        denied,
        &["CreateMap", "create"],
    );
    assert_eq!(
        KernelMap::from_id(info.id)
            .entries()
            .into_iter()
            .collect::<Vec<_>>(),
        vec![(u32b(1), u64b(10))]
    );
}

#[tokio::test]
async fn tcp_callers_may_read_what_the_policy_grants_but_not_write() {
    // The example: anonymous callers read everything and may not write, create or
    // administer.
    let rules = [
        Rule::root_all(),
        Rule::allow(&["anonymous"], &["all"], &["read"]),
        Rule::deny(&["anonymous"], &["all"], &["write", "create", "admin"]),
    ];
    let Some(e) = PolicyEnv::start(
        &rules,
        DaemonOptions {
            tcp: true,
            ..Default::default()
        },
    )
    .await
    else {
        return;
    };
    let mut t = e.t;
    let name = names::unique("tcp");
    let info = create(&mut t.client, create_req(MapType::Hash, &name, 4, 8, 8)).await;
    update(&mut t.client, by_id(info.id), num(1), num(10)).await;
    let k = KernelMap::from_id(info.id);
    let mut tcp = t.daemon.tcp_client().await;

    // Reads.
    assert!(list(&mut tcp, false).await.iter().any(|m| m.id == info.id));
    assert_eq!(get(&mut tcp, by_name(name.clone())).await.id, info.id);
    let v = lookup(&mut tcp, by_id(info.id), num(1), Format::Number)
        .await
        .unwrap();
    assert_eq!(num_of(&v.value), 10);
    tcp.get_next_key(GetNextKeyRequest {
        map: by_id(info.id),
        key: None,
        format: 0,
    })
    .await
    .unwrap();
    assert_eq!(
        dump_entries(&mut tcp, by_id(info.id), Format::Raw)
            .await
            .len(),
        1
    );

    // Writes.
    let denied = Code::PermissionDenied;
    assert_status(
        tcp.create_map(create_req(MapType::Hash, &names::unique("tcpw"), 4, 8, 8))
            .await,
        denied,
        &[],
    );
    assert_status(
        tcp.update(UpdateRequest {
            map: by_id(info.id),
            key: num(2),
            value: num(2),
            ..Default::default()
        })
        .await,
        denied,
        &[],
    );
    assert_status(
        tcp.delete(DeleteRequest {
            map: by_id(info.id),
            key: num(1),
        })
        .await,
        denied,
        &[],
    );
    assert_status(
        tcp.lookup_and_delete(LookupAndDeleteRequest {
            map: by_id(info.id),
            key: num(1),
            format: 0,
        })
        .await,
        denied,
        &[],
    );
    assert_status(
        tcp.batch_delete(BatchDeleteRequest {
            map: by_id(info.id),
            keys: vec![num(1).unwrap()],
        })
        .await,
        denied,
        &[],
    );
    assert_status(
        batch_update_entries(&mut tcp, by_id(info.id), &[(u32b(3), u64b(3))]).await,
        denied,
        &[],
    );
    assert_status(
        dump(
            &mut tcp,
            DumpRequest {
                map: by_id(info.id),
                delete: true,
                ..Default::default()
            },
        )
        .await,
        denied,
        &[],
    );
    assert_status(
        tcp.pin_map(PinMapRequest {
            map: by_id(info.id),
            pin: format!("t_{name}"),
        })
        .await,
        denied,
        &[],
    );
    assert_status(
        tcp.unpin_map(UnpinMapRequest { pin: name.clone() }).await,
        denied,
        &[],
    );
    assert_status(
        tcp.freeze_map(FreezeMapRequest {
            map: by_id(info.id),
        })
        .await,
        denied,
        &[],
    );
    assert_status(
        tcp.delete_map(DeleteMapRequest {
            map: by_id(info.id),
        })
        .await,
        denied,
        &[],
    );

    // Nothing changed.
    assert_eq!(
        k.entries().into_iter().collect::<Vec<_>>(),
        vec![(u32b(1), u64b(10))]
    );
    let after = get(&mut t.client, by_id(info.id)).await;
    assert!(!after.frozen);
    assert_eq!(
        after.pins,
        vec![t.fs.pin(&name).to_string_lossy().into_owned()]
    );
}

/// Runs the peer helper as `uid` against the daemon's Unix socket; returns its output lines.
fn peer(addr: &str, uid: u32) -> Vec<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_bpfmap-test-peer"))
        .args(["--uid", &uid.to_string(), "--addr", addr])
        .output()
        .expect("run bpfmap-test-peer");
    assert!(
        out.status.success(),
        "bpfmap-test-peer failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn unix_peers_other_than_root_are_denied() {
    // The socket is opened to everybody (mode 0666, directory 0755) so that the daemon's
    // own check, not the file mode, is what stops uid 65534.
    let opts = DaemonOptions {
        extra_args: vec!["--socket-mode".into(), "0666".into()],
        ..Default::default()
    };
    let Some(mut t) = TestEnv::start_with(opts).await else {
        return;
    };
    std::fs::set_permissions(t.daemon.dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mode = std::fs::metadata(t.daemon.socket())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o666, "--socket-mode 0666 not applied");

    // A map root made: uid 65534 may neither see nor touch it.
    let name = names::unique("unx");
    let info = create(&mut t.client, create_req(MapType::Hash, &name, 4, 8, 8)).await;
    update(&mut t.client, by_id(info.id), num(1), num(10)).await;
    let key = hex::format(&u32b(1)).replace(' ', "");
    let value = hex::format(&u64b(7)).replace(' ', "");
    let ops = [
        "list".to_owned(),
        format!("lookup id:{} {key}", info.id),
        format!("update id:{} {key} {value}", info.id),
    ];
    let ops: Vec<&str> = ops.iter().map(String::as_str).collect();
    let r = Peer::nobody().run(&t.daemon, &ops);
    // ListMaps is refused, or answers without the map (it shows only readable maps).
    if r[0].ok() {
        assert!(!r[0].ids().contains(&info.id), "{r:?}");
    } else {
        r[0].assert_code("PermissionDenied", &[]);
    }
    r[1].assert_code("PermissionDenied", &["Lookup", "read"]);
    r[2].assert_code("PermissionDenied", &["Update", "write"]);
    assert_eq!(
        KernelMap::from_id(info.id)
            .entries()
            .into_iter()
            .collect::<Vec<_>>(),
        vec![(u32b(1), u64b(10))]
    );
    // Root through the same helper is served.
    let r = Peer {
        uid: 0,
        gid: 0,
        groups: Vec::new(),
    }
    .run(&t.daemon, &ops);
    assert_eq!(r[0].ids(), vec![info.id]);
    r[1].assert_ok();
    r[2].assert_ok();
    assert_eq!(KernelMap::from_id(info.id).lookup(&u32b(1)), Some(u64b(7)));
}

#[tokio::test]
async fn with_default_options_other_users_are_not_served() {
    let Some(t) = TestEnv::start().await else {
        return;
    };
    std::fs::set_permissions(t.daemon.dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let lines = peer(&t.daemon.unix_addr(), 65534);
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with("connect-error") || l.contains("PermissionDenied")),
        "uid 65534 got through: {lines:?}"
    );
}
