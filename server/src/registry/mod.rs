//! The registry: which maps the daemon manages, and how a `MapRef` becomes an open map.
//!
//! Managed maps are the ones the daemon created or adopted (found pinned under its root at
//! start); their fds stay open for the daemon's life, so a request on them costs a hash
//! lookup. Foreign maps (any other map on the host) are opened per request by id, pin or name.

pub mod paths;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;

use crate::error::{Error, MapDesc, Result};
use crate::kernel::{all_map_ids, CreateParams, Map};

/// How a request names a map (the proto's `MapRef.ref`, decoded).
#[derive(Debug, Clone)]
pub enum Target<'a> {
    /// Kernel id.
    Id(u32),
    /// Pin path, relative to the root or absolute.
    Pin(&'a str),
    /// Kernel map name.
    Name(&'a str),
}

/// A map the daemon manages.
#[derive(Debug)]
pub struct Managed {
    /// The open map.
    pub map: Arc<Map>,
    /// Absolute pin paths the daemon made or adopted.
    pub pins: Vec<PathBuf>,
    /// The identity that created it (None for adopted maps), for per-identity caps.
    pub owner: Option<String>,
}

/// A map resolved for one request.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The open map.
    pub map: Arc<Map>,
    /// Managed by the daemon.
    pub managed: bool,
}

impl Resolved {
    /// The map as named in messages.
    pub fn desc(&self) -> MapDesc {
        desc(&self.map)
    }
}

/// The map as named in messages.
pub fn desc(map: &Map) -> MapDesc {
    MapDesc {
        id: map.id,
        name: map.name.clone(),
        kind: map.kind,
        max_entries: map.max_entries,
    }
}

/// Why a creation failed.
#[derive(Debug)]
pub enum CreateError {
    /// A configured cap.
    Limit(Error),
    /// The kernel refused (create or pin).
    Kernel(crate::kernel::KernelError),
}

/// Managed maps by id; pins by path.
#[derive(Debug)]
pub struct Registry {
    root: PathBuf,
    root_canon: PathBuf,
    maps: RwLock<HashMap<u32, Managed>>,
    /// Serializes creations so that a cap check and the creation it allows are one step.
    creating: parking_lot::Mutex<()>,
}

impl Registry {
    /// A registry rooted at `root` (which must exist on bpffs), adopting every map pinned
    /// below it.
    pub fn open(root: &Path) -> Result<Registry> {
        let root_canon = root.canonicalize().map_err(|e| {
            Error::Internal(format!(
                "cannot resolve --bpffs-root {}: {e}",
                root.display()
            ))
        })?;
        let reg = Registry {
            root: root.to_path_buf(),
            root_canon,
            maps: RwLock::new(HashMap::new()),
            creating: parking_lot::Mutex::new(()),
        };
        let adopted = reg.adopt()?;
        tracing::info!(root = %root.display(), maps = adopted, "adopted pinned maps");
        Ok(reg)
    }

