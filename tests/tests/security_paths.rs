//! Pin-path confinement as an attacker tries it (issue 4): `..`, NUL, names bpffs refuses,
//! overlong paths, symlinks out of the tree (as a directory and as the final component),
//! absolute paths off bpffs. Each is INVALID_ARGUMENT (a pin that simply does not exist is
//! NOT_FOUND), and nothing appears outside the daemon's root.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use bpfmap_tests::api::pb::{
    CreateMapRequest, GetMapRequest, MapType, PinMapRequest, UnpinMapRequest,
};
use bpfmap_tests::api::*;
use bpfmap_tests::{bpftool, names, TestEnv};
use tonic::Code;

/// Every path under `dir`, recursively (symlinks not followed), relative to `dir`.
fn tree(dir: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            out.insert(p.strip_prefix(dir).unwrap().to_path_buf());
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                stack.push(p);
            }
        }
    }
    out
}

/// Everything on the bpffs mount outside the daemon's root, plus what is in `outside`.
fn outside_view(t: &TestEnv, outside: &Path) -> (BTreeSet<PathBuf>, BTreeSet<PathBuf>) {
    let bpffs: BTreeSet<PathBuf> = tree(t.fs.path())
        .into_iter()
        .filter(|p| !p.starts_with("bpfmapd"))
        .collect();
    (bpffs, tree(outside))
}

fn create_at(name: &str, pin: &str) -> CreateMapRequest {
    let mut req = create_req(MapType::Hash, name, 4, 8, 8);
    req.pin = pin.to_owned();
    req
}

/// A map the attacks try to pin elsewhere.
async fn victim(t: &mut TestEnv) -> u32 {
    let name = names::unique("vic");
    create(&mut t.client, create_req(MapType::Hash, &name, 4, 8, 8))
        .await
        .id
}

/// Asserts that CreateMap and PinMap at `pin` fail with INVALID_ARGUMENT (message with
/// `words`), and that no map named like the attempt exists afterwards.
async fn refused_new(t: &mut TestEnv, victim: u32, pin: &str, words: &[&str]) {
    let name = names::unique("atk");
    let c = &mut t.client;
    assert_status(
        c.create_map(create_at(&name, pin)).await,
        Code::InvalidArgument,
        words,
    );
    assert_status(
        c.pin_map(PinMapRequest {
            map: by_id(victim),
            pin: pin.to_owned(),
        })
        .await,
        Code::InvalidArgument,
        words,
    );
    assert!(
        !list(c, true).await.iter().any(|m| m.name == name),
        "a map was created for the refused pin {pin:?}"
    );
}

/// [`refused_new`], and GetMap and UnpinMap of `pin` fail with INVALID_ARGUMENT too.
async fn refused_everywhere(t: &mut TestEnv, victim: u32, pin: &str, words: &[&str]) {
    refused_new(t, victim, pin, words).await;
    let c = &mut t.client;
    assert_status(
        c.get_map(GetMapRequest { map: by_pin(pin) }).await,
        Code::InvalidArgument,
        words,
    );
    assert_status(
        c.unpin_map(UnpinMapRequest {
            pin: pin.to_owned(),
        })
        .await,
        Code::InvalidArgument,
        words,
    );
}

#[tokio::test]
async fn dot_dot_and_nul_are_refused() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let outside = tempfile::tempdir().unwrap();
    let v = victim(&mut t).await;
    let before = outside_view(&t, outside.path());
    for pin in [
        "../escape",
        "../../escape",
        "a/../../escape",
        "a/../b",
        "./../escape",
        "..",
    ] {
        refused_everywhere(&mut t, v, pin, &[".."]).await;
    }
    let abs = format!("{}/../escape", t.fs.root().display());
    refused_everywhere(&mut t, v, &abs, &[".."]).await;
    for pin in ["a\0b", "\0", "dir\0/x"] {
        refused_everywhere(&mut t, v, pin, &["NUL"]).await;
    }
    assert_eq!(outside_view(&t, outside.path()), before);
    assert!(!t.fs.path().join("escape").exists());
    assert_eq!(get(&mut t.client, by_id(v)).await.pins.len(), 1);
}

