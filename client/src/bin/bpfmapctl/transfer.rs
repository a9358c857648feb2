//! `map dump` and `map load`: bpftool text/JSON, JSON lines and raw snapshots.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use bpfmap_client::snapshot::{self, COUNT_OFFSET, HEADER_LEN, MAGIC};
use bpfmap_client::{Client, DumpOptions, Error, Layout, MapRef};
use futures::{StreamExt, TryStreamExt};

use crate::args::{DumpArgs, DumpFormat, LoadArgs, LoadFormat};
use crate::commands::Ctx;
use crate::jsonl;
use crate::output::{
    entry_json, entry_text, found, push_entry_json, to_json_text, typed_entry_json,
};
use crate::progress::Progress;
use crate::Failure;

/// A host address made safe for a file name.
pub fn host_tag(host: &str) -> String {
    host.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The output path for this host: `{host}` replaced.
pub fn output_path(template: &str, host: &str) -> PathBuf {
    PathBuf::from(template.replace("{host}", &host_tag(host)))
}

fn io_err(path: &Path, what: &str) -> impl Fn(std::io::Error) -> Failure {
    let what = what.to_owned();
    let path = path.to_owned();
    move |e| {
        Failure::Remote(Error::Io {
            context: format!("{what} {}", path.display()),
            source: e,
        })
    }
}

/// `--json map dump` of a map with BTF types: bpftool's formatted objects
/// (`{"key":{..},"value":{..}}`), with the daemon's typed JSON.
async fn dump_typed(
    client: &Client,
    id: u32,
    a: &DumpArgs,
    ctx: &Ctx,
    path: Option<PathBuf>,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    let mut file = match &path {
        Some(p) => Some(BufWriter::new(
            File::create(p).map_err(io_err(p, "cannot create"))?,
        )),
        None => None,
    };
    let mut stream = client.dump_json(MapRef::Id(id), a.batch_size).await?;
    let mut items = Vec::new();
    while let Some(batch) = stream.try_next().await? {
        for e in batch {
            let key = e
                .key
                .as_deref()
                .map(|k| serde_json::from_str(k).unwrap_or(serde_json::Value::Null))
                .unwrap_or(serde_json::Value::Null);
            items.push(typed_entry_json(key, &e.value));
        }
    }
    let count = items.len();
    let text = to_json_text(&serde_json::Value::Array(items), ctx.pretty);
    match (file.as_mut(), &path) {
        (Some(f), Some(p)) => {
            writeln!(f, "{text}").map_err(io_err(p, "cannot write"))?;
            f.flush().map_err(io_err(p, "cannot write"))?;
            let v = serde_json::json!({"file": p.display().to_string(), "elements": count});
            ctx.print_json(out, &v)?;
        }
        _ => writeln!(out, "{text}")?,
    }
    Ok(())
}

/// `map dump`.
pub async fn dump(
    client: &Client,
    a: &DumpArgs,
    ctx: &Ctx,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    let path = a.output.as_deref().map(|t| output_path(t, &ctx.host));
    if a.format == DumpFormat::Raw
        && path.is_none()
        && !ctx.fleet
        && std::io::stdout().is_terminal()
    {
        return Err(Failure::Usage(
            "refusing to write binary records to a terminal: add --output FILE or redirect".into(),
        ));
    }
    if a.format == DumpFormat::Text && ctx.json {
        let info = client.get_map(&a.map).await?;
        if !info.value_type.is_empty() {
            return dump_typed(client, info.id, a, ctx, path, out).await;
        }
    }
    let opts = DumpOptions {
        batch_size: a.batch_size,
        delete: false,
    };
    let mut batches = client.dump_batches(&a.map, opts).await?;
    let info = batches.info().clone();
    let mut file = match &path {
        Some(p) => Some(BufWriter::with_capacity(
            1 << 20,
            File::create(p).map_err(io_err(p, "cannot create"))?,
        )),
        None => None,
    };
    let sink: &mut dyn Write = match file.as_mut() {
        Some(f) => f,
        None => out,
    };
    let bar_ok = !ctx.fleet && (path.is_some() || !std::io::stdout().is_terminal());
    let mut progress = Progress::new("dump", None, bar_ok);
    let mut count = 0u64;
    match a.format {
        DumpFormat::Raw => {
            let layout = Layout::of(&info)?;
            let mut w = snapshot::Writer::new(sink, layout, info.r#type as u32)?;
            while let Some(batch) = batches.try_next().await? {
                w.write_batch(&batch)?;
                count += batch.len() as u64;
                progress.inc(batch.len() as u64);
            }
            w.finish()?;
        }
        DumpFormat::Json => {
            let mut buf = String::new();
            while let Some(batch) = batches.try_next().await? {
                buf.clear();
                for i in 0..batch.len() {
                    if let Some(e) = batch.entry(i) {
                        jsonl::push_entry_line(&mut buf, &e.key, &e.value);
                    }
                }
                sink.write_all(buf.as_bytes())?;
                count += batch.len() as u64;
                progress.inc(batch.len() as u64);
            }
        }
        DumpFormat::Text if ctx.pretty => {
            // bpftool -p: one indented array, built whole (it is meant for people).
            let mut all = Vec::new();
            while let Some(batch) = batches.try_next().await? {
                all.extend((0..batch.len()).filter_map(|i| batch.entry(i)));
                progress.inc(batch.len() as u64);
            }
            let items = all.iter().map(|e| entry_json(&e.key, &e.value)).collect();
            count = all.len() as u64;
            sink.write_all(to_json_text(&serde_json::Value::Array(items), true).as_bytes())?;
            sink.write_all(b"\n")?;
        }
        DumpFormat::Text if ctx.json => {
            // bpftool -j's array, streamed batch by batch.
            let mut buf = String::from("[");
            while let Some(batch) = batches.try_next().await? {
                for i in 0..batch.len() {
                    if let Some(e) = batch.entry(i) {
                        if count > 0 {
                            buf.push(',');
                        }
                        push_entry_json(&mut buf, &e.key, &e.value);
                        count += 1;
                    }
                }
                sink.write_all(buf.as_bytes())?;
                buf.clear();
                progress.inc(batch.len() as u64);
            }
            buf.push_str("]\n");
            sink.write_all(buf.as_bytes())?;
        }
        DumpFormat::Text => {
            let mut buf = String::new();
            while let Some(batch) = batches.try_next().await? {
                buf.clear();
                for i in 0..batch.len() {
                    if let Some(e) = batch.entry(i) {
                        buf.push_str(&entry_text(&e.key, &e.value));
                    }
                }
                sink.write_all(buf.as_bytes())?;
                count += batch.len() as u64;
                progress.inc(batch.len() as u64);
            }
            sink.write_all(found(count).as_bytes())?;
        }
    }
    progress.finish();
    if let (Some(mut f), Some(p)) = (file, path) {
        f.flush().map_err(io_err(&p, "cannot write"))?;
        if a.format == DumpFormat::Raw {
            let mut f = f
                .into_inner()
                .map_err(|e| io_err(&p, "cannot write")(e.into_error()))?;
            f.seek(SeekFrom::Start(COUNT_OFFSET))
                .and_then(|_| f.write_all(&count.to_le_bytes()))
                .map_err(io_err(&p, "cannot write"))?;
        }
        if ctx.json {
            let v = serde_json::json!({"file": p.display().to_string(), "elements": count});
            ctx.print_json(out, &v)?;
        } else {
            let noun = if count == 1 { "element" } else { "elements" };
            writeln!(out, "Wrote {count} {noun} to {}", p.display())?;
        }
    }
    Ok(())
}

fn read_input(path: &Path) -> Result<Box<dyn Read>, Failure> {
    if path == Path::new("-") {
        Ok(Box::new(std::io::stdin()))
    } else {
        Ok(Box::new(
            File::open(path).map_err(io_err(path, "cannot open"))?,
        ))
    }
}

/// `map load`.
pub async fn load(
    client: &Client,
    a: &LoadArgs,
    ctx: &Ctx,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    let mut input = std::io::BufReader::with_capacity(1 << 20, read_input(&a.input)?);
    let head = {
        use std::io::BufRead;
        input
            .fill_buf()
            .map_err(io_err(&a.input, "cannot read"))?
            .to_vec()
    };
    let format = a.format.unwrap_or(if head.starts_with(&MAGIC) {
        LoadFormat::Raw
    } else {
        LoadFormat::Json
    });
    let bad =
        |msg: String| Failure::Remote(Error::InvalidInput(format!("{}: {msg}", a.input.display())));
    let flag = a.flag.flag();
    let bar_ok = !ctx.fleet;
    let updated = match format {
        LoadFormat::Json => {
            let mut text = String::new();
            input
                .read_to_string(&mut text)
                .map_err(io_err(&a.input, "cannot read"))?;
            let entries = jsonl::parse_entries(&text).map_err(bad)?;
            let mut progress = Progress::new("load", Some(entries.len() as u64), bar_ok);
            let stream = futures::stream::iter(entries).inspect(|_| progress.inc(1));
            let n = client.batch_update_stream(&a.map, stream, flag).await?;
            progress.finish();
            n
        }
        LoadFormat::Raw => {
            let reader = snapshot::Reader::new(input).map_err(|e| bad(e.message()))?;
            let header = *reader.header();
            check_raw_size(&a.input, &header).map_err(bad)?;
            let target = Layout::of(&client.get_map(&a.map).await?)?;
            let src = header.layout;
            if (src.key_size, src.value_size) != (target.key_size, target.value_size) {
                return Err(bad(format!(
                    "snapshot has {}-byte keys and {}-byte values, the map {}-byte keys and {}-byte values",
                    src.key_size, src.value_size, target.key_size, target.value_size
                )));
            }
            if src.cpus != target.cpus {
                return Err(bad(format!(
                    "snapshot values are for {} CPUs, the map's for {}",
                    src.cpus.unwrap_or(0),
                    target.cpus.unwrap_or(0)
                )));
            }
            let total = (header.count != snapshot::COUNT_UNKNOWN).then_some(header.count);
            let mut progress = Progress::new("load", total, bar_ok);
            let stream = futures::stream::iter(reader).inspect(|_| progress.inc(1));
            let n = client.batch_update_try_stream(&a.map, stream, flag).await?;
            progress.finish();
            n
        }
    };
    if ctx.json {
        ctx.print_json(out, &serde_json::json!({ "loaded": updated }))?;
    } else {
        let noun = if updated == 1 { "element" } else { "elements" };
        writeln!(out, "Loaded {updated} {noun}")?;
    }
    Ok(())
}

/// A truncated regular file is refused before anything is sent.
fn check_raw_size(path: &Path, header: &snapshot::Header) -> Result<(), String> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(()); // standard input: checked while reading
    };
    if !meta.is_file() {
        return Ok(());
    }
    let record = header.layout.key_size as u64 + header.layout.value_stride() as u64;
    let body = meta.len().saturating_sub(HEADER_LEN as u64);
    let ok = if header.count == snapshot::COUNT_UNKNOWN {
        record == 0 || body % record == 0
    } else {
        body >= header.count.saturating_mul(record)
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "truncated snapshot: {body} bytes of records, {record} per record, header count {}",
            if header.count == snapshot::COUNT_UNKNOWN {
                "unknown".to_string()
            } else {
                header.count.to_string()
            }
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_tags_are_file_safe() {
        assert_eq!(host_tag("unix:/run/x.sock"), "unix__run_x.sock");
        assert_eq!(host_tag("10.0.0.1:50051"), "10.0.0.1_50051");
        assert_eq!(
            output_path("d-{host}.jsonl", "https://h:1"),
            PathBuf::from("d-https___h_1.jsonl")
        );
    }

    #[test]
    fn truncated_snapshots_are_caught() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let p = dir.path().join("s.bin");
        let header = snapshot::Header {
            layout: Layout {
                key_size: 2,
                value_size: 2,
                cpus: None,
            },
            map_type: 1,
            count: 3,
        };
        let mut bytes = header.to_bytes().to_vec();
        bytes.extend([0u8; 8]);
        std::fs::write(&p, &bytes)?;
        assert!(check_raw_size(&p, &header).is_err());
        bytes.extend([0u8; 4]);
        std::fs::write(&p, &bytes)?;
        assert!(check_raw_size(&p, &header).is_ok());
        let unknown = snapshot::Header {
            count: snapshot::COUNT_UNKNOWN,
            ..header
        };
        bytes.push(0);
        std::fs::write(&p, &bytes)?;
        assert!(check_raw_size(&p, &unknown).is_err());
        Ok(())
    }
}
