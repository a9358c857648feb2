//! Server addresses ([`Address`]), connection options ([`ConnectOptions`]) and channels.

use std::path::PathBuf;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::error::{chain, Error};
use crate::tls::TlsOptions;

/// The address used when none is given and `BPFMAP_SERVER` is unset.
pub const DEFAULT_ADDR: &str = "unix:/run/bpfmapd/bpfmapd.sock";

/// The environment variable naming the default server address.
pub const SERVER_ENV: &str = "BPFMAP_SERVER";

/// A parsed server address.
///
/// ```
/// use bpfmap_client::Address;
/// assert_eq!(Address::parse("unix:/run/x.sock").unwrap(), Address::Unix("/run/x.sock".into()));
/// assert_eq!(Address::parse("localhost:50051").unwrap(), Address::Http("http://localhost:50051".into()));
/// assert!(matches!(Address::parse("https://h:1").unwrap(), Address::Https(_)));
/// assert!(Address::parse("ftp://h").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// A Unix socket: `unix:/path`, `unix:///path`, or an absolute path.
    Unix(PathBuf),
    /// Plain-text HTTP/2 over TCP: `http://host:port`, or `host:port`.
    Http(String),
    /// HTTP/2 over TLS: `https://host:port`.
    Https(String),
}

impl Address {
    /// Parses `unix:/path`, `http://host:port`, `https://host:port` or `host:port`.
    pub fn parse(addr: &str) -> Result<Self, Error> {
        let bad = |reason: &str| Error::BadAddress {
            addr: addr.to_owned(),
            reason: reason.to_owned(),
        };
        let addr_t = addr.trim();
        if let Some(path) = addr_t.strip_prefix("unix:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err(bad(
                    "empty socket path, e.g. unix:/run/bpfmapd/bpfmapd.sock",
                ));
            }
            return Ok(Address::Unix(path.into()));
        }
        if addr_t.starts_with('/') {
            return Ok(Address::Unix(addr_t.into()));
        }
        let (scheme, rest) = match addr_t.split_once("://") {
            Some((s, r)) => (s.to_ascii_lowercase(), r),
            None => ("http".to_owned(), addr_t),
        };
        if rest.is_empty() {
            return Err(bad("no host, e.g. http://127.0.0.1:50051"));
        }
        let uri = format!("{scheme}://{rest}");
        uri.parse::<Uri>().map_err(|e| bad(&e.to_string()))?;
        match scheme.as_str() {
            "http" => Ok(Address::Http(uri)),
            "https" => Ok(Address::Https(uri)),
            _ => Err(bad(
                "use unix:/path, http://host:port, https://host:port or host:port",
            )),
        }
    }
}

/// How to connect: timeouts and TLS.
///
/// Defaults: 5 s to connect, HTTP/2 keep-alive pings every 30 s (20 s to answer), no
/// per-call deadline (dumps of big maps take as long as they take), system TLS roots.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Time allowed to establish the connection.
    pub connect_timeout: Duration,
    /// Deadline for each call, `None` for none.
    pub request_timeout: Option<Duration>,
    /// Interval of HTTP/2 keep-alive pings, `None` to send none.
    pub keepalive: Option<Duration>,
    /// TLS settings for `https://` addresses (`None`: system roots, no client identity).
    pub tls: Option<TlsOptions>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            connect_timeout: Duration::from_secs(5),
            request_timeout: None,
            keepalive: Some(Duration::from_secs(30)),
            tls: None,
        }
    }
}

impl ConnectOptions {
    /// Sets the TLS options.
    pub fn tls(mut self, tls: TlsOptions) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Sets the time allowed to connect.
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }

    /// Sets a deadline for every call.
    pub fn request_timeout(mut self, t: Duration) -> Self {
        self.request_timeout = Some(t);
        self
    }

    fn endpoint(&self, uri: String, addr: &str) -> Result<Endpoint, Error> {
        let mut ep = Endpoint::from_shared(uri)
            .map_err(|e| Error::BadAddress {
                addr: addr.to_owned(),
                reason: e.to_string(),
            })?
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true);
        if let Some(t) = self.request_timeout {
            ep = ep.timeout(t);
        }
        if let Some(k) = self.keepalive {
            ep = ep
                .http2_keep_alive_interval(k)
                .keep_alive_timeout(Duration::from_secs(20))
                .keep_alive_while_idle(true);
        }
        Ok(ep)
    }
}

