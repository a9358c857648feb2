//! The tonic handlers of `bpfmap.v1.MapService`: authorize, validate, hand the work to the
//! registry and the kernel layer, log mutations. No handler holds state of its own.

mod batch;
pub mod codec;
mod dump;
mod elements;
mod maps;
mod read_events;
mod watch;

use std::pin::Pin;
use std::sync::Arc;

use bpfmap_proto::v1 as pb;
use bpfmap_proto::v1::map_service_server::MapService as Svc;
use futures::Stream;
use tokio::sync::watch as signal;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::auth::{identity, Access, Authorizer, Identity, MapFacts};
use crate::btf::BtfCache;
use crate::error::{Error, Result};
use crate::events::Events;
use crate::limits::{Limits, StreamCounter};
use crate::metrics::Metrics;
use crate::registry::{Registry, Resolved, Target};
use crate::watch::Watches;

/// The service: handles on the registry, the authorizer and the caps.
#[derive(Debug, Clone)]
pub struct MapService {
    /// Consumers of ring buffers and perf event arrays (ReadEvents).
    events: Arc<Events>,
    /// Pollers of watched maps (Watch).
    watches: Arc<Watches>,
    /// Turns true when the daemon stops: live streams (ReadEvents, Watch) end then.
    shutdown: signal::Receiver<bool>,
    registry: Arc<Registry>,
    auth: Arc<Authorizer>,
    limits: Arc<Limits>,
    streams: Arc<StreamCounter>,
    metrics: Arc<Metrics>,
    btf: Arc<BtfCache>,
}

impl MapService {
    /// A service over `registry`, deciding with `auth`, within `limits`.
    pub fn new(registry: Arc<Registry>, auth: Arc<Authorizer>, limits: Limits) -> MapService {
        MapService {
            events: Arc::new(Events::new(limits.events)),
            watches: Arc::new(Watches::new(limits.watch)),
            shutdown: signal::channel(false).1,
            registry,
            auth,
            limits: Arc::new(limits),
            streams: Arc::default(),
            metrics: Arc::default(),
            btf: Arc::new(BtfCache::new()),
        }
    }

    /// Ends the live streams (ReadEvents, Watch) when `shutdown` turns true, so that a
    /// graceful stop does not wait for streams that never end by themselves.
    pub fn with_shutdown(mut self, shutdown: signal::Receiver<bool>) -> MapService {
        self.shutdown = shutdown;
        self
    }

    /// Counts streams in `streams` and entries in `metrics` (shared with the scrape endpoint).
    pub fn with_metrics(mut self, streams: Arc<StreamCounter>, metrics: Arc<Metrics>) -> Self {
        self.streams = streams;
        self.metrics = metrics;
        self
    }

    fn resolve(&self, r: &Option<pb::MapRef>) -> Result<Resolved> {
        self.registry.resolve(target(r)?)
    }

    /// What the policy knows of a resolved map.
    fn facts<'a>(&self, r: &'a Resolved) -> MapFacts<'a> {
        MapFacts {
            id: Some(r.map.id),
            name: &r.map.name,
            pins: self.registry.pins(r.map.id),
            managed: r.managed,
        }
    }

    /// Resolves the map and checks that `who` may do `access` on it.
    fn open(
        &self,
        who: &Identity,
        r: &Option<pb::MapRef>,
        access: Access,
        rpc: &str,
    ) -> Result<Resolved> {
        let resolved = self.resolve(r)?;
        self.auth.check(who, access, rpc, &self.facts(&resolved))?;
        Ok(resolved)
    }
}

/// Decodes a `MapRef` into a registry target.
pub(crate) fn target(r: &Option<pb::MapRef>) -> Result<Target<'_>> {
    use pb::map_ref::Ref;
    match r.as_ref().and_then(|r| r.r#ref.as_ref()) {
        Some(Ref::Id(id)) => Ok(Target::Id(*id)),
        Some(Ref::Pin(p)) => Ok(Target::Pin(p)),
        Some(Ref::Name(n)) => Ok(Target::Name(n)),
        None => Err(Error::InvalidArgument(
            "map is required: set map.id, map.pin or map.name".into(),
        )),
    }
}

