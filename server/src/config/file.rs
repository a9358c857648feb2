//! The configuration file (`--config FILE`, TOML): every flag as a key of the same name
//! without the dashes (`bpffs-root = "/sys/fs/bpf/bpfmapd"`, `listen = ["unix:/run/x.sock"]`).
//!
//! A flag given on the command line wins over the file; the file wins over the built-in
//! defaults. Relative paths in the file are relative to the file's directory. Any mistake
//! (bad TOML, unknown key, wrong type, bad value) fails the start with the file's name, the
//! line and what was wrong.

use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{ArgMatches, ValueEnum};
use serde::Deserialize;
use serde_spanned::Spanned;

use super::{parse_mode, Config, LogFormat};

/// `listen` takes one address or a list.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// `socket-mode` as a string ("0660") or a TOML octal integer (0o660).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Mode {
    Text(String),
    Number(i64),
}

/// The file's keys: the flags' names.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileConfig {
    listen: Option<Spanned<OneOrMany>>,
    bpffs_root: Option<PathBuf>,
    log_format: Option<Spanned<String>>,
    socket_mode: Option<Spanned<Mode>>,
    shutdown_grace: Option<u64>,
    socket_group: Option<String>,
    policy: Option<PathBuf>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_client_ca: Option<PathBuf>,
    max_entries_per_map: Option<u32>,
    max_maps: Option<usize>,
    max_maps_per_identity: Option<usize>,
    max_message_bytes: Option<usize>,
    max_batch_entries: Option<usize>,
    max_streams_per_identity: Option<usize>,
    max_event_subscribers: Option<usize>,
    event_queue_bytes: Option<usize>,
    max_watchers: Option<usize>,
    min_watch_interval_ms: Option<u64>,
    metrics_listen: Option<String>,
}

/// 1-based line of byte offset `at`.
fn line_of(text: &str, at: usize) -> usize {
    text[..at.min(text.len())].matches('\n').count() + 1
}

/// Reads `path` and applies its settings to `config`, except those given as flags.
pub fn apply(config: &mut Config, path: &Path, matches: &ArgMatches) -> Result<(), String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the config file {}: {e}", path.display()))?;
    let at = |line: usize, msg: &str| format!("config file {} line {line}: {msg}", path.display());
    let file: FileConfig = toml::from_str(&text).map_err(|e| {
        let line = e.span().map_or(1, |s| line_of(&text, s.start));
        at(line, e.message().trim())
    })?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let rel = |p: PathBuf| if p.is_relative() { dir.join(p) } else { p };
    // True when the flag was not given on the command line: the file's value applies.
    let unset = |id: &str| {
        !matches!(
            matches.value_source(id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        )
    };

    if let Some(v) = file.listen {
        let line = line_of(&text, v.span().start);
        let list = match v.into_inner() {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(l) => l,
        };
        if list.is_empty() {
            return Err(at(line, "listen: give at least one address"));
        }
        for a in &list {
            check_listen(a).map_err(|e| at(line, &format!("listen {a:?}: {e}")))?;
        }
        if unset("listen") {
            config.listen = list;
        }
    }
    if let Some(v) = file.log_format {
        let line = line_of(&text, v.span().start);
        let f = LogFormat::from_str(v.get_ref(), true).map_err(|_| {
            at(
                line,
                &format!("log-format {:?}: use \"text\" or \"json\"", v.get_ref()),
            )
        })?;
        if unset("log_format") {
            config.log_format = f;
        }
    }
    if let Some(v) = file.socket_mode {
        let line = line_of(&text, v.span().start);
        let mode = match v.get_ref() {
            Mode::Text(s) => parse_mode(s),
            Mode::Number(n) => u32::try_from(*n)
                .ok()
                .filter(|m| *m <= 0o777)
                .ok_or_else(|| format!("{n} is not a file mode: write \"0660\" or 0o660")),
        }
        .map_err(|e| at(line, &format!("socket-mode: {e}")))?;
        if unset("socket_mode") {
            config.socket_mode = mode;
        }
    }
    macro_rules! take {
        ($($field:ident),*) => {$(
            if let Some(v) = file.$field {
                if unset(stringify!($field)) {
                    config.$field = v;
                }
            }
        )*};
    }
    macro_rules! take_opt {
        ($($field:ident),*) => {$(
            if let Some(v) = file.$field {
                if unset(stringify!($field)) {
                    config.$field = Some(v);
                }
            }
        )*};
    }
    macro_rules! take_path {
        ($($field:ident),*) => {$(
            if let Some(v) = file.$field {
                if unset(stringify!($field)) {
                    config.$field = Some(rel(v));
                }
            }
        )*};
    }
    if let Some(v) = file.bpffs_root {
        if unset("bpffs_root") {
            config.bpffs_root = rel(v);
        }
    }
    take!(
        shutdown_grace,
        max_entries_per_map,
        max_maps,
        max_maps_per_identity,
        max_message_bytes,
        max_batch_entries,
        max_streams_per_identity,
        max_event_subscribers,
        event_queue_bytes,
        max_watchers,
        min_watch_interval_ms
    );
    take_opt!(socket_group, metrics_listen);
    take_path!(policy, tls_cert, tls_key, tls_client_ca);
    Ok(())
}

