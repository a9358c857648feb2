//! [`Daemon`]: the real `bpfmapd` binary, run for one test.
//!
//! Started as `bpfmapd --listen unix:<tmp>/bpfmapd.sock --bpffs-root <bpffs>/bpfmapd`
//! (plus `--listen 127.0.0.1:<free port>` when asked, plus extra arguments), with stdout and
//! stderr appended to `<tmp>/bpfmapd.log`. [`Daemon::start`] returns once a `ListMaps` call
//! succeeds on the socket (and on TCP when enabled); after 20 s it panics with the log.
//! Dropping the guard kills the process; the log is printed when the test is panicking.

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use bpfmap_client::proto::map_service_client::MapServiceClient;
use bpfmap_client::proto::ListMapsRequest;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tonic::transport::Channel;

use crate::bins;
use crate::bpffs::Bpffs;

/// How long a start may take before the test fails.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long SIGTERM may take before the test fails.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// The generated client, connected.
pub type Client = MapServiceClient<Channel>;

/// What to start the daemon with beyond the defaults.
#[derive(Debug, Clone, Default)]
pub struct DaemonOptions {
    /// Also listen on `127.0.0.1:<a free port>`.
    pub tcp: bool,
    /// Appended to the command line.
    pub extra_args: Vec<String>,
    /// The daemon serves TLS on TCP (its `--tls-*` flags are in `extra_args`): the readiness
    /// probe and [`Daemon::tcp_client`] connect over `https://` with these options (the CA to
    /// trust and, for mutual TLS, a client certificate).
    pub tls: Option<bpfmap_client::TlsOptions>,
    /// Run inside this network namespace (`ip netns exec NS bpfmapd ...`); the readiness
    /// probe then uses the Unix socket only (TCP addresses of the namespace are not
    /// reachable from the test's own namespace).
    pub netns: Option<String>,
}

/// A running `bpfmapd`; killed on drop.
#[derive(Debug)]
pub struct Daemon {
    child: Option<Child>,
    dir: tempfile::TempDir,
    bin: PathBuf,
    args: Vec<OsString>,
    socket: PathBuf,
    tcp: Option<SocketAddr>,
    tls: Option<bpfmap_client::TlsOptions>,
    log: PathBuf,
    netns: Option<String>,
}

impl Daemon {
    /// Starts the daemon on `fs` with the default options and waits until it serves.
    pub async fn start(fs: &Bpffs) -> Daemon {
        Self::start_with(fs, DaemonOptions::default()).await
    }

    /// Starts the daemon on `fs` with `opts` and waits until it serves.
    pub async fn start_with(fs: &Bpffs, opts: DaemonOptions) -> Daemon {
        let dir = tempfile::Builder::new()
            .prefix("bpfmapd-")
            .tempdir()
            .expect("create the daemon's temporary directory");
        let socket = dir.path().join("bpfmapd.sock");
        let log = dir.path().join("bpfmapd.log");
        let mut args: Vec<OsString> = vec![
            "--listen".into(),
            format!("unix:{}", socket.display()).into(),
            "--bpffs-root".into(),
            fs.root().into(),
        ];
        let tcp = opts.tcp.then(free_loopback_port);
        if let Some(addr) = tcp {
            args.push("--listen".into());
            args.push(addr.to_string().into());
        }
        args.extend(opts.extra_args.iter().map(OsString::from));
        let mut daemon = Daemon {
            child: None,
            dir,
            bin: bins::bpfmapd(),
            args,
            socket,
            tcp,
            tls: opts.tls.clone(),
            log,
            netns: opts.netns.clone(),
        };
        daemon.spawn_and_wait().await;
        daemon
    }

    /// Starts the daemon again with the same arguments (same socket, same bpffs root), after
    /// [`Daemon::kill9`] or [`Daemon::sigterm`] (or killing it first if it still runs).
    pub async fn restart(&mut self) {
        if self.child.is_some() {
            self.kill9();
        }
        self.spawn_and_wait().await;
    }

