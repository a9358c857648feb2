//! TLS and mutual TLS on TCP (issue 4), with certificates made here by rcgen: a client with a
//! certificate from the configured CA gets what the policy grants its CN and SAN names; no
//! certificate, another CA's certificate, an expired one or plain text are refused while the
//! daemon keeps serving; TLS lets the daemon listen beyond loopback.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use bpfmap_client::TlsOptions;
use bpfmap_tests::api::pb::{Format, GetMapRequest, MapType, UpdateRequest};
use bpfmap_tests::api::*;
use bpfmap_tests::certs::{Ca, CertKey, Leaf, ServerTls};
use bpfmap_tests::daemon::{free_loopback_port, run_expecting_exit};
use bpfmap_tests::policy::{PolicyEnv, Rule};
use bpfmap_tests::{names, Bpffs, Daemon, DaemonOptions, KernelMap, TestEnv};
use tonic::Code;

/// Options for a daemon serving `tls` on loopback TCP; the harness probes it as `probe`.
fn tls_opts(tls: &ServerTls, probe: TlsOptions) -> DaemonOptions {
    DaemonOptions {
        tcp: true,
        extra_args: tls.args.clone(),
        tls: Some(probe),
        ..DaemonOptions::default()
    }
}

/// One GetMap over TCP with `tls`; Err describes how the connection or the call failed.
async fn try_get(daemon: &Daemon, tls: Option<TlsOptions>, id: u32) -> Result<u32, String> {
    let call = async {
        let mut c = daemon
            .tcp_client_with(tls)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        c.get_map(GetMapRequest { map: by_id(id) })
            .await
            .map(|r| r.into_inner().id)
            .map_err(|s| format!("call: {s:?}"))
    };
    match tokio::time::timeout(Duration::from_secs(10), call).await {
        Ok(r) => r,
        Err(_) => Err("timed out".into()),
    }
}

/// A hash map u32 → u64 holding 1 → 10.
async fn map(client: &mut Client, name: &str) -> u32 {
    let info = create(client, create_req(MapType::Hash, name, 4, 8, 8)).await;
    update(client, by_id(info.id), num(1), num(10)).await;
    info.id
}

fn client_tls(ca: &Ca, cert: &CertKey) -> TlsOptions {
    cert.identity(ca.trust())
}

#[tokio::test]
async fn mtls_serves_good_clients_and_refuses_bad_ones() {
    let tls = ServerTls::mtls();
    let good = tls.ca.issue(&Leaf::client("agent-1"));
    let rules = [
        Rule::root_all(),
        Rule::allow(&["cert:CN=agent-*"], &["all"], &["read"]),
    ];
    let Some(mut e) = PolicyEnv::start(&rules, tls_opts(&tls, client_tls(&tls.ca, &good))).await
    else {
        return;
    };
    let name = names::unique("mtls");
    let id = map(&mut e.t.client, &name).await;
    let d = &e.t.daemon;

    // A good client reads; writing is not granted.
    assert_eq!(
        try_get(d, Some(client_tls(&tls.ca, &good)), id).await,
        Ok(id)
    );
    let mut c = d.tcp_client().await;
    let v = lookup(&mut c, by_id(id), num(1), Format::Number)
        .await
        .unwrap();
    assert_eq!(num_of(&v.value), 10);
    assert_status(
        c.update(UpdateRequest {
            map: by_id(id),
            key: num(1),
            value: num(99),
            ..Default::default()
        })
        .await,
        Code::PermissionDenied,
        &["Update", "write"],
    );

    // Refused: no certificate, another CA's certificate (same CN), an expired certificate,
    // plain text on the TLS port.
    let other_ca = Ca::new("another CA");
    let foreign = other_ca.issue(&Leaf::client("agent-1"));
    let expired = tls.ca.issue(&Leaf::client("agent-1").expired());
    let attempts: [(&str, Option<TlsOptions>); 4] = [
        ("no client certificate", Some(tls.ca.trust())),
        (
            "another CA's certificate",
            Some(foreign.identity(tls.ca.trust())),
        ),
        (
            "an expired certificate",
            Some(client_tls(&tls.ca, &expired)),
        ),
        ("plain text", None),
    ];
    for (what, opts) in attempts {
        let r = try_get(d, opts, id).await;
        assert!(r.is_err(), "{what} was served: {r:?}");
        // The daemon keeps serving after each refusal.
        assert_eq!(
            try_get(d, Some(client_tls(&tls.ca, &good)), id).await,
            Ok(id),
            "after {what}"
        );
    }
    assert_eq!(get(&mut e.t.client, by_id(id)).await.id, id);
    assert!(e.t.daemon.pid().is_some());
    assert_eq!(KernelMap::from_id(id).lookup(&u32b(1)), Some(u64b(10)));
}

