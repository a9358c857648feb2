//! The daemon's configuration: command-line flags, and the same settings in a TOML file
//! (`--config FILE`, see [`mod@file`]); flags win over the file.

pub mod file;

use std::path::PathBuf;

use clap::{CommandFactory, FromArgMatches, Parser, ValueEnum};

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// bpfmapd: eBPF maps over gRPC.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "bpfmapd",
    version,
    about,
    after_help = "Example:\n  bpfmapd --listen unix:/run/bpfmapd/bpfmapd.sock --listen 127.0.0.1:50051"
)]
pub struct Config {
    /// Read settings from this TOML file: every flag as a key of the same name
    /// (`max-maps = 100`); flags given on the command line win over it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Print the effective configuration (flags and file merged) as TOML and exit.
    #[arg(long)]
    pub print_config: bool,

    /// Where to listen: `unix:/path/to.sock` or `host:port` (TCP, loopback only without TLS).
    /// Repeatable.
    #[arg(
        long = "listen",
        value_name = "ADDR",
        default_value = "unix:/run/bpfmapd/bpfmapd.sock"
    )]
    pub listen: Vec<String>,

    /// bpffs directory where the daemon pins the maps it manages.
    #[arg(long, value_name = "DIR", default_value = "/sys/fs/bpf/bpfmapd")]
    pub bpffs_root: PathBuf,

    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Permission bits of the Unix socket file.
    #[arg(long, value_name = "MODE", default_value = "0660", value_parser = parse_mode)]
    pub socket_mode: u32,

    /// Seconds that in-flight calls get to finish after SIGINT/SIGTERM.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub shutdown_grace: u64,

    /// Group that owns the Unix socket file (with --socket-mode 0660, its members may connect).
    #[arg(long, value_name = "NAME")]
    pub socket_group: Option<String>,

    /// Access policy (TOML). Without it, only uid 0 over the Unix socket may do anything.
    /// Reloaded on SIGHUP and when the file changes.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,

    /// TLS certificate chain (PEM) for TCP listeners.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// TLS private key (PEM) for TCP listeners.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// CA (PEM) whose client certificates are required on TCP (mutual TLS).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,

    /// Largest max_entries a created map may have (0: no limit).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub max_entries_per_map: u32,

    /// Managed maps in total (0: no limit).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub max_maps: usize,

    /// Managed maps one identity may create (0: no limit).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub max_maps_per_identity: usize,

    /// Largest request message in bytes. Decoded messages can take ~50x their wire size
    /// (an empty Entry is 2 bytes on the wire, ~100 in memory), so keep this modest.
    #[arg(long, value_name = "BYTES", default_value_t = 16 << 20)]
    pub max_message_bytes: usize,

    /// Entries in one BatchUpdate message or keys in one BatchDelete (0: no limit); also caps
    /// Dump's batch_size.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub max_batch_entries: usize,

    /// Concurrent streams of one identity: Dump, BatchUpdate, ReadEvents, Watch (0: no limit).
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub max_streams_per_identity: usize,

    /// ReadEvents streams open at once, over all maps (0: no limit).
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub max_event_subscribers: usize,

    /// Bytes of records queued for one ReadEvents subscriber; beyond, a slow subscriber
    /// loses records (counted in Event.lost).
    #[arg(long, value_name = "BYTES", default_value_t = 4 << 20)]
    pub event_queue_bytes: usize,

    /// Watch streams open at once, over all maps (0: no limit).
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub max_watchers: usize,

    /// The shortest interval a Watch may ask for, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 100)]
    pub min_watch_interval_ms: u64,

    /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9464, or 0.0.0.0:9464
    /// for a scraper on another host).
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<String>,
}

impl Config {
    /// Parses the command line, then applies `--config FILE` under it. Usage errors exit
    /// as clap does (status 2); a bad file is an `Err` naming its line.
    pub fn load() -> Result<Config, String> {
        let matches = Config::command().get_matches();
        let mut config = Config::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        if let Some(path) = config.config.clone() {
            file::apply(&mut config, &path, &matches)?;
        }
        config.check()?;
        Ok(config)
    }

    /// What clap checks for flags, checked again after the file is merged.
    pub fn check(&self) -> Result<(), String> {
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err("tls-cert and tls-key must be given together".into());
        }
        if self.tls_client_ca.is_some() && self.tls_cert.is_none() {
            return Err("tls-client-ca needs tls-cert and tls-key".into());
        }
        Ok(())
    }

    /// The configured caps.
    pub fn limits(&self) -> crate::limits::Limits {
        crate::limits::Limits {
            max_entries_per_map: self.max_entries_per_map,
            max_maps: self.max_maps,
            max_maps_per_identity: self.max_maps_per_identity,
            max_batch_entries: self.max_batch_entries,
            max_streams_per_identity: self.max_streams_per_identity,
            events: crate::events::EventLimits {
                max_subscribers: self.max_event_subscribers,
                queue_bytes: self.event_queue_bytes,
                ..Default::default()
            },
            watch: crate::watch::WatchLimits {
                max_watchers: self.max_watchers,
                min_interval: std::time::Duration::from_millis(self.min_watch_interval_ms),
            },
        }
    }
}

fn parse_mode(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s.trim_start_matches("0o"), 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| format!("{s:?} is not an octal file mode such as 0660"))
}
