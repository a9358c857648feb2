//! Element calls of [`Client`]: lookup, update, delete, get-next-key, queues and bloom
//! filters. Keys and values go in as anything that converts into [`Data`] (byte slices,
//! arrays, vectors) and come out as raw bytes.

use crate::client::Client;
use crate::data::{raw_of, Data, Flag, Value};
use crate::error::Error;
use crate::mapref::MapRef;
use crate::proto::{self, Format};

fn data(d: impl Into<Data>) -> Option<proto::Data> {
    Some(d.into().to_proto())
}

fn map_ref(m: impl Into<MapRef>) -> Option<proto::MapRef> {
    Some(m.into().to_proto())
}

impl Client {
    async fn lookup_req(&self, req: proto::LookupRequest) -> Result<Value, Error> {
        let resp = self.inner.clone().lookup(req).await?.into_inner();
        Value::from_parts(resp.value, resp.per_cpu_values)
    }

    /// Looks up the value of `key`; `NOT_FOUND` if absent. For per-CPU maps use
    /// [`lookup_per_cpu`](Client::lookup_per_cpu) or [`lookup_value`](Client::lookup_value).
    ///
    /// ```no_run
    /// # async fn f(client: bpfmap_client::Client) -> Result<(), bpfmap_client::Error> {
    /// use bpfmap_client::MapRef;
    /// let value = client.lookup(MapRef::name("stats_map"), &[0xc1, 0xc2]).await?;
    /// # Ok(()) }
    /// ```
    pub async fn lookup(
        &self,
        map: impl Into<MapRef>,
        key: impl Into<Data>,
    ) -> Result<Vec<u8>, Error> {
        self.lookup_value(map, key).await?.into_single()
    }

    /// Looks up `key` in a per-CPU map: one value per possible CPU, index = CPU number.
    pub async fn lookup_per_cpu(
        &self,
        map: impl Into<MapRef>,
        key: impl Into<Data>,
    ) -> Result<Vec<Vec<u8>>, Error> {
        Ok(self.lookup_value(map, key).await?.into_per_cpu())
    }

    /// Looks up `key` in any map: a single value or one per CPU.
    pub async fn lookup_value(
        &self,
        map: impl Into<MapRef>,
        key: impl Into<Data>,
    ) -> Result<Value, Error> {
        self.lookup_req(proto::LookupRequest {
            map: map_ref(map),
            key: data(key),
            format: Format::Raw as i32,
            ..Default::default()
        })
        .await
    }

    /// Looks up `key` under the value's `bpf_spin_lock` (`BPF_F_LOCK`).
    pub async fn lookup_locked(
        &self,
        map: impl Into<MapRef>,
        key: impl Into<Data>,
    ) -> Result<Vec<u8>, Error> {
        self.lookup_req(proto::LookupRequest {
            map: map_ref(map),
            key: data(key),
            format: Format::Raw as i32,
            lock: true,
            ..Default::default()
        })
        .await?
        .into_single()
    }

    async fn update_req(&self, req: proto::UpdateRequest) -> Result<(), Error> {
        self.inner.clone().update(req).await?;
        Ok(())
    }

    /// Sets `key` to `value` (for per-CPU maps: on every CPU).
    ///
    /// ```no_run
    /// # async fn f(client: bpfmap_client::Client) -> Result<(), bpfmap_client::Error> {
    /// use bpfmap_client::{Flag, MapRef};
    /// client.update(MapRef::name("stats_map"), &[0xc1, 0xc2], &[0xa1, 0xa2], Flag::Any).await?;
    /// # Ok(()) }
    /// ```
    pub async fn update(
        &self,
        map: impl Into<MapRef>,
        key: impl Into<Data>,
        value: impl Into<Data>,
        flag: Flag,
    ) -> Result<(), Error> {
        self.update_req(proto::UpdateRequest {
            map: map_ref(map),
            key: data(key),
            value: data(value),
            flag: proto::UpdateFlag::from(flag) as i32,
            ..Default::default()
        })
        .await
    }

    /// Sets `key` in a per-CPU map to one value per possible CPU (exactly as many as the
    /// map's `possible_cpus`).
    pub async fn update_per_cpu<V: Into<Data>>(
        &self,
        map: impl Into<MapRef>,
        key: impl Into<Data>,
        values: impl IntoIterator<Item = V>,
        flag: Flag,
    ) -> Result<(), Error> {
        self.update_req(proto::UpdateRequest {
            map: map_ref(map),
            key: data(key),
            per_cpu_values: values.into_iter().map(|v| v.into().to_proto()).collect(),
            flag: proto::UpdateFlag::from(flag) as i32,
            ..Default::default()
        })
        .await
    }

    /// Sets `key` under the value's `bpf_spin_lock` (`BPF_F_LOCK`).
    pub async fn update_locked(
        &self,
        map: impl Into<MapRef>,
        key: impl Into<Data>,
        value: impl Into<Data>,
        flag: Flag,
    ) -> Result<(), Error> {
        self.update_req(proto::UpdateRequest {
            map: map_ref(map),
            key: data(key),
            value: data(value),
            flag: proto::UpdateFlag::from(flag) as i32,
            lock: true,
            ..Default::default()
        })
        .await
    }

