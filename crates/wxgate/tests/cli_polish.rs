//! The command line's rough edges from the first hour, run as the real binary: the
//! encoding helpers judge what was already encoded, sim and doctor keep the server's
//! reason whole, and every command has an example and a `--json` that reads alike.

mod common;

use common::tools::*;

// ------------------------------------------------------------ encoding helpers

fn oauth(redirect_uri: &str) -> std::process::Output {
    wxgate(
        &temp_dir("oauth"),
        &[
            "url",
            "oauth",
            "--app-id",
            "wx5f3c8a9b1d2e4f60",
            "--redirect-uri",
            redirect_uri,
            "--scope",
            "snsapi_base",
            "--state",
            "S1",
        ],
    )
}

#[test]
fn url_oauth_refuses_a_redirect_uri_that_was_encoded_already() {
    for (given, meant) in [
        (
            "https://m.example.com/cb%3Fa%3D1",
            "https://m.example.com/cb?a=1",
        ),
        (
            "https%3A%2F%2Fm.example.com%2Fcb%3Fa%3D1",
            "https://m.example.com/cb?a=1",
        ),
    ] {
        let output = oauth(given);
        assert_eq!(output.status.code(), Some(1), "{given}");
        assert!(out(&output).is_empty(), "no URL printed for {given}");
        let message = err(&output);
        assert!(
            message.contains("encoded") && message.contains(meant),
            "{given}: {message}"
        );
    }
    // Encoded text inside the query is legitimate and encoded once more, as WeChat
    // decodes once before it redirects.
    let output = oauth("https://m.example.com/cb?next=%2Fhome&q=%E4%B8%AD");
    assert_eq!(output.status.code(), Some(0), "{}", err(&output));
    assert!(out(&output).contains(
        "redirect_uri=https%3A%2F%2Fm.example.com%2Fcb%3Fnext%3D%252Fhome%26q%3D%25E4%25B8%25AD&"
    ));
}

