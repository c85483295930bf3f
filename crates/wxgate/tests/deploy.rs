//! What a deployment needs from the binary: secrets from the environment
//! (`"${VAR}"` values), config errors that guide (the key's path, a did-you-mean), logs
//! for files and collectors (no colour off a terminal, JSON lines, UTC timestamps, the
//! matching rule at debug level).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{config_text, now, post, push_request, run_until_listening, KillOnDrop};
use wxgate_proto::console::Mode;

const BIN: &str = env!("CARGO_BIN_EXE_wxgate");

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wxgate-deploy-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn wxgate(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .current_dir(dir)
        .env_remove("WXGATE_TEST_TOKEN");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("wxgate runs")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

const ACCOUNT: &str = "[[account]]\nname = \"a\"\napp_id = \"wx5d3c9a1b2e4f6071\"\n";

#[test]
fn check_reads_a_secret_from_the_environment() {
    let dir = temp_dir("env");
    let config = format!("{ACCOUNT}token = \"${{WXGATE_TEST_TOKEN}}\"\n");
    std::fs::write(dir.join("w.toml"), config).unwrap();
    let set = wxgate(
        &dir,
        &["check", "--config", "w.toml"],
        &[("WXGATE_TEST_TOKEN", "Kq81mZpW0xYv3")],
    );
    assert_eq!(set.status.code(), Some(0), "{}", text(&set));
    let short = wxgate(
        &dir,
        &["check", "--config", "w.toml"],
        &[("WXGATE_TEST_TOKEN", "ab")],
    );
    assert!(
        text(&short).contains("w.toml:4: account[0].token"),
        "the variable's value is checked like a written one: {}",
        text(&short)
    );
    let unset = wxgate(&dir, &["check", "--config", "w.toml"], &[]);
    assert_eq!(unset.status.code(), Some(1), "{}", text(&unset));
    assert!(
        text(&unset).contains(
            "w.toml:4: account[0].token: the environment variable WXGATE_TEST_TOKEN is not set"
        ),
        "{}",
        text(&unset)
    );
}

#[test]
fn check_guides_an_unknown_key_and_a_capitalised_mode() {
    let dir = temp_dir("guide");
    let config = format!("{ACCOUNT}token = \"Kq81mZpW0xYv3\"\ntimestamp_windows_s = 60\n");
    std::fs::write(dir.join("w.toml"), config).unwrap();
    let output = wxgate(&dir, &["check", "--config", "w.toml"], &[]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        text(&output).contains(
            "w.toml:5: account[0].timestamp_windows_s: unknown key `timestamp_windows_s`; did you mean `timestamp_window_s`?"
        ),
        "{}",
        text(&output)
    );
    let config = format!("{ACCOUNT}token = \"Kq81mZpW0xYv3\"\nmode = \"Plain\"\n");
    std::fs::write(dir.join("w.toml"), config).unwrap();
    let output = wxgate(&dir, &["check", "--config", "w.toml"], &[]);
    assert!(
        text(&output).contains(
            "w.toml:5: account[0].mode: \"Plain\" is not a mode; did you mean \"plain\"?"
        ),
        "{}",
        text(&output)
    );
}

/// Starts `wxgate serve` in `dir` with a plain-mode echo account, stderr into `log`,
/// the environment set by `env`; returns it with its base URL.
fn serve_logged(dir: &Path, log: &Path, env: &[(&str, &str)]) -> (KillOnDrop, String) {
    std::fs::write(dir.join("wxgate.toml"), config_text("")).unwrap();
    let mut command = Command::new(BIN);
    command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(dir)
        .env("WXGATE_LOG", "wxgate=debug")
        .env_remove("NO_COLOR")
        .env_remove("WXGATE_LOG_FORMAT")
        .stderr(std::fs::File::create(log).unwrap());
    for (name, value) in env {
        command.env(name, value);
    }
    let (child, base, _) = run_until_listening(command);
    (child, base)
}

/// Sends one text to the plain account (its second rule, the echo, answers) and
/// returns the log once the server is stopped.
async fn log_of_one_text(name: &str, env: &[(&str, &str)]) -> String {
    let dir = temp_dir(name);
    let log = dir.join("stderr.log");
    let (server, base) = {
        let (dir, log) = (dir.clone(), log.clone());
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        tokio::task::spawn_blocking(move || {
            let env: Vec<(&str, &str)> =
                env.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
            serve_logged(&dir, &log, &env)
        })
        .await
        .unwrap()
    };
    let xml = "<xml><ToUserName><![CDATA[gh_test]]></ToUserName><FromUserName><![CDATA[oUser]]></FromUserName><CreateTime>1</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hello]]></Content><MsgId>77</MsgId></xml>";
    let request = push_request(Mode::Plain, xml, now());
    let (status, body) = post(
        &wxgate_client::http_client(),
        &format!("{base}/wx/plain?{}", request.query),
        request.body,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("hello"), "the echo rule answered: {body}");
    drop(server);
    std::fs::read_to_string(&log).unwrap()
}

/// `2026-01-02T03:04:05.678901Z` at the start of `text`.
fn starts_with_utc_timestamp(text: &str) -> bool {
    let bytes = text.as_bytes();
    let Some(end) = text.find('Z') else {
        return false;
    };
    end >= 20
        && bytes[4] == b'-'
        && bytes[10] == b'T'
        && bytes[13] == b':'
        && text[..4].bytes().all(|b| b.is_ascii_digit())
        && !text[..end].contains(' ')
}

#[tokio::test]
async fn a_log_file_has_no_colour_a_utc_timestamp_and_the_matching_rule() {
    let log = log_of_one_text("log-text", &[]).await;
    assert!(!log.contains('\u{1b}'), "no ANSI escapes in a file:\n{log}");
    let first = log.lines().next().expect("serve logs");
    assert!(starts_with_utc_timestamp(first), "{first}");
    assert!(
        log.lines()
            .any(|l| l.contains("DEBUG") && l.contains("rule[1] of account plain matched")),
        "{log}"
    );
}

/// The log of `wxgate serve` whose stderr is a terminal (a pty from `script`), after one
/// refused request: the refusal's log line.
fn refusal_logged_on_a_terminal(name: &str, no_color: bool) -> String {
    use std::io::{Read, Write};
    let dir = temp_dir(name);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        dir.join("wxgate.toml"),
        config_text(&format!("listen = \"127.0.0.1:{port}\"")),
    )
    .unwrap();
    let typescript = dir.join("typescript");
    let mut command = Command::new("script");
    // `timeout` bounds the server whatever happens to the terminal.
    command
        .args(["-qefc", &format!("timeout 30 {BIN} serve")])
        .arg(&typescript)
        .current_dir(&dir)
        .env_remove("NO_COLOR")
        .env_remove("WXGATE_LOG_FORMAT")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null());
    if no_color {
        command.env("NO_COLOR", "1");
    }
    let _terminal = KillOnDrop(command.spawn().expect("script (util-linux) runs"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut stream = loop {
        match std::net::TcpStream::connect(("127.0.0.1", port)) {
            Ok(stream) => break stream,
            Err(e) if std::time::Instant::now() > deadline => panic!("serve never listened: {e}"),
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(50)),
        }
    };
    write!(
        stream,
        "GET /wx/nobody HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    loop {
        let log = std::fs::read_to_string(&typescript).unwrap_or_default();
        if let Some(line) = log.lines().find(|l| l.contains("refused")) {
            return line.to_owned();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no refusal logged:\n{log}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn a_terminal_gets_colour_unless_no_color_is_set() {
    let coloured = refusal_logged_on_a_terminal("tty-colour", false);
    assert!(
        coloured.contains("\u{1b}["),
        "colour on a terminal: {coloured:?}"
    );
    let plain = refusal_logged_on_a_terminal("tty-no-color", true);
    assert!(!plain.contains('\u{1b}'), "NO_COLOR: {plain:?}");
}

#[tokio::test]
async fn json_logs_are_one_object_a_line() {
    let log = log_of_one_text("log-json", &[("WXGATE_LOG_FORMAT", "json")]).await;
    assert!(!log.contains('\u{1b}'), "{log}");
    let mut lines = 0;
    let mut rule = None;
    for line in log.lines() {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: not a JSON line: {line}"));
        let timestamp = value["timestamp"].as_str().expect("a timestamp");
        assert!(starts_with_utc_timestamp(timestamp), "{timestamp}");
        assert!(value["level"].is_string(), "{line}");
        if value["fields"]["rule"].is_number() {
            rule = Some(value);
        }
        lines += 1;
    }
    assert!(lines >= 2, "{log}");
    let rule = rule.expect("the matching rule is logged at debug level");
    assert_eq!(rule["level"], "DEBUG");
    assert_eq!(rule["fields"]["rule"], 1);
    assert_eq!(rule["fields"]["account"], "plain");
}

const SUBCOMMANDS: [&str; 14] = [
    "serve",
    "init",
    "check",
    "sign",
    "url",
    "sim",
    "doctor",
    "emulate",
    "inbox",
    "status",
    "health",
    "reload",
    "completions",
    "man",
];

#[test]
fn completions_for_each_shell_name_the_subcommands() {
    let dir = temp_dir("completions");
    for shell in ["bash", "zsh", "fish"] {
        let output = wxgate(&dir, &["completions", shell], &[]);
        assert_eq!(output.status.code(), Some(0), "{shell}: {}", text(&output));
        let script = String::from_utf8(output.stdout).unwrap();
        for command in SUBCOMMANDS {
            assert!(
                script.contains(command),
                "{shell} completion lacks {command}"
            );
        }
        let option = if shell == "fish" {
            "-l config"
        } else {
            "--config"
        };
        assert!(script.contains(option), "{shell}: options too");
    }
    let unknown = wxgate(&dir, &["completions", "tcsh"], &[]);
    assert_eq!(unknown.status.code(), Some(2), "{}", text(&unknown));
}

#[test]
fn the_man_page_has_a_name_section_and_the_subcommands() {
    let dir = temp_dir("man");
    let output = wxgate(&dir, &["man"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let page = String::from_utf8(output.stdout).unwrap();
    assert!(
        page.starts_with(".ie") || page.starts_with(".TH"),
        "roff: {}",
        &page[..80.min(page.len())]
    );
    assert!(page.contains(".TH wxgate 1"), "{page}");
    assert!(page.contains(".SH NAME\nwxgate"), "{page}");
    for command in SUBCOMMANDS {
        assert!(page.contains(command), "the man page lacks {command}");
    }
}

/// `wxgate health` (the container's HEALTHCHECK): 0 and `ok` against a serving wxgate,
/// 1 with the reason for a 503 or no answer; no admin token needed.
#[test]
fn health_says_ok_or_why_not() {
    use std::io::{Read, Write};
    let dir = temp_dir("health");
    std::fs::write(dir.join("wxgate.toml"), config_text("")).unwrap();
    let (_server, base) = common::start_binary(&dir);
    let ok = wxgate(&dir, &["health", "--url", &base], &[]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));
    assert_eq!(String::from_utf8_lossy(&ok.stdout).trim(), "ok");
    // Without --url: where the running serve listens (data_dir/serve.addr).
    let found = wxgate(&dir, &["health", "--json"], &[]);
    let found: serde_json::Value = serde_json::from_slice(&found.stdout).unwrap();
    assert_eq!(found["ok"], true, "{found}");

    let sick = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let sick_base = format!("http://{}", sick.local_addr().unwrap());
    std::thread::spawn(move || {
        let (mut stream, _) = sick.accept().unwrap();
        let mut request = [0u8; 1024];
        let _ = stream.read(&mut request);
        let body = "the database cannot commit: No space left on device";
        let _ = write!(
            stream,
            "HTTP/1.1 503 Service Unavailable\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
    });
    let unhealthy = wxgate(&dir, &["health", "--url", &sick_base], &[]);
    assert_eq!(unhealthy.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&unhealthy.stdout).trim(),
        "unhealthy: HTTP 503: the database cannot commit: No space left on device"
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let gone = wxgate(&dir, &["health", "--url", &format!("http://{closed}")], &[]);
    assert_eq!(gone.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&gone.stdout).starts_with("unhealthy: no answer from"),
        "{}",
        text(&gone)
    );
}

/// `systemctl reload` sends SIGHUP: without `[tls]` it reloads nothing and the server
/// keeps serving (the default action of SIGHUP would end the process).
#[test]
fn sighup_never_stops_the_server() {
    let dir = temp_dir("sighup");
    std::fs::write(dir.join("wxgate.toml"), config_text("")).unwrap();
    let (mut server, base) = common::start_binary(&dir);
    for _ in 0..3 {
        let hup = Command::new("kill")
            .args(["-HUP", &server.id().to_string()])
            .status()
            .unwrap();
        assert!(hup.success());
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(server.try_wait().unwrap().is_none(), "SIGHUP ended wxgate");
    let health = wxgate(&dir, &["health", "--url", &base], &[]);
    assert_eq!(health.status.code(), Some(0), "{}", text(&health));
}
