//! Who is calling, and what they may do.
//!
//! [`identity`] names the caller from the transport; [`policy`] holds the rules; the
//! [`Authorizer`] applies the current policy (swapped atomically on reload, so a call in flight
//! keeps the policy it started with) and logs every denial.

pub mod glob;
pub mod identity;
pub mod policy;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;

pub use identity::{Identity, UnixPeer};
pub use policy::{MapFacts, Policy};

use crate::error::{Error, Result};
use crate::metrics::Metrics;

/// What a request does, for the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// GetMap, ListMaps, Lookup, GetNextKey, Dump, ReadEvents, Watch.
    Read,
    /// Update, Delete, LookupAndDelete, batches, Dump with delete.
    Write,
    /// CreateMap.
    Create,
    /// DeleteMap, PinMap, UnpinMap, FreezeMap, and any call on a map the daemon does not
    /// manage.
    Admin,
}

impl Access {
    /// The policy's word for it.
    pub fn name(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
            Access::Create => "create",
            Access::Admin => "admin",
        }
    }
}

/// Applies the current policy.
#[derive(Debug)]
pub struct Authorizer {
    policy: ArcSwap<Policy>,
    file: Option<PathBuf>,
    root: PathBuf,
    metrics: Option<Arc<Metrics>>,
}

impl Authorizer {
    /// An authorizer with the policy of `file` (or the built-in default).
    pub fn new(file: Option<PathBuf>, root: PathBuf) -> std::result::Result<Authorizer, String> {
        let policy = match &file {
            Some(f) => Policy::load(f)?,
            None => Policy::root_only(),
        };
        tracing::info!(policy = %policy.source, "access policy loaded");
        Ok(Authorizer {
            policy: ArcSwap::from_pointee(policy),
            file,
            root,
            metrics: None,
        })
    }

    /// Counts denials in `metrics` (`bpfmapd_policy_denials_total`).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Authorizer {
        self.metrics = Some(metrics);
        self
    }

    fn count_denial(&self, rpc: &str, access: &str) {
        if let Some(m) = &self.metrics {
            m.record_denial(rpc, access);
        }
    }

    /// Checks that `who` may do `access` on the map of `facts`. Maps the daemon does not
    /// manage need admin on top. Denials are logged.
    pub fn check(
        &self,
        who: &Identity,
        access: Access,
        rpc: &str,
        facts: &MapFacts<'_>,
    ) -> Result<()> {
        if matches!(who, Identity::Unknown) {
            tracing::warn!(caller = %who, rpc, access = access.name(), result = "denied", "unauthenticated");
            self.count_denial(rpc, "identity");
            return Err(Error::Unauthenticated(format!(
                "{rpc}: the connection carries no identity"
            )));
        }
        let policy = self.policy.load();
        let mut needed = vec![access];
        if !facts.managed && facts.id.is_some() && access != Access::Admin {
            needed.push(Access::Admin);
        }
        for a in needed {
            if !policy.allows(who, a, facts, &self.root) {
                tracing::warn!(caller = %who, rpc, map = facts.id, map_name = facts.name, access = a.name(), result = "denied", "permission denied");
                self.count_denial(rpc, a.name());
                let what = if a == access {
                    format!("{rpc} needs {} access", a.name())
                } else {
                    format!("{rpc} on a map bpfmapd does not manage needs admin access")
                };
                let map = facts.id.map_or_else(
                    || format!("map {:?}", facts.name),
                    |id| format!("map id {id}"),
                );
                return Err(Error::PermissionDenied(format!(
                    "{what} to {map}; the policy does not grant it to {who}"
                )));
            }
        }
        Ok(())
    }

    /// Whether `who` may read the map (for filtering ListMaps, no logging).
    pub fn may_read(&self, who: &Identity, facts: &MapFacts<'_>) -> bool {
        let policy = self.policy.load();
        policy.allows(who, Access::Read, facts, &self.root)
            && (facts.managed || policy.allows(who, Access::Admin, facts, &self.root))
    }

    /// Reloads the policy file; on failure keeps the old policy and logs why.
    pub fn reload(&self, why: &str) {
        let Some(file) = &self.file else { return };
        match Policy::load(file) {
            Ok(p) => {
                tracing::info!(policy = %p.source, trigger = why, "access policy reloaded");
                self.policy.store(Arc::new(p));
            }
            Err(e) => tracing::error!(
                trigger = why,
                "policy reload failed, keeping the previous policy: {e}"
            ),
        }
    }

    /// Reloads on SIGHUP and whenever the file's modification time, size or inode changes
    /// (checked every `every`).
    pub fn watch(self: Arc<Self>, every: Duration) {
        let Some(file) = self.file.clone() else {
            return;
        };
        let me = self.clone();
        tokio::spawn(async move {
            let Ok(mut hup) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            else {
                return;
            };
            while hup.recv().await.is_some() {
                me.reload("SIGHUP");
            }
        });
        tokio::spawn(async move {
            let mut last = stamp(&file);
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let now = stamp(&file);
                if now != last {
                    last = now;
                    self.reload("file changed");
                }
            }
        });
    }
}

fn stamp(path: &Path) -> Option<(SystemTime, u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len(), m.ino()))
}
