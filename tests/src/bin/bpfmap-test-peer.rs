//! `bpfmap-test-peer --uid UID [--gid GID] [--groups G1,G2] --addr ADDR [--op OP]...`: a
//! client that drops to another user before it connects, so that the daemon sees a non-root
//! peer (SO_PEERCRED). The primary group is GID (default: UID), the supplementary groups are
//! exactly `--groups` (default: none).
//!
//! Without `--op`: calls ListMaps, then an Update on map id 1 (it need not exist: the access
//! check comes first). Each `--op` is one call, written as words:
//!
//! | op | call |
//! | --- | --- |
//! | `list`, `list-all` | ListMaps{all}: prints `ids=1,2,3` |
//! | `get REF` | GetMap: prints `id=N` |
//! | `lookup REF KEY` | Lookup (FORMAT_HEX): prints the value's hex without spaces |
//! | `getnext REF` | GetNextKey from the start: prints the key's hex |
//! | `dump REF`, `dump-delete REF` | Dump (with delete): prints `n=<entries>` |
//! | `update REF KEY VALUE`, `delete REF KEY`, `lookup-delete REF KEY` | one element |
//! | `batch-update REF KEY VALUE`, `batch-delete REF KEY` | one-entry batches |
//! | `create NAME PIN` | CreateMap hash, 4-byte keys, 8-byte values, 8 entries (`-`: no pin) |
//! | `delete-map REF`, `freeze REF`, `pin REF PATH`, `unpin PATH` | map lifecycle |
//! | `watch REF` | Watch (FORMAT_HEX): reads the initial snapshot, prints `n=<entries>` |
//! | `events REF` | ReadEvents (FORMAT_RAW): prints `subscribed` once the daemon accepts it |
//!
//! REF is `id:N`, `pin:PATH` or `name:NAME`; KEY and VALUE are hex (`01000000`).
//! Prints one line per call: `<op> Ok [detail]` or `<op> <grpc code name> <message>`, or
//! `connect-error <text>` when the socket refuses the connection.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bpfmap_client::proto::{
    data::Form, map_ref::Ref, BatchDeleteRequest, BatchUpdateRequest, CreateMapRequest, Data,
    DeleteMapRequest, DeleteRequest, DumpRequest, Entry, Format, FreezeMapRequest, GetMapRequest,
    GetNextKeyRequest, ListMapsRequest, LookupAndDeleteRequest, LookupRequest, MapRef, MapType,
    PinMapRequest, ReadEventsRequest, UnpinMapRequest, UpdateRequest, WatchRequest,
};
use nix::unistd::{setgid, setgroups, setuid, Gid, Uid};

type Client = bpfmap_client::proto::map_service_client::MapServiceClient<tonic::transport::Channel>;

fn usage() -> ! {
    panic!(
        "usage: bpfmap-test-peer --uid UID [--gid GID] [--groups G1,G2] --addr ADDR [--op OP]..."
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let get = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let uid: u32 = get("--uid")
        .unwrap_or_else(|| usage())
        .parse()
        .expect("uid");
    let gid: u32 = get("--gid").map_or(uid, |g| g.parse().expect("gid"));
    let groups: Vec<Gid> = get("--groups")
        .map(|g| {
            g.split(',')
                .filter(|s| !s.is_empty())
                .map(|s| Gid::from_raw(s.parse().expect("group id")))
                .collect()
        })
        .unwrap_or_default();
    let addr = get("--addr").unwrap_or_else(|| usage());
    let ops: Vec<String> = args
        .windows(2)
        .filter(|w| w[0] == "--op")
        .map(|w| w[1].clone())
        .collect();
    // Still single-threaded here: set groups, gid, then uid, before any runtime exists.
    setgroups(&groups).expect("setgroups");
    setgid(Gid::from_raw(gid)).expect("setgid");
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
        if ops.is_empty() {
            let r = client.list_maps(ListMapsRequest { all: false }).await;
            report("ListMaps", r.map(|_| String::new()));
            let r = client
                .update(UpdateRequest {
                    map: map_ref("id:1"),
                    ..Default::default()
                })
                .await;
            report("Update", r.map(|_| String::new()));
            return;
        }
        for op in &ops {
            let words: Vec<&str> = op.split_whitespace().collect();
            let r = run(&mut client, &words).await;
            report(words.first().copied().unwrap_or(""), r);
        }
    });
}

