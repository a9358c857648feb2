//! Single-element RPCs: Lookup, Update, Delete, LookupAndDelete, GetNextKey.
//!
//! Each is one syscall, run inline on the async worker (cheaper than a blocking-pool hop by
//! two orders of magnitude).

use bpfmap_proto::v1 as pb;
use bytes::Bytes;

use super::codec::{decode, encode, value_in, value_out, Side, Types};
use super::{format_of, MapService};
use crate::auth::{Access, Identity};
use crate::error::{Error, KernelCtx, Result};
use crate::kernel::{elem::BPF_F_LOCK, open_prog_by_id, types::num, Map, Op, ProgFd};
use crate::registry::Resolved;

fn key_of(map: &Map, key: Option<&pb::Data>, types: &Types<'_>) -> Result<Option<Vec<u8>>> {
    key.map(|k| decode(k, map.key_size as usize, "key", types, Side::Key))
        .transpose()
}

/// Checks that the map type supports `op`, then decodes the (required) key.
fn need_key(map: &Map, key: Option<&pb::Data>, op: Op, types: &Types<'_>) -> Result<Vec<u8>> {
    supported(map, op)?;
    key_of(map, key, types)?.ok_or_else(|| {
        Error::InvalidArgument(format!(
            "key is required for {} on {} maps (only queue, stack and bloom filter maps work without a key)",
            op.name(),
            map.kind.name()
        ))
    })
}

/// The operation and key of a request: keyless maps (queue, stack) take `keyless` and no key,
/// keyed maps take `keyed` and a required key.
fn op_and_key(
    map: &Map,
    key: &Option<pb::Data>,
    keyless: Op,
    keyed: Op,
    types: &Types<'_>,
) -> Result<(Op, Option<Vec<u8>>)> {
    if map.kind.is_keyless() {
        check_keyless(map, key)?;
        Ok((keyless, None))
    } else {
        Ok((keyed, Some(need_key(map, key.as_ref(), keyed, types)?)))
    }
}

fn check_keyless(map: &Map, key: &Option<pb::Data>) -> Result<()> {
    if key.is_some() {
        return Err(Error::InvalidArgument(format!(
            "{} maps have no keys: leave key empty (no key = push/peek/pop)",
            map.kind.name()
        )));
    }
    Ok(())
}

fn lock_flag(map: &Map, lock: bool) -> Result<u64> {
    if !lock {
        return Ok(0);
    }
    if map.btf_value_type_id == 0 {
        return Err(Error::InvalidArgument(format!(
            "lock=true needs a struct bpf_spin_lock in the map's value (described by BTF); {} has no BTF value type",
            crate::registry::desc(map)
        )));
    }
    Ok(BPF_F_LOCK)
}

fn supported(map: &Map, op: Op) -> Result<()> {
    if map.kind.supports(op) {
        Ok(())
    } else {
        Err(Error::unsupported(map.kind, op))
    }
}

impl MapService {
    pub(super) fn lookup(
        &self,
        r: &Resolved,
        req: &pb::LookupRequest,
    ) -> Result<pb::LookupResponse> {
        let map = &*r.map;
        let types = Types::lazy(map, &self.btf);
        let format = format_of(req.format)?;
        let mut value = vec![0u8; map.value_stride()];
        let (op, key) = if map.kind.0 == num::BLOOM_FILTER {
            check_keyless(map, &req.key)?;
            let probe = req.value.as_ref().ok_or_else(|| {
                Error::InvalidArgument(
                    "bloom filter lookup needs value: the element to test".into(),
                )
            })?;
            value = decode(probe, map.value_size as usize, "value", &types, Side::Value)?;
            (Op::Lookup, None)
        } else {
            op_and_key(map, &req.key, Op::Peek, Op::Lookup, &types)?
        };
        supported(map, op)?;
        let flags = lock_flag(map, req.lock)?;
        map.lookup(key.as_deref(), &mut value, flags).map_err(|e| {
            // The key's text only on failure: a success costs no formatting.
            let key_text = key.as_deref().map(bpfmap_proto::hex::format);
            Error::kernel(
                &r.desc(),
                op,
                KernelCtx {
                    key: key_text.as_deref(),
                    lock: req.lock,
                    ..Default::default()
                },
                e,
            )
        })?;
        let (value, per_cpu_values) = value_out(map, Bytes::from(value), format, &types)?;
        Ok(pb::LookupResponse {
            value,
            per_cpu_values,
        })
    }

