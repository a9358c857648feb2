//! Certificates made in the test with rcgen: a [`Ca`], server certificates for the daemon's
//! TLS listener, client certificates (CN, SAN DNS and URI names, validity) for mutual TLS.
//!
//! ```no_run
//! use bpfmap_tests::certs::{Ca, Leaf};
//! let dir = tempfile::tempdir().unwrap();
//! let ca = Ca::new("bpfmapd test CA");
//! let server = ca.server_cert();              // localhost + 127.0.0.1
//! let agent = ca.issue(&Leaf::client("agent-1").uri("spiffe://fleet/agent-1"));
//! let (cert, key) = server.write(dir.path(), "server");
//! let ca_file = ca.write(dir.path(), "ca");
//! ```

use std::path::{Path, PathBuf};

use bpfmap_client::TlsOptions;
use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, CertifiedIssuer, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};

/// A certificate authority: a self-signed CA certificate and its key.
#[derive(Debug)]
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and its private key, PEM.
#[derive(Debug, Clone)]
pub struct CertKey {
    /// The certificate (PEM).
    pub cert_pem: String,
    /// The private key (PEM, PKCS#8).
    pub key_pem: String,
}

/// What a leaf certificate says: subject CN, SAN names, validity, usage.
#[derive(Debug, Clone)]
pub struct Leaf {
    cn: String,
    dns: Vec<String>,
    uris: Vec<String>,
    ips: Vec<std::net::IpAddr>,
    expired: bool,
    server: bool,
}

impl Leaf {
    /// A client certificate (extended key usage clientAuth) with subject CN `cn`.
    pub fn client(cn: &str) -> Leaf {
        Leaf {
            cn: cn.to_owned(),
            dns: Vec::new(),
            uris: Vec::new(),
            ips: Vec::new(),
            expired: false,
            server: false,
        }
    }

    /// A server certificate (serverAuth) for `localhost` and 127.0.0.1.
    pub fn server() -> Leaf {
        Leaf {
            cn: "localhost".into(),
            dns: vec!["localhost".into()],
            uris: Vec::new(),
            ips: vec![std::net::Ipv4Addr::LOCALHOST.into()],
            expired: false,
            server: true,
        }
    }

    /// Adds a SAN DNS name.
    pub fn dns(mut self, name: &str) -> Leaf {
        self.dns.push(name.to_owned());
        self
    }

    /// Adds a SAN URI (e.g. a SPIFFE id `spiffe://fleet/agent-1`).
    pub fn uri(mut self, uri: &str) -> Leaf {
        self.uris.push(uri.to_owned());
        self
    }

    /// Adds a SAN IP address (servers dialled by address).
    pub fn ip(mut self, ip: std::net::IpAddr) -> Leaf {
        self.ips.push(ip);
        self
    }

    /// Valid from 2000-01-01 to 2001-01-01: long expired.
    pub fn expired(mut self) -> Leaf {
        self.expired = true;
        self
    }
}

impl Ca {
    /// A new CA (ECDSA P-256) whose subject CN is `cn`.
    pub fn new(cn: &str) -> Ca {
        let key = KeyPair::generate().expect("generate the CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = date_time_ymd(2000, 1, 1);
        params.not_after = date_time_ymd(2099, 1, 1);
        let issuer = CertifiedIssuer::self_signed(params, key).expect("self-sign the CA");
        Ca { issuer }
    }

    /// The CA certificate (PEM).
    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// Issues a leaf certificate.
    pub fn issue(&self, leaf: &Leaf) -> CertKey {
        let key = KeyPair::generate().expect("generate a leaf key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("leaf params");
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, leaf.cn.as_str());
        for d in &leaf.dns {
            params
                .subject_alt_names
                .push(SanType::DnsName(d.clone().try_into().expect("DNS SAN")));
        }
        for u in &leaf.uris {
            params
                .subject_alt_names
                .push(SanType::URI(u.clone().try_into().expect("URI SAN")));
        }
        for ip in &leaf.ips {
            params.subject_alt_names.push(SanType::IpAddress(*ip));
        }
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![if leaf.server {
            ExtendedKeyUsagePurpose::ServerAuth
        } else {
            ExtendedKeyUsagePurpose::ClientAuth
        }];
        params.use_authority_key_identifier_extension = true;
        if leaf.expired {
            params.not_before = date_time_ymd(2000, 1, 1);
            params.not_after = date_time_ymd(2001, 1, 1);
        } else {
            params.not_before = date_time_ymd(2000, 1, 1);
            params.not_after = date_time_ymd(2099, 1, 1);
        }
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("sign the leaf certificate");
        CertKey {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// A server certificate for `localhost` and 127.0.0.1.
    pub fn server_cert(&self) -> CertKey {
        self.issue(&Leaf::server())
    }

    /// Writes the CA certificate to `<dir>/<stem>.pem` and returns the path.
    pub fn write(&self, dir: &Path, stem: &str) -> PathBuf {
        let path = dir.join(format!("{stem}.pem"));
        std::fs::write(&path, self.cert_pem()).expect("write the CA certificate");
        path
    }

    /// Client TLS options that trust this CA (no client identity).
    pub fn trust(&self) -> TlsOptions {
        TlsOptions::new()
            .ca_pem(self.cert_pem())
            .domain("localhost")
    }
}

impl CertKey {
    /// Writes `<dir>/<stem>.pem` and `<dir>/<stem>.key`; returns (cert path, key path).
    pub fn write(&self, dir: &Path, stem: &str) -> (PathBuf, PathBuf) {
        let cert = dir.join(format!("{stem}.pem"));
        let key = dir.join(format!("{stem}.key"));
        std::fs::write(&cert, &self.cert_pem).expect("write the certificate");
        std::fs::write(&key, &self.key_pem).expect("write the key");
        (cert, key)
    }

    /// `tls` plus this certificate as the client identity.
    pub fn identity(&self, tls: TlsOptions) -> TlsOptions {
        tls.identity_pem(self.cert_pem.clone(), self.key_pem.clone())
    }
}

/// A daemon's TLS material in one directory: the CA, the server certificate, and the flags
/// that point the daemon at them.
#[derive(Debug)]
pub struct ServerTls {
    /// The directory holding the files (removed on drop).
    pub dir: tempfile::TempDir,
    /// The CA that signed the server certificate (and, with mTLS, the client certificates).
    pub ca: Ca,
    /// `--tls-cert <f> --tls-key <f>` (+ `--tls-client-ca <f>` when made with `mtls`).
    pub args: Vec<String>,
}

impl ServerTls {
    /// Server TLS without client certificates.
    pub fn new() -> ServerTls {
        Self::make(false)
    }

    /// Server TLS requiring client certificates signed by the same CA (mutual TLS).
    pub fn mtls() -> ServerTls {
        Self::make(true)
    }

    fn make(mtls: bool) -> ServerTls {
        let dir = tempfile::Builder::new()
            .prefix("bpfmap-tls-")
            .tempdir()
            .expect("temporary directory for certificates");
        let ca = Ca::new("bpfmapd test CA");
        let (cert, key) = ca.server_cert().write(dir.path(), "server");
        let mut args = vec![
            "--tls-cert".to_owned(),
            cert.display().to_string(),
            "--tls-key".to_owned(),
            key.display().to_string(),
        ];
        if mtls {
            let ca_file = ca.write(dir.path(), "client-ca");
            args.push("--tls-client-ca".into());
            args.push(ca_file.display().to_string());
        }
        ServerTls { dir, ca, args }
    }
}

impl Default for ServerTls {
    fn default() -> Self {
        Self::new()
    }
}
