//! bpfmap-bench: bpfmapd against the kernel's floor, bpftool and a bare gRPC service, all
//! measured in the same run on the same machine.
//!
//! ```text
//! scripts/bench.sh [--entries 1000000] [--big 4000000] [--runs 3] [--json PATH] [--smoke]
//! ```
//!
//! Sections: whole-map dumps (1M and 4M entries), bulk loads, unary Lookup/Update under
//! 1/16/64 concurrent callers, and the daemon's peak RSS while serving dumps to a slow reader.
//! Every figure is printed beside its baseline from the same run; the JSON holds every run.
//! Needs root (bpffs mount, BPF maps) and the release binaries next to this one.

#![allow(clippy::print_stdout)]

mod echo;
mod env;
mod kmap;
mod report;
mod unary;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bpfmap_client::{Client, CreateMap, DumpOptions, Entry, Flag, MapRef};
use clap::{Parser, Subcommand, ValueEnum};
use futures::StreamExt;
use serde_json::{json, Value};

use report::{thousands, Role, Row, Section, Table, Target};

/// Entries per dump batch in the floor: what the daemon picks for 12-byte entries.
const DUMP_BATCH: usize = 16384;
/// The slow reader's pause after each dump message.
const SLOW_READER_PAUSE: Duration = Duration::from_millis(10);

