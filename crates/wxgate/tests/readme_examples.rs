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

/// What a service receives for a pushed text: the raw request (head and body).
fn delivered_request() -> String {
    use std::io::{Read, Write};
    let service = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hook = service.local_addr().unwrap();
    let catch = std::thread::spawn(move || {
        let (mut stream, _) = service.accept().unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let mut request = Vec::new();
        let mut chunk = [0u8; 4096];
        while let Ok(n) = stream.read(&mut chunk) {
            request.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&request);
            let Some((head, body)) = text.split_once("\r\n\r\n") else {
                continue;
            };
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(str::to_owned)
                })
                .and_then(|n| n.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if n == 0 || body.len() >= length {
                break;
            }
        }
        let _ =
            stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        String::from_utf8_lossy(&request).into_owned()
    });
    let config = format!(
        "[[account]]\nname = \"shop\"\napp_id = \"wxa1b2c3d4e5f60718\"\ntoken = \"ShopToken2026\"\nmode = \"plain\"\n\
         [account.forward]\nurl = \"http://{hook}/wechat\"\nsecret = \"a-long-random-shared-secret\"\n"
    );
    let server = serve("delivery", Some(&config), Stdio::null());
    let timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let xml = wxgate_proto::push::build::text(
        "gh_shop",
        "oUser1",
        timestamp as i64,
        "hello",
        7390000000000000001,
    );
    let signature =
        wxgate_proto::signature::url_signature("ShopToken2026", &timestamp.to_string(), "1")
            .to_hex();
    let mut stream = std::net::TcpStream::connect(&server.address).unwrap();
    write!(
        stream,
        "POST /wx/shop?signature={signature}&timestamp={timestamp}&nonce=1 HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{xml}",
        xml.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    catch.join().unwrap()
}

/// The README's delivery example has the real request's line, its headers (each value
/// of the same form) and its body's fields, at every level.
fn assert_delivery_shape(readme: &str, block: &str, real: &str) {
    let (real_head, real_body) = real.split_once("\r\n\r\n").expect("a whole request");
    let (head, body) = block.split_once("\n\n").expect("the block's head and body");
    let mut written = head.lines();
    let request_line = written.next().unwrap();
    assert!(
        real_head.starts_with(&format!("{request_line} HTTP/1.1")),
        "{readme}: the request line {request_line:?} is not the real one:\n{real_head}"
    );
    for line in written {
        let (name, value) = line.split_once(": ").unwrap();
        let real_value = real_head
            .lines()
            .find_map(|l| {
                let (n, v) = l.split_once(": ")?;
                n.eq_ignore_ascii_case(name).then_some(v)
            })
            .unwrap_or_else(|| panic!("{readme}: the service gets no {name} header:\n{real_head}"));
        let form = |v: &str| {
            v.chars()
                .take_while(|c| !c.is_ascii_digit() && *c != '<')
                .collect::<String>()
        };
        assert_eq!(form(value), form(real_value), "{readme}: the {name} header");
    }
    let written: serde_json::Value = serde_json::from_str(body)
        .unwrap_or_else(|e| panic!("{readme}: the delivery body is not JSON ({e}):\n{body}"));
    let real: serde_json::Value = serde_json::from_str(real_body).unwrap();
    assert_eq!(
        shape(&written),
        shape(&real),
        "{readme}: the delivery body's fields"
    );
}

/// The field names and value kinds of a JSON value, at every level.
fn shape(value: &serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(fields) => fields
            .iter()
            .map(|(key, value)| (key.clone(), shape(value)))
            .collect::<serde_json::Map<_, _>>()
            .into(),
        serde_json::Value::String(_) => "string".into(),
        serde_json::Value::Number(_) => "number".into(),
        other => other.clone(),
    }
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
    let delivery = delivered_request();
    drop(demo);
    for readme in READMES {
        let text = std::fs::read_to_string(repo_root().join(readme)).unwrap();
        let blocks = marked_blocks(&text);
        for name in runs.iter().map(|(name, _)| *name).chain(["delivery"]) {
            assert!(
                blocks.iter().any(|(marked, _)| marked == name),
                "{readme} does not mark the {name} output"
            );
        }
        for (name, block) in blocks {
            match name.as_str() {
                // The doctor's failures come from broken servers: tests/doctor.rs.
                "doctor-failures" => continue,
                // The run's ids and times differ: its shape is compared.
                "delivery" => {
                    assert_delivery_shape(readme, &block, &delivery);
                    continue;
                }
                _ => {}
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