    /// Stores map `inner` at `key` of an array or hash of maps.
    pub async fn update_inner_map(
        &self,
        map: impl Into<MapRef>,
        key: impl Into<Data>,
        inner: impl Into<MapRef>,
        flag: Flag,
    ) -> Result<(), Error> {
        self.update_req(proto::UpdateRequest {
            map: map_ref(map),
            key: data(key),
            inner_map: map_ref(inner),
            flag: proto::UpdateFlag::from(flag) as i32,
            ..Default::default()
        })
        .await
    }

    /// Deletes `key`; `NOT_FOUND` if absent.
    pub async fn delete(&self, map: impl Into<MapRef>, key: impl Into<Data>) -> Result<(), Error> {
        let req = proto::DeleteRequest {
            map: map_ref(map),
            key: data(key),
        };
        self.inner.clone().delete(req).await?;
        Ok(())
    }

    async fn lookup_and_delete_req(
        &self,
        map: impl Into<MapRef>,
        key: Option<proto::Data>,
    ) -> Result<Value, Error> {
        let req = proto::LookupAndDeleteRequest {
            map: map_ref(map),
            key,
            format: Format::Raw as i32,
        };
        let resp = self
            .inner
            .clone()
            .lookup_and_delete(req)
            .await?
            .into_inner();
        Value::from_parts(resp.value, resp.per_cpu_values)
    }

    /// Looks up `key` and deletes it in one step; returns the value it had.
    pub async fn lookup_and_delete(
        &self,
        map: impl Into<MapRef>,
        key: impl Into<Data>,
    ) -> Result<Value, Error> {
        self.lookup_and_delete_req(map, data(key)).await
    }

    /// The key after `key`, or with `None` the first key; `NOT_FOUND` after the last.
    ///
    /// ```no_run
    /// # async fn f(client: bpfmap_client::Client) -> Result<(), bpfmap_client::Error> {
    /// use bpfmap_client::MapRef;
    /// let map = MapRef::name("stats_map");
    /// let mut key = None;
    /// loop {
    ///     match client.get_next_key(&map, key.as_deref()).await {
    ///         Ok(next) => key = Some(next),
    ///         Err(e) if e.is_not_found() => break,
    ///         Err(e) => return Err(e),
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn get_next_key(
        &self,
        map: impl Into<MapRef>,
        key: Option<&[u8]>,
    ) -> Result<Vec<u8>, Error> {
        self.get_next_key_with(map, key.map(Data::from)).await
    }

    /// Like [`get_next_key`](Client::get_next_key) with the key in any [`Data`] form.
    pub async fn get_next_key_with(
        &self,
        map: impl Into<MapRef>,
        key: Option<Data>,
    ) -> Result<Vec<u8>, Error> {
        let req = proto::GetNextKeyRequest {
            map: map_ref(map),
            key: key.map(|k| k.to_proto()),
            format: Format::Raw as i32,
        };
        let resp = self.inner.clone().get_next_key(req).await?.into_inner();
        raw_of(resp.next_key, "next key")
    }

    /// Pushes `value` onto a queue or stack (`Update` without a key).
    pub async fn push(&self, map: impl Into<MapRef>, value: impl Into<Data>) -> Result<(), Error> {
        self.update_req(proto::UpdateRequest {
            map: map_ref(map),
            value: data(value),
            ..Default::default()
        })
        .await
    }

    /// Pops the next value of a queue or stack; `NOT_FOUND` when empty.
    pub async fn pop(&self, map: impl Into<MapRef>) -> Result<Vec<u8>, Error> {
        self.lookup_and_delete_req(map, None).await?.into_single()
    }

    /// Reads the next value of a queue or stack without removing it; `NOT_FOUND` when empty.
    pub async fn peek(&self, map: impl Into<MapRef>) -> Result<Vec<u8>, Error> {
        self.lookup_req(proto::LookupRequest {
            map: map_ref(map),
            format: Format::Raw as i32,
            ..Default::default()
        })
        .await?
        .into_single()
    }

    /// Adds `value` to a bloom filter.
    pub async fn bloom_add(
        &self,
        map: impl Into<MapRef>,
        value: impl Into<Data>,
    ) -> Result<(), Error> {
        self.push(map, value).await
    }

    /// Tests `value` against a bloom filter: `false` means surely absent, `true` probably
    /// present. The daemon's `NOT_FOUND` answer reads as `false`, so make sure the map
    /// exists (an unknown map also answers `NOT_FOUND`).
    pub async fn bloom_contains(
        &self,
        map: impl Into<MapRef>,
        value: impl Into<Data>,
    ) -> Result<bool, Error> {
        let res = self
            .lookup_req(proto::LookupRequest {
                map: map_ref(map),
                value: data(value),
                format: Format::Raw as i32,
                ..Default::default()
            })
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }
}
