//! [`Fleet`]: the same call on many daemons at once, one result per host.
//!
//! Each host has its own address and [`ConnectOptions`] (so its own TLS identity: CA,
//! client certificate, server name). [`Fleet::run`] runs a closure against every host
//! concurrently, at most [`Fleet::concurrency`] at a time, each bounded by the per-host
//! [`Fleet::deadline`] (connecting included). A host that cannot be reached, answers with an
//! error, runs past its deadline or even panics in the closure gives an `Err` in its own
//! [`HostResult`]; the others are not affected. Connections are made on first use and kept
//! for later runs.
//!
//! ```no_run
//! # async fn f() -> Result<(), bpfmap_client::Error> {
//! use std::time::Duration;
//! use bpfmap_client::{ConnectOptions, Fleet, FleetHost, MapRef, TlsOptions};
//!
//! let tls = |n: u32| -> Result<TlsOptions, bpfmap_client::Error> {
//!     TlsOptions::new()
//!         .ca_file("/etc/bpfmap/ca.pem")?
//!         .identity_files(format!("/etc/bpfmap/agent-{n}.pem"), format!("/etc/bpfmap/agent-{n}.key"))
//! };
//! let fleet = Fleet::new()
//!     .host(FleetHost::new("https://node1:50051").tls(tls(1)?))
//!     .host(FleetHost::new("https://node2:50051").tls(tls(2)?))
//!     .concurrency(8)
//!     .deadline(Some(Duration::from_secs(10)));
//! for r in fleet.run(|c| async move { c.get_map(MapRef::name("stats")).await }).await {
//!     match r.result {
//!         Ok(info) => println!("{}: map id {}", r.host, info.id),
//!         Err(e) => println!("{}: failed: {e}", r.host),
//!     }
//! }
//! # Ok(()) }
//! ```

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};
use tokio::sync::OnceCell;

use crate::client::Client;
use crate::connect::ConnectOptions;
use crate::error::Error;
use crate::tls::TlsOptions;

/// Hosts run at once by default.
pub const DEFAULT_CONCURRENCY: usize = 16;
/// Default time one host gets for one run, connecting included.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(60);

/// One daemon of a fleet: its address and how to connect to it.
#[derive(Debug, Clone)]
pub struct FleetHost {
    /// `unix:/path`, `http://host:port`, `https://host:port` or `host:port`.
    pub addr: String,
    /// Timeouts and this host's TLS settings.
    pub options: ConnectOptions,
}

impl FleetHost {
    /// A host with the default [`ConnectOptions`].
    pub fn new(addr: impl Into<String>) -> FleetHost {
        FleetHost {
            addr: addr.into(),
            options: ConnectOptions::default(),
        }
    }

    /// Sets this host's TLS settings (CA, client identity, server name).
    pub fn tls(mut self, tls: TlsOptions) -> FleetHost {
        self.options.tls = Some(tls);
        self
    }

    /// Sets all connection options.
    pub fn options(mut self, options: ConnectOptions) -> FleetHost {
        self.options = options;
        self
    }
}

/// The outcome of a run on one host.
#[derive(Debug)]
pub struct HostResult<T> {
    /// The host's address, as given.
    pub host: String,
    /// Time from the start of this host's turn to its end.
    pub elapsed: Duration,
    /// What the closure returned, or why the host failed.
    pub result: Result<T, Error>,
}

impl<T> HostResult<T> {
    /// True when the host succeeded.
    pub fn is_ok(&self) -> bool {
        self.result.is_ok()
    }
}

#[derive(Debug)]
struct Slot {
    host: FleetHost,
    client: OnceCell<Client>,
}

/// Many daemons, driven together. See the [module docs](self).
#[derive(Debug)]
pub struct Fleet {
    slots: Vec<Slot>,
    concurrency: usize,
    deadline: Option<Duration>,
}

impl Default for Fleet {
    fn default() -> Self {
        Fleet::new()
    }
}

impl Fleet {
    /// An empty fleet: [`DEFAULT_CONCURRENCY`] hosts at once, [`DEFAULT_DEADLINE`] per host.
    pub fn new() -> Fleet {
        Fleet {
            slots: Vec::new(),
            concurrency: DEFAULT_CONCURRENCY,
            deadline: Some(DEFAULT_DEADLINE),
        }
    }

    /// A fleet of these hosts.
    pub fn from_hosts(hosts: impl IntoIterator<Item = FleetHost>) -> Fleet {
        hosts.into_iter().fold(Fleet::new(), Fleet::host)
    }

    /// Adds a host.
    pub fn host(mut self, host: FleetHost) -> Fleet {
        self.push(host);
        self
    }

