//! `wxgate inbox`: look at and act on the forwarding inbox of a running server.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use secrecy::ExposeSecret;
use serde_json::Value;

use crate::cli::serve::load_config;

/// Inspect the forwarding inbox of a running `wxgate serve`: list, show, retry, purge.
///
/// The command talks to the server's admin API. It finds the address and the admin
/// token in the config (or data_dir/admin_token); --url and --admin-token override
/// them.
///
/// Examples:
///   wxgate inbox list --state dead
///   wxgate inbox retry 42
///   wxgate inbox purge --older-than 7d
///   wxgate inbox list --json
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct InboxArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: InboxAction,
    /// The server.
    #[command(flatten)]
    pub target: AdminTarget,
}

/// Inbox actions.
#[derive(Debug, Subcommand)]
pub enum InboxAction {
    /// List deliveries, newest first: a table, or the API's JSON with --json.
    ///
    /// Example: wxgate inbox list --state dead --limit 20
    List {
        /// pending, delivered or dead.
        #[arg(long)]
        state: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Show one delivery in full.
    ///
    /// Example: wxgate inbox show 42 --json
    Show {
        /// The delivery id.
        id: u64,
    },
    /// Deliver again now (also for dead letters).
    ///
    /// Example: wxgate inbox retry 42
    Retry {
        /// The delivery id.
        id: u64,
    },
    /// Delete delivered and dead records older than a duration (30m, 24h, 7d, 3600s).
    ///
    /// Example: wxgate inbox purge --older-than 7d
    Purge {
        /// The age.
        #[arg(long)]
        older_than: String,
    },
}

/// Parses `30s`, `15m`, `24h`, `7d` (or plain seconds).
pub fn parse_duration(text: &str) -> Option<i64> {
    let text = text.trim();
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let number: i64 = number.parse().ok()?;
    let factor = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    Some(number * factor)
}

/// Runs `wxgate inbox`.
///
/// # Errors
/// Config errors.
pub fn run(args: InboxArgs) -> anyhow::Result<ExitCode> {
    let (method, path) = match &args.action {
        InboxAction::List { state, limit } => (
            reqwest::Method::GET,
            format!(
                "/api/inbox?limit={limit}{}",
                state
                    .as_ref()
                    .map(|s| format!("&state={s}"))
                    .unwrap_or_default()
            ),
        ),
        InboxAction::Show { id } => (reqwest::Method::GET, format!("/api/inbox/{id}")),
        InboxAction::Retry { id } => (reqwest::Method::POST, format!("/api/inbox/{id}/retry")),
        InboxAction::Purge { older_than } => match parse_duration(older_than) {
            Some(seconds) => (
                reqwest::Method::DELETE,
                format!("/api/inbox?older_than_s={seconds}"),
            ),
            None => {
                eprintln!("--older-than {older_than:?}: use a number with s, m, h or d, e.g. 7d");
                return Ok(ExitCode::from(2));
            }
        },
    };
    let table = matches!(args.action, InboxAction::List { .. });
    call_admin(&args.target, method, &path, |body| {
        if table {
            print_table(body);
        } else {
            print_tree(body, 0);
        }
    })
}

/// The records of `GET /api/inbox` as a table, with the counts under it.
fn print_table(body: &Value) {
    let records = body["records"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    println!(
        "{:>6}  {:<9}  {:>8}  {:<12}  {:>8}  {:<10}  LAST ERROR",
        "ID", "STATE", "ATTEMPTS", "ACCOUNT", "AGE", "TYPE"
    );
    for record in records {
        let received = record["received_at"]
            .as_i64()
            .map_or_else(String::new, |t| age(now - t));
        let kind = record["message"]["event"]
            .as_str()
            .or(record["message"]["msg_type"].as_str())
            .unwrap_or("");
        println!(
            "{:>6}  {:<9}  {:>8}  {:<12}  {:>8}  {:<10}  {}",
            record["id"],
            record["state"].as_str().unwrap_or(""),
            record["attempts"],
            record["account"].as_str().unwrap_or(""),
            received,
            kind,
            record["last_error"].as_str().unwrap_or("")
        );
    }
    let counts = &body["counts"];
    println!(
        "{} shown; {} pending, {} delivered, {} dead",
        records.len(),
        counts["pending"],
        counts["delivered"],
        counts["dead"]
    );
}

/// How long ago, in the largest whole unit: `42s`, `5m`, `3h`, `2d`.
fn age(seconds: i64) -> String {
    let seconds = seconds.max(0);
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m", seconds / 60),
        3600..86_400 => format!("{}h", seconds / 3600),
        _ => format!("{}d", seconds / 86_400),
    }
}

/// Unix seconds as UTC, `2026-11-30T05:30:15Z` (none past the year 9999).
fn utc(seconds: u64) -> Option<String> {
    let time = std::time::UNIX_EPOCH.checked_add(std::time::Duration::from_secs(seconds))?;
    (seconds < 253_402_300_800).then(|| humantime::format_rfc3339_seconds(time).to_string())
}

/// A JSON answer as indented `key: value` lines, for reading; a time (`…_at`, Unix
/// seconds) also in UTC.
pub(crate) fn print_tree(value: &Value, indent: usize) {
    let pad = "  ".repeat(indent);
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match value {
                    Value::Object(inner) if !inner.is_empty() => {
                        println!("{pad}{key}:");
                        print_tree(value, indent + 1);
                    }
                    Value::Array(items) if items.iter().any(Value::is_object) => {
                        println!("{pad}{key}:");
                        for item in items {
                            println!("{pad}  -");
                            print_tree(item, indent + 2);
                        }
                    }
                    Value::String(text) => println!("{pad}{key}: {text}"),
                    Value::Number(seconds) if key.ends_with("_at") => {
                        match seconds.as_u64().and_then(utc) {
                            Some(utc) => println!("{pad}{key}: {seconds} ({utc})"),
                            None => println!("{pad}{key}: {seconds}"),
                        }
                    }
                    other => println!("{pad}{key}: {other}"),
                }
            }
        }
        Value::String(text) => println!("{pad}{text}"),
        other => println!("{pad}{other}"),
    }
}

