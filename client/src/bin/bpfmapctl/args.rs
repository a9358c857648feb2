//! The command line of `bpfmapctl` (clap derive), and the parsers of its values.

use std::path::PathBuf;

use bpfmap_client::{MapRef, MapType};
use clap::{Args, Parser, Subcommand, ValueEnum};

pub use crate::parse::{concat, parse_hex, parse_map_ref, parse_type, parse_u32, parse_u64, Hex};

/// Manage eBPF maps through bpfmapd, the way bpftool does locally.
#[derive(Debug, Parser)]
#[command(
    name = "bpfmapctl",
    version,
    propagate_version = true,
    after_help = "Examples:\n  bpfmapctl map list\n  bpfmapctl --server unix:/run/bpfmapd/bpfmapd.sock map dump stats_map\n  bpfmapctl -s node1:50051 -s node2:50051 --json map show id:12\n\nMAP is id:N, pin:PATH, name:NAME, or a bare name."
)]
pub struct Cli {
    /// Daemon address: unix:/path, http://host:port, https://host:port or host:port.
    /// Repeat to run the command on several hosts at once. Default: $BPFMAP_SERVER, else
    /// unix:/run/bpfmapd/bpfmapd.sock.
    #[arg(
        long,
        short = 's',
        global = true,
        help_heading = "Global options",
        value_name = "ADDR"
    )]
    pub server: Vec<String>,
    /// A file of hosts, one per line: ADDR [ca=FILE] [cert=FILE] [key=FILE] [domain=NAME]
    /// (each host's own TLS identity; `#` comments). Adds to --server.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_name = "FILE"
    )]
    pub servers_file: Option<PathBuf>,
    /// With several hosts: how many run at once.
    #[arg(long, global = true, help_heading = "Global options", value_name = "N",
          default_value_t = bpfmap_client::fleet::DEFAULT_CONCURRENCY)]
    pub concurrency: usize,
    /// With several hosts: seconds each host gets (connecting included; 0: no limit).
    #[arg(long, global = true, help_heading = "Global options", value_name = "SECS",
          default_value_t = bpfmap_client::fleet::DEFAULT_DEADLINE.as_secs())]
    pub deadline: u64,
    /// JSON output, as `bpftool -j`.
    #[arg(long, short = 'j', global = true, help_heading = "Global options")]
    pub json: bool,
    /// Pretty-printed JSON output (implies --json), as `bpftool -p`.
    #[arg(long, short = 'p', global = true, help_heading = "Global options")]
    pub pretty: bool,
    /// CA certificate (PEM) for https:// servers.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_name = "FILE",
        env = "BPFMAP_TLS_CA"
    )]
    pub tls_ca: Option<PathBuf>,
    /// Client certificate (PEM) for https:// servers that ask for one.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_name = "FILE",
        env = "BPFMAP_TLS_CERT",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,
    /// Client private key (PEM), with --tls-cert.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_name = "FILE",
        env = "BPFMAP_TLS_KEY",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
// Parsed once per run: the size of a variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Inspect and change maps.
    #[command(subcommand)]
    Map(MapCmd),
    /// Print a shell completion script.
    #[command(
        after_help = "Example:\n  bpfmapctl completions bash > /etc/bash_completion.d/bpfmapctl"
    )]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// `map` verbs.
