//! `wxgate reload`: a running server reads its configuration file again.

use std::process::ExitCode;

use clap::Args;
use serde_json::Value;

use crate::cli::inbox::{call_admin, AdminTarget};

/// Make a running `wxgate serve` read its configuration file again (as SIGHUP does)
/// and apply it without a restart: accounts, rules, forwarding, OAuth settings, links
/// and verification files change at once; requests in flight finish on the old
/// configuration. A file with errors changes nothing, and they are printed with their
/// lines. Settings that need a restart (listen, storage, [http], …) are named.
///
/// Examples:
///   wxgate reload
///   wxgate reload --url http://127.0.0.1:8080 --admin-token "$TOKEN"
///   wxgate reload --json
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct ReloadArgs {
    /// The server.
    #[command(flatten)]
    pub target: AdminTarget,
}

/// Runs `wxgate reload`.
///
/// # Errors
/// Config errors (finding the server).
pub fn run(args: ReloadArgs) -> anyhow::Result<ExitCode> {
    // The server would refuse a file with errors: say them all here (the lookup of the
    // server itself reads the file, and would stop at the first).
    let path = (args.target.config.clone()).unwrap_or_else(|| "wxgate.toml".into());
    if path.exists() {
        let errors = crate::config::errors(&path);
        if !errors.is_empty() {
            for error in &errors {
                eprintln!("error: {error}");
            }
            eprintln!("nothing was reloaded: the running server keeps its configuration");
            return Ok(ExitCode::from(1));
        }
    }
    call_admin(&args.target, reqwest::Method::POST, "/api/reload", print)
}

fn print(body: &Value) {
    let names = |key: &str| -> Vec<&str> {
        body[key]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    };
    println!(
        "reloaded: {} account(s): {}",
        names("accounts").len(),
        names("accounts").join(", ")
    );
    for (key, what) in [
        ("added", "added"),
        (
            "removed",
            "removed (what their inbox holds is still delivered)",
        ),
    ] {
        if !names(key).is_empty() {
            println!("{what}: {}", names(key).join(", "));
        }
    }
    for setting in names("needs_restart") {
        println!("needs a restart to take effect: {setting}");
    }
}