/// The same syntax `--listen` takes: `unix:/path` or `host:port`.
fn check_listen(a: &str) -> Result<(), String> {
    if let Some(p) = a.strip_prefix("unix:") {
        return if p.is_empty() {
            Err("empty socket path".into())
        } else {
            Ok(())
        };
    }
    match a.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(()),
        _ => Err("not unix:/path or host:port".into()),
    }
}

/// The effective configuration as a config file (`--print-config`): every key, so that it
/// can be saved and used as it is.
pub fn render(c: &Config) -> String {
    use toml::Value as V;
    let s = |v: &str| V::String(v.to_owned()).to_string();
    let p = |v: &Path| s(&v.display().to_string());
    let n = |v: u64| V::Integer(i64::try_from(v).unwrap_or(i64::MAX)).to_string();
    let opt = |k: &str, v: Option<String>| match v {
        Some(v) => format!("{k} = {v}\n"),
        None => format!("# {k} (not set)\n"),
    };
    let listen: Vec<String> = c.listen.iter().map(|a| s(a)).collect();
    let format = match c.log_format {
        LogFormat::Text => "text",
        LogFormat::Json => "json",
    };
    let mut out = String::from("# bpfmapd effective configuration\n");
    out += &format!("listen = [{}]\n", listen.join(", "));
    out += &format!("bpffs-root = {}\n", p(&c.bpffs_root));
    out += &format!("log-format = {}\n", s(format));
    out += &format!("socket-mode = {}\n", s(&format!("{:04o}", c.socket_mode)));
    out += &opt("socket-group", c.socket_group.as_deref().map(s));
    out += &format!("shutdown-grace = {}\n", n(c.shutdown_grace));
    out += &opt("policy", c.policy.as_deref().map(p));
    out += &opt("tls-cert", c.tls_cert.as_deref().map(p));
    out += &opt("tls-key", c.tls_key.as_deref().map(p));
    out += &opt("tls-client-ca", c.tls_client_ca.as_deref().map(p));
    out += &format!(
        "max-entries-per-map = {}\n",
        n(c.max_entries_per_map.into())
    );
    out += &format!("max-maps = {}\n", n(c.max_maps as u64));
    out += &format!(
        "max-maps-per-identity = {}\n",
        n(c.max_maps_per_identity as u64)
    );
    out += &format!("max-message-bytes = {}\n", n(c.max_message_bytes as u64));
    out += &format!("max-batch-entries = {}\n", n(c.max_batch_entries as u64));
    out += &format!(
        "max-streams-per-identity = {}\n",
        n(c.max_streams_per_identity as u64)
    );
    out += &format!(
        "max-event-subscribers = {}\n",
        n(c.max_event_subscribers as u64)
    );
    out += &format!("event-queue-bytes = {}\n", n(c.event_queue_bytes as u64));
    out += &format!("max-watchers = {}\n", n(c.max_watchers as u64));
    out += &format!("min-watch-interval-ms = {}\n", n(c.min_watch_interval_ms));
    out += &opt("metrics-listen", c.metrics_listen.as_deref().map(s));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, FromArgMatches};

    fn load(args: &[&str], text: &str) -> Result<Config, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let path = dir.path().join("bpfmapd.toml");
        std::fs::write(&path, text).map_err(|e| e.to_string())?;
        let path_s = path.display().to_string();
        let mut argv = vec!["bpfmapd", "--config", path_s.as_str()];
        argv.extend_from_slice(args);
        let m = Config::command()
            .try_get_matches_from(argv)
            .map_err(|e| e.to_string())?;
        let mut c = Config::from_arg_matches(&m).map_err(|e| e.to_string())?;
        apply(&mut c, &path, &m)?;
        // Relative paths resolve against the file's directory; make them comparable.
        if let Some(p) = &c.policy {
            c.policy = p.strip_prefix(dir.path()).ok().map(Path::to_path_buf);
        }
        Ok(c)
    }

    #[test]
    fn file_sets_and_flags_win() -> Result<(), String> {
        let text = "listen = \"127.0.0.1:1\"\nmax-maps = 7\nsocket-mode = 0o600\n\
                    log-format = \"json\"\npolicy = \"p.toml\"\nmetrics-listen = \"127.0.0.1:9\"\n";
        let c = load(&[], text)?;
        assert_eq!(c.listen, vec!["127.0.0.1:1".to_owned()]);
        assert_eq!((c.max_maps, c.socket_mode), (7, 0o600));
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.policy.as_deref(), Some(Path::new("p.toml")));
        assert_eq!(c.metrics_listen.as_deref(), Some("127.0.0.1:9"));
        let c = load(&["--max-maps", "3", "--listen", "unix:/x.sock"], text)?;
        assert_eq!((c.max_maps, c.listen), (3, vec!["unix:/x.sock".to_owned()]));
        // An explicit flag equal to its default still wins.
        let c = load(&["--socket-mode", "0660"], text)?;
        assert_eq!(c.socket_mode, 0o660);
        Ok(())
    }

    #[test]
    fn mistakes_name_the_line() {
        let cases = [
            ("max-maps = 1\nbogus = 2\n", "line 2", "bogus"),
            (
                "max-maps = 1\n\nmax-maps-per-identity = \"x\"\n",
                "line 3",
                "invalid type",
            ),
            ("socket-mode = \"999\"\n", "line 1", "octal"),
            ("\nlog-format = \"xml\"\n", "line 2", "json"),
            ("listen = [\"nope\"]\n", "line 1", "host:port"),
            ("max-maps = \n", "line 1", ""),
        ];
        for (text, line, word) in cases {
            let err = load(&[], text).err().unwrap_or_default();
            assert!(err.contains(line) && err.contains(word), "{text:?}: {err}");
        }
    }

    #[test]
    fn every_flag_is_a_key_of_the_file() -> Result<(), String> {
        let c = load(&[], "")?;
        let printed = render(&c);
        for arg in Config::command().get_arguments() {
            let id = arg.get_id().as_str();
            if matches!(id, "config" | "print_config" | "help" | "version") {
                continue;
            }
            let key = id.replace('_', "-");
            let line =
                |l: &str| l.starts_with(&format!("{key} = ")) || l == format!("# {key} (not set)");
            assert!(
                printed.lines().any(line),
                "--{key} is not in the file:\n{printed}"
            );
        }
        Ok(())
    }

    #[test]
    fn printed_config_reads_back_the_same() -> Result<(), String> {
        let c = load(&["--max-batch-entries", "9"], "socket-group = \"bpf\"\n")?;
        let again = load(&[], &render(&c))?;
        assert_eq!(render(&again), render(&c));
        Ok(())
    }
}
