//! `map sync MAP --input FILE [--prune] [--dry-run]`: make the map on every host hold the
//! file's entries, through the library's [`Client::sync`].
//!
//! The file is what `map dump --format json` writes (JSON lines, or a bpftool `-j` array),
//! or a raw snapshot (`--format raw`, told apart by its magic). It is read once, before any
//! host is contacted.

use std::io::{Read, Write};
use std::path::Path;

use bpfmap_client::snapshot::{self, MAGIC};
use bpfmap_client::{Client, Entry, Error, SyncOptions, SyncReport};
use serde_json::json;

use crate::args::{LoadFormat, SyncArgs};
use crate::commands::Ctx;
use crate::jsonl;
use crate::Failure;

/// Reads every entry of `path` (`-`: standard input).
pub fn read_entries(path: &Path, format: Option<LoadFormat>) -> Result<Vec<Entry>, Failure> {
    let mut bytes = Vec::new();
    let read = if path == Path::new("-") {
        std::io::stdin().read_to_end(&mut bytes)
    } else {
        std::fs::File::open(path).and_then(|mut f| f.read_to_end(&mut bytes))
    };
    read.map_err(|e| {
        Failure::Remote(Error::InvalidInput(format!(
            "cannot read {}: {e}",
            path.display()
        )))
    })?;
    let bad =
        |msg: String| Failure::Remote(Error::InvalidInput(format!("{}: {msg}", path.display())));
    let format = format.unwrap_or(if bytes.starts_with(&MAGIC) {
        LoadFormat::Raw
    } else {
        LoadFormat::Json
    });
    match format {
        LoadFormat::Json => {
            let text = String::from_utf8(bytes).map_err(|e| bad(format!("not UTF-8 text: {e}")))?;
            jsonl::parse_entries(&text).map_err(bad)
        }
        LoadFormat::Raw => {
            let reader = snapshot::Reader::new(bytes.as_slice()).map_err(|e| bad(e.message()))?;
            reader
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad(e.message()))
        }
    }
}

/// Syncs one host and prints its report; returns the report for the fleet table.
pub async fn run(
    client: &Client,
    a: &SyncArgs,
    entries: &[Entry],
    ctx: &Ctx,
    out: &mut dyn Write,
) -> Result<SyncReport, Failure> {
    let opts = SyncOptions {
        prune: a.prune,
        dry_run: a.dry_run,
    };
    let report = client.sync(&a.map, entries, opts).await?;
    if ctx.json {
        ctx.print_json(
            out,
            &json!({
                "inserted": report.inserted, "updated": report.updated,
                "deleted": report.deleted, "unchanged": report.unchanged,
                "extra": report.extra, "dry_run": a.dry_run,
            }),
        )?;
    } else {
        let prefix = if a.dry_run {
            "Would sync: "
        } else {
            "Synced: "
        };
        writeln!(out, "{prefix}{report}")?;
    }
    Ok(report)
}