/// Where a running `wxgate serve` is, for the commands that call its admin API.
#[derive(Debug, Args)]
pub struct AdminTarget {
    /// The config file (default ./wxgate.toml).
    #[arg(long, short, global = true)]
    pub config: Option<PathBuf>,
    /// The server's base URL (default: where the running `serve` listens, from
    /// data_dir/serve.addr; else `listen`).
    #[arg(long, global = true)]
    pub url: Option<String>,
    /// The admin token (default: admin_token, or data_dir/admin_token).
    #[arg(long, global = true, env = "WXGATE_ADMIN_TOKEN")]
    pub admin_token: Option<String>,
    /// Print the server's JSON answer as it is (pretty-printed).
    #[arg(long, global = true)]
    pub json: bool,
}

/// Calls the admin API of the server `target` names and prints the answer: the JSON
/// with `--json`, else `text` of it (an error answer as its `error` on stderr).
/// Exit code 0 on 2xx, 1 on an error answer or no answer, 2 without an admin token.
///
/// # Errors
/// Config errors.
pub fn call_admin(
    target: &AdminTarget,
    method: reqwest::Method,
    path: &str,
    text: impl FnOnce(&Value),
) -> anyhow::Result<ExitCode> {
    let (config, _) = load_config(target.config.as_deref())?;
    let base = target
        .url
        .clone()
        .unwrap_or_else(|| format!("http://{}", super::local_server(&config)));
    let token = match target.admin_token.clone().or(config
        .admin_token
        .as_ref()
        .map(|t| t.expose_secret().to_owned()))
    {
        Some(token) => token,
        None => match std::fs::read_to_string(config.data_dir.join("admin_token")) {
            Ok(token) => token.trim().to_owned(),
            Err(_) => {
                eprintln!("no admin token: set admin_token in the config, pass --admin-token, or run where data_dir/admin_token is readable");
                return Ok(ExitCode::from(2));
            }
        },
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(async {
        let response = wxgate_client::http_client()
            .request(method, format!("{base}{path}"))
            .bearer_auth(&token)
            .send()
            .await?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        Ok::<_, reqwest::Error>((status, body))
    });
    match result {
        Ok((status, body)) => {
            if target.json {
                println!("{}", serde_json::to_string_pretty(&body)?);
            } else if status.is_success() {
                text(&body);
            } else {
                let reason = body["error"]
                    .as_str()
                    .map_or_else(|| body.to_string(), str::to_owned);
                eprintln!("error: HTTP {}: {reason}", status.as_u16());
            }
            Ok(if status.is_success() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Err(err) => {
            eprintln!(
                "cannot reach {base}: {} (is `wxgate serve` running?)",
                crate::text::error_chain(&err)
            );
            Ok(ExitCode::from(1))
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn unix_seconds_read_as_utc() {
        assert_eq!(super::utc(0).as_deref(), Some("1970-01-01T00:00:00Z"));
        assert_eq!(
            super::utc(1_796_016_615).as_deref(),
            Some("2026-11-30T05:30:15Z")
        );
        assert_eq!(super::utc(u64::MAX), None);
    }
    #[test]
    fn durations() {
        assert_eq!(super::parse_duration("7d"), Some(604_800));
        assert_eq!(super::parse_duration("24h"), Some(86_400));
        assert_eq!(super::parse_duration("30m"), Some(1800));
        assert_eq!(super::parse_duration("90"), Some(90));
        assert_eq!(super::parse_duration("1w"), None);
        assert_eq!(super::parse_duration("d"), None);
    }
}