    pub(super) fn update(
        &self,
        who: &Identity,
        r: &Resolved,
        req: &pb::UpdateRequest,
    ) -> Result<()> {
        let map = &*r.map;
        let types = Types::lazy(map, &self.btf);
        let flag = pb::UpdateFlag::try_from(req.flag)
            .map_err(|_| Error::InvalidArgument(format!("unknown update flag {}", req.flag)))?
            as u64;
        let (op, key) = op_and_key(map, &req.key, Op::Push, Op::Update, &types)?;
        supported(map, op)?;
        if req.inner_map.is_some() && !map.kind.is_map_of_maps() {
            return Err(Error::InvalidArgument(
                "inner_map is only for array_of_maps and hash_of_maps".into(),
            ));
        }
        // The fds behind an fd-valued update stay open until the syscall is done.
        let mut hold_map: Option<Resolved> = None;
        let mut hold_prog: Option<ProgFd> = None;
        let value = if map.kind.is_map_of_maps() {
            let inner = match (&req.inner_map, &req.value) {
                (Some(m), _) => {
                    self.open(who, &Some(m.clone()), Access::Read, "Update (inner_map)")?
                }
                (None, Some(v)) => {
                    let id = id_value(v, "value (inner map id)")?;
                    let inner = Some(pb::MapRef {
                        r#ref: Some(pb::map_ref::Ref::Id(id)),
                    });
                    self.open(who, &inner, Access::Read, "Update (inner map)")?
                }
                (None, None) => {
                    return Err(Error::InvalidArgument(format!(
                        "{} updates need inner_map: the map to store",
                        map.kind.name()
                    )))
                }
            };
            let fd = inner.map.fd_value();
            hold_map = Some(inner);
            fd.to_vec()
        } else if map.kind.0 == num::PROG_ARRAY {
            let v = req.value.as_ref().ok_or_else(|| {
                Error::InvalidArgument(
                    "prog_array updates need value: the id of a loaded program".into(),
                )
            })?;
            let id = id_value(v, "value (program id)")?;
            let prog = open_prog_by_id(id).map_err(|e| match e.errno {
                libc::ENOENT => Error::NotFound(format!("no program with id {id}")),
                _ => Error::Kernel {
                    context: format!("opening program id {id}"),
                    source: e,
                },
            })?;
            let fd = prog.as_value();
            hold_prog = Some(prog);
            fd.to_vec()
        } else if map.kind.is_fd_valued_foreign() {
            return Err(Error::InvalidArgument(format!(
                "values of {} maps are file descriptors of the writing process, which cannot travel over the API",
                map.kind.name()
            )));
        } else {
            value_in(map, req.value.as_ref(), &req.per_cpu_values, &types)?
        };
        let flags = flag | lock_flag(map, req.lock)?;
        let result = map.update(key.as_deref(), &value, flags);
        drop((hold_map, hold_prog));
        result.map_err(|e| {
            let frozen = matches!(e.errno, libc::EPERM | libc::EACCES) && map.is_frozen();
            let key_text = key.as_deref().map(bpfmap_proto::hex::format);
            Error::kernel(
                &r.desc(),
                op,
                KernelCtx {
                    key: key_text.as_deref(),
                    update_flag: flag,
                    lock: req.lock,
                    frozen,
                },
                e,
            )
        })
    }

    pub(super) fn delete(&self, r: &Resolved, req: &pb::DeleteRequest) -> Result<()> {
        let map = &*r.map;
        supported(map, Op::Delete)?;
        let types = Types::lazy(map, &self.btf);
        let key = need_key(map, req.key.as_ref(), Op::Delete, &types)?;
        map.delete(&key).map_err(|e| {
            let frozen = matches!(e.errno, libc::EPERM | libc::EACCES) && map.is_frozen();
            let k = bpfmap_proto::hex::format(&key);
            Error::kernel(
                &r.desc(),
                Op::Delete,
                KernelCtx {
                    key: Some(&k),
                    frozen,
                    ..Default::default()
                },
                e,
            )
        })
    }

    pub(super) fn lookup_and_delete(
        &self,
        r: &Resolved,
        req: &pb::LookupAndDeleteRequest,
    ) -> Result<pb::LookupResponse> {
        let map = &*r.map;
        let types = Types::lazy(map, &self.btf);
        let format = format_of(req.format)?;
        let (op, key) = op_and_key(map, &req.key, Op::Pop, Op::LookupAndDelete, &types)?;
        supported(map, op)?;
        let mut value = vec![0u8; map.value_stride()];
        map.lookup_and_delete(key.as_deref(), &mut value)
            .map_err(|e| {
                let frozen = matches!(e.errno, libc::EPERM | libc::EACCES) && map.is_frozen();
                let key_text = key.as_deref().map(bpfmap_proto::hex::format);
                Error::kernel(
                    &r.desc(),
                    op,
                    KernelCtx {
                        key: key_text.as_deref(),
                        frozen,
                        ..Default::default()
                    },
                    e,
                )
            })?;
        let (value, per_cpu_values) = value_out(map, Bytes::from(value), format, &types)?;
        Ok(pb::LookupResponse {
            value,
            per_cpu_values,
        })
    }

    pub(super) fn get_next_key(
        &self,
        r: &Resolved,
        req: &pb::GetNextKeyRequest,
    ) -> Result<pb::GetNextKeyResponse> {
        let map = &*r.map;
        let format = format_of(req.format)?;
        if map.kind.is_keyless() || !map.kind.supports(Op::GetNextKey) {
            return Err(Error::unsupported(map.kind, Op::GetNextKey));
        }
        let types = Types::lazy(map, &self.btf);
        let key = key_of(map, req.key.as_ref(), &types)?;
        let mut next = vec![0u8; map.key_size as usize];
        map.next_key(key.as_deref(), &mut next).map_err(|e| {
            let key_text = key.as_deref().map(bpfmap_proto::hex::format);
            Error::kernel(
                &r.desc(),
                Op::GetNextKey,
                KernelCtx {
                    key: key_text.as_deref(),
                    ..Default::default()
                },
                e,
            )
        })?;
        Ok(pb::GetNextKeyResponse {
            next_key: Some(encode(Bytes::from(next), format, "key", &types, Side::Key)?),
        })
    }
}

/// A 4-byte id given as a number or as 4 raw/hex bytes.
fn id_value(v: &pb::Data, what: &str) -> Result<u32> {
    let bytes = decode(v, 4, what, &Types::none(), Side::Value)?;
    Ok(u32::from_ne_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}