#[derive(Debug, Subcommand)]
pub enum MapCmd {
    /// List the daemon's maps (with --all: every map on the host).
    #[command(after_help = "Example:\n  bpfmapctl map list --all")]
    List {
        /// Every map on the host, not only the daemon's.
        #[arg(long, short)]
        all: bool,
    },
    /// Describe one map.
    #[command(after_help = "Example:\n  bpfmapctl map show name:stats_map")]
    Show {
        /// The map: id:N, pin:PATH, name:NAME or a bare name.
        #[arg(value_parser = parse_map_ref)]
        map: MapRef,
    },
    /// Create a map (pinned under the daemon's root unless --ephemeral).
    #[command(
        after_help = "Examples:\n  bpfmapctl map create stats_map --type hash --key-size 2 --value-size 2 --entries 8\n  bpfmapctl map create jobs --type queue --value-size 4 --entries 64 --ephemeral\n  bpfmapctl map create flows --type hash --entries 1024 \\\n    --key-type 'struct flow { __u32 saddr; __u32 daddr; __u16 sport; __u16 dport; }' \\\n    --value-type 'struct stats { __u64 packets; __u64 bytes; char comm[16]; }'"
    )]
    Create(CreateArgs),
    /// Create or replace one element.
    #[command(
        after_help = "Examples:\n  bpfmapctl map update stats_map --key c1 c2 --value a1 a2\n  bpfmapctl map update id:12 --key-num 1 --value-num 42 --noexist\n  bpfmapctl map update flows --key-json '{\"saddr\":1,\"daddr\":2,\"sport\":53,\"dport\":99}' \\\n    --value-json '{\"packets\":1,\"bytes\":60,\"comm\":\"dig\"}'"
    )]
    Update(UpdateArgs),
    /// Look up one element (bloom filters: test --value).
    #[command(
        after_help = "Examples:\n  bpfmapctl map lookup stats_map --key c1 c2\n  bpfmapctl --json map lookup flows --key-json '{\"saddr\":1,\"daddr\":2,\"sport\":53,\"dport\":99}'"
    )]
    Lookup(LookupArgs),
    /// Delete one element.
    #[command(after_help = "Example:\n  bpfmapctl map delete stats_map --key c1 c2")]
    Delete {
        /// The map.
        #[arg(value_parser = parse_map_ref)]
        map: MapRef,
        #[command(flatten)]
        key: KeyArgs,
    },
    /// Print the key after --key (without --key: the first key).
    #[command(after_help = "Example:\n  bpfmapctl map getnext stats_map --key c1 c2")]
    Getnext {
        /// The map.
        #[arg(value_parser = parse_map_ref)]
        map: MapRef,
        #[command(flatten)]
        key: OptKeyArgs,
    },
    /// Print every element, or save them to a file.
    #[command(
        after_help = "Examples:\n  bpfmapctl map dump stats_map\n  bpfmapctl map dump stats_map --format raw --output stats.bin\n  bpfmapctl -s a:50051 -s b:50051 map dump stats_map --format json --output 'stats-{host}.jsonl'"
    )]
    Dump(DumpArgs),
    /// Write the elements of a file made by `map dump --format json|raw` into a map.
    #[command(after_help = "Example:\n  bpfmapctl map load stats_copy --input stats.bin")]
    Load(LoadArgs),
    /// Make the map hold exactly the entries of a file (desired state): insert what is
    /// missing, update what differs, with --prune delete what the file lacks; report the
    /// changes per host. Running it again changes nothing.
    #[command(
        after_help = "Examples:\n  bpfmapctl map sync allow_list --input allow.jsonl --prune\n  bpfmapctl --servers-file fleet.txt map sync pin:allow_list --input allow.jsonl --dry-run"
    )]
    Sync(SyncArgs),
    /// Push a value onto a queue or stack (bloom filters: add it).
    #[command(after_help = "Example:\n  bpfmapctl map push jobs --value 01 00 00 00")]
    Push {
        /// The map.
        #[arg(value_parser = parse_map_ref)]
        map: MapRef,
        #[command(flatten)]
        value: ValueArgs,
    },
    /// Pop the next value of a queue or stack.
    #[command(after_help = "Example:\n  bpfmapctl map pop jobs")]
    Pop {
        /// The map.
        #[arg(value_parser = parse_map_ref)]
        map: MapRef,
    },
    /// Print the next value of a queue or stack without removing it.
    #[command(after_help = "Example:\n  bpfmapctl map peek jobs")]
    Peek {
        /// The map.
        #[arg(value_parser = parse_map_ref)]
        map: MapRef,
    },
    /// Pin a map at another path (relative paths are under the daemon's root).
    #[command(after_help = "Example:\n  bpfmapctl map pin name:stats_map backup/stats")]
    Pin {
        /// The map.
        #[arg(value_parser = parse_map_ref)]
        map: MapRef,
        /// The new pin path.
        path: String,
    },
    /// Remove a pin.
    #[command(after_help = "Example:\n  bpfmapctl map unpin backup/stats")]
    Unpin {
        /// The pin path.
        path: String,
    },
    /// Freeze a map: no more writes from userspace.
    #[command(after_help = "Example:\n  bpfmapctl map freeze stats_map")]
    Freeze {
        /// The map.
        #[arg(value_parser = parse_map_ref)]
        map: MapRef,
    },
    /// Delete a map: remove the daemon's pins of it and drop its fd.
    #[command(after_help = "Example:\n  bpfmapctl map rm stats_map")]
    Rm {
        /// The map.
        #[arg(value_parser = parse_map_ref)]
        map: MapRef,
    },
    /// Print the records a program writes to a ring buffer or perf event array, as they
    /// come (bpftool's `map event_pipe`, through the daemon), until Ctrl+C.
    #[command(
        after_help = "Examples:\n  bpfmapctl map events pin:/sys/fs/bpf/myprog/events\n  bpfmapctl --json map events id:42 --count 100\n  bpfmapctl map events id:42 --record-type 'struct event'"
    )]
    Events(EventsArgs),
    /// Print a map's entries, then its changes as they happen, until Ctrl+C.
    #[command(
        after_help = "Examples:\n  bpfmapctl map watch stats_map\n  bpfmapctl --json map watch id:12 --interval 250"
    )]
    Watch(WatchArgs),
}

