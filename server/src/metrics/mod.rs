//! Prometheus metrics (`--metrics-listen ADDR`), kept with the `prometheus-client` crate.
//!
//! What is counted, and where:
//! - `bpfmapd_rpc_calls_total{rpc,code}` and `bpfmapd_rpc_duration_seconds{rpc}`: every gRPC
//!   call, counted by the tower [`layer`] around the server when its status is known (for a
//!   stream: when it ends; a client that goes away first counts as `CANCELLED`);
//! - `bpfmapd_entries_streamed_total` (entries sent by `Dump`), `bpfmapd_entries_written_total`
//!   (`Update`, `BatchUpdate`), `bpfmapd_entries_deleted_total` (`Delete`, `LookupAndDelete`,
//!   `BatchDelete`): by the handlers;
//! - `bpfmapd_policy_denials_total{rpc,access}`: by the authorizer;
//! - `bpfmapd_active_streams` and `bpfmapd_managed_maps`: read at scrape time.
//!
//! [`http`] serves the text exposition on `GET /metrics`.

pub mod http;
pub mod layer;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use prost::Message;

/// Labels of a finished call.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    /// The method name (`Lookup`, `Dump`, ...), `health`, `reflection` or `unknown`.
    pub rpc: String,
    /// The gRPC status code in upper-snake form (`OK`, `NOT_FOUND`, ...).
    pub code: String,
}

/// Labels of a latency histogram.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RpcLabels {
    /// As in [`CallLabels::rpc`].
    pub rpc: String,
}

/// Labels of a policy denial.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DenialLabels {
    /// The RPC that was refused.
    pub rpc: String,
    /// The access the policy did not grant (`read`, `write`, `create`, `admin`), or
    /// `identity` for a connection without one.
    pub access: String,
}

type HistogramFamily = Family<RpcLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 100 µs .. ~26 s, ×4 per bucket.
    Histogram::new(exponential_buckets(0.0001, 4.0, 10))
}

/// Values read when scraped: (active streams, managed maps).
pub type Live = Arc<dyn Fn() -> (i64, i64) + Send + Sync>;

