//! Map-level RPCs: create, describe, list, delete, pin, unpin, freeze.

use bpfmap_proto::v1 as pb;

use std::sync::Arc;

use super::MapService;
use crate::auth::{Access, Identity, MapFacts};
use crate::btf::decl::Builder;
use crate::btf::model::Btf;
use crate::error::{Error, KernelCtx, Result};
use crate::kernel::{types::num, BtfFd, CreateParams, MapBtf, MapKind, Op};
use crate::registry::{paths, CreateError, Resolved};

/// BTF built from CreateMap's key_type / value_type.
struct Typed {
    btf: Btf,
    key: u32,
    value: u32,
    key_size: u32,
    value_size: u32,
}

impl MapService {
    /// Builds the wire `MapInfo` of a resolved map.
    pub(super) fn info(&self, r: &Resolved) -> pb::MapInfo {
        let m = &r.map;
        let pins: Vec<String> = self
            .registry
            .pins(m.id)
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        // Best effort: a map whose BTF cannot be read is still described.
        let (key_type, value_type) = match self.btf.map_types(m) {
            Ok(Some(t)) => (t.key_decl(), t.value_decl()),
            Ok(None) => (String::new(), String::new()),
            Err(e) => {
                tracing::debug!(map = m.id, error = %e, "no C types for MapInfo");
                (String::new(), String::new())
            }
        };
        pb::MapInfo {
            id: m.id,
            name: m.name.clone(),
            r#type: m.kind.0 as i32,
            key_size: m.key_size,
            value_size: m.value_size,
            max_entries: m.max_entries,
            flags: m.flags,
            map_extra: m.map_extra,
            btf_id: m.btf_id,
            btf_key_type_id: m.btf_key_type_id,
            btf_value_type_id: m.btf_value_type_id,
            ephemeral: r.managed && pins.is_empty(),
            pins,
            managed: r.managed,
            frozen: m.is_frozen(),
            possible_cpus: m.percpu_count(),
            key_type,
            value_type,
        }
    }

