//! Foreign maps, made by bpftool or by a loaded BPF program, not by the daemon: reachable by
//! id, absolute pin and name, listed by ListMaps{all} as not managed, readable and writable.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bpfmap_tests::api::pb::{Format, GetMapRequest, MapType};
use bpfmap_tests::api::*;
use bpfmap_tests::{bpftool, names, BpfProgram, KernelMap, TestEnv};
use tonic::Code;

#[tokio::test]
async fn bpftool_map_is_reachable_by_id_pin_and_name() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let name = names::unique("fx");
    let pin = t.fs.path().join("x");
    let show = bpftool::create_map(&pin, "hash", 4, 8, 16, &name, 0);
    let pin_s = pin.to_string_lossy().into_owned();
    for r in [by_id(show.id), by_pin(pin_s.clone()), by_name(name.clone())] {
        let info = get(&mut t.client, r).await;
        assert_eq!(info.id, show.id);
        assert_eq!(info.name, name);
        assert_eq!(info.r#type, MapType::Hash as i32);
        assert_eq!(
            (info.key_size, info.value_size, info.max_entries),
            (4, 8, 16)
        );
        assert!(!info.managed, "a bpftool map reported as managed");
    }
    let all = list(&mut t.client, true).await;
    let listed = all
        .iter()
        .find(|m| m.id == show.id)
        .expect("not in ListMaps{all}");
    assert!(!listed.managed);
    assert!(!list(&mut t.client, false)
        .await
        .iter()
        .any(|m| m.id == show.id));

    // Writes through the service land in the kernel; bpftool's writes are read back.
    update(&mut t.client, by_pin(pin_s.clone()), num(1), num(0xabcd)).await;
    let dumped = bpftool::dump_pinned(&pin);
    assert_eq!(dumped.len(), 1);
    assert_eq!(dumped[0].key, u32b(1));
    assert_eq!(dumped[0].value, Some(u64b(0xabcd)));
    KernelMap::from_pin(&pin).update(&u32b(2), &u64b(5));
    let v = lookup(&mut t.client, by_name(name.clone()), num(2), Format::Number)
        .await
        .unwrap();
    assert_eq!(num_of(&v.value), 5);
    let entries = dump_entries(&mut t.client, by_id(show.id), Format::Number).await;
    assert_eq!(entries.len(), 2);
}

#[tokio::test]
async fn program_maps_are_reachable_by_id_pin_and_name() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let mut prog = BpfProgram::load();
    let pins = prog.pin_maps(&t.fs.path().join("prog"));
    let all = list(&mut t.client, true).await;
    for map in ["sock_counts", "sock_pcpu", "sock_locked"] {
        let id = prog.map_id(map);
        let by_id_info = get(&mut t.client, by_id(id)).await;
        assert_eq!(by_id_info.name, map);
        assert!(!by_id_info.managed);
        let by_pin_info = get(&mut t.client, by_pin(pins[map].to_string_lossy())).await;
        assert_eq!(by_pin_info.id, id);
        let listed = all
            .iter()
            .find(|m| m.id == id)
            .unwrap_or_else(|| panic!("{map} not listed"));
        assert!(!listed.managed);
        assert_eq!(listed.name, map);
        // Several copies of this program may be loaded (other tests, other processes): the
        // name is either unique and resolves to this map, or ambiguous and the error lists
        // this map's id among the candidates.
        match t.client.get_map(GetMapRequest { map: by_name(map) }).await {
            Ok(info) => assert_eq!(info.into_inner().id, id, "{map} by name"),
            Err(s) => {
                assert_eq!(s.code(), Code::FailedPrecondition, "{map} by name: {s:?}");
                assert!(
                    s.message().contains(&id.to_string()),
                    "ambiguous {map}: message {:?} does not list id {id}",
                    s.message()
                );
            }
        }
    }
    let counts = get(&mut t.client, by_id(prog.map_id("sock_counts"))).await;
    assert_eq!(counts.r#type, MapType::Array as i32);
    let locked = get(&mut t.client, by_id(prog.map_id("sock_locked"))).await;
    assert!(locked.btf_id > 0, "the program's map has BTF: {locked:?}");
    assert!(locked.btf_value_type_id > 0);
}
