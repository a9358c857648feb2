//! Live streams: [`Client::read_events`] (the records a program writes to a ring buffer or
//! a perf event array) and [`Client::watch`] (a map's contents, then its changes).

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{Stream, StreamExt};

use crate::client::Client;
use crate::data::{raw_of, Value};
use crate::error::Error;
use crate::mapref::MapRef;
use crate::proto::{self, Format, MapInfo};

/// One record of a ring buffer or perf event array, or a report of lost records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The record as the program wrote it; None on an event that only reports losses.
    /// (Perf records come as the kernel stores them: padded to a multiple of 8 bytes,
    /// counting a 4-byte size before the data.)
    pub data: Option<bytes::Bytes>,
    /// The record as typed JSON, for [`Client::read_events_typed`] (then `data` is None).
    pub json: Option<String>,
    /// Perf event arrays: the CPU whose buffer held the record.
    pub cpu: Option<u32>,
    /// Records this subscriber lost just before this event: it read too slowly (the
    /// daemon's queue for it was full), or the kernel's perf buffer overflowed.
    pub lost: u64,
    /// When the daemon read the record, in nanoseconds since the Unix epoch.
    pub time_ns: u64,
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Error>> + Send>>;

/// The events of one map (see [`Client::read_events`]); never ends by itself.
pub struct Events {
    info: MapInfo,
    inner: BoxStream<Event>,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events")
            .field("map", &self.info.id)
            .finish()
    }
}

impl Events {
    /// The map read, as described when the stream started.
    pub fn info(&self) -> &MapInfo {
        &self.info
    }
}

impl Stream for Events {
    type Item = Result<Event, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

/// What happened to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    /// The key was not there (every entry of the initial snapshot is `Added`).
    Added,
    /// The key's value changed.
    Changed,
    /// The key is gone.
    Removed,
}

/// One entry of a snapshot, or one change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// What happened.
    pub kind: ChangeKind,
    /// The key bytes.
    pub key: Vec<u8>,
    /// The new value; None for [`ChangeKind::Removed`].
    pub value: Option<Value>,
}

/// A snapshot or a batch of changes of a watched map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchUpdate {
    /// The initial snapshot: `changes` are the map's entries, all `Added`.
    pub initial: bool,
    /// The entries or changes.
    pub changes: Vec<Change>,
    /// Entries in the map when it was read.
    pub count: u64,
    /// When the daemon read the map, in nanoseconds since the Unix epoch.
    pub time_ns: u64,
}

/// The updates of one watched map (see [`Client::watch`]); never ends by itself.
pub struct Watch {
    info: MapInfo,
    inner: BoxStream<WatchUpdate>,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch").field("map", &self.info.id).finish()
    }
}

impl Watch {
    /// The watched map, as described when the stream started.
    pub fn info(&self) -> &MapInfo {
        &self.info
    }
}