    pub(super) fn create_map(
        &self,
        req: pb::CreateMapRequest,
        who: &Identity,
    ) -> Result<pb::MapInfo> {
        let kind = match pb::MapType::try_from(req.r#type) {
            Ok(pb::MapType::Unspec) => {
                return Err(Error::InvalidArgument(
                    "type is required (e.g. MAP_TYPE_HASH)".into(),
                ))
            }
            Ok(t) => MapKind(t as u32),
            Err(_) => {
                return Err(Error::InvalidArgument(format!(
                    "unknown map type {}",
                    req.r#type
                )))
            }
        };
        validate_name(&req.name)?;
        let typed = build_types(&req, kind)?;
        let mut key_size = req.key_size;
        let mut value_size = req.value_size;
        if let Some(t) = &typed {
            for (what, given, size) in [
                ("key", &mut key_size, t.key_size),
                ("value", &mut value_size, t.value_size),
            ] {
                if *given != 0 && *given != size {
                    return Err(Error::InvalidArgument(format!(
                        "{what}_size {given} disagrees with {what}_type, which is {size} bytes; leave {what}_size 0"
                    )));
                }
                *given = size;
            }
        }
        let mut max_entries = req.max_entries;
        let t = kind.0;
        // Fill in what has only one right answer, as bpftool users expect.
        if matches!(
            t,
            num::ARRAY
                | num::PERCPU_ARRAY
                | num::PROG_ARRAY
                | num::PERF_EVENT_ARRAY
                | num::ARRAY_OF_MAPS
                | num::CGROUP_ARRAY
        ) && key_size == 0
        {
            key_size = 4;
        }
        if matches!(
            t,
            num::PROG_ARRAY
                | num::PERF_EVENT_ARRAY
                | num::ARRAY_OF_MAPS
                | num::HASH_OF_MAPS
                | num::CGROUP_ARRAY
        ) && value_size == 0
        {
            value_size = 4;
        }
        if t == num::PERF_EVENT_ARRAY && max_entries == 0 {
            max_entries = crate::kernel::possible_cpus();
        }
        if kind.is_keyless() && key_size != 0 {
            return Err(Error::InvalidArgument(format!(
                "{} maps have no keys: key_size must be 0",
                kind.name()
            )));
        }
        if t == num::LPM_TRIE && req.flags & 1 == 0 {
            return Err(Error::InvalidArgument(
                "lpm_trie maps need flags to include 1 (BPF_F_NO_PREALLOC)".into(),
            ));
        }
        if matches!(
            t,
            num::LRU_HASH | num::LRU_PERCPU_HASH | num::QUEUE | num::STACK
        ) && req.flags & 1 != 0
        {
            return Err(Error::InvalidArgument(format!(
                "{} maps cannot have BPF_F_NO_PREALLOC (flag 1)",
                kind.name()
            )));
        }
        if max_entries == 0 {
            return Err(Error::InvalidArgument(
                "max_entries must be at least 1".into(),
            ));
        }
        if self.limits.max_entries_per_map > 0 && max_entries > self.limits.max_entries_per_map {
            return Err(Error::ResourceExhausted(format!(
                "max_entries {max_entries} is above this daemon's limit of {} (--max-entries-per-map)",
                self.limits.max_entries_per_map
            )));
        }
        if !kind.is_keyless()
            && !matches!(t, num::RINGBUF | num::USER_RINGBUF)
            && (key_size == 0 || value_size == 0)
        {
            return Err(Error::InvalidArgument(format!(
                "{} maps need key_size and value_size above 0 (got {key_size} and {value_size})",
                kind.name()
            )));
        }
        let inner = match (&req.inner_map, kind.is_map_of_maps()) {
            (Some(r), true) => {
                Some(self.open(who, &Some(r.clone()), Access::Read, "CreateMap (inner_map)")?)
            }
            (None, true) => {
                return Err(Error::InvalidArgument(format!(
                    "{} maps need inner_map: a map to use as the template of the inner maps",
                    kind.name()
                )))
            }
            (Some(_), false) => {
                return Err(Error::InvalidArgument(
                    "inner_map is only for array_of_maps and hash_of_maps".into(),
                ))
            }
            (None, false) => None,
        };
        let pin = if req.ephemeral {
            if !req.pin.is_empty() {
                return Err(Error::InvalidArgument(
                    "an ephemeral map has no pin: leave pin empty".into(),
                ));
            }
            None
        } else {
            let pin = if req.pin.is_empty() {
                req.name.as_str()
            } else {
                req.pin.as_str()
            };
            if pin.is_empty() {
                return Err(Error::InvalidArgument(
                    "name or pin is required (or set ephemeral)".into(),
                ));
            }
            Some(self.registry.new_pin(pin)?)
        };
        let btf_fd = match &typed {
            Some(t) => Some(BtfFd::load(&t.btf.encode()).map_err(|e| {
                Error::InvalidArgument(format!(
                    "the kernel refused the BTF built from key_type/value_type: {} ({})",
                    e.error.errno_name(),
                    if e.log.is_empty() { "no log" } else { &e.log }
                ))
            })?),
            None => None,
        };
        let params = CreateParams {
            kind: t,
            name: &req.name,
            key_size,
            value_size,
            max_entries,
            flags: req.flags,
            map_extra: req.map_extra,
            inner_map: inner.as_ref().map(|r| &*r.map),
            btf: match (&btf_fd, &typed) {
                (Some(fd), Some(t)) => Some(MapBtf {
                    fd,
                    key: t.key,
                    value: t.value,
                }),
                _ => None,
            },
        };
        let what = format!("{} map {:?} (key_size {key_size}, value_size {value_size}, max_entries {max_entries}, flags {:#x})", kind.name(), req.name, req.flags);
        let resolved = self
            .registry
            .create(&params, pin.as_deref(), &who.key(), &self.limits)
            .map_err(|e| match e {
                CreateError::Limit(e) => e,
                CreateError::Kernel(e) => match (e.op, e.errno) {
                    ("obj_pin", libc::EEXIST) => Error::AlreadyExists(format!(
                        "pin path {} is taken",
                        pin.as_deref()
                            .map(|p| p.display().to_string())
                            .unwrap_or_default()
                    )),
                    ("obj_pin", _) => Error::Kernel {
                        context: "pinning the new map".into(),
                        source: e,
                    },
                    _ if typed.is_some() && e.errno == libc::EINVAL => Error::InvalidArgument(format!(
                        "the kernel refused to create {what} with the BTF types given: EINVAL; {} maps may not take these key/value types (the kernel checks them per map type)",
                        kind.name()
                    )),
                    _ => Error::create_failed(kind, &what, e),
                },
            })?;
        if let (Some(fd), Some(t)) = (btf_fd, typed) {
            if resolved.map.btf_id != 0 {
                self.btf.insert(resolved.map.btf_id, fd, Arc::new(t.btf));
            }
        }
        Ok(self.info(&resolved))
    }

    /// The maps to list: managed ones, or every map on the host.
    pub(super) fn list_maps(&self, all: bool) -> Result<Vec<Resolved>> {
        Ok(if all {
            self.registry.all()?
        } else {
            self.registry
                .managed()
                .into_iter()
                .map(|map| Resolved { map, managed: true })
                .collect()
        })
    }

