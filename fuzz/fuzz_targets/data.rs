//! `Data` and pin paths straight from fuzzed bytes, without the protobuf layer, so that the
//! fuzzer reaches the corner cases of each form quickly: the first byte picks the form
//! (raw, hex, number, JSON, per-CPU values, pin path), the rest is its content.

#![no_main]

use bpfmap_proto::v1::{data::Form, Data};
use bpfmapd_fuzz::{check_data, check_hex, check_pin, check_value, round_trip};
use libfuzzer_sys::fuzz_target;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn number(bytes: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = bytes.len().min(8);
    b[..n].copy_from_slice(&bytes[..n]);
    u64::from_le_bytes(b)
}

fuzz_target!(|input: &[u8]| {
    let Some((&which, rest)) = input.split_first() else {
        return;
    };
    let form = match which % 6 {
        0 => Form::Raw(bytes::Bytes::copy_from_slice(rest)),
        1 => {
            let t = text(rest);
            check_hex(&t);
            Form::Hex(t)
        }
        2 => Form::Number(number(rest)),
        3 => Form::Json(text(rest)),
        4 => {
            // Per-CPU values: chunks of 8 bytes, each a raw value or (odd first byte) hex.
            let values: Vec<Data> = rest
                .chunks(8)
                .map(|c| Data {
                    form: Some(if c[0] & 1 == 1 {
                        Form::Hex(text(&c[1..]))
                    } else {
                        Form::Raw(bytes::Bytes::copy_from_slice(c))
                    }),
                })
                .collect();
            values.iter().for_each(check_data);
            check_value(None, &values);
            check_value(values.first(), &values);
            return;
        }
        _ => {
            check_pin(&text(rest));
            return;
        }
    };
    let d = Data { form: Some(form) };
    check_data(&d);
    check_value(Some(&d), &[]);
    round_trip(rest);
    check_data(&Data { form: None });
});
