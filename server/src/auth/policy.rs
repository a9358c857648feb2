//! The access policy: TOML rules of who may do what to which maps.
//!
//! ```toml
//! [[rule]]
//! who   = ["uid:65534", "group:monitoring", "cert:CN=agent-*", "san:spiffe://fleet/*"]
//! maps  = ["pin:public/*", "name:xdp_*", "id:42", "managed", "all"]
//! allow = ["read"]              # read | write | create | admin
//! ```
//! A rule applies when one of its `who` matches the caller and one of its `maps` matches the
//! map. A matching deny wins over any allow; without a matching allow the answer is no.
//! Names (`user:`, `group:`) are resolved when the policy is loaded, so a typo fails the load
//! instead of silently matching nobody.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_spanned::Spanned;

use super::glob;
use super::identity::Identity;
use super::Access;

/// A policy that failed to load: the line (1-based, 0 when unknown) and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct PolicyError {
    /// Line of the offending entry.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Who {
    Uid(u32),
    Gid(u32),
    CertCn(String),
    San(String),
    Anonymous,
    Any,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum MapSel {
    Pin(String),
    Name(String),
    Id(u32),
    Managed,
    All,
}

#[derive(Debug, Clone)]
struct Rule {
    who: Vec<Who>,
    maps: Vec<MapSel>,
    allow: Vec<Access>,
    deny: Vec<Access>,
}

/// What the policy knows about a map when it decides.
#[derive(Debug, Clone, Default)]
pub struct MapFacts<'a> {
    /// Kernel id (None for a map about to be created).
    pub id: Option<u32>,
    /// Kernel name.
    pub name: &'a str,
    /// Absolute pin paths.
    pub pins: Vec<PathBuf>,
    /// Managed by the daemon.
    pub managed: bool,
}

/// A loaded policy.
#[derive(Debug, Clone)]
pub struct Policy {
    rules: Vec<Rule>,
    /// Where it came from, for logs.
    pub source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    rule: Vec<Spanned<RawRule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(default)]
    who: Vec<Spanned<String>>,
    #[serde(default)]
    maps: Vec<Spanned<String>>,
    #[serde(default)]
    allow: Vec<Spanned<String>>,
    #[serde(default)]
    deny: Vec<Spanned<String>>,
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map_or(0, |t| t.matches('\n').count() + 1)
}

impl Policy {
    /// The policy without a file: uid 0 over the Unix socket may do everything, nobody else
    /// anything.
    pub fn root_only() -> Policy {
        Policy {
            rules: vec![Rule {
                who: vec![Who::Uid(0)],
                maps: vec![MapSel::All],
                allow: vec![Access::Read, Access::Write, Access::Create, Access::Admin],
                deny: Vec::new(),
            }],
            source: "built-in default (uid 0 over the Unix socket only)".into(),
        }
    }

    /// Reads and parses a policy file.
    pub fn load(path: &Path) -> Result<Policy, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read policy {}: {e}", path.display()))?;
        let mut p = Policy::parse(&text).map_err(|e| format!("policy {}: {e}", path.display()))?;
        p.source = path.display().to_string();
        Ok(p)
    }

    /// Parses policy text.
    pub fn parse(text: &str) -> Result<Policy, PolicyError> {
        let raw: RawFile = toml::from_str(text).map_err(|e| PolicyError {
            line: e.span().map_or(0, |s| line_of(text, s.start)),
            reason: e.message().to_owned(),
        })?;
        let mut rules = Vec::with_capacity(raw.rule.len());
        for r in raw.rule {
            let line = line_of(text, r.span().start);
            let r = r.into_inner();
            let err = |s: &Spanned<String>, reason: String| PolicyError {
                line: line_of(text, s.span().start),
                reason,
            };
            if r.who.is_empty() || r.maps.is_empty() {
                return Err(PolicyError {
                    line,
                    reason: "a rule needs non-empty `who` and `maps`".into(),
                });
            }
            if r.allow.is_empty() && r.deny.is_empty() {
                return Err(PolicyError {
                    line,
                    reason: "a rule needs `allow` or `deny`".into(),
                });
            }
            let who = r
                .who
                .iter()
                .map(|w| parse_who(w.get_ref()).map_err(|e| err(w, e)))
                .collect::<Result<_, _>>()?;
            let maps = r
                .maps
                .iter()
                .map(|m| parse_map(m.get_ref()).map_err(|e| err(m, e)))
                .collect::<Result<_, _>>()?;
            let access = |list: &[Spanned<String>]| {
                list.iter()
                    .map(|a| parse_access(a.get_ref()).map_err(|e| err(a, e)))
                    .collect::<Result<Vec<_>, _>>()
            };
            rules.push(Rule {
                who,
                maps,
                allow: access(&r.allow)?,
                deny: access(&r.deny)?,
            });
        }
        Ok(Policy {
            rules,
            source: "text".into(),
        })
    }

    /// Whether `who` may do `access` on the map described by `facts`.
    pub fn allows(
        &self,
        who: &Identity,
        access: Access,
        facts: &MapFacts<'_>,
        root: &Path,
    ) -> bool {
        let mut allowed = false;
        for rule in &self.rules {
            if !rule.who.iter().any(|w| who_matches(w, who))
                || !rule.maps.iter().any(|m| map_matches(m, facts, root))
            {
                continue;
            }
            if rule.deny.contains(&access) {
                return false;
            }
            allowed |= rule.allow.contains(&access);
        }
        allowed
    }
}