#[derive(Debug, Parser)]
#[command(name = "bpfmap-bench", about = "bpfmapd beside its floors, in one run")]
struct Args {
    /// Entries of the main map (dump, load, unary).
    #[arg(long, default_value_t = 1_000_000)]
    entries: u32,
    /// Entries of the big dump map (0: skip the big dump).
    #[arg(long, default_value_t = 4_000_000)]
    big: u32,
    /// Timed runs per row; ratios are taken between the fastest runs. bpftool's rows, the
    /// slowest, run at most twice (once for the big map).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Measured seconds per unary row.
    #[arg(long, default_value_t = 1.5)]
    unary_secs: f64,
    /// HTTP/2 connections the unary callers share (at most one per caller).
    #[arg(long, default_value_t = 4)]
    conns: usize,
    /// Concurrent callers of the unary rows.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 16, 64])]
    callers: Vec<usize>,
    /// Transports of the unary rows.
    #[arg(long, value_delimiter = ',', default_values_t = [String::from("unix"), String::from("tcp")])]
    transports: Vec<String>,
    /// Calls of the unary rows besides the echo floor (lookup, update).
    #[arg(long, value_delimiter = ',', default_values_t = [String::from("lookup"), String::from("update")])]
    calls: Vec<String>,
    /// Where to write the JSON results [default: target/bench/latest.json, smoke.json with --smoke].
    #[arg(long)]
    json: Option<PathBuf>,
    /// A small, quick run (CI's smoke test): 20k/50k entries, one run, short unary rows.
    #[arg(long)]
    smoke: bool,
    /// Skip the bpftool rows (for quick A/B runs of a tuning change).
    #[arg(long, hide = true)]
    skip_peer: bool,
    /// Only these sections.
    #[arg(long, value_delimiter = ',')]
    only: Vec<Part>,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Part {
    Dump,
    Load,
    Unary,
    Rss,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// (internal) Serve the echo floor.
    #[command(hide = true)]
    EchoServer {
        #[arg(long)]
        unix: PathBuf,
        #[arg(long)]
        tcp: SocketAddr,
    },
}

fn main() -> Result<()> {
    let mut args = Args::parse();
    if let Some(Cmd::EchoServer { unix, tcp }) = &args.cmd {
        return echo::serve(unix, *tcp);
    }
    if args.smoke {
        args.entries = args.entries.min(20_000);
        args.big = args.big.min(50_000);
        args.runs = 1;
        args.unary_secs = args.unary_secs.min(0.2);
    }
    if !nix::unistd::geteuid().is_root() {
        bail!("the benchmark needs root: it mounts a bpffs and creates BPF maps");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(args))
}

/// What the sections share.
struct Ctx {
    args: Args,
    fs: env::Bpffs,
    dir: tempfile::TempDir,
    ctl: PathBuf,
    addrs: env::Addrs,
    client: Client,
    /// The main map (`entries`), pinned in the bpffs outside the daemon's root.
    main: bpfmapd::kernel::Map,
    main_pin: PathBuf,
    big: Option<(bpfmapd::kernel::Map, PathBuf)>,
    daemon_pid: u32,
}

impl Ctx {
    fn wants(&self, p: Part) -> bool {
        self.args.only.is_empty() || self.args.only.contains(&p)
    }
}

async fn run(args: Args) -> Result<()> {
    let started = Instant::now();
    let (load_before, rustc_before) = env::load();
    let json_path = args.json.clone().unwrap_or_else(|| {
        PathBuf::from(if args.smoke {
            "target/bench/smoke.json"
        } else {
            "target/bench/latest.json"
        })
    });
    println!(
        "bpfmap-bench: u32 -> u64 hash maps; {} and {} entries; {} run(s) per row, ratios between \
         the fastest runs; \
         {} CPUs; load average {load_before:.2}, {rustc_before} rustc running{}",
        thousands(u64::from(args.entries)),
        thousands(u64::from(args.big)),
        args.runs,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        if args.smoke {
            "; SMOKE run: figures mean nothing"
        } else {
            ""
        }
    );

    let fs = env::Bpffs::new()?;
    let dir = tempfile::Builder::new().prefix("bpfmap-bench-").tempdir()?;
    let (mut daemon, addrs) = env::start_daemon(&fs, dir.path(), "main").await?;
    let client = Client::connect(&addrs.unix).await?;
    // The maps are the daemon's own (made by CreateMap, pinned under its root), as maps
    // made through the service are; they are filled in-process.
    let managed = |name: &'static str, n: u32| {
        let client = client.clone();
        let root = fs.root();
        async move {
            let info = client
                .create_map(CreateMap::hash(
                    name,
                    kmap::KEY as u32,
                    kmap::VALUE as u32,
                    n,
                ))
                .await?;
            let map = bpfmapd::kernel::Map::open_id(info.id)?;
            kmap::fill(&map, n)?;
            anyhow::Ok((map, root.join(name)))
        }
    };
    let (main, main_pin) = managed("bench_main", args.entries).await?;
    let wants = |p: Part| args.only.is_empty() || args.only.contains(&p);
    let big = if args.big > 0 && (wants(Part::Dump) || wants(Part::Rss)) {
        Some(managed("bench_big", args.big).await?)
    } else {
        None
    };
    let ctx = Ctx {
        ctl: env::bin("bpfmapctl", "BPFMAPCTL_BIN")?,
        args,
        fs,
        dir,
        addrs,
        client,
        main,
        main_pin,
        big,
        daemon_pid: daemon.pid(),
    };

    let mut doc = serde_json::Map::new();
    let mut sections: Vec<Section> = Vec::new();
    let mut unary_rows: Vec<UnaryRow> = Vec::new();
    let mut rss: Option<Rss> = None;

    if ctx.wants(Part::Dump) {
        let s = dump_section(&ctx, &ctx.main, &ctx.main_pin, ctx.args.runs).await?;
        s.print();
        sections.push(s);
        if let Some((map, pin)) = &ctx.big {
            let s = dump_section(&ctx, map, pin, ctx.args.runs).await?;
            s.print();
            sections.push(s);
        }
    }
    if ctx.wants(Part::Load) {
        let s = load_section(&ctx).await?;
        s.print();
        sections.push(s);
    }
    if ctx.wants(Part::Unary) {
        unary_rows = unary_section(&ctx).await?;
    }
    daemon.check_alive()?;
    let daemon_log = daemon.log.clone();
    drop(daemon);
    if ctx.wants(Part::Rss) {
        let r = rss_section(&ctx).await?;
        r.print();
        rss = Some(r);
    }

    let targets = targets(&ctx, &sections, &unary_rows, rss.as_ref());
    report::print_targets(&targets);

