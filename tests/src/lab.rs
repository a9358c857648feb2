//! [`Lab`]: a fleet of real daemons, each in its own network namespace with its own bpffs,
//! its own CA and server certificate (for its 10.x address) and a policy that lets the fleet
//! agent's certificate (`CN=fleet-agent`, issued by that host's CA) do everything.
//!
//! The client side lives in the hub namespace ([`crate::netns`]): library code through
//! [`Lab::run_in_hub`], the CLI through [`Lab::ctl`] (`ip netns exec <hub> bpfmapctl`).
//! Dropping the lab kills the daemons, unmounts their bpffs, then deletes the namespaces.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Output};

use bpfmap_client::{FleetHost, TlsOptions};

use crate::bpffs::Bpffs;
use crate::certs::{Ca, Leaf};
use crate::daemon::{Daemon, DaemonOptions};
use crate::netns::Namespaces;
use crate::policy::{PolicyFile, Rule, ALL};

/// The TCP port every lab daemon listens on (inside its own namespace).
pub const PORT: u16 = 50051;

/// One host: fields drop in order (daemon killed, then the bpffs unmounted).
#[derive(Debug)]
pub struct LabHost {
    /// The running daemon.
    pub daemon: Daemon,
    /// Its bpffs.
    pub fs: Bpffs,
    /// `10.77.0.(10+i):50051`.
    pub addr: SocketAddr,
    /// The agent's TLS settings for this host: its CA, the agent's certificate from it.
    pub tls: TlsOptions,
    /// PEM files for a servers file: (ca, cert, key).
    pub files: (PathBuf, PathBuf, PathBuf),
    _policy: PolicyFile,
    _certs: tempfile::TempDir,
}

impl LabHost {
    /// `https://10.77.0.(10+i):50051`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// This host for a library [`bpfmap_client::Fleet`].
    pub fn fleet_host(&self) -> FleetHost {
        FleetHost::new(self.url()).tls(self.tls.clone())
    }
}

/// `n` daemons in their namespaces. Fields drop in order: hosts, then namespaces.
#[derive(Debug)]
pub struct Lab {
    /// The hosts, in address order.
    pub hosts: Vec<LabHost>,
    /// The namespaces.
    pub ns: Namespaces,
    dir: tempfile::TempDir,
}

impl Lab {
    /// [`crate::require_bpf`], then the namespaces and `n` daemons; None when skipped.
    pub async fn start(n: usize) -> Option<Lab> {
        if !crate::require_bpf() {
            return None;
        }
        let ns = Namespaces::new(n);
        let dir = tempfile::Builder::new()
            .prefix("bpfmap-lab-")
            .tempdir()
            .expect("lab directory");
        let mut hosts = Vec::new();
        for i in 0..n {
            let addr = SocketAddr::new(Namespaces::addr(i).into(), PORT);
            let certs = tempfile::Builder::new()
                .prefix("bpfmap-lab-tls-")
                .tempdir()
                .expect("certificate directory");
            let ca = Ca::new(&format!("lab host {i} CA"));
            let (cert, key) = ca
                .issue(&Leaf::server().ip(addr.ip()))
                .write(certs.path(), "server");
            let ca_file = ca.write(certs.path(), "ca");
            let agent = ca.issue(&Leaf::client("fleet-agent"));
            let (agent_cert, agent_key) = agent.write(certs.path(), "agent");
            let policy = PolicyFile::new(&[
                Rule::root_all(),
                Rule::allow(&["cert:CN=fleet-agent"], &["all"], ALL),
            ]);
            let mut extra_args = vec![
                "--listen".to_owned(),
                addr.to_string(),
                "--tls-cert".into(),
                cert.display().to_string(),
                "--tls-key".into(),
                key.display().to_string(),
                "--tls-client-ca".into(),
                ca_file.display().to_string(),
            ];
            extra_args.extend(policy.args());
            let fs = Bpffs::new();
            let daemon = Daemon::start_with(
                &fs,
                DaemonOptions {
                    extra_args,
                    netns: Some(ns.hosts[i].clone()),
                    ..DaemonOptions::default()
                },
            )
            .await;
            let tls = agent.identity(TlsOptions::new().ca_pem(ca.cert_pem()));
            hosts.push(LabHost {
                daemon,
                fs,
                addr,
                tls,
                files: (ca_file, agent_cert, agent_key),
                _policy: policy,
                _certs: certs,
            });
        }
        Some(Lab { hosts, ns, dir })
    }

    /// Every host, for a library fleet.
    pub fn fleet_hosts(&self) -> Vec<FleetHost> {
        self.hosts.iter().map(LabHost::fleet_host).collect()
    }

    /// Writes a servers file naming every host with its own CA and agent certificate, plus
    /// `extra` lines; returns its path.
    pub fn servers_file(&self, extra: &[&str]) -> PathBuf {
        let mut text = String::from("# the lab fleet\n");
        for h in &self.hosts {
            let (ca, cert, key) = &h.files;
            text += &format!(
                "{} ca={} cert={} key={}\n",
                h.url(),
                ca.display(),
                cert.display(),
                key.display()
            );
        }
        for line in extra {
            text += &format!("{line}\n");
        }
        let path = self.dir.path().join("servers.txt");
        std::fs::write(&path, text).expect("write the servers file");
        path
    }

    /// A scratch directory that lives as long as the lab.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Runs `bpfmapctl args` in the hub namespace and returns its output.
    pub fn ctl(&self, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.ns.hub])
            .arg(crate::bins::bpfmapctl())
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .expect("run bpfmapctl in the hub namespace")
    }

    /// Runs `make()`'s future in the hub namespace (see [`Namespaces::run_in_hub`]).
    pub async fn run_in_hub<F, Fut, T>(&self, make: F) -> T
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = T>,
        T: Send + 'static,
    {
        self.ns.run_in_hub(make).await
    }
}
