//! Typed JSON reads for maps with BTF: [`Client::lookup_json`], [`Client::get_next_key_json`]
//! and [`Client::dump_json`] ask the daemon for `FORMAT_JSON` and hand back its JSON text
//! (bpftool's formatted layout: structs as objects by field name, `char[N]` as strings).
//! Writes take [`Data::json`](crate::Data::json) in the ordinary methods.

use futures::stream::BoxStream;
use futures::StreamExt;

use crate::client::Client;
use crate::data::Data;
use crate::error::Error;
use crate::mapref::MapRef;
use crate::proto::{self, data::Form, Format};

/// A typed value: JSON text, or one per possible CPU for per-CPU maps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonValue {
    /// The value of an ordinary map.
    Single(String),
    /// Per-CPU maps: one JSON text per possible CPU, index = CPU number.
    PerCpu(Vec<String>),
}

/// One entry of [`Client::dump_json`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonEntry {
    /// The key's JSON (None for maps without keys).
    pub key: Option<String>,
    /// The value's JSON.
    pub value: JsonValue,
}

fn json_text(d: Option<proto::Data>, what: &str) -> Result<String, Error> {
    match d.and_then(|d| d.form) {
        Some(Form::Json(s)) => Ok(s),
        other => Err(Error::Protocol(format!(
            "{what} came as {other:?}, expected JSON"
        ))),
    }
}

fn json_value(value: Option<proto::Data>, per_cpu: Vec<proto::Data>) -> Result<JsonValue, Error> {
    if per_cpu.is_empty() {
        Ok(JsonValue::Single(json_text(value, "value")?))
    } else {
        per_cpu
            .into_iter()
            .map(|d| json_text(Some(d), "per-CPU value"))
            .collect::<Result<Vec<_>, _>>()
            .map(JsonValue::PerCpu)
    }
}

impl Client {
    /// Looks up `key` and returns the value as typed JSON (the map needs BTF types).
    ///
    /// ```no_run
    /// # async fn f(client: bpfmap_client::Client) -> Result<(), bpfmap_client::Error> {
    /// use bpfmap_client::{Data, MapRef};
    /// let v = client
    ///     .lookup_json(MapRef::name("flows"), Data::json(r#"{"sport":53,"dport":4000}"#))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn lookup_json(
        &self,
        map: impl Into<MapRef>,
        key: impl Into<Data>,
    ) -> Result<JsonValue, Error> {
        let resp = self
            .inner
            .clone()
            .lookup(proto::LookupRequest {
                map: Some(map.into().to_proto()),
                key: Some(key.into().to_proto()),
                format: Format::Json as i32,
                ..Default::default()
            })
            .await?
            .into_inner();
        json_value(resp.value, resp.per_cpu_values)
    }

    /// The key after `key` (None: the first key) as typed JSON.
    pub async fn get_next_key_json(
        &self,
        map: impl Into<MapRef>,
        key: Option<Data>,
    ) -> Result<String, Error> {
        let resp = self
            .inner
            .clone()
            .get_next_key(proto::GetNextKeyRequest {
                map: Some(map.into().to_proto()),
                key: key.map(|k| k.to_proto()),
                format: Format::Json as i32,
            })
            .await?
            .into_inner();
        json_text(resp.next_key, "next key")
    }

    /// Streams every entry as typed JSON, one batch of entries per daemon message.
    pub async fn dump_json(
        &self,
        map: impl Into<MapRef>,
        batch_size: u32,
    ) -> Result<BoxStream<'static, Result<Vec<JsonEntry>, Error>>, Error> {
        let stream = self
            .inner
            .clone()
            .dump(proto::DumpRequest {
                map: Some(map.into().to_proto()),
                format: Format::Json as i32,
                batch_size,
                ..Default::default()
            })
            .await?
            .into_inner();
        Ok(stream
            .map(|msg| {
                let msg = msg?;
                msg.entries
                    .into_iter()
                    .map(|e| {
                        Ok(JsonEntry {
                            key: match e.key {
                                Some(k) => Some(json_text(Some(k), "key")?),
                                None => None,
                            },
                            value: json_value(e.value, e.per_cpu_values)?,
                        })
                    })
                    .collect()
            })
            .boxed())
    }
}