/// `map events`.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// The map: a ringbuf or perf_event_array.
    #[arg(value_parser = parse_map_ref)]
    pub map: MapRef,
    /// Stop after this many records.
    #[arg(long, short = 'c', value_name = "N", value_parser = parse_u64)]
    pub count: Option<u64>,
    /// Decode records as typed JSON with this type: a name of the BTF of the program that
    /// writes the map ('struct event') or a C declaration ('struct e { __u64 seq; }').
    #[arg(long, short = 't', value_name = "TYPE")]
    pub record_type: Option<String>,
}

/// `map watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The map.
    #[arg(value_parser = parse_map_ref)]
    pub map: MapRef,
    /// Changes at most every this many milliseconds (0: the daemon's default, 1000).
    #[arg(long, short = 'i', value_name = "MS", default_value_t = 0, value_parser = parse_u32)]
    pub interval: u32,
    /// Stop after this many batches of changes (the initial entries do not count).
    #[arg(long, short = 'c', value_name = "N", value_parser = parse_u64)]
    pub count: Option<u64>,
}

/// `map create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Kernel map name (up to 15 characters of [A-Za-z0-9_.]).
    pub name: String,
    /// Map type: hash, array, percpu_hash, percpu_array, lru_hash, lru_percpu_hash, lpm_trie,
    /// array_of_maps, hash_of_maps, queue, stack, bloom_filter, ringbuf, prog_array, ...
    #[arg(long = "type", short = 't', value_parser = parse_type)]
    pub map_type: MapType,
    /// Bytes per key (0 for queues, stacks, bloom filters, ring buffers).
    #[arg(long, default_value_t = 0, value_parser = parse_u32)]
    pub key_size: u32,
    /// Bytes per value.
    #[arg(long, default_value_t = 0, value_parser = parse_u32)]
    pub value_size: u32,
    /// Capacity.
    #[arg(long, value_parser = parse_u32)]
    pub entries: u32,
    /// The kernel's BPF_F_* bits (1 = BPF_F_NO_PREALLOC, needed by lpm_trie).
    #[arg(long, default_value_t = 0, value_parser = parse_u32)]
    pub flags: u32,
    /// Bloom filter: number of hashes (low 4 bits).
    #[arg(long, default_value_t = 0, value_parser = parse_u64)]
    pub map_extra: u64,
    /// Template map of array_of_maps / hash_of_maps.
    #[arg(long, value_parser = parse_map_ref)]
    pub inner_map: Option<MapRef>,
    /// Pin path under the daemon's root (default: the name).
    #[arg(long)]
    pub pin: Option<String>,
    /// Do not pin: the map lives until `map rm` or the daemon's exit.
    #[arg(long)]
    pub ephemeral: bool,
    /// The key's C type, e.g. 'struct flow { __u32 saddr; __u16 sport; }' or __u64: the map
    /// gets BTF, its key size follows, and keys read and write as JSON (--key-json, --json).
    #[arg(long, value_name = "DECL")]
    pub key_type: Option<String>,
    /// The value's C type (arrays: the key defaults to __u32).
    #[arg(long, value_name = "DECL")]
    pub value_type: Option<String>,
}

