//! Typed keys and values through BTF, the kernel's type format.
//!
//! Maps of programs compiled with `-g` carry BTF for their key and value; maps made through
//! CreateMap carry it when the caller gives C declarations. With it the daemon speaks typed
//! JSON ([`json`]) and describes each map's key and value as C ([`render`]). The pieces:
//!
//! - [`model`]: the BTF blob as plain Rust values (read and written without a kernel);
//! - [`decl`]: CreateMap's C-like declarations into BTF types, with C layout;
//! - [`render`]: BTF types back into C declarations (MapInfo's `key_type`/`value_type`);
//! - [`json`]: values ⇄ typed JSON;
//! - [`BtfCache`]: the parsed BTF of each BTF object, by id. A BTF object never changes, and
//!   the cache holds an fd on each one so that its id cannot be reused while it is cached:
//!   a unary call with JSON costs a hash lookup, not a syscall and a parse.

pub mod decl;
pub mod json;
pub mod model;
pub mod render;

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::kernel::{BtfFd, Map};
use model::Btf;

/// BTF objects kept parsed; the least recently used goes first when full.
const CACHE_ENTRIES: usize = 64;

/// The BTF of one map: the object and its key and value type ids (0: none).
#[derive(Debug, Clone)]
pub struct MapTypes {
    /// The parsed BTF object.
    pub btf: Arc<Btf>,
    /// Key type id (0 when the map has no key type).
    pub key: u32,
    /// Value type id (0 when the map has no value type).
    pub value: u32,
}

impl MapTypes {
    /// The C declaration of the key ("" without a key type).
    pub fn key_decl(&self) -> String {
        self.decl(self.key)
    }

    /// The C declaration of the value ("" without a value type).
    pub fn value_decl(&self) -> String {
        self.decl(self.value)
    }

    fn decl(&self, id: u32) -> String {
        if id == 0 {
            String::new()
        } else {
            render::declaration(&self.btf, id)
        }
    }
}

#[derive(Debug)]
struct Cached {
    btf: Arc<Btf>,
    _fd: BtfFd,
    used: u64,
}

/// Parsed BTF objects by id (see the module docs).
#[derive(Debug, Default)]
pub struct BtfCache {
    inner: Mutex<(HashMap<u32, Cached>, u64)>,
}

impl BtfCache {
    /// An empty cache.
    pub fn new() -> BtfCache {
        BtfCache::default()
    }

    /// The BTF types of `map`, or None when it has no BTF.
    pub fn map_types(&self, map: &Map) -> Result<Option<MapTypes>> {
        if map.btf_id == 0 || (map.btf_key_type_id == 0 && map.btf_value_type_id == 0) {
            return Ok(None);
        }
        let btf = self.get(map.btf_id)?;
        Ok(Some(MapTypes {
            btf,
            key: map.btf_key_type_id,
            value: map.btf_value_type_id,
        }))
    }

    /// Caches a BTF object the daemon just loaded (its blob is already parsed).
    pub fn insert(&self, id: u32, fd: BtfFd, btf: Arc<Btf>) {
        let mut g = self.inner.lock();
        g.1 += 1;
        let used = g.1;
        Self::make_room(&mut g.0);
        g.0.insert(id, Cached { btf, _fd: fd, used });
    }

    /// BTF object `id`, parsed.
    pub fn get(&self, id: u32) -> Result<Arc<Btf>> {
        {
            let mut g = self.inner.lock();
            g.1 += 1;
            let now = g.1;
            if let Some(c) = g.0.get_mut(&id) {
                c.used = now;
                return Ok(c.btf.clone());
            }
        }
        // Open and read outside the lock: two racing readers parse twice, harmlessly.
        let fd = BtfFd::open_id(id).map_err(|e| match e.errno {
            libc::ENOENT => Error::NotFound(format!("BTF object {id} is gone")),
            _ => Error::Kernel {
                context: format!("opening BTF object {id}"),
                source: e,
            },
        })?;
        let raw = fd.raw().map_err(|e| Error::Kernel {
            context: format!("reading BTF object {id}"),
            source: e,
        })?;
        let btf = Arc::new(
            Btf::parse(&raw)
                .map_err(|e| Error::Internal(format!("cannot read BTF object {id}: {e}")))?,
        );
        self.insert(id, fd, btf.clone());
        Ok(btf)
    }

    fn make_room(map: &mut HashMap<u32, Cached>) {
        while map.len() >= CACHE_ENTRIES {
            let Some(oldest) = map.iter().min_by_key(|(_, c)| c.used).map(|(id, _)| *id) else {
                return;
            };
            map.remove(&oldest);
        }
    }
}
