//! `wxgate emulate`: run the WeChat API emulator.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Args;
use wxgate_emu::{App, Component, Emulator, EmulatorConfig, WeComApp};

/// Run an emulator of the WeChat API for local development and tests.
///
/// It serves tokens (stable and classic), jsapi tickets, OAuth (consent signs in at
/// once), QR codes, URL schemes and links, customer-service, template and menu calls,
/// with WeChat's error codes. Point `api_base` and `open_base` in wxgate.toml at it.
/// With --corp-id, --corp-secret and --agent-id it also serves that WeCom application
/// (gettoken, message/send): point `qyapi_base` at it. With --component-app-id (and
/// its secret, Token and key) it serves that third-party platform's
/// `/cgi-bin/component/…` routes, and with --notify-url pushes it a
/// component_verify_ticket at once and every --ticket-interval-s.
///
/// Examples:
///   wxgate emulate --listen 127.0.0.1:9900 --app-id wx1234567890abcdef --secret 0123456789abcdef0123456789abcdef
///   wxgate emulate --corp-id ww1234567890abcdef --corp-secret S --agent-id 1000002
///   wxgate emulate --listen 127.0.0.1:0 --json
///   wxgate emulate --component-app-id wx134c8103faa5a59e --component-secret S --component-token T --component-key K --notify-url http://127.0.0.1:8080/open/acme/notify
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
    /// A third-party platform the emulator also knows: its AppID. Needs
    /// --component-secret, --component-token and --component-key.
    #[arg(long, requires_all = ["component_secret", "component_token", "component_key"])]
    pub component_app_id: Option<String>,
    /// The platform's AppSecret.
    #[arg(long, requires = "component_app_id")]
    pub component_secret: Option<String>,
    /// The platform's Token (of its notify URL).
    #[arg(long, requires = "component_app_id")]
    pub component_token: Option<String>,
    /// The platform's EncodingAESKey.
    #[arg(long, requires = "component_app_id")]
    pub component_key: Option<String>,
    /// Hand out a new refresh token at each api_authorizer_token (the old one stops working).
    #[arg(long, requires = "component_app_id")]
    pub rotate_refresh_tokens: bool,
    /// The platform's 授权事件接收URL: tickets are pushed there.
    #[arg(long, requires = "component_app_id")]
    pub notify_url: Option<String>,
    /// Seconds between two ticket pushes (WeChat: 600).
    #[arg(long, default_value_t = 600)]
    pub ticket_interval_s: u64,
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
    if let (Some(app_id), Some(secret), Some(token), Some(key)) = (
        &args.component_app_id,
        &args.component_secret,
        &args.component_token,
        &args.component_key,
    ) {
        let mut component = Component::new(app_id, secret, token, key);
        component.rotate_refresh_tokens = args.rotate_refresh_tokens;
        config = config.with_component(component);
    }
    let emulator = Emulator::new(config);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let (addr, task) = emulator.spawn(args.listen).await?;
        let _pusher = match (&args.component_app_id, &args.notify_url) {
            (Some(app_id), Some(url)) => {
                emulator.set_notify_url(app_id, url);
                let interval = std::time::Duration::from_secs(args.ticket_interval_s.max(1));
                Some(emulator.spawn_ticket_pusher(app_id, interval))
            }
            _ => None,
        };
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
    if let Some(app_id) = &args.component_app_id {
        println!(
            "third-party platform {app_id} is known too; tickets go to {} every {} s",
            args.notify_url.as_deref().unwrap_or("(no --notify-url)"),
            args.ticket_interval_s
        );
    }
    println!("`wxgate sim` tells it of each message it sends (POST /emu/interaction), which opens that user's 48-hour window for late replies");
}