    let (load_after, rustc_after) = env::load();
    let total = started.elapsed().as_secs_f64();
    doc.insert(
        "meta".into(),
        json!({
            "entries": ctx.args.entries,
            "big": ctx.args.big,
            "runs": ctx.args.runs,
            "unary_secs": ctx.args.unary_secs,
            "conns": ctx.args.conns,
            "smoke": ctx.args.smoke,
            "cpus": std::thread::available_parallelism().map_or(0, |n| n.get()),
            "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim(),
            "loadavg_start": load_before,
            "loadavg_end": load_after,
            "rustc_running_start": rustc_before,
            "rustc_running_end": rustc_after,
            "total_s": total,
            "unix_epoch_s": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        }),
    );
    for s in &sections {
        doc.insert(s.key.clone(), s.json());
    }
    doc.insert(
        "unary".into(),
        Value::Array(unary_rows.iter().map(UnaryRow::json).collect()),
    );
    if let Some(r) = &rss {
        doc.insert("rss".into(), r.json());
    }
    doc.insert("targets".into(), report::targets_json(&targets));
    if let Some(parent) = json_path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(
        &json_path,
        serde_json::to_string_pretty(&Value::Object(doc))?,
    )
    .with_context(|| format!("writing {}", json_path.display()))?;
    println!(
        "\n{:.0} s in all; load average {load_after:.2} at the end, {rustc_after} rustc running; \
         JSON: {}; daemon log: {}",
        total,
        json_path.display(),
        daemon_log.display()
    );
    drop(ctx.big);
    let _ = std::fs::remove_file(&ctx.main_pin);
    Ok(())
}

