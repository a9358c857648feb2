//! Several hosts: `--server` repeated and `--servers-file`, run through the library's
//! [`Fleet`], each host's output under a `== host ==` header, then one table line per host.
//!
//! A servers file has one host per line: the address, then optional `ca=FILE`,
//! `cert=FILE`, `key=FILE` and `domain=NAME` giving that host its own TLS identity (relative
//! paths are relative to the file); `#` starts a comment. Hosts without their own settings
//! take the global `--tls-*` flags.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use bpfmap_client::{code_name, Address, ConnectOptions, Error, Fleet, FleetHost, TlsOptions};
use serde_json::json;

use crate::Failure;

/// One host line of a servers file (or a `--server`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostSpec {
    /// The address.
    pub addr: String,
    /// `ca=`, `cert=`, `key=`, `domain=`.
    pub ca: Option<String>,
    /// Client certificate.
    pub cert: Option<String>,
    /// Client key.
    pub key: Option<String>,
    /// Name to check the server certificate against.
    pub domain: Option<String>,
}

/// Parses a servers file's text; errors name the line.
pub fn parse_servers(text: &str, dir: &Path) -> Result<Vec<HostSpec>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        let mut words = line.split_whitespace();
        let Some(addr) = words.next() else { continue };
        let at = |msg: String| format!("line {}: {msg}", n + 1);
        Address::parse(addr).map_err(|e| at(e.to_string()))?;
        let mut spec = HostSpec {
            addr: addr.to_owned(),
            ..HostSpec::default()
        };
        let file = |v: &str| dir.join(v).display().to_string();
        for w in words {
            match w.split_once('=') {
                Some(("ca", v)) => spec.ca = Some(file(v)),
                Some(("cert", v)) => spec.cert = Some(file(v)),
                Some(("key", v)) => spec.key = Some(file(v)),
                Some(("domain", v)) => spec.domain = Some(v.to_owned()),
                _ => {
                    return Err(at(format!(
                        "{w:?}: expected ca=FILE, cert=FILE, key=FILE or domain=NAME"
                    )))
                }
            }
        }
        if spec.cert.is_some() != spec.key.is_some() {
            return Err(at("cert= and key= go together".into()));
        }
        out.push(spec);
    }
    if out.is_empty() {
        return Err("no host in the file".into());
    }
    Ok(out)
}

/// Reads `--servers-file`.
pub fn read_servers(path: &Path) -> Result<Vec<HostSpec>, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::Usage(format!("--servers-file {}: {e}", path.display())))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    parse_servers(&text, dir)
        .map_err(|e| Failure::Usage(format!("--servers-file {}: {e}", path.display())))
}

/// The connect options of one host: its own TLS settings, else the global ones (for
/// `https://` addresses only).
pub fn options(spec: &HostSpec, global: &Option<TlsOptions>) -> Result<ConnectOptions, Error> {
    let https = matches!(Address::parse(&spec.addr), Ok(Address::Https(_)));
    let own = spec.ca.is_some() || spec.cert.is_some() || spec.domain.is_some();
    let tls = if own {
        let mut t = TlsOptions::new();
        if let Some(ca) = &spec.ca {
            t = t.ca_file(ca)?;
        }
        if let (Some(c), Some(k)) = (&spec.cert, &spec.key) {
            t = t.identity_files(c, k)?;
        }
        if let Some(d) = &spec.domain {
            t = t.domain(d.clone());
        }
        Some(t)
    } else if https {
        global.clone()
    } else {
        None
    };
    Ok(ConnectOptions {
        tls,
        ..ConnectOptions::default()
    })
}

/// The fleet of `specs`. A host whose TLS files cannot be read is still a host: its
/// error shows in its row.
pub fn build(
    specs: &[HostSpec],
    global: &Option<TlsOptions>,
    concurrency: usize,
    deadline: Option<Duration>,
) -> (Fleet, Vec<(String, Error)>) {
    let mut fleet = Fleet::new().concurrency(concurrency).deadline(deadline);
    let mut broken = Vec::new();
    for s in specs {
        match options(s, global) {
            Ok(o) => fleet.push(FleetHost::new(&s.addr).options(o)),
            Err(e) => broken.push((s.addr.clone(), e)),
        }
    }
    (fleet, broken)
}

