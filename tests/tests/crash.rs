//! Crash safety: `kill -9` of the daemon loses no map and no entry; a restart on the same
//! bpffs adopts the pins again (managed, same ids, still writable).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use bpfmap_tests::api::pb::{DumpRequest, Format, MapType, PinMapRequest};
use bpfmap_tests::api::*;
use bpfmap_tests::{names, KernelMap, TestEnv};

async fn dump_all(
    t: &mut TestEnv,
    map: Option<bpfmap_tests::api::pb::MapRef>,
) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let msgs = dump(
        &mut t.client,
        DumpRequest {
            map,
            packed: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    unpack(&msgs, 4, 8).into_iter().collect()
}

#[tokio::test]
async fn kill9_and_restart_lose_no_map_and_no_entry() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let name = names::unique("crash");
    let info = create(
        &mut t.client,
        create_req(MapType::Hash, &name, 4, 8, 20_000),
    )
    .await;
    let arr_name = names::unique("crarr");
    let arr = create(
        &mut t.client,
        create_req(MapType::Array, &arr_name, 4, 8, 8),
    )
    .await;
    let extra_pin = format!("extra_{name}");
    t.client
        .pin_map(PinMapRequest {
            map: by_id(info.id),
            pin: extra_pin.clone(),
        })
        .await
        .unwrap();
    let pairs: Vec<(Vec<u8>, Vec<u8>)> = (0..10_000u32)
        .map(|i| (u32b(i * 7), u64b(u64::from(i) << 20 | 5)))
        .collect();
    assert_eq!(
        batch_update_packed(&mut t.client, by_id(info.id), &pairs, 4_000)
            .await
            .unwrap(),
        10_000
    );
    update(&mut t.client, by_id(arr.id), num(3), num(333)).await;
    let before = dump_all(&mut t, by_id(info.id)).await;
    assert_eq!(before.len(), 10_000);
    let pins_before = {
        let mut p = get(&mut t.client, by_id(info.id)).await.pins;
        p.sort();
        p
    };

    t.daemon.kill9();
    // While the daemon is dead the pins hold the maps.
    assert_eq!(KernelMap::from_pin(&t.fs.pin(&name)).len(), 10_000);
    t.daemon.restart().await;
    t.client = t.daemon.client().await;

    let after = dump_all(&mut t, by_id(info.id)).await;
    assert_eq!(after, before, "entries changed across kill -9 and restart");
    assert_eq!(after, KernelMap::from_pin(&t.fs.pin(&name)).entries());
    let adopted = get(&mut t.client, by_name(name.clone())).await;
    assert_eq!(adopted.id, info.id);
    assert!(adopted.managed, "not adopted after restart");
    let mut pins_after = adopted.pins.clone();
    pins_after.sort();
    assert_eq!(pins_after, pins_before);
    let listed: Vec<u32> = list(&mut t.client, false)
        .await
        .iter()
        .map(|m| m.id)
        .collect();
    assert!(
        listed.contains(&info.id) && listed.contains(&arr.id),
        "{listed:?}"
    );
    let v = lookup(&mut t.client, by_pin(arr_name), num(3), Format::Number)
        .await
        .unwrap();
    assert_eq!(num_of(&v.value), 333);
    // Still writable after adoption.
    update(&mut t.client, by_pin(name.clone()), num(1), num(1)).await;
    assert_eq!(KernelMap::from_id(info.id).len(), 10_001);
}

#[tokio::test]
async fn repeated_crashes_keep_every_map() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let mut made = Vec::new();
    for round in 0..3u64 {
        let name = names::unique("rep");
        let info = create(&mut t.client, create_req(MapType::Hash, &name, 4, 8, 16)).await;
        update(&mut t.client, by_id(info.id), num(round), num(round * 11)).await;
        made.push((name, info.id, round));
        t.daemon.kill9();
        t.daemon.restart().await;
        t.client = t.daemon.client().await;
    }
    let managed: Vec<u32> = list(&mut t.client, false)
        .await
        .iter()
        .map(|m| m.id)
        .collect();
    for (name, id, round) in made {
        assert!(managed.contains(&id), "{name} lost: {managed:?}");
        let v = lookup(&mut t.client, by_pin(name), num(round), Format::Number)
            .await
            .unwrap();
        assert_eq!(num_of(&v.value), round * 11);
    }
}
