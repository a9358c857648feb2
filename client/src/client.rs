//! [`Client`]: the connection, and the calls that manage whole maps.

use tonic::transport::Channel;

use crate::connect::{channel_with, default_address, tls_from_env, ConnectOptions};
use crate::create::CreateMap;
use crate::error::Error;
use crate::mapref::MapRef;
use crate::proto::{self, map_service_client::MapServiceClient, MapInfo};

/// Largest message the client sends or accepts (big dump batches, big batch updates).
pub(crate) const MAX_MESSAGE: usize = 64 << 20;

/// A connection to one `bpfmapd`, with a typed method for every RPC of `bpfmap.v1`.
///
/// Cheap to clone: clones share the connection, and calls may run concurrently.
///
/// ```no_run
/// # async fn f() -> Result<(), bpfmap_client::Error> {
/// use bpfmap_client::{Client, CreateMap, Flag, MapRef};
/// let client = Client::connect("unix:/run/bpfmapd/bpfmapd.sock").await?;
/// let info = client.create_map(CreateMap::hash("stats_map", 4, 8, 1024)).await?;
/// let map = MapRef::from(info.id);
/// client.update_pod::<u32, u64>(&map, &1, &42, Flag::Any).await?;
/// assert_eq!(client.lookup_pod::<u32, u64>(&map, &1).await?, 42);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Client {
    pub(crate) inner: MapServiceClient<Channel>,
    addr: String,
}

impl Client {
    /// Connects to `addr`: `unix:/path`, `http://host:port`, `https://host:port` (system
    /// trust roots) or `host:port`, with the default [`ConnectOptions`].
    pub async fn connect(addr: &str) -> Result<Self, Error> {
        Self::connect_with(addr, &ConnectOptions::default()).await
    }

    /// Connects to `addr` with explicit timeouts and TLS settings.
    pub async fn connect_with(addr: &str, opts: &ConnectOptions) -> Result<Self, Error> {
        let channel = channel_with(addr, opts).await?;
        Ok(Self::from_channel(channel).with_address(addr))
    }

    /// Connects to `BPFMAP_SERVER`, else `unix:/run/bpfmapd/bpfmapd.sock`; for `https://`
    /// addresses `BPFMAP_TLS_CA`, `BPFMAP_TLS_CERT` and `BPFMAP_TLS_KEY` name PEM files.
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), bpfmap_client::Error> {
    /// let client = bpfmap_client::Client::from_env().await?;
    /// for map in client.list_maps(false).await? {
    ///     println!("{} {}", map.id, map.name);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn from_env() -> Result<Self, Error> {
        let opts = ConnectOptions {
            tls: tls_from_env()?,
            ..Default::default()
        };
        Self::connect_with(&default_address(), &opts).await
    }

    /// Wraps a channel made elsewhere (custom transports, interceptors, tests).
    pub fn from_channel(channel: Channel) -> Self {
        Client {
            inner: MapServiceClient::new(channel)
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
            addr: String::new(),
        }
    }

    fn with_address(mut self, addr: &str) -> Self {
        self.addr = addr.to_owned();
        self
    }

    /// The address this client connected to (empty for [`Client::from_channel`]).
    pub fn address(&self) -> &str {
        &self.addr
    }

    /// The generated tonic client, for requests this wrapper does not cover (other
    /// `Format`s, fields added later).
    pub fn raw(&self) -> MapServiceClient<Channel> {
        self.inner.clone()
    }

    /// Creates a map (`CreateMap`) and describes it.
    pub async fn create_map(&self, req: CreateMap) -> Result<MapInfo, Error> {
        Ok(self
            .inner
            .clone()
            .create_map(req.to_proto())
            .await?
            .into_inner())
    }

    /// Describes one map (`GetMap`).
    pub async fn get_map(&self, map: impl Into<MapRef>) -> Result<MapInfo, Error> {
        let req = proto::GetMapRequest {
            map: Some(map.into().to_proto()),
        };
        Ok(self.inner.clone().get_map(req).await?.into_inner())
    }

    /// Lists the daemon's managed maps, or with `all` every map on the host (`ListMaps`).
    pub async fn list_maps(&self, all: bool) -> Result<Vec<MapInfo>, Error> {
        let req = proto::ListMapsRequest { all };
        Ok(self.inner.clone().list_maps(req).await?.into_inner().maps)
    }

    /// Removes the daemon's pins of a map and drops its fd (`DeleteMap`); returns the
    /// removed pins.
    pub async fn delete_map(&self, map: impl Into<MapRef>) -> Result<Vec<String>, Error> {
        let req = proto::DeleteMapRequest {
            map: Some(map.into().to_proto()),
        };
        Ok(self
            .inner
            .clone()
            .delete_map(req)
            .await?
            .into_inner()
            .removed_pins)
    }

    /// Pins a map at another path, relative to the daemon's bpffs root or absolute in a
    /// bpffs (`PinMap`).
    pub async fn pin_map(
        &self,
        map: impl Into<MapRef>,
        path: impl Into<String>,
    ) -> Result<MapInfo, Error> {
        let req = proto::PinMapRequest {
            map: Some(map.into().to_proto()),
            pin: path.into(),
        };
        Ok(self.inner.clone().pin_map(req).await?.into_inner())
    }

    /// Removes a pin (`UnpinMap`).
    pub async fn unpin_map(&self, path: impl Into<String>) -> Result<(), Error> {
        let req = proto::UnpinMapRequest { pin: path.into() };
        self.inner.clone().unpin_map(req).await?;
        Ok(())
    }

    /// Freezes a map: no more writes from userspace (`FreezeMap`).
    pub async fn freeze_map(&self, map: impl Into<MapRef>) -> Result<MapInfo, Error> {
        let req = proto::FreezeMapRequest {
            map: Some(map.into().to_proto()),
        };
        Ok(self.inner.clone().freeze_map(req).await?.into_inner())
    }
}
