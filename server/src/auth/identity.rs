//! Who is calling: Unix peer credentials (uid, gid, supplementary groups, pid), a TLS client
//! certificate (subject CN, SAN DNS and URI names), or an anonymous TCP peer.

use std::fmt;
use std::sync::Arc;

use tonic::transport::server::TcpConnectInfo;
use tonic::transport::server::TlsConnectInfo;

/// Credentials of a Unix-socket peer, captured when the connection was accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnixPeer {
    /// User id (SO_PEERCRED).
    pub uid: u32,
    /// Primary group id (SO_PEERCRED).
    pub gid: u32,
    /// Supplementary groups of the peer process.
    pub groups: Vec<u32>,
    /// Process id, for the logs.
    pub pid: Option<i32>,
}

/// The caller of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// A Unix-socket peer.
    Unix(Arc<UnixPeer>),
    /// A TLS client that presented a certificate the daemon's client CA signed.
    Cert {
        /// Subject common name.
        cn: Option<String>,
        /// SAN DNS names and URIs (SPIFFE ids).
        sans: Vec<String>,
        /// Peer address.
        addr: String,
    },
    /// A TCP caller without a client certificate.
    Anonymous {
        /// Peer address.
        addr: String,
    },
    /// No transport information (should not happen).
    Unknown,
}

impl Identity {
    /// A stable key for per-identity limits: `uid:0`, `cert:CN=agent-1`, `anonymous`.
    pub fn key(&self) -> String {
        match self {
            Identity::Unix(p) => format!("uid:{}", p.uid),
            Identity::Cert { cn: Some(cn), .. } => format!("cert:CN={cn}"),
            Identity::Cert { sans, .. } => {
                format!("san:{}", sans.first().map(String::as_str).unwrap_or(""))
            }
            Identity::Anonymous { .. } => "anonymous".to_owned(),
            Identity::Unknown => "unknown".to_owned(),
        }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::Unix(p) => match p.pid {
                Some(pid) => write!(f, "uid:{} gid:{} pid:{pid}", p.uid, p.gid),
                None => write!(f, "uid:{} gid:{}", p.uid, p.gid),
            },
            Identity::Cert { cn, sans, addr } => {
                write!(f, "cert:CN={}", cn.as_deref().unwrap_or(""))?;
                for s in sans {
                    write!(f, " san:{s}")?;
                }
                write!(f, " @{addr}")
            }
            Identity::Anonymous { addr } => write!(f, "anonymous@{addr}"),
            Identity::Unknown => f.write_str("unknown"),
        }
    }
}

/// The identity of the caller of `req`, from the transport's connect info.
pub fn of<T>(req: &tonic::Request<T>) -> Identity {
    if let Some(peer) = req.extensions().get::<Arc<UnixPeer>>() {
        return Identity::Unix(peer.clone());
    }
    if let Some(info) = req.extensions().get::<TlsConnectInfo<TcpConnectInfo>>() {
        let addr = info
            .get_ref()
            .remote_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        return match info
            .peer_certs()
            .as_ref()
            .and_then(|c| c.first())
            .map(|c| parse_cert(c.as_ref()))
        {
            Some(Some((cn, sans))) => Identity::Cert { cn, sans, addr },
            _ => Identity::Anonymous { addr },
        };
    }
    if let Some(info) = req.extensions().get::<TcpConnectInfo>() {
        return Identity::Anonymous {
            addr: info
                .remote_addr()
                .map(|a| a.to_string())
                .unwrap_or_default(),
        };
    }
    Identity::Unknown
}

/// Subject CN and SAN DNS/URI names of a DER certificate.
fn parse_cert(der: &[u8]) -> Option<(Option<String>, Vec<String>)> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let cn = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|a| a.as_str().ok())
        .map(str::to_owned);
    let mut sans = Vec::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for name in &ext.value.general_names {
            match name {
                GeneralName::DNSName(d) => sans.push((*d).to_owned()),
                GeneralName::URI(u) => sans.push((*u).to_owned()),
                _ => {}
            }
        }
    }
    Some((cn, sans))
}

/// Supplementary groups of process `pid` (its `Groups:` line in /proc), falling back to
/// the user's groups from the group database when the process is gone.
pub fn groups_of(pid: Option<i32>, uid: u32, gid: u32) -> Vec<u32> {
    if let Some(pid) = pid {
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            if let Some(line) = status.lines().find(|l| l.starts_with("Groups:")) {
                return line["Groups:".len()..]
                    .split_whitespace()
                    .filter_map(|g| g.parse().ok())
                    .collect();
            }
        }
    }
    let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten();
    match user.and_then(|u| std::ffi::CString::new(u.name).ok()) {
        Some(name) => nix::unistd::getgrouplist(&name, nix::unistd::Gid::from_raw(gid))
            .map(|gs| gs.into_iter().map(|g| g.as_raw()).collect())
            .unwrap_or_default(),
        None => Vec::new(),
    }
}
