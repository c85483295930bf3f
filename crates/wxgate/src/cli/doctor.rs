//! `wxgate doctor`: probe a live callback endpoint the way WeChat does.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use rand::RngExt;
use serde::Serialize;
use wxgate_proto::console::{self, Mode, Severity};
use wxgate_proto::push::build;
use wxgate_proto::{EncodingAesKey, Message, MsgCrypt};

use crate::cli::probe::{judge_echo, judge_reply, print_checks, Check, Status, Target};

/// Probe a live callback endpoint the way WeChat does and say why it fails.
///
/// The checklist covers the URL rules, DNS, TCP, TLS, the verification GET, a forged
/// signature, a message and its reply, the latency against 5 s, and a stale timestamp.
/// Each ✗ gives the likely cause and the fix.
///
/// Exit status: 0 nothing failed (warnings allowed), 1 a check failed, 2 usage error.
///
/// Example:
///   wxgate doctor https://wx.example.com/wx/shop --token MyToken123 --app-id wx1234567890abcdef --aes-key KEY
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct DoctorArgs {
    /// The callback URL as entered in the console (服务器地址).
    pub url: String,
    /// The Token (令牌).
    #[arg(long)]
    pub token: String,
    /// The AppID, to send and check encrypted messages (with --aes-key).
    #[arg(long = "app-id")]
    pub app_id: Option<String>,
    /// The EncodingAESKey: messages are sent in safe mode and replies must be encrypted.
    #[arg(long = "aes-key")]
    pub aes_key: Option<String>,
    /// Extra CA certificate (PEM) to trust, e.g. a test CA.
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// Per-request limit in milliseconds (WeChat waits 5000).
    #[arg(long, default_value_t = 5000)]
    pub timeout_ms: u64,
    /// Print the checklist as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct DoctorReport {
    url: String,
    ok: bool,
    checks: Vec<Check>,
}

