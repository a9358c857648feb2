//! [`MapRef`]: how a call names a map (kernel id, pin path or kernel name).

use std::fmt;
use std::str::FromStr;

use crate::proto;

/// Names a map: by kernel id, by pin path, or by kernel map name.
///
/// Parses from the CLI's syntax: `id:12`, `pin:stats_map` (relative paths are under the
/// daemon's bpffs root), `name:stats_map`, and a bare word is a name. Converts from a
/// `u32` (an id) and from a [`MapInfo`](crate::MapInfo) (its id).
///
/// ```
/// use bpfmap_client::MapRef;
/// assert_eq!("id:12".parse::<MapRef>().unwrap(), MapRef::Id(12));
/// assert_eq!("pin:a/b".parse::<MapRef>().unwrap(), MapRef::Pin("a/b".into()));
/// assert_eq!("stats_map".parse::<MapRef>().unwrap(), MapRef::name("stats_map"));
/// assert_eq!(MapRef::from(7), MapRef::Id(7));
/// assert_eq!(MapRef::pin("x").to_string(), "pin:x");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MapRef {
    /// The kernel map id (any map on the host).
    Id(u32),
    /// A pinned path: relative to the daemon's bpffs root, or absolute inside a bpffs.
    Pin(String),
    /// The kernel map name; the daemon's managed maps are searched first.
    Name(String),
}

impl MapRef {
    /// A reference by kernel id.
    pub fn id(id: u32) -> Self {
        MapRef::Id(id)
    }

    /// A reference by pin path.
    pub fn pin(path: impl Into<String>) -> Self {
        MapRef::Pin(path.into())
    }

    /// A reference by kernel map name.
    pub fn name(name: impl Into<String>) -> Self {
        MapRef::Name(name.into())
    }

    /// The wire form.
    pub fn to_proto(&self) -> proto::MapRef {
        use proto::map_ref::Ref;
        proto::MapRef {
            r#ref: Some(match self {
                MapRef::Id(id) => Ref::Id(*id),
                MapRef::Pin(p) => Ref::Pin(p.clone()),
                MapRef::Name(n) => Ref::Name(n.clone()),
            }),
        }
    }
}

/// Why a map reference was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid map reference {input:?}: {reason}")]
pub struct ParseMapRefError {
    /// The text as given.
    pub input: String,
    /// What was wrong.
    pub reason: String,
}

impl FromStr for MapRef {
    type Err = ParseMapRefError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: &str| ParseMapRefError {
            input: s.to_owned(),
            reason: reason.to_owned(),
        };
        if let Some(id) = s.strip_prefix("id:") {
            let id = id.trim();
            let parsed = match id.strip_prefix("0x").or_else(|| id.strip_prefix("0X")) {
                Some(hex) => u32::from_str_radix(hex, 16),
                None => id.parse::<u32>(),
            };
            return parsed
                .map(MapRef::Id)
                .map_err(|_| err("the id must be an unsigned 32-bit number, e.g. id:12"));
        }
        if let Some(pin) = s.strip_prefix("pin:") {
            if pin.is_empty() {
                return Err(err("empty pin path, e.g. pin:stats_map"));
            }
            return Ok(MapRef::Pin(pin.to_owned()));
        }
        let name = s.strip_prefix("name:").unwrap_or(s);
        if name.is_empty() {
            return Err(err(
                "empty map name; use id:N, pin:PATH, name:NAME or a bare name",
            ));
        }
        Ok(MapRef::Name(name.to_owned()))
    }
}

impl fmt::Display for MapRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MapRef::Id(id) => write!(f, "id:{id}"),
            MapRef::Pin(p) => write!(f, "pin:{p}"),
            MapRef::Name(n) => write!(f, "name:{n}"),
        }
    }
}

impl From<u32> for MapRef {
    fn from(id: u32) -> Self {
        MapRef::Id(id)
    }
}

impl From<&MapRef> for MapRef {
    fn from(r: &MapRef) -> Self {
        r.clone()
    }
}

impl From<&proto::MapInfo> for MapRef {
    fn from(info: &proto::MapInfo) -> Self {
        MapRef::Id(info.id)
    }
}

impl From<proto::MapInfo> for MapRef {
    fn from(info: proto::MapInfo) -> Self {
        MapRef::Id(info.id)
    }
}

impl From<MapRef> for proto::MapRef {
    fn from(r: MapRef) -> Self {
        r.to_proto()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        let ok = |s: &str| s.parse::<MapRef>().ok();
        assert_eq!(ok("id:12"), Some(MapRef::Id(12)));
        assert_eq!(ok("id:0x10"), Some(MapRef::Id(16)));
        assert_eq!(ok("pin:stats_map"), Some(MapRef::pin("stats_map")));
        assert_eq!(ok("pin:/sys/fs/bpf/x"), Some(MapRef::pin("/sys/fs/bpf/x")));
        assert_eq!(ok("name:stats_map"), Some(MapRef::name("stats_map")));
        assert_eq!(ok("stats_map"), Some(MapRef::name("stats_map")));
        assert_eq!(ok("12"), Some(MapRef::name("12")));
        for bad in ["", "id:", "id:x", "id:-1", "id:4294967296", "pin:", "name:"] {
            assert!(bad.parse::<MapRef>().is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn display_round_trips() {
        for r in [MapRef::Id(3), MapRef::pin("a/b"), MapRef::name("n")] {
            assert_eq!(r.to_string().parse::<MapRef>().ok(), Some(r));
        }
    }

    #[test]
    fn converts_to_the_wire_form() {
        use proto::map_ref::Ref;
        assert_eq!(MapRef::Id(5).to_proto().r#ref, Some(Ref::Id(5)));
        assert_eq!(
            proto::MapRef::from(MapRef::name("x")).r#ref,
            Some(Ref::Name("x".into()))
        );
        let info = proto::MapInfo {
            id: 9,
            ..Default::default()
        };
        assert_eq!(MapRef::from(&info), MapRef::Id(9));
    }
}
