//! Every request message of `bpfmap.v1.MapService`, prost-decoded from fuzzed bytes (the
//! first byte picks the type), then through the daemon's validation of what it carries:
//! `Data` keys and values (`codec::decode`/`encode`, `value_in`/`value_out` on real maps),
//! pin paths (`paths::normalize`, `check_new_name`, `confine`) and hex text. Nothing may
//! panic; decoded messages re-encode to bytes that decode to the same message.

#![no_main]

use bpfmap_proto::v1::{
    data::Form, map_ref::Ref, BatchDeleteRequest, BatchUpdateRequest, CreateMapRequest, Data,
    DeleteMapRequest, DeleteRequest, DumpRequest, FreezeMapRequest, GetMapRequest,
    GetNextKeyRequest, ListMapsRequest, LookupAndDeleteRequest, LookupRequest, MapRef,
    PinMapRequest, ReadEventsRequest, UnpinMapRequest, UpdateRequest, WatchRequest,
};
use bpfmapd_fuzz::{check_data, check_hex, check_pin, check_value};
use libfuzzer_sys::fuzz_target;
use prost::Message;

fn data(d: &Option<Data>) {
    if let Some(d) = d {
        check_data(d);
        if let Some(Form::Hex(h)) = &d.form {
            check_hex(h);
        }
    }
}

fn map_ref(m: &Option<MapRef>) {
    if let Some(MapRef {
        r#ref: Some(Ref::Pin(p)),
    }) = m
    {
        check_pin(p);
    }
}

/// Decodes `bytes` as `M`; re-encoding must give a message that decodes to the same value.
fn decoded<M: Message + Default + PartialEq + std::fmt::Debug>(bytes: &[u8]) -> Option<M> {
    let m = M::decode(bytes).ok()?;
    let again = M::decode(m.encode_to_vec().as_slice()).expect("re-encoded message decodes");
    assert_eq!(again, m);
    Some(m)
}

fuzz_target!(|input: &[u8]| {
    let Some((&which, bytes)) = input.split_first() else {
        return;
    };
    match which % 17 {
        0 => {
            if let Some(r) = decoded::<CreateMapRequest>(bytes) {
                map_ref(&r.inner_map);
                if !r.pin.is_empty() {
                    check_pin(&r.pin);
                }
                if !r.name.is_empty() {
                    check_pin(&r.name);
                }
            }
        }
        1 => {
            if let Some(r) = decoded::<GetMapRequest>(bytes) {
                map_ref(&r.map);
            }
        }
        2 => {
            let _ = decoded::<ListMapsRequest>(bytes);
        }
        3 => {
            if let Some(r) = decoded::<DeleteMapRequest>(bytes) {
                map_ref(&r.map);
            }
        }
        4 => {
            if let Some(r) = decoded::<PinMapRequest>(bytes) {
                map_ref(&r.map);
                check_pin(&r.pin);
            }
        }
        5 => {
            if let Some(r) = decoded::<UnpinMapRequest>(bytes) {
                check_pin(&r.pin);
            }
        }
        6 => {
            if let Some(r) = decoded::<FreezeMapRequest>(bytes) {
                map_ref(&r.map);
            }
        }
        7 => {
            if let Some(r) = decoded::<LookupRequest>(bytes) {
                map_ref(&r.map);
                data(&r.key);
                data(&r.value);
            }
        }
        8 => {
            if let Some(r) = decoded::<UpdateRequest>(bytes) {
                map_ref(&r.map);
                map_ref(&r.inner_map);
                data(&r.key);
                data(&r.value);
                r.per_cpu_values.iter().for_each(check_data);
                check_value(r.value.as_ref(), &r.per_cpu_values);
            }
        }
        9 => {
            if let Some(r) = decoded::<DeleteRequest>(bytes) {
                map_ref(&r.map);
                data(&r.key);
            }
        }
        10 => {
            if let Some(r) = decoded::<LookupAndDeleteRequest>(bytes) {
                map_ref(&r.map);
                data(&r.key);
            }
        }
        11 => {
            if let Some(r) = decoded::<GetNextKeyRequest>(bytes) {
                map_ref(&r.map);
                data(&r.key);
            }
        }
        12 => {
            if let Some(r) = decoded::<DumpRequest>(bytes) {
                map_ref(&r.map);
            }
        }
        13 => {
            if let Some(r) = decoded::<BatchUpdateRequest>(bytes) {
                map_ref(&r.map);
                for e in &r.entries {
                    data(&e.key);
                    data(&e.value);
                    e.per_cpu_values.iter().for_each(check_data);
                    check_value(e.value.as_ref(), &e.per_cpu_values);
                }
            }
        }
        14 => {
            if let Some(r) = decoded::<BatchDeleteRequest>(bytes) {
                map_ref(&r.map);
                r.keys.iter().for_each(check_data);
            }
        }
        15 => {
            if let Some(r) = decoded::<ReadEventsRequest>(bytes) {
                map_ref(&r.map);
            }
        }
        _ => {
            if let Some(r) = decoded::<WatchRequest>(bytes) {
                map_ref(&r.map);
            }
        }
    }
});
