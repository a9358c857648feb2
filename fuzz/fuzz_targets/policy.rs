//! The policy parser (`Policy::parse`) on fuzzed TOML, then every decision of what parsed
//! for a set of identities and maps; and the policy globs against a reference matcher.
//! Nothing may panic or take long (libFuzzer's -timeout catches a slow glob).

#![no_main]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bpfmapd::auth::glob;
use bpfmapd::auth::{Access, Identity, MapFacts, Policy, UnixPeer};
use libfuzzer_sys::fuzz_target;

/// Reference glob: `*` any run (also empty), `?` one character, all else literal.
fn reference(p: &[char], t: &[char]) -> bool {
    // m[j] = pattern prefix of the current length matches text prefix of length j.
    let mut m = vec![false; t.len() + 1];
    m[0] = true;
    for &pc in p {
        let mut next = vec![false; t.len() + 1];
        if pc == '*' {
            let mut any = false;
            for j in 0..=t.len() {
                any |= m[j];
                next[j] = any;
            }
        } else {
            for j in 1..=t.len() {
                next[j] = m[j - 1] && (pc == '?' || pc == t[j - 1]);
            }
        }
        m = next;
    }
    m[t.len()]
}

fn identities(cn: &str) -> Vec<Identity> {
    let unix = |uid, gid, groups: Vec<u32>| {
        Identity::Unix(Arc::new(UnixPeer {
            uid,
            gid,
            groups,
            pid: Some(1),
        }))
    };
    vec![
        unix(0, 0, vec![]),
        unix(65534, 65534, vec![100, 65534]),
        Identity::Cert {
            cn: Some(cn.to_owned()),
            sans: vec![format!("spiffe://fleet/{cn}"), cn.to_owned()],
            addr: "127.0.0.1:1".into(),
        },
        Identity::Cert {
            cn: None,
            sans: Vec::new(),
            addr: "127.0.0.1:1".into(),
        },
        Identity::Anonymous {
            addr: "127.0.0.1:1".into(),
        },
        Identity::Unknown,
    ]
}

fuzz_target!(|input: &[u8]| {
    let Some((&which, rest)) = input.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    if which & 1 == 0 {
        // Glob: pattern NUL text, lengths bounded so that the reference stays cheap.
        let (p, t) = text.split_once('\0').unwrap_or((&text, ""));
        let (pc, tc): (Vec<char>, Vec<char>) = (p.chars().collect(), t.chars().collect());
        if pc.len() > 256 || tc.len() > 256 {
            return;
        }
        assert_eq!(
            glob::matches(p, t),
            reference(&pc, &tc),
            "glob {p:?} against {t:?}"
        );
        return;
    }
    let Ok(policy) = Policy::parse(&text) else {
        return;
    };
    let root = Path::new("/sys/fs/bpf/bpfmapd");
    let cn = text.lines().next().unwrap_or("agent-1");
    let facts = [
        MapFacts {
            id: Some(42),
            name: "xdp_stats",
            pins: vec![root.join("public/a"), PathBuf::from("/sys/fs/bpf/other")],
            managed: true,
        },
        MapFacts {
            id: None,
            name: cn,
            pins: vec![root.join(cn)],
            managed: true,
        },
        MapFacts {
            id: Some(7),
            name: "",
            pins: Vec::new(),
            managed: false,
        },
    ];
    for who in identities(cn) {
        let _ = who.key();
        let _ = who.to_string();
        for f in &facts {
            for a in [Access::Read, Access::Write, Access::Create, Access::Admin] {
                let _ = policy.allows(&who, a, f, root);
            }
        }
    }
});