/// Decodes the wire `Format`.
pub(crate) fn format_of(f: i32) -> Result<pb::Format> {
    pb::Format::try_from(f).map_err(|_| Error::InvalidArgument(format!("unknown format {f}")))
}

/// Logs a mutation with its caller and result.
fn audit<T>(who: &Identity, rpc: &str, map: Option<u32>, result: &Result<T>) {
    match result {
        Ok(_) => tracing::info!(caller = %who, rpc, map, "ok"),
        Err(e) => tracing::info!(caller = %who, rpc, map, error = %e, "failed"),
    }
}

type DumpStream = Pin<Box<dyn Stream<Item = Result<pb::DumpResponse, Status>> + Send>>;

/// Returns when `shutdown` turns true; never if its sender is gone without saying so.
async fn stopping(shutdown: &mut signal::Receiver<bool>) {
    if shutdown.wait_for(|s| *s).await.is_err() {
        futures::future::pending::<()>().await;
    }
}

#[tonic::async_trait]
impl Svc for MapService {
    async fn create_map(
        &self,
        req: Request<pb::CreateMapRequest>,
    ) -> Result<Response<pb::MapInfo>, Status> {
        let who = identity::of(&req);
        let req = req.into_inner();
        self.authorize_create(&who, &req)?;
        let result = self.create_map(req, &who);
        audit(
            &who,
            "CreateMap",
            result.as_ref().ok().map(|i| i.id),
            &result,
        );
        Ok(Response::new(result?))
    }

    async fn get_map(
        &self,
        req: Request<pb::GetMapRequest>,
    ) -> Result<Response<pb::MapInfo>, Status> {
        let who = identity::of(&req);
        let r = self.open(&who, &req.get_ref().map, Access::Read, "GetMap")?;
        Ok(Response::new(self.info(&r)))
    }

    async fn list_maps(
        &self,
        req: Request<pb::ListMapsRequest>,
    ) -> Result<Response<pb::ListMapsResponse>, Status> {
        let who = identity::of(&req);
        let maps = self.list_maps(req.get_ref().all)?;
        let visible = maps
            .into_iter()
            .filter(|r| self.auth.may_read(&who, &self.facts(r)))
            .map(|r| self.info(&r))
            .collect();
        Ok(Response::new(pb::ListMapsResponse { maps: visible }))
    }

    async fn delete_map(
        &self,
        req: Request<pb::DeleteMapRequest>,
    ) -> Result<Response<pb::DeleteMapResponse>, Status> {
        let who = identity::of(&req);
        let r = self.open(&who, &req.get_ref().map, Access::Admin, "DeleteMap")?;
        let result = self.delete_map(&r);
        audit(&who, "DeleteMap", Some(r.map.id), &result);
        Ok(Response::new(result?))
    }

    async fn pin_map(
        &self,
        req: Request<pb::PinMapRequest>,
    ) -> Result<Response<pb::MapInfo>, Status> {
        let who = identity::of(&req);
        let r = self.open(&who, &req.get_ref().map, Access::Admin, "PinMap")?;
        let result = self.pin_map(&r, &req.get_ref().pin);
        audit(&who, "PinMap", Some(r.map.id), &result);
        Ok(Response::new(result?))
    }

    async fn unpin_map(
        &self,
        req: Request<pb::UnpinMapRequest>,
    ) -> Result<Response<pb::UnpinMapResponse>, Status> {
        let who = identity::of(&req);
        let pin = &req.get_ref().pin;
        let target = Some(pb::MapRef {
            r#ref: Some(pb::map_ref::Ref::Pin(pin.clone())),
        });
        let r = self.open(&who, &target, Access::Admin, "UnpinMap")?;
        let result = self.unpin(pin);
        audit(&who, "UnpinMap", Some(r.map.id), &result);
        result?;
        Ok(Response::new(pb::UnpinMapResponse {}))
    }

    async fn freeze_map(
        &self,
        req: Request<pb::FreezeMapRequest>,
    ) -> Result<Response<pb::MapInfo>, Status> {
        let who = identity::of(&req);
        let r = self.open(&who, &req.get_ref().map, Access::Admin, "FreezeMap")?;
        let result = self.freeze(&r);
        audit(&who, "FreezeMap", Some(r.map.id), &result);
        Ok(Response::new(result?))
    }

