//! The `map` verbs, run against one daemon, writing bpftool-style output.

use std::io::Write;
use std::sync::Arc;

use bpfmap_client::{Client, CreateMap, Data, MapRef, Value};
use serde_json::Value as Json;

use crate::args::{concat, KeyArgs, LookupArgs, MapCmd, OptKeyArgs, UpdateArgs, ValueArgs};
use crate::output::{
    entry_json, entry_text, hex_json, map_json, map_text, next_key_json, next_key_text,
    to_json_text, typed_entry_json,
};
use crate::transfer;
use crate::Failure;

/// How to print, and for which host.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// JSON output.
    pub json: bool,
    /// Pretty JSON.
    pub pretty: bool,
    /// The server address as given (for `{host}` in file names).
    pub host: String,
    /// True when several servers run the command (no progress bar, no terminal checks).
    pub fleet: bool,
    /// The entries of `map sync --input`, read once for every host.
    pub entries: Arc<Vec<bpfmap_client::Entry>>,
}

impl Ctx {
    /// Writes a JSON value on its own line.
    pub fn print_json(&self, out: &mut dyn Write, v: &Json) -> Result<(), Failure> {
        writeln!(out, "{}", to_json_text(v, self.pretty))?;
        Ok(())
    }

    /// Silent verbs print nothing, and `null` in JSON mode as `bpftool -j` does.
    fn done(&self, out: &mut dyn Write) -> Result<(), Failure> {
        if self.json {
            writeln!(out, "null")?;
        }
        Ok(())
    }

    fn value(&self, out: &mut dyn Write, key: &[u8], value: &Value) -> Result<(), Failure> {
        if self.json {
            self.print_json(out, &entry_json(key, value))
        } else {
            out.write_all(entry_text(key, value).as_bytes())?;
            Ok(())
        }
    }
}

/// An integer as the daemon stores it: host byte order, in `size` bytes.
pub fn number_bytes(n: u64, size: u32) -> Result<Vec<u8>, Failure> {
    let fits = |max: u64| {
        if n <= max {
            Ok(())
        } else {
            Err(Failure::Remote(bpfmap_client::Error::InvalidInput(
                format!("{n} does not fit in {size} bytes"),
            )))
        }
    };
    Ok(match size {
        1 => fits(u8::MAX.into()).map(|()| vec![n as u8])?,
        2 => fits(u16::MAX.into()).map(|()| (n as u16).to_ne_bytes().to_vec())?,
        4 => fits(u32::MAX.into()).map(|()| (n as u32).to_ne_bytes().to_vec())?,
        8 => n.to_ne_bytes().to_vec(),
        _ => {
            return Err(Failure::Remote(bpfmap_client::Error::InvalidInput(format!(
                "--key-num/--value-num need a 1, 2, 4 or 8 byte key or value; this one has {size} bytes: use hex"
            ))))
        }
    })
}

/// A key as the user gave it: bytes (hex, or a number sized by the map's key size) or
/// typed JSON, which only the daemon can lay out.
#[derive(Debug, Clone)]
pub enum KeyIn {
    /// The key bytes.
    Bytes(Vec<u8>),
    /// Typed JSON text.
    Json(String),
}

impl KeyIn {
    fn data(&self) -> Data {
        match self {
            KeyIn::Bytes(b) => Data::from(b.clone()),
            KeyIn::Json(j) => Data::json(j.clone()),
        }
    }

    /// The key in JSON output: its typed JSON, or bpftool's hex array.
    fn shown(&self) -> Json {
        match self {
            KeyIn::Bytes(b) => hex_json(b),
            KeyIn::Json(j) => serde_json::from_str(j).unwrap_or_else(|_| Json::String(j.clone())),
        }
    }
}

async fn key_in(
    client: &Client,
    map: &MapRef,
    key: &Option<Vec<crate::args::Hex>>,
    num: Option<u64>,
    json: &Option<String>,
) -> Result<Option<KeyIn>, Failure> {
    match (key, num, json) {
        (Some(words), _, _) => Ok(Some(KeyIn::Bytes(concat(words)))),
        (None, Some(n), _) => {
            let info = client.get_map(map).await?;
            Ok(Some(KeyIn::Bytes(number_bytes(n, info.key_size)?)))
        }
        (None, None, Some(j)) => Ok(Some(KeyIn::Json(j.clone()))),
        (None, None, None) => Ok(None),
    }
}

async fn required_key(client: &Client, map: &MapRef, k: &KeyArgs) -> Result<KeyIn, Failure> {
    key_in(client, map, &k.key, k.key_num, &k.key_json)
        .await?
        .ok_or_else(|| {
            Failure::Usage("a key is required: --key HEX, --key-num N or --key-json JSON".into())
        })
}

