//! bpfmapd: eBPF maps over gRPC.
//!
//! Layers, outermost first: [`transport`] (listeners, shutdown) and [`service`] (thin tonic
//! handlers: authorize, validate, call, map errors), [`registry`] (which maps the daemon
//! manages and how a `MapRef` resolves), and [`kernel`] (the one owner of map fds, and the
//! only module with `unsafe`). [`error`] turns every failure into a `tonic::Status` in one
//! place. [`metrics`] counts calls for Prometheus.

pub mod auth;
pub mod btf;
pub mod config;
pub mod error;
pub mod events;
pub mod kernel;
pub mod limits;
pub mod metrics;
pub mod registry;
pub mod service;
pub mod transport;
pub mod watch;