    /// Sends SIGKILL and reaps the process. The socket file stays behind, as after a crash.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and returns the exit status. Panics (with the log) if the daemon has not
    /// exited within [`STOP_TIMEOUT`]. Async so that the test's runtime keeps running its
    /// clients' connections (they must see the daemon's GOAWAY and close).
    pub async fn sigterm(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("the daemon is not running");
        let pid = Pid::from_raw(i32::try_from(child.id()).expect("pid fits i32"));
        kill(pid, Signal::SIGTERM).expect("send SIGTERM");
        let deadline = Instant::now() + STOP_TIMEOUT;
        let mut status = None;
        while Instant::now() < deadline {
            status = child.try_wait().expect("try_wait");
            if status.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        match status {
            Some(status) => status,
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "bpfmapd did not exit within {STOP_TIMEOUT:?} of SIGTERM\n{}",
                    self.log_banner()
                );
            }
        }
    }

    /// The exit status if the process has ended (it is then reaped), None while it runs.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        let status = child.try_wait().expect("try_wait")?;
        self.child = None;
        Some(status)
    }

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The Unix socket path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// `unix:<socket>`, as the client and the daemon spell it.
    pub fn unix_addr(&self) -> String {
        format!("unix:{}", self.socket.display())
    }

    /// `127.0.0.1:<port>` when started with TCP.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp
    }

    /// The daemon's temporary directory (socket and log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The binary that runs.
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// The command-line arguments (without the program name).
    pub fn args(&self) -> &[OsString] {
        &self.args
    }

    /// Everything the daemon wrote to stdout and stderr so far (across restarts).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A client connected over the Unix socket.
    pub async fn client(&self) -> Client {
        let addr = self.unix_addr();
        bpfmap_client::connect(&addr)
            .await
            .unwrap_or_else(|e| panic!("connect {addr}: {e}\n{}", self.log_banner()))
    }

    /// A client connected over TCP loopback (start with `DaemonOptions { tcp: true, .. }`);
    /// over TLS with the options' TLS settings when the daemon was started with `tls`.
    pub async fn tcp_client(&self) -> Client {
        let addr = self.tcp_url();
        self.tcp_client_with(self.tls.clone())
            .await
            .unwrap_or_else(|e| panic!("connect {addr}: {e}\n{}", self.log_banner()))
    }

    /// The TCP address as the client spells it: `https://127.0.0.1:<port>` when the daemon
    /// was started with `tls`, else `127.0.0.1:<port>`.
    pub fn tcp_url(&self) -> String {
        let addr = self.tcp.expect("daemon started without TCP");
        if self.tls.is_some() {
            format!("https://{addr}")
        } else {
            addr.to_string()
        }
    }

    /// Connects over TCP with these TLS options (`None`: plain text), without panicking: for
    /// tests of refused connections. TLS failures may show at connect or at the first call.
    pub async fn tcp_client_with(
        &self,
        tls: Option<bpfmap_client::TlsOptions>,
    ) -> Result<Client, bpfmap_client::Error> {
        let addr = self.tcp.expect("daemon started without TCP");
        let (url, opts) = match tls {
            Some(tls) => (
                format!("https://{addr}"),
                bpfmap_client::ConnectOptions::default().tls(tls),
            ),
            None => (addr.to_string(), bpfmap_client::ConnectOptions::default()),
        };
        Ok(bpfmap_client::Client::connect_with(&url, &opts)
            .await?
            .raw())
    }

    /// Sends SIGHUP (policy reload).
    pub fn sighup(&self) {
        let pid = self.pid().expect("the daemon is not running");
        let pid = Pid::from_raw(i32::try_from(pid).expect("pid fits i32"));
        kill(pid, Signal::SIGHUP).expect("send SIGHUP");
    }

    /// Waits up to `timeout` for a log line containing every word of `words` (ignoring
    /// case); returns it, or None.
    pub async fn wait_log(&self, words: &[&str], timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = log_lines_with(&self.log(), words).into_iter().next() {
                return Some(line);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log_banner(&self) -> String {
        format!(
            "----- bpfmapd log ({}) -----\n{}\n----- end of bpfmapd log -----",
            self.log.display(),
            self.log()
        )
    }

    async fn spawn_and_wait(&mut self) {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open the daemon log");
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(&self.bin);
                c
            }
            None => Command::new(&self.bin),
        };
        cmd.args(&self.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log fd"))
            .stderr(log);
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "info");
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.bin.display()));
        self.child = Some(child);

        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.try_wait() {
                panic!(
                    "bpfmapd exited during start ({status})\n{}",
                    self.log_banner()
                );
            }
            let last_err = match self.probe().await {
                Ok(()) => return,
                Err(e) => e,
            };
            if Instant::now() > deadline {
                self.kill9();
                panic!(
                    "bpfmapd did not serve within {START_TIMEOUT:?} (last: {last_err})\n{}",
                    self.log_banner()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// One readiness check: the socket accepts and ListMaps answers (also over TCP, with
    /// TLS when configured). An answer that refuses the caller (PERMISSION_DENIED,
    /// UNAUTHENTICATED: a policy that does not grant the probe) also shows that it serves.
    async fn probe(&self) -> Result<(), String> {
        if !self.socket.exists() {
            return Err("socket not there yet".into());
        }
        let mut clients = vec![(
            self.unix_addr(),
            bpfmap_client::connect(&self.unix_addr())
                .await
                .map_err(|e| e.to_string())?,
        )];
        if self.tcp.is_some() && self.netns.is_none() {
            let client = self
                .tcp_client_with(self.tls.clone())
                .await
                .map_err(|e| e.to_string())?;
            clients.push((self.tcp_url(), client));
        }
        for (addr, mut client) in clients {
            let call = client.list_maps(ListMapsRequest { all: false });
            match tokio::time::timeout(Duration::from_secs(5), call).await {
                Ok(Ok(_)) => {}
                Ok(Err(status))
                    if matches!(
                        status.code(),
                        tonic::Code::PermissionDenied | tonic::Code::Unauthenticated
                    ) => {}
                Ok(Err(status)) => return Err(format!("ListMaps on {addr}: {status}")),
                Err(_) => return Err(format!("ListMaps on {addr}: timed out")),
            }
        }
        Ok(())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            eprintln!("{}", self.log_banner());
        }
    }
}

/// The lines of `log` that contain every word of `words`, ignoring case.
pub fn log_lines_with(log: &str, words: &[&str]) -> Vec<String> {
    log.lines()
        .filter(|l| {
            let l = l.to_lowercase();
            words.iter().all(|w| l.contains(&w.to_lowercase()))
        })
        .map(str::to_owned)
        .collect()
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_loopback_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local_addr")
}

/// Waits up to `timeout` for `child` to exit.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `bin args` (stdin closed) and waits up to `timeout` for it to exit on its own.
/// Returns its status (None if it had to be killed) and its stdout + stderr.
pub fn run_expecting_exit(
    bin: &Path,
    args: &[OsString],
    timeout: Duration,
) -> (Option<ExitStatus>, String) {
    let out = tempfile::NamedTempFile::new().expect("temp file");
    let file = out.reopen().expect("reopen temp file");
    let mut child = Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(file.try_clone().expect("dup"))
        .stderr(file)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
    let status = wait_timeout(&mut child, timeout);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    (
        status,
        std::fs::read_to_string(out.path()).unwrap_or_default(),
    )
}
