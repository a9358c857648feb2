//! `bpfmap-test-peer --uid UID --addr ADDR`: a client that drops to another user before it
//! connects, so that the daemon sees a non-root peer (SO_PEERCRED).
//!
//! Calls ListMaps, then an Update on map id 1 (it need not exist: the access check comes
//! first), and prints one line per call: `<Rpc> <grpc code name> <message>`, or
//! `connect-error <text>` when the socket refuses the connection.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bpfmap_client::proto::{map_ref::Ref, ListMapsRequest, MapRef, UpdateRequest};
use nix::unistd::{setgid, setgroups, setuid, Gid, Uid};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let get = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
            .unwrap_or_else(|| panic!("usage: bpfmap-test-peer --uid UID --addr ADDR"))
    };
    let uid: u32 = get("--uid").parse().expect("uid");
    let addr = get("--addr");
    // Still single-threaded here: drop groups, gid, then uid, before any runtime exists.
    setgroups(&[]).expect("setgroups");
    setgid(Gid::from_raw(uid)).expect("setgid");
    setuid(Uid::from_raw(uid)).expect("setuid");
    assert_eq!(nix::unistd::geteuid().as_raw(), uid);

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut client = match bpfmap_client::connect(&addr).await {
            Ok(c) => c,
            Err(e) => {
                println!("connect-error {e}");
                return;
            }
        };
        let r = client.list_maps(ListMapsRequest { all: false }).await;
        report("ListMaps", r.map(drop));
        let r = client
            .update(UpdateRequest {
                map: Some(MapRef {
                    r#ref: Some(Ref::Id(1)),
                }),
                ..Default::default()
            })
            .await;
        report("Update", r.map(drop));
    });
}

fn report(rpc: &str, r: Result<(), tonic::Status>) {
    match r {
        Ok(()) => println!("{rpc} Ok"),
        Err(s) => println!("{rpc} {:?} {}", s.code(), s.message().replace('\n', " ")),
    }
}
