//! Typed async client for `bpfmapd`.
//!
//! [`connect`] opens a channel to a daemon at `unix:/path`, `http://host:port`;
//! [`proto`] re-exports the wire types and the generated `MapServiceClient`.

pub use bpfmap_proto as proto_crate;
pub use bpfmap_proto::v1 as proto;

use std::time::Duration;

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint, Uri};

/// The address used when none is given and `BPFMAP_SERVER` is unset.
pub const DEFAULT_ADDR: &str = "unix:/run/bpfmapd/bpfmapd.sock";

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The address could not be parsed.
    #[error("invalid server address {addr:?}: {reason}")]
    BadAddress {
        /// The address as given.
        addr: String,
        /// Why it was refused.
        reason: String,
    },
    /// The connection could not be made.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The address as given.
        addr: String,
        /// The transport error.
        #[source]
        source: tonic::transport::Error,
    },
}

/// Opens a channel to `addr`: `unix:/path/to.sock`, `http://host:port` or `host:port`.
pub async fn connect_channel(addr: &str) -> Result<Channel, Error> {
    if let Some(path) = addr.strip_prefix("unix:") {
        let path = path.to_owned();
        if path.is_empty() {
            return Err(Error::BadAddress {
                addr: addr.to_owned(),
                reason: "empty socket path".into(),
            });
        }
        // The URI is ignored by the connector; it only has to parse.
        let endpoint =
            Endpoint::from_static("http://localhost").connect_timeout(Duration::from_secs(5));
        return endpoint
            .connect_with_connector(tower::service_fn(move |_: Uri| {
                let path = path.clone();
                async move {
                    Ok::<_, std::io::Error>(TokioIo::new(
                        tokio::net::UnixStream::connect(path).await?,
                    ))
                }
            }))
            .await
            .map_err(|source| Error::Connect {
                addr: addr.to_owned(),
                source,
            });
    }
    let uri = if addr.contains("://") {
        addr.to_owned()
    } else {
        format!("http://{addr}")
    };
    let endpoint = Endpoint::from_shared(uri)
        .map_err(|e| Error::BadAddress {
            addr: addr.to_owned(),
            reason: e.to_string(),
        })?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true);
    endpoint.connect().await.map_err(|source| Error::Connect {
        addr: addr.to_owned(),
        source,
    })
}

/// Connects and returns the generated `MapServiceClient` with generous message limits.
pub async fn connect(
    addr: &str,
) -> Result<proto::map_service_client::MapServiceClient<Channel>, Error> {
    let channel = connect_channel(addr).await?;
    Ok(proto::map_service_client::MapServiceClient::new(channel)
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20))
}