    /// Adds a host.
    pub fn push(&mut self, host: FleetHost) {
        self.slots.push(Slot {
            host,
            client: OnceCell::new(),
        });
    }

    /// Runs at most `n` hosts at once (at least one).
    pub fn concurrency(mut self, n: usize) -> Fleet {
        self.concurrency = n.max(1);
        self
    }

    /// Bounds each host's turn (connect + call); `None` for no bound.
    pub fn deadline(mut self, d: Option<Duration>) -> Fleet {
        self.deadline = d;
        self
    }

    /// The hosts, in the order they were added.
    pub fn hosts(&self) -> impl Iterator<Item = &FleetHost> {
        self.slots.iter().map(|s| &s.host)
    }

    /// Number of hosts.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True without hosts.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Runs `call` against every host (a [`Client`] for it; [`Client::address`] tells which)
    /// and returns one [`HostResult`] per host, in the order the hosts were added. Never
    /// fails as a whole: every failure belongs to its host.
    pub async fn run<T, F, Fut>(&self, call: F) -> Vec<HostResult<T>>
    where
        F: Fn(Client) -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let call = &call;
        let turns = self.slots.iter().enumerate().map(|(i, slot)| async move {
            let started = Instant::now();
            let work = async {
                let client = slot
                    .client
                    .get_or_try_init(|| Client::connect_with(&slot.host.addr, &slot.host.options))
                    .await?
                    .clone();
                call(client).await
            };
            let guarded = AssertUnwindSafe(work).catch_unwind();
            let outcome = match self.deadline {
                Some(d) => tokio::time::timeout(d, guarded)
                    .await
                    .unwrap_or(Ok(Err(Error::DeadlineExceeded(d)))),
                None => guarded.await,
            };
            let result = outcome.unwrap_or_else(|panic| {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".to_owned());
                Err(Error::Panicked(what))
            });
            let r = HostResult {
                host: slot.host.addr.clone(),
                elapsed: started.elapsed(),
                result,
            };
            (i, r)
        });
        let mut done: Vec<(usize, HostResult<T>)> = futures::stream::iter(turns)
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        done.sort_by_key(|(i, _)| *i);
        done.into_iter().map(|(_, r)| r).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_result_per_host_in_order_whatever_happens() {
        let fleet = Fleet::new()
            .host(FleetHost::new("unix:/nonexistent/a.sock"))
            .host(FleetHost::new("not an address at all"))
            .host(FleetHost::new("unix:/nonexistent/b.sock"))
            .concurrency(2);
        let results = fleet.run(|c| async move { c.list_maps(false).await }).await;
        let hosts: Vec<&str> = results.iter().map(|r| r.host.as_str()).collect();
        assert_eq!(
            hosts,
            [
                "unix:/nonexistent/a.sock",
                "not an address at all",
                "unix:/nonexistent/b.sock"
            ]
        );
        assert!(results[0]
            .result
            .as_ref()
            .err()
            .is_some_and(Error::is_unavailable));
        assert!(results[1]
            .result
            .as_ref()
            .err()
            .is_some_and(Error::is_invalid_argument));
    }

    #[tokio::test]
    #[allow(clippy::panic)] // the panic is what is tested
    async fn deadlines_and_panics_stay_with_their_host() {
        // A listening socket that never answers the HTTP/2 handshake.
        let dir = std::env::temp_dir().join(format!("bpfmap-fleet-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("silent.sock");
        let _ = std::fs::remove_file(&path);
        let _listener = std::os::unix::net::UnixListener::bind(&path).ok();
        let fleet = Fleet::new()
            .host(FleetHost::new(format!("unix:{}", path.display())))
            .deadline(Some(Duration::from_millis(300)));
        let started = Instant::now();
        let r = fleet.run(|c| async move { c.list_maps(false).await }).await;
        assert!(started.elapsed() < Duration::from_secs(3));
        assert_eq!(
            r[0].result.as_ref().err().map(Error::code),
            Some(tonic::Code::DeadlineExceeded)
        );
        // A closure that panics on one host fails that host only.
        let fleet = Fleet::new()
            .host(FleetHost::new(format!("unix:{}", path.display())))
            .host(FleetHost::new("unix:/nonexistent/x.sock"))
            .deadline(Some(Duration::from_secs(5)));
        let r = fleet
            .run(|c| async move {
                if c.address().contains("silent") {
                    panic!("boom");
                }
                Ok(())
            })
            .await;
        assert_eq!(r.len(), 2);
        assert!(
            matches!(&r[0].result, Err(Error::Panicked(m)) if m == "boom"),
            "{:?}",
            r[0].result
        );
        assert!(r[1]
            .result
            .as_ref()
            .err()
            .is_some_and(Error::is_unavailable));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
