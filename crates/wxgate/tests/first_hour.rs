//! What a new user trips over in the first hour, run as the real binary: the data
//! directory follows the config file (and an install with its data where the old rule
//! put it is refused with the move to make), `sim` and `status` find a server started
//! with `--listen` elsewhere through `data_dir/serve.addr`, a refused connection says
//! to start the server, and the demo's curl line sends a fresh MsgId while a repeated
//! one is logged as answered from the dedup cache.

mod common;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
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
    let mut child = Command::new(BIN)
        .arg("serve")
        .args(args)
        .current_dir(cwd)
        .env("WXGATE_LOG", "wxgate=info")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("wxgate starts");
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufReader::new(stdout)
        .lines()
        .map_while(Result::ok);
    let mut printed = Vec::new();
    let base = loop {
        let line = lines.next().expect("wxgate prints its address");
        if let Some(rest) = line.strip_prefix("wxgate listening on ") {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
        printed.push(line);
    };
    std::thread::spawn(move || lines.for_each(drop));
    (KillOnDrop(child), base, printed)
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
    let status = run(&elsewhere, &["status", "--config", &config]);
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