    /// Checks that `who` may create the map `req` describes: its name and the pin it would
    /// get are what the policy's `name:` and `pin:` selectors see.
    pub(super) fn authorize_create(
        &self,
        who: &Identity,
        req: &pb::CreateMapRequest,
    ) -> Result<()> {
        let pin = if req.pin.is_empty() {
            &req.name
        } else {
            &req.pin
        };
        let pins = if req.ephemeral || pin.is_empty() {
            Vec::new()
        } else {
            vec![paths::normalize(self.registry.root(), pin)?]
        };
        let facts = MapFacts {
            id: None,
            name: &req.name,
            pins,
            managed: true,
        };
        self.auth.check(who, Access::Create, "CreateMap", &facts)
    }

    pub(super) fn delete_map(&self, r: &Resolved) -> Result<pb::DeleteMapResponse> {
        let removed = self.registry.delete(r.map.id)?;
        Ok(pb::DeleteMapResponse {
            removed_pins: removed.iter().map(|p| p.display().to_string()).collect(),
        })
    }

    pub(super) fn pin_map(&self, r: &Resolved, pin: &str) -> Result<pb::MapInfo> {
        let path = self.registry.new_pin(pin)?;
        self.registry.pin(r, &path).map_err(|e| match e.errno {
            libc::EEXIST => Error::AlreadyExists(format!("pin path {} is taken", path.display())),
            libc::EPERM => Error::InvalidArgument(format!(
                "bpffs refused the pin {} (names may not contain '.')",
                path.display()
            )),
            _ => Error::Kernel {
                context: format!("pinning at {}", path.display()),
                source: e,
            },
        })?;
        let r = Resolved {
            map: r.map.clone(),
            managed: true,
        };
        Ok(self.info(&r))
    }

    pub(super) fn unpin(&self, pin: &str) -> Result<()> {
        let path = self.registry.existing_pin(pin)?;
        self.registry.unpin(&path)
    }

    pub(super) fn freeze(&self, r: &Resolved) -> Result<pb::MapInfo> {
        if !r.map.kind.supports(Op::Freeze) {
            return Err(Error::unsupported(r.map.kind, Op::Freeze));
        }
        r.map.freeze().map_err(|e| {
            let frozen = r.map.is_frozen();
            Error::kernel(
                &r.desc(),
                Op::Freeze,
                KernelCtx {
                    frozen,
                    ..Default::default()
                },
                e,
            )
        })?;
        Ok(self.info(r))
    }
}

/// Builds the BTF of CreateMap's key_type / value_type (None when neither is given).
fn build_types(req: &pb::CreateMapRequest, kind: MapKind) -> Result<Option<Typed>> {
    let (k, v) = (req.key_type.trim(), req.value_type.trim());
    if k.is_empty() && v.is_empty() {
        return Ok(None);
    }
    if v.is_empty() {
        return Err(Error::InvalidArgument(
            "value_type is required with key_type (the kernel takes BTF for both or neither)"
                .into(),
        ));
    }
    let key_src = if kind.is_keyless() {
        if !k.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "{} maps have no keys: leave key_type empty",
                kind.name()
            )));
        }
        None
    } else if !k.is_empty() {
        Some(k)
    } else if matches!(kind.0, num::ARRAY | num::PERCPU_ARRAY) {
        Some("__u32")
    } else {
        return Err(Error::InvalidArgument(format!(
            "key_type is required with value_type for {} maps",
            kind.name()
        )));
    };
    let mut b = Builder::new();
    let key = match key_src {
        Some(src) => b
            .declare(src)
            .map_err(|e| Error::InvalidArgument(format!("key_type: {e}")))?,
        None => 0,
    };
    let value = b
        .declare(v)
        .map_err(|e| Error::InvalidArgument(format!("value_type: {e}")))?;
    let size = |id: u32| {
        if id == 0 {
            0
        } else {
            b.btf().size_of(id).unwrap_or(0) as u32
        }
    };
    let (key_size, value_size) = (size(key), size(value));
    Ok(Some(Typed {
        btf: b.into_btf(),
        key,
        value,
        key_size,
        value_size,
    }))
}

/// Kernel map names: at most 15 bytes of [A-Za-z0-9_.].
fn validate_name(name: &str) -> Result<()> {
    if name.len() > 15 {
        return Err(Error::InvalidArgument(format!(
            "map name {name:?} is {} bytes long; the kernel allows 15",
            name.len()
        )));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '.'))
    {
        return Err(Error::InvalidArgument(format!(
            "map name {name:?} contains {c:?}; the kernel allows letters, digits, '_' and '.'"
        )));
    }
    Ok(())
}