    async fn lookup(
        &self,
        req: Request<pb::LookupRequest>,
    ) -> Result<Response<pb::LookupResponse>, Status> {
        let who = identity::of(&req);
        let r = self.open(&who, &req.get_ref().map, Access::Read, "Lookup")?;
        Ok(Response::new(self.lookup(&r, req.get_ref())?))
    }

    async fn update(
        &self,
        req: Request<pb::UpdateRequest>,
    ) -> Result<Response<pb::UpdateResponse>, Status> {
        let who = identity::of(&req);
        let r = self.open(&who, &req.get_ref().map, Access::Write, "Update")?;
        let result = self.update(&who, &r, req.get_ref());
        audit(&who, "Update", Some(r.map.id), &result);
        result?;
        self.metrics.entries_written.inc();
        Ok(Response::new(pb::UpdateResponse {}))
    }

    async fn delete(
        &self,
        req: Request<pb::DeleteRequest>,
    ) -> Result<Response<pb::DeleteResponse>, Status> {
        let who = identity::of(&req);
        let r = self.open(&who, &req.get_ref().map, Access::Write, "Delete")?;
        let result = self.delete(&r, req.get_ref());
        audit(&who, "Delete", Some(r.map.id), &result);
        result?;
        self.metrics.entries_deleted.inc();
        Ok(Response::new(pb::DeleteResponse {}))
    }

    async fn lookup_and_delete(
        &self,
        req: Request<pb::LookupAndDeleteRequest>,
    ) -> Result<Response<pb::LookupResponse>, Status> {
        let who = identity::of(&req);
        let r = self.open(&who, &req.get_ref().map, Access::Write, "LookupAndDelete")?;
        let result = self.lookup_and_delete(&r, req.get_ref());
        audit(&who, "LookupAndDelete", Some(r.map.id), &result);
        let found = result?;
        self.metrics.entries_deleted.inc();
        Ok(Response::new(found))
    }

    async fn get_next_key(
        &self,
        req: Request<pb::GetNextKeyRequest>,
    ) -> Result<Response<pb::GetNextKeyResponse>, Status> {
        let who = identity::of(&req);
        let r = self.open(&who, &req.get_ref().map, Access::Read, "GetNextKey")?;
        Ok(Response::new(self.get_next_key(&r, req.get_ref())?))
    }

    type DumpStream = DumpStream;

