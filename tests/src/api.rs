//! Request builders, answer decoders, status assertions and the dump/batch helpers that the
//! tests share. Thin on purpose: a test should read like the calls a user makes.

use std::fmt::Debug;

pub use bpfmap_client::proto as pb;
use pb::data::Form;
use pb::map_ref::Ref;
use pb::{
    BatchUpdateRequest, CreateMapRequest, Data, DumpRequest, DumpResponse, Entry, Format,
    LookupRequest, LookupResponse, MapInfo, MapRef, MapType, PackedEntries, UpdateRequest,
};
use tonic::{Code, Status};

pub use crate::daemon::Client;

/// `MapRef { id }`.
pub fn by_id(id: u32) -> Option<MapRef> {
    Some(MapRef {
        r#ref: Some(Ref::Id(id)),
    })
}

/// `MapRef { pin }` (relative: under the daemon's bpffs root).
pub fn by_pin(pin: impl Into<String>) -> Option<MapRef> {
    Some(MapRef {
        r#ref: Some(Ref::Pin(pin.into())),
    })
}

/// `MapRef { name }`.
pub fn by_name(name: impl Into<String>) -> Option<MapRef> {
    Some(MapRef {
        r#ref: Some(Ref::Name(name.into())),
    })
}

/// `Data { raw }`.
pub fn raw(bytes: &[u8]) -> Option<Data> {
    Some(Data {
        form: Some(Form::Raw(bytes::Bytes::copy_from_slice(bytes))),
    })
}

/// `Data { hex }`.
pub fn hex(text: &str) -> Option<Data> {
    Some(Data {
        form: Some(Form::Hex(text.to_owned())),
    })
}

/// `Data { number }`.
pub fn num(n: u64) -> Option<Data> {
    Some(Data {
        form: Some(Form::Number(n)),
    })
}

/// A u32 in host byte order, the kernel's layout for array indexes and u32 keys.
pub fn u32b(n: u32) -> Vec<u8> {
    n.to_ne_bytes().to_vec()
}

/// A u64 in host byte order.
pub fn u64b(n: u64) -> Vec<u8> {
    n.to_ne_bytes().to_vec()
}

/// The bytes of a returned `Data` in raw form (panics on another form).
pub fn bytes_of(data: &Option<Data>) -> Vec<u8> {
    match data.as_ref().and_then(|d| d.form.as_ref()) {
        Some(Form::Raw(b)) => b.to_vec(),
        other => panic!("expected Data.raw, got {other:?}"),
    }
}

/// The text of a returned `Data` in hex form (panics on another form).
pub fn hex_of(data: &Option<Data>) -> String {
    match data.as_ref().and_then(|d| d.form.as_ref()) {
        Some(Form::Hex(s)) => s.clone(),
        other => panic!("expected Data.hex, got {other:?}"),
    }
}

/// The number of a returned `Data` in number form (panics on another form).
pub fn num_of(data: &Option<Data>) -> u64 {
    match data.as_ref().and_then(|d| d.form.as_ref()) {
        Some(Form::Number(n)) => *n,
        other => panic!("expected Data.number, got {other:?}"),
    }
}

/// The bytes of a `Data` in any form a test sends (raw or hex).
pub fn data_bytes(data: &Data) -> Vec<u8> {
    match data.form.as_ref() {
        Some(Form::Raw(b)) => b.to_vec(),
        Some(Form::Hex(s)) => bpfmap_proto::hex::parse(s).expect("hex"),
        other => panic!("cannot turn {other:?} into bytes"),
    }
}

/// A CreateMapRequest for `ty` with the given sizes; pinned at `<root>/<name>`.
pub fn create_req(ty: MapType, name: &str, key: u32, value: u32, max: u32) -> CreateMapRequest {
    CreateMapRequest {
        r#type: ty as i32,
        name: name.to_owned(),
        key_size: key,
        value_size: value,
        max_entries: max,
        ..Default::default()
    }
}

/// CreateMap that must succeed.
pub async fn create(client: &mut Client, req: CreateMapRequest) -> MapInfo {
    let what = format!("{req:?}");
    match client.create_map(req).await {
        Ok(r) => r.into_inner(),
        Err(s) => panic!("CreateMap {what}: {s:?}"),
    }
}

/// Update (flag ANY, value form as given) that must succeed.
pub async fn update(
    client: &mut Client,
    map: Option<MapRef>,
    key: Option<Data>,
    value: Option<Data>,
) {
    let req = UpdateRequest {
        map,
        key,
        value,
        ..Default::default()
    };
    let what = format!("{req:?}");
    if let Err(s) = client.update(req).await {
        panic!("Update {what}: {s:?}");
    }
}

/// Lookup in `format`.
pub async fn lookup(
    client: &mut Client,
    map: Option<MapRef>,
    key: Option<Data>,
    format: Format,
) -> Result<LookupResponse, Status> {
    client
        .lookup(LookupRequest {
            map,
            key,
            format: format as i32,
            ..Default::default()
        })
        .await
        .map(tonic::Response::into_inner)
}

