//! Checks shared by the fuzz targets: each runs one of the daemon's input paths on fuzzed
//! input and asserts what must hold whatever the input (besides not panicking).
//!
//! - [`check_data`]: `Data` → bytes of a given size (`codec::decode`) and back
//!   (`codec::encode`) in every `Format`; hex round trips.
//! - [`check_value`]: `codec::value_in` / `value_out` on real kernel maps (plain and per-CPU,
//!   created once per process when the fuzzer runs as root).
//! - [`check_pin`]: `paths::normalize`, `check_new_name`, `confine` against a scratch tree
//!   with a symlink that leads out.
//! - [`check_hex`]: `bpfmap_proto::hex::parse` / `format`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Component, PathBuf};
use std::sync::OnceLock;

use bpfmap_proto::v1::{data::Form, Data, Format};
use bpfmapd::kernel::{CreateParams, Map};
use bpfmapd::registry::paths;
use bpfmapd::service::codec::{self, Side, Types};
use bytes::Bytes;

/// Key/value sizes tried for every `Data`.
const SIZES: [usize; 9] = [0, 1, 2, 3, 4, 7, 8, 16, 64];
const FORMATS: [Format; 4] = [Format::Raw, Format::Hex, Format::Number, Format::Json];

/// Decodes `d` at each size and checks the result; encodes what decoded in every format
/// and checks that it decodes back to the same bytes.
pub fn check_data(d: &Data) {
    for size in SIZES {
        let Ok(bytes) = codec::decode(d, size, "key", &Types::none(), Side::Key) else {
            continue;
        };
        assert_eq!(
            bytes.len(),
            size,
            "decode returned the wrong length for {d:?}"
        );
        if let Some(Form::Raw(raw)) = &d.form {
            assert_eq!(&bytes[..], &raw[..]);
        }
        round_trip(&bytes);
    }
}

/// Encodes `bytes` in every format; whatever encodes must decode to `bytes`.
pub fn round_trip(bytes: &[u8]) {
    for f in FORMATS {
        if let Ok(enc) = codec::encode(
            Bytes::copy_from_slice(bytes),
            f,
            "value",
            &Types::none(),
            Side::Value,
        ) {
            let back = codec::decode(&enc, bytes.len(), "value", &Types::none(), Side::Value)
                .unwrap_or_else(|e| panic!("{f:?} output {enc:?} does not decode: {e}"));
            assert_eq!(back, bytes, "{f:?} round trip");
            if let Some(Form::Hex(h)) = &enc.form {
                assert_eq!(h, &bpfmap_proto::hex::format(bytes));
            }
        }
    }
}

/// Parses `text` as bpftool hex; what parses formats and parses back to the same bytes.
pub fn check_hex(text: &str) {
    if let Ok(bytes) = bpfmap_proto::hex::parse(text) {
        let f = bpfmap_proto::hex::format(&bytes);
        assert!(
            f.bytes()
                .all(|c| c == b' ' || c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
            "format gave {f:?}"
        );
        assert_eq!(
            bpfmap_proto::hex::parse(&f).ok(),
            Some(bytes),
            "{text:?} → {f:?}"
        );
    }
}

/// The kernel maps the value checks run on, made once: hash u32 → 8 bytes, hash u32 → 3
/// bytes, per-CPU hash u32 → 3 bytes (8-byte slots), per-CPU array u32 → 8 bytes. Empty when
/// this process may not create maps (not root): the value checks are then skipped.
pub fn maps() -> &'static [Map] {
    static MAPS: OnceLock<Vec<Map>> = OnceLock::new();
    MAPS.get_or_init(|| {
        let specs: [(u32, &str, u32); 4] = [
            (1, "fz_hash8", 8),
            (1, "fz_hash3", 3),
            (5, "fz_pcpu3", 3),
            (6, "fz_pcarr8", 8),
        ];
        let made: Vec<Map> = specs
            .iter()
            .filter_map(|&(kind, name, value_size)| {
                Map::create(&CreateParams {
                    kind,
                    name,
                    key_size: 4,
                    value_size,
                    max_entries: 4,
                    ..Default::default()
                })
                .ok()
            })
            .collect();
        if made.is_empty() {
            eprintln!("bpfmapd-fuzz: cannot create BPF maps (not root?): value checks skipped");
        }
        made
    })
}

