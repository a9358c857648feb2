//! Listeners and the server's life: Unix sockets (peer credentials for identity), loopback
//! TCP, reflection and health next to the map service, and a bounded graceful shutdown on
//! SIGINT/SIGTERM. Sockets passed by systemd ([`activation`]) serve like `--listen` ones.

pub mod activation;
mod unix;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bpfmap_proto::v1::map_service_server::MapServiceServer;
use tokio::sync::watch;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};

use crate::auth::Authorizer;
use crate::config::Config;
use crate::limits::StreamCounter;
use crate::metrics::layer::MetricsLayer;
use crate::metrics::{Live, Metrics};
use crate::registry::Registry;
use crate::service::MapService;

/// A parsed `--listen` address.
#[derive(Debug, Clone)]
pub enum Listen {
    /// A Unix socket path.
    Unix(std::path::PathBuf),
    /// A TCP address.
    Tcp(SocketAddr),
}

/// Parses and checks `--listen` values: TCP without TLS only on loopback.
pub async fn parse_listen(addrs: &[String], tls: bool) -> Result<Vec<Listen>, String> {
    let mut out = Vec::new();
    for a in addrs {
        if let Some(path) = a.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(format!("--listen {a}: empty socket path"));
            }
            out.push(Listen::Unix(path.into()));
            continue;
        }
        let resolved: Vec<SocketAddr> = tokio::net::lookup_host(a)
            .await
            .map_err(|e| format!("--listen {a}: not unix:/path or host:port ({e})"))?
            .collect();
        let addr = resolved
            .first()
            .copied()
            .ok_or_else(|| format!("--listen {a}: the name resolves to no address"))?;
        if !addr.ip().is_loopback() && !tls {
            return Err(format!(
                "--listen {a}: refusing TCP without TLS on a non-loopback address; listen on 127.0.0.1 or [::1], or give --tls-cert and --tls-key"
            ));
        }
        out.push(Listen::Tcp(addr));
    }
    Ok(out)
}

/// The tonic server with the daemon's HTTP/2 settings. Public so that the benchmark's
/// gRPC floor (an echo service) runs on exactly the daemon's transport.
pub fn builder() -> Server {
    Server::builder()
}

/// A TCP listener with the daemon's socket options (TCP_NODELAY on every accepted socket).
pub fn tcp_incoming(addr: SocketAddr) -> Result<TcpIncoming, String> {
    Ok(TcpIncoming::bind(addr)
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?
        .with_nodelay(Some(true)))
}

/// A listener ready to serve.
enum Bound {
    Unix(tokio::net::UnixListener),
    Tcp(TcpIncoming),
}

/// Where the daemon's parts come from.
#[derive(Debug)]
pub struct Parts {
    /// The managed maps.
    pub registry: Arc<Registry>,
    /// The access policy.
    pub auth: Arc<Authorizer>,
    /// The metrics (counted whether or not `--metrics-listen` serves them).
    pub metrics: Arc<Metrics>,
}

/// tonic answers an oversized request with OUT_OF_RANGE; the contract (and gRPC's own
/// convention) says RESOURCE_EXHAUSTED for a configured limit.
fn remap_too_large(
    mut res: http::Response<tonic::body::Body>,
) -> http::Response<tonic::body::Body> {
    let too_large = res.headers().get("grpc-status").is_some_and(|v| v == "11")
        && res.headers().get("grpc-message").is_some_and(|m| {
            m.to_str().is_ok_and(|m| {
                m.contains("message%20length%20too%20large")
                    || m.contains("message length too large")
            })
        });
    if too_large {
        res.headers_mut()
            .insert("grpc-status", http::HeaderValue::from_static("8"));
    }
    res
}