/// Asserts that `result` failed with `code` and that its message contains every word of
/// `words` (ignoring case). Returns the status for further checks.
#[track_caller]
pub fn assert_status<T: Debug>(result: Result<T, Status>, code: Code, words: &[&str]) -> Status {
    let status = match result {
        Ok(v) => panic!("expected {code:?} (message with {words:?}), got success: {v:?}"),
        Err(s) => s,
    };
    assert_eq!(
        status.code(),
        code,
        "expected {code:?}, got {:?}: {:?}",
        status.code(),
        status.message()
    );
    let msg = status.message().to_lowercase();
    for w in words {
        assert!(
            msg.contains(&w.to_lowercase()),
            "{code:?} message {:?} should mention {w:?}",
            status.message()
        );
    }
    status
}

/// Runs a Dump and collects every message of the stream.
pub async fn dump(client: &mut Client, req: DumpRequest) -> Result<Vec<DumpResponse>, Status> {
    let mut stream = client.dump(req).await?.into_inner();
    let mut out = Vec::new();
    while let Some(msg) = stream.message().await? {
        out.push(msg);
    }
    Ok(out)
}

/// Dump (unpacked) in `format`: every entry, in stream order.
pub async fn dump_entries(client: &mut Client, map: Option<MapRef>, format: Format) -> Vec<Entry> {
    let req = DumpRequest {
        map,
        format: format as i32,
        ..Default::default()
    };
    let what = format!("{req:?}");
    let msgs = dump(client, req)
        .await
        .unwrap_or_else(|s| panic!("Dump {what}: {s:?}"));
    msgs.into_iter().flat_map(|m| m.entries).collect()
}

/// Splits packed dump messages into (key, value) pairs; `value_len` is the bytes per entry
/// (value_size, or round_up(value_size, 8) × CPUs for per-CPU maps).
pub fn unpack(msgs: &[DumpResponse], key_len: usize, value_len: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    for m in msgs {
        assert!(
            m.entries.is_empty(),
            "a packed dump sent unpacked entries too"
        );
        let Some(p) = m.packed.as_ref() else { continue };
        let n = p.count as usize;
        assert_eq!(
            p.keys.len(),
            n * key_len,
            "packed keys length for {n} entries"
        );
        assert_eq!(
            p.values.len(),
            n * value_len,
            "packed values length for {n} entries"
        );
        for i in 0..n {
            out.push((
                p.keys[i * key_len..(i + 1) * key_len].to_vec(),
                p.values[i * value_len..(i + 1) * value_len].to_vec(),
            ));
        }
    }
    out
}

/// BatchUpdate with packed entries, `chunk` entries per message (map named in the first).
/// Returns the server's `updated` count.
pub async fn batch_update_packed(
    client: &mut Client,
    map: Option<MapRef>,
    pairs: &[(Vec<u8>, Vec<u8>)],
    chunk: usize,
) -> Result<u64, Status> {
    let mut msgs = Vec::new();
    for (i, part) in pairs.chunks(chunk.max(1)).enumerate() {
        let mut keys = Vec::new();
        let mut values = Vec::new();
        for (k, v) in part {
            keys.extend_from_slice(k);
            values.extend_from_slice(v);
        }
        msgs.push(BatchUpdateRequest {
            map: if i == 0 { map.clone() } else { None },
            entries: Vec::new(),
            packed: Some(PackedEntries {
                count: u32::try_from(part.len()).expect("chunk fits u32"),
                keys: keys.into(),
                values: values.into(),
            }),
            flag: 0,
        });
    }
    client
        .batch_update(tokio_stream::iter(msgs))
        .await
        .map(|r| r.into_inner().updated)
}

/// BatchUpdate with `Entry` messages (raw key and value), all in one message.
pub async fn batch_update_entries(
    client: &mut Client,
    map: Option<MapRef>,
    pairs: &[(Vec<u8>, Vec<u8>)],
) -> Result<u64, Status> {
    let entries = pairs
        .iter()
        .map(|(k, v)| Entry {
            key: raw(k),
            value: raw(v),
            per_cpu_values: Vec::new(),
        })
        .collect();
    let msg = BatchUpdateRequest {
        map,
        entries,
        packed: None,
        flag: 0,
    };
    client
        .batch_update(tokio_stream::iter(vec![msg]))
        .await
        .map(|r| r.into_inner().updated)
}

/// ListMaps; `all` as given.
pub async fn list(client: &mut Client, all: bool) -> Vec<MapInfo> {
    client
        .list_maps(pb::ListMapsRequest { all })
        .await
        .unwrap_or_else(|s| panic!("ListMaps: {s:?}"))
        .into_inner()
        .maps
}

/// GetMap that must succeed.
pub async fn get(client: &mut Client, map: Option<MapRef>) -> MapInfo {
    let what = format!("{map:?}");
    client
        .get_map(pb::GetMapRequest { map })
        .await
        .unwrap_or_else(|s| panic!("GetMap {what}: {s:?}"))
        .into_inner()
}

/// `Data { json }`: typed JSON for maps with BTF.
pub fn json(text: &str) -> Option<Data> {
    Some(Data {
        form: Some(Form::Json(text.to_owned())),
    })
}

/// The parsed JSON of a returned `Data` in json form (panics on another form or bad JSON).
pub fn json_of(data: &Option<Data>) -> serde_json::Value {
    match data.as_ref().and_then(|d| d.form.as_ref()) {
        Some(Form::Json(s)) => {
            serde_json::from_str(s).unwrap_or_else(|e| panic!("Data.json {s:?} is not JSON: {e}"))
        }
        other => panic!("expected Data.json, got {other:?}"),
    }
}
