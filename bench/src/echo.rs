//! The gRPC floor: a tonic service that answers its request, served by the daemon's own
//! transport settings (`bpfmapd::transport::builder` and `tcp_incoming`).

use std::net::SocketAddr;
use std::path::Path;

use anyhow::{Context, Result};
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

#[allow(missing_docs, clippy::all)]
pub mod pb {
    tonic::include_proto!("bench.v1");
}

use pb::echo_client::EchoClient;
use pb::echo_server::{Echo, EchoServer};
use pb::EchoMessage;

#[derive(Debug, Default)]
struct Service;

#[tonic::async_trait]
impl Echo for Service {
    async fn echo(&self, req: Request<EchoMessage>) -> Result<Response<EchoMessage>, Status> {
        Ok(Response::new(req.into_inner()))
    }
}

/// Serves the echo service on a Unix socket and a TCP address until killed.
pub fn serve(unix: &Path, tcp: SocketAddr) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let _ = std::fs::remove_file(unix);
        let listener = tokio::net::UnixListener::bind(unix)
            .with_context(|| format!("binding {}", unix.display()))?;
        let incoming = bpfmapd::transport::tcp_incoming(tcp).map_err(anyhow::Error::msg)?;
        let router = bpfmapd::transport::builder().add_service(EchoServer::new(Service));
        let a = tokio::spawn(
            router
                .clone()
                .serve_with_incoming(tokio_stream::wrappers::UnixListenerStream::new(listener)),
        );
        let b = tokio::spawn(router.serve_with_incoming(incoming));
        let (a, b) = tokio::join!(a, b);
        a??;
        b??;
        Ok(())
    })
}

/// A client of the echo service on its own HTTP/2 connection, made by the map client's
/// connector (same endpoint settings).
pub async fn connect(addr: &str) -> Result<EchoClient<Channel>> {
    Ok(EchoClient::new(bpfmap_client::connect_channel(addr).await?))
}

/// One echo call.
pub async fn probe(addr: &str) -> Result<()> {
    let mut c = connect(addr).await?;
    c.echo(EchoMessage {
        payload: bytes::Bytes::from_static(b"probe"),
    })
    .await?;
    Ok(())
}