/// Runs a command with stdout to /dev/null; fails with its stderr.
fn run_quiet(cmd: &mut Command) -> Result<()> {
    let out = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

fn timed_cmd(cmd: &mut Command) -> Result<f64> {
    let t = Instant::now();
    run_quiet(cmd)?;
    Ok(t.elapsed().as_secs_f64())
}

async fn client_dump(client: &Client, id: u32) -> Result<(f64, u64)> {
    let t = Instant::now();
    let mut batches = client
        .dump_batches(MapRef::Id(id), DumpOptions::default())
        .await?;
    let mut n = 0u64;
    while let Some(b) = batches.next().await {
        n += b?.len() as u64;
    }
    Ok((t.elapsed().as_secs_f64(), n))
}

const ROW_FLOOR_DUMP: &str = "kernel batch lookup, in-process";
const ROW_BPFTOOL_DUMP: &str = "bpftool map dump > /dev/null";
const ROW_UNIX_DUMP: &str = "client library packed dump, unix socket";
const ROW_TCP_DUMP: &str = "client library packed dump, TCP loopback";
const ROW_CTL_DUMP: &str = "bpfmapctl map dump > /dev/null (unix)";

async fn dump_section(
    ctx: &Ctx,
    map: &bpfmapd::kernel::Map,
    pin: &Path,
    runs: usize,
) -> Result<Section> {
    let n = u64::from(map.max_entries);
    let tcp = Client::connect(&ctx.addrs.tcp).await?;
    let names = [
        (ROW_FLOOR_DUMP, Role::Floor),
        (ROW_BPFTOOL_DUMP, Role::Peer),
        (ROW_UNIX_DUMP, Role::Ours),
        (ROW_TCP_DUMP, Role::Ours),
        (ROW_CTL_DUMP, Role::Ours),
    ];
    let mut rows: Vec<Row> = names
        .iter()
        .map(|(name, role)| Row {
            name: (*name).into(),
            role: *role,
            runs: Vec::new(),
            daemon_cpu: Vec::new(),
        })
        .collect();
    // Round robin, so that drift in the machine's load touches every row alike.
    let peer_runs = if map.max_entries > ctx.args.entries {
        1
    } else {
        runs.min(2)
    };
    for run in 0..runs {
        let cpu = unary::cpu_secs(std::process::id());
        let (t, c) = kmap::timed(|| kmap::lookup_all(map, DUMP_BATCH))?;
        kmap::expect_count(ROW_FLOOR_DUMP, c, n)?;
        rows[0].push(t, unary::cpu_secs(std::process::id()) - cpu);
        if !ctx.args.skip_peer && run < peer_runs {
            rows[1].runs.push(timed_cmd(
                Command::new("bpftool")
                    .args(["map", "dump", "pinned"])
                    .arg(pin),
            )?);
        }
        let cpu = unary::cpu_secs(ctx.daemon_pid);
        let (t, c) = client_dump(&ctx.client, map.id).await?;
        kmap::expect_count(ROW_UNIX_DUMP, c, n)?;
        rows[2].push(t, unary::cpu_secs(ctx.daemon_pid) - cpu);
        let cpu = unary::cpu_secs(ctx.daemon_pid);
        let (t, c) = client_dump(&tcp, map.id).await?;
        kmap::expect_count(ROW_TCP_DUMP, c, n)?;
        rows[3].push(t, unary::cpu_secs(ctx.daemon_pid) - cpu);
        let cpu = unary::cpu_secs(ctx.daemon_pid);
        let t = timed_cmd(Command::new(&ctx.ctl).args([
            "-s",
            &ctx.addrs.unix,
            "map",
            "dump",
            &format!("id:{}", map.id),
        ]))?;
        rows[4].push(t, unary::cpu_secs(ctx.daemon_pid) - cpu);
    }
    Ok(Section {
        title: format!("Dump {} entries (u32 -> u64 hash)", thousands(n)),
        key: format!("dump_{n}"),
        entries: n,
        rows,
    })
}

const ROW_FLOOR_LOAD: &str = "kernel batch update, in-process";
const ROW_BPFTOOL_LOAD: &str = "bpftool batch file (map update lines)";
const ROW_LIB_LOAD: &str = "client library BatchUpdate, unix socket";
const ROW_CTL_LOAD: &str = "bpfmapctl map load (raw snapshot, unix)";

async fn load_section(ctx: &Ctx) -> Result<Section> {
    let n = ctx.args.entries;
    let (keys, values) = kmap::packed(n);
    let client = &ctx.client;
    // bpftool's input: one `map update` line per entry, for a map pinned at a fixed path.
    let tool_name = "bench_load_tool";
    let tool_pin = ctx.fs.root().join(tool_name);
    let batch_file = ctx.dir.path().join("bpftool-batch.txt");
    {
        use std::fmt::Write as _;
        let mut text = String::with_capacity(n as usize * 120);
        let pin = tool_pin.display().to_string();
        for i in 0..n {
            let _ = write!(text, "map update pinned {pin} key hex");
            for b in kmap::key(i) {
                let _ = write!(text, " {b:02x}");
            }
            text.push_str(" value hex");
            for b in kmap::value(i) {
                let _ = write!(text, " {b:02x}");
            }
            text.push('\n');
        }
        std::fs::write(&batch_file, text)?;
    }
    // bpfmapctl's input: a raw snapshot.
    let snapshot = ctx.dir.path().join("load.bin");
    {
        use bpfmap_client::snapshot::Header;
        let header = Header {
            layout: bpfmap_client::Layout {
                key_size: kmap::KEY as u32,
                value_size: kmap::VALUE as u32,
                cpus: None,
            },
            map_type: 1,
            count: u64::from(n),
        };
        let mut bytes = header.to_bytes().to_vec();
        bytes.reserve(keys.len() + values.len());
        for i in 0..n as usize {
            bytes.extend_from_slice(&keys[i * kmap::KEY..(i + 1) * kmap::KEY]);
            bytes.extend_from_slice(&values[i * kmap::VALUE..(i + 1) * kmap::VALUE]);
        }
        std::fs::write(&snapshot, bytes)?;
    }

    let mut rows: Vec<Row> = [
        (ROW_FLOOR_LOAD, Role::Floor),
        (ROW_BPFTOOL_LOAD, Role::Peer),
        (ROW_LIB_LOAD, Role::Ours),
        (ROW_CTL_LOAD, Role::Ours),
    ]
    .iter()
    .map(|(name, role)| Row {
        name: (*name).into(),
        role: *role,
        runs: Vec::new(),
        daemon_cpu: Vec::new(),
    })
    .collect();
    let fresh = |name: &'static str| async move {
        let info = client
            .create_map(CreateMap::hash(
                name,
                kmap::KEY as u32,
                kmap::VALUE as u32,
                n,
            ))
            .await?;
        anyhow::Ok(info.id)
    };
    let check = |id: u32, what: &str| -> Result<()> {
        let m = bpfmapd::kernel::Map::open_id(id)?;
        kmap::expect_count(what, kmap::lookup_all(&m, DUMP_BATCH)?, u64::from(n))
    };
    for run in 0..ctx.args.runs {
        // Floor: a fresh map of the same size, filled in-process.
        let m = kmap::create("bench_load_flr", n)?;
        let cpu = unary::cpu_secs(std::process::id());
        let (t, _) = kmap::timed(|| kmap::update_all(&m, &keys, &values, kmap::FLOOR_BATCH))?;
        let cpu = unary::cpu_secs(std::process::id()) - cpu;
        kmap::expect_count(
            ROW_FLOOR_LOAD,
            kmap::lookup_all(&m, DUMP_BATCH)?,
            u64::from(n),
        )?;
        rows[0].push(t, cpu);
        drop(m);

        if !ctx.args.skip_peer && run < 2 {
            let id = fresh(tool_name).await?;
            rows[1].runs.push(timed_cmd(
                Command::new("bpftool")
                    .args(["batch", "file"])
                    .arg(&batch_file),
            )?);
            check(id, ROW_BPFTOOL_LOAD)?;
            client.delete_map(MapRef::Id(id)).await?;
        }

        let id = fresh("bench_load_lib").await?;
        let cpu = unary::cpu_secs(ctx.daemon_pid);
        let t = Instant::now();
        let updated = client
            .batch_update(
                MapRef::Id(id),
                (0..n).map(|i| Entry::new(kmap::key(i), kmap::value(i))),
                Flag::Any,
            )
            .await?;
        rows[2].push(
            t.elapsed().as_secs_f64(),
            unary::cpu_secs(ctx.daemon_pid) - cpu,
        );
        kmap::expect_count(ROW_LIB_LOAD, updated, u64::from(n))?;
        check(id, ROW_LIB_LOAD)?;
        client.delete_map(MapRef::Id(id)).await?;

        let id = fresh("bench_load_ctl").await?;
        let cpu = unary::cpu_secs(ctx.daemon_pid);
        let t = timed_cmd(
            Command::new(&ctx.ctl)
                .args(["-s", &ctx.addrs.unix, "map", "load", &format!("id:{id}")])
                .arg("--input")
                .arg(&snapshot),
        )?;
        rows[3].push(t, unary::cpu_secs(ctx.daemon_pid) - cpu);
        check(id, ROW_CTL_LOAD)?;
        client.delete_map(MapRef::Id(id)).await?;
    }
    let _ = std::fs::remove_file(&batch_file);
    Ok(Section {
        title: format!(
            "Bulk load {} entries into an empty u32 -> u64 hash",
            thousands(u64::from(n))
        ),
        key: format!("load_{n}"),
        entries: u64::from(n),
        rows,
    })
}

