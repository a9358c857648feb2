//! `bpfmapctl`: a bpftool-like command line for bpfmapd.
//!
//! Exit codes: 0 success; 1 error from the daemon (or the connection, or a file), printed
//! as `Error: <CODE>: <message>`; 2 usage error.

mod args;
mod commands;
mod jsonl;
mod output;
mod parse;
mod progress;
mod transfer;

use std::io::{BufWriter, Write};
use std::process::ExitCode;

use bpfmap_client::{code_name, Address, Client, ConnectOptions, TlsOptions};
use clap::{CommandFactory, Parser};

use args::{Cli, Command, DumpFormat, MapCmd};
use commands::Ctx;

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
fn validate(cli: &Cli, servers: &[String]) -> Result<(), Failure> {
    let fleet = servers.len() > 1;
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
        Address::parse(s).map_err(|e| Failure::Usage(e.to_string()))?;
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

async fn run_host(
    cli: &Cli,
    cmd: &MapCmd,
    addr: &str,
    tls: &Option<TlsOptions>,
    fleet: bool,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    let https = matches!(Address::parse(addr), Ok(Address::Https(_)));
    let opts = ConnectOptions {
        tls: if https { tls.clone() } else { None },
        ..Default::default()
    };
    let client = Client::connect_with(addr, &opts).await?;
    let ctx = Ctx {
        json: cli.json || cli.pretty,
        pretty: cli.pretty,
        host: addr.to_owned(),
        fleet,
    };
    commands::run(&client, cmd, &ctx, out).await
}

async fn run(cli: &Cli, cmd: &MapCmd, servers: &[String]) -> u8 {
    let tls = match tls_options(cli) {
        Ok(t) => t,
        Err(f) => {
            f.report();
            return f.exit_code();
        }
    };
    if let [addr] = servers {
        let stdout = std::io::stdout();
        let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
        let res = run_host(cli, cmd, addr, &tls, false, &mut out).await;
        let flushed = out.flush().map_err(Failure::Output);
        return match res.and(flushed) {
            Ok(()) => 0,
            Err(f) => {
                f.report();
                f.exit_code()
            }
        };
    }
    let runs = servers.iter().map(|addr| {
        let tls = &tls;
        async move {
            let mut buf = Vec::new();
            let res = run_host(cli, cmd, addr, tls, true, &mut buf).await;
            (addr, buf, res)
        }
    });
    let results = futures::future::join_all(runs).await;
    let mut code = 0;
    let mut stdout = std::io::stdout().lock();
    for (addr, buf, res) in results {
        let printed = writeln!(stdout, "== {addr} ==")
            .and_then(|()| stdout.write_all(&buf))
            .and_then(|()| stdout.flush());
        if let Err(e) = printed {
            Failure::Output(e).report();
            return 1;
        }
        if let Err(f) = res {
            f.report();
            code = code.max(f.exit_code());
        }
    }
    code
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
    let servers = if cli.server.is_empty() {
        vec![bpfmap_client::default_address()]
    } else {
        cli.server.clone()
    };
    if let Err(f) = validate(&cli, &servers) {
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
    ExitCode::from(runtime.block_on(run(&cli, cmd, &servers)))
}
