//! Harness for bpfmapd's end-to-end tests: the real daemon on a private bpffs, checked
//! against the kernel.
//!
//! Every test owns its world and cleans it up with drop guards, declared in this order:
//!
//! ```no_run
//! # async fn t() {
//! use bpfmap_tests::{require_bpf, Bpffs, Daemon};
//! if !require_bpf() { return; }          // skipped (or, under CI=true, failed) without BPF
//! let fs = Bpffs::new();                 // tempdir + `mount -t bpf`; unmounted on drop
//! let daemon = Daemon::start(&fs).await; // bpfmapd --listen unix:<tmp>/bpfmapd.sock
//!                                        //         --bpffs-root <fs>/bpfmapd; killed on drop
//! let mut client = daemon.client().await;
//! # }
//! ```
//!
//! [`TestEnv::start`] does all three (and the BPF check) in one line.
//!
//! Tests share one kernel with each other (and with anything else on the machine): map ids
//! are global and so are map names. Give every map a [`names::unique`] name and assert only
//! on your own maps.
//!
//! Modules: [`bpffs`] (mount guard), [`daemon`] (the bpfmapd process), [`bins`] (where the
//! built binaries are), [`bpftool`] (bpftool's JSON views), [`kernel`] (direct reads through
//! libbpf-rs), [`prog`] (the BPF socket filter of `tests/bpf/`), [`events`] (the one that
//! writes ring buffer and perf event records), [`live`] (ReadEvents and Watch streams, fd and
//! thread counts), [`api`] (request builders,
//! status assertions, dump and batch helpers), [`names`] (unique map names), [`certs`] (CAs and
//! certificates made with rcgen), [`policy`] (policy files), [`peer`] (the helper that runs as
//! another user, and test groups), [`netns`] and [`lab`] (daemons in their own network
//! namespaces, for fleet tests), [`metrics`] (scraping `--metrics-listen`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod api;
pub mod bins;
pub mod bpffs;
pub mod bpftool;
pub mod certs;
pub mod daemon;
pub mod events;
pub mod kernel;
pub mod lab;
pub mod live;
pub mod metrics;
pub mod names;
pub mod netns;
pub mod peer;
pub mod policy;
pub mod prog;

pub use api::Client;
pub use bpffs::Bpffs;
pub use daemon::{Daemon, DaemonOptions};
pub use events::EventsProgram;
pub use kernel::KernelMap;
pub use prog::BpfProgram;

/// Checks that this process may use BPF: it runs as root and can create a map.
///
/// Returns `false` (after a loud message on stderr) when it cannot, so that the test returns
/// early: `if !require_bpf() { return; }`. Under `CI=true` it panics instead: CI must never
/// pass by skipping.
pub fn require_bpf() -> bool {
    let problem = if !nix::unistd::geteuid().is_root() {
        Some("not running as root".to_owned())
    } else {
        match kernel::probe_map_create() {
            Ok(()) => None,
            Err(e) => Some(format!("cannot create a BPF map: {e}")),
        }
    };
    let Some(problem) = problem else {
        return true;
    };
    let msg = format!(
        "bpfmap-tests need root and a kernel with BPF ({problem}): run them as root, \
         e.g. `sudo scripts/test.sh`"
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg}");
    }
    eprintln!("\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!");
    eprintln!("!!! SKIPPED: {msg}");
    eprintln!("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n");
    false
}

/// One test's world: a client, the daemon it talks to, the bpffs the daemon pins in.
/// Fields drop in this order: client, daemon (killed), bpffs (unmounted).
#[derive(Debug)]
pub struct TestEnv {
    /// Connected over the daemon's Unix socket.
    pub client: Client,
    /// The running bpfmapd.
    pub daemon: Daemon,
    /// The private bpffs; the daemon's root is `fs.root()`.
    pub fs: Bpffs,
}

impl TestEnv {
    /// [`require_bpf`], then a fresh bpffs, a daemon on it and a client; None when skipped.
    pub async fn start() -> Option<TestEnv> {
        Self::start_with(DaemonOptions::default()).await
    }

    /// Like [`TestEnv::start`], with daemon options.
    pub async fn start_with(opts: DaemonOptions) -> Option<TestEnv> {
        if !require_bpf() {
            return None;
        }
        let fs = Bpffs::new();
        let daemon = Daemon::start_with(&fs, opts).await;
        let client = daemon.client().await;
        Some(TestEnv { client, daemon, fs })
    }
}