/// A required key.
#[derive(Debug, Clone, Args)]
#[group(required = true, multiple = false)]
pub struct KeyArgs {
    /// Key bytes in bpftool syntax: "c1 c2", c1c2, 0xc1 0xc2 (several words allowed).
    #[arg(long, num_args = 1.., value_name = "HEX", value_parser = parse_hex)]
    pub key: Option<Vec<Hex>>,
    /// Key as an unsigned integer in the host's byte order (1, 2, 4 or 8 bytes).
    #[arg(long, value_name = "N", value_parser = parse_u64)]
    pub key_num: Option<u64>,
    /// Key as typed JSON (maps with BTF types), e.g. '{"sport":53,"dport":4000}'.
    #[arg(long, value_name = "JSON")]
    pub key_json: Option<String>,
}

/// An optional key.
#[derive(Debug, Clone, Args)]
#[group(required = false, multiple = false)]
pub struct OptKeyArgs {
    /// Key bytes in bpftool syntax.
    #[arg(long, num_args = 1.., value_name = "HEX", value_parser = parse_hex)]
    pub key: Option<Vec<Hex>>,
    /// Key as an unsigned integer in the host's byte order.
    #[arg(long, value_name = "N", value_parser = parse_u64)]
    pub key_num: Option<u64>,
    /// Key as typed JSON (maps with BTF types).
    #[arg(long, value_name = "JSON")]
    pub key_json: Option<String>,
}

/// A required value.
#[derive(Debug, Clone, Args)]
#[group(required = true, multiple = false)]
pub struct ValueArgs {
    /// Value bytes in bpftool syntax.
    #[arg(long, num_args = 1.., value_name = "HEX", value_parser = parse_hex)]
    pub value: Option<Vec<Hex>>,
    /// Value as an unsigned integer in the host's byte order (1, 2, 4 or 8 bytes).
    #[arg(long, value_name = "N", value_parser = parse_u64)]
    pub value_num: Option<u64>,
    /// Value as typed JSON (maps with BTF types).
    #[arg(long, value_name = "JSON")]
    pub value_json: Option<String>,
}

/// Update semantics.
#[derive(Debug, Clone, Copy, Args)]
#[group(required = false, multiple = false)]
pub struct FlagArgs {
    /// Create or replace (the default).
    #[arg(long)]
    pub any: bool,
    /// Replace only: fail with NOT_FOUND if the key is absent.
    #[arg(long)]
    pub exist: bool,
    /// Create only: fail with ALREADY_EXISTS if the key is present.
    #[arg(long)]
    pub noexist: bool,
}

impl FlagArgs {
    /// The library's flag.
    pub fn flag(&self) -> bpfmap_client::Flag {
        if self.exist {
            bpfmap_client::Flag::Exist
        } else if self.noexist {
            bpfmap_client::Flag::NoExist
        } else {
            bpfmap_client::Flag::Any
        }
    }
}

/// `map update`.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// The map.
    #[arg(value_parser = parse_map_ref)]
    pub map: MapRef,
    #[command(flatten)]
    pub key: KeyArgs,
    /// Value bytes in bpftool syntax (per-CPU maps: written to every CPU).
    #[arg(long, num_args = 1.., value_name = "HEX", value_parser = parse_hex,
          required_unless_present_any = ["value_num", "inner_map", "cpu_value", "value_json"],
          conflicts_with_all = ["value_num", "inner_map", "cpu_value", "value_json"])]
    pub value: Option<Vec<Hex>>,
    /// Per-CPU maps: the value of the next CPU, once per possible CPU in CPU order
    /// (quote it: --cpu-value "01 00 00 00").
    #[arg(long, value_name = "HEX", value_parser = parse_hex, action = clap::ArgAction::Append,
          conflicts_with_all = ["value_num", "inner_map"])]
    pub cpu_value: Vec<Hex>,
    /// Value as an unsigned integer in the host's byte order.
    #[arg(long, value_name = "N", value_parser = parse_u64, conflicts_with = "inner_map")]
    pub value_num: Option<u64>,
    /// Value as typed JSON (maps with BTF types; per-CPU maps: written to every CPU).
    #[arg(long, value_name = "JSON", conflicts_with_all = ["value_num", "inner_map", "cpu_value"])]
    pub value_json: Option<String>,
    /// array_of_maps / hash_of_maps: the map to store at the key.
    #[arg(long, value_name = "MAP", value_parser = parse_map_ref)]
    pub inner_map: Option<MapRef>,
    #[command(flatten)]
    pub flag: FlagArgs,
    /// Write under the value's bpf_spin_lock (BPF_F_LOCK).
    #[arg(long)]
    pub lock: bool,
}

