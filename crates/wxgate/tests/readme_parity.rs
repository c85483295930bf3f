//! README.md and README.zh-CN.md cover the same ground: every subcommand of the CLI
//! (taken from clap) and every key of wxgate.example.toml that one of them names, the
//! other names too. Each README links to the other in its first lines.

use std::collections::BTreeSet;
use std::path::PathBuf;

use clap::CommandFactory;
use regex::Regex;

const ENGLISH: &str = "README.md";
const CHINESE: &str = "README.zh-CN.md";

fn repo_file(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Every subcommand, as typed after `wxgate`: `serve`, `inbox list`, ...
fn subcommands() -> Vec<Vec<String>> {
    fn walk(cmd: &clap::Command, prefix: &[String], out: &mut Vec<Vec<String>>) {
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            let mut path = prefix.to_vec();
            path.push(sub.get_name().to_owned());
            out.push(path.clone());
            walk(sub, &path, out);
        }
    }
    let mut out = Vec::new();
    walk(&wxgate::cli::Cli::command(), &[], &mut out);
    out
}

/// Every key of wxgate.example.toml, at any depth (tables, arrays of tables, inline tables).
fn example_keys() -> BTreeSet<String> {
    fn walk(value: &toml::Value, out: &mut BTreeSet<String>) {
        match value {
            toml::Value::Table(table) => {
                for (key, inner) in table {
                    out.insert(key.clone());
                    walk(inner, out);
                }
            }
            toml::Value::Array(items) => items.iter().for_each(|item| walk(item, out)),
            _ => {}
        }
    }
    let example: toml::Value =
        toml::from_str(&repo_file("wxgate.example.toml")).expect("wxgate.example.toml parses");
    let mut out = BTreeSet::new();
    walk(&example, &mut out);
    out
}

/// The fenced blocks of a Markdown text, as (info string, body); and the text outside them.
fn split_fences(markdown: &str) -> (Vec<(String, String)>, String) {
    let mut blocks = Vec::new();
    let mut prose = String::new();
    let mut open: Option<(String, String)> = None;
    for line in markdown.lines() {
        let trimmed = line.trim_start();
        match open.take() {
            Some((info, body)) if trimmed.starts_with("```") => blocks.push((info, body)),
            Some((info, mut body)) => {
                body.push_str(line);
                body.push('\n');
                open = Some((info, body));
            }
            None if trimmed.starts_with("```") => {
                open = Some((
                    trimmed.trim_start_matches('`').trim().to_owned(),
                    String::new(),
                ));
            }
            None => {
                prose.push_str(line);
                prose.push('\n');
            }
        }
    }
    (blocks, prose)
}

/// The names a README gives as configuration keys: an inline code span that is a key
/// (`app_id`), a key with its table (`[inbox] keep_delivered_days`), a table header
/// (`[account.forward]`) or an assignment (`mode = "safe"`); and in TOML blocks every
/// assigned key and table header.
fn named_keys(markdown: &str) -> BTreeSet<String> {
    let header = Regex::new(r"\[\[?\s*([A-Za-z0-9_.]+)\s*\]\]?").expect("regex");
    let assigned = Regex::new(r"(?:^|[\s{,])([A-Za-z_][A-Za-z0-9_]*)\s*=[^=]").expect("regex");
    let bare =
        Regex::new(r"^(?:\[\[?[A-Za-z0-9_.]+\]\]?\s*)?([A-Za-z_][A-Za-z0-9_]*)$").expect("regex");
    let span = Regex::new(r"`([^`\n]+)`").expect("regex");
    let mut out = BTreeSet::new();
    let toml_text = |text: &str, out: &mut BTreeSet<String>| {
        for cap in header.captures_iter(text) {
            out.extend(cap[1].split('.').map(str::to_owned));
        }
        for cap in assigned.captures_iter(text) {
            out.insert(cap[1].to_owned());
        }
    };
    let (blocks, prose) = split_fences(markdown);
    for (info, body) in &blocks {
        if info == "toml" {
            for line in body.lines() {
                toml_text(line.split(" #").next().unwrap_or(""), &mut out);
            }
        }
    }
    for cap in span.captures_iter(&prose) {
        let code = cap[1].trim();
        if let Some(name) = bare.captures(code) {
            out.insert(name[1].to_owned());
        }
        if code.starts_with('[') || code.contains('=') {
            toml_text(code, &mut out);
        }
    }
    out
}

