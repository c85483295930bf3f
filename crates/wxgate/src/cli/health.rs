//! `wxgate health`: whether a running server can do its work, for container
//! HEALTHCHECKs and supervisors (no admin token needed).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use crate::cli::serve::load_config;

/// Ask a running `wxgate serve` whether it can do its work (`GET /healthz`): exit 0
/// when it answers ok, 1 with the reason when it answers 503 or not at all. Needs no
/// admin token, so a container's HEALTHCHECK can run it.
///
/// Examples:
///   wxgate health
///   wxgate health --url http://127.0.0.1:8080
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct HealthArgs {
    /// The config file (default ./wxgate.toml), for where the server listens.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// The server's base URL (default: where the running `serve` listens, from
    /// data_dir/serve.addr; else `listen`).
    #[arg(long)]
    pub url: Option<String>,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 5)]
    pub timeout_s: u64,
    /// Print `{"ok": …, "status": …, "reason": …}` instead of a line.
    #[arg(long)]
    pub json: bool,
}

/// Runs `wxgate health`.
///
/// # Errors
/// Config errors (without `--url`).
pub fn run(args: HealthArgs) -> anyhow::Result<ExitCode> {
    let base = match args.url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => {
            let (config, _) = load_config(args.config.as_deref())?;
            format!("http://{}", super::local_server(&config))
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let answer = runtime.block_on(async {
        let response = wxgate_client::http_client_builder()
            .timeout(Duration::from_secs(args.timeout_s.max(1)))
            .build()?
            .get(format!("{base}/healthz"))
            .send()
            .await?;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        Ok::<_, reqwest::Error>((status, text))
    });
    let (ok, status, reason) = match answer {
        Ok((200, _)) => (true, Some(200), String::from("ok")),
        Ok((status, text)) => (false, Some(status), first_line(&text)),
        Err(error) => (
            false,
            None,
            format!(
                "no answer from {base}: {}",
                crate::text::error_chain(&error)
            ),
        ),
    };
    if args.json {
        println!(
            "{}",
            serde_json::json!({ "ok": ok, "status": status, "reason": reason })
        );
    } else if ok {
        println!("ok");
    } else {
        let status = status.map(|s| format!("HTTP {s}: ")).unwrap_or_default();
        println!("unhealthy: {status}{reason}");
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The first line of an answer, at most 300 characters (the URL may point anywhere).
fn first_line(text: &str) -> String {
    text.lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(300)
        .collect()
}
