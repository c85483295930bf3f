//! The real `wxgate` binary: the demo that the README's run command starts, graceful
//! shutdown on SIGTERM, and start-up errors.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_wxgate");

struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    fn start(dir: &Path, args: &[&str]) -> Running {
        let mut child = Command::new(BIN)
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("wxgate starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a stdout line containing `needle` and returns it.
    fn wait_for(&mut self, needle: &str) -> String {
        loop {
            match self.lines.recv_timeout(Duration::from_secs(20)) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!("no line with {needle:?}; saw:\n{}", self.seen.join("\n")),
            }
        }
    }

    fn terminate(mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
        self.wait_for("wxgate stopped");
        self.child.wait().unwrap()
    }
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("wxgate-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn http_get(url: &str) -> (u16, String) {
    let url = url.to_owned();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let response = wxgate_client::http_client().get(&url).send().await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    })
}

#[test]
fn demo_runs_with_no_config_and_its_printed_curl_line_verifies() {
    let dir = temp_dir("demo");
    let mut server = Running::start(&dir, &["serve", "--listen", "127.0.0.1:0"]);
    server.wait_for("embedded demo");
    let curl = server.wait_for("echostr=hello-wxgate");
    let url = curl.split('\'').nth(1).expect("curl line has a quoted URL");
    let listening = server.wait_for("wxgate listening on http://");
    let base = listening
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap();
    assert!(url.starts_with(base), "{url} vs {base}");
    assert_eq!(http_get(url), (200, "hello-wxgate".to_owned()));
    assert!(dir.join("wxgate-data").is_dir(), "data_dir is created");
    let status = server.terminate();
    assert!(status.success(), "SIGTERM is a clean shutdown: {status:?}");
}

#[test]
fn wxgate_toml_in_the_working_directory_is_used() {
    let dir = temp_dir("cwd-config");
    std::fs::write(
        dir.join("wxgate.toml"),
        "[[account]]\nname = \"mine\"\napp_id = \"wx1234567890abcdef\"\ntoken = \"MyToken1\"\n",
    )
    .unwrap();
    let mut server = Running::start(&dir, &["serve", "--listen", "127.0.0.1:0"]);
    let line = server.wait_for("account mine");
    assert!(line.contains("mode=plain"), "{line}");
    assert!(
        !server.seen.iter().any(|l| l.contains("demo")),
        "no demo banner with a config file"
    );
    server.wait_for("wxgate listening");
    assert!(server.terminate().success());
}

#[test]
fn config_errors_name_file_line_and_key_and_exit_1() {
    let dir = temp_dir("bad-config");
    std::fs::write(
        dir.join("broken.toml"),
        "[[account]]\nname = \"a\"\napp_id = \"wx1234567890abcdef\"\ntoken = \"to\"\n",
    )
    .unwrap();
    let output = Command::new(BIN)
        .args(["serve", "--config", "broken.toml"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("broken.toml:4: account[0].token"),
        "{stderr}"
    );
}

#[test]
fn unwritable_data_dir_is_a_startup_error() {
    let dir = temp_dir("data-dir");
    std::fs::write(dir.join("a-file"), "x").unwrap();
    std::fs::write(
        dir.join("wxgate.toml"),
        "data_dir = \"a-file/below\"\n[[account]]\nname = \"a\"\napp_id = \"wx1234567890abcdef\"\ntoken = \"tok\"\n",
    )
    .unwrap();
    let output = Command::new(BIN)
        .args(["serve"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("data_dir a-file/below"), "{stderr}");
}

#[test]
fn help_lists_the_commands() {
    let output = Command::new(BIN).arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains("serve"), "{help}");
}

/// Regression: SIGTERM sent right after "listening" was printed killed the process
/// with the default signal action (no graceful shutdown), because the handler was
/// only registered when the server future was first polled.
#[test]
fn sigterm_right_after_start_is_a_clean_shutdown() {
    let dir = temp_dir("early-sigterm");
    for _ in 0..5 {
        let mut server = Running::start(&dir, &["serve", "--listen", "127.0.0.1:0"]);
        server.wait_for("wxgate listening");
        let status = server.terminate();
        assert!(status.success(), "{status:?}");
    }
}
