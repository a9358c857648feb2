//! systemd socket activation: listening sockets passed in `LISTEN_FDS` (the `listenfd` crate
//! reads them, checking `LISTEN_PID`).
//!
//! A passed Unix socket serves like `--listen unix:PATH` (peer credentials, the policy), a
//! passed TCP socket like `--listen host:port` (TLS when configured). A `--listen` address
//! that a passed socket already covers is not bound again, so one configuration works with
//! and without activation.

use std::path::PathBuf;

use listenfd::ListenFd;

/// A socket systemd passed.
#[derive(Debug)]
pub enum Passed {
    /// A Unix stream socket, with its path when it has one.
    Unix(Option<PathBuf>, std::os::unix::net::UnixListener),
    /// A TCP socket.
    Tcp(std::net::TcpListener),
}

/// Takes every socket passed by systemd (none when not socket-activated).
pub fn take() -> Result<Vec<Passed>, String> {
    let mut fds = ListenFd::from_env();
    let mut out = Vec::new();
    for i in 0..fds.len() {
        let bad = |e: std::io::Error| format!("socket activation: passed fd #{i}: {e}");
        if let Ok(Some(l)) = fds.take_unix_listener(i) {
            let path = l
                .local_addr()
                .ok()
                .and_then(|a| a.as_pathname().map(PathBuf::from));
            l.set_nonblocking(true).map_err(bad)?;
            out.push(Passed::Unix(path, l));
            continue;
        }
        let tcp = match fds.take_tcp_listener(i) {
            Ok(Some(l)) => Some(l),
            _ => fds
                .take_custom::<std::net::TcpListener>(
                    i,
                    libc::AF_INET6,
                    libc::SOCK_STREAM,
                    "tcp6 socket",
                )
                .map_err(bad)?,
        };
        if let Some(l) = tcp {
            l.set_nonblocking(true).map_err(bad)?;
            out.push(Passed::Tcp(l));
        }
    }
    if !out.is_empty() {
        tracing::info!(
            sockets = out.len(),
            "socket activation: serving the passed sockets"
        );
    }
    Ok(out)
}

impl Passed {
    /// True when this socket already serves `listen`.
    pub fn covers(&self, listen: &super::Listen) -> bool {
        match (self, listen) {
            (Passed::Unix(Some(p), _), super::Listen::Unix(q)) => p == q,
            (Passed::Tcp(l), super::Listen::Tcp(a)) => l.local_addr().is_ok_and(|b| b == *a),
            _ => false,
        }
    }
}
