//! Helpers for the tests of the kinds' tools (`kinds_tools.rs`, `kinds_doctor.rs`):
//! the real binary, its output, and the accounts of each kind.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use super::TOKEN;

pub const BIN: &str = env!("CARGO_BIN_EXE_wxgate");
pub const CORP_ID: &str = "ww3f2e1d0c9b8a7654";
pub const CORP_SECRET: &str = "CorpSecretForTheToolsTest0123456789abcdefg";
pub const MINI_APP_ID: &str = "wx5d3c9a1b2e4f6071";
/// An EncodingAESKey that is neither published nor a placeholder.
pub const FRESH_KEY: &str = "Nq8bOmP1aZ3gq09gUI4Shh6wnqoquXgcF5bcUfKohjI";

pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wxgate-kt-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn wxgate(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("wxgate runs")
}

/// Runs the binary with borrowed arguments, off the async workers.
pub async fn wxgate_args(args: &[&str]) -> Output {
    wxgate_async(args.iter().map(|s| s.to_string()).collect()).await
}

/// Runs the binary off the async workers, without colour.
pub async fn wxgate_async(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .args(&args)
            .env("NO_COLOR", "1")
            .output()
            .expect("wxgate runs")
    })
    .await
    .unwrap()
}

pub fn out(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn err(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", out(output), err(output)))
}

#[track_caller]
pub fn find_check<'a>(report: &'a Value, name_part: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"].as_str().unwrap().contains(name_part))
        .unwrap_or_else(|| panic!("no check named like {name_part:?} in {report:#}"))
}

#[track_caller]
pub fn find_finding<'a>(report: &'a Value, key: &str, needle: &str) -> &'a Value {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["key"] == key && f["problem"].as_str().unwrap().contains(needle))
        .unwrap_or_else(|| panic!("no finding at {key} mentioning {needle:?} in {report:#}"))
}

/// `wxgate check --json` of `text` written as a file in `dir`.
pub fn check_text(dir: &Path, text: &str) -> (Option<i32>, Value) {
    std::fs::write(dir.join("check.toml"), text).unwrap();
    let output = wxgate(dir, &["check", "--config", "check.toml", "--json"]);
    (output.status.code(), json(&output))
}

/// A JSON mini-program whose text and news rules need the customer-service API.
pub fn mini_account(extra: &str) -> String {
    format!(
        "[[account]]\nname = \"mini\"\nkind = \"miniprogram\"\ndata_format = \"json\"\napp_id = \"{MINI_APP_ID}\"\n\
         token = \"{TOKEN}\"\nencoding_aes_key = \"{FRESH_KEY}\"\n{extra}\n\
         [[account.rule]]\nwhen = {{ msg_type = \"text\" }}\nreply = {{ text = \"hi\" }}\n\
         [[account.rule]]\nwhen = {{ msg_type = \"image\" }}\nreply = {{ transfer_customer_service = {{}} }}\n\
         [[account.rule]]\nwhen = {{ msg_type = \"event\" }}\nreply = {{ news = [{{ title = \"t\", url = \"https://example.com\" }}] }}\n"
    )
}

/// A WeCom application with `lines` for its identity.
pub fn wecom_account(lines: &str) -> String {
    format!(
        "[[account]]\nname = \"corp\"\nkind = \"wecom\"\ntoken = \"{TOKEN}\"\nencoding_aes_key = \"{FRESH_KEY}\"\n{lines}\n"
    )
}