#[derive(Debug, Clone)]
struct UnaryRow {
    call: unary::Call,
    transport: &'static str,
    callers: usize,
    conns: usize,
    stats: Option<unary::Stats>,
    note: Option<String>,
    echo: Option<unary::Stats>,
}

impl UnaryRow {
    fn json(&self) -> Value {
        json!({
            "call": self.call.name(),
            "transport": self.transport,
            "callers": self.callers,
            "conns": self.conns,
            "stats": self.stats.map(|s| s.json()),
            "note": self.note,
            "echo_calls_per_s": self.echo.map(|e| e.rate),
            "vs_echo": match (self.stats, self.echo) {
                (Some(s), Some(e)) => Some(s.rate / e.rate),
                _ => None,
            },
        })
    }
}

async fn unary_section(ctx: &Ctx) -> Result<Vec<UnaryRow>> {
    use unary::Call;
    let n = ctx.args.entries;
    let secs = Duration::from_secs_f64(ctx.args.unary_secs);
    let warm = Duration::from_secs_f64((ctx.args.unary_secs / 5.0).min(0.3));
    let (mut echo_proc, echo_addrs) = env::start_echo(ctx.dir.path()).await?;
    // Updates go to their own map, so that the dumps' map stays as it is.
    let upd_keys = 65_536u32.min(n);
    let upd = ctx
        .client
        .create_map(CreateMap::hash(
            "bench_update",
            kmap::KEY as u32,
            kmap::VALUE as u32,
            upd_keys,
        ))
        .await?;
    let upd_map = bpfmapd::kernel::Map::open_id(upd.id)?;
    {
        let (k, v) = kmap::packed(upd_keys);
        kmap::update_all(&upd_map, &k, &v, kmap::FLOOR_BATCH)?;
    }
    let raw_lookup = unary::raw(&ctx.main, false, n, secs)?;
    let raw_update = unary::raw(&upd_map, true, upd_keys, secs)?;

    // TCP callers may be read-only (anonymous): find out once.
    let tcp_client = Client::connect(&ctx.addrs.tcp).await?;
    let tcp_write = match tcp_client
        .update(
            MapRef::Id(upd.id),
            &kmap::key(0)[..],
            &kmap::value(0)[..],
            Flag::Any,
        )
        .await
    {
        Ok(()) => None,
        Err(e) => Some(format!("not allowed over TCP: {e}")),
    };

    let mut rows = Vec::new();
    for (transport, addr, echo_addr) in [
        ("unix", &ctx.addrs.unix, &echo_addrs.unix),
        ("tcp", &ctx.addrs.tcp, &echo_addrs.tcp),
    ] {
        if !ctx.args.transports.iter().any(|t| t == transport) {
            continue;
        }
        for &callers in &ctx.args.callers {
            let conns = ctx.args.conns.clamp(1, callers);
            let echo = unary::run(
                Call::Echo,
                echo_proc.pid(),
                echo_addr,
                callers,
                conns,
                warm,
                secs,
                0,
                0,
            )
            .await?;
            rows.push(UnaryRow {
                call: Call::Echo,
                transport,
                callers,
                conns,
                stats: Some(echo),
                note: None,
                echo: Some(echo),
            });
            for (call, id, keys) in [
                (Call::Lookup, ctx.main.id, n),
                (Call::Update, upd.id, upd_keys),
            ] {
                if !ctx
                    .args
                    .calls
                    .iter()
                    .any(|c| c.eq_ignore_ascii_case(call.name()))
                {
                    continue;
                }
                let (stats, note) =
                    if call == Call::Update && transport == "tcp" && tcp_write.is_some() {
                        (None, tcp_write.clone())
                    } else {
                        (
                            Some(
                                unary::run(
                                    call,
                                    ctx.daemon_pid,
                                    addr,
                                    callers,
                                    conns,
                                    warm,
                                    secs,
                                    id,
                                    keys,
                                )
                                .await?,
                            ),
                            None,
                        )
                    };
                rows.push(UnaryRow {
                    call,
                    transport,
                    callers,
                    conns,
                    stats,
                    note,
                    echo: Some(echo),
                });
            }
        }
    }
    echo_proc.check_alive()?;
    drop(echo_proc);
    ctx.client.delete_map(MapRef::Id(upd.id)).await?;

    println!(
        "\nUnary calls on a {}-entry map, {:.1} s measured per row (after {:.1} s of warm-up)",
        thousands(u64::from(n)),
        secs.as_secs_f64(),
        warm.as_secs_f64()
    );
    let mut t = Table::new(&[
        "call",
        "transport",
        "callers",
        "conns",
        "calls/s",
        "p50 µs",
        "p99 µs",
        "vs echo",
        "server CPU µs/call",
        "x raw syscall p50",
    ]);
    for r in &rows {
        let raw = match r.call {
            Call::Update => Some(raw_update),
            Call::Lookup => Some(raw_lookup),
            Call::Echo => None,
        };
        let mut cells = vec![
            r.call.name().to_owned(),
            r.transport.to_owned(),
            r.callers.to_string(),
            r.conns.to_string(),
        ];
        match r.stats {
            Some(s) => cells.extend([
                format!("{:.0}", s.rate),
                format!("{:.1}", s.p50_us),
                format!("{:.1}", s.p99_us),
                r.echo
                    .map_or("-".into(), |e| format!("{:.0}%", 100.0 * s.rate / e.rate)),
                format!("{:.1}", s.server_cpu_us),
                raw.map_or("-".into(), |raw| format!("{:.0}x", s.p50_us / raw.p50_us)),
            ]),
            None => cells.extend(["n/a (1)".to_owned()]),
        }
        t.row(cells);
    }
    let notes: Vec<&String> = rows.iter().filter_map(|r| r.note.as_ref()).collect();
    for (name, s) in [
        ("raw lookup syscall (in-process, 1 thread)", raw_lookup),
        ("raw update syscall (in-process, 1 thread)", raw_update),
    ] {
        t.row(vec![
            name.into(),
            "-".into(),
            "1".into(),
            "-".into(),
            format!("{:.0}", s.rate),
            format!("{:.2}", s.p50_us),
            format!("{:.2}", s.p99_us),
        ]);
    }
    t.print();
    if let Some(note) = notes.first() {
        println!("  (1) {note}");
    }
    rows.push(UnaryRow {
        call: Call::Lookup,
        transport: "raw syscall",
        callers: 1,
        conns: 0,
        stats: Some(raw_lookup),
        note: None,
        echo: None,
    });
    rows.push(UnaryRow {
        call: Call::Update,
        transport: "raw syscall",
        callers: 1,
        conns: 0,
        stats: Some(raw_update),
        note: None,
        echo: None,
    });
    Ok(rows)
}