/// `value_in` on every map; a value that goes in comes out (raw) as the same bytes.
pub fn check_value(value: Option<&Data>, per_cpu: &[Data]) {
    for map in maps() {
        let Ok(v) = codec::value_in(map, value, per_cpu, &Types::none()) else {
            continue;
        };
        assert_eq!(
            v.len(),
            map.value_stride(),
            "value_in length on {}",
            map.name
        );
        let vs = map.value_size as usize;
        for f in FORMATS {
            let Ok((single, cpus)) =
                codec::value_out(map, Bytes::from(v.clone()), f, &Types::none())
            else {
                continue;
            };
            if map.kind.is_percpu() {
                assert!(single.is_none());
                assert_eq!(cpus.len() as u32, map.percpu_count());
                if f == Format::Raw {
                    // Back in as per-CPU values: the same kernel bytes (padding is zero).
                    let again = codec::value_in(map, None, &cpus, &Types::none())
                        .expect("value_out → value_in");
                    assert_eq!(again, v);
                }
            } else {
                assert!(cpus.is_empty());
                let single = single.expect("a value");
                assert_eq!(
                    codec::decode(&single, vs, "value", &Types::none(), Side::Value)
                        .ok()
                        .as_deref(),
                    Some(&v[..])
                );
            }
        }
    }
}

/// A scratch root (a temporary directory, not a bpffs) holding `dir/`, `dir/sub/` and
/// `out` → `/tmp`: (root, its canonical form).
fn scratch() -> &'static (PathBuf, PathBuf) {
    static ROOT: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    ROOT.get_or_init(|| {
        let root = std::env::temp_dir().join(format!("bpfmapd-fuzz-{}", std::process::id()));
        let _ = std::fs::create_dir_all(root.join("dir/sub"));
        let _ = std::os::unix::fs::symlink("/tmp", root.join("out"));
        let _ = std::os::unix::fs::symlink(root.join("dir"), root.join("in"));
        let canon = root.canonicalize().expect("canonical scratch root");
        (root, canon)
    })
}

/// `normalize` and `check_new_name` invariants; `confine` never lets a path under the root
/// resolve outside it.
pub fn check_pin(pin: &str) {
    let (root, canon) = scratch();
    let Ok(p) = paths::normalize(root, pin) else {
        return;
    };
    assert!(p.is_absolute(), "{pin:?} → {p:?}");
    assert!(!pin.contains('\0'));
    assert!(pin.len() <= 4095);
    for c in p.components() {
        assert!(
            !matches!(c, Component::ParentDir),
            "{pin:?} → {p:?} keeps '..'"
        );
        if let Component::Normal(n) = c {
            assert!(n.len() <= 255, "{pin:?}: component of {} bytes", n.len());
        }
    }
    if !pin.starts_with('/') {
        assert!(
            p.starts_with(root) && p != *root,
            "{pin:?} → {p:?} left the root"
        );
    }
    if paths::check_new_name(&p).is_ok() {
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
        assert!(
            !name.unwrap_or_default().contains('.'),
            "{p:?} accepted as a new name"
        );
    }
    // Only paths in the scratch tree: confine looks at the filesystem (read-only).
    if p.starts_with(root) {
        for must_exist in [false, true] {
            if let Ok(resolved) = paths::confine(root, canon, &p, must_exist) {
                assert!(
                    resolved.starts_with(canon),
                    "{pin:?} → {p:?} resolved outside the root: {resolved:?}"
                );
            }
        }
    }
}
