//! Scraping `bpfmapd --metrics-listen ADDR` as Prometheus does: `GET /metrics`, then the
//! samples of the text exposition by series (`name{labels}`).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One scrape: the HTTP status line, the content type, and every sample by series.
#[derive(Debug, Clone)]
pub struct Scrape {
    /// The status line, e.g. `HTTP/1.1 200 OK`.
    pub status: String,
    /// The `content-type` header.
    pub content_type: String,
    /// The body as sent.
    pub text: String,
    /// `series -> value`, series as written (`bpfmapd_rpc_calls_total{rpc="Lookup",code="OK"}`).
    pub samples: BTreeMap<String, f64>,
}

impl Scrape {
    /// The HTTP status code (0 when the status line is malformed).
    pub fn code(&self) -> u16 {
        self.status
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0)
    }

    /// The value of `series`, 0 when absent (a counter that never moved is not listed).
    pub fn get(&self, series: &str) -> f64 {
        self.samples.get(series).copied().unwrap_or(0.0)
    }

    /// The sum of every series of metric `name` whose labels contain all of `labels`
    /// (each `key="value"`).
    pub fn sum(&self, name: &str, labels: &[&str]) -> f64 {
        self.samples
            .iter()
            .filter(|(k, _)| {
                let (n, rest) = k.split_once('{').unwrap_or((k, ""));
                n == name && labels.iter().all(|l| rest.contains(l))
            })
            .map(|(_, v)| v)
            .sum()
    }
}

/// `GET path` on `addr` over HTTP/1.0.
pub async fn get(addr: SocketAddr, path: &str) -> Scrape {
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connect to the metrics listener {addr}: {e}"));
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .expect("send the scrape request");
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.expect("read the scrape");
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head.lines().next().unwrap_or("").to_owned();
    let content_type = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_owned())
        })
        .unwrap_or_default();
    let samples = body
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect();
    Scrape {
        status,
        content_type,
        text: body.to_owned(),
        samples,
    }
}