#[derive(Debug, Clone)]
struct Rss {
    /// (entries, idle VmRSS KiB, VmHWM KiB, seconds of the slow dump)
    runs: Vec<(u64, u64, u64, f64)>,
}

impl Rss {
    fn print(&self) {
        println!(
            "\nDaemon memory: a fresh bpfmapd serves one dump (unix socket, default batch) to a \
             reader that pauses {} ms after each message",
            SLOW_READER_PAUSE.as_millis()
        );
        let mut t = Table::new(&[
            "map",
            "idle VmRSS MiB",
            "peak VmHWM MiB",
            "dump s",
            "peak / first peak",
        ]);
        let first = self.runs.first().map_or(1, |r| r.2);
        for (n, idle, peak, secs) in &self.runs {
            t.row(vec![
                format!("{} entries", thousands(*n)),
                format!("{:.1}", *idle as f64 / 1024.0),
                format!("{:.1}", *peak as f64 / 1024.0),
                format!("{secs:.2}"),
                format!("{:.2}x", *peak as f64 / first as f64),
            ]);
        }
        t.print();
    }

    fn json(&self) -> Value {
        Value::Array(
            self.runs
                .iter()
                .map(|(n, idle, peak, secs)| {
                    json!({"entries": n, "idle_vmrss_kib": idle, "peak_vmhwm_kib": peak, "dump_s": secs})
                })
                .collect(),
        )
    }

