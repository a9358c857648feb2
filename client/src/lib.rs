//! Typed async client for `bpfmapd`, the daemon that manages Linux eBPF maps over gRPC.
//!
//! [`Client`] has a typed method for every RPC of `bpfmap.v1.MapService`: keys and values
//! as byte slices (or typed JSON for maps with BTF: [`Data::json`], [`Client::lookup_json`],
//! [`Client::dump_json`], [`CreateMap::key_type`]), plain-old-data helpers ([`Client::update_pod`], [`Client::lookup_pod`]),
//! per-CPU helpers, a streaming [`Client::dump`] over the packed fast path and a chunked
//! [`Client::batch_update`], and live streams: [`Client::read_events`] (ring buffer and perf
//! event records) and [`Client::watch`] (a map's changes). Every failure is one [`Error`]
//! that keeps the gRPC code.
//!
//! ```no_run
//! use bpfmap_client::{Client, CreateMap, Flag, MapRef};
//!
//! # async fn f() -> Result<(), bpfmap_client::Error> {
//! // BPFMAP_SERVER, else unix:/run/bpfmapd/bpfmapd.sock
//! let client = Client::from_env().await?;
//! let info = client
//!     .create_map(CreateMap::hash("counters", 4, 8, 1024).ephemeral(true))
//!     .await?;
//! let map = MapRef::from(info.id);
//! client.update_pod::<u32, u64>(&map, &1, &42, Flag::Any).await?;
//! assert_eq!(client.lookup_pod::<u32, u64>(&map, &1).await?, 42);
//! match client.lookup_pod::<u32, u64>(&map, &2).await {
//!     Err(e) if e.is_not_found() => {}
//!     other => panic!("unexpected {other:?}"),
//! }
//! # Ok(()) }
//! ```
//!
//! Many hosts: a [`Fleet`] runs any call on every host concurrently (concurrency cap,
//! per-host deadline, one [`HostResult`] per host); [`Client::sync`] makes a map equal to a
//! list of entries and reports what changed.
//!
//! The module [`proto`] re-exports the wire types and the generated `MapServiceClient`;
//! [`connect`] returns that generated client for code that wants the raw API.

#![warn(missing_docs)]

pub use bpfmap_proto as proto_crate;
pub use bpfmap_proto::v1 as proto;
pub use bytemuck;

mod batch;
mod client;
mod connect;
mod create;
mod data;
mod dump;
mod elements;
mod error;
pub mod fleet;
mod layout;
mod live;
mod mapref;
mod pod;
pub mod snapshot;
pub mod sync;
mod tls;
mod typed;

pub use batch::BatchDeleted;
pub use client::Client;
pub use connect::{
    channel_with, default_address, tls_from_env, Address, ConnectOptions, DEFAULT_ADDR, SERVER_ENV,
};
pub use create::{CreateMap, BPF_F_NO_PREALLOC};
pub use data::{Data, Entry, Flag, Value};
pub use dump::{Batch, Dump, DumpBatches, DumpOptions};
pub use error::{code_name, Error};
pub use fleet::{Fleet, FleetHost, HostResult};
pub use layout::{is_per_cpu, map_type_name, parse_map_type, Layout};
pub use live::{Change, ChangeKind, Event, Events, Watch, WatchUpdate};
pub use mapref::{MapRef, ParseMapRefError};
pub use pod::from_bytes;
pub use proto::{Format, MapInfo, MapType};
pub use sync::{SyncOptions, SyncReport};
pub use tls::TlsOptions;
pub use typed::{JsonEntry, JsonValue};

use tonic::transport::Channel;

/// Opens a channel to `addr` (`unix:/path`, `http://host:port`, `https://host:port` or
/// `host:port`) with the default [`ConnectOptions`].
pub async fn connect_channel(addr: &str) -> Result<Channel, Error> {
    channel_with(addr, &ConnectOptions::default()).await
}

/// Connects and returns the generated `MapServiceClient` with generous message limits.
///
/// ```no_run
/// # async fn f() -> Result<(), bpfmap_client::Error> {
/// let mut raw = bpfmap_client::connect("unix:/run/bpfmapd/bpfmapd.sock").await?;
/// let maps = raw
///     .list_maps(bpfmap_client::proto::ListMapsRequest { all: true })
///     .await?
///     .into_inner();
/// # Ok(()) }
/// ```
pub async fn connect(
    addr: &str,
) -> Result<proto::map_service_client::MapServiceClient<Channel>, Error> {
    Ok(Client::connect(addr).await?.raw())
}