fn map_ref(text: &str) -> Option<MapRef> {
    let r = if let Some(id) = text.strip_prefix("id:") {
        Ref::Id(id.parse().expect("map id"))
    } else if let Some(pin) = text.strip_prefix("pin:") {
        Ref::Pin(pin.to_owned())
    } else if let Some(name) = text.strip_prefix("name:") {
        Ref::Name(name.to_owned())
    } else {
        panic!("bad map ref {text:?}: use id:N, pin:PATH or name:NAME")
    };
    Some(MapRef { r#ref: Some(r) })
}

fn hex(text: &str) -> Option<Data> {
    Some(Data {
        form: Some(Form::Hex(text.to_owned())),
    })
}

fn hex_out(d: &Option<Data>) -> String {
    match d.as_ref().and_then(|d| d.form.as_ref()) {
        Some(Form::Hex(h)) => h.replace(' ', ""),
        other => format!("{other:?}"),
    }
}

async fn run(c: &mut Client, w: &[&str]) -> Result<String, tonic::Status> {
    let arg = |i: usize| -> &str { w.get(i).copied().unwrap_or_else(|| usage()) };
    let hexf = Format::Hex as i32;
    Ok(match arg(0) {
        "list" | "list-all" => {
            let maps = c
                .list_maps(ListMapsRequest {
                    all: arg(0) == "list-all",
                })
                .await?
                .into_inner()
                .maps;
            let ids: Vec<String> = maps.iter().map(|m| m.id.to_string()).collect();
            format!("ids={}", ids.join(","))
        }
        "get" => {
            let m = c
                .get_map(GetMapRequest {
                    map: map_ref(arg(1)),
                })
                .await?;
            format!("id={}", m.into_inner().id)
        }
        "lookup" => {
            let r = c
                .lookup(LookupRequest {
                    map: map_ref(arg(1)),
                    key: hex(arg(2)),
                    format: hexf,
                    ..Default::default()
                })
                .await?;
            hex_out(&r.into_inner().value)
        }
        "getnext" => {
            let r = c
                .get_next_key(GetNextKeyRequest {
                    map: map_ref(arg(1)),
                    key: None,
                    format: hexf,
                })
                .await?;
            hex_out(&r.into_inner().next_key)
        }
        "dump" | "dump-delete" => {
            let mut s = c
                .dump(DumpRequest {
                    map: map_ref(arg(1)),
                    format: hexf,
                    delete: arg(0) == "dump-delete",
                    ..Default::default()
                })
                .await?
                .into_inner();
            let mut n = 0;
            while let Some(m) = s.message().await? {
                n += m.entries.len();
            }
            format!("n={n}")
        }
        "update" => {
            c.update(UpdateRequest {
                map: map_ref(arg(1)),
                key: hex(arg(2)),
                value: hex(arg(3)),
                ..Default::default()
            })
            .await?;
            String::new()
        }
        "delete" => {
            c.delete(DeleteRequest {
                map: map_ref(arg(1)),
                key: hex(arg(2)),
            })
            .await?;
            String::new()
        }
        "lookup-delete" => {
            let r = c
                .lookup_and_delete(LookupAndDeleteRequest {
                    map: map_ref(arg(1)),
                    key: hex(arg(2)),
                    format: hexf,
                })
                .await?;
            hex_out(&r.into_inner().value)
        }
        "batch-update" => {
            let msg = BatchUpdateRequest {
                map: map_ref(arg(1)),
                entries: vec![Entry {
                    key: hex(arg(2)),
                    value: hex(arg(3)),
                    per_cpu_values: Vec::new(),
                }],
                packed: None,
                flag: 0,
            };
            let r = c.batch_update(tokio_stream::iter(vec![msg])).await?;
            format!("updated={}", r.into_inner().updated)
        }
        "batch-delete" => {
            let r = c
                .batch_delete(BatchDeleteRequest {
                    map: map_ref(arg(1)),
                    keys: vec![hex(arg(2)).expect("key")],
                })
                .await?;
            format!("deleted={}", r.into_inner().deleted)
        }
        "create" => {
            let pin = arg(2);
            let r = c
                .create_map(CreateMapRequest {
                    r#type: MapType::Hash as i32,
                    name: arg(1).to_owned(),
                    key_size: 4,
                    value_size: 8,
                    max_entries: 8,
                    pin: if pin == "-" {
                        String::new()
                    } else {
                        pin.to_owned()
                    },
                    ..Default::default()
                })
                .await?;
            format!("id={}", r.into_inner().id)
        }
        "delete-map" => {
            c.delete_map(DeleteMapRequest {
                map: map_ref(arg(1)),
            })
            .await?;
            String::new()
        }
        "freeze" => {
            c.freeze_map(FreezeMapRequest {
                map: map_ref(arg(1)),
            })
            .await?;
            String::new()
        }
        "pin" => {
            c.pin_map(PinMapRequest {
                map: map_ref(arg(1)),
                pin: arg(2).to_owned(),
            })
            .await?;
            String::new()
        }
        "unpin" => {
            c.unpin_map(UnpinMapRequest {
                pin: arg(1).to_owned(),
            })
            .await?;
            String::new()
        }
        "watch" => {
            let mut s = c
                .watch(WatchRequest {
                    map: map_ref(arg(1)),
                    format: hexf,
                    interval_ms: 0,
                })
                .await?
                .into_inner();
            let first = s.message().await?.unwrap_or_default();
            format!("n={}", first.changes.len())
        }
        "events" => {
            c.read_events(ReadEventsRequest {
                map: map_ref(arg(1)),
                ..Default::default()
            })
            .await?;
            "subscribed".to_owned()
        }
        other => panic!("unknown op {other:?}"),
    })
}

fn report(rpc: &str, r: Result<String, tonic::Status>) {
    match r {
        Ok(detail) if detail.is_empty() => println!("{rpc} Ok"),
        Ok(detail) => println!("{rpc} Ok {detail}"),
        Err(s) => println!("{rpc} {:?} {}", s.code(), s.message().replace('\n', " ")),
    }
}
