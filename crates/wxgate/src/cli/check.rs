//! `wxgate check`: the console's rules, applied to a config file or to values.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use serde::Serialize;
use wxgate_proto::console::{self, Severity};

use crate::config::{self, ConfigFinding};

/// Check a config, or URL/Token/key/AppID values, against the console's rules.
///
/// Every rule of the console's server configuration is checked, and each finding says
/// what is wrong, where (file:line for a config) and how to fix it.
///
/// Exit status: 0 no errors (warnings are printed but allowed; --strict makes them
/// fail), 1 an error was found, 2 usage error. The same rule as `doctor`.
///
/// Examples:
///   wxgate check --config wxgate.toml
///   wxgate check --config wxgate.toml --strict
///   wxgate check --url https://wx.example.com/wx/shop --token MyToken123 --aes-key KEY --app-id wx1234567890abcdef
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct CheckArgs {
    /// The configuration file (default ./wxgate.toml).
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// A server URL (服务器地址) to check instead of a file.
    #[arg(long)]
    pub url: Option<String>,
    /// A Token (令牌) to check.
    #[arg(long)]
    pub token: Option<String>,
    /// An EncodingAESKey to check.
    #[arg(long = "aes-key")]
    pub aes_key: Option<String>,
    /// An AppID to check.
    #[arg(long = "app-id")]
    pub app_id: Option<String>,
    /// Print the findings as JSON.
    #[arg(long)]
    pub json: bool,
    /// Exit 1 on warnings too, not only on errors.
    #[arg(long)]
    pub strict: bool,
}

#[derive(Debug, Serialize)]
struct Report {
    ok: bool,
    findings: Vec<ConfigFinding>,
}

/// Runs `wxgate check`.
///
/// # Errors
/// Never; problems are findings and usage errors exit 2.
pub fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let values_given = args.url.is_some()
        || args.token.is_some()
        || args.aes_key.is_some()
        || args.app_id.is_some();
    let findings = if values_given {
        if args.config.is_some() {
            eprintln!(
                "give either --config or values (--url, --token, --aes-key, --app-id), not both"
            );
            return Ok(ExitCode::from(2));
        }
        check_values(&args)
    } else {
        let path = args
            .config
            .clone()
            .unwrap_or_else(|| PathBuf::from("wxgate.toml"));
        if !path.exists() {
            eprintln!(
                "{} does not exist: pass --config FILE, or values such as --url and --token",
                path.display()
            );
            return Ok(ExitCode::from(2));
        }
        match config::lint(&path) {
            Ok(mut findings) => {
                findings.extend(tls_findings(&path));
                findings
            }
            Err(err) => vec![ConfigFinding {
                severity: Severity::Error,
                file: err.file,
                line: err.line,
                key: err.key,
                problem: err.message,
                fix: String::new(),
            }],
        }
    };
    let ok = findings
        .iter()
        .all(|f| !args.strict && f.severity != Severity::Error);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&Report { ok, findings })?
        );
    } else {
        print_findings(&findings, args.config.as_deref());
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The `[tls]` files as `serve` would read them: an error when they cannot serve, a
/// warning when the certificate expires within 14 days.
fn tls_findings(path: &Path) -> Vec<ConfigFinding> {
    let Ok(config) = config::Config::load(path) else {
        return Vec::new();
    };
    let Some(files) = config.tls else {
        return Vec::new();
    };
    let finding = |severity, problem: String, fix: &str| ConfigFinding {
        severity,
        file: path.display().to_string(),
        line: None,
        key: "tls".into(),
        problem,
        fix: fix.into(),
    };
    let now = std::time::SystemTime::now();
    match crate::tls::load(&files, now) {
        Err(error) => vec![finding(Severity::Error, error.to_string(), "")],
        Ok((_, not_after)) => {
            let left = not_after - wxgate_client::clock::now();
            if left < 14 * 86_400 {
                vec![finding(
                    Severity::Warning,
                    format!(
                        "the certificate {} expires in {} days",
                        files.cert.display(),
                        left / 86_400
                    ),
                    "renew it; wxgate reloads it on SIGHUP or when the files change",
                )]
            } else {
                Vec::new()
            }
        }
    }
}

fn check_values(args: &CheckArgs) -> Vec<ConfigFinding> {
    let mut findings = Vec::new();
    let mut add = |value: &Option<String>, name: &str, check: fn(&str) -> Vec<console::Finding>| {
        if let Some(value) = value {
            for f in check(value) {
                findings.push(ConfigFinding {
                    severity: f.severity,
                    file: String::new(),
                    line: None,
                    key: name.to_owned(),
                    problem: f.problem,
                    fix: f.fix,
                });
            }
        }
    };
    add(&args.url, "--url", console::check_url);
    add(&args.token, "--token", console::check_token);
    add(&args.aes_key, "--aes-key", console::check_aes_key);
    add(&args.app_id, "--app-id", console::check_app_id);
    findings
}

fn print_findings(findings: &[ConfigFinding], config: Option<&Path>) {
    if findings.is_empty() {
        match config {
            Some(path) => println!("✓ {}: no problems found", path.display()),
            None => println!("✓ no problems found"),
        }
        return;
    }
    for f in findings {
        let mark = match f.severity {
            Severity::Error => "✗ error",
            Severity::Warning => "! warning",
        };
        let place = match (f.file.is_empty(), f.line) {
            (true, _) => String::new(),
            (false, Some(line)) => format!("{}:{line}: ", f.file),
            (false, None) => format!("{}: ", f.file),
        };
        println!("{mark}: {place}{}: {}", f.key, f.problem);
        if !f.fix.is_empty() {
            println!("    fix: {}", f.fix);
        }
    }
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    println!("{errors} error(s), {} warning(s)", findings.len() - errors);
}