    /// The bpffs root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Walks the root and takes every pinned map found into the managed set.
    fn adopt(&self) -> Result<usize> {
        let mut stack = vec![self.root.clone()];
        let mut maps = self.maps.write();
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let Ok(meta) = path.symlink_metadata() else {
                    continue;
                };
                if meta.is_dir() {
                    stack.push(path);
                } else if meta.is_file() {
                    match Map::open_pinned(&path) {
                        Ok(map) => {
                            let slot = maps.entry(map.id).or_insert_with(|| Managed {
                                map: Arc::new(map),
                                pins: Vec::new(),
                                owner: None,
                            });
                            slot.pins.push(path);
                        }
                        Err(e) => {
                            tracing::warn!(pin = %path.display(), error = %e, "not adopting pin: not a map")
                        }
                    }
                }
            }
        }
        for m in maps.values_mut() {
            m.pins.sort();
        }
        Ok(maps.len())
    }

    /// Resolves a pin path for an existing pin, confined per [`paths`].
    pub fn existing_pin(&self, pin: &str) -> Result<PathBuf> {
        let path = paths::normalize(&self.root, pin)?;
        paths::confine(&self.root, &self.root_canon, &path, true)?;
        Ok(path)
    }

    /// Resolves a pin path for a new pin: parent directories under the root are created.
    pub fn new_pin(&self, pin: &str) -> Result<PathBuf> {
        let path = paths::normalize(&self.root, pin)?;
        paths::check_new_name(&path)?;
        if path.starts_with(&self.root) {
            if let Some(parent) = path.parent() {
                // Check before creating, so that a symlinked directory cannot make us mkdir
                // outside the root.
                let mut probe = parent.to_path_buf();
                while !probe.exists() {
                    probe.pop();
                }
                paths::confine(&self.root, &self.root_canon, &probe.join("probe"), false)?;
                std::fs::create_dir_all(parent).map_err(|e| {
                    Error::InvalidArgument(format!(
                        "cannot create directory {}: {e}",
                        parent.display()
                    ))
                })?;
            }
        }
        paths::confine(&self.root, &self.root_canon, &path, false)?;
        if path.symlink_metadata().is_ok() {
            return Err(Error::AlreadyExists(format!(
                "pin path {} is taken",
                path.display()
            )));
        }
        Ok(path)
    }

    /// Resolves a map reference.
    pub fn resolve(&self, target: Target<'_>) -> Result<Resolved> {
        match target {
            Target::Id(id) => {
                if let Some(m) = self.maps.read().get(&id) {
                    return Ok(Resolved {
                        map: m.map.clone(),
                        managed: true,
                    });
                }
                let map = Map::open_id(id).map_err(|e| match e.errno {
                    libc::ENOENT => Error::NotFound(format!("no map with id {id}")),
                    _ => Error::Kernel {
                        context: format!("opening map id {id}"),
                        source: e,
                    },
                })?;
                Ok(self.prefer_managed(map))
            }
            Target::Pin(pin) => {
                let path = self.existing_pin(pin)?;
                if let Some(m) = self.maps.read().values().find(|m| m.pins.contains(&path)) {
                    return Ok(Resolved {
                        map: m.map.clone(),
                        managed: true,
                    });
                }
                let map = Map::open_pinned(&path).map_err(|e| match e.errno {
                    libc::ENOENT => Error::NotFound(format!("no pin at {}", path.display())),
                    libc::EINVAL => Error::InvalidArgument(format!(
                        "{} is pinned but is not a map",
                        path.display()
                    )),
                    _ => Error::Kernel {
                        context: format!("opening pin {}", path.display()),
                        source: e,
                    },
                })?;
                Ok(self.prefer_managed(map))
            }
            Target::Name(name) => self.resolve_name(name),
        }
    }

    fn prefer_managed(&self, map: Map) -> Resolved {
        match self.maps.read().get(&map.id) {
            Some(m) => Resolved {
                map: m.map.clone(),
                managed: true,
            },
            None => Resolved {
                map: Arc::new(map),
                managed: false,
            },
        }
    }

    fn resolve_name(&self, name: &str) -> Result<Resolved> {
        if name.is_empty() {
            return Err(Error::InvalidArgument("map name is empty".into()));
        }
        let managed: Vec<Arc<Map>> = self
            .maps
            .read()
            .values()
            .filter(|m| m.map.name == name)
            .map(|m| m.map.clone())
            .collect();
        let found: Vec<Resolved> = if managed.is_empty() {
            let ids = all_map_ids().map_err(|e| Error::Kernel {
                context: "listing the host's maps".into(),
                source: e,
            })?;
            ids.into_iter()
                .filter_map(|id| Map::open_id(id).ok())
                .filter(|m| m.name == name)
                .map(|m| Resolved {
                    map: Arc::new(m),
                    managed: false,
                })
                .collect()
        } else {
            managed
                .into_iter()
                .map(|map| Resolved { map, managed: true })
                .collect()
        };
        match found.len() {
            0 => Err(Error::NotFound(format!("no map named {name:?}"))),
            1 => Ok(found
                .into_iter()
                .next()
                .ok_or_else(|| Error::Internal("empty match".into()))?),
            _ => {
                let ids: Vec<String> = found.iter().map(|r| r.map.id.to_string()).collect();
                Err(Error::FailedPrecondition(format!(
                    "map name {name:?} is ambiguous: maps with ids {} carry it; name the map by id or pin",
                    ids.join(", ")
                )))
            }
        }
    }

    /// Creates a map for `owner`; pins it at `pin` unless that is None (ephemeral). The caps
    /// on managed maps are checked first, under the same lock as the creation.
    pub fn create(
        &self,
        params: &CreateParams<'_>,
        pin: Option<&Path>,
        owner: &str,
        limits: &crate::limits::Limits,
    ) -> Result<Resolved, CreateError> {
        let _one_at_a_time = self.creating.lock();
        {
            let maps = self.maps.read();
            if limits.max_maps > 0 && maps.len() >= limits.max_maps {
                return Err(CreateError::Limit(Error::ResourceExhausted(format!(
                    "the daemon already manages {} maps (--max-maps {}); delete one first",
                    maps.len(),
                    limits.max_maps
                ))));
            }
            let mine = maps
                .values()
                .filter(|m| m.owner.as_deref() == Some(owner))
                .count();
            if limits.max_maps_per_identity > 0 && mine >= limits.max_maps_per_identity {
                return Err(CreateError::Limit(Error::ResourceExhausted(format!(
                    "{owner} already created {mine} maps (--max-maps-per-identity {}); delete one first",
                    limits.max_maps_per_identity
                ))));
            }
        }
        let map = Map::create(params).map_err(CreateError::Kernel)?;
        if let Some(path) = pin {
            map.pin(path).map_err(CreateError::Kernel)?;
        }
        let map = Arc::new(map);
        let pins = pin.map(|p| vec![p.to_path_buf()]).unwrap_or_default();
        self.maps.write().insert(
            map.id,
            Managed {
                map: map.clone(),
                pins,
                owner: Some(owner.to_owned()),
            },
        );
        Ok(Resolved { map, managed: true })
    }

    /// Pins an open map at `path` and makes it managed.
    pub fn pin(
        &self,
        resolved: &Resolved,
        path: &Path,
    ) -> std::result::Result<(), crate::kernel::KernelError> {
        resolved.map.pin(path)?;
        let mut maps = self.maps.write();
        let slot = maps.entry(resolved.map.id).or_insert_with(|| Managed {
            map: resolved.map.clone(),
            pins: Vec::new(),
            owner: None,
        });
        slot.pins.push(path.to_path_buf());
        Ok(())
    }

    /// Removes a pin (an unlink) after checking it is a map's pin.
    pub fn unpin(&self, path: &Path) -> Result<()> {
        match Map::open_pinned(path) {
            Ok(_) => {}
            Err(e) if e.errno == libc::ENOENT => {
                return Err(Error::NotFound(format!("no pin at {}", path.display())))
            }
            Err(_) => {
                return Err(Error::InvalidArgument(format!(
                    "{} is not a map's pin; refusing to remove it",
                    path.display()
                )))
            }
        }
        std::fs::remove_file(path)
            .map_err(|e| Error::Internal(format!("cannot remove pin {}: {e}", path.display())))?;
        for m in self.maps.write().values_mut() {
            m.pins.retain(|p| p != path);
        }
        Ok(())
    }

    /// Stops managing a map: removes its pins and drops the daemon's fd. Returns the pins
    /// removed. The map itself lives on while anything else holds it.
    pub fn delete(&self, id: u32) -> Result<Vec<PathBuf>> {
        let Some(managed) = self.maps.write().remove(&id) else {
            return Err(Error::FailedPrecondition(format!(
                "map id {id} is not managed by bpfmapd: DeleteMap only removes the daemon's own maps (UnpinMap removes a pin)"
            )));
        };
        let mut removed = Vec::new();
        for pin in &managed.pins {
            match std::fs::remove_file(pin) {
                Ok(()) => removed.push(pin.clone()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(pin = %pin.display(), error = %e, "could not remove pin"),
            }
        }
        Ok(removed)
    }

    /// Pins known for map `id` (empty for foreign maps).
    pub fn pins(&self, id: u32) -> Vec<PathBuf> {
        self.maps
            .read()
            .get(&id)
            .map(|m| m.pins.clone())
            .unwrap_or_default()
    }

    /// How many maps the daemon manages.
    pub fn count(&self) -> usize {
        self.maps.read().len()
    }

    /// Whether the daemon manages map `id`.
    pub fn is_managed(&self, id: u32) -> bool {
        self.maps.read().contains_key(&id)
    }

    /// All managed maps, by ascending id.
    pub fn managed(&self) -> Vec<Arc<Map>> {
        let mut v: Vec<Arc<Map>> = self.maps.read().values().map(|m| m.map.clone()).collect();
        v.sort_by_key(|m| m.id);
        v
    }

    /// Every map on the host (managed ones from the registry, others opened by id).
    pub fn all(&self) -> Result<Vec<Resolved>> {
        let ids = all_map_ids().map_err(|e| Error::Kernel {
            context: "listing the host's maps".into(),
            source: e,
        })?;
        Ok(ids
            .into_iter()
            .filter_map(|id| match self.maps.read().get(&id) {
                Some(m) => Some(Resolved {
                    map: m.map.clone(),
                    managed: true,
                }),
                None => Map::open_id(id).ok().map(|m| Resolved {
                    map: Arc::new(m),
                    managed: false,
                }),
            })
            .collect())
    }
}
