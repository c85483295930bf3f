//! `wxgate doctor`: probe a live callback endpoint the way WeChat does, for the kind of
//! account behind it. `doctor/target` says whom to probe, `doctor/net` runs the stages
//! before HTTP (URL rules, DNS, TCP, TLS), `doctor/http` the requests as WeChat sends
//! them.

mod http;
mod net;
mod target;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use rand::RngExt;
use serde::Serialize;

use super::{FormatArg, KindArg, ModeArg};
use crate::cli::probe::{print_checks, Check, Status};
use http::Probe;
use target::Setup;
pub use target::TargetError;

/// Probe a live callback endpoint the way WeChat does and say why it fails.
///
/// The checklist covers the URL rules, DNS, TCP, TLS, the verification GET, a forged
/// signature, a message and its reply, the latency against 5 s, and a stale timestamp.
/// Each ✗ gives the likely cause and the fix.
///
/// The target is an account of the config (its kind, data format, mode and secrets:
/// a mini-program's JSON pushes, a WeCom application's encrypted verification), or a
/// URL with --token and the secrets as flags (--kind and --format say what it serves).
///
/// Exit status: 0 nothing failed (warnings are printed but allowed; --strict makes them
/// fail), 1 a check failed, 2 usage error. The same rule as `check`.
///
/// Examples:
///   wxgate doctor https://wx.example.com/wx/shop --token MyToken123 --app-id wx1234567890abcdef --aes-key KEY
///   wxgate doctor https://wx.example.com/wx/mini --config wxgate.toml --account mini
///   wxgate doctor https://wx.example.com/wx/corp --token T --kind wecom --corp-id ww3f2e1d0c9b8a7654 --aes-key KEY
///   wxgate doctor --verify-domain https://wx.example.com --config wxgate.toml
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct DoctorArgs {
    /// The callback URL as entered in the console (服务器地址); with a config, the
    /// default is the account's path on the config's listen address.
    pub url: Option<String>,
    /// The Token (令牌), for a URL without a config.
    #[arg(long)]
    pub token: Option<String>,
    /// The AppID, to send and check encrypted messages (with --aes-key).
    #[arg(long = "app-id")]
    pub app_id: Option<String>,
    /// The EncodingAESKey: messages are sent in safe mode and replies must be encrypted.
    #[arg(long = "aes-key")]
    pub aes_key: Option<String>,
    /// The kind of account behind a URL without a config (default official_account).
    #[arg(long, value_enum)]
    pub kind: Option<KindArg>,
    /// The 数据格式 of a mini-program or mini-game behind a URL without a config
    /// (default xml).
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    /// How to send, for a URL without a config (default: safe with --aes-key, else plain).
    #[arg(long, value_enum)]
    pub mode: Option<ModeArg>,
    /// A WeCom application's CorpID, with --kind wecom.
    #[arg(long = "corp-id")]
    pub corp_id: Option<String>,
    /// A WeCom application's AgentId, with --kind wecom.
    #[arg(long = "agent-id")]
    pub agent_id: Option<u64>,
    /// The config file (default ./wxgate.toml) when no --token is given.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// An account of the config (default: the first).
    #[arg(long)]
    pub account: Option<String>,
    /// Extra CA certificate (PEM) to trust, e.g. a test CA.
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// Per-request limit in milliseconds (WeChat waits 5000).
    #[arg(long, default_value_t = 5000)]
    pub timeout_ms: u64,
    /// Print the checklist as JSON.
    #[arg(long)]
    pub json: bool,
    /// Exit 1 on warnings too, not only on failures.
    #[arg(long)]
    pub strict: bool,
    /// Instead of the callback checks: fetch each `[[verify_file]]` of the config from
    /// this domain (e.g. https://wx.example.com) and compare it byte for byte, as the
    /// console does before it accepts the domain.
    #[arg(long = "verify-domain", conflicts_with_all = ["url", "token", "account"])]
    pub verify_domain: Option<String>,
}

#[derive(Debug, Serialize)]
struct DoctorReport {
    url: String,
    kind: &'static str,
    format: &'static str,
    mode: &'static str,
    ok: bool,
    checks: Vec<Check>,
}

