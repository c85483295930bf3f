//! `wxgate emulate`: run the WeChat API emulator.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Args;
use wxgate_emu::{App, Emulator, EmulatorConfig, WeComApp};

/// Run an emulator of the WeChat API for local development and tests.
///
/// It serves tokens (stable and classic), jsapi tickets, OAuth (consent signs in at
/// once), QR codes, URL schemes and links, customer-service, template and menu calls,
/// with WeChat's error codes. Point `api_base` and `open_base` in wxgate.toml at it.
/// With --corp-id, --corp-secret and --agent-id it also serves that WeCom application
/// (gettoken, message/send): point `qyapi_base` at it.
///
/// Examples:
///   wxgate emulate --listen 127.0.0.1:9900 --app-id wx1234567890abcdef --secret 0123456789abcdef0123456789abcdef
///   wxgate emulate --corp-id ww1234567890abcdef --corp-secret S --agent-id 1000002
///   wxgate emulate --listen 127.0.0.1:0 --json
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct EmulateArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9900")]
    pub listen: SocketAddr,
    /// The AppID the emulator knows.
    #[arg(long, default_value = "wx1234567890abcdef")]
    pub app_id: String,
    /// Its AppSecret.
    #[arg(long, default_value = "0123456789abcdef0123456789abcdef")]
    pub secret: String,
    /// The 网页授权域名 checked on OAuth redirects (any host when absent).
    #[arg(long)]
    pub oauth_domain: Option<String>,
    /// Lifetime of tokens and tickets, seconds.
    #[arg(long, default_value_t = 7200)]
    pub token_ttl_s: i64,
    /// A WeCom application the emulator also knows (gettoken, message/send): its
    /// CorpID. Needs --corp-secret and --agent-id.
    #[arg(long, requires_all = ["corp_secret", "agent_id"])]
    pub corp_id: Option<String>,
    /// The WeCom application's Secret.
    #[arg(long, requires = "corp_id")]
    pub corp_secret: Option<String>,
    /// The WeCom application's AgentID.
    #[arg(long, requires = "corp_id")]
    pub agent_id: Option<u64>,
    /// Instead of the text banner, print one JSON line once listening
    /// (`{"event":"listening","url":…,"app_id":…}`).
    #[arg(long)]
    pub json: bool,
}

/// Runs `wxgate emulate` until Ctrl-C.
///
/// # Errors
/// Bind errors.
pub fn run(args: EmulateArgs) -> anyhow::Result<ExitCode> {
    let mut app = App::new(&args.app_id, &args.secret);
    app.oauth_domain = args.oauth_domain.clone();
    let mut config = EmulatorConfig::with_app(app);
    config.token_ttl_s = args.token_ttl_s;
    if let (Some(corp_id), Some(secret), Some(agent_id)) =
        (&args.corp_id, &args.corp_secret, args.agent_id)
    {
        config
            .wecom_apps
            .push(WeComApp::new(corp_id, agent_id, secret));
    }
    let emulator = Emulator::new(config);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let (addr, task) = emulator.spawn(args.listen).await?;
        if args.json {
            println!(
                "{}",
                serde_json::json!({ "event": "listening", "url": format!("http://{addr}"), "app_id": args.app_id, "corp_id": args.corp_id })
            );
        } else {
            print_banner(&args, addr);
        }
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = task => {},
        }
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

fn print_banner(args: &EmulateArgs, addr: SocketAddr) {
    println!("WeChat API emulator on http://{addr} (AppID {}); set api_base = \"http://{addr}\" and open_base = \"http://{addr}\"", args.app_id);
    if let Some(corp_id) = &args.corp_id {
        println!("WeCom application {corp_id} is known too; set qyapi_base = \"http://{addr}\"");
    }
    println!("`wxgate sim` tells it of each message it sends (POST /emu/interaction), which opens that user's 48-hour window for late replies");
}
