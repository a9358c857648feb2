//! The `bpfmapd` binary: parse flags, set up logging and the bpffs root, adopt pinned maps,
//! serve.

use std::process::ExitCode;
use std::sync::Arc;

use bpfmapd::auth::Authorizer;
use bpfmapd::config::{Config, LogFormat};
use bpfmapd::metrics::Metrics;
use bpfmapd::registry::Registry;
use bpfmapd::transport::Parts;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let config = match Config::load() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("bpfmapd: error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if config.print_config {
        print!("{}", bpfmapd::config::file::render(&config));
        return ExitCode::SUCCESS;
    }
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    match config.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bpfmapd: error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("bpfmapd: error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> Result<(), String> {
    let listen =
        bpfmapd::transport::parse_listen(&config.listen, config.tls_cert.is_some()).await?;
    let metrics = Arc::new(Metrics::new());
    let auth = Arc::new(
        Authorizer::new(config.policy.clone(), config.bpffs_root.clone())?
            .with_metrics(metrics.clone()),
    );
    bpfmapd::kernel::ensure_bpffs_dir(&config.bpffs_root)?;
    let registry = Arc::new(Registry::open(&config.bpffs_root).map_err(|e| e.to_string())?);
    auth.clone().watch(std::time::Duration::from_secs(1));
    bpfmapd::transport::serve(
        &config,
        listen,
        Parts {
            registry,
            auth,
            metrics,
        },
    )
    .await
}