    fn ratio(&self) -> Option<f64> {
        match self.runs.as_slice() {
            [a, b, ..] => Some(b.2 as f64 / a.2 as f64),
            _ => None,
        }
    }
}

async fn rss_section(ctx: &Ctx) -> Result<Rss> {
    let mut maps = vec![&ctx.main];
    if let Some((m, _)) = &ctx.big {
        maps.push(m);
    }
    let mut runs = Vec::new();
    for (i, map) in maps.into_iter().enumerate() {
        let (mut d, addrs) = env::start_daemon(&ctx.fs, ctx.dir.path(), &format!("rss{i}")).await?;
        let client = Client::connect(&addrs.unix).await?;
        let idle = env::status_kib(d.pid(), "VmRSS")?;
        let t = Instant::now();
        let mut batches = client
            .dump_batches(MapRef::Id(map.id), DumpOptions::default())
            .await?;
        let mut n = 0u64;
        while let Some(b) = batches.next().await {
            n += b?.len() as u64;
            tokio::time::sleep(SLOW_READER_PAUSE).await;
        }
        let secs = t.elapsed().as_secs_f64();
        kmap::expect_count("slow dump", n, u64::from(map.max_entries))?;
        let peak = env::status_kib(d.pid(), "VmHWM")?;
        d.check_alive()?;
        runs.push((n, idle, peak, secs));
    }
    Ok(Rss { runs })
}

