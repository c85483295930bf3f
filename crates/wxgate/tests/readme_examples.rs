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

/// What the demo prints up to the line that it listens, with the run's own parts written
/// as the README writes them.
fn demo_output() -> String {
    let dir = std::env::temp_dir().join(format!("wxgate-readme-demo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
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
    let _ = child.kill();
    let _ = child.wait();
    let address = printed
        .last()
        .and_then(|l| l.strip_prefix("wxgate listening on http://"))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the listening line")
        .to_owned();
    let text = printed.join("\n").replace(&address, "127.0.0.1:8080");
    as_written(&text)
}

/// The parts that change from run to run, as the README writes them.
fn as_written(text: &str) -> String {
    let rules = [
        (r"signature=[0-9a-f]{40}", "signature=…"),
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
    let demo = demo_output();
    let mut checked = 0;
    for readme in READMES {
        let text = std::fs::read_to_string(repo_root().join(readme)).unwrap();
        let blocks = marked_blocks(&text);
        assert!(
            blocks.iter().any(|(name, _)| name == "demo"),
            "{readme} marks no demo output"
        );
        for (name, block) in blocks {
            let real = match name.as_str() {
                "demo" => &demo,
                other => panic!("{readme}: no run is known for the output {other:?}"),
            };
            assert_eq!(
                block.trim_matches('\n'),
                real.trim_matches('\n'),
                "{readme}: the {name} block differs from a real run; paste this:\n{real}"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, READMES.len());
}

#[test]
fn the_run_s_own_parts_are_written_as_in_the_readme() {
    let line = "  curl -d '<xml><MsgId>1796</MsgId></xml>' 'http://x/wx/demo?signature=0123456789abcdef0123456789abcdef01234567&timestamp=1796&nonce=1'";
    assert_eq!(
        as_written(line),
        "  curl -d '<xml>…</xml>' 'http://x/wx/demo?signature=…&timestamp=…&nonce=1'"
    );
    let text = "<!-- output: demo -->\n\n```\na\nb\n```\nafter";
    assert_eq!(
        marked_blocks(text),
        [("demo".to_owned(), "a\nb".to_owned())]
    );
}
