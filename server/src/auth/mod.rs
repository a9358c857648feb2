//! Who is calling, and what they may do.
//!
//! Interim policy until the policy issue: over the Unix socket only uid 0 (read with
//! SO_PEERCRED) may do anything; TCP (loopback only) callers are anonymous and may only read.

use std::fmt;

use tonic::transport::server::{TcpConnectInfo, UdsConnectInfo};

use crate::error::{Error, Result};

/// The caller of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// A Unix-socket peer.
    Unix {
        /// User id.
        uid: u32,
        /// Group id.
        gid: u32,
        /// Process id, for the logs.
        pid: Option<i32>,
    },
    /// A TCP caller without a certificate.
    Anonymous {
        /// Peer address.
        addr: String,
    },
    /// No transport information (should not happen).
    Unknown,
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::Unix { uid, gid, pid } => match pid {
                Some(pid) => write!(f, "uid:{uid} gid:{gid} pid:{pid}"),
                None => write!(f, "uid:{uid} gid:{gid}"),
            },
            Identity::Anonymous { addr } => write!(f, "anonymous@{addr}"),
            Identity::Unknown => f.write_str("unknown"),
        }
    }
}

/// What a request does, for the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// GetMap, ListMaps, Lookup, GetNextKey, Dump.
    Read,
    /// Update, Delete, LookupAndDelete, batches, Dump with delete.
    Write,
    /// CreateMap.
    Create,
    /// DeleteMap, PinMap, UnpinMap, FreezeMap.
    Admin,
}

impl Access {
    fn name(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
            Access::Create => "create",
            Access::Admin => "admin",
        }
    }
}

/// The identity of the caller of `req`, from the transport's connect info.
pub fn identity<T>(req: &tonic::Request<T>) -> Identity {
    if let Some(info) = req.extensions().get::<UdsConnectInfo>() {
        if let Some(cred) = info.peer_cred {
            return Identity::Unix {
                uid: cred.uid(),
                gid: cred.gid(),
                pid: cred.pid(),
            };
        }
    }
    if let Some(info) = req.extensions().get::<TcpConnectInfo>() {
        return Identity::Anonymous {
            addr: info.remote_addr.map(|a| a.to_string()).unwrap_or_default(),
        };
    }
    Identity::Unknown
}

/// Checks that `who` may do `access`.
pub fn authorize(who: &Identity, access: Access, rpc: &str) -> Result<()> {
    let allowed = match who {
        Identity::Unix { uid: 0, .. } => true,
        Identity::Anonymous { .. } => access == Access::Read,
        Identity::Unix { .. } | Identity::Unknown => false,
    };
    if allowed {
        return Ok(());
    }
    tracing::warn!(caller = %who, rpc, access = access.name(), "permission denied");
    Err(match who {
        Identity::Unknown => Error::Unauthenticated(format!("{rpc}: the caller has no identity")),
        Identity::Anonymous { .. } => Error::PermissionDenied(format!(
            "{rpc} needs {} access; TCP callers without a client certificate may only read",
            access.name()
        )),
        _ => Error::PermissionDenied(format!(
            "{rpc} needs {} access; {who} is not allowed (only root may use the Unix socket until a policy is configured)",
            access.name()
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interim_policy() {
        let root = Identity::Unix {
            uid: 0,
            gid: 0,
            pid: None,
        };
        let user = Identity::Unix {
            uid: 1000,
            gid: 1000,
            pid: None,
        };
        let anon = Identity::Anonymous {
            addr: "127.0.0.1:1".into(),
        };
        assert!(authorize(&root, Access::Admin, "X").is_ok());
        assert!(authorize(&user, Access::Read, "X").is_err());
        assert!(authorize(&anon, Access::Read, "X").is_ok());
        assert!(authorize(&anon, Access::Write, "X").is_err());
        assert!(matches!(
            authorize(&Identity::Unknown, Access::Read, "X"),
            Err(Error::Unauthenticated(_))
        ));
    }
}
