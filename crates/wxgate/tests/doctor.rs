//! `wxgate doctor` as the real binary, against wxgate, against small deliberately
//! broken servers on 127.0.0.1 (plain HTTP and TLS) and against a wechatpy server; and
//! the README's catalogue of doctor's failures, which must be what these runs print.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Query;
use axum::routing::get;
use axum::Router;
use common::tools::{find_check, json, temp_dir, wxgate_args, wxgate_async};
use common::*;
use serde_json::Value;

// ---------------------------------------------------------------- broken servers

#[derive(Clone, Copy, Debug)]
enum Broken {
    WrongToken,
    QuotedEcho,
    NotFound,
    SlowReply,
    AcceptsBadSignature,
    InvalidReplyXml,
    HtmlErrorPage,
}

/// A deliberately broken callback server in plaintext mode.
fn broken_router(kind: Broken) -> Router {
    let verify = move |Query(q): Query<std::collections::HashMap<String, String>>| async move {
        let token = if matches!(kind, Broken::WrongToken) {
            "SomeOtherToken"
        } else {
            TOKEN
        };
        let signed = wxgate_proto::signature::url_signature(
            token,
            q.get("timestamp").map(String::as_str).unwrap_or(""),
            q.get("nonce").map(String::as_str).unwrap_or(""),
        );
        let ok = signed.matches_hex(q.get("signature").map(String::as_str).unwrap_or(""));
        let echostr = q.get("echostr").cloned().unwrap_or_default();
        match kind {
            Broken::AcceptsBadSignature => (axum::http::StatusCode::OK, echostr),
            _ if !ok => (
                axum::http::StatusCode::FORBIDDEN,
                "bad signature".to_owned(),
            ),
            Broken::QuotedEcho => (axum::http::StatusCode::OK, format!("\"{echostr}\"")),
            _ => (axum::http::StatusCode::OK, echostr),
        }
    };
    let message = move |body: String| async move {
        let msg = wxgate_proto::Message::parse(&body).unwrap();
        let reply = wxgate_proto::Reply::Text {
            content: "hi".into(),
        };
        match kind {
            Broken::SlowReply => {
                tokio::time::sleep(Duration::from_secs(6)).await;
                (
                    axum::http::StatusCode::OK,
                    reply.render_for(&msg, wxgate_client::clock::now()),
                )
            }
            Broken::InvalidReplyXml => (
                axum::http::StatusCode::OK,
                "<xml><ToUserName>oops</xml>".to_owned(),
            ),
            Broken::HtmlErrorPage => (
                axum::http::StatusCode::OK,
                "<!DOCTYPE html><html><body>CSRF token mismatch</body></html>".to_owned(),
            ),
            _ => (
                axum::http::StatusCode::OK,
                reply.render_for(&msg, wxgate_client::clock::now()),
            ),
        }
    };
    match kind {
        Broken::NotFound => Router::new().route("/other", get(|| async { "x" })),
        _ => Router::new().route("/wx", get(verify).post(message)),
    }
}