#[tokio::test]
async fn cert_cn_rules_match_the_subject_cn() {
    let tls = ServerTls::mtls();
    let agent = tls.ca.issue(&Leaf::client("agent-1"));
    let other = tls.ca.issue(&Leaf::client("monitor-1"));
    let prefixed = tls.ca.issue(&Leaf::client("xagent-1").dns("agent-1"));
    let rules = [
        Rule::root_all(),
        Rule::allow(&["cert:CN=agent-*"], &["all"], &["read"]),
    ];
    let Some(mut e) = PolicyEnv::start(&rules, tls_opts(&tls, client_tls(&tls.ca, &agent))).await
    else {
        return;
    };
    let id = map(&mut e.t.client, &names::unique("cn")).await;
    let d = &e.t.daemon;
    let mut a = d
        .tcp_client_with(Some(client_tls(&tls.ca, &agent)))
        .await
        .unwrap();
    assert!(list(&mut a, false).await.iter().any(|m| m.id == id));
    let v = lookup(&mut a, by_id(id), num(1), Format::Number)
        .await
        .unwrap();
    assert_eq!(num_of(&v.value), 10);
    // Same CA, CN not matching the glob (the glob is anchored; a SAN DNS name is not a CN).
    for cert in [&other, &prefixed] {
        let mut o = d
            .tcp_client_with(Some(client_tls(&tls.ca, cert)))
            .await
            .unwrap();
        match o.list_maps(pb::ListMapsRequest { all: true }).await {
            Ok(r) => assert!(
                !r.into_inner().maps.iter().any(|m| m.id == id),
                "listed to a CN the policy does not name"
            ),
            Err(s) => assert_eq!(s.code(), Code::PermissionDenied, "{s:?}"),
        }
        assert_status(
            lookup(&mut o, by_id(id), num(1), Format::Number).await,
            Code::PermissionDenied,
            &["Lookup", "read"],
        );
    }
}

#[tokio::test]
async fn san_rules_match_spiffe_uris_and_dns_names() {
    let tls = ServerTls::mtls();
    let fleet = tls
        .ca
        .issue(&Leaf::client("writer").uri("spiffe://fleet/x"));
    let outsider = tls
        .ca
        .issue(&Leaf::client("writer").uri("spiffe://other/x"));
    let dns = tls.ca.issue(&Leaf::client("n1").dns("n1.agents.example"));
    let w_name = names::unique("sw");
    let o_name = names::unique("so");
    let rules = [
        Rule::root_all(),
        Rule::allow(
            &["san:spiffe://fleet/*"],
            &[&format!("name:{w_name}")],
            &["read", "write"],
        ),
        Rule::allow(
            &["san:*.agents.example"],
            &[&format!("name:{o_name}")],
            &["read"],
        ),
    ];
    let Some(mut e) = PolicyEnv::start(&rules, tls_opts(&tls, client_tls(&tls.ca, &fleet))).await
    else {
        return;
    };
    let w = map(&mut e.t.client, &w_name).await;
    let o = map(&mut e.t.client, &o_name).await;
    let d = &e.t.daemon;
    let upd = |id: u32, n: u64| UpdateRequest {
        map: by_id(id),
        key: num(2),
        value: num(n),
        ..Default::default()
    };

    let mut f = d
        .tcp_client_with(Some(client_tls(&tls.ca, &fleet)))
        .await
        .unwrap();
    f.update(upd(w, 20)).await.unwrap();
    assert_eq!(KernelMap::from_id(w).lookup(&u32b(2)), Some(u64b(20)));
    assert_status(
        f.update(upd(o, 20)).await,
        Code::PermissionDenied,
        &["Update", "write"],
    );
    assert_status(
        lookup(&mut f, by_id(o), num(1), Format::Number).await,
        Code::PermissionDenied,
        &["Lookup", "read"],
    );

    let mut x = d
        .tcp_client_with(Some(client_tls(&tls.ca, &outsider)))
        .await
        .unwrap();
    assert_status(
        x.update(upd(w, 30)).await,
        Code::PermissionDenied,
        &["Update", "write"],
    );
    assert_eq!(KernelMap::from_id(w).lookup(&u32b(2)), Some(u64b(20)));

    let mut n = d
        .tcp_client_with(Some(client_tls(&tls.ca, &dns)))
        .await
        .unwrap();
    let v = lookup(&mut n, by_id(o), num(1), Format::Number)
        .await
        .unwrap();
    assert_eq!(num_of(&v.value), 10);
    assert_status(
        lookup(&mut n, by_id(w), num(1), Format::Number).await,
        Code::PermissionDenied,
        &["Lookup", "read"],
    );
    assert_status(
        n.update(upd(o, 1)).await,
        Code::PermissionDenied,
        &["Update", "write"],
    );
    assert!(KernelMap::from_id(o).lookup(&u32b(2)).is_none());

    // The audit log names the certificate identity of a refused write.
    let line =
        e.t.daemon
            .wait_log(&["CN=n1", "Update", &o.to_string()], Duration::from_secs(3))
            .await;
    assert!(
        line.is_some(),
        "no audit line names cert:CN=n1, Update and map {o}:\n{}",
        e.t.daemon.log()
    );
}

