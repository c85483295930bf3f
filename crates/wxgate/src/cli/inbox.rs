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
    /// List deliveries, newest first.
    List {
        /// pending, delivered or dead.
        #[arg(long)]
        state: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Show one delivery in full.
    Show {
        /// The delivery id.
        id: u64,
    },
    /// Deliver again now (also for dead letters).
    Retry {
        /// The delivery id.
        id: u64,
    },
    /// Delete delivered and dead records older than a duration (30m, 24h, 7d, 3600s).
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
    call_admin(&args.target, method, &path)
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
}

/// Calls the admin API of the server `target` names and prints the JSON answer.
/// Exit code 0 on 2xx, 1 on an error answer or no answer, 2 without an admin token.
///
/// # Errors
/// Config errors.
pub fn call_admin(
    target: &AdminTarget,
    method: reqwest::Method,
    path: &str,
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
            println!("{}", serde_json::to_string_pretty(&body)?);
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
    fn durations() {
        assert_eq!(super::parse_duration("7d"), Some(604_800));
        assert_eq!(super::parse_duration("24h"), Some(86_400));
        assert_eq!(super::parse_duration("30m"), Some(1800));
        assert_eq!(super::parse_duration("90"), Some(90));
        assert_eq!(super::parse_duration("1w"), None);
        assert_eq!(super::parse_duration("d"), None);
    }
}
