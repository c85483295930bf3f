//! The network stages of `wxgate doctor`, before any HTTP: the console's URL rules, DNS,
//! TCP and TLS (tokio-rustls with the webpki roots, plus an explicit `--ca`), and the
//! HTTP client built on the same TLS configuration.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use wxgate_proto::console::{self, Severity};

use crate::cli::probe::{Check, Status};

pub(super) struct ParsedUrl {
    pub(super) https: bool,
    pub(super) host: String,
    pub(super) port: u16,
}

fn parse_url(url: &str) -> Option<ParsedUrl> {
    let parsed = reqwest::Url::parse(url).ok()?;
    let https = match parsed.scheme() {
        "https" => true,
        "http" => false,
        _ => return None,
    };
    let host = parsed
        .host_str()?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    Some(ParsedUrl {
        https,
        port: parsed.port_or_known_default()?,
        host,
    })
}

fn is_local(host: &str) -> bool {
    host == "localhost"
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| match ip {
            std::net::IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_link_local(),
            std::net::IpAddr::V6(v6) => v6.is_loopback(),
        })
}

/// 1. The console's URL rules. A local host is a development setup: rules are warnings.
pub(super) fn url_rules(text: &str, checks: &mut Vec<Check>) -> Option<ParsedUrl> {
    let Some(url) = parse_url(text) else {
        checks.push(
            Check::new(
                "URL",
                Status::Fail,
                format!("{text:?} is not an http:// or https:// URL"),
            )
            .hint("write the full URL, e.g. https://wx.example.com/wx/shop"),
        );
        return None;
    };
    let local = is_local(&url.host);
    let findings = console::check_url(text);
    if findings.is_empty() {
        checks.push(Check::new(
            "URL rules",
            Status::Pass,
            "http(s), port 80/443, no #, % or query, public host",
        ));
    }
    for finding in findings {
        let status = match finding.severity {
            Severity::Error if !local => Status::Fail,
            _ => Status::Warn,
        };
        let note = if local && finding.severity == Severity::Error {
            " (local development: not fatal here, but the console will refuse it)"
        } else {
            ""
        };
        checks.push(
            Check::new("URL rules", status, format!("{}{note}", finding.problem)).hint(finding.fix),
        );
    }

    Some(url)
}

/// 2. DNS: the address WeChat would connect to.
pub(super) async fn dns(
    url: &ParsedUrl,
    timeout: Duration,
    checks: &mut Vec<Check>,
) -> Option<SocketAddr> {
    let addrs: Vec<SocketAddr> = match tokio::time::timeout(
        timeout,
        tokio::net::lookup_host((url.host.as_str(), url.port)),
    )
    .await
    {
        Ok(Ok(addrs)) => addrs.collect(),
        Ok(Err(err)) => {
            checks.push(
                Check::new(
                    "DNS",
                    Status::Fail,
                    format!("{} does not resolve: {err}", url.host),
                )
                .hint("add an A record for the host at your DNS provider, and check for typos"),
            );
            return None;
        }
        Err(_) => {
            checks.push(
                Check::new(
                    "DNS",
                    Status::Fail,
                    format!("resolving {} timed out", url.host),
                )
                .hint("the DNS server does not answer"),
            );
            return None;
        }
    };
    let Some(addr) = addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
    else {
        checks.push(
            Check::new("DNS", Status::Fail, format!("{} has no address", url.host))
                .hint("add an A record"),
        );
        return None;
    };
    let private = match addr.ip() {
        std::net::IpAddr::V4(v4) => v4.is_private() || v4.is_loopback() || v4.is_link_local(),
        std::net::IpAddr::V6(v6) => v6.is_loopback(),
    };
    if private && !is_local(&url.host) {
        checks.push(
            Check::new(
                "DNS",
                Status::Warn,
                format!("{} resolves to {} , a private address", url.host, addr.ip()),
            )
            .hint("WeChat resolves the host from the internet: it needs a public IP"),
        );
    } else {
        checks.push(Check::new(
            "DNS",
            Status::Pass,
            format!("{} → {}", url.host, addr.ip()),
        ));
    }

    Some(addr)
}

/// 3. TCP.
pub(super) async fn tcp(
    addr: SocketAddr,
    url: &ParsedUrl,
    timeout: Duration,
    checks: &mut Vec<Check>,
) -> Option<tokio::net::TcpStream> {
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => {
            checks.push(Check::new(
                "TCP connect",
                Status::Pass,
                format!("{addr} accepts connections"),
            ));
            Some(stream)
        }
        Ok(Err(err)) if err.kind() == std::io::ErrorKind::ConnectionRefused => {
            checks.push(
                Check::new("TCP connect", Status::Fail, format!("{addr} refused the connection"))
                    .hint(format!("nothing listens on port {}: start the server, or check the reverse proxy's listen port", url.port)),
            );
            None
        }
        Ok(Err(err)) => {
            checks.push(
                Check::new("TCP connect", Status::Fail, format!("{addr}: {err}"))
                    .hint("check routing and the firewall"),
            );
            None
        }
        Err(_) => {
            checks.push(
                Check::new("TCP connect", Status::Fail, format!("{addr} did not answer within {} ms", timeout.as_millis()))
                    .hint(format!("a firewall or cloud security group drops port {}: open it to WeChat's IPs (getcallbackip)", url.port)),
            );
            None
        }
    }
}