fn jssdk_warnings(url: &str) -> Vec<String> {
    let output = wxgate(
        &temp_dir("jssdk"),
        &[
            "sign",
            "jssdk",
            "--ticket",
            "t",
            "--noncestr",
            "n",
            "--timestamp",
            "1",
            "--url",
            url,
            "--json",
        ],
    );
    assert_eq!(output.status.code(), Some(0));
    json(&output)["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn sign_jssdk_warns_only_for_a_url_encoded_as_a_whole() {
    for page in [
        // A Chinese query as pasted, and as location.href holds it.
        "https://h5.example.org/search?q=微信支付&city=深圳",
        "https://h5.example.org/search?q=%E5%BE%AE%E4%BF%A1&from=singlemessage",
        "https://h5.example.org/app/?tab=cart&next=%2Forders",
    ] {
        let warnings = jssdk_warnings(page);
        assert!(warnings.is_empty(), "{page}: {warnings:?}");
    }
    for encoded in [
        "https%3A%2F%2Fh5.example.org%2Fapp%2F%3Ftab%3Dcart",
        "HTTP%3a%2f%2fh5.example.org%2f",
    ] {
        let warnings = jssdk_warnings(encoded);
        assert_eq!(warnings.len(), 1, "{encoded}: {warnings:?}");
        assert!(warnings[0].contains("whole URL is percent-encoded"));
    }
}

// ------------------------------------------------------------ reasons and accounts

/// `wxgate init --mode safe` in a fresh directory, served; the directory, the server,
/// its base URL and the account's Token.
fn safe_mode_server(name: &str) -> (std::path::PathBuf, common::KillOnDrop, String, String) {
    let dir = temp_dir(name);
    let output = wxgate(
        &dir,
        &["init", "--mode", "safe", "--app-id", "wx1234567890abcdef"],
    );
    assert_eq!(output.status.code(), Some(0), "{}", err(&output));
    let config = std::fs::read_to_string(dir.join("wxgate.toml")).unwrap();
    let token = config
        .lines()
        .find_map(|line| line.strip_prefix("token = \""))
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    let (server, base) = common::start_binary(&dir);
    (dir, server, base, token)
}

#[test]
fn doctor_without_the_key_against_safe_mode_keeps_the_reason_and_says_to_pass_it() {
    let (dir, _server, base, token) = safe_mode_server("doctor-safe");
    let url = format!("{base}/wx/main");
    let output = wxgate(&dir, &["doctor", &url, "--token", &token, "--json"]);
    assert_eq!(output.status.code(), Some(1));
    let report = json(&output);
    let answer = find_check(&report, "message: answer");
    let detail = answer["detail"].as_str().unwrap();
    assert!(
        detail.contains("accepts only encrypted pushes; if the console is set to plaintext or compatible mode, set `mode` to match"),
        "the server's whole reason: {detail}"
    );
    assert!(!detail.contains('…'), "{detail}");
    let hint = answer["hint"].as_str().unwrap();
    assert!(
        hint.contains("--aes-key") && hint.contains("--config F --account NAME"),
        "{hint}"
    );
}

#[test]
fn sim_and_url_take_the_account_from_a_config() {
    let (dir, _server, base, _token) = safe_mode_server("sim-account");
    // serve listens on a port of its own; --url sends there with the account's secrets.
    let url = format!("{base}/wx/main");
    let config = dir.join("wxgate.toml");
    let config = config.to_str().unwrap();
    let elsewhere = temp_dir("sim-account-cwd");
    let output = wxgate(
        &elsewhere,
        &[
            "sim",
            "--url",
            &url,
            "--config",
            config,
            "--account",
            "main",
            "text",
            "hi",
            "--json",
        ],
    );
    let report = json(&output);
    assert_eq!(output.status.code(), Some(0), "{report}");
    assert_eq!(report["mode"], "safe");
    assert_eq!(report["url"], url.as_str());

    let output = wxgate(&elsewhere, &["sim", "--url", &url, "verify"]);
    assert_eq!(output.status.code(), Some(2), "a usage error");
    assert!(
        err(&output).contains("--config F --account NAME"),
        "{}",
        err(&output)
    );

    let output = wxgate(
        &elsewhere,
        &[
            "url",
            "oauth",
            "--config",
            config,
            "--account",
            "main",
            "--redirect-uri",
            "https://m.example.com/cb",
            "--scope",
            "snsapi_base",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", err(&output));
    assert!(out(&output).contains("appid=wx1234567890abcdef&"));
    let output = wxgate(
        &elsewhere,
        &[
            "url",
            "oauth",
            "--config",
            config,
            "--account",
            "nosuch",
            "--redirect-uri",
            "https://m.example.com/cb",
            "--scope",
            "snsapi_base",
        ],
    );
    assert_ne!(output.status.code(), Some(0));
    assert!(
        err(&output).contains("no account named \"nosuch\""),
        "{}",
        err(&output)
    );
    let output = wxgate(
        &elsewhere,
        &["url", "scheme", "--path", "pages/index/index"],
    );
    assert_ne!(output.status.code(), Some(0));
    assert!(
        err(&output).contains("pass --app-id, or --config"),
        "{}",
        err(&output)
    );
}

/// A server that refuses everything with a long reason of many sentences.
async fn refusing_server(reason: String) -> String {
    let app = axum::Router::new().fallback(move || {
        let reason = reason.clone();
        async move { (axum::http::StatusCode::FORBIDDEN, reason) }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/wx")
}

#[tokio::test]
async fn sim_cuts_a_long_reason_only_between_sentences_and_counts_the_rest() {
    let sentence = "The request was refused by the upstream policy engine for this tenant. ";
    let reason = sentence.repeat(30);
    let url = refusing_server(reason.clone()).await;
    let output = tokio::task::spawn_blocking(move || {
        wxgate(
            &temp_dir("sim-reason"),
            &["sim", "--url", &url, "--token", "T", "text", "hi", "--json"],
        )
    })
    .await
    .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let report = json(&output);
    let detail = find_check(&report, "answer")["detail"]
        .as_str()
        .unwrap()
        .to_owned();
    let (kept, rest) = detail.split_once(" […").expect("an excerpt");
    assert!(kept.ends_with("tenant."), "whole sentences: {kept}");
    assert!(
        kept.len() > 500,
        "a much larger bound than 200: {}",
        kept.len()
    );
    let left_out: usize = rest.trim_end_matches(" more bytes]").parse().unwrap();
    assert_eq!(
        kept.len() - "HTTP 403: ".len() + left_out,
        reason.trim().len(),
        "{detail}"
    );
}

// ------------------------------------------------------------ one rule for output

#[test]
fn warnings_exit_0_in_check_and_doctor_and_1_with_strict() {
    let (dir, _server, base, _token) = safe_mode_server("strict");
    let url = format!("{base}/wx/main");
    // The loopback address and the port are warnings for both commands.
    let doctor = wxgate(&dir, &["doctor", &url, "--json"]);
    let report = json(&doctor);
    assert_eq!(find_check(&report, "URL rules")["status"], "warn");
    assert_eq!(doctor.status.code(), Some(0), "{report:#}");
    let strict = wxgate(&dir, &["doctor", &url, "--strict"]);
    assert_eq!(strict.status.code(), Some(1));
    assert!(out(&strict).contains("--strict fails on the warnings"));
    let check = wxgate(&dir, &["check", "--url", &url]);
    assert!(out(&check).contains("! warning"), "{}", out(&check));
    assert_eq!(
        check.status.code(),
        Some(1),
        "port 17… is an error for the console"
    );
    let check = wxgate(&dir, &["check", "--url", "http://192.168.1.5/wx"]);
    assert_eq!(check.status.code(), Some(0));
    let check = wxgate(
        &dir,
        &["check", "--url", "http://192.168.1.5/wx", "--strict"],
    );
    assert_eq!(check.status.code(), Some(1));
}

/// Starts `wxgate ARGS` and returns its first line of stdout (then kills it).
fn first_line(dir: &std::path::Path, args: &[&str]) -> String {
    use std::io::BufRead;
    let mut child = std::process::Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let child = common::KillOnDrop(child);
    let line = std::io::BufReader::new(stdout)
        .lines()
        .next()
        .unwrap()
        .unwrap();
    drop(child);
    line
}

#[test]
fn serve_and_emulate_print_one_json_line_when_listening() {
    let dir = temp_dir("serve-json");
    let line = first_line(&dir, &["serve", "--listen", "127.0.0.1:0", "--json"]);
    let record: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(record["event"], "listening", "{line}");
    assert_eq!(record["demo"], true);
    assert_eq!(record["accounts"][0]["name"], "demo");
    assert!(record["url"]
        .as_str()
        .unwrap()
        .starts_with("http://127.0.0.1:"));
    let line = first_line(&dir, &["emulate", "--listen", "127.0.0.1:0", "--json"]);
    let record: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(record["event"], "listening", "{line}");
    assert_eq!(record["app_id"], "wx1234567890abcdef");
}

#[test]
fn json_output_is_pretty_in_every_command() {
    let dir = temp_dir("pretty");
    for args in [
        &[
            "sign",
            "verify",
            "--token",
            "T0k",
            "--timestamp",
            "1",
            "--nonce",
            "2",
            "--json",
        ][..],
        &["url", "showqrcode", "--ticket", "t", "--json"],
        &["check", "--token", "Abc123", "--json"],
        &["init", "--json", "--force"],
    ] {
        let output = wxgate(&dir, args);
        let text = out(&output);
        assert!(text.starts_with("{\n  \""), "{args:?}: {text}");
    }
}