impl Stream for Watch {
    type Item = Result<WatchUpdate, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

fn event(e: proto::Event) -> Result<Event, Error> {
    use proto::data::Form;
    let (data, json) = match e.data.and_then(|d| d.form) {
        None => (None, None),
        Some(Form::Raw(b)) => (Some(b), None),
        Some(Form::Json(j)) => (None, Some(j)),
        Some(other) => {
            return Err(Error::Protocol(format!(
                "a record came as {other:?}, expected raw bytes"
            )))
        }
    };
    Ok(Event {
        data,
        json,
        cpu: e.cpu,
        lost: e.lost,
        time_ns: e.time_ns,
    })
}

fn change(c: proto::Change) -> Result<Change, Error> {
    use proto::change::Kind;
    let kind = match Kind::try_from(c.kind) {
        Ok(Kind::Added) => ChangeKind::Added,
        Ok(Kind::Changed) => ChangeKind::Changed,
        Ok(Kind::Removed) => ChangeKind::Removed,
        _ => return Err(Error::Protocol(format!("unknown change kind {}", c.kind))),
    };
    let value = if kind == ChangeKind::Removed {
        None
    } else {
        Some(Value::from_parts(c.value, c.per_cpu_values)?)
    };
    Ok(Change {
        kind,
        key: raw_of(c.key, "key")?,
        value,
    })
}

/// Joins the messages of one snapshot or batch (`more`) into one update.
struct Joiner {
    current: Option<WatchUpdate>,
}

impl Joiner {
    fn push(&mut self, msg: proto::WatchResponse) -> Result<Option<WatchUpdate>, Error> {
        let changes = msg
            .changes
            .into_iter()
            .map(change)
            .collect::<Result<Vec<_>, _>>()?;
        let update = match self.current.take() {
            Some(mut u) => {
                u.changes.extend(changes);
                u.count = msg.count;
                u.time_ns = msg.time_ns;
                u
            }
            None => WatchUpdate {
                initial: msg.initial,
                changes,
                count: msg.count,
                time_ns: msg.time_ns,
            },
        };
        if msg.more {
            self.current = Some(update);
            Ok(None)
        } else {
            Ok(Some(update))
        }
    }
}

impl Client {
    /// Streams the records a program writes to a ring buffer or a perf event array
    /// (`ReadEvents`), as they come, until the stream is dropped. The daemon is the one
    /// consumer of the map and shares its records with every subscriber; one that reads too
    /// slowly loses records, reported in [`Event::lost`].
    ///
    /// ```no_run
    /// # async fn f(client: bpfmap_client::Client) -> Result<(), bpfmap_client::Error> {
    /// use futures::TryStreamExt;
    /// let mut events = client.read_events(bpfmap_client::MapRef::name("events")).await?;
    /// while let Some(e) = events.try_next().await? {
    ///     if e.lost > 0 {
    ///         eprintln!("lost {} records", e.lost);
    ///     }
    ///     if let Some(record) = e.data {
    ///         println!("cpu {:?}: {} bytes", e.cpu, record.len());
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn read_events(&self, map: impl Into<MapRef>) -> Result<Events, Error> {
        self.events_request(map.into(), Format::Raw, String::new())
            .await
    }

    /// [`read_events`](Client::read_events) with each record decoded as typed JSON
    /// ([`Event::json`]) by `record_type`: a type name of the BTF of the program that writes
    /// the map (`"struct event"`), or a C declaration
    /// (`"struct event { __u64 seq; __u32 len; }"`).
    ///
    /// ```no_run
    /// # async fn f(client: bpfmap_client::Client) -> Result<(), bpfmap_client::Error> {
    /// use futures::TryStreamExt;
    /// let map = bpfmap_client::MapRef::name("events");
    /// let mut events = client.read_events_typed(map, "struct event").await?;
    /// while let Some(e) = events.try_next().await? {
    ///     if let Some(json) = e.json {
    ///         println!("{json}"); // {"seq":7,"len":32,"index":0}
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn read_events_typed(
        &self,
        map: impl Into<MapRef>,
        record_type: impl Into<String>,
    ) -> Result<Events, Error> {
        self.events_request(map.into(), Format::Json, record_type.into())
            .await
    }

    async fn events_request(
        &self,
        map: MapRef,
        format: Format,
        record_type: String,
    ) -> Result<Events, Error> {
        let info = self.get_map(map).await?;
        let req = proto::ReadEventsRequest {
            map: Some(MapRef::Id(info.id).to_proto()),
            format: format as i32,
            record_type,
        };
        let stream = self.inner.clone().read_events(req).await?.into_inner();
        let inner = stream.map(|m| m.map_err(Error::from).and_then(event));
        Ok(Events {
            info,
            inner: Box::pin(inner),
        })
    }

