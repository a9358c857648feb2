//! [`TlsOptions`]: the CA and client identity for `https://` addresses.

use std::path::Path;

use tonic::transport::{Certificate, ClientTlsConfig, Identity};

use crate::error::Error;

/// TLS settings for `https://` addresses.
///
/// Without a CA the system's trust roots are used. A client certificate and key are sent
/// when the daemon asks for them (`--tls-client-ca` on the daemon).
///
/// ```no_run
/// # async fn f() -> Result<(), bpfmap_client::Error> {
/// use bpfmap_client::{Client, ConnectOptions, TlsOptions};
/// let tls = TlsOptions::new()
///     .ca_file("/etc/bpfmapd/ca.pem")?
///     .identity_files("/etc/bpfmapd/client.pem", "/etc/bpfmapd/client.key")?;
/// let client = Client::connect_with(
///     "https://node1.example:50051",
///     &ConnectOptions::default().tls(tls),
/// )
/// .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    ca_pem: Option<Vec<u8>>,
    identity_pem: Option<(Vec<u8>, Vec<u8>)>,
    domain: Option<String>,
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, Error> {
    std::fs::read(path)
        .map_err(|e| Error::Tls(format!("cannot read the {what} {}: {e}", path.display())))
}

impl TlsOptions {
    /// No CA (system roots), no client identity.
    pub fn new() -> Self {
        Self::default()
    }

    /// Trusts the CA certificate(s) in this PEM text instead of the system roots.
    pub fn ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_pem = Some(pem.into());
        self
    }

    /// Trusts the CA certificate(s) in this PEM file.
    pub fn ca_file(self, path: impl AsRef<Path>) -> Result<Self, Error> {
        let pem = read(path.as_ref(), "CA certificate")?;
        Ok(self.ca_pem(pem))
    }

    /// Presents this client certificate and private key (PEM text).
    pub fn identity_pem(mut self, cert: impl Into<Vec<u8>>, key: impl Into<Vec<u8>>) -> Self {
        self.identity_pem = Some((cert.into(), key.into()));
        self
    }

    /// Presents the client certificate and private key in these PEM files.
    pub fn identity_files(
        self,
        cert: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<Self, Error> {
        let c = read(cert.as_ref(), "client certificate")?;
        let k = read(key.as_ref(), "client key")?;
        Ok(self.identity_pem(c, k))
    }

    /// Checks the server certificate against this name instead of the address's host.
    pub fn domain(mut self, name: impl Into<String>) -> Self {
        self.domain = Some(name.into());
        self
    }

    /// True when neither a CA nor an identity nor a domain was set.
    pub fn is_default(&self) -> bool {
        self.ca_pem.is_none() && self.identity_pem.is_none() && self.domain.is_none()
    }

    pub(crate) fn to_tonic(&self) -> ClientTlsConfig {
        let mut cfg = ClientTlsConfig::new();
        match &self.ca_pem {
            Some(pem) => cfg = cfg.ca_certificate(Certificate::from_pem(pem)),
            None => cfg = cfg.with_native_roots(),
        }
        if let Some((cert, key)) = &self.identity_pem {
            cfg = cfg.identity(Identity::from_pem(cert, key));
        }
        if let Some(d) = &self.domain {
            cfg = cfg.domain_name(d.clone());
        }
        cfg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_files_name_the_path() {
        let err = TlsOptions::new().ca_file("/nonexistent/ca.pem").err();
        let text = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(text.contains("/nonexistent/ca.pem"), "{text}");
        assert!(TlsOptions::new().is_default());
        assert!(!TlsOptions::new().domain("x").is_default());
    }
}