/// The daemon's metrics. Cheap to share: every handle is an `Arc` inside.
pub struct Metrics {
    registry: Registry,
    calls: Family<CallLabels, Counter>,
    latency: HistogramFamily,
    /// Entries sent by `Dump` streams.
    pub entries_streamed: Counter,
    /// Entries written by `Update` and `BatchUpdate`.
    pub entries_written: Counter,
    /// Entries deleted by `Delete`, `LookupAndDelete` and `BatchDelete`.
    pub entries_deleted: Counter,
    denials: Family<DenialLabels, Counter>,
    active_streams: Gauge,
    managed_maps: Gauge,
    methods: HashSet<String>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every metric, registered and at zero.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let calls = Family::<CallLabels, Counter>::default();
        let latency: HistogramFamily = Family::new_with_constructor(latency_histogram);
        let entries_streamed = Counter::default();
        let entries_written = Counter::default();
        let entries_deleted = Counter::default();
        let denials = Family::<DenialLabels, Counter>::default();
        let active_streams = Gauge::default();
        let managed_maps = Gauge::default();
        registry.register(
            "bpfmapd_rpc_calls",
            "gRPC calls by method and status code",
            calls.clone(),
        );
        registry.register(
            "bpfmapd_rpc_duration_seconds",
            "gRPC call latency by method (streams: until the stream ends)",
            latency.clone(),
        );
        registry.register(
            "bpfmapd_entries_streamed",
            "Map entries sent by Dump",
            entries_streamed.clone(),
        );
        registry.register(
            "bpfmapd_entries_written",
            "Map entries written by Update and BatchUpdate",
            entries_written.clone(),
        );
        registry.register(
            "bpfmapd_entries_deleted",
            "Map entries deleted by Delete, LookupAndDelete and BatchDelete",
            entries_deleted.clone(),
        );
        registry.register(
            "bpfmapd_policy_denials",
            "Calls refused by the access policy (or for want of an identity)",
            denials.clone(),
        );
        registry.register(
            "bpfmapd_active_streams",
            "Dump and BatchUpdate streams open now",
            active_streams.clone(),
        );
        registry.register(
            "bpfmapd_managed_maps",
            "Maps the daemon manages now",
            managed_maps.clone(),
        );
        Metrics {
            registry,
            calls,
            latency,
            entries_streamed,
            entries_written,
            entries_deleted,
            denials,
            active_streams,
            managed_maps,
            methods: map_service_methods(),
        }
    }

    /// The `rpc` label of a request path: the method name for `bpfmap.v1.MapService`,
    /// `health`, `reflection`, or `unknown` (so that made-up paths cannot grow the label set).
    pub fn rpc_label(&self, path: &str) -> String {
        let path = path.trim_start_matches('/');
        if let Some(method) = path.strip_prefix("bpfmap.v1.MapService/") {
            if self.methods.contains(method) {
                return method.to_owned();
            }
        } else if path.starts_with("grpc.health.") {
            return "health".into();
        } else if path.starts_with("grpc.reflection.") {
            return "reflection".into();
        }
        "unknown".into()
    }

    /// Records a finished call.
    pub fn record_call(&self, rpc: &str, code: tonic::Code, elapsed: Duration) {
        self.calls
            .get_or_create(&CallLabels {
                rpc: rpc.to_owned(),
                code: code_name(code).to_owned(),
            })
            .inc();
        self.latency
            .get_or_create(&RpcLabels {
                rpc: rpc.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// Records a call the policy refused (`access`: the access not granted, or `identity`).
    pub fn record_denial(&self, rpc: &str, access: &str) {
        self.denials
            .get_or_create(&DenialLabels {
                rpc: rpc.to_owned(),
                access: access.to_owned(),
            })
            .inc();
    }

    /// The text exposition (OpenMetrics), with the gauges read from `live` first.
    pub fn render(&self, live: &Live) -> String {
        let (streams, maps) = live();
        self.active_streams.set(streams);
        self.managed_maps.set(maps);
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!(error = %e, "encoding the metrics failed");
        }
        out
    }
}

/// The method names of `bpfmap.v1.MapService`, from the compiled descriptor (so that RPCs
/// added later are labelled without a change here).
fn map_service_methods() -> HashSet<String> {
    let Ok(set) = prost_types::FileDescriptorSet::decode(bpfmap_proto::FILE_DESCRIPTOR_SET) else {
        return HashSet::new();
    };
    set.file
        .iter()
        .filter(|f| f.package() == "bpfmap.v1")
        .flat_map(|f| f.service.iter())
        .filter(|s| s.name() == "MapService")
        .flat_map(|s| s.method.iter().map(|m| m.name().to_owned()))
        .collect()
}

/// A gRPC code in upper-snake form, as `grpc-status` names it.
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_bounded_and_exposition_has_every_family() {
        let m = Metrics::new();
        assert_eq!(m.rpc_label("/bpfmap.v1.MapService/Lookup"), "Lookup");
        assert_eq!(m.rpc_label("/bpfmap.v1.MapService/Nope"), "unknown");
        assert_eq!(m.rpc_label("/grpc.health.v1.Health/Check"), "health");
        assert_eq!(m.rpc_label("/x/y"), "unknown");
        m.record_call("Lookup", tonic::Code::NotFound, Duration::from_millis(2));
        m.record_denial("Update", "write");
        m.entries_written.inc_by(3);
        let live: Live = Arc::new(|| (2, 5));
        let text = m.render(&live);
        for want in [
            "bpfmapd_rpc_calls_total{rpc=\"Lookup\",code=\"NOT_FOUND\"} 1",
            "bpfmapd_rpc_duration_seconds_count{rpc=\"Lookup\"} 1",
            "bpfmapd_policy_denials_total{rpc=\"Update\",access=\"write\"} 1",
            "bpfmapd_entries_written_total 3",
            "bpfmapd_active_streams 2",
            "bpfmapd_managed_maps 5",
        ] {
            assert!(text.contains(want), "{want} missing from\n{text}");
        }
    }
}
