//! `map events` and `map watch`: print a live stream as it arrives, until Ctrl+C (or
//! `--count`). Output is flushed whenever the stream has nothing more ready, so that a
//! terminal or a pipe sees each record at once without a write per record under load.
//!
//! `map events` prints what `bpftool map event_pipe` prints: a `== @<time> CPU: <n> =====`
//! header and the record's bytes, `lost N events` for losses. `map watch` prints the entries
//! as `map dump` does, then each batch of changes under a `== @<time> ... =====` header, one
//! `added:` / `changed:` / `removed:` line per key. With `--json`, one JSON object per line.

use std::io::Write;

use bpfmap_client::{Change, ChangeKind, Client, Event, WatchUpdate};
use futures::{FutureExt, Stream, StreamExt};
use serde_json::{json, Value as Json};

use crate::args::{EventsArgs, WatchArgs};
use crate::commands::Ctx;
use crate::output::{entry_json, entry_text, found, hex_block, hex_json};
use crate::Failure;

/// `== @1700000000.123456789`: a Unix time in bpftool's event_pipe style.
fn stamp(time_ns: u64) -> String {
    format!(
        "@{}.{:09}",
        time_ns / 1_000_000_000,
        time_ns % 1_000_000_000
    )
}

/// One event in bpftool's plain layout.
pub fn event_text(e: &Event) -> String {
    let mut out = String::new();
    if e.lost > 0 {
        out.push_str(&format!("lost {} events\n", e.lost));
    }
    if let Some(data) = &e.data {
        out.push_str(&header(e));
        out.push_str(&hex_block(data));
        out.push('\n');
    }
    if let Some(json) = &e.json {
        out.push_str(&header(e));
        out.push_str(json);
        out.push('\n');
    }
    out
}

fn header(e: &Event) -> String {
    match e.cpu {
        Some(cpu) => format!("== {} CPU: {cpu} =====\n", stamp(e.time_ns)),
        None => format!("== {} =====\n", stamp(e.time_ns)),
    }
}

/// One event as JSON lines: `{"lost":{"count":N}}` first if records were lost, then
/// `{"timestamp":ns,"cpu":n,"data":["0x01",..]}`.
pub fn event_json(e: &Event) -> Vec<Json> {
    let mut out = Vec::new();
    if e.lost > 0 {
        out.push(json!({"lost": {"count": e.lost}}));
    }
    if let Some(data) = &e.data {
        let mut m = serde_json::Map::new();
        m.insert("timestamp".into(), json!(e.time_ns));
        if let Some(cpu) = e.cpu {
            m.insert("cpu".into(), json!(cpu));
        }
        m.insert("data".into(), hex_json(data));
        out.push(Json::Object(m));
    }
    if let Some(text) = &e.json {
        let mut m = serde_json::Map::new();
        m.insert("timestamp".into(), json!(e.time_ns));
        if let Some(cpu) = e.cpu {
            m.insert("cpu".into(), json!(cpu));
        }
        let v = serde_json::from_str(text).unwrap_or_else(|_| Json::String(text.clone()));
        m.insert("formatted".into(), v);
        out.push(Json::Object(m));
    }
    out
}

fn kind_word(k: ChangeKind) -> &'static str {
    match k {
        ChangeKind::Added => "added",
        ChangeKind::Changed => "changed",
        ChangeKind::Removed => "removed",
    }
}

/// One update in the plain layout: a snapshot as `map dump` prints it, a batch of changes
/// under a header.
pub fn update_text(u: &WatchUpdate) -> String {
    let mut out = String::new();
    if u.initial {
        for c in &u.changes {
            if let Some(v) = &c.value {
                out.push_str(&entry_text(&c.key, v));
            }
        }
        out.push_str(&found(u.count));
        return out;
    }
    let n = u.changes.len();
    out.push_str(&format!(
        "== {} {n} change{} ({} element{}) =====\n",
        stamp(u.time_ns),
        if n == 1 { "" } else { "s" },
        u.count,
        if u.count == 1 { "" } else { "s" },
    ));
    for c in &u.changes {
        out.push_str(kind_word(c.kind));
        out.push_str(": ");
        match &c.value {
            Some(v) => out.push_str(&entry_text(&c.key, v)),
            None => {
                out.push_str("key: ");
                out.push_str(&hex_block(&c.key));
                out.push('\n');
            }
        }
    }
    out
}

fn change_json(c: &Change) -> Json {
    let mut m = serde_json::Map::new();
    m.insert("change".into(), json!(kind_word(c.kind)));
    match &c.value {
        Some(v) => {
            if let Json::Object(fields) = entry_json(&c.key, v) {
                m.extend(fields);
            }
        }
        None => {
            m.insert("key".into(), hex_json(&c.key));
        }
    }
    Json::Object(m)
}

/// One update as a JSON line: `{"timestamp":..,"initial":true,"entries":[..],"count":N}`
/// (entries as `map dump -j` prints them) or `{"timestamp":..,"changes":[{"change":"added",
/// "key":[..],"value":[..]},..],"count":N}`.
pub fn update_json(u: &WatchUpdate) -> Json {
    if u.initial {
        let entries: Vec<Json> = u
            .changes
            .iter()
            .filter_map(|c| c.value.as_ref().map(|v| entry_json(&c.key, v)))
            .collect();
        json!({"timestamp": u.time_ns, "initial": true, "entries": entries, "count": u.count})
    } else {
        let changes: Vec<Json> = u.changes.iter().map(change_json).collect();
        json!({"timestamp": u.time_ns, "changes": changes, "count": u.count})
    }
}