/// Opens a channel to `addr` with `opts`.
pub async fn channel_with(addr: &str, opts: &ConnectOptions) -> Result<Channel, Error> {
    let connect_err = |e: tonic::transport::Error| Error::Connect {
        addr: addr.to_owned(),
        reason: chain(&e),
    };
    match Address::parse(addr)? {
        Address::Unix(path) => {
            if opts.tls.as_ref().is_some_and(|t| !t.is_default()) {
                return Err(Error::Tls(format!(
                    "TLS options were given but {addr} is a Unix socket"
                )));
            }
            // The URI is ignored by the connector; it only has to parse.
            let ep = opts.endpoint("http://localhost".into(), addr)?;
            ep.connect_with_connector(tower::service_fn(move |_: Uri| {
                let path = path.clone();
                async move {
                    Ok::<_, std::io::Error>(TokioIo::new(
                        tokio::net::UnixStream::connect(path).await?,
                    ))
                }
            }))
            .await
            .map_err(connect_err)
        }
        Address::Http(uri) => {
            if opts.tls.as_ref().is_some_and(|t| !t.is_default()) {
                return Err(Error::Tls(format!(
                    "TLS options were given but {addr} is plain http: use https://"
                )));
            }
            opts.endpoint(uri, addr)?
                .connect()
                .await
                .map_err(connect_err)
        }
        Address::Https(uri) => {
            let tls = opts.tls.clone().unwrap_or_default().to_tonic();
            opts.endpoint(uri, addr)?
                .tls_config(tls)
                .map_err(|e| Error::Tls(chain(&e)))?
                .connect()
                .await
                .map_err(connect_err)
        }
    }
}

/// The address from `BPFMAP_SERVER`, else [`DEFAULT_ADDR`].
pub fn default_address() -> String {
    std::env::var(SERVER_ENV)
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_ADDR.to_owned())
}

/// TLS options from `BPFMAP_TLS_CA`, `BPFMAP_TLS_CERT` and `BPFMAP_TLS_KEY`, if any is set.
pub fn tls_from_env() -> Result<Option<TlsOptions>, Error> {
    let var = |n: &str| std::env::var_os(n).filter(|v| !v.is_empty());
    let (ca, cert, key) = (
        var("BPFMAP_TLS_CA"),
        var("BPFMAP_TLS_CERT"),
        var("BPFMAP_TLS_KEY"),
    );
    if ca.is_none() && cert.is_none() && key.is_none() {
        return Ok(None);
    }
    let mut tls = TlsOptions::new();
    if let Some(ca) = ca {
        tls = tls.ca_file(ca)?;
    }
    match (cert, key) {
        (Some(c), Some(k)) => tls = tls.identity_files(c, k)?,
        (None, None) => {}
        _ => {
            return Err(Error::Tls(
                "BPFMAP_TLS_CERT and BPFMAP_TLS_KEY must be set together".into(),
            ))
        }
    }
    Ok(Some(tls))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_addresses() {
        let p = |s: &str| Address::parse(s).ok();
        assert_eq!(p("unix:/a.sock"), Some(Address::Unix("/a.sock".into())));
        assert_eq!(p("unix:///a.sock"), Some(Address::Unix("/a.sock".into())));
        assert_eq!(p("/a.sock"), Some(Address::Unix("/a.sock".into())));
        assert_eq!(
            p("127.0.0.1:50051"),
            Some(Address::Http("http://127.0.0.1:50051".into()))
        );
        assert_eq!(p("HTTPS://h:1"), Some(Address::Https("https://h:1".into())));
        assert_eq!(p("[::1]:5"), Some(Address::Http("http://[::1]:5".into())));
        for bad in ["unix:", "http://", "ftp://h:1", "a b:1"] {
            assert!(Address::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn unreachable_socket_is_unavailable() {
        let err = channel_with("unix:/nonexistent/x.sock", &ConnectOptions::default())
            .await
            .err();
        assert!(err.as_ref().is_some_and(Error::is_unavailable), "{err:?}");
        let text = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(text.contains("No such file"), "{text}");
    }

    #[tokio::test]
    async fn tls_options_on_plain_addresses_are_refused() {
        let opts = ConnectOptions::default().tls(TlsOptions::new().domain("x"));
        let err = channel_with("unix:/x.sock", &opts).await.err();
        assert!(matches!(err, Some(Error::Tls(_))));
    }
}
