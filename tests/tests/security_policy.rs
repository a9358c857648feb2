//! The access policy (issue 4) as an attacker meets it: a client that really runs as
//! another user (`bpfmap-test-peer` drops to uid 65534 before it connects) gets exactly what
//! the policy grants over the Unix socket, every refused write leaves the kernel's map as it
//! was, maps it may not read are invisible, and group, user, deny and foreign-map rules match
//! as the spec says.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use bpfmap_tests::api::pb::MapType;
use bpfmap_tests::api::*;
use bpfmap_tests::peer::{Peer, TestGroup};
use bpfmap_tests::policy::{PolicyEnv, Rule};
use bpfmap_tests::{bpftool, names, DaemonOptions, KernelMap};

/// Key 1 and value 10 as the peer writes them (hex of host-order u32 / u64).
fn k(n: u32) -> String {
    n.to_ne_bytes().iter().map(|b| format!("{b:02x}")).collect()
}
fn v(n: u64) -> String {
    n.to_ne_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

/// Creates a hash map (u32 → u64, 8 entries) pinned at `pin` holding 1 → 10.
async fn map_at(client: &mut Client, name: &str, pin: &str) -> u32 {
    let mut req = create_req(MapType::Hash, name, 4, 8, 8);
    req.pin = pin.to_owned();
    let info = create(client, req).await;
    update(client, by_id(info.id), num(1), num(10)).await;
    info.id
}

#[tokio::test]
async fn nobody_reads_what_the_policy_grants_and_nothing_else() {
    let rules = [
        Rule::root_all(),
        Rule::allow(&["uid:65534"], &["pin:public/*"], &["read"]),
    ];
    let Some(mut e) = PolicyEnv::start(&rules, DaemonOptions::default()).await else {
        return;
    };
    let c = &mut e.t.client;
    let pub_name = names::unique("pub");
    let sec_name = names::unique("sec");
    let pub_pin = format!("public/{pub_name}");
    let pubm = map_at(c, &pub_name, &pub_pin).await;
    let sec = map_at(c, &sec_name, &sec_name).await;
    let new_name = names::unique("peerc");

    let ops: Vec<String> = vec![
        "list".into(),
        "list-all".into(),
        format!("get id:{pubm}"),
        format!("get pin:{pub_pin}"),
        format!("get name:{pub_name}"),
        format!("lookup id:{pubm} {}", k(1)),
        format!("getnext id:{pubm}"),
        format!("dump id:{pubm}"),
        // Not granted: reads of the other map, by every kind of reference.
        format!("get id:{sec}"),
        format!("get pin:{sec_name}"),
        format!("lookup name:{sec_name} {}", k(1)),
        format!("getnext id:{sec}"),
        format!("dump id:{sec}"),
        // Not granted: every write and admin call on the readable map.
        format!("update id:{pubm} {} {}", k(1), v(99)),
        format!("update id:{pubm} {} {}", k(2), v(2)),
        format!("delete id:{pubm} {}", k(1)),
        format!("lookup-delete id:{pubm} {}", k(1)),
        format!("batch-update id:{pubm} {} {}", k(3), v(3)),
        format!("batch-delete id:{pubm} {}", k(1)),
        format!("dump-delete id:{pubm}"),
        format!("create {new_name} public/{new_name}"),
        format!("freeze id:{pubm}"),
        format!("pin id:{pubm} public/{new_name}"),
        format!("unpin {pub_pin}"),
        format!("delete-map id:{pubm}"),
    ];
    let ops: Vec<&str> = ops.iter().map(String::as_str).collect();
    let r = Peer::nobody().run(&e.t.daemon, &ops);

    let listed = r[0].ids();
    assert!(listed.contains(&pubm), "{:?}", r[0]);
    assert!(
        !listed.contains(&sec),
        "a map it may not read is listed: {:?}",
        r[0]
    );
    let listed_all = r[1].ids();
    assert!(listed_all.contains(&pubm), "{:?}", r[1]);
    assert!(!listed_all.contains(&sec), "{:?}", r[1]);
    for reply in &r[2..5] {
        assert_eq!(reply.assert_ok().text, format!("id={pubm}"));
    }
    assert_eq!(r[5].assert_ok().text, v(10));
    assert_eq!(r[6].assert_ok().text, k(1));
    assert_eq!(r[7].assert_ok().text, "n=1");
    r[8].assert_code("PermissionDenied", &["GetMap", "read"]);
    r[9].assert_code("PermissionDenied", &["GetMap", "read"]);
    r[10].assert_code("PermissionDenied", &["Lookup", "read"]);
    r[11].assert_code("PermissionDenied", &["GetNextKey", "read"]);
    r[12].assert_code("PermissionDenied", &["Dump", "read"]);
    r[13].assert_code("PermissionDenied", &["Update", "write"]);
    r[14].assert_code("PermissionDenied", &["Update", "write"]);
    r[15].assert_code("PermissionDenied", &["Delete", "write"]);
    r[16].assert_code("PermissionDenied", &["LookupAndDelete", "write"]);
    r[17].assert_code("PermissionDenied", &["BatchUpdate", "write"]);
    r[18].assert_code("PermissionDenied", &["BatchDelete", "write"]);
    r[19].assert_code("PermissionDenied", &["Dump", "write"]);
    r[20].assert_code("PermissionDenied", &["CreateMap", "create"]);
    r[21].assert_code("PermissionDenied", &["FreezeMap", "admin"]);
    r[22].assert_code("PermissionDenied", &["PinMap", "admin"]);
    r[23].assert_code("PermissionDenied", &["UnpinMap", "admin"]);
    r[24].assert_code("PermissionDenied", &["DeleteMap", "admin"]);

    // The kernel's view: nothing changed.
    let dumped = bpftool::dump_pinned(&e.t.fs.pin(&pub_pin));
    assert_eq!(dumped.len(), 1, "{dumped:?}");
    assert_eq!(dumped[0].key, u32b(1));
    assert_eq!(dumped[0].value.as_deref(), Some(&u64b(10)[..]));
    assert_eq!(
        KernelMap::from_id(sec)
            .entries()
            .into_iter()
            .collect::<Vec<_>>(),
        vec![(u32b(1), u64b(10))]
    );
    let info = get(c, by_id(pubm)).await;
    assert!(!info.frozen, "a refused FreezeMap froze the map");
    assert_eq!(
        info.pins,
        vec![e.t.fs.pin(&pub_pin).display().to_string()],
        "a refused PinMap/UnpinMap changed the pins"
    );
    assert!(!e.t.fs.pin(&format!("public/{new_name}")).exists());
    assert!(
        !list(c, true).await.iter().any(|m| m.name == new_name),
        "a refused CreateMap created a map"
    );
}

#[tokio::test]
async fn write_and_create_grants_are_honoured_and_go_no_further() {
    let w_name = names::unique("w");
    let o_name = names::unique("o");
    let rules = [
        Rule::root_all(),
        Rule::allow(
            &["uid:65534"],
            &[&format!("name:{w_name}")],
            &["read", "write"],
        ),
        Rule::allow(&["uid:65534"], &["pin:agent/*"], &["create"]),
    ];
    let Some(mut e) = PolicyEnv::start(&rules, DaemonOptions::default()).await else {
        return;
    };
    let c = &mut e.t.client;
    let w = map_at(c, &w_name, &w_name).await;
    let o = map_at(c, &o_name, &o_name).await;
    let made = names::unique("made");
    let refused = names::unique("nomade");
    let ops = [
        format!("update id:{w} {} {}", k(2), v(20)),
        format!("batch-update id:{w} {} {}", k(3), v(30)),
        format!("delete id:{w} {}", k(1)),
        format!("update id:{o} {} {}", k(2), v(20)),
        format!("create {made} agent/{made}"),
        format!("create {refused} {refused}"),
        format!("create {refused} elsewhere/{refused}"),
        format!("get pin:agent/{made}"),
    ];
    let ops: Vec<&str> = ops.iter().map(String::as_str).collect();
    let r = Peer::nobody().run(&e.t.daemon, &ops);
    r[0].assert_ok();
    r[1].assert_ok();
    r[2].assert_ok();
    r[3].assert_code("PermissionDenied", &["Update", "write"]);
    r[4].assert_ok();
    r[5].assert_code("PermissionDenied", &["CreateMap", "create"]);
    r[6].assert_code("PermissionDenied", &["CreateMap", "create"]);
    // Creating a map grants nothing on it: reading needs its own rule.
    r[7].assert_code("PermissionDenied", &["GetMap", "read"]);

    let entries: Vec<_> = KernelMap::from_id(w).entries().into_iter().collect();
    assert_eq!(entries, vec![(u32b(2), u64b(20)), (u32b(3), u64b(30))]);
    let entries: Vec<_> = KernelMap::from_id(o).entries().into_iter().collect();
    assert_eq!(entries, vec![(u32b(1), u64b(10))]);
    let shown = bpftool::show_pinned(&e.t.fs.pin(&format!("agent/{made}")));
    assert_eq!(shown.name, made);
    assert!(!e.t.fs.pin(&refused).exists());
    assert!(!e.t.fs.pin(&format!("elsewhere/{refused}")).exists());
    assert!(!list(c, true).await.iter().any(|m| m.name == refused));
}

#[tokio::test]
async fn a_matching_deny_wins_over_any_allow() {
    let s_name = names::unique("s");
    let p_name = names::unique("p");
    let l_name = names::unique("l");
    let rules = [
        Rule::root_all(),
        Rule::allow(&["any"], &["all"], &["read"]),
        Rule::allow(&["uid:65534"], &["managed"], &["write"]),
        Rule::deny(&["uid:65534"], &[&format!("name:{s_name}")], &["read"]),
        Rule::deny(&["uid:65534"], &["pin:locked/*"], &["write"]),
    ];
    let Some(mut e) = PolicyEnv::start(&rules, DaemonOptions::default()).await else {
        return;
    };
    let c = &mut e.t.client;
    let s = map_at(c, &s_name, &s_name).await;
    let p = map_at(c, &p_name, &p_name).await;
    let l = map_at(c, &l_name, &format!("locked/{l_name}")).await;
    let ops = [
        "list".to_owned(),
        format!("lookup id:{s} {}", k(1)),
        format!("lookup id:{p} {}", k(1)),
        format!("update id:{p} {} {}", k(1), v(11)),
        format!("lookup id:{l} {}", k(1)),
        format!("update id:{l} {} {}", k(1), v(11)),
    ];
    let ops: Vec<&str> = ops.iter().map(String::as_str).collect();
    let r = Peer::nobody().run(&e.t.daemon, &ops);
    let ids = r[0].ids();
    assert!(ids.contains(&p) && ids.contains(&l), "{:?}", r[0]);
    assert!(!ids.contains(&s), "a denied map is listed: {:?}", r[0]);
    r[1].assert_code("PermissionDenied", &["Lookup", "read"]);
    assert_eq!(r[2].assert_ok().text, v(10));
    r[3].assert_ok();
    assert_eq!(r[4].assert_ok().text, v(10));
    r[5].assert_code("PermissionDenied", &["Update", "write"]);
    assert_eq!(KernelMap::from_id(p).lookup(&u32b(1)), Some(u64b(11)));
    assert_eq!(KernelMap::from_id(l).lookup(&u32b(1)), Some(u64b(10)));
    // The deny names uid 65534 only: root still reads the map.
    assert_eq!(
        num_of(
            &lookup(c, by_id(s), num(1), bpfmap_tests::api::pb::Format::Number)
                .await
                .unwrap()
                .value
        ),
        10
    );
}

#[tokio::test]
async fn group_rules_match_primary_and_supplementary_groups() {
    let g = TestGroup::new();
    let (a, b, cc, d) = (
        names::unique("ga"),
        names::unique("gb"),
        names::unique("gc"),
        names::unique("gd"),
    );
    let rules = [
        Rule::root_all(),
        Rule::allow(
            &[&format!("group:{}", g.name)],
            &[&format!("name:{a}")],
            &["read"],
        ),
        Rule::allow(&["gid:65534"], &[&format!("name:{b}")], &["read"]),
        Rule::allow(
            &[&format!("gid:{}", g.gid)],
            &[&format!("name:{cc}")],
            &["read"],
        ),
        Rule::allow(&["group:nogroup"], &[&format!("name:{d}")], &["read"]),
    ];
    let Some(mut e) = PolicyEnv::start(&rules, DaemonOptions::default()).await else {
        return;
    };
    let c = &mut e.t.client;
    for n in [&a, &b, &cc, &d] {
        map_at(c, n, n).await;
    }
    let ops = [
        format!("lookup name:{a} {}", k(1)),
        format!("lookup name:{b} {}", k(1)),
        format!("lookup name:{cc} {}", k(1)),
        format!("lookup name:{d} {}", k(1)),
    ];
    let ops: Vec<&str> = ops.iter().map(String::as_str).collect();
    let outcome = |r: Vec<bpfmap_tests::peer::Reply>| -> Vec<bool> {
        r.iter()
            .map(|x| {
                assert!(
                    x.ok() || x.code == "PermissionDenied",
                    "unexpected reply {x:?}"
                );
                x.ok()
            })
            .collect()
    };
    // Primary gid 65534 (nogroup), supplementary: the test group.
    let r = outcome(Peer::nobody().groups(&[g.gid]).run(&e.t.daemon, &ops));
    assert_eq!(r, [true, true, true, true], "supplementary group member");
    // Primary gid 65534, no supplementary group.
    let r = outcome(Peer::nobody().run(&e.t.daemon, &ops));
    assert_eq!(r, [false, true, false, true], "plain nobody");
    // Primary gid = the test group, no supplementary group.
    let r = outcome(Peer::nobody().gid(g.gid).run(&e.t.daemon, &ops));
    assert_eq!(
        r,
        [true, false, true, false],
        "primary group = the test group"
    );
}

#[tokio::test]
async fn user_rules_match_the_passwd_name() {
    let name = names::unique("usr");
    let rules = [
        Rule::root_all(),
        Rule::allow(&["user:nobody"], &[&format!("name:{name}")], &["read"]),
    ];
    let Some(mut e) = PolicyEnv::start(&rules, DaemonOptions::default()).await else {
        return;
    };
    let id = map_at(&mut e.t.client, &name, &name).await;
    let ops = [
        format!("lookup id:{id} {}", k(1)),
        format!("update id:{id} {} {}", k(1), v(5)),
    ];
    let ops: Vec<&str> = ops.iter().map(String::as_str).collect();
    let r = Peer::nobody().run(&e.t.daemon, &ops);
    assert_eq!(r[0].assert_ok().text, v(10));
    r[1].assert_code("PermissionDenied", &["Update", "write"]);
    // Another uid is not `nobody`.
    let other = Peer {
        uid: 65533,
        gid: 65533,
        groups: Vec::new(),
    };
    let r = other.run(&e.t.daemon, &ops[..1]);
    r[0].assert_code("PermissionDenied", &["Lookup", "read"]);
}

#[tokio::test]
async fn socket_group_decides_who_may_connect_at_all() {
    let g = TestGroup::new();
    let name = names::unique("sg");
    let rules = [Rule::root_all(), Rule::allow(&["any"], &["all"], &["read"])];
    let opts = DaemonOptions {
        extra_args: vec![
            "--socket-mode".into(),
            "0660".into(),
            "--socket-group".into(),
            g.name.clone(),
        ],
        ..Default::default()
    };
    let Some(mut e) = PolicyEnv::start(&rules, opts).await else {
        return;
    };
    let id = map_at(&mut e.t.client, &name, &name).await;
    let meta = std::fs::metadata(e.t.daemon.socket()).unwrap();
    assert_eq!(meta.gid(), g.gid, "--socket-group not applied");
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    let op = format!("lookup id:{id} {}", k(1));
    let r = Peer::nobody().groups(&[g.gid]).run(&e.t.daemon, &[&op]);
    assert_eq!(r[0].assert_ok().text, v(10), "a member of the socket group");
    let r = Peer::nobody().run(&e.t.daemon, &[&op]);
    assert_eq!(r[0].code, "connect-error", "a non-member connected: {r:?}");
}

#[tokio::test]
async fn foreign_maps_need_admin_on_top_of_the_access() {
    let (f1, f2) = (names::unique("fa"), names::unique("fb"));
    let rules = [
        Rule::root_all(),
        Rule::allow(&["uid:65534"], &["all"], &["read"]),
        Rule::allow(&["uid:65534"], &[&format!("name:{f2}")], &["admin"]),
    ];
    let Some(e) = PolicyEnv::start(&rules, DaemonOptions::default()).await else {
        return;
    };
    // Maps the daemon did not make: pinned on the bpffs, outside its root.
    let p1 = e.t.fs.path().join(&f1);
    let p2 = e.t.fs.path().join(&f2);
    let m1 = bpftool::create_map(&p1, "hash", 4, 8, 8, &f1, 0).id;
    let m2 = bpftool::create_map(&p2, "hash", 4, 8, 8, &f2, 0).id;
    KernelMap::from_id(m1).update(&u32b(1), &u64b(10));
    KernelMap::from_id(m2).update(&u32b(1), &u64b(10));
    let ops = [
        "list-all".to_owned(),
        format!("get id:{m1}"),
        format!("lookup id:{m1} {}", k(1)),
        format!("get pin:{}", p1.display()),
        format!("get id:{m2}"),
        format!("lookup pin:{} {}", p2.display(), k(1)),
        format!("update id:{m2} {} {}", k(1), v(7)),
    ];
    let ops: Vec<&str> = ops.iter().map(String::as_str).collect();
    let r = Peer::nobody().run(&e.t.daemon, &ops);
    let ids = r[0].ids();
    assert!(
        !ids.contains(&m1),
        "a foreign map without admin is listed: {:?}",
        r[0]
    );
    assert!(ids.contains(&m2), "{:?}", r[0]);
    r[1].assert_code("PermissionDenied", &["GetMap", "admin"]);
    r[2].assert_code("PermissionDenied", &["Lookup", "admin"]);
    r[3].assert_code("PermissionDenied", &["GetMap", "admin"]);
    assert_eq!(r[4].assert_ok().text, format!("id={m2}"));
    assert_eq!(r[5].assert_ok().text, v(10));
    // admin + read do not make a write.
    r[6].assert_code("PermissionDenied", &["Update", "write"]);
    assert_eq!(KernelMap::from_id(m2).lookup(&u32b(1)), Some(u64b(10)));
}

#[tokio::test]
async fn a_star_in_a_pin_does_not_escape_a_deny_glob() {
    // `*` in the pattern must stay a wildcard when the text holds a literal '*' at that
    // place: else a map pinned at `locked/*x` slips past a deny on `pin:locked/*`.
    let rules = [
        Rule::root_all(),
        Rule::allow(&["uid:65534"], &["managed"], &["read", "write"]),
        Rule::deny(&["uid:65534"], &["pin:locked/*"], &["write"]),
    ];
    let Some(mut e) = PolicyEnv::start(&rules, DaemonOptions::default()).await else {
        return;
    };
    let c = &mut e.t.client;
    let plain = map_at(c, &names::unique("lk"), "locked/plain").await;
    let starred = map_at(c, &names::unique("lk"), "locked/*x").await;
    let ops = [
        format!("update id:{plain} {} {}", k(1), v(5)),
        format!("update id:{starred} {} {}", k(1), v(5)),
    ];
    let ops: Vec<&str> = ops.iter().map(String::as_str).collect();
    let r = Peer::nobody().run(&e.t.daemon, &ops);
    r[0].assert_code("PermissionDenied", &["Update", "write"]);
    r[1].assert_code("PermissionDenied", &["Update", "write"]);
    assert_eq!(KernelMap::from_id(starred).lookup(&u32b(1)), Some(u64b(10)));
}
