//! The example outputs in both READMEs come from real runs. A code block right after a
//! line `<!-- output: NAME -->` must equal what the real binary prints for NAME, once
//! the parts that change from run to run (the port, signatures, timestamps, the pushed
//! XML) are written as the README writes them. A failure prints the block to paste.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_wxgate");
const READMES: [&str; 2] = ["README.md", "README.zh-CN.md"];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The blocks marked `<!-- output: NAME -->` in `text`, in order, as (name, block).
fn marked_blocks(text: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(name) = line
            .trim()
            .strip_prefix("<!-- output: ")
            .and_then(|rest| rest.strip_suffix(" -->"))
        else {
            continue;
        };
        let opening = lines.find(|l| !l.trim().is_empty()).unwrap_or_default();
        assert!(
            opening.starts_with("```"),
            "a code block must follow the {name} marker"
        );
        let body: Vec<&str> = lines
            .by_ref()
            .take_while(|l| !l.starts_with("```"))
            .collect();
        blocks.push((name.to_owned(), body.join("\n")));
    }
    blocks
}

/// A running `wxgate serve` (killed when dropped), with what it printed up to the line
/// that it listens and the address it bound.
struct Running {
    child: std::process::Child,
    printed: Vec<String>,
    address: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `wxgate serve --listen 127.0.0.1:0` in a fresh directory holding `config`
/// as its wxgate.toml (none: the embedded demo); its log goes to `log`.
fn serve(name: &str, config: Option<&str>, log: Stdio) -> Running {
    let dir = fresh_dir(name);
    if let Some(config) = config {
        std::fs::write(dir.join("wxgate.toml"), config).unwrap();
    }
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(&dir)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("wxgate starts");
    let stdout = child.stdout.take().unwrap();
    let mut printed = Vec::new();
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let last = line.starts_with("wxgate listening on ");
        printed.push(line);
        if last {
            break;
        }
    }
    let address = printed
        .last()
        .and_then(|l| l.strip_prefix("wxgate listening on http://"))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the listening line")
        .to_owned();
    Running {
        child,
        printed,
        address,
    }
}

fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wxgate-readme-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `text` with the run's address and port written as the README writes them.
fn at_8080(text: &str, address: &str) -> String {
    let port = address.rsplit(':').next().unwrap();
    text.replace(address, "127.0.0.1:8080")
        .replace(&format!("port {port}"), "port 8080")
}

/// What the demo prints up to the line that it listens.
fn demo_output(demo: &Running) -> String {
    as_written(&at_8080(&demo.printed.join("\n"), &demo.address))
}

/// The README's doctor example: the demo probed with its key.
fn doctor_output(demo: &Running) -> String {
    let url = format!("http://{}/wx/demo", demo.address);
    let args = [
        "doctor",
        url.as_str(),
        "--token",
        "wxgateDemoToken",
        "--app-id",
        "wx1234567890abcdef",
        "--aes-key",
        "Nr8OKuMPaz3gq09gUI4Shh6wnqoquXgcF5bcUfKohjI",
    ];
    let output = Command::new(BIN)
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let printed = format!(
        "$ wxgate {}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout)
    );
    as_written(&at_8080(&printed, &demo.address))
}

/// What `wxgate serve` prints for a configuration it refuses.
fn serve_refuses(name: &str, config: &str) -> String {
    let dir = fresh_dir(name);
    std::fs::write(dir.join("wxgate.toml"), config).unwrap();
    let output = Command::new(BIN)
        .arg("serve")
        .current_dir(&dir)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{name}: serve must refuse");
    as_written(&String::from_utf8_lossy(&output.stderr))
}

/// The log line of a verification signed with the Token in another letter case.
fn refusal_line() -> String {
    use std::io::{Read, Write};
    let dir = fresh_dir("refusal-log");
    let log = std::fs::File::create(dir.join("log")).unwrap();
    let server = serve(
        "refusal",
        Some("[[account]]\nname = \"shop\"\napp_id = \"wxa1b2c3d4e5f60718\"\ntoken = \"ShopToken2026\"\n"),
        Stdio::from(log),
    );
    let timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let signature =
        wxgate_proto::signature::url_signature("shoptoken2026", &timestamp, "123").to_hex();
    let mut stream = std::net::TcpStream::connect(&server.address).unwrap();
    write!(
        stream,
        "GET /wx/shop?signature={signature}&timestamp={timestamp}&nonce=123&echostr=hi HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    drop(server);
    let log = std::fs::read_to_string(dir.join("log")).unwrap();
    let line = log
        .lines()
        .find(|l| l.contains("refused:"))
        .unwrap_or_else(|| panic!("no refusal in the log: {log}"));
    as_written(line)
}

/// The parts that change from run to run, as the README writes them.
fn as_written(text: &str) -> String {
    let rules = [
        (r"signature=[0-9a-f]{40}", "signature=…"),
        (
            r"(?m)^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z",
            "2026-11-30T05:35:22.986232Z",
        ),
        (
            r"echoed exactly \(18 bytes\) in [0-9]+ ms",
            "echoed exactly (18 bytes) in 1 ms",
        ),
        (r"time: [0-9]+ ms \(limit", "time: 1 ms (limit"),
        (
            r"the keys here are name, app_id, [a-z_, ]+",
            "the keys here are name, app_id, …",
        ),
        (r"timestamp=[0-9]+", "timestamp=…"),
        (r"-d '<xml>.*?</xml>'", "-d '<xml>…</xml>'"),
    ];
    rules
        .iter()
        .fold(text.to_owned(), |text, (pattern, written)| {
            regex::Regex::new(pattern)
                .unwrap()
                .replace_all(&text, *written)
                .into_owned()
        })
}

#[test]
fn marked_example_outputs_are_what_the_binary_prints() {
    let demo = serve("demo", None, Stdio::null());
    let runs = [
        ("demo", demo_output(&demo)),
        ("doctor-demo", doctor_output(&demo)),
        (
            "serve-short-token",
            serve_refuses(
                "short-token",
                "[[account]]\nname = \"shop\"\napp_id = \"wxa1b2c3d4e5f60718\"\ntoken = \"ab\"\n",
            ),
        ),
        (
            "serve-unknown-key",
            serve_refuses(
                "unknown-key",
                "[[account]]\nname = \"shop\"\napp_id = \"wxa1b2c3d4e5f60718\"\ntoken = \"abcdef\"\ntimestamp_windows_s = 300\n",
            ),
        ),
        ("refusal-log", refusal_line()),
    ];
    drop(demo);
    for readme in READMES {
        let text = std::fs::read_to_string(repo_root().join(readme)).unwrap();
        let blocks = marked_blocks(&text);
        for (name, _) in &runs {
            assert!(
                blocks.iter().any(|(marked, _)| marked == name),
                "{readme} does not mark the {name} output"
            );
        }
        for (name, block) in blocks {
            // The doctor's failures come from broken servers: tests/cli.rs checks them.
            if name == "doctor-failures" {
                continue;
            }
            let real = runs
                .iter()
                .find(|(known, _)| *known == name)
                .map(|(_, real)| real)
                .unwrap_or_else(|| panic!("{readme}: no run is known for the output {name:?}"));
            assert_eq!(
                block.trim_matches('\n'),
                real.trim_matches('\n'),
                "{readme}: the {name} block differs from a real run; paste this:\n{real}"
            );
        }
    }
}