/// Prints every item of `stream` with `print` until it ends, `print` says stop, or Ctrl+C.
async fn follow<S, T>(
    mut stream: S,
    out: &mut dyn Write,
    mut print: impl FnMut(&T, &mut dyn Write) -> Result<bool, Failure>,
) -> Result<(), Failure>
where
    S: Stream<Item = Result<T, bpfmap_client::Error>> + Unpin,
{
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let next = match stream.next().now_or_never() {
            Some(next) => next,
            None => {
                out.flush()?;
                tokio::select! {
                    next = stream.next() => next,
                    _ = &mut ctrl_c => break,
                }
            }
        };
        match next {
            None => break,
            Some(Err(e)) => {
                out.flush()?;
                return Err(e.into());
            }
            Some(Ok(item)) => {
                if !print(&item, out)? {
                    break;
                }
            }
        }
    }
    out.flush()?;
    Ok(())
}

/// `map events`.
pub async fn events(
    client: &Client,
    a: &EventsArgs,
    ctx: &Ctx,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    let stream = match &a.record_type {
        Some(t) => client.read_events_typed(&a.map, t.as_str()).await?,
        None => client.read_events(&a.map).await?,
    };
    let mut records = 0u64;
    follow(stream, out, |e: &Event, out| {
        if ctx.json {
            for j in event_json(e) {
                ctx.print_json(out, &j)?;
            }
        } else {
            out.write_all(event_text(e).as_bytes())?;
        }
        records += u64::from(e.data.is_some() || e.json.is_some());
        Ok(a.count.is_none_or(|n| records < n))
    })
    .await
}

/// `map watch`.
pub async fn watch(
    client: &Client,
    a: &WatchArgs,
    ctx: &Ctx,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    let interval = std::time::Duration::from_millis(u64::from(a.interval));
    let stream = client.watch(&a.map, interval).await?;
    let mut batches = 0u64;
    follow(stream, out, |u: &WatchUpdate, out| {
        if ctx.json {
            ctx.print_json(out, &update_json(u))?;
        } else {
            out.write_all(update_text(u).as_bytes())?;
        }
        batches += u64::from(!u.initial);
        Ok(a.count.is_none_or(|n| batches < n))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use bpfmap_client::Value;

    fn single(v: &[u8]) -> Option<Value> {
        Some(Value::Single(v.to_vec()))
    }

    #[test]
    fn events_print_like_bpftool_event_pipe() {
        let e = Event {
            data: Some(bytes::Bytes::from_static(&[1, 2, 0xab])),
            json: None,
            cpu: Some(1),
            lost: 0,
            time_ns: 1_700_000_000_000_000_042,
        };
        assert_eq!(
            event_text(&e),
            "== @1700000000.000000042 CPU: 1 =====\n01 02 ab\n"
        );
        let lost = Event {
            data: None,
            json: None,
            cpu: None,
            lost: 5,
            time_ns: 0,
        };
        assert_eq!(event_text(&lost), "lost 5 events\n");
        assert_eq!(
            event_json(&Event { cpu: None, ..e }),
            vec![
                json!({"timestamp": 1_700_000_000_000_000_042u64, "data": ["0x01", "0x02", "0xab"]})
            ]
        );
        assert_eq!(event_json(&lost), vec![json!({"lost": {"count": 5}})]);
        let typed = Event {
            data: None,
            json: Some(r#"{"seq":7}"#.into()),
            cpu: None,
            lost: 0,
            time_ns: 3,
        };
        assert_eq!(event_text(&typed), "== @0.000000003 =====\n{\"seq\":7}\n");
        assert_eq!(
            event_json(&typed),
            vec![json!({"timestamp": 3, "formatted": {"seq": 7}})]
        );
    }

    #[test]
    fn watch_updates_print_entries_then_changes() {
        let snap = WatchUpdate {
            initial: true,
            changes: vec![Change {
                kind: ChangeKind::Added,
                key: vec![0xc1, 0xc2],
                value: single(&[0xa1, 0xa2]),
            }],
            count: 1,
            time_ns: 5,
        };
        assert_eq!(
            update_text(&snap),
            "key: c1 c2  value: a1 a2\nFound 1 element\n"
        );
        let batch = WatchUpdate {
            initial: false,
            changes: vec![
                Change {
                    kind: ChangeKind::Changed,
                    key: vec![0xc1, 0xc2],
                    value: single(&[0xb1, 0xb2]),
                },
                Change {
                    kind: ChangeKind::Removed,
                    key: vec![0x01, 0x02],
                    value: None,
                },
            ],
            count: 1,
            time_ns: 2_000_000_001,
        };
        assert_eq!(
            update_text(&batch),
            "== @2.000000001 2 changes (1 element) =====\nchanged: key: c1 c2  value: b1 b2\nremoved: key: 01 02\n"
        );
        assert_eq!(
            update_json(&batch),
            json!({"timestamp": 2_000_000_001u64, "changes": [
                {"change": "changed", "key": ["0xc1", "0xc2"], "value": ["0xb1", "0xb2"]},
                {"change": "removed", "key": ["0x01", "0x02"]},
            ], "count": 1})
        );
    }
}