fn parse_who(s: &str) -> Result<Who, String> {
    let bad = || {
        format!("bad `who` entry {s:?}: expected uid:N, user:NAME, gid:N, group:NAME, cert:CN=GLOB, san:GLOB, anonymous or any")
    };
    Ok(match s.split_once(':') {
        None if s == "anonymous" => Who::Anonymous,
        None if s == "any" => Who::Any,
        Some(("uid", n)) => Who::Uid(n.parse().map_err(|_| bad())?),
        Some(("gid", n)) => Who::Gid(n.parse().map_err(|_| bad())?),
        Some(("user", name)) => match nix::unistd::User::from_name(name) {
            Ok(Some(u)) => Who::Uid(u.uid.as_raw()),
            _ => return Err(format!("unknown user {name:?} in `who`")),
        },
        Some(("group", name)) => match nix::unistd::Group::from_name(name) {
            Ok(Some(g)) => Who::Gid(g.gid.as_raw()),
            _ => return Err(format!("unknown group {name:?} in `who`")),
        },
        Some(("cert", rest)) => match rest.strip_prefix("CN=") {
            Some(glob) => Who::CertCn(glob.to_owned()),
            None => return Err(format!("bad `who` entry {s:?}: write cert:CN=GLOB")),
        },
        Some(("san", glob)) => Who::San(glob.to_owned()),
        _ => return Err(bad()),
    })
}

fn parse_map(s: &str) -> Result<MapSel, String> {
    Ok(match s.split_once(':') {
        None if s == "managed" => MapSel::Managed,
        None if s == "all" => MapSel::All,
        Some(("pin", g)) if !g.is_empty() => MapSel::Pin(g.to_owned()),
        Some(("name", g)) if !g.is_empty() => MapSel::Name(g.to_owned()),
        Some(("id", n)) => MapSel::Id(n.parse().map_err(|_| format!("bad map id in {s:?}"))?),
        _ => {
            return Err(format!(
                "bad `maps` entry {s:?}: expected pin:GLOB, name:GLOB, id:N, managed or all"
            ))
        }
    })
}

fn parse_access(s: &str) -> Result<Access, String> {
    Ok(match s {
        "read" => Access::Read,
        "write" => Access::Write,
        "create" => Access::Create,
        "admin" => Access::Admin,
        _ => {
            return Err(format!(
                "unknown access {s:?}: expected read, write, create or admin"
            ))
        }
    })
}

fn who_matches(w: &Who, id: &Identity) -> bool {
    match (w, id) {
        (Who::Any, _) => true,
        (Who::Uid(n), Identity::Unix(p)) => p.uid == *n,
        (Who::Gid(n), Identity::Unix(p)) => p.gid == *n || p.groups.contains(n),
        (Who::CertCn(g), Identity::Cert { cn: Some(cn), .. }) => glob::matches(g, cn),
        (Who::San(g), Identity::Cert { sans, .. }) => sans.iter().any(|s| glob::matches(g, s)),
        (Who::Anonymous, Identity::Anonymous { .. }) => true,
        _ => false,
    }
}