/// Runs `wxgate doctor`.
///
/// # Errors
/// Unreadable --ca file, or an invalid key (reported as usage errors).
pub fn run(args: DoctorArgs) -> anyhow::Result<ExitCode> {
    let crypt = match (&args.aes_key, &args.app_id) {
        (Some(key), Some(app_id)) => match EncodingAesKey::parse(key) {
            Ok(key) => Some(MsgCrypt::new(&key, app_id)),
            Err(err) => {
                eprintln!("error: --aes-key: {err}");
                return Ok(ExitCode::from(2));
            }
        },
        (Some(_), None) => {
            eprintln!(
                "error: --aes-key needs --app-id (the AppID is inside every encrypted message)"
            );
            return Ok(ExitCode::from(2));
        }
        _ => None,
    };
    let extra_ca = match &args.ca {
        Some(path) => match std::fs::read(path) {
            Ok(pem) => Some(pem),
            Err(err) => {
                eprintln!("error: cannot read --ca {}: {err}", path.display());
                return Ok(ExitCode::from(2));
            }
        },
        None => None,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let checks = runtime.block_on(diagnose(&args, crypt, extra_ca.as_deref()));
    let ok = checks.iter().all(|c| c.status != Status::Fail);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&DoctorReport {
                url: args.url.clone(),
                ok,
                checks
            })?
        );
    } else {
        println!("wxgate doctor {}\n", args.url);
        print_checks(&checks);
        println!(
            "\n{}",
            if ok {
                "No blocking problem found."
            } else {
                "WeChat would fail on the ✗ above."
            }
        );
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

struct ParsedUrl {
    https: bool,
    host: String,
    port: u16,
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

/// Runs every check in order; later network checks are skipped when an earlier one
/// makes them meaningless.
async fn diagnose(
    args: &DoctorArgs,
    crypt: Option<MsgCrypt>,
    extra_ca: Option<&[u8]>,
) -> Vec<Check> {
    let mut checks = Vec::new();
    // A stage returns `None` when what follows it would be meaningless.
    let _ = stages(args, crypt, extra_ca, &mut checks).await;
    checks
}

async fn stages(
    args: &DoctorArgs,
    crypt: Option<MsgCrypt>,
    extra_ca: Option<&[u8]>,
    checks: &mut Vec<Check>,
) -> Option<()> {
    let timeout = Duration::from_millis(args.timeout_ms);
    let url = url_rules(&args.url, checks)?;
    let addr = dns(&url, timeout, checks).await?;
    let stream = tcp(addr, &url, timeout, checks).await?;
    let roots = root_store(extra_ca);
    tls(stream, &url, roots.clone(), timeout, checks).await?;
    let client = match http_client(roots) {
        Ok(client) => client,
        Err(err) => {
            checks.push(Check::new("HTTP client", Status::Fail, err.to_string()));
            return None;
        }
    };
    let target = Target {
        url: args.url.clone(),
        token: args.token.clone(),
        mode: if crypt.is_some() {
            Mode::Safe
        } else {
            Mode::Plain
        },
        crypt,
        format: wxgate_proto::Format::Xml,
        wecom: None,
    };
    let probe = Probe {
        target: &target,
        client: &client,
        timeout,
        now: wxgate_client::clock::now(),
    };
    // 5.–9. HTTP as WeChat.
    if !probe.verification(checks).await {
        checks.push(Check::new(
            "message push",
            Status::Skip,
            "URL verification failed; fix it first",
        ));
        return None;
    }
    let msg_id = rand::rng().random_range(1u64 << 60..u64::MAX);
    probe.message(msg_id, checks).await;
    probe.stale(msg_id ^ 1, checks).await;
    Some(())
}

/// 1. The console's URL rules. A local host is a development setup: rules are warnings.
fn url_rules(text: &str, checks: &mut Vec<Check>) -> Option<ParsedUrl> {
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
async fn dns(url: &ParsedUrl, timeout: Duration, checks: &mut Vec<Check>) -> Option<SocketAddr> {
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
async fn tcp(
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
async fn tls(
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

/// The HTTP checks, sent as WeChat sends them.
struct Probe<'a> {
    target: &'a Target,
    client: &'a reqwest::Client,
    timeout: Duration,
    now: i64,
}

impl Probe<'_> {
    /// URL verification, and a verification signed with the wrong Token; whether the
    /// right one passed.
    async fn verification(&self, checks: &mut Vec<Check>) -> bool {
        let (target, client, timeout, now) = (self.target, self.client, self.timeout, self.now);
        let echostr = rand::rng()
            .random_range(10u64.pow(17)..10u64.pow(18))
            .to_string();
        let exchange = target
            .send(
                client,
                &target.verification_query(&target.token, now, &echostr),
                None,
                timeout,
            )
            .await;
        let echo = judge_echo(&exchange, &echostr);
        let verified = echo.status == Status::Pass;
        checks.push(echo);

        let forged_echo = rand::rng()
            .random_range(10u64.pow(17)..10u64.pow(18))
            .to_string();
        let forged = target
            .send(
                client,
                &target.verification_query(&format!("{}x", target.token), now, &forged_echo),
                None,
                timeout,
            )
            .await;
        let name = "forged signature is refused";
        checks.push(match forged.status {
            Some(200) if forged.body.trim() == forged_echo => Check::new(name, Status::Fail, "a GET signed with the wrong Token was echoed")
                .hint("the server does not check `signature`: anyone can impersonate WeChat; verify sha1(sort(token, timestamp, nonce))"),
            Some(status) => Check::new(name, Status::Pass, format!("HTTP {status}")),
            None => Check::new(name, Status::Warn, forged.error.unwrap_or_default()),
        });
        verified
    }

    /// A text message: the reply judged as WeChat would.
    async fn message(&self, msg_id: u64, checks: &mut Vec<Check>) {
        let (target, client, timeout, now) = (self.target, self.client, self.timeout, self.now);
        let (to, openid) = (PROBE_TO, PROBE_OPENID);
        let xml = build::text(to, openid, now, "wxgate doctor probe", msg_id);
        let sent = Message::parse(&xml).expect("built message parses");
        let request = target.push(&xml, to, openid, now);
        let encrypted = target.crypt.is_some();
        let exchange = target
            .send(client, &request.query, Some(request.body), timeout)
            .await;
        let verdict = judge_reply(target, &sent, encrypted, &exchange, now);
        for mut check in verdict.checks {
            check.name = format!("message: {}", check.name);
            checks.push(check);
        }
    }

    /// A message signed an hour ago should be refused.
    async fn stale(&self, msg_id: u64, checks: &mut Vec<Check>) {
        let (target, client, timeout, now) = (self.target, self.client, self.timeout, self.now);
        let (to, openid) = (PROBE_TO, PROBE_OPENID);
        let stale = now - 3600;
        let xml = build::text(to, openid, stale, "wxgate doctor stale probe", msg_id);
        let request = target.push(&xml, to, openid, stale);
        let exchange = target
            .send(client, &request.query, Some(request.body), timeout)
            .await;
        let name = "stale timestamp (1 hour old) is refused";
        checks.push(match exchange.status {
            Some(200) => Check::new(name, Status::Warn, "a request signed an hour ago was accepted")
                .hint("replayed requests are accepted: reject timestamps more than a few minutes from the server clock"),
            Some(status) => Check::new(name, Status::Pass, format!("HTTP {status}")),
            None => Check::new(name, Status::Warn, exchange.error.unwrap_or_default()),
        });
    }
}

const PROBE_TO: &str = "gh_wxgatedoctor";
const PROBE_OPENID: &str = "oWxgateDoctorProbe0000000000";

fn root_store(extra_ca: Option<&[u8]>) -> Arc<rustls::RootCertStore> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(pem) = extra_ca {
        for cert in rustls_pemfile::certs(&mut &pem[..]).flatten() {
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

fn http_client(roots: Arc<rustls::RootCertStore>) -> reqwest::Result<reqwest::Client> {
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
