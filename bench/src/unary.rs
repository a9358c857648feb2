//! Unary load: N concurrent callers over C HTTP/2 connections for a fixed time, counting
//! calls and timing each one; the echo floor and raw syscalls beside them.

use std::time::{Duration, Instant};

use anyhow::Result;
use bpfmap_client::{Client, Flag, MapRef};
use bpfmapd::kernel::Map;
use serde_json::{json, Value};
use tonic::transport::Channel;

use crate::echo::pb::{echo_client::EchoClient, EchoMessage};
use crate::kmap::{key, value, VALUE};

/// Which call a load runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// The echo service (the gRPC floor).
    Echo,
    /// `Lookup` of an existing key.
    Lookup,
    /// `Update` (BPF_ANY) of an existing key.
    Update,
}

impl Call {
    /// Its name in the table.
    pub fn name(self) -> &'static str {
        match self {
            Call::Echo => "Echo (floor)",
            Call::Lookup => "Lookup",
            Call::Update => "Update",
        }
    }
}

/// The figures of one load.
#[derive(Debug, Clone, Copy)]
pub struct Stats {
    /// Calls completed in the measured window.
    pub calls: u64,
    /// Calls per second.
    pub rate: f64,
    /// Median latency, µs.
    pub p50_us: f64,
    /// 99th percentile latency, µs.
    pub p99_us: f64,
    /// CPU time of the server process per call, µs (user + system).
    pub server_cpu_us: f64,
}

impl Stats {
    fn of(mut lat_ns: Vec<u32>, secs: f64) -> Stats {
        lat_ns.sort_unstable();
        let pct = |p: f64| -> f64 {
            if lat_ns.is_empty() {
                return f64::NAN;
            }
            let i = ((lat_ns.len() as f64 * p).ceil() as usize).clamp(1, lat_ns.len()) - 1;
            f64::from(lat_ns[i]) / 1e3
        };
        Stats {
            calls: lat_ns.len() as u64,
            rate: lat_ns.len() as f64 / secs,
            p50_us: pct(0.50),
            p99_us: pct(0.99),
            server_cpu_us: f64::NAN,
        }
    }

    /// As JSON.
    pub fn json(&self) -> Value {
        json!({
            "calls": self.calls,
            "calls_per_s": self.rate,
            "p50_us": self.p50_us,
            "p99_us": self.p99_us,
            "server_cpu_us_per_call": self.server_cpu_us,
        })
    }
}

enum Caller {
    Echo(EchoClient<Channel>),
    Map(Client, Call, u32, u32),
}

impl Caller {
    async fn call(&mut self, i: u32) -> Result<()> {
        match self {
            Caller::Echo(c) => {
                c.echo(EchoMessage {
                    payload: bytes::Bytes::from_static(&[0; 8]),
                })
                .await?;
            }
            Caller::Map(c, Call::Lookup, id, n) => {
                c.lookup(MapRef::Id(*id), &key(i % *n)[..]).await?;
            }
            Caller::Map(c, _, id, n) => {
                c.update(MapRef::Id(*id), &key(i % *n)[..], &value(i)[..], Flag::Any)
                    .await?;
            }
        }
        Ok(())
    }
}

/// User + system CPU time of process `pid`, in seconds.
pub fn cpu_secs(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return f64::NAN;
    };
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        f.get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    // /proc counts in USER_HZ, 100 on Linux whatever the kernel's tick.
    (ticks(11) + ticks(12)) / 100.0
}

/// One load: `callers` tasks over `conns` connections to `addr` (served by process
/// `server`), `warm` unmeasured then `secs` measured. `map` and `keys` name the map and its
/// key range (unused for echo).
#[allow(clippy::too_many_arguments)]
pub async fn run(
    call: Call,
    server: u32,
    addr: &str,
    callers: usize,
    conns: usize,
    warm: Duration,
    secs: Duration,
    map: u32,
    keys: u32,
) -> Result<Stats> {
    let mut echo = Vec::new();
    let mut maps = Vec::new();
    for _ in 0..conns.max(1) {
        if call == Call::Echo {
            echo.push(crate::echo::connect(addr).await?);
        } else {
            maps.push(Client::connect(addr).await?);
        }
    }
    let start = Instant::now() + warm;
    let end = start + secs;
    let mut tasks = Vec::new();
    for c in 0..callers {
        let mut caller = if call == Call::Echo {
            Caller::Echo(echo[c % echo.len()].clone())
        } else {
            Caller::Map(maps[c % maps.len()].clone(), call, map, keys)
        };
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(1 << 16);
            let mut i = (c as u32).wrapping_mul(7919);
            loop {
                let t0 = Instant::now();
                if t0 >= end {
                    break;
                }
                caller.call(i).await?;
                if t0 >= start {
                    lat.push(u32::try_from(t0.elapsed().as_nanos()).unwrap_or(u32::MAX));
                }
                i = i.wrapping_add(104_729);
            }
            anyhow::Ok(lat)
        }));
    }
    let cpu = tokio::spawn(async move {
        tokio::time::sleep_until(start.into()).await;
        let a = cpu_secs(server);
        tokio::time::sleep_until(end.into()).await;
        cpu_secs(server) - a
    });
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    let mut stats = Stats::of(all, secs.as_secs_f64());
    stats.server_cpu_us = cpu.await? * 1e6 / stats.calls.max(1) as f64;
    Ok(stats)
}

/// Raw syscalls in this process, one thread: lookup (or update) of `keys` keys for `secs`.
pub fn raw(map: &Map, update: bool, keys: u32, secs: Duration) -> Result<Stats> {
    let end = Instant::now() + secs;
    let mut lat = Vec::with_capacity(1 << 20);
    let mut v = [0u8; VALUE];
    let mut i = 0u32;
    let begin = Instant::now();
    while Instant::now() < end {
        let k = key(i % keys);
        let t0 = Instant::now();
        if update {
            map.update(Some(&k), &value(i), 0)?;
        } else {
            map.lookup(Some(&k), &mut v, 0)?;
        }
        lat.push(u32::try_from(t0.elapsed().as_nanos()).unwrap_or(u32::MAX));
        i = i.wrapping_add(104_729);
    }
    Ok(Stats::of(lat, begin.elapsed().as_secs_f64()))
}