fn targets(ctx: &Ctx, sections: &[Section], unary: &[UnaryRow], rss: Option<&Rss>) -> Vec<Target> {
    let mut out = Vec::new();
    for s in sections.iter().filter(|s| s.key.starts_with("dump_")) {
        for row in [ROW_UNIX_DUMP, ROW_TCP_DUMP] {
            let (Some(t), Some(peer), Some(floor)) = (s.time_of(row), s.peer(), s.floor()) else {
                continue;
            };
            let short = if row == ROW_UNIX_DUMP { "unix" } else { "TCP" };
            out.push(Target {
                what: format!(
                    "dump {} ({short}) >= 4x faster than bpftool",
                    thousands(s.entries)
                ),
                measured: format!("{:.1}x", peer / t),
                met: Some(peer / t >= 4.0),
            });
            out.push(Target {
                what: format!(
                    "dump {} ({short}) <= 2x the kernel floor",
                    thousands(s.entries)
                ),
                measured: format!("{:.2}x", t / floor),
                met: Some(t / floor <= 2.0),
            });
        }
    }
    for s in sections.iter().filter(|s| s.key.starts_with("load_")) {
        let (Some(t), Some(peer), Some(floor)) = (s.time_of(ROW_LIB_LOAD), s.peer(), s.floor())
        else {
            continue;
        };
        out.push(Target {
            what: format!(
                "bulk load {} >= 5x faster than bpftool batch",
                thousands(s.entries)
            ),
            measured: format!("{:.1}x", peer / t),
            met: Some(peer / t >= 5.0),
        });
        out.push(Target {
            what: format!("bulk load {} <= 2x the kernel floor", thousands(s.entries)),
            measured: format!("{:.2}x", t / floor),
            met: Some(t / floor <= 2.0),
        });
    }
    for r in unary
        .iter()
        .filter(|r| r.call == unary::Call::Lookup && r.callers == 16 && r.conns > 0)
    {
        let (Some(s), Some(e)) = (r.stats, r.echo) else {
            continue;
        };
        out.push(Target {
            what: format!("Lookup at 16 callers ({}) >= 70% of echo", r.transport),
            measured: format!("{:.0}%", 100.0 * s.rate / e.rate),
            met: Some(s.rate / e.rate >= 0.7),
        });
        out.push(Target {
            what: format!("Lookup at 16 callers ({}) p99 < 1 ms", r.transport),
            measured: format!("{:.0} µs", s.p99_us),
            met: Some(s.p99_us < 1000.0),
        });
    }
    if let Some(ratio) = rss.and_then(Rss::ratio) {
        out.push(Target {
            what: format!(
                "daemon peak RSS, {} dump <= 1.2x the {} dump's",
                thousands(u64::from(ctx.args.big)),
                thousands(u64::from(ctx.args.entries))
            ),
            measured: format!("{ratio:.2}x"),
            met: Some(ratio <= 1.2),
        });
    }
    out
}
