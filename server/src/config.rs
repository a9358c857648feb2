//! Command-line configuration of the daemon.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

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
}

fn parse_mode(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s.trim_start_matches("0o"), 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| format!("{s:?} is not an octal file mode such as 0660"))
}
