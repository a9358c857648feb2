//! A tower layer around the whole gRPC server that counts every call by method and status
//! code and times it.
//!
//! The status of a unary error comes in the response headers (trailers-only response); the
//! status of everything else comes in the trailers at the end of the body, so the body is
//! wrapped and the call is recorded when the trailers pass (or, for a client that leaves
//! before them, as `CANCELLED` when the body is dropped).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tower::{Layer, Service};

use super::Metrics;

/// Wraps services in [`MetricsService`].
#[derive(Debug, Clone)]
pub struct MetricsLayer {
    metrics: Arc<Metrics>,
}

impl MetricsLayer {
    /// A layer that records into `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> MetricsLayer {
        MetricsLayer { metrics }
    }
}

impl<S> Layer<S> for MetricsLayer {
    type Service = MetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MetricsService {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// The service made by [`MetricsLayer`].
#[derive(Debug, Clone)]
pub struct MetricsService<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, B> Service<http::Request<B>> for MetricsService<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let call = Call {
            rpc: self.metrics.rpc_label(req.uri().path()),
            metrics: self.metrics.clone(),
            started: Instant::now(),
        };
        let fut = self.inner.call(req);
        Box::pin(async move {
            let res = match fut.await {
                Ok(res) => res,
                Err(e) => {
                    call.finish(tonic::Code::Unavailable);
                    return Err(e);
                }
            };
            if let Some(code) = status_of(res.headers()) {
                call.finish(code);
                return Ok(res);
            }
            Ok(res.map(|body| {
                tonic::body::Body::new(Observed {
                    inner: body,
                    call: Some(call),
                })
            }))
        })
    }
}

/// One call in flight.
struct Call {
    metrics: Arc<Metrics>,
    rpc: String,
    started: Instant,
}

impl Call {
    fn finish(self, code: tonic::Code) {
        self.metrics
            .record_call(&self.rpc, code, self.started.elapsed());
    }
}

fn status_of(headers: &http::HeaderMap) -> Option<tonic::Code> {
    let v = headers
        .get("grpc-status")?
        .to_str()
        .ok()?
        .parse::<i32>()
        .ok()?;
    Some(tonic::Code::from_i32(v))
}

/// A response body that records its call when the trailers pass or when it is dropped.
struct Observed {
    inner: tonic::body::Body,
    call: Option<Call>,
}

impl Observed {
    fn finish(&mut self, code: tonic::Code) {
        if let Some(call) = self.call.take() {
            call.finish(code);
        }
    }
}

impl Body for Observed {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(status_of) {
                    this.finish(code);
                }
            }
            Poll::Ready(Some(Err(_))) => this.finish(tonic::Code::Internal),
            Poll::Ready(None) => this.finish(tonic::Code::Unknown),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Observed {
    fn drop(&mut self) {
        self.finish(tonic::Code::Cancelled);
    }
}
