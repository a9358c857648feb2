//! The tonic handlers of `bpfmap.v1.MapService`: authorize, validate, hand the work to the
//! registry and the kernel layer, log mutations. No handler holds state of its own.

mod batch;
pub mod codec;
mod dump;
mod elements;
mod maps;

use std::pin::Pin;
use std::sync::Arc;

use bpfmap_proto::v1 as pb;
use bpfmap_proto::v1::map_service_server::MapService as Svc;
use futures::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::auth::{authorize, identity, Access, Identity};
use crate::btf::BtfCache;
use crate::error::{Error, Result};
use crate::registry::{Registry, Resolved, Target};

/// The service: a handle on the registry.
#[derive(Debug, Clone)]
pub struct MapService {
    registry: Arc<Registry>,
    btf: Arc<BtfCache>,
}

impl MapService {
    /// A service over `registry`.
    pub fn new(registry: Arc<Registry>) -> MapService {
        MapService {
            registry,
            btf: Arc::new(BtfCache::new()),
        }
    }

    fn resolve(&self, r: &Option<pb::MapRef>) -> Result<Resolved> {
        self.registry.resolve(target(r)?)
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

/// Authorizes and names the caller.
fn caller<T>(req: &Request<T>, access: Access, rpc: &str) -> Result<Identity, Status> {
    let who = identity(req);
    authorize(&who, access, rpc)?;
    Ok(who)
}

/// Logs a mutation with its caller and result.
fn audit<T>(who: &Identity, rpc: &str, map: Option<u32>, result: &Result<T>) {
    match result {
        Ok(_) => tracing::info!(caller = %who, rpc, map, "ok"),
        Err(e) => tracing::info!(caller = %who, rpc, map, error = %e, "failed"),
    }
}

type DumpStream = Pin<Box<dyn Stream<Item = Result<pb::DumpResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Svc for MapService {
    async fn create_map(
        &self,
        req: Request<pb::CreateMapRequest>,
    ) -> Result<Response<pb::MapInfo>, Status> {
        let who = caller(&req, Access::Create, "CreateMap")?;
        let result = self.create_map(req.into_inner());
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
        caller(&req, Access::Read, "GetMap")?;
        let r = self.resolve(&req.get_ref().map)?;
        Ok(Response::new(self.info(&r)))
    }

    async fn list_maps(
        &self,
        req: Request<pb::ListMapsRequest>,
    ) -> Result<Response<pb::ListMapsResponse>, Status> {
        caller(&req, Access::Read, "ListMaps")?;
        Ok(Response::new(self.list_maps(req.get_ref().all)?))
    }

    async fn delete_map(
        &self,
        req: Request<pb::DeleteMapRequest>,
    ) -> Result<Response<pb::DeleteMapResponse>, Status> {
        let who = caller(&req, Access::Admin, "DeleteMap")?;
        let r = self.resolve(&req.get_ref().map)?;
        let result = self.delete_map(&r);
        audit(&who, "DeleteMap", Some(r.map.id), &result);
        Ok(Response::new(result?))
    }

    async fn pin_map(
        &self,
        req: Request<pb::PinMapRequest>,
    ) -> Result<Response<pb::MapInfo>, Status> {
        let who = caller(&req, Access::Admin, "PinMap")?;
        let r = self.resolve(&req.get_ref().map)?;
        let result = self.pin_map(&r, &req.get_ref().pin);
        audit(&who, "PinMap", Some(r.map.id), &result);
        Ok(Response::new(result?))
    }

    async fn unpin_map(
        &self,
        req: Request<pb::UnpinMapRequest>,
    ) -> Result<Response<pb::UnpinMapResponse>, Status> {
        let who = caller(&req, Access::Admin, "UnpinMap")?;
        let result = self.unpin(&req.get_ref().pin);
        audit(&who, "UnpinMap", None, &result);
        result?;
        Ok(Response::new(pb::UnpinMapResponse {}))
    }

    async fn freeze_map(
        &self,
        req: Request<pb::FreezeMapRequest>,
    ) -> Result<Response<pb::MapInfo>, Status> {
        let who = caller(&req, Access::Admin, "FreezeMap")?;
        let r = self.resolve(&req.get_ref().map)?;
        let result = self.freeze(&r);
        audit(&who, "FreezeMap", Some(r.map.id), &result);
        Ok(Response::new(result?))
    }

    async fn lookup(
        &self,
        req: Request<pb::LookupRequest>,
    ) -> Result<Response<pb::LookupResponse>, Status> {
        caller(&req, Access::Read, "Lookup")?;
        let r = self.resolve(&req.get_ref().map)?;
        Ok(Response::new(self.lookup(&r, req.get_ref())?))
    }

    async fn update(
        &self,
        req: Request<pb::UpdateRequest>,
    ) -> Result<Response<pb::UpdateResponse>, Status> {
        let who = caller(&req, Access::Write, "Update")?;
        let r = self.resolve(&req.get_ref().map)?;
        let result = self.update(&r, req.get_ref());
        audit(&who, "Update", Some(r.map.id), &result);
        result?;
        Ok(Response::new(pb::UpdateResponse {}))
    }

    async fn delete(
        &self,
        req: Request<pb::DeleteRequest>,
    ) -> Result<Response<pb::DeleteResponse>, Status> {
        let who = caller(&req, Access::Write, "Delete")?;
        let r = self.resolve(&req.get_ref().map)?;
        let result = self.delete(&r, req.get_ref());
        audit(&who, "Delete", Some(r.map.id), &result);
        result?;
        Ok(Response::new(pb::DeleteResponse {}))
    }

    async fn lookup_and_delete(
        &self,
        req: Request<pb::LookupAndDeleteRequest>,
    ) -> Result<Response<pb::LookupResponse>, Status> {
        let who = caller(&req, Access::Write, "LookupAndDelete")?;
        let r = self.resolve(&req.get_ref().map)?;
        let result = self.lookup_and_delete(&r, req.get_ref());
        audit(&who, "LookupAndDelete", Some(r.map.id), &result);
        Ok(Response::new(result?))
    }

    async fn get_next_key(
        &self,
        req: Request<pb::GetNextKeyRequest>,
    ) -> Result<Response<pb::GetNextKeyResponse>, Status> {
        caller(&req, Access::Read, "GetNextKey")?;
        let r = self.resolve(&req.get_ref().map)?;
        Ok(Response::new(self.get_next_key(&r, req.get_ref())?))
    }

    type DumpStream = DumpStream;

    async fn dump(
        &self,
        req: Request<pb::DumpRequest>,
    ) -> Result<Response<Self::DumpStream>, Status> {
        let access = if req.get_ref().delete {
            Access::Write
        } else {
            Access::Read
        };
        let who = caller(&req, access, "Dump")?;
        let r = self.resolve(&req.get_ref().map)?;
        let plan = dump::plan(&r.map, req.get_ref(), &self.btf)?;
        if req.get_ref().delete {
            tracing::info!(caller = %who, rpc = "Dump", map = r.map.id, delete = true, "draining");
        }
        let rx = dump::start(r, plan);
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn batch_update(
        &self,
        req: Request<Streaming<pb::BatchUpdateRequest>>,
    ) -> Result<Response<pb::BatchUpdateResponse>, Status> {
        let who = caller(&req, Access::Write, "BatchUpdate")?;
        let mut stream = req.into_inner();
        let Some(first) = stream.message().await? else {
            return Err(Error::InvalidArgument(
                "BatchUpdate got no message: the first one must name the map".into(),
            )
            .into());
        };
        let r = self.resolve(&first.map)?;
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
                let flag = pb::UpdateFlag::try_from(msg.flag).map_err(|_| {
                    Error::InvalidArgument(format!("unknown update flag {}", msg.flag))
                })? as u64;
                let packed = batch::pack(&r.map, &msg, &types)
                    .map_err(|e| e.prefixed(&format!("after {updated} entries were written: ")))?;
                let (n, res) = batch::apply_update(r.map.clone(), packed, flag).await;
                updated += n as u64;
                res.map_err(|e| e.prefixed(&format!("after {updated} entries were written: ")))?;
                next = stream.message().await.map_err(|s| {
                    Error::InvalidArgument(format!("reading the request stream: {}", s.message()))
                })?;
            }
            Ok(())
        }
        .await;
        tracing::info!(caller = %who, rpc = "BatchUpdate", map = r.map.id, updated, ok = result.is_ok(), "batch update");
        result?;
        Ok(Response::new(pb::BatchUpdateResponse { updated }))
    }

    async fn batch_delete(
        &self,
        req: Request<pb::BatchDeleteRequest>,
    ) -> Result<Response<pb::BatchDeleteResponse>, Status> {
        let who = caller(&req, Access::Write, "BatchDelete")?;
        let req = req.into_inner();
        let r = self.resolve(&req.map)?;
        let result = batch::delete(r.map.clone(), &req.keys, &self.btf).await;
        audit(&who, "BatchDelete", Some(r.map.id), &result);
        let (deleted, missing) = result?;
        Ok(Response::new(pb::BatchDeleteResponse { deleted, missing }))
    }
}
