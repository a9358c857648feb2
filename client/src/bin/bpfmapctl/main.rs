//! `bpfmapctl`: a bpftool-like command line for bpfmapd.
//!
//! Exit codes: 0 success; 1 error from the daemon (or the connection, or a file), printed
//! as `Error: <CODE>: <message>`; 2 usage error. With several hosts ([`fleet`]): 1 if any
//! host failed.

mod args;
mod commands;
mod fleet;
mod jsonl;
mod live;
mod output;
mod parse;
mod progress;
mod sync;
mod transfer;

use std::io::{BufWriter, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use bpfmap_client::{code_name, Address, Client, Entry, TlsOptions};
use clap::{CommandFactory, Parser};

use args::{Cli, Command, DumpFormat, MapCmd};
use commands::Ctx;
use fleet::HostSpec;

/// Why a command failed.
#[derive(Debug)]
pub enum Failure {
    /// From the daemon, the connection, or a local file: exit 1.
    Remote(bpfmap_client::Error),
    /// The command line cannot work: exit 2.
    Usage(String),
    /// Writing the output failed (e.g. a closed pipe): exit 1.
    Output(std::io::Error),
}

impl From<bpfmap_client::Error> for Failure {
    fn from(e: bpfmap_client::Error) -> Self {
        Failure::Remote(e)
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::Output(e)
    }
}

impl Failure {
    fn exit_code(&self) -> u8 {
        match self {
            Failure::Usage(_) => 2,
            Failure::Remote(_) | Failure::Output(_) => 1,
        }
    }

    /// Reports a host's failure, naming the host.
    fn report_for(&self, host: &str) {
        match self {
            Failure::Remote(e) => {
                eprintln!("Error: {}: {} ({host})", code_name(e.code()), e.message())
            }
            other => other.report(),
        }
    }

    fn report(&self) {
        match self {
            Failure::Remote(e) => eprintln!("Error: {}: {}", code_name(e.code()), e.message()),
            Failure::Usage(msg) => {
                eprintln!("error: {msg}\n\nFor more information, try '--help'.")
            }
            // A reader that went away (`| head`) needs no message.
            Failure::Output(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
            Failure::Output(e) => eprintln!("Error: cannot write the output: {e}"),
        }
    }
}

/// Checks what clap cannot before anything is sent.
fn validate(cli: &Cli, servers: &[HostSpec], fleet: bool) -> Result<(), Failure> {
    if fleet
        && matches!(
            &cli.command,
            Command::Map(MapCmd::Events(_) | MapCmd::Watch(_))
        )
    {
        return Err(Failure::Usage(
            "map events and map watch follow one server: give one --server".into(),
        ));
    }
    if let Command::Map(cmd) = &cli.command {
        match cmd {
            MapCmd::Dump(d) => {
                if fleet && d.output.as_deref().is_some_and(|o| !o.contains("{host}")) {
                    return Err(Failure::Usage(
                        "with several --server, --output needs {host} in the file name".into(),
                    ));
                }
                if fleet && d.format == DumpFormat::Raw && d.output.is_none() {
                    return Err(Failure::Usage(
                        "with several --server, --format raw needs --output 'FILE-{host}'".into(),
                    ));
                }
            }
            MapCmd::Lookup(l) => {
                let has_key =
                    l.key.key.is_some() || l.key.key_num.is_some() || l.key.key_json.is_some();
                let has_value =
                    l.value.is_some() || l.value_num.is_some() || l.value_json.is_some();
                if !has_key && !has_value {
                    return Err(Failure::Usage(
                        "lookup needs --key HEX or --key-num N (bloom filters: --value)".into(),
                    ));
                }
            }
            _ => {}
        }
    }
    for s in servers {
        Address::parse(&s.addr).map_err(|e| Failure::Usage(e.to_string()))?;
    }
    Ok(())
}

fn tls_options(cli: &Cli) -> Result<Option<TlsOptions>, Failure> {
    if cli.tls_ca.is_none() && cli.tls_cert.is_none() {
        return Ok(None);
    }
    let mut tls = TlsOptions::new();
    if let Some(ca) = &cli.tls_ca {
        tls = tls.ca_file(ca)?;
    }
    if let (Some(cert), Some(key)) = (&cli.tls_cert, &cli.tls_key) {
        tls = tls.identity_files(cert, key)?;
    }
    Ok(Some(tls))
}

fn ctx(cli: &Cli, host: &str, fleet: bool, entries: &Arc<Vec<Entry>>) -> Ctx {
    Ctx {
        json: cli.json || cli.pretty,
        pretty: cli.pretty,
        host: host.to_owned(),
        fleet,
        entries: entries.clone(),
    }
}

/// One host, output straight to stdout (progress bars allowed), no deadline.
async fn run_single(cli: &Cli, cmd: &MapCmd, spec: &HostSpec, entries: &Arc<Vec<Entry>>) -> u8 {
    let res = async {
        let tls = tls_options(cli)?;
        let opts = fleet::options(spec, &tls)?;
        let client = Client::connect_with(&spec.addr, &opts).await?;
        let stdout = std::io::stdout();
        let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
        let res = commands::run(
            &client,
            cmd,
            &ctx(cli, &spec.addr, false, entries),
            &mut out,
        )
        .await;
        let flushed = out.flush().map_err(Failure::Output);
        res.and(flushed)
    }
    .await;
    match res {
        Ok(_) => 0,
        Err(f) => {
            f.report();
            f.exit_code()
        }
    }
}

/// Several hosts through a [`bpfmap_client::Fleet`]: each host's output under a header,
/// then the table; exit 1 if any host failed.
async fn run_fleet(cli: &Cli, cmd: &MapCmd, specs: &[HostSpec], entries: &Arc<Vec<Entry>>) -> u8 {
    let tls = match tls_options(cli) {
        Ok(t) => t,
        Err(f) => {
            f.report();
            return f.exit_code();
        }
    };
    let deadline = (cli.deadline > 0).then(|| Duration::from_secs(cli.deadline));
    let (fleet, broken) = fleet::build(specs, &tls, cli.concurrency, deadline);
    let results = fleet
        .run(|client| async move {
            let mut buf = Vec::new();
            let host = client.address().to_owned();
            let res = commands::run(&client, cmd, &ctx(cli, &host, true, entries), &mut buf).await;
            Ok((buf, res))
        })
        .await;
    let mut rows = Vec::new();
    let mut sections = Vec::new();
    for r in results {
        let (buf, error, detail) = match r.result {
            Ok((buf, Ok(detail))) => (buf, None, detail),
            Ok((buf, Err(f))) => (buf, Some(f), String::new()),
            Err(e) => (Vec::new(), Some(Failure::Remote(e)), String::new()),
        };
        sections.push((r.host.clone(), buf));
        rows.push(fleet::Row {
            host: r.host,
            error,
            elapsed: r.elapsed,
            detail,
        });
    }
    for (host, e) in broken {
        sections.push((host.clone(), Vec::new()));
        rows.push(fleet::Row {
            host,
            error: Some(Failure::Remote(e)),
            elapsed: Duration::ZERO,
            detail: String::new(),
        });
    }
    let mut stdout = std::io::stdout().lock();
    let printed = sections
        .iter()
        .try_for_each(|(host, buf)| {
            writeln!(stdout, "== {host} ==").and_then(|()| stdout.write_all(buf))
        })
        .and_then(|()| writeln!(stdout))
        .and_then(|()| fleet::print_table(&mut stdout, &rows, cli.json || cli.pretty))
        .and_then(|()| stdout.flush());
    if let Err(e) = printed {
        Failure::Output(e).report();
        return 1;
    }
    let mut code = 0;
    for row in &rows {
        if let Some(f) = &row.error {
            f.report_for(&row.host);
            code = code.max(f.exit_code());
        }
    }
    code
}

/// The hosts: every --server, then the --servers-file's; else the default address.
fn hosts(cli: &Cli) -> Result<Vec<HostSpec>, Failure> {
    let mut specs: Vec<HostSpec> = cli
        .server
        .iter()
        .map(|s| HostSpec {
            addr: s.clone(),
            ..HostSpec::default()
        })
        .collect();
    if let Some(path) = &cli.servers_file {
        specs.extend(fleet::read_servers(path)?);
    }
    if specs.is_empty() {
        specs.push(HostSpec {
            addr: bpfmap_client::default_address(),
            ..HostSpec::default()
        });
    }
    Ok(specs)
}

async fn run(cli: &Cli, cmd: &MapCmd, specs: &[HostSpec]) -> u8 {
    let entries = match cmd {
        MapCmd::Sync(a) => match sync::read_entries(&a.input, a.format) {
            Ok(e) => Arc::new(e),
            Err(f) => {
                f.report();
                return f.exit_code();
            }
        },
        _ => Arc::default(),
    };
    match specs {
        [one] if cli.servers_file.is_none() => run_single(cli, cmd, one, &entries).await,
        _ => run_fleet(cli, cmd, specs, &entries).await,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let cmd = match &cli.command {
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "bpfmapctl", &mut script);
            return match std::io::stdout().write_all(&script) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    Failure::Output(e).report();
                    ExitCode::from(1)
                }
            };
        }
        Command::Map(cmd) => cmd,
    };
    let specs = match hosts(&cli) {
        Ok(s) => s,
        Err(f) => {
            f.report();
            return ExitCode::from(f.exit_code());
        }
    };
    let fleet = specs.len() > 1 || cli.servers_file.is_some();
    if let Err(f) = validate(&cli, &specs, fleet) {
        f.report();
        return ExitCode::from(f.exit_code());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build();
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => {
            eprintln!("Error: INTERNAL: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    ExitCode::from(runtime.block_on(run(&cli, cmd, &specs)))
}