/// Whether a README names a subcommand: `wxgate serve`, or for `inbox list` a line with
/// `wxgate inbox` followed by `list` (as in `wxgate sim --account a event subscribe`).
fn names_command(markdown: &str, path: &[String]) -> bool {
    let (first, rest) = path.split_first().expect("a subcommand has a name");
    let mut pattern = format!(r"\bwxgate {}\b", regex::escape(first));
    for word in rest {
        pattern.push_str(&format!(r"[^\n]*?[\s`]{}\b", regex::escape(word)));
    }
    Regex::new(&pattern).expect("regex").is_match(markdown)
}

#[test]
fn both_readmes_name_the_same_subcommands_and_keys() {
    let english = repo_file(ENGLISH);
    let chinese = repo_file(CHINESE);
    let commands = subcommands();
    let keys = example_keys();
    assert!(
        commands.len() >= 10,
        "clap lists {} subcommands",
        commands.len()
    );
    assert!(
        keys.len() >= 40,
        "wxgate.example.toml has {} keys",
        keys.len()
    );

    let mut missing: Vec<String> = Vec::new();
    let mut report = |what: &str, in_english: bool, in_chinese: bool| match (in_english, in_chinese)
    {
        (true, false) => missing.push(format!("{CHINESE} lacks {what} (named in {ENGLISH})")),
        (false, true) => missing.push(format!("{ENGLISH} lacks {what} (named in {CHINESE})")),
        _ => {}
    };
    for path in &commands {
        report(
            &format!("the command `wxgate {}`", path.join(" ")),
            names_command(&english, path),
            names_command(&chinese, path),
        );
    }
    let (english_keys, chinese_keys) = (named_keys(&english), named_keys(&chinese));
    for key in &keys {
        report(
            &format!("the config key `{key}`"),
            english_keys.contains(key),
            chinese_keys.contains(key),
        );
    }
    assert!(
        missing.is_empty(),
        "the READMEs differ ({} commands and {} config keys compared):\n  {}",
        commands.len(),
        keys.len(),
        missing.join("\n  ")
    );
}

#[test]
fn each_readme_links_to_the_other_in_its_first_lines() {
    for (name, other, label) in [(ENGLISH, CHINESE, "中文"), (CHINESE, ENGLISH, "English")] {
        let text = repo_file(name);
        let head: Vec<&str> = text.lines().take(3).collect();
        let link = format!("[{label}]({other})");
        assert!(
            head.iter().any(|line| line.contains(&link)),
            "{name} must link to {other} as `{link}` in its first 3 lines; they are:\n{}",
            head.join("\n")
        );
    }
}

#[test]
fn the_key_scanner_reads_spans_and_toml_blocks() {
    let text =
        "Set `app_id` and `[inbox] keep_delivered_days`, `mode = \"safe\"`, `[account.forward]`.\n\
                Not a key: `text/plain`, `wxgate serve`.\n\
                ```toml\n[[account.rule]]\nwhen = { msg_type = \"text\" }   # a comment = x\n```\n";
    let named = named_keys(text);
    for key in [
        "app_id",
        "keep_delivered_days",
        "inbox",
        "mode",
        "account",
        "forward",
        "rule",
    ] {
        assert!(named.contains(key), "{key} not found in {named:?}");
    }
    for key in ["when", "msg_type"] {
        assert!(named.contains(key), "{key} not found in {named:?}");
    }
    for not_key in ["text", "plain", "serve", "comment", "x"] {
        assert!(
            !named.contains(not_key),
            "{not_key} wrongly found in {named:?}"
        );
    }
    let sim = ["sim".to_owned(), "event".to_owned()];
    assert!(names_command(
        "`wxgate sim --account a event subscribe`",
        &sim
    ));
    assert!(!names_command("`wxgate sim text hi`\nan event", &sim));
}