/// 4. TLS, for https.
pub(super) async fn tls(
    stream: tokio::net::TcpStream,
    url: &ParsedUrl,
    roots: Arc<rustls::RootCertStore>,
    timeout: Duration,
    checks: &mut Vec<Check>,
) -> Option<()> {
    if url.https {
        match tls_check(stream, &url.host, roots.clone(), timeout).await {
            Ok(detail) => checks.push(Check::new("TLS", Status::Pass, detail)),
            Err(check) => {
                checks.push(check);
                return None;
            }
        }
    } else {
        drop(stream);
        checks.push(Check::new(
            "TLS",
            Status::Skip,
            "plain http (allowed, but https is recommended)",
        ));
    }

    Some(())
}

pub(super) fn root_store(extra_ca: Option<&[u8]>) -> Arc<rustls::RootCertStore> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(pem) = extra_ca {
        use rustls::pki_types::pem::PemObject;
        for cert in rustls::pki_types::CertificateDer::pem_slice_iter(pem).flatten() {
            let _ = roots.add(cert);
        }
    }
    Arc::new(roots)
}

fn tls_config(roots: Arc<rustls::RootCertStore>) -> rustls::ClientConfig {
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

pub(super) fn http_client(roots: Arc<rustls::RootCertStore>) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls_config(roots))
        .redirect(reqwest::redirect::Policy::none())
        .build()
}

async fn tls_check(
    stream: tokio::net::TcpStream,
    host: &str,
    roots: Arc<rustls::RootCertStore>,
    timeout: Duration,
) -> Result<String, Check> {
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls_config(roots)));
    let server_name = rustls::pki_types::ServerName::try_from(host.to_owned()).map_err(|e| {
        Check::new(
            "TLS",
            Status::Fail,
            format!("{host} is not a valid TLS server name: {e}"),
        )
    })?;
    let result = tokio::time::timeout(timeout, connector.connect(server_name, stream)).await;
    let err = match result {
        Ok(Ok(tls)) => {
            let (_, session) = tls.get_ref();
            let version = session
                .protocol_version()
                .map(|v| format!("{v:?}"))
                .unwrap_or_default();
            return Ok(format!("certificate valid for {host} ({version})"));
        }
        Ok(Err(err)) => err,
        Err(_) => {
            return Err(Check::new("TLS", Status::Fail, "handshake timed out")
                .hint("the port speaks something other than TLS, or a proxy hangs"))
        }
    };
    let detail = err.to_string();
    let tls_error = err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    let hint = match tls_error {
        Some(rustls::Error::InvalidCertificate(cert)) => match cert {
            rustls::CertificateError::Expired | rustls::CertificateError::ExpiredContext { .. } => "the certificate has expired: renew it (and reload the server)",
            rustls::CertificateError::NotValidYet | rustls::CertificateError::NotValidYetContext { .. } => "the certificate is not valid yet: check the server clock and the certificate dates",
            rustls::CertificateError::NotValidForName | rustls::CertificateError::NotValidForNameContext { .. } => "the certificate does not cover this host name: issue one for this domain (SNI virtual hosts need it as default)",
            rustls::CertificateError::UnknownIssuer | rustls::CertificateError::BadSignature => "the certificate is self-signed or its chain is incomplete: serve the full chain (leaf + intermediates) from a public CA; WeChat rejects self-signed certificates",
            rustls::CertificateError::Revoked => "the certificate was revoked: issue a new one",
            _ => "the certificate is not acceptable: use one from a public CA, for this host, with the full chain",
        },
        Some(rustls::Error::AlertReceived(_)) | Some(rustls::Error::PeerIncompatible(_)) => {
            "the server refused the handshake: enable TLS 1.2 or 1.3 with modern ciphers"
        }
        Some(rustls::Error::InvalidMessage(_)) | Some(rustls::Error::General(_)) => {
            "the port does not speak TLS: is this an http port behind an https URL?"
        }
        _ if detail.contains("InvalidContentType") || detail.contains("corrupt message") => {
            "the port does not speak TLS: is this an http port behind an https URL?"
        }
        _ => "the TLS handshake failed: check the certificate chain and the TLS versions",
    };
    Err(Check::new("TLS", Status::Fail, detail).hint(hint))
}