/// Serves until SIGINT/SIGTERM, then lets in-flight calls finish for up to the grace period.
pub async fn serve(config: &Config, listen: Vec<Listen>, parts: Parts) -> Result<(), String> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<MapServiceServer<MapService>>().await;
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(bpfmap_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| format!("building reflection: {e}"))?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(bpfmap_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .map_err(|e| format!("building reflection: {e}"))?;
    let streams = Arc::new(StreamCounter::default());
    let metrics = parts.metrics.clone();
    let scrape = match &config.metrics_listen {
        Some(addr) => {
            let listener = crate::metrics::http::bind(addr).await?;
            let local = crate::metrics::http::local(&listener);
            tracing::info!(addr = ?local, "serving metrics at /metrics");
            let live: Live = {
                let (streams, registry) = (streams.clone(), parts.registry.clone());
                Arc::new(move || (streams.total() as i64, registry.count() as i64))
            };
            Some(tokio::spawn(crate::metrics::http::serve(
                listener,
                metrics.clone(),
                live,
            )))
        }
        None => None,
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let service = MapService::new(parts.registry, parts.auth, config.limits())
        .with_metrics(streams, metrics.clone())
        .with_shutdown(stop_rx.clone());
    let maps = MapServiceServer::new(service)
        .max_decoding_message_size(config.max_message_bytes)
        .max_encoding_message_size(usize::MAX);
    // Outermost first: the metrics see the status after the remapping.
    let layer = tower::ServiceBuilder::new()
        .layer(MetricsLayer::new(metrics))
        .layer(tower::util::MapResponseLayer::new(
            remap_too_large as fn(_) -> _,
        ));
    let routes = |builder: Server| {
        builder
            .layer(layer.clone())
            .add_service(health_service.clone())
            .add_service(reflection_v1.clone())
            .add_service(reflection_v1alpha.clone())
            .add_service(maps.clone())
    };
    let plain = routes(builder());
    let tls = match tls_config(config)? {
        Some(cfg) => Some(routes(
            builder()
                .tls_config(cfg)
                .map_err(|e| format!("TLS configuration: {e}"))?,
        )),
        None => None,
    };

    let mut tasks = Vec::new();
    let mut sockets = Vec::new();
    let passed = activation::take()?;
    let mut bound = Vec::new();
    for l in listen {
        if passed.iter().any(|p| p.covers(&l)) {
            continue;
        }
        match l {
            Listen::Unix(path) => {
                let listener =
                    unix::bind(&path, config.socket_mode, config.socket_group.as_deref())?;
                tracing::info!(socket = %path.display(), "listening");
                sockets.push(path);
                bound.push(Bound::Unix(listener));
            }
            Listen::Tcp(addr) => bound.push(Bound::Tcp(
                TcpIncoming::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?,
            )),
        }
    }
    for p in passed {
        match p {
            activation::Passed::Unix(path, l) => {
                tracing::info!(socket = ?path, "listening (passed by systemd)");
                let l = tokio::net::UnixListener::from_std(l)
                    .map_err(|e| format!("socket activation: {e}"))?;
                bound.push(Bound::Unix(l));
            }
            activation::Passed::Tcp(l) => {
                let l = tokio::net::TcpListener::from_std(l)
                    .map_err(|e| format!("socket activation: {e}"))?;
                bound.push(Bound::Tcp(TcpIncoming::from(l)));
            }
        }
    }
    for b in bound {
        let mut stop = stop_rx.clone();
        let shutdown = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        match b {
            Bound::Unix(listener) => {
                tasks.push(tokio::spawn(
                    plain
                        .clone()
                        .serve_with_incoming_shutdown(unix::incoming(listener), shutdown),
                ));
            }
            Bound::Tcp(incoming) => {
                let incoming = incoming.with_nodelay(Some(true));
                let local = incoming.local_addr().map_err(|e| e.to_string())?;
                match &tls {
                    Some(router) => {
                        tracing::info!(addr = %local, mtls = config.tls_client_ca.is_some(), "listening (TCP, TLS)");
                        tasks.push(tokio::spawn(
                            router
                                .clone()
                                .serve_with_incoming_shutdown(incoming, shutdown),
                        ));
                    }
                    None => {
                        if !local.ip().is_loopback() {
                            return Err(format!("refusing TCP without TLS on the non-loopback address {local}; give --tls-cert and --tls-key"));
                        }
                        tracing::info!(addr = %local, "listening (TCP, loopback, no TLS: callers are anonymous)");
                        tasks.push(tokio::spawn(
                            plain
                                .clone()
                                .serve_with_incoming_shutdown(incoming, shutdown),
                        ));
                    }
                }
            }
        }
    }

    let signal = wait_for_signal().await;
    tracing::info!(
        signal,
        "shutting down: no new connections, finishing in-flight calls"
    );
    health
        .set_not_serving::<MapServiceServer<MapService>>()
        .await;
    let _ = stop_tx.send(true);
    let grace = Duration::from_secs(config.shutdown_grace);
    let drained = tokio::time::timeout(grace, futures::future::join_all(tasks)).await;
    if drained.is_err() {
        tracing::warn!(
            grace_secs = config.shutdown_grace,
            "in-flight calls did not finish in time; exiting anyway"
        );
    }
    for path in sockets {
        let _ = std::fs::remove_file(path);
    }
    if let Some(task) = scrape {
        task.abort();
    }
    Ok(())
}

/// The TLS configuration from the flags: server identity, and the client CA for mutual TLS.
fn tls_config(config: &Config) -> Result<Option<ServerTlsConfig>, String> {
    let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) else {
        return Ok(None);
    };
    let read = |p: &std::path::Path, what: &str| {
        std::fs::read(p).map_err(|e| format!("cannot read {what} {}: {e}", p.display()))
    };
    let mut cfg = ServerTlsConfig::new().identity(Identity::from_pem(
        read(cert, "--tls-cert")?,
        read(key, "--tls-key")?,
    ));
    if let Some(ca) = &config.tls_client_ca {
        cfg = cfg.client_ca_root(Certificate::from_pem(read(ca, "--tls-client-ca")?));
    }
    Ok(Some(cfg))
}

async fn wait_for_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers the daemon can only be killed; keep serving.
        futures::future::pending::<()>().await;
        return "none";
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}