#[tokio::test]
async fn names_bpffs_refuses_are_refused_for_new_pins() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let v = victim(&mut t).await;
    let c = &mut t.client;
    for pin in ["x.y", "sub/x.y", ".hidden", "dir.d/x"] {
        let name = names::unique("dot");
        assert_status(
            c.create_map(create_at(&name, pin)).await,
            Code::InvalidArgument,
            &[],
        );
        assert_status(
            c.pin_map(PinMapRequest {
                map: by_id(v),
                pin: pin.to_owned(),
            })
            .await,
            Code::InvalidArgument,
            &[],
        );
        assert!(!t.fs.pin(pin).exists());
        assert!(!list(c, true).await.iter().any(|m| m.name == name));
    }
    // Names that only make a directory (the root itself, ".") are not pins.
    for pin in [".", "./", "/"] {
        assert_status(
            c.create_map(create_at(&names::unique("dot"), pin)).await,
            Code::InvalidArgument,
            &[],
        );
    }
    // Looking up a pin that does not exist is NOT_FOUND, relative or absolute on bpffs.
    assert_status(
        c.get_map(GetMapRequest {
            map: by_pin("no_such_pin"),
        })
        .await,
        Code::NotFound,
        &[],
    );
    assert_status(
        c.get_map(GetMapRequest {
            map: by_pin(t.fs.path().join("no_such_pin").display().to_string()),
        })
        .await,
        Code::NotFound,
        &[],
    );
    assert_status(
        c.unpin_map(UnpinMapRequest {
            pin: "no_such_pin".into(),
        })
        .await,
        Code::NotFound,
        &[],
    );
}

#[tokio::test]
async fn overlong_paths_are_refused() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let v = victim(&mut t).await;
    let long_component = "c".repeat(256);
    let long_path = vec!["d".repeat(200); 21].join("/"); // 4220 bytes
    let at_limit = "e".repeat(4096);
    for pin in [&long_component, &long_path, &at_limit] {
        refused_everywhere(&mut t, v, pin, &[]).await;
    }
    // Within the pin's own limit (4095 bytes, components of at most 255) but longer than
    // PATH_MAX once under the root: still refused as an argument, not a kernel error.
    let root_len = t.fs.root().display().to_string().len();
    let mut pin = vec!["f".repeat(200); 20].join("/");
    pin.push('/');
    pin.push_str(&"g".repeat(4090 - pin.len()));
    assert!(pin.len() == 4090 && root_len + 1 + pin.len() > 4095);
    let name = names::unique("lng");
    let r = t.client.create_map(create_at(&name, &pin)).await;
    // Whatever the answer, no map may be left behind by the failed create.
    let leaked = list(&mut t.client, true)
        .await
        .into_iter()
        .any(|m| m.name == name);
    assert_status(r, Code::InvalidArgument, &[]);
    assert!(!leaked, "the refused CreateMap left a map behind");
}