fn map_matches(m: &MapSel, f: &MapFacts<'_>, root: &Path) -> bool {
    match m {
        MapSel::All => true,
        MapSel::Managed => f.managed,
        MapSel::Id(n) => f.id == Some(*n),
        MapSel::Name(g) => glob::matches(g, f.name),
        MapSel::Pin(g) if g.starts_with('/') => f
            .pins
            .iter()
            .any(|p| glob::matches(g, &p.to_string_lossy())),
        MapSel::Pin(g) => f
            .pins
            .iter()
            .filter_map(|p| p.strip_prefix(root).ok())
            .any(|rel| glob::matches(g, &rel.to_string_lossy())),
    }
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::auth::identity::UnixPeer;

    fn unix(uid: u32, groups: Vec<u32>) -> Identity {
        Identity::Unix(Arc::new(UnixPeer {
            uid,
            gid: uid,
            groups,
            pid: None,
        }))
    }

    const EXAMPLE: &str = r#"
[[rule]]
who   = ["uid:65534", "cert:CN=agent-*", "san:spiffe://fleet/*", "gid:4242"]
maps  = ["pin:public/*", "name:xdp_*", "id:42"]
allow = ["read"]

[[rule]]
who   = ["anonymous"]
maps  = ["all"]
allow = ["read"]
deny  = ["write", "create", "admin"]

[[rule]]
who  = ["any"]
maps = ["name:secret*"]
deny = ["read"]
"#;

    #[test]
    fn decides_like_the_issue_says() {
        let p = Policy::parse(EXAMPLE).expect("parses");
        let root = Path::new("/sys/fs/bpf/bpfmapd");
        let public = MapFacts {
            id: Some(7),
            name: "m",
            pins: vec![root.join("public/m")],
            managed: true,
        };
        let other = MapFacts {
            id: Some(8),
            name: "m",
            pins: vec![root.join("private/m")],
            managed: true,
        };
        let secret = MapFacts {
            id: Some(9),
            name: "secret1",
            pins: vec![],
            managed: true,
        };
        let nobody = unix(65534, vec![]);
        assert!(p.allows(&nobody, Access::Read, &public, root));
        assert!(!p.allows(&nobody, Access::Write, &public, root));
        assert!(!p.allows(&nobody, Access::Read, &other, root));
        assert!(p.allows(&unix(1000, vec![4242]), Access::Read, &public, root));
        let cert = Identity::Cert {
            cn: Some("agent-7".into()),
            sans: vec![],
            addr: String::new(),
        };
        assert!(p.allows(
            &cert,
            Access::Read,
            &MapFacts {
                id: Some(42),
                ..Default::default()
            },
            root
        ));
        let spiffe = Identity::Cert {
            cn: None,
            sans: vec!["spiffe://fleet/x".into()],
            addr: String::new(),
        };
        assert!(p.allows(
            &spiffe,
            Access::Read,
            &MapFacts {
                name: "xdp_stats",
                ..Default::default()
            },
            root
        ));
        let anon = Identity::Anonymous {
            addr: String::new(),
        };
        assert!(p.allows(&anon, Access::Read, &other, root));
        assert!(!p.allows(&anon, Access::Write, &other, root));
        assert!(!p.allows(&anon, Access::Read, &secret, root), "deny wins");
        assert!(
            !p.allows(&unix(0, vec![]), Access::Read, &public, root),
            "no rule for root in this file"
        );
    }

    #[test]
    fn the_example_policy_parses_and_means_what_it_says() {
        let p = Policy::parse(include_str!("../../../examples/policy.toml"))
            .expect("examples/policy.toml parses");
        let root = Path::new("/sys/fs/bpf/bpfmapd");
        let monitor = Identity::Cert {
            cn: Some("monitor-1".into()),
            sans: vec![],
            addr: String::new(),
        };
        let stats = MapFacts {
            id: Some(3),
            name: "stats_rx",
            pins: vec![],
            managed: true,
        };
        assert!(p.allows(&monitor, Access::Read, &stats, root));
        assert!(!p.allows(&monitor, Access::Write, &stats, root));
        let agent = Identity::Cert {
            cn: None,
            sans: vec!["spiffe://fleet.example/agent/7".into()],
            addr: String::new(),
        };
        let fleet = MapFacts {
            id: None,
            name: "flows",
            pins: vec![root.join("fleet/flows")],
            managed: true,
        };
        assert!(p.allows(&agent, Access::Create, &fleet, root));
        assert!(!p.allows(&agent, Access::Admin, &fleet, root));
        let xdp = MapFacts {
            id: Some(4),
            name: "xdp_stats",
            pins: vec![root.join("fleet/xdp")],
            managed: true,
        };
        assert!(
            !p.allows(&agent, Access::Write, &xdp, root),
            "the deny on xdp_* wins"
        );
        assert!(p.allows(&unix(0, vec![]), Access::Admin, &stats, root));
        assert!(
            !p.allows(&unix(0, vec![]), Access::Write, &xdp, root),
            "root included"
        );
        assert!(p.allows(&unix(0, vec![]), Access::Read, &xdp, root));
    }

    #[test]
    fn default_is_root_over_unix_only() {
        let p = Policy::root_only();
        let root = Path::new("/r");
        let f = MapFacts::default();
        assert!(p.allows(&unix(0, vec![]), Access::Admin, &f, root));
        assert!(!p.allows(&unix(1, vec![0]), Access::Read, &f, root));
        assert!(!p.allows(
            &Identity::Anonymous {
                addr: String::new()
            },
            Access::Read,
            &f,
            root
        ));
    }

    #[test]
    fn errors_name_the_line() {
        let e =
            Policy::parse("[[rule]]\nwho = [\"uid:x\"]\nmaps = [\"all\"]\nallow = [\"read\"]\n")
                .err();
        assert_eq!(e.as_ref().map(|e| e.line), Some(2), "{e:?}");
        let e =
            Policy::parse("[[rule]]\nwho = [\"any\"]\nmaps = [\"all\"]\nallow = [\"fly\"]\n").err();
        assert_eq!(e.as_ref().map(|e| e.line), Some(4), "{e:?}");
        let e = Policy::parse("[[rule]]\nwho = [\"any\"\n").err();
        assert!(e.as_ref().is_some_and(|e| e.line >= 2), "{e:?}");
        let e = Policy::parse("[[rule]]\nwho = [\"any\"]\nmaps = [\"all\"]\n").err();
        assert!(e.is_some_and(|e| e.reason.contains("allow")));
        assert!(Policy::parse(
            "[[rule]]\nwho = [\"user:no-such-user-x\"]\nmaps = [\"all\"]\nallow = [\"read\"]\n"
        )
        .is_err());
    }
}