/// One row of the table.
#[derive(Debug)]
pub struct Row {
    /// The host.
    pub host: String,
    /// `None` for success, else the failure.
    pub error: Option<Failure>,
    /// Time the host took.
    pub elapsed: Duration,
    /// What the host reported (e.g. a sync's changes).
    pub detail: String,
}

fn failure_text(f: &Failure) -> (String, String) {
    match f {
        Failure::Remote(e) => (code_name(e.code()).to_owned(), e.message()),
        Failure::Usage(m) => ("USAGE".into(), m.clone()),
        Failure::Output(e) => ("OUTPUT".into(), e.to_string()),
    }
}

/// Writes the table: HOST, RESULT (`ok` or the error code), TIME, DETAIL; with `json`, one
/// JSON object `{"hosts":[...]}`.
pub fn print_table(out: &mut dyn Write, rows: &[Row], json: bool) -> std::io::Result<()> {
    let cells: Vec<[String; 4]> = rows
        .iter()
        .map(|r| {
            let (result, detail) = match &r.error {
                None => ("ok".to_owned(), r.detail.clone()),
                Some(f) => failure_text(f),
            };
            let time = format!("{:.3}s", r.elapsed.as_secs_f64());
            [r.host.clone(), result, time, detail]
        })
        .collect();
    if json {
        let hosts: Vec<_> = rows
            .iter()
            .zip(&cells)
            .map(|(r, c)| {
                json!({
                    "host": c[0], "ok": r.error.is_none(), "result": c[1],
                    "seconds": r.elapsed.as_secs_f64(), "detail": c[3],
                })
            })
            .collect();
        return writeln!(out, "{}", json!({ "hosts": hosts }));
    }
    let head = ["HOST", "RESULT", "TIME", "DETAIL"].map(str::to_owned);
    let width = |i: usize| {
        cells
            .iter()
            .chain(std::iter::once(&head))
            .map(|c| c[i].chars().count())
            .max()
            .unwrap_or(0)
    };
    let (w0, w1, w2) = (width(0), width(1), width(2));
    for c in std::iter::once(&head).chain(&cells) {
        let line = format!("{:w0$}  {:w1$}  {:>w2$}  {}", c[0], c[1], c[2], c[3]);
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_files_give_each_host_its_identity() {
        let text =
            "# fleet\nhttps://10.0.0.2:50051 ca=ca.pem cert=a.pem key=a.key domain=node1\n\n\
                    unix:/run/x.sock   # local\n";
        let specs = parse_servers(text, Path::new("/etc/f")).unwrap_or_default();
        assert_eq!(specs.len(), 2);
        assert_eq!(specs[0].ca.as_deref(), Some("/etc/f/ca.pem"));
        assert_eq!(specs[0].domain.as_deref(), Some("node1"));
        assert_eq!(specs[1].addr, "unix:/run/x.sock");
        let bad = parse_servers("a:1\nb:2 cert=x\n", Path::new("."));
        assert!(bad.err().is_some_and(|e| e.starts_with("line 2")));
        assert!(parse_servers("a:1 bogus\n", Path::new(".")).is_err());
        assert!(parse_servers("# nothing\n", Path::new(".")).is_err());
    }

    #[test]
    fn table_aligns_and_reports_failures() {
        let rows = vec![
            Row {
                host: "h1:1".into(),
                error: None,
                elapsed: Duration::from_millis(1500),
                detail: "inserted 1".into(),
            },
            Row {
                host: "host-two:2".into(),
                error: Some(Failure::Remote(Error::DeadlineExceeded(
                    Duration::from_secs(1),
                ))),
                elapsed: Duration::from_secs(1),
                detail: String::new(),
            },
        ];
        let mut out = Vec::new();
        assert!(print_table(&mut out, &rows, false).is_ok());
        let text = String::from_utf8(out).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "HOST        RESULT               TIME  DETAIL");
        assert_eq!(
            lines[1],
            "h1:1        ok                 1.500s  inserted 1"
        );
        assert!(lines[2].starts_with("host-two:2  DEADLINE_EXCEEDED  1.000s  no answer"));
    }
}
