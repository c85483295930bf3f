//! What a new user trips over in the first hour, run as the real binary: the data
//! directory follows the config file (and an install with its data where the old rule
//! put it is refused with the move to make), `sim` and `status` find a server started
//! with `--listen` elsewhere through `data_dir/serve.addr`, a refused connection says
//! to start the server, and the demo's curl line sends a fresh MsgId while a repeated
//! one is logged as answered from the dedup cache.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_wxgate");
const ADMIN: &str = "admin-token-0123456789";

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wxgate-first-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(cwd: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("wxgate runs")
}

fn text_of(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `wxgate serve ARGS` in `cwd`, its log in `log`; the process, its base URL and the
/// lines it printed before it listened.
fn serve(cwd: &Path, args: &[&str], log: &Path) -> (KillOnDrop, String, Vec<String>) {
    let mut command = Command::new(BIN);
    command
        .arg("serve")
        .args(args)
        .current_dir(cwd)
        .env("WXGATE_LOG", "wxgate=info")
        .stderr(std::fs::File::create(log).unwrap());
    run_until_listening(command)
}

/// SIGTERM, then the exit.
fn stop(mut server: KillOnDrop) {
    let pid = server.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = server.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

#[test]
fn the_data_dir_and_the_address_follow_the_config_file() {
    let home = temp_dir("home");
    let elsewhere = temp_dir("elsewhere");
    let config = home.join("wxgate.toml");
    std::fs::write(&config, config_text(&format!("admin_token = \"{ADMIN}\""))).unwrap();
    let config = config.display().to_string();
    let log = elsewhere.join("serve.log");
    let listen = ["--config", &config, "--listen", "127.0.0.1:0"];
    let (server, base, _) = serve(&elsewhere, &listen, &log);

    // The data directory is beside the config file, not in the working directory.
    let data = home.join("wxgate-data");
    assert!(data.join("wxgate.redb").exists());
    assert!(!elsewhere.join("wxgate-data").exists());
    let written = std::fs::read_to_string(data.join("serve.addr")).unwrap();
    assert_eq!(format!("http://{}", written.trim()), base);

    // sim and status reach the server where --listen put it, not at `listen`.
    let sim = run(
        &elsewhere,
        &["sim", "--config", &config, "--account", "safe", "verify"],
    );
    assert!(sim.status.success(), "{}", text_of(&sim));
    assert!(
        text_of(&sim).contains(base.trim_start_matches("http://")),
        "{}",
        text_of(&sim)
    );
    let status = run(&elsewhere, &["status", "--config", &config, "--json"]);
    assert!(status.status.success(), "{}", text_of(&status));
    assert!(
        text_of(&status).contains("\"safe\""),
        "{}",
        text_of(&status)
    );

    // Stopped: the address file is gone, and sim says to start the server.
    stop(server);
    assert!(!data.join("serve.addr").exists());
    let port = base.rsplit(':').next().unwrap();
    std::fs::write(
        home.join("wxgate.toml"),
        config_text(&format!(
            "admin_token = \"{ADMIN}\"\nlisten = \"127.0.0.1:{port}\""
        )),
    )
    .unwrap();
    let sim = run(
        &elsewhere,
        &["sim", "--config", &config, "--account", "plain", "verify"],
    );
    assert!(!sim.status.success(), "{}", text_of(&sim));
    let said = text_of(&sim);
    assert!(said.contains("nothing listens there"), "{said}");
    assert!(!said.contains("connection checks above"), "{said}");
    assert!(
        !said.contains("5 s"),
        "not the hint for slow answers: {said}"
    );
}

#[test]
fn data_left_where_the_working_directory_rule_put_it_is_not_silently_abandoned() {
    let home = temp_dir("legacy-home");
    let old_cwd = temp_dir("legacy-cwd");
    std::fs::create_dir_all(old_cwd.join("wxgate-data")).unwrap();
    std::fs::write(old_cwd.join("wxgate-data/wxgate.redb"), b"not empty").unwrap();
    let config = home.join("wxgate.toml");
    std::fs::write(&config, config_text("")).unwrap();
    let config = config.display().to_string();
    let output = run(
        &old_cwd,
        &["serve", "--config", &config, "--listen", "127.0.0.1:0"],
    );
    assert!(!output.status.success(), "{}", text_of(&output));
    let said = text_of(&output);
    assert!(said.contains("data_dir"), "{said}");
    assert!(
        said.contains(&format!(
            "mv wxgate-data {}",
            home.join("wxgate-data").display()
        )),
        "{said}"
    );
    assert!(!home.join("wxgate-data").exists(), "nothing started afresh");
    // Started from the config's own directory, the same data is found: no refusal.
    std::fs::rename(old_cwd.join("wxgate-data"), home.join("wxgate-data")).unwrap();
    let check = run(&old_cwd, &["check", "--config", &config]);
    assert!(
        !text_of(&check).contains("mv wxgate-data"),
        "{}",
        text_of(&check)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_sends_a_fresh_msg_id_and_says_when_it_answers_from_the_cache() {
    let dir = temp_dir("demo");
    let log = dir.join("serve.log");
    let (dir2, log2) = (dir.clone(), log.clone());
    let (_server, _base, printed) =
        tokio::task::spawn_blocking(move || serve(&dir2, &["--listen", "127.0.0.1:0"], &log2))
            .await
            .unwrap();
    let curl = printed
        .iter()
        .find(|l| l.trim_start().starts_with("curl -d "))
        .unwrap_or_else(|| panic!("no curl -d line in {printed:#?}"))
        .trim();
    // curl -d 'BODY' 'URL'
    let parts: Vec<&str> = curl.split('\'').collect();
    let (body, url) = (parts[1].to_owned(), parts[3].to_owned());
    assert!(!body.contains("<MsgId>1</MsgId>"), "{body}");
    let timestamp = url
        .split("timestamp=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    assert!(
        body.contains(&format!("<MsgId>{timestamp}</MsgId>")),
        "{body}"
    );
    let client = wxgate_client::http_client();
    let send = |body: String| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            client
                .post(url)
                .body(body)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    let first = send(body.clone()).await;
    assert!(first.contains("hello wxgate"), "{first}");
    // The same MsgId with a changed text: the first answer again, and the log says why.
    let second = send(body.replace("hello wxgate", "changed text")).await;
    assert_eq!(second, first);
    let mut logged = String::new();
    for _ in 0..50 {
        logged = std::fs::read_to_string(&log).unwrap();
        if logged.contains("answered from the dedup cache") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(logged.contains("answered from the dedup cache"), "{logged}");
    assert!(
        !logged.contains("changed text"),
        "no message content in the log: {logged}"
    );
}

/// One finding of `check --json`: key, severity, problem, fix.
type Finding = (String, String, String, String);

/// `check --json` of `text` written as `check.toml` in `dir`: the exit code and the
/// findings.
fn check(dir: &Path, text: &str) -> (Option<i32>, Vec<Finding>) {
    std::fs::write(dir.join("check.toml"), text).unwrap();
    let output = run(dir, &["check", "--config", "check.toml", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", text_of(&output)));
    let field = |f: &serde_json::Value, k: &str| f[k].as_str().unwrap_or_default().to_owned();
    let findings = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                field(f, "key"),
                field(f, "severity"),
                field(f, "problem"),
                field(f, "fix"),
            )
        })
        .collect();
    (output.status.code(), findings)
}

#[test]
fn check_warns_about_the_example_placeholder_secrets() {
    let dir = temp_dir("placeholders");
    let example = include_str!("../../../wxgate.example.toml");
    let (code, findings) = check(&dir, example);
    assert_eq!(code, Some(0), "warnings alone exit 0: {findings:#?}");
    let strict = run(&dir, &["check", "--config", "check.toml", "--strict"]);
    assert_eq!(strict.status.code(), Some(1), "--strict fails on warnings");
    for key in ["admin_token", "oauth.signing_key", "forward.secret"] {
        assert!(
            findings.iter().any(|(k, s, p, _)| k.ends_with(key)
                && s == "warning"
                && p.contains("placeholder")),
            "{key}: {findings:#?}"
        );
    }
}

#[test]
fn check_finds_rules_that_can_never_match() {
    let dir = temp_dir("rules");
    let account = |rules: &str, forward: bool| {
        let forward = if forward {
            "[account.forward]\nurl = \"http://127.0.0.1:9/hook\"\nsecret = \"k3J9sQ2mX8vL5pR1wE\"\n"
        } else {
            ""
        };
        format!(
            "[[account]]\nname = \"a\"\napp_id = \"wx5f3c8d2e1a9b7c64\"\ntoken = \"Zq7Wm2Kx9Lp4\"\n{forward}{rules}"
        )
    };
    let rule =
        |when: &str| format!("[[account.rule]]\nwhen = {{ {when} }}\nreply = {{ text = \"x\" }}\n");
    let shadowed = account(
        &format!(
            "{}{}",
            rule("msg_type = \"event\", event = \"subscribe\""),
            rule("msg_type = \"event\", event = \"subscribe\", event_key = \"spring\"")
        ),
        false,
    );
    let (_, findings) = check(&dir, &shadowed);
    assert!(
        findings.iter().any(|(k, _, p, f)| k == "account[0].rule[1]"
            && p.contains("never matches")
            && f.contains("above rule[0]")),
        "{findings:#?}"
    );
    let misspelt = account(
        &format!(
            "{}{}",
            rule("event = \"subscibe\""),
            rule("msg_type = \"txt\"")
        ),
        false,
    );
    let (_, findings) = check(&dir, &misspelt);
    let fixes: Vec<&str> = findings.iter().map(|(_, _, _, f)| f.as_str()).collect();
    assert!(
        fixes.contains(&"did you mean event = \"subscribe\"?"),
        "{findings:#?}"
    );
    assert!(
        fixes.contains(&"did you mean msg_type = \"text\"?"),
        "{findings:#?}"
    );
    let echo_and_forward = account(&rule("msg_type = \"text\""), true);
    let (code, findings) = check(&dir, &echo_and_forward);
    assert_eq!(code, Some(0), "a warning alone");
    assert!(
        findings.iter().any(|(k, _, p, _)| k == "account[0].rule[0]"
            && p.contains("[account.forward] gets no text message")),
        "{findings:#?}"
    );
    // The start-up line says where messages are forwarded (without secrets).
    std::fs::write(
        dir.join("wxgate.toml"),
        account(&rule("keyword = \"help\""), true).replace("/hook", "/hook?key=secret"),
    )
    .unwrap();
    let log = dir.join("serve.log");
    let (server, _, printed) = serve(&dir, &["--listen", "127.0.0.1:0"], &log);
    let line = printed.iter().find(|l| l.starts_with("account a")).unwrap();
    assert!(line.contains("forward=http://127.0.0.1:9/hook"), "{line}");
    assert!(!line.contains("secret"), "{line}");
    stop(server);
}

/// A late reply can be tried locally: `sim` tells the emulator (the account's
/// `api_base`) of the message it sends, which opens the user's 48-hour window, so the
/// service's slow reply goes out through the customer-service API and the record is
/// delivered as `late`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_opens_the_window_in_the_emulator_so_a_late_reply_is_sent() {
    let emu = wxgate_emu::Emulator::new(wxgate_emu::EmulatorConfig::with_app(
        wxgate_emu::App::new(APP_ID, APP_SECRET),
    ));
    let (api, _task) = emu
        .spawn(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let service = axum::Router::new().route(
        "/hook",
        axum::routing::post(|| async {
            tokio::time::sleep(Duration::from_millis(700)).await;
            axum::Json(
                serde_json::json!({ "reply": { "type": "text", "content": "slow but sure" } }),
            )
        }),
    );
    let hook = serve_hook(service).await;
    let dir = temp_dir("late");
    std::fs::write(
        dir.join("wxgate.toml"),
        format!(
            "admin_token = \"{ADMIN}\"\napi_base = \"http://{api}\"\n\
             [[account]]\nname = \"oa\"\napp_id = \"{APP_ID}\"\napp_secret = \"{APP_SECRET}\"\ntoken = \"{TOKEN}\"\nmode = \"plain\"\n\
             [account.forward]\nurl = \"{hook}\"\nsecret = \"k3J9sQ2mX8vL5pR1wE\"\ntimeout_ms = 200\n"
        ),
    )
    .unwrap();
    let (dir2, log) = (dir.clone(), dir.join("serve.log"));
    let (_server, base, _) =
        tokio::task::spawn_blocking(move || serve(&dir2, &["--listen", "127.0.0.1:0"], &log))
            .await
            .unwrap();
    let dir2 = dir.clone();
    let sim = tokio::task::spawn_blocking(move || run(&dir2, &["sim", "--json", "text", "hello"]))
        .await
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&sim.stdout).unwrap();
    assert_eq!(report["reply"], "(none: success)", "{report:#}");
    assert!(
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "emulator" && c["status"] == "pass"),
        "{report:#}"
    );
    let client = wxgate_client::http_client();
    let mut record = serde_json::Value::Null;
    for _ in 0..100 {
        record = client
            .get(format!("{base}/api/inbox/1"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if record["state"] != "pending" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(record["state"], "delivered", "{record:#}");
    assert_eq!(record["reply_outcome"], "late", "{record:#}");
    let sent: Vec<_> = emu
        .calls()
        .into_iter()
        .filter(|c| c.path == "/cgi-bin/message/custom/send" && c.errcode == 0)
        .collect();
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert!(sent[0].body.contains("slow but sure"), "{}", sent[0].body);
}
