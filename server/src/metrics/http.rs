//! The scrape endpoint: `GET /metrics` over HTTP/1.1 on `--metrics-listen ADDR`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use super::{Live, Metrics};

/// The content type of the OpenMetrics text that `prometheus-client` writes.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Binds `addr` (so that a taken port fails the start) and returns the listener.
pub async fn bind(addr: &str) -> Result<TcpListener, String> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("--metrics-listen {addr}: cannot listen: {e}"))?;
    Ok(listener)
}

/// Serves scrapes on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>, live: Live) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "metrics listener: accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let (metrics, live) = (metrics.clone(), live.clone());
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let res = respond(&req, &metrics, &live);
                async move { Ok::<_, Infallible>(res) }
            });
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await
            {
                tracing::debug!(%peer, error = %e, "metrics connection ended");
            }
        });
    }
}

fn respond<B>(
    req: &http::Request<B>,
    metrics: &Metrics,
    live: &Live,
) -> http::Response<Full<Bytes>> {
    let (status, ctype, body) = match (req.method(), req.uri().path()) {
        (&http::Method::GET, "/metrics") => {
            (http::StatusCode::OK, CONTENT_TYPE, metrics.render(live))
        }
        (&http::Method::GET, _) => (
            http::StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "bpfmapd serves its metrics at /metrics\n".to_owned(),
        ),
        _ => (
            http::StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "use GET /metrics\n".to_owned(),
        ),
    };
    let mut res = http::Response::new(Full::new(Bytes::from(body)));
    *res.status_mut() = status;
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(ctype),
    );
    res
}

/// The address a listener got (for the log line, with port 0).
pub fn local(listener: &TcpListener) -> Option<SocketAddr> {
    listener.local_addr().ok()
}
