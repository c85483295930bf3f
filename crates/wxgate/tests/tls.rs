//! `[tls]`: the real binary serves HTTPS with certificates from rcgen, `doctor --ca`
//! passes against it, a pair that cannot serve stops the start with a clear error, and
//! the certificate reloads on SIGHUP and when its files change, while a connection
//! opened before keeps working.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::tools::temp_dir;
use common::{run_until_listening, KillOnDrop, TOKEN};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

const BIN: &str = env!("CARGO_BIN_EXE_wxgate");

/// A certificate authority: its PEM and what signs with it.
struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn ca() -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let pem = params.self_signed(&key).unwrap().pem();
    Ca {
        pem,
        issuer: Issuer::new(params, key),
    }
}

/// A leaf for `localhost` and 127.0.0.1 signed by `ca`: (certificate PEM, key PEM).
fn leaf(ca: &Ca, expired: bool) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    if expired {
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    }
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// Writes the pair where `[tls]` of the config written by [`config`] reads it.
fn install(dir: &Path, (cert, key): &(String, String)) {
    std::fs::write(dir.join("fullchain.pem"), cert).unwrap();
    std::fs::write(dir.join("privkey.pem"), key).unwrap();
}

/// A plain account and `[tls]` with paths relative to the config file (a header
/// deadline of 1 s).
fn config(dir: &Path) -> PathBuf {
    let path = dir.join("wxgate.toml");
    std::fs::write(
        &path,
        format!(
            "[http]\nheader_timeout_s = 1\n[tls]\ncert = \"fullchain.pem\"\nkey = \"privkey.pem\"\n\
             [[account]]\nname = \"plain\"\napp_id = \"wxa1b2c3d4e5f60718\"\ntoken = \"{TOKEN}\"\nmode = \"plain\"\n"
        ),
    )
    .unwrap();
    path
}

/// `wxgate serve --config DIR/wxgate.toml`, started from another directory (the
/// relative TLS paths follow the config file).
fn serve(dir: &Path) -> (KillOnDrop, String) {
    let mut command = Command::new(BIN);
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(config(dir))
        .current_dir(std::env::temp_dir())
        .env("WXGATE_LOG", "wxgate=info")
        .stderr(std::process::Stdio::null());
    let (child, base, _) = run_until_listening(command);
    (child, base)
}

/// A TLS client that trusts only `ca`.
fn client_config(ca: &Ca) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from_pem_slice(ca.pem.as_bytes()).unwrap())
        .unwrap();
    Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth(),
    )
}

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// Opens a TLS connection to `port` trusting only `ca`, or says why it cannot.
fn connect(port: u16, ca: &Ca) -> Result<Tls, std::io::Error> {
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let connection = rustls::ClientConnection::new(client_config(ca), name).unwrap();
    let socket = TcpStream::connect(("127.0.0.1", port))?;
    socket.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut tls = rustls::StreamOwned::new(connection, socket);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    Ok(tls)
}

/// One kept-alive `GET /healthz` on `tls`; returns the status line.
fn healthz(tls: &mut Tls) -> String {
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut received = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let n = tls.read(&mut chunk).unwrap();
        assert!(
            n > 0,
            "the connection closed: {}",
            String::from_utf8_lossy(&received)
        );
        received.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&received);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(str::to_owned)
                })
                .and_then(|n| n.trim().parse().ok())
                .unwrap_or(0);
            if body.len() >= length {
                return head.lines().next().unwrap_or_default().to_owned();
            }
        }
    }
}

fn port_of(base: &str) -> u16 {
    base.rsplit(':').next().unwrap().parse().unwrap()
}

#[test]
fn doctor_with_the_ca_passes_against_https_wxgate() {
    let dir = temp_dir("doctor");
    let ca = ca();
    install(&dir, &leaf(&ca, false));
    let (_server, base) = serve(&dir);
    assert!(base.starts_with("https://127.0.0.1:"), "{base}");
    let ca_path = dir.join("ca.pem");
    std::fs::write(&ca_path, &ca.pem).unwrap();
    let url = format!("https://localhost:{}/wx/plain", port_of(&base));
    let output = Command::new(BIN)
        .args(["doctor", &url, "--token", TOKEN, "--json", "--ca"])
        .arg(&ca_path)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(0), "{report:#}");
    let status = |name: &str| {
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"].as_str().unwrap().starts_with(name))
            .map(|c| c["status"].clone())
    };
    assert_eq!(status("TLS"), Some("pass".into()), "{report:#}");
    assert_eq!(
        status("URL verification"),
        Some("pass".into()),
        "{report:#}"
    );
    // Plain HTTP on the TLS port is not served.
    let mut plain = TcpStream::connect(("127.0.0.1", port_of(&base))).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(
        !answer.starts_with(b"HTTP/1.1 200"),
        "plain HTTP was served"
    );
}

