//! Network namespaces for fleet tests: a hub namespace with a bridge, and one namespace per
//! host joined to it by a veth pair. The 10.x addresses exist only inside these namespaces
//! (the test's own namespace gets none), so nothing leaves the machine.
//!
//! ```text
//!   hub ns: br0 10.77.0.1/24 ── v0 ══ eth0 10.77.0.10 (host ns 0)
//!                            ── v1 ══ eth0 10.77.0.11 (host ns 1) ...
//! ```
//!
//! [`Namespaces`] deletes every namespace it made when dropped, also when the test panics;
//! and before making new ones it deletes those left by test processes that died without
//! dropping theirs (the names carry the process id). [`Namespaces::run_in_hub`] runs async
//! code on a thread that joined the hub namespace: that is where a fleet client lives.

use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// Prefix of every namespace these tests make.
pub const PREFIX: &str = "bpfmt-";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Runs `ip args`, panicking with its output if it fails.
pub fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run ip {args:?}: {e}"));
    assert!(
        out.status.success(),
        "ip {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Deletes namespaces of this prefix whose process is gone.
fn sweep_stale() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let pid = rest.split('-').next().unwrap_or("");
        if !pid.is_empty() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}

/// A hub namespace with a bridge and `n` host namespaces on it; deleted on drop.
#[derive(Debug)]
pub struct Namespaces {
    /// The hub's name (the client side).
    pub hub: String,
    /// The hosts' namespace names.
    pub hosts: Vec<String>,
    made: Vec<String>,
}

/// The hub's address on the bridge.
pub const HUB_ADDR: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);

impl Namespaces {
    /// Makes the hub and `n` hosts. Panics (after cleaning up what it made) on failure.
    pub fn new(n: usize) -> Namespaces {
        sweep_stale();
        let tag = format!(
            "{PREFIX}{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut ns = Namespaces {
            hub: format!("{tag}-hub"),
            hosts: Vec::new(),
            made: Vec::new(),
        };
        let hub = ns.hub.clone();
        ns.add(&hub);
        ip(&["-n", &hub, "link", "add", "br0", "type", "bridge"]);
        ip(&[
            "-n",
            &hub,
            "addr",
            "add",
            &format!("{HUB_ADDR}/24"),
            "dev",
            "br0",
        ]);
        ip(&["-n", &hub, "link", "set", "br0", "up"]);
        for i in 0..n {
            let host = format!("{tag}-h{i}");
            ns.add(&host);
            let v = format!("v{i}");
            ip(&[
                "-n", &hub, "link", "add", &v, "type", "veth", "peer", "name", "eth0", "netns",
                &host,
            ]);
            ip(&["-n", &hub, "link", "set", &v, "master", "br0"]);
            ip(&["-n", &hub, "link", "set", &v, "up"]);
            let addr = format!("{}/24", Self::addr(i));
            ip(&["-n", &host, "addr", "add", &addr, "dev", "eth0"]);
            ip(&["-n", &host, "link", "set", "eth0", "up"]);
            ns.hosts.push(host);
        }
        ns
    }

    fn add(&mut self, name: &str) {
        ip(&["netns", "add", name]);
        self.made.push(name.to_owned());
        ip(&["-n", name, "link", "set", "lo", "up"]);
    }

    /// The address of host `i`: 10.77.0.(10 + i).
    pub fn addr(i: usize) -> Ipv4Addr {
        Ipv4Addr::new(
            10,
            77,
            0,
            10 + u8::try_from(i).expect("fewer than 200 hosts"),
        )
    }

    /// Runs `make()`'s future to completion on a new thread that joined the hub's network
    /// namespace (a current-thread runtime, so every socket is made there).
    pub async fn run_in_hub<F, Fut, T>(&self, make: F) -> T
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = T>,
        T: Send + 'static,
    {
        let path = format!("/var/run/netns/{}", self.hub);
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
            nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                .unwrap_or_else(|e| panic!("setns {path}: {e}"));
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            let _ = tx.send(rt.block_on(make()));
        });
        rx.await
            .expect("the hub thread panicked (see its message above)")
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for name in self.made.iter().rev() {
            let ok = Command::new("ip")
                .args(["netns", "del", name])
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                eprintln!("could not delete network namespace {name}");
            }
        }
    }
}
