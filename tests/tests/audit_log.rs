//! The daemon's log names every mutation with its caller (issue 2 item 9): what an operator
//! reads to find out who changed a map.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bpfmap_tests::api::pb::{DeleteMapRequest, MapType, UpdateRequest};
use bpfmap_tests::api::*;
use bpfmap_tests::{names, DaemonOptions, TestEnv};

fn lines_with<'a>(log: &'a str, words: &[&str]) -> Vec<&'a str> {
    log.lines()
        .filter(|l| {
            let l = l.to_lowercase();
            words.iter().all(|w| l.contains(&w.to_lowercase()))
        })
        .collect()
}

#[tokio::test]
async fn mutations_are_logged_with_the_caller() {
    let Some(mut t) = TestEnv::start_with(DaemonOptions {
        tcp: true,
        ..Default::default()
    })
    .await
    else {
        return;
    };
    let name = names::unique("aud");
    let info = create(&mut t.client, create_req(MapType::Hash, &name, 4, 8, 8)).await;
    let id = info.id.to_string();
    update(&mut t.client, by_id(info.id), num(1), num(1)).await;
    let mut tcp = t.daemon.tcp_client().await;
    let denied = tcp
        .update(UpdateRequest {
            map: by_id(info.id),
            key: num(2),
            value: num(2),
            ..Default::default()
        })
        .await;
    assert!(denied.is_err());
    t.client
        .delete_map(DeleteMapRequest {
            map: by_id(info.id),
        })
        .await
        .unwrap();
    // Logs are written asynchronously: give them a moment.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let log = t.daemon.log();
    for rpc in ["CreateMap", "Update", "DeleteMap"] {
        let hits = lines_with(&log, &[rpc, "uid"]);
        assert!(
            !hits.is_empty(),
            "no log line for {rpc} with the caller's uid:\n{log}"
        );
    }
    assert!(
        !lines_with(&log, &["Update", &id, "uid"]).is_empty(),
        "the Update line does not name map {id}:\n{log}"
    );
    assert!(
        !lines_with(&log, &["Update", "127.0.0.1"]).is_empty(),
        "the refused TCP Update is not logged with its peer:\n{log}"
    );
}