#[tokio::test]
async fn mtls_callers_get_nothing_without_a_policy() {
    let tls = ServerTls::mtls();
    let agent = tls.ca.issue(&Leaf::client("agent-1"));
    let Some(mut t) = TestEnv::start_with(tls_opts(&tls, client_tls(&tls.ca, &agent))).await else {
        return;
    };
    let id = map(&mut t.client, &names::unique("np")).await;
    let mut a = t.daemon.tcp_client().await;
    assert_status(
        lookup(&mut a, by_id(id), num(1), Format::Number).await,
        Code::PermissionDenied,
        &["Lookup", "read"],
    );
    match a.list_maps(pb::ListMapsRequest { all: true }).await {
        Ok(r) => assert!(r.into_inner().maps.is_empty()),
        Err(s) => assert_eq!(s.code(), Code::PermissionDenied, "{s:?}"),
    }
    // Root over the Unix socket still may do everything.
    update(&mut t.client, by_id(id), num(2), num(2)).await;
}

#[tokio::test]
async fn tls_without_client_ca_serves_anonymous_callers_on_any_address() {
    let tls = ServerTls::new();
    let wide = free_loopback_port().port();
    let rules = [
        Rule::root_all(),
        Rule::allow(&["anonymous"], &["all"], &["read"]),
    ];
    let mut opts = tls_opts(&tls, tls.ca.trust());
    // With TLS, a TCP listener on the wildcard address is allowed (clients here still
    // connect through loopback).
    opts.extra_args
        .extend(["--listen".to_owned(), format!("0.0.0.0:{wide}")]);
    let Some(mut e) = PolicyEnv::start(&rules, opts).await else {
        return;
    };
    let id = map(&mut e.t.client, &names::unique("anon")).await;
    let d = &e.t.daemon;
    let mut a = d.tcp_client().await;
    let v = lookup(&mut a, by_id(id), num(1), Format::Number)
        .await
        .unwrap();
    assert_eq!(num_of(&v.value), 10);
    assert_status(
        a.update(UpdateRequest {
            map: by_id(id),
            key: num(1),
            value: num(5),
            ..Default::default()
        })
        .await,
        Code::PermissionDenied,
        &["Update", "write"],
    );
    assert!(
        try_get(d, None, id).await.is_err(),
        "plain text on a TLS port"
    );
    let url = format!("https://127.0.0.1:{wide}");
    let opts = bpfmap_client::ConnectOptions::default().tls(tls.ca.trust());
    let mut w = bpfmap_client::Client::connect_with(&url, &opts)
        .await
        .unwrap()
        .raw();
    assert_eq!(get(&mut w, by_id(id)).await.id, id);
    let line = d
        .wait_log(
            &["anonymous", "Update", &id.to_string()],
            Duration::from_secs(3),
        )
        .await;
    assert!(
        line.is_some(),
        "no audit line for the anonymous Update:\n{}",
        d.log()
    );
}

#[tokio::test]
async fn tcp_without_tls_only_on_loopback() {
    if !bpfmap_tests::require_bpf() {
        return;
    }
    let fs = Bpffs::new();
    let dir = tempfile::tempdir().unwrap();
    let port = free_loopback_port().port();
    let args: Vec<std::ffi::OsString> = vec![
        "--listen".into(),
        format!("unix:{}", dir.path().join("s.sock").display()).into(),
        "--listen".into(),
        format!("0.0.0.0:{port}").into(),
        "--bpffs-root".into(),
        fs.root().into(),
    ];
    let (status, out) = run_expecting_exit(
        &bpfmap_tests::bins::bpfmapd(),
        &args,
        Duration::from_secs(10),
    );
    let status = status.unwrap_or_else(|| panic!("bpfmapd served plain TCP on 0.0.0.0:\n{out}"));
    assert!(!status.success(), "{out}");
    assert!(out.to_lowercase().contains("loopback"), "{out}");
}
