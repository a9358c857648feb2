//! Helpers for the live streams, ReadEvents and Watch: opening them, reading with deadlines,
//! and the daemon's open fds and threads (to check that a stream leaves nothing behind).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tonic::Streaming;

use crate::api::pb::{
    change::Kind, Event, Format, MapRef, ReadEventsRequest, WatchRequest, WatchResponse,
};
use crate::api::{bytes_of, Client};

/// Opens ReadEvents on `map` in `format`; panics if the call fails.
pub async fn read_events(
    client: &mut Client,
    map: Option<MapRef>,
    format: Format,
) -> Streaming<Event> {
    let req = ReadEventsRequest {
        map,
        format: format as i32,
        ..Default::default()
    };
    let what = format!("{req:?}");
    client
        .read_events(req)
        .await
        .unwrap_or_else(|s| panic!("ReadEvents {what}: {s:?}"))
        .into_inner()
}

/// What a subscriber got: records (raw bytes, with their CPU) and the losses reported.
#[derive(Debug, Default, Clone)]
pub struct Received {
    /// The records, in stream order: (cpu, bytes).
    pub records: Vec<(Option<u32>, Vec<u8>)>,
    /// Σ Event.lost.
    pub lost: u64,
    /// Events that carried no record (loss reports).
    pub loss_reports: u64,
}

impl Received {
    /// Records plus records reported lost.
    pub fn accounted(&self) -> u64 {
        self.records.len() as u64 + self.lost
    }

    fn add(&mut self, e: Event) {
        self.lost += e.lost;
        match e.data {
            Some(_) => self.records.push((e.cpu, bytes_of(&e.data))),
            None => self.loss_reports += 1,
        }
    }
}

/// Reads raw events until records + losses reach `want` or `timeout` passes.
pub async fn receive(stream: &mut Streaming<Event>, want: u64, timeout: Duration) -> Received {
    let mut got = Received::default();
    receive_more(stream, &mut got, want, timeout).await;
    got
}

/// Like [`receive`], adding to `got`.
pub async fn receive_more(
    stream: &mut Streaming<Event>,
    got: &mut Received,
    want: u64,
    timeout: Duration,
) {
    let deadline = Instant::now() + timeout;
    while got.accounted() < want {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.message()).await {
            Err(_) => return,
            Ok(Ok(Some(e))) => got.add(e),
            Ok(Ok(None)) => panic!("the event stream ended after {got:?}"),
            Ok(Err(s)) => panic!("the event stream failed: {s:?}"),
        }
    }
}

/// Reads whatever events arrive within `quiet`, to check that nothing more comes.
pub async fn receive_for(stream: &mut Streaming<Event>, quiet: Duration) -> Received {
    let mut got = Received::default();
    while let Ok(msg) = tokio::time::timeout(quiet, stream.message()).await {
        match msg {
            Ok(Some(e)) => got.add(e),
            Ok(None) => panic!("the event stream ended"),
            Err(s) => panic!("the event stream failed: {s:?}"),
        }
    }
    got
}

/// Opens Watch on `map`; panics if the call fails.
pub async fn watch(
    client: &mut Client,
    map: Option<MapRef>,
    format: Format,
    interval_ms: u32,
) -> Streaming<WatchResponse> {
    let req = WatchRequest {
        map,
        format: format as i32,
        interval_ms,
    };
    let what = format!("{req:?}");
    client
        .watch(req)
        .await
        .unwrap_or_else(|s| panic!("Watch {what}: {s:?}"))
        .into_inner()
}

/// One snapshot or batch of changes, its messages joined (`more` followed).
#[derive(Debug, Clone, Default)]
pub struct Batch {
    /// The initial snapshot.
    pub initial: bool,
    /// (kind, key, value) in stream order; keys and values in raw form (FORMAT_RAW).
    pub changes: Vec<(Kind, Vec<u8>, Option<Vec<u8>>)>,
    /// Entries in the map at that read.
    pub count: u64,
    /// Messages it came in.
    pub messages: usize,
}

impl Batch {
    /// The changes by key: key → (kind, value).
    pub fn by_key(&self) -> BTreeMap<Vec<u8>, (Kind, Option<Vec<u8>>)> {
        self.changes
            .iter()
            .map(|(k, key, v)| (key.clone(), (*k, v.clone())))
            .collect()
    }
}

/// The next snapshot or batch of a FORMAT_RAW watch, or None if nothing comes within
/// `timeout`.
pub async fn next_batch(stream: &mut Streaming<WatchResponse>, timeout: Duration) -> Option<Batch> {
    let deadline = Instant::now() + timeout;
    let mut batch = Batch::default();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = match tokio::time::timeout(left, stream.message()).await {
            Err(_) if batch.messages == 0 => return None,
            Err(_) => panic!("a watch batch was left unfinished (more = true) for {timeout:?}"),
            Ok(Ok(Some(m))) => m,
            Ok(Ok(None)) => panic!("the watch stream ended"),
            Ok(Err(s)) => panic!("the watch stream failed: {s:?}"),
        };
        batch.messages += 1;
        batch.initial = msg.initial;
        batch.count = msg.count;
        for c in msg.changes {
            let kind = Kind::try_from(c.kind).unwrap_or_else(|_| panic!("change kind {}", c.kind));
            let value = c.value.as_ref().map(|_| bytes_of(&c.value));
            batch.changes.push((kind, bytes_of(&c.key), value));
        }
        if !msg.more {
            return Some(batch);
        }
    }
}

/// Open fds and threads of a process (entries of /proc/PID/fd and /proc/PID/task).
pub fn fds_and_threads(pid: u32) -> (usize, usize) {
    let count = |what: &str| {
        std::fs::read_dir(format!("/proc/{pid}/{what}"))
            .unwrap_or_else(|e| panic!("read /proc/{pid}/{what}: {e}"))
            .count()
    };
    (count("fd"), count("task"))
}

/// Waits up to `timeout` for the daemon's fds and threads to be back at (or below)
/// `baseline`; returns the last counts seen.
pub async fn settle(pid: u32, baseline: (usize, usize), timeout: Duration) -> (usize, usize) {
    let deadline = Instant::now() + timeout;
    loop {
        let now = fds_and_threads(pid);
        if (now.0 <= baseline.0 && now.1 <= baseline.1) || Instant::now() > deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