    /// Watches a map (`Watch`): first its contents ([`WatchUpdate::initial`]), then the
    /// changes, at most one update per `interval` (zero: the daemon's default, 1 s) and none
    /// while nothing changes. Watchers of one map share the daemon's poller.
    ///
    /// ```no_run
    /// # async fn f(client: bpfmap_client::Client) -> Result<(), bpfmap_client::Error> {
    /// use futures::TryStreamExt;
    /// use std::time::Duration;
    /// let map = bpfmap_client::MapRef::name("stats_map");
    /// let mut watch = client.watch(map, Duration::from_millis(500)).await?;
    /// while let Some(update) = watch.try_next().await? {
    ///     for c in &update.changes {
    ///         println!("{:?} {:02x?}", c.kind, c.key);
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn watch(&self, map: impl Into<MapRef>, interval: Duration) -> Result<Watch, Error> {
        let info = self.get_map(map).await?;
        let interval_ms = u32::try_from(interval.as_millis())
            .map_err(|_| Error::InvalidInput(format!("interval {interval:?} is too long")))?;
        let req = proto::WatchRequest {
            map: Some(MapRef::Id(info.id).to_proto()),
            format: Format::Raw as i32,
            interval_ms,
        };
        let stream = self.inner.clone().watch(req).await?.into_inner();
        let mut joiner = Joiner { current: None };
        let inner = stream.filter_map(move |m| {
            let out = match m.map_err(Error::from) {
                Ok(msg) => joiner.push(msg).transpose(),
                Err(e) => Some(Err(e)),
            };
            futures::future::ready(out)
        });
        Ok(Watch {
            info,
            inner: Box::pin(inner),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::data::Form;

    fn raw(b: &[u8]) -> Option<proto::Data> {
        Some(proto::Data {
            form: Some(Form::Raw(b.to_vec().into())),
        })
    }

    fn msg(initial: bool, more: bool, keys: &[u8]) -> proto::WatchResponse {
        proto::WatchResponse {
            initial,
            more,
            changes: keys
                .iter()
                .map(|k| proto::Change {
                    kind: proto::change::Kind::Added as i32,
                    key: raw(&[*k]),
                    value: raw(&[*k, *k]),
                    per_cpu_values: vec![],
                })
                .collect(),
            time_ns: 1,
            count: keys.len() as u64,
        }
    }

    #[test]
    fn messages_of_one_update_are_joined() {
        let mut j = Joiner { current: None };
        assert_eq!(j.push(msg(true, true, &[1, 2])).ok(), Some(None));
        let u = j.push(msg(true, false, &[3])).ok().flatten();
        let keys: Option<Vec<Vec<u8>>> = u
            .as_ref()
            .map(|u| u.changes.iter().map(|c| c.key.clone()).collect());
        assert_eq!(keys, Some(vec![vec![1], vec![2], vec![3]]));
        assert!(u.is_some_and(|u| u.initial));
        let removed = proto::WatchResponse {
            changes: vec![proto::Change {
                kind: proto::change::Kind::Removed as i32,
                key: raw(&[9]),
                value: None,
                per_cpu_values: vec![],
            }],
            ..Default::default()
        };
        let u = j.push(removed).ok().flatten();
        assert_eq!(
            u.map(|u| u.changes),
            Some(vec![Change {
                kind: ChangeKind::Removed,
                key: vec![9],
                value: None
            }])
        );
    }

    #[test]
    fn events_keep_their_bytes_cpu_and_losses() {
        let e = event(proto::Event {
            data: raw(&[1, 2]),
            cpu: Some(1),
            lost: 3,
            time_ns: 4,
        });
        assert_eq!(
            e.ok(),
            Some(Event {
                data: Some(bytes::Bytes::from_static(&[1, 2])),
                json: None,
                cpu: Some(1),
                lost: 3,
                time_ns: 4
            })
        );
        let hex = proto::Event {
            data: Some(proto::Data {
                form: Some(Form::Hex("01".into())),
            }),
            ..Default::default()
        };
        assert!(event(hex).is_err());
    }
}