#[tokio::test]
async fn symlinks_out_of_the_root_are_refused() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let v = victim(&mut t).await;
    let root = t.fs.root();
    // Targets: a plain directory, a directory on the same bpffs but outside the root, and
    // a pinned map outside the root.
    let plain = tempfile::tempdir().unwrap();
    let bpf_dir = t.fs.path().join("outside_dir");
    std::fs::create_dir(&bpf_dir).unwrap();
    let secret_name = names::unique("sec");
    let secret_pin = t.fs.path().join("outside_pin");
    let secret = bpftool::create_map(&secret_pin, "hash", 4, 8, 8, &secret_name, 0).id;
    // What the directory symlinks lead to exists, so that a lookup through them has
    // something to find: a plain file, and a map pinned on the bpffs outside the root.
    std::fs::write(plain.path().join("x"), b"not a map").unwrap();
    std::fs::create_dir(plain.path().join("deeper")).unwrap();
    std::fs::write(plain.path().join("deeper/x"), b"not a map").unwrap();
    let other_pin = bpf_dir.join("x");
    let other = bpftool::create_map(&other_pin, "hash", 4, 8, 8, &names::unique("oth"), 0).id;
    symlink(plain.path(), root.join("to_plain")).unwrap();
    symlink(&bpf_dir, root.join("to_bpf_dir")).unwrap();
    symlink(&secret_pin, root.join("to_pin")).unwrap();
    symlink("/etc/passwd", root.join("to_passwd")).unwrap();
    // A symlink to a directory that does not exist yet (mkdir through it must not happen).
    symlink(plain.path().join("later"), root.join("to_later")).unwrap();
    let before = outside_view(&t, plain.path());

    // Through a directory symlink, to something that exists.
    for pin in ["to_plain/x", "to_plain/deeper/x", "to_bpf_dir/x"] {
        refused_everywhere(&mut t, v, pin, &[]).await;
    }
    // New pins through a directory symlink, also where directories would have to be made.
    for pin in [
        "to_plain/new",
        "to_plain/a/b/new",
        "to_bpf_dir/new",
        "to_bpf_dir/a/new",
        "to_later/x",
        "to_later/a/x",
    ] {
        refused_new(&mut t, v, pin, &[]).await;
    }
    // The final component is a symlink that leads out: creating or pinning over it, reading
    // or unpinning through it.
    for pin in ["to_pin", "to_passwd", "to_plain", "to_bpf_dir"] {
        refused_everywhere(&mut t, v, pin, &[]).await;
    }
    assert_eq!(
        outside_view(&t, plain.path()),
        before,
        "something was created outside"
    );
    assert!(
        secret_pin.exists() && other_pin.exists(),
        "a pin behind a symlink was unpinned"
    );
    assert!(!plain.path().join("later").exists());
    // The symlinks themselves are still there, untouched.
    for l in ["to_plain", "to_bpf_dir", "to_pin", "to_passwd", "to_later"] {
        assert!(root.join(l).symlink_metadata().unwrap().is_symlink(), "{l}");
    }
    assert!(
        !list(&mut t.client, false)
            .await
            .iter()
            .any(|m| m.id == secret || m.id == other),
        "a map behind a symlink became managed"
    );
}

#[tokio::test]
async fn absolute_pins_off_bpffs_are_refused() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let v = victim(&mut t).await;
    let plain = tempfile::tempdir().unwrap();
    let before = tree(plain.path());
    let target = plain.path().join("pin");
    let target_s = target.display().to_string();
    let c = &mut t.client;
    assert_status(
        c.pin_map(PinMapRequest {
            map: by_id(v),
            pin: target_s.clone(),
        })
        .await,
        Code::InvalidArgument,
        &["bpffs"],
    );
    assert_status(
        c.create_map(create_at(&names::unique("abs"), &target_s))
            .await,
        Code::InvalidArgument,
        &["bpffs"],
    );
    for existing in ["/etc/passwd", "/dev/null", "/proc/self/status"] {
        assert_status(
            c.get_map(GetMapRequest {
                map: by_pin(existing),
            })
            .await,
            Code::InvalidArgument,
            &[],
        );
        assert_status(
            c.unpin_map(UnpinMapRequest {
                pin: existing.into(),
            })
            .await,
            Code::InvalidArgument,
            &[],
        );
    }
    assert!(std::path::Path::new("/etc/passwd").exists());
    assert_eq!(tree(plain.path()), before);
    assert_eq!(get(c, by_id(v)).await.pins.len(), 1);
}

#[tokio::test]
async fn an_overlong_multibyte_component_is_an_argument_error() {
    // 15 ASCII bytes, then 2-byte characters: byte 16 falls inside one. The error message
    // quotes the component's start; it must not cut a character in two (a panic).
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let v = victim(&mut t).await;
    let component = format!("{}{}", "a".repeat(15), "é".repeat(130));
    assert!(component.len() > 255);
    for pin in [component.clone(), format!("dir/{component}/x")] {
        refused_everywhere(&mut t, v, &pin, &[]).await;
    }
    assert!(t.daemon.try_wait().is_none(), "bpfmapd died");
    assert_eq!(get(&mut t.client, by_id(v)).await.id, v);
}