async fn optional_key(
    client: &Client,
    map: &MapRef,
    k: &OptKeyArgs,
) -> Result<Option<KeyIn>, Failure> {
    key_in(client, map, &k.key, k.key_num, &k.key_json).await
}

/// Whether `--json` output of this map is typed: it has BTF types.
async fn is_typed(client: &Client, map: &MapRef) -> Result<bool, Failure> {
    Ok(!client.get_map(map).await?.value_type.is_empty())
}

fn value_data(v: &ValueArgs) -> Data {
    match (&v.value, v.value_num, &v.value_json) {
        (Some(words), _, _) => Data::from(concat(words)),
        (None, Some(n), _) => Data::Number(n),
        (None, None, Some(j)) => Data::json(j.clone()),
        (None, None, None) => Data::from(Vec::new()),
    }
}

/// Runs one `map` verb against `client`, printing to `out`; returns a one-line summary for
/// the fleet table (empty for most verbs).
pub async fn run(
    client: &Client,
    cmd: &MapCmd,
    ctx: &Ctx,
    out: &mut dyn Write,
) -> Result<String, Failure> {
    match cmd {
        MapCmd::Sync(a) => {
            let report = crate::sync::run(client, a, &ctx.entries, ctx, out).await?;
            return Ok(report.to_string());
        }
        MapCmd::List { all } => {
            let maps = client.list_maps(*all).await?;
            if ctx.json {
                ctx.print_json(out, &Json::Array(maps.iter().map(map_json).collect()))?;
            } else {
                for m in &maps {
                    out.write_all(map_text(m).as_bytes())?;
                }
            }
        }
        MapCmd::Show { map } => show(ctx, out, &client.get_map(map).await?)?,
        MapCmd::Create(a) => {
            let mut req = CreateMap::new(&a.name, a.map_type)
                .key_size(a.key_size)
                .value_size(a.value_size)
                .max_entries(a.entries)
                .flags(a.flags)
                .map_extra(a.map_extra)
                .ephemeral(a.ephemeral);
            if let Some(inner) = &a.inner_map {
                req = req.inner_map(inner);
            }
            if let Some(pin) = &a.pin {
                req = req.pin(pin);
            }
            if let Some(t) = &a.key_type {
                req = req.key_type(t);
            }
            if let Some(t) = &a.value_type {
                req = req.value_type(t);
            }
            show(ctx, out, &client.create_map(req).await?)?;
        }
        MapCmd::Update(a) => update(client, a).await.and_then(|()| ctx.done(out))?,
        MapCmd::Lookup(a) => lookup(client, a, ctx, out).await?,
        MapCmd::Delete { map, key } => {
            let k = required_key(client, map, key).await?;
            client.delete(map, k.data()).await?;
            ctx.done(out)?;
        }
        MapCmd::Getnext { map, key } => {
            let k = optional_key(client, map, key).await?;
            if ctx.json && is_typed(client, map).await? {
                let next = client
                    .get_next_key_json(map, k.as_ref().map(KeyIn::data))
                    .await?;
                let next: Json = serde_json::from_str(&next).unwrap_or(Json::String(next));
                let shown = k.as_ref().map(KeyIn::shown).unwrap_or(Json::Null);
                ctx.print_json(out, &serde_json::json!({"key": shown, "next_key": next}))?;
                return Ok(String::new());
            }
            let bytes = match &k {
                Some(KeyIn::Json(_)) => {
                    return Err(Failure::Usage(
                        "--key-json needs typed output: add --json".into(),
                    ))
                }
                Some(KeyIn::Bytes(b)) => Some(b.clone()),
                None => None,
            };
            let next = client.get_next_key(map, bytes.as_deref()).await?;
            if ctx.json {
                ctx.print_json(out, &next_key_json(bytes.as_deref(), &next))?;
            } else {
                out.write_all(next_key_text(bytes.as_deref(), &next).as_bytes())?;
            }
        }
        MapCmd::Dump(a) => transfer::dump(client, a, ctx, out).await?,
        MapCmd::Load(a) => transfer::load(client, a, ctx, out).await?,
        MapCmd::Push { map, value } => {
            client.push(map, value_data(value)).await?;
            ctx.done(out)?;
        }
        MapCmd::Pop { map } => {
            let v = client.pop(map).await?;
            ctx.value(out, &[], &Value::Single(v))?;
        }
        MapCmd::Peek { map } => {
            let v = client.peek(map).await?;
            ctx.value(out, &[], &Value::Single(v))?;
        }
        MapCmd::Pin { map, path } => {
            client.pin_map(map, path).await?;
            ctx.done(out)?;
        }
        MapCmd::Unpin { path } => {
            client.unpin_map(path).await?;
            ctx.done(out)?;
        }
        MapCmd::Freeze { map } => {
            client.freeze_map(map).await?;
            ctx.done(out)?;
        }
        MapCmd::Rm { map } => {
            client.delete_map(map).await?;
            ctx.done(out)?;
        }
        MapCmd::Events(a) => crate::live::events(client, a, ctx, out).await?,
        MapCmd::Watch(a) => crate::live::watch(client, a, ctx, out).await?,
    }
    Ok(String::new())
}

