//! Process lifecycle: SIGTERM exits 0 and keeps the pins; a stale socket file left by a
//! crash is replaced; a second daemon on a live socket refuses to start; ephemeral maps die
//! with the daemon.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::ffi::OsString;
use std::time::Duration;

use bpfmap_tests::api::pb::{CreateMapRequest, MapType};
use bpfmap_tests::api::*;
use bpfmap_tests::daemon::run_expecting_exit;
use bpfmap_tests::{bpftool, kernel, names, TestEnv};

#[tokio::test]
async fn sigterm_exits_zero_and_keeps_the_pins() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let name = names::unique("term");
    let info = create(&mut t.client, create_req(MapType::Hash, &name, 4, 8, 8)).await;
    update(&mut t.client, by_id(info.id), num(1), num(2)).await;
    // The client stays connected (idle): that must not hold the shutdown up.
    let started = std::time::Instant::now();
    let status = t.daemon.sigterm().await;
    assert_eq!(
        status.code(),
        Some(0),
        "SIGTERM exit: {status}\n{}",
        t.daemon.log()
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "SIGTERM with an idle client took {:?}",
        started.elapsed()
    );
    let pin = t.fs.pin(&name);
    assert!(pin.exists(), "pin removed on shutdown");
    let dumped = bpftool::dump_pinned(&pin);
    assert_eq!(dumped.len(), 1);
    assert_eq!(dumped[0].value, Some(u64b(2)));
    assert_eq!(bpftool::show_pinned(&pin).id, info.id);
}

#[tokio::test]
async fn ephemeral_maps_have_no_pin_and_die_with_the_daemon() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let name = names::unique("eph");
    let info = create(
        &mut t.client,
        CreateMapRequest {
            ephemeral: true,
            ..create_req(MapType::Hash, &name, 4, 8, 8)
        },
    )
    .await;
    assert!(info.ephemeral && info.managed);
    assert!(info.pins.is_empty(), "{:?}", info.pins);
    assert!(!t.fs.pin(&name).exists());
    assert!(list(&mut t.client, false)
        .await
        .iter()
        .any(|m| m.id == info.id));
    update(&mut t.client, by_name(name), num(1), num(1)).await;
    assert!(kernel::map_exists(info.id));
    assert_eq!(t.daemon.sigterm().await.code(), Some(0));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while kernel::map_exists(info.id) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !kernel::map_exists(info.id),
        "ephemeral map outlived the daemon"
    );
}

#[tokio::test]
async fn a_stale_socket_left_by_a_crash_is_replaced() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    t.daemon.kill9();
    let sock = t.daemon.socket().to_path_buf();
    assert!(sock.exists(), "kill -9 should leave the socket file behind");
    let err = std::os::unix::net::UnixStream::connect(&sock).expect_err("nobody listens");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    t.daemon.restart().await; // panics unless the new daemon serves on the same path
    let mut c = t.daemon.client().await;
    assert!(list(&mut c, false).await.is_empty());
}

#[tokio::test]
async fn a_second_daemon_on_a_live_socket_refuses_to_start() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let name = names::unique("live");
    let info = create(&mut t.client, create_req(MapType::Hash, &name, 4, 8, 8)).await;
    let args: Vec<OsString> = vec![
        "--listen".into(),
        t.daemon.unix_addr().into(),
        "--bpffs-root".into(),
        t.fs.path().join("second_root").into(),
    ];
    let (status, output) = run_expecting_exit(t.daemon.bin(), &args, Duration::from_secs(20));
    let status = status.unwrap_or_else(|| panic!("second daemon kept running:\n{output}"));
    assert!(
        !status.success(),
        "second daemon exited {status}:\n{output}"
    );
    let out = output.to_lowercase();
    let sock = t.daemon.socket().to_string_lossy().to_lowercase();
    assert!(
        out.contains(&sock)
            || out.contains("in use")
            || out.contains("already")
            || out.contains("running"),
        "the refusal should say why:\n{output}"
    );
    // The first daemon still owns the socket and serves.
    assert!(t.daemon.socket().exists());
    let mut fresh = t.daemon.client().await;
    assert_eq!(get(&mut fresh, by_id(info.id)).await.name, name);
}
