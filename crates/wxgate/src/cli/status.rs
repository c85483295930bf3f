//! `wxgate status`: how a running server stands.

use std::process::ExitCode;

use clap::Args;

use crate::cli::inbox::{call_admin, AdminTarget};

/// Show how a running `wxgate serve` stands: storage (and whether Redis answers), the
/// delivery queue, each account's credentials (cached or not, expiry, fetches today;
/// never their values) and the inbox counts, from `GET /api/status`: readable lines,
/// or the JSON with --json.
///
/// The address and the admin token come from the config (or data_dir/admin_token);
/// --url and --admin-token override them.
///
/// Examples:
///   wxgate status
///   wxgate status --url http://10.0.0.5:8080 --admin-token "$TOKEN"
///   wxgate status --json
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct StatusArgs {
    /// The server.
    #[command(flatten)]
    pub target: AdminTarget,
}

/// Runs `wxgate status`.
///
/// # Errors
/// Config errors.
pub fn run(args: StatusArgs) -> anyhow::Result<ExitCode> {
    call_admin(&args.target, reqwest::Method::GET, "/api/status", |body| {
        crate::cli::inbox::print_tree(body, 0);
    })
}