fn show(ctx: &Ctx, out: &mut dyn Write, info: &bpfmap_client::MapInfo) -> Result<(), Failure> {
    if ctx.json {
        ctx.print_json(out, &map_json(info))
    } else {
        out.write_all(map_text(info).as_bytes())?;
        Ok(())
    }
}

async fn update(client: &Client, a: &UpdateArgs) -> Result<(), Failure> {
    let key = required_key(client, &a.map, &a.key).await?.data();
    let flag = a.flag.flag();
    if let Some(inner) = &a.inner_map {
        client.update_inner_map(&a.map, key, inner, flag).await?;
    } else if let Some(n) = a.value_num {
        if a.lock {
            client
                .update_locked(&a.map, key, Data::Number(n), flag)
                .await?;
        } else {
            client.update(&a.map, key, Data::Number(n), flag).await?;
        }
    } else if let Some(j) = &a.value_json {
        if a.lock {
            client
                .update_locked(&a.map, key, Data::json(j.clone()), flag)
                .await?;
        } else {
            client
                .update(&a.map, key, Data::json(j.clone()), flag)
                .await?;
        }
    } else if !a.cpu_value.is_empty() {
        let values = a.cpu_value.iter().map(|h| h.0.clone());
        client.update_per_cpu(&a.map, key, values, flag).await?;
    } else {
        let v = a.value.as_deref().map(concat).unwrap_or_default();
        if a.lock {
            client.update_locked(&a.map, key, v, flag).await?;
        } else {
            client.update(&a.map, key, v, flag).await?;
        }
    }
    Ok(())
}

async fn lookup(
    client: &Client,
    a: &LookupArgs,
    ctx: &Ctx,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    // Bloom filter test: the value is the element.
    if let Some(j) = &a.value_json {
        if !client.bloom_contains(&a.map, Data::json(j.clone())).await? {
            return Err(not_in_bloom());
        }
        if ctx.json {
            let v: Json = serde_json::from_str(j).unwrap_or(Json::String(j.clone()));
            return ctx.print_json(out, &serde_json::json!({"value": v}));
        }
        writeln!(out, "value: {j}")?;
        return Ok(());
    }
    if a.value.is_some() || a.value_num.is_some() {
        let (data, shown) = match (&a.value, a.value_num) {
            (Some(words), _) => (Data::from(concat(words)), concat(words)),
            (None, Some(n)) => {
                let info = client.get_map(&a.map).await?;
                (Data::Number(n), number_bytes(n, info.value_size)?)
            }
            (None, None) => (Data::from(Vec::new()), Vec::new()),
        };
        if !client.bloom_contains(&a.map, data).await? {
            return Err(not_in_bloom());
        }
        return ctx.value(out, &[], &Value::Single(shown));
    }
    let key = optional_key(client, &a.map, &a.key).await?.ok_or_else(|| {
        Failure::Usage("lookup needs --key (or --value for bloom filters)".into())
    })?;
    if ctx.json && !a.lock && is_typed(client, &a.map).await? {
        let value = client.lookup_json(&a.map, key.data()).await?;
        return ctx.print_json(out, &typed_entry_json(key.shown(), &value));
    }
    let value = if a.lock {
        Value::Single(client.lookup_locked(&a.map, key.data()).await?)
    } else {
        client.lookup_value(&a.map, key.data()).await?
    };
    match &key {
        KeyIn::Bytes(b) => ctx.value(out, b, &value),
        KeyIn::Json(j) if ctx.json => {
            let mut e = entry_json(&[], &value);
            e["key"] = serde_json::from_str(j).unwrap_or(Json::String(j.clone()));
            ctx.print_json(out, &e)
        }
        KeyIn::Json(j) => {
            writeln!(out, "key: {j}")?;
            out.write_all(entry_text(&[], &value).as_bytes())?;
            Ok(())
        }
    }
}

fn not_in_bloom() -> Failure {
    Failure::Remote(bpfmap_client::Error::from(tonic::Status::not_found(
        "value not in the bloom filter (surely absent)",
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_take_the_key_size() {
        assert_eq!(number_bytes(1, 4).ok(), Some(1u32.to_ne_bytes().to_vec()));
        assert_eq!(
            number_bytes(258, 2).ok(),
            Some(258u16.to_ne_bytes().to_vec())
        );
        assert_eq!(number_bytes(7, 8).ok(), Some(7u64.to_ne_bytes().to_vec()));
        assert!(number_bytes(256, 1).is_err());
        assert!(number_bytes(1, 3).is_err());
    }
}
