//! The benchmark's world: a private bpffs, the daemon and the echo server as child processes,
//! each undone by a drop guard.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::mount::{mount, umount2, MntFlags, MsFlags};

/// A bpffs mounted on a temporary directory; unmounted (lazily) and removed on drop.
#[derive(Debug)]
pub struct Bpffs {
    dir: tempfile::TempDir,
}

impl Bpffs {
    /// Mounts a new bpffs.
    pub fn new() -> Result<Bpffs> {
        let dir = tempfile::Builder::new()
            .prefix("bpfmap-bench-fs-")
            .tempdir()
            .context("creating the bpffs mount point")?;
        mount(
            Some("bpf"),
            dir.path(),
            Some("bpf"),
            MsFlags::empty(),
            None::<&str>,
        )
        .context("mount -t bpf (the benchmark needs root)")?;
        Ok(Bpffs { dir })
    }

    /// The daemon's `--bpffs-root` inside it.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("bpfmapd")
    }
}

impl Drop for Bpffs {
    fn drop(&mut self) {
        let _ = umount2(self.dir.path(), MntFlags::MNT_DETACH);
    }
}

/// A child process, killed and reaped on drop.
#[derive(Debug)]
pub struct Proc {
    child: Child,
    /// What it is, for messages.
    pub name: String,
    /// Where its stdout and stderr go.
    pub log: PathBuf,
}

impl Proc {
    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn spawn(name: &str, bin: &Path, args: &[String], log: PathBuf) -> Result<Proc> {
        let out = std::fs::File::create(&log).with_context(|| format!("{}", log.display()))?;
        let child = Command::new(bin)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        Ok(Proc {
            child,
            name: name.to_owned(),
            log,
        })
    }

    /// Fails with the log when the process has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            bail!("{} exited ({status}):\n{log}", self.name);
        }
        Ok(())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where the built binaries are: `$BPFMAPD_BIN` / `$BPFMAPCTL_BIN`, else next to this one.
pub fn bin(name: &str, env: &str) -> Result<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        return Ok(p.into());
    }
    let exe = std::env::current_exe()?;
    let path = exe.with_file_name(name);
    if !path.is_file() {
        bail!(
            "{} not found: build it first (`cargo build --release --workspace --bins`, or run \
             scripts/bench.sh), or set {env}",
            path.display()
        );
    }
    Ok(path)
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// The addresses a server listens on.
#[derive(Debug, Clone)]
pub struct Addrs {
    /// `unix:/path`.
    pub unix: String,
    /// `127.0.0.1:port`.
    pub tcp: String,
}

/// Starts `bpfmapd` on `fs` with a Unix socket and loopback TCP, and waits until both serve.
pub async fn start_daemon(fs: &Bpffs, dir: &Path, tag: &str) -> Result<(Proc, Addrs)> {
    let bin = bin("bpfmapd", "BPFMAPD_BIN")?;
    let sock = dir.join(format!("bpfmapd-{tag}.sock"));
    let tcp = free_port()?;
    let addrs = Addrs {
        unix: format!("unix:{}", sock.display()),
        tcp: tcp.to_string(),
    };
    // Root may do anything; loopback TCP callers (anonymous) may also write the benchmark's
    // maps, so that Update is measured over both transports.
    let policy = dir.join("policy.toml");
    std::fs::write(
        &policy,
        "[[rule]]\nwho = [\"uid:0\"]\nmaps = [\"all\"]\nallow = [\"read\", \"write\", \"create\", \"admin\"]\n\n\
         [[rule]]\nwho = [\"anonymous\"]\nmaps = [\"name:bench_*\"]\nallow = [\"read\", \"write\"]\n",
    )?;
    let args = vec![
        "--listen".into(),
        addrs.unix.clone(),
        "--listen".into(),
        addrs.tcp.clone(),
        "--bpffs-root".into(),
        fs.root().display().to_string(),
        "--policy".into(),
        policy.display().to_string(),
    ];
    let mut p = Proc::spawn(
        "bpfmapd",
        &bin,
        &args,
        dir.join(format!("bpfmapd-{tag}.log")),
    )?;
    let deadline = Instant::now() + Duration::from_secs(20);
    for addr in [&addrs.unix, &addrs.tcp] {
        loop {
            p.check_alive()?;
            let ok = match bpfmap_client::Client::connect(addr).await {
                Ok(c) => c.list_maps(false).await.is_ok(),
                Err(_) => false,
            };
            if ok {
                break;
            }
            if Instant::now() > deadline {
                bail!("bpfmapd did not serve on {addr} within 20 s");
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }
    Ok((p, addrs))
}

/// Starts this binary's echo server (same transport as the daemon) and waits until it serves.
pub async fn start_echo(dir: &Path) -> Result<(Proc, Addrs)> {
    let exe = std::env::current_exe()?;
    let sock = dir.join("echo.sock");
    let tcp = free_port()?;
    let addrs = Addrs {
        unix: format!("unix:{}", sock.display()),
        tcp: tcp.to_string(),
    };
    let args = vec![
        "echo-server".into(),
        "--unix".into(),
        sock.display().to_string(),
        "--tcp".into(),
        addrs.tcp.clone(),
    ];
    let mut p = Proc::spawn("echo server", &exe, &args, dir.join("echo.log"))?;
    let deadline = Instant::now() + Duration::from_secs(20);
    for addr in [&addrs.unix, &addrs.tcp] {
        loop {
            p.check_alive()?;
            if crate::echo::probe(addr).await.is_ok() {
                break;
            }
            if Instant::now() > deadline {
                bail!("the echo server did not serve on {addr} within 20 s");
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }
    Ok((p, addrs))
}

/// A field of `/proc/PID/status` in KiB (`VmHWM`, `VmRSS`).
pub fn status_kib(pid: u32, field: &str) -> Result<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no {field} in /proc/{pid}/status"))
}

/// How busy the machine is: the 1-minute load average and the running `rustc` processes.
pub fn load() -> (f64, usize) {
    let avg = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN);
    let rustc = std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| {
                    std::fs::read_to_string(e.path().join("comm"))
                        .is_ok_and(|c| c.trim() == "rustc")
                })
                .count()
        })
        .unwrap_or(0);
    (avg, rustc)
}