/// Runs `wxgate doctor`.
///
/// # Errors
/// Only failures to print; usage errors exit 2.
pub fn run(args: DoctorArgs) -> anyhow::Result<ExitCode> {
    if let Some(domain) = &args.verify_domain {
        return run_verify(&args, domain);
    }
    let setup = match target::resolve(&args) {
        Ok(setup) => setup,
        Err(err) => {
            eprintln!("error: {err}");
            return Ok(ExitCode::from(2));
        }
    };
    let extra_ca = match &args.ca {
        Some(path) => match std::fs::read(path) {
            Ok(pem) => Some(pem),
            Err(err) => {
                eprintln!("error: cannot read --ca {}: {err}", path.display());
                return Ok(ExitCode::from(2));
            }
        },
        None => None,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let checks = runtime.block_on(diagnose(&args, &setup, extra_ca.as_deref()));
    let ok = checks
        .iter()
        .all(|c| c.status != Status::Fail && !(args.strict && c.status == Status::Warn));
    let target = &setup.target;
    let mode = if target.encrypts() {
        target.mode.as_str()
    } else {
        "plain"
    };
    if args.json {
        let report = DoctorReport {
            url: target.url.clone(),
            kind: setup.kind.as_str(),
            format: target.format.as_str(),
            mode,
            ok,
            checks,
        };
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "wxgate doctor {} ({}, {}, {mode} mode)\n",
            target.url,
            setup.kind.as_str(),
            target.format.as_str()
        );
        print_checks(&checks);
        println!(
            "\n{}",
            if ok {
                "No blocking problem found."
            } else if checks.iter().any(|c| c.status == Status::Fail) {
                "WeChat would fail on the ✗ above."
            } else {
                "No ✗, but --strict fails on the warnings (!) above."
            }
        );
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[derive(Debug, Serialize)]
struct VerifyReport<'a> {
    domain: &'a str,
    ok: bool,
    checks: Vec<Check>,
}

/// `doctor --verify-domain`: the config's verification files, fetched from `domain`.
fn run_verify(args: &DoctorArgs, domain: &str) -> anyhow::Result<ExitCode> {
    let files = match verify::files(args.config.as_deref()) {
        Ok(files) => files,
        Err(err) => {
            eprintln!("error: {err}");
            return Ok(ExitCode::from(2));
        }
    };
    let extra_ca = match &args.ca {
        Some(path) => Some(std::fs::read(path)?),
        None => None,
    };
    let client = net::http_client(net::root_store(extra_ca.as_deref()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let timeout = Duration::from_millis(args.timeout_ms);
    let checks = runtime.block_on(verify::check(&client, domain, &files, timeout));
    let ok = checks
        .iter()
        .all(|c| c.status != Status::Fail && !(args.strict && c.status == Status::Warn));
    if args.json {
        let report = VerifyReport { domain, ok, checks };
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("wxgate doctor --verify-domain {domain}\n");
        print_checks(&checks);
        println!(
            "\n{}",
            if ok {
                "The console will find every verification file."
            } else {
                "The console would refuse the domain on the ✗ above."
            }
        );
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Runs every check in order; later network checks are skipped when an earlier one
/// makes them meaningless.
async fn diagnose(args: &DoctorArgs, setup: &Setup, extra_ca: Option<&[u8]>) -> Vec<Check> {
    let mut checks = Vec::new();
    // A stage returns `None` when what follows it would be meaningless.
    let _ = stages(args, setup, extra_ca, &mut checks).await;
    checks
}

async fn stages(
    args: &DoctorArgs,
    setup: &Setup,
    extra_ca: Option<&[u8]>,
    checks: &mut Vec<Check>,
) -> Option<()> {
    let timeout = Duration::from_millis(args.timeout_ms);
    let target = &setup.target;
    // 1.–4. Before HTTP.
    let url = net::url_rules(&target.url, checks)?;
    let addr = net::dns(&url, timeout, checks).await?;
    let stream = net::tcp(addr, &url, timeout, checks).await?;
    let roots = net::root_store(extra_ca);
    net::tls(stream, &url, roots.clone(), timeout, checks).await?;
    let client = match net::http_client(roots) {
        Ok(client) => client,
        Err(err) => {
            checks.push(Check::new("HTTP client", Status::Fail, err.to_string()));
            return None;
        }
    };
    let probe = Probe {
        target,
        kind: setup.kind,
        client: &client,
        timeout,
        now: wxgate_client::clock::now(),
    };
    // 5.–9. HTTP as WeChat.
    if !probe.verification(checks).await {
        checks.push(Check::new(
            "message push",
            Status::Skip,
            "URL verification failed; fix it first",
        ));
        return None;
    }
    let msg_id = rand::rng().random_range(1u64 << 60..u64::MAX);
    probe.messages(msg_id, checks).await;
    probe.stale(msg_id ^ 1, checks).await;
    Some(())
}