async fn spawn_router(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

async fn doctor(url: &str, extra: &[&str]) -> (Option<i32>, Value) {
    let mut args: Vec<String> = vec![
        "doctor".into(),
        url.into(),
        "--token".into(),
        TOKEN.into(),
        "--json".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let output = wxgate_async(args).await;
    (output.status.code(), json(&output))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_passes_wxgate_in_plain_and_safe_mode() {
    let server = TestServer::start(&config_text("")).await;
    let (code, report) = doctor(&format!("{}/wx/plain", server.base), &[]).await;
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(find_check(&report, "URL verification")["status"], "pass");
    assert_eq!(find_check(&report, "forged signature")["status"], "pass");
    assert_eq!(find_check(&report, "message: To/From")["status"], "pass");
    assert_eq!(find_check(&report, "stale timestamp")["status"], "pass");
    assert_eq!(
        find_check(&report, "URL rules")["status"],
        "warn",
        "a local URL is a warning"
    );

    let (code, report) = doctor(
        &format!("{}/wx/safe", server.base),
        &["--aes-key", KEY, "--app-id", APP_ID],
    )
    .await;
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(find_check(&report, "message: encryption")["status"], "pass");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_names_the_cause_on_broken_servers() {
    // (server, check that fails or warns, expected status, words of the hint)
    let cases = [
        (Broken::WrongToken, "URL verification", "fail", "Token"),
        (Broken::QuotedEcho, "URL verification", "fail", "quotes"),
        (
            Broken::NotFound,
            "URL verification",
            "fail",
            "route is not mapped",
        ),
        (
            Broken::AcceptsBadSignature,
            "forged signature",
            "fail",
            "impersonate",
        ),
        (
            Broken::InvalidReplyXml,
            "message: reply XML",
            "fail",
            "invalid reply XML",
        ),
        (
            Broken::HtmlErrorPage,
            "message: answer",
            "fail",
            "error page",
        ),
        (Broken::SlowReply, "message: answer", "fail", "5 s"),
    ];
    let mut tasks = Vec::new();
    for (kind, check, status, hint) in cases {
        tasks.push(tokio::spawn(async move {
            let base = spawn_router(broken_router(kind)).await;
            let (code, report) = doctor(&format!("{base}/wx"), &[]).await;
            assert_eq!(code, Some(1), "{kind:?}: {report:#}");
            let found = find_check(&report, check);
            assert_eq!(found["status"], status, "{kind:?}: {found}");
            let text = format!("{} {}", found["detail"], found["hint"]);
            assert!(text.contains(hint), "{kind:?}: expected {hint:?} in {text}");
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_reports_closed_ports_and_bad_urls() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let (code, report) = doctor(&format!("http://127.0.0.1:{port}/wx"), &[]).await;
    assert_eq!(code, Some(1));
    let tcp = find_check(&report, "TCP connect");
    assert_eq!(tcp["status"], "fail");
    assert!(
        tcp["hint"].as_str().unwrap().contains("nothing listens"),
        "{tcp}"
    );

    let (code, report) = doctor("ftp://example.com/wx", &[]).await;
    assert_eq!(code, Some(1));
    assert_eq!(find_check(&report, "URL")["status"], "fail");

    let (code, report) = doctor("http://no-such-host.invalid/wx", &[]).await;
    assert_eq!(code, Some(1));
    assert_eq!(find_check(&report, "DNS")["status"], "fail");
}

// ---------------------------------------------------------------- TLS

struct Certs {
    ca_pem: String,
    good: (Vec<u8>, Vec<u8>),
    self_signed: (Vec<u8>, Vec<u8>),
    expired: (Vec<u8>, Vec<u8>),
    wrong_host: (Vec<u8>, Vec<u8>),
}

fn certs() -> Certs {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::from_params(&ca_params, &ca_key);
    let leaf = |names: Vec<String>, expired: bool| {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(names).unwrap();
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let cert = params.signed_by(&key, &issuer).unwrap();
        (cert.der().to_vec(), key.serialize_der())
    };
    let self_signed = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    Certs {
        ca_pem: ca.pem(),
        good: leaf(vec!["localhost".into()], false),
        self_signed: (
            self_signed.cert.der().to_vec(),
            self_signed.signing_key.serialize_der(),
        ),
        expired: leaf(vec!["localhost".into()], true),
        wrong_host: leaf(vec!["other.example".into()], false),
    }
}

/// Serves `router` over TLS with this certificate on 127.0.0.1; returns the port.
async fn spawn_tls(router: Router, (cert, key): (Vec<u8>, Vec<u8>)) -> u16 {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::service::TowerToHyperService;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![rustls::pki_types::CertificateDer::from(cert)],
        rustls::pki_types::PrivateKeyDer::Pkcs8(key.into()),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let router = router.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let service = TowerToHyperService::new(router);
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_checks_tls_certificates() {
    let certs = certs();
    let dir = temp_dir("tls");
    let ca_path = dir.join("ca.pem");
    std::fs::write(&ca_path, &certs.ca_pem).unwrap();
    let ca = ca_path.display().to_string();
    let router = || broken_router(Broken::AcceptsBadSignature).route("/ok", get(|| async { "ok" }));

    let port = spawn_tls(wxgate_router().await, certs.good.clone()).await;
    let (code, report) = doctor(
        &format!("https://localhost:{port}/wx/plain"),
        &["--ca", &ca],
    )
    .await;
    assert_eq!(find_check(&report, "TLS")["status"], "pass", "{report:#}");
    assert_eq!(
        find_check(&report, "URL verification")["status"],
        "pass",
        "{report:#}"
    );
    assert_eq!(code, Some(0), "{report:#}");

    // (certificate, --ca given, words of the hint)
    let cases = [
        (
            certs.good.clone(),
            false,
            "self-signed or its chain is incomplete",
        ),
        (certs.self_signed.clone(), true, "self-signed"),
        (certs.expired.clone(), true, "expired"),
        (certs.wrong_host.clone(), true, "does not cover this host"),
    ];
    for (cert, with_ca, hint) in cases {
        let port = spawn_tls(router(), cert).await;
        let extra: Vec<&str> = if with_ca { vec!["--ca", &ca] } else { vec![] };
        let (code, report) = doctor(&format!("https://localhost:{port}/wx"), &extra).await;
        assert_eq!(code, Some(1), "{report:#}");
        let tls = find_check(&report, "TLS");
        assert_eq!(tls["status"], "fail", "{tls}");
        assert!(
            tls["hint"].as_str().unwrap().contains(hint),
            "expected {hint:?}: {tls}"
        );
    }

    // An http server behind an https URL.
    let base = spawn_router(router()).await;
    let port = base.rsplit(':').next().unwrap();
    let (_, report) = doctor(&format!("https://localhost:{port}/wx"), &[]).await;
    let tls = find_check(&report, "TLS");
    assert_eq!(tls["status"], "fail", "{tls}");
}

async fn wxgate_router() -> Router {
    let config = wxgate::config::Config::parse(&config_text(""), "t").unwrap();
    wxgate::http::app(Arc::new(wxgate::app::AppState::new(&config)))
}

// ---------------------------------------------------------------- wechatpy peer

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_and_doctor_work_against_a_wechatpy_server() {
    use std::io::BufRead;
    let python = std::env::var("WXGATE_INTEROP_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/interop-venv/bin/python")
        });
    assert!(
        python.exists(),
        "{} missing: run `bash scripts/test.sh`",
        python.display()
    );
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/wechatpy_server.py");
    let mut child = Command::new(python)
        .arg(script)
        .args([TOKEN, KEY, APP_ID])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .trim()
        .strip_prefix("listening ")
        .expect("server prints its port");
    let url = format!("http://127.0.0.1:{port}/wx");

    let output = wxgate_args(&[
        "sim",
        "--url",
        &url,
        "--token",
        TOKEN,
        "--aes-key",
        KEY,
        "--app-id",
        APP_ID,
        "--json",
        "text",
        "peer",
    ])
    .await;
    let report = json(&output);
    assert_eq!(output.status.code(), Some(0), "{report:#}");
    assert_eq!(report["reply"], "text \"peer\"");

    let (code, report) = doctor(&url, &["--aes-key", KEY, "--app-id", APP_ID]).await;
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(find_check(&report, "message: encryption")["status"], "pass");
    // wechatpy does not check timestamps: doctor warns about replay.
    assert_eq!(find_check(&report, "stale timestamp")["status"], "warn");
    let _ = child.kill();
    let _ = child.wait();
}

// ---------------------------------------------------------------- the README's catalogue

/// The ✗ line of `check` in a doctor run printed for people, with the hint under it.
async fn printed_failure(url: &str, token: &str, extra: &[&str], check: &str) -> String {
    let mut args = vec![
        "doctor".to_owned(),
        url.to_owned(),
        "--token".into(),
        token.into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let output = wxgate_async(args).await;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with(&format!("✗ {check}")))
        .unwrap_or_else(|| panic!("no ✗ {check} in:\n{text}"));
    match lines.get(at + 1) {
        Some(hint) if hint.starts_with("    → ") => format!("{}\n{hint}", lines[at]),
        _ => lines[at].to_owned(),
    }
}

/// The README's "common failures" block (`<!-- output: doctor-failures -->`) is what
/// doctor prints against the broken servers above, each failure from its own run, once
/// the port and the random echostr are written as the README writes them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_catalogue_of_failures_is_what_doctor_prints() {
    let wxgate_base = spawn_router(wxgate_router().await).await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let self_signed = spawn_tls(broken_router(Broken::QuotedEcho), certs().self_signed).await;
    let mut runs = vec![tokio::spawn(async move {
        // wxgate itself, probed with the Token in another letter case.
        let url = format!("{wxgate_base}/wx/plain");
        printed_failure(&url, "benchtoken123", &[], "URL verification").await
    })];
    for (kind, check) in [
        (Broken::NotFound, "URL verification"),
        (Broken::QuotedEcho, "URL verification"),
        (Broken::AcceptsBadSignature, "forged signature is refused"),
        (Broken::SlowReply, "message: answer"),
        (Broken::HtmlErrorPage, "message: answer"),
    ] {
        runs.push(tokio::spawn(async move {
            let base = spawn_router(broken_router(kind)).await;
            printed_failure(&format!("{base}/wx"), TOKEN, &[], check).await
        }));
    }
    runs.push(tokio::spawn(async move {
        let url = format!("http://127.0.0.1:{closed}/wx");
        let printed = printed_failure(&url, TOKEN, &[], "TCP connect").await;
        printed.replace(&closed.to_string(), "8081")
    }));
    runs.push(tokio::spawn(async move {
        let url = format!("https://localhost:{self_signed}/wx");
        printed_failure(&url, TOKEN, &[], "TLS").await
    }));
    let echostr = regex::Regex::new(r#"is not the echostr "([0-9]+)""#).unwrap();
    let mut printed = Vec::new();
    for run in runs {
        let text = run.await.unwrap();
        let text = match echostr.captures(&text) {
            Some(found) => text.replace(&found[1], "5518803317220094471"),
            None => text,
        };
        printed.push(text);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    for readme in ["README.md", "README.zh-CN.md"] {
        let text = std::fs::read_to_string(root.join(readme)).unwrap();
        let block = text
            .split("<!-- output: doctor-failures -->\n```\n")
            .nth(1)
            .and_then(|rest| rest.split("\n```").next())
            .unwrap_or_else(|| panic!("{readme} marks no doctor-failures block"));
        let written: Vec<&str> = block.split("\n\n").map(str::trim_end).collect();
        for failure in &printed {
            assert!(
                written.contains(&failure.as_str()),
                "{readme}: the catalogue lacks what doctor prints:\n{failure}\n\nit has:\n{block}"
            );
        }
        assert_eq!(
            written.len(),
            printed.len(),
            "{readme}: the catalogue has failures no run printed:\n{block}"
        );
    }
}