/// `map lookup`.
#[derive(Debug, Args)]
pub struct LookupArgs {
    /// The map.
    #[arg(value_parser = parse_map_ref)]
    pub map: MapRef,
    #[command(flatten)]
    pub key: OptKeyArgs,
    /// Bloom filters: the value to test (instead of a key).
    #[arg(long, num_args = 1.., value_name = "HEX", value_parser = parse_hex,
          conflicts_with_all = ["key", "key_num", "value_num"])]
    pub value: Option<Vec<Hex>>,
    /// Bloom filters: the value to test, as a host-order integer.
    #[arg(long, value_name = "N", value_parser = parse_u64, conflicts_with_all = ["key", "key_num"])]
    pub value_num: Option<u64>,
    /// Bloom filters: the value to test, as typed JSON.
    #[arg(long, value_name = "JSON", conflicts_with_all = ["key", "key_num", "key_json", "value", "value_num"])]
    pub value_json: Option<String>,
    /// Read under the value's bpf_spin_lock (BPF_F_LOCK).
    #[arg(long)]
    pub lock: bool,
}

/// Output formats of `map dump`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DumpFormat {
    /// bpftool's layout (with --json: bpftool -j's array).
    Text,
    /// JSON lines: one entry object per line, readable by `map load`.
    Json,
    /// Packed binary records behind a small header, readable by `map load`.
    Raw,
}

/// `map dump`.
#[derive(Debug, Args)]
pub struct DumpArgs {
    /// The map.
    #[arg(value_parser = parse_map_ref)]
    pub map: MapRef,
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value_t = DumpFormat::Text)]
    pub format: DumpFormat,
    /// Write to this file instead of standard output; `{host}` in the name is replaced by
    /// the server (needed with several --server).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<String>,
    /// Entries per message from the daemon (0: its default).
    #[arg(long, default_value_t = 0, value_parser = parse_u32)]
    pub batch_size: u32,
}

/// Input formats of `map load`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LoadFormat {
    /// JSON lines (or a bpftool -j dump array).
    Json,
    /// A raw snapshot from `map dump --format raw`.
    Raw,
}

/// `map load`.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// The map.
    #[arg(value_parser = parse_map_ref)]
    pub map: MapRef,
    /// The file (`-`: standard input).
    #[arg(long, short = 'i', value_name = "FILE")]
    pub input: PathBuf,
    /// Input format (default: raw if the file starts with the raw magic, else json).
    #[arg(long, short = 'f', value_enum)]
    pub format: Option<LoadFormat>,
    #[command(flatten)]
    pub flag: FlagArgs,
}

/// `map sync`.
#[derive(Debug, Args)]
pub struct SyncArgs {
    /// The map.
    #[arg(value_parser = parse_map_ref)]
    pub map: MapRef,
    /// The desired entries: a file made by `map dump --format json|raw` (`-`: standard input).
    #[arg(long, short = 'i', value_name = "FILE")]
    pub input: PathBuf,
    /// Input format (default: raw if the file starts with the raw magic, else json).
    #[arg(long, short = 'f', value_enum)]
    pub format: Option<LoadFormat>,
    /// Also delete the keys that are not in the file.
    #[arg(long)]
    pub prune: bool,
    /// Report what would change without changing anything.
    #[arg(long)]
    pub dry_run: bool,
}

#[cfg(test)]
mod tests;