/// What `serve` prints when it refuses to start with this pair.
fn refused_start(name: &str, pair: &(String, String)) -> String {
    let dir = temp_dir(name);
    install(&dir, pair);
    let output = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(config(&dir))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{name}: serve must refuse");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn an_expired_or_mismatched_pair_stops_the_start_with_its_reason() {
    let ca = ca();
    let expired = refused_start("expired", &leaf(&ca, true));
    assert!(
        expired.contains("fullchain.pem expired at 2021-01-01T00:00:00Z")
            && expired.contains("renew it"),
        "{expired}"
    );
    // `check` reads the files as `serve` does.
    let dir = temp_dir("expired-check");
    install(&dir, &leaf(&ca, true));
    let check = Command::new(BIN)
        .args(["check", "--config"])
        .arg(config(&dir))
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&check.stdout);
    assert_eq!(check.status.code(), Some(1), "{printed}");
    assert!(
        printed.contains("expired at 2021-01-01T00:00:00Z"),
        "{printed}"
    );
    let (cert, _) = leaf(&ca, false);
    let (_, other_key) = leaf(&ca, false);
    let mismatched = refused_start("mismatch", &(cert, other_key));
    assert!(
        mismatched.contains("privkey.pem does not belong to the certificate"),
        "{mismatched}"
    );
    let garbage = refused_start("garbage", &("not a pem".into(), "nor this".into()));
    assert!(garbage.contains("holds no certificate"), "{garbage}");
    let missing = {
        let dir = temp_dir("missing");
        let output = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(config(&dir))
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    assert!(
        missing.contains("cannot read the certificate") && missing.contains("fullchain.pem"),
        "{missing}"
    );
}

/// Waits until a new connection trusting only `ca` succeeds.
fn until_served_by(port: u16, ca: &Ca, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(mut tls) = connect(port, ca) {
            assert_eq!(healthz(&mut tls), "HTTP/1.1 200 OK");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: the new certificate never served"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_certificate_reloads_on_sighup_and_on_change_without_dropping_connections() {
    let dir = temp_dir("reload");
    let (first, second) = (ca(), ca());
    install(&dir, &leaf(&first, false));
    let (server, base) = serve(&dir);
    let port = port_of(&base);
    let mut kept = connect(port, &first).expect("the first certificate serves");
    assert_eq!(healthz(&mut kept), "HTTP/1.1 200 OK");
    assert!(
        connect(port, &second).is_err(),
        "the second CA is not trusted yet"
    );

    // A new pair and SIGHUP.
    install(&dir, &leaf(&second, false));
    let hup = Command::new("kill")
        .args(["-HUP", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    until_served_by(port, &second, "SIGHUP");
    assert_eq!(
        healthz(&mut kept),
        "HTTP/1.1 200 OK",
        "the old connection stays"
    );

    // A broken file changes nothing.
    std::fs::write(dir.join("privkey.pem"), "truncated").unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let mut still = connect(port, &second).expect("the second certificate still serves");
    assert_eq!(healthz(&mut still), "HTTP/1.1 200 OK");

    // New files, no signal: the watcher notices them.
    install(&dir, &leaf(&first, false));
    until_served_by(port, &first, "file change");
    assert_eq!(
        healthz(&mut kept),
        "HTTP/1.1 200 OK",
        "the old connection stays"
    );
    assert_eq!(
        healthz(&mut still),
        "HTTP/1.1 200 OK",
        "the old connection stays"
    );
}

/// A client that opens a connection and stalls in the handshake (nothing, or half a
/// ClientHello) is closed at the header deadline, and others are served meanwhile.
#[test]
fn a_stalled_handshake_is_closed_at_the_header_deadline() {
    let dir = temp_dir("stall");
    let ca = ca();
    install(&dir, &leaf(&ca, false));
    let (_server, base) = serve(&dir);
    let port = port_of(&base);
    let stalled: Vec<TcpStream> = (0..2)
        .map(|i| {
            let mut socket = TcpStream::connect(("127.0.0.1", port)).unwrap();
            socket
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            if i == 1 {
                // A TLS record header announcing 512 bytes, then 5 of them.
                socket
                    .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 1, 0, 1, 0xfc, 3])
                    .unwrap();
            }
            socket
        })
        .collect();
    let mut served = connect(port, &ca).unwrap();
    assert_eq!(healthz(&mut served), "HTTP/1.1 200 OK");
    let started = Instant::now();
    for mut socket in stalled {
        let mut rest = Vec::new();
        let read = socket.read_to_end(&mut rest);
        assert!(
            read.is_ok() || started.elapsed() < Duration::from_secs(9),
            "not closed: {read:?}"
        );
    }
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(4), "closed after {waited:?}");
}