    async fn dump(
        &self,
        req: Request<pb::DumpRequest>,
    ) -> Result<Response<Self::DumpStream>, Status> {
        let who = identity::of(&req);
        let delete = req.get_ref().delete;
        let access = if delete { Access::Write } else { Access::Read };
        let r = self.open(&who, &req.get_ref().map, access, "Dump")?;
        let plan = dump::plan(
            &r.map,
            req.get_ref(),
            self.limits.max_batch_entries,
            &self.btf,
        )?;
        let slot = self
            .streams
            .acquire(&who.key(), self.limits.max_streams_per_identity)?;
        if delete {
            tracing::info!(caller = %who, rpc = "Dump", map = r.map.id, delete = true, "draining");
        }
        let rx = dump::start(r, plan, slot, self.metrics.entries_streamed.clone());
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn batch_update(
        &self,
        req: Request<Streaming<pb::BatchUpdateRequest>>,
    ) -> Result<Response<pb::BatchUpdateResponse>, Status> {
        let who = identity::of(&req);
        let _slot = self
            .streams
            .acquire(&who.key(), self.limits.max_streams_per_identity)?;
        let mut stream = req.into_inner();
        let Some(first) = stream.message().await.map_err(stream_error)? else {
            return Err(Error::InvalidArgument(
                "BatchUpdate got no message: the first one must name the map".into(),
            )
            .into());
        };
        let r = self.open(&who, &first.map, Access::Write, "BatchUpdate")?;
        batch::check_update_target(&r.map)?;
        let types = codec::Types::lazy(&r.map, &self.btf);
        let mut updated = 0u64;
        let mut next = Some(first);
        let result: Result<()> = async {
            while let Some(msg) = next.take() {
                if msg.map.is_some() && self.resolve(&msg.map)?.map.id != r.map.id {
                    return Err(Error::InvalidArgument(
                        "every message of a BatchUpdate must name the same map".into(),
                    ));
                }
                let n = msg
                    .packed
                    .as_ref()
                    .map_or(msg.entries.len(), |p| p.count as usize);
                self.limits.check_batch(n, "a BatchUpdate message")?;
                let flag = pb::UpdateFlag::try_from(msg.flag).map_err(|_| {
                    Error::InvalidArgument(format!("unknown update flag {}", msg.flag))
                })? as u64;
                let packed = batch::pack(&r.map, &msg, &types)?;
                let (n, res) = batch::apply_update(r.map.clone(), packed, flag).await;
                updated += n as u64;
                self.metrics.entries_written.inc_by(n as u64);
                res?;
                next = stream.message().await.map_err(stream_error)?;
            }
            Ok(())
        }
        .await
        .map_err(|e| e.prefixed(&format!("after {updated} entries were written: ")));
        audit(&who, "BatchUpdate", Some(r.map.id), &result);
        tracing::debug!(map = r.map.id, updated, "batch update");
        result?;
        Ok(Response::new(pb::BatchUpdateResponse { updated }))
    }

    async fn batch_delete(
        &self,
        req: Request<pb::BatchDeleteRequest>,
    ) -> Result<Response<pb::BatchDeleteResponse>, Status> {
        let who = identity::of(&req);
        let req = req.into_inner();
        let r = self.open(&who, &req.map, Access::Write, "BatchDelete")?;
        self.limits.check_batch(req.keys.len(), "a BatchDelete")?;
        let result = batch::delete(r.map.clone(), &req.keys, &self.btf).await;
        audit(&who, "BatchDelete", Some(r.map.id), &result);
        let (deleted, missing) = result?;
        self.metrics.entries_deleted.inc_by(deleted);
        Ok(Response::new(pb::BatchDeleteResponse { deleted, missing }))
    }

    type ReadEventsStream = read_events::EventStream;

    async fn read_events(
        &self,
        req: Request<pb::ReadEventsRequest>,
    ) -> Result<Response<Self::ReadEventsStream>, Status> {
        let who = identity::of(&req);
        let r = self.open(&who, &req.get_ref().map, Access::Read, "ReadEvents")?;
        let format = read_events::plan(&r.map, req.get_ref(), &self.btf)?;
        let slot = self
            .streams
            .acquire(&who.key(), self.limits.max_streams_per_identity)?;
        let sub = self.events.subscribe(r.map.clone()).await?;
        tracing::info!(caller = %who, rpc = "ReadEvents", map = r.map.id, "subscribed");
        let stream = read_events::stream(sub, format, slot, self.shutdown.clone());
        Ok(Response::new(stream))
    }

    type WatchStream = watch::WatchStream;

    async fn watch(
        &self,
        req: Request<pb::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let who = identity::of(&req);
        let r = self.open(&who, &req.get_ref().map, Access::Read, "Watch")?;
        let format = watch::plan(&r.map, req.get_ref(), &self.btf)?;
        let interval = self.watches.interval(req.get_ref().interval_ms)?;
        let slot = self
            .streams
            .acquire(&who.key(), self.limits.max_streams_per_identity)?;
        let watcher = self.watches.join(r.map.clone(), interval)?;
        tracing::info!(
            caller = %who,
            rpc = "Watch",
            map = r.map.id,
            interval_ms = interval.as_millis() as u64,
            "watching"
        );
        let stream = watch::stream(watcher, format, slot, self.shutdown.clone());
        Ok(Response::new(stream))
    }
}

/// A failure reading a client stream: an oversized message is a cap, anything else a
/// malformed request.
fn stream_error(s: Status) -> Error {
    if s.code() == tonic::Code::OutOfRange {
        Error::ResourceExhausted(format!("{} (--max-message-bytes)", s.message()))
    } else {
        Error::InvalidArgument(format!("reading the request stream: {}", s.message()))
    }
}
