//! The Unix socket: a stale socket file left by a crash is replaced, a live daemon's is not;
//! each accepted connection carries its peer's credentials (uid, gid, groups, pid), read once
//! at accept, as the request's identity.

use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::Stream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{UnixListener, UnixStream};
use tonic::transport::server::Connected;

use crate::auth::{identity::groups_of, UnixPeer};

/// Binds `path` with file mode `mode` (and group `group`), creating its directory.
pub fn bind(path: &Path, mode: u32, group: Option<&str>) -> Result<UnixListener, String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create socket directory {}: {e}", dir.display()))?;
    }
    if let Ok(meta) = path.symlink_metadata() {
        if !meta.file_type().is_socket() {
            return Err(format!(
                "{} exists and is not a socket; remove it or choose another --listen path",
                path.display()
            ));
        }
        match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) => {
                return Err(format!(
                    "another bpfmapd is already serving on {}; stop it first or choose another --listen path",
                    path.display()
                ))
            }
            Err(_) => {
                tracing::info!(socket = %path.display(), "replacing stale socket file");
                std::fs::remove_file(path).map_err(|e| format!("cannot remove stale socket {}: {e}", path.display()))?;
            }
        }
    }
    let listener = UnixListener::bind(path)
        .map_err(|e| format!("cannot listen on {}: {e}", path.display()))?;
    if let Some(name) = group {
        let gid = match nix::unistd::Group::from_name(name) {
            Ok(Some(g)) => g.gid,
            _ => return Err(format!("--socket-group {name}: no such group")),
        };
        nix::unistd::chown(path, None, Some(gid))
            .map_err(|e| format!("cannot give {} to group {name}: {e}", path.display()))?;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("cannot set mode {mode:o} on {}: {e}", path.display()))?;
    Ok(listener)
}

/// An accepted connection and its peer's credentials.
#[derive(Debug)]
pub struct PeerStream {
    inner: UnixStream,
    peer: Arc<UnixPeer>,
}

impl Connected for PeerStream {
    type ConnectInfo = Arc<UnixPeer>;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.peer.clone()
    }
}

impl AsyncRead for PeerStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for PeerStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Accepted connections with their credentials. A connection whose credentials cannot be read
/// is dropped (it could not be authorized anyway).
pub fn incoming(listener: UnixListener) -> impl Stream<Item = io::Result<PeerStream>> {
    futures::stream::unfold(listener, |listener| async move {
        loop {
            match listener.accept().await {
                Ok((inner, _)) => match inner.peer_cred() {
                    Ok(cred) => {
                        let groups = groups_of(cred.pid(), cred.uid(), cred.gid());
                        let peer = Arc::new(UnixPeer {
                            uid: cred.uid(),
                            gid: cred.gid(),
                            groups,
                            pid: cred.pid(),
                        });
                        return Some((Ok(PeerStream { inner, peer }), listener));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "dropping a connection without peer credentials")
                    }
                },
                Err(e) => return Some((Err(e), listener)),
            }
        }
    })
}
