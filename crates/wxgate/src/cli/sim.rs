//! `wxgate sim`: send what WeChat would send, judge the reply as WeChat would.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use rand::RngExt;
use serde::Serialize;
use wxgate_proto::console::Mode;
use wxgate_proto::push::build;
use wxgate_proto::{EncodingAesKey, Format, Message, MsgCrypt};

use super::{FormatArg, ModeArg};
use crate::cli::probe::{self, judge_echo, judge_reply, print_checks, Check, Target};
use crate::cli::serve::load_config;
use crate::config::AccountKind;

/// Send a message or event exactly as WeChat would, and judge the reply.
///
/// The request is signed, encrypted in compat and safe mode, and carries a fresh
/// timestamp and nonce. The reply is verified, decrypted, printed readably, and timed
/// against the 5-second limit. It works against any server, not only wxgate.
///
/// Exit status: 0 the reply is valid and in time, 1 otherwise, 2 usage error.
///
/// Examples:
///   wxgate sim text "hello"                                  (the demo, or ./wxgate.toml's first account)
///   wxgate sim --account shop event subscribe
///   wxgate sim --account mini --format json event user_enter_tempsession
///   wxgate sim --url https://wx.example.com/wx --token T --aes-key K --app-id A event click MENU_KEY
///   wxgate sim --url https://wx.example.com/wx/shop --config wxgate.toml --account shop verify
///   wxgate sim --account acme release-test --code queryauthcode@@@…   (a [[component]])
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct SimArgs {
    /// What to send.
    #[command(subcommand)]
    pub message: SimMessage,
    /// The callback URL of any server: with --token for its secrets, or with --config
    /// and --account to send there with that account's secrets.
    #[arg(long, global = true)]
    pub url: Option<String>,
    /// The Token, with --url.
    #[arg(long, global = true)]
    pub token: Option<String>,
    /// The EncodingAESKey, with --url: pushes are encrypted (safe mode by default).
    #[arg(long = "aes-key", global = true)]
    pub aes_key: Option<String>,
    /// The AppID, with --aes-key.
    #[arg(long = "app-id", global = true)]
    pub app_id: Option<String>,
    /// How to send, with --url (default: safe with --aes-key, else plain).
    #[arg(long, value_enum, global = true)]
    pub mode: Option<ModeArg>,
    /// Send XML or JSON (a mini-program's 数据格式; default: the account's
    /// data_format, or xml with --url).
    #[arg(long, value_enum, global = true)]
    pub format: Option<FormatArg>,
    /// An account of the config file (default: the first).
    #[arg(long, global = true)]
    pub account: Option<String>,
    /// The config file (default ./wxgate.toml, else the embedded demo).
    #[arg(long, short, global = true)]
    pub config: Option<PathBuf>,
    /// The sender's OpenID.
    #[arg(long, global = true, default_value = "oSimulatedUser0000000000000")]
    pub openid: String,
    /// The account's original id (ToUserName).
    #[arg(long, global = true, default_value = "gh_simulated")]
    pub to: String,
    /// Give up after this many milliseconds (WeChat waits 5000).
    #[arg(long, global = true, default_value_t = 5000)]
    pub timeout_ms: u64,
    /// Print the result as JSON.
    #[arg(long, global = true)]
    pub json: bool,
}

/// What `sim` sends.
#[derive(Debug, Clone, Subcommand)]
pub enum SimMessage {
    /// A text message.
    ///
    /// Example: wxgate sim text "hello"
    Text {
        /// The text.
        content: String,
    },
    /// An image message.
    ///
    /// Example: wxgate sim image MEDIA_ID_123
    Image {
        /// The media id.
        media_id: String,
    },
    /// A location message.
    ///
    /// Example: wxgate sim location 22.5431 114.0579
    Location {
        /// Latitude.
        #[arg(allow_hyphen_values = true)]
        latitude: String,
        /// Longitude.
        #[arg(allow_hyphen_values = true)]
        longitude: String,
    },
    /// An event: subscribe, unsubscribe, click KEY, view URL, scan SCENE, or any other name.
    ///
    /// Example: wxgate sim event click MENU_KEY
    Event {
        /// The event: subscribe, unsubscribe, click, view, scan, location, or a raw Event value.
        name: String,
        /// EventKey (menu key, URL, scene; for subscribe, a QR scene becomes qrscene_SCENE).
        key: Option<String>,
    },
    /// The URL-verification GET (echostr).
    ///
    /// Example: wxgate sim --account shop verify
    Verify,
    /// The full-network release test (全网发布) of a third-party platform: its two
    /// cases, sent as WeChat's test account sends them to the 消息与事件接收URL.
    ///
    /// Example: wxgate sim --account acme release-test --code queryauthcode@@@…
    ReleaseTest {
        /// The test account's AppID (one of WeChat's ten).
        #[arg(long, default_value = "wx570bc396a51b8ff8")]
        tester: String,
        /// The authorization code of the second case (QUERY_AUTH_CODE:$code).
        #[arg(long, default_value = "queryauthcode@@@wxgate-sim")]
        code: String,
    },
}

#[derive(Debug, Serialize)]
struct SimReport {
    url: String,
    mode: &'static str,
    format: &'static str,
    sent: String,
    status: Option<u16>,
    elapsed_ms: u128,
    reply: Option<String>,
    checks: Vec<Check>,
    ok: bool,
}

/// Builds the target from the flags or the config, and the emulator the account's API
/// calls go to, when `api_base` is on this machine (see [`open_window`]).
fn target(args: &SimArgs) -> anyhow::Result<(Target, Option<String>)> {
    let from_account = args.token.is_none() && (args.config.is_some() || args.account.is_some());
    if let Some(url) = args.url.as_ref().filter(|_| !from_account) {
        let token = args.token.clone().ok_or_else(|| {
            anyhow::anyhow!(
                "--url needs --token (with --aes-key and --app-id when it encrypts), or --config F --account NAME for an account's secrets"
            )
        })?;
        let crypt = match (&args.aes_key, &args.app_id) {
            (Some(key), Some(app_id)) => Some(MsgCrypt::new(&EncodingAesKey::parse(key)?, app_id)),
            (Some(_), None) => anyhow::bail!(
                "--aes-key needs --app-id (the AppID is inside every encrypted message)"
            ),
            _ => None,
        };
        let mode = match (args.mode, &crypt) {
            (Some(mode), _) => mode.into(),
            (None, Some(_)) => Mode::Safe,
            (None, None) => Mode::Plain,
        };
        if mode != Mode::Plain && crypt.is_none() {
            anyhow::bail!("mode {} needs --aes-key and --app-id", mode.as_str());
        }
        let target = Target {
            url: url.clone(),
            token,
            mode,
            crypt,
            format: args.format.map(Format::from).unwrap_or_default(),
            wecom: None,
        };
        return Ok((target, None));
    }
    let (config, _) = load_config(args.config.as_deref())?;
    let account = match &args.account {
        Some(name) => config
            .accounts
            .iter()
            .find(|a| &a.name == name)
            .ok_or_else(|| anyhow::anyhow!("no account named {name:?} in the config"))?,
        None => &config.accounts[0],
    };
    let host = super::local_server(&config);
    let emulator = (account.kind != AccountKind::WeCom && on_this_machine(&config.api_base))
        .then(|| config.api_base.clone());
    let url = (args.url.clone()).unwrap_or_else(|| format!("http://{host}/wx/{}", account.name));
    let mut target = probe::account_target(account, url);
    target.mode = args.mode.map(Mode::from).unwrap_or(account.mode);
    target.format = args.format.map(Format::from).unwrap_or(account.data_format);
    Ok((target, emulator))
}

/// Whether `api_base` is on this machine: only then may it be an emulator that sim
/// tells about the simulated user (never WeChat itself).
fn on_this_machine(api_base: &str) -> bool {
    url::Url::parse(api_base).is_ok_and(|url| match url.host() {
        Some(url::Host::Domain(name)) => name == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    })
}

/// Tells the emulator at `api_base` that `openid` wrote to the account now, as WeChat
/// learns of every message a user sends: their 48-hour customer-service window opens,
/// so a late reply to this push can be sent. Anything but an emulator's `ok` (another
/// server, no answer within a second) is ignored.
async fn open_window(client: &reqwest::Client, api_base: &str, openid: &str) -> bool {
    let call = client
        .post(format!(
            "{}/emu/interaction",
            api_base.trim_end_matches('/')
        ))
        .json(&serde_json::json!({ "openid": openid }))
        .timeout(Duration::from_secs(1))
        .send();
    let Ok(response) = call.await else {
        return false;
    };
    let answer: serde_json::Value = response.json().await.unwrap_or_default();
    answer["errcode"] == 0
}

fn message_xml(message: &SimMessage, to: &str, from: &str, now: i64) -> String {
    let msg_id = rand::rng().random_range(1u64 << 60..u64::MAX);
    match message {
        SimMessage::Text { content } => build::text(to, from, now, content, msg_id),
        SimMessage::Image { media_id } => build::image(to, from, now, media_id, msg_id),
        SimMessage::Location {
            latitude,
            longitude,
        } => build::location(to, from, now, latitude, longitude, msg_id),
        SimMessage::Event { name, key } => {
            let (event, key) = match name.to_ascii_lowercase().as_str() {
                "subscribe" => (
                    "subscribe",
                    key.as_ref().map(|k| {
                        if k.starts_with("qrscene_") {
                            k.clone()
                        } else {
                            format!("qrscene_{k}")
                        }
                    }),
                ),
                "unsubscribe" => ("unsubscribe", None),
                "click" => ("CLICK", key.clone()),
                "view" => ("VIEW", key.clone()),
                "scan" => ("SCAN", key.clone()),
                "location" => ("LOCATION", None),
                _ => (name.as_str(), key.clone()),
            };
            build::event(to, from, now, event, key.as_deref())
        }
        SimMessage::Verify | SimMessage::ReleaseTest { .. } => String::new(),
    }
}

/// Runs `wxgate sim`.
///
/// # Errors
/// Bad flags or config (exit 1 via main).
pub fn run(args: SimArgs) -> anyhow::Result<ExitCode> {
    if let SimMessage::ReleaseTest { tester, code } = &args.message {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let report = match runtime.block_on(super::release_test::run(&args, tester, code)) {
            Ok(report) => report,
            Err(err) => {
                eprintln!("error: {err:#}");
                return Ok(ExitCode::from(2));
            }
        };
        let ok = report.print(args.json)?;
        return Ok(if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }
    let (target, emulator) = match target(&args) {
        Ok(target) => target,
        Err(err) => {
            eprintln!("error: {err:#}");
            return Ok(ExitCode::from(2));
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(simulate(&args, &target, emulator.as_deref()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "→ {} {} ({} mode{})",
            if matches!(args.message, SimMessage::Verify) {
                "GET"
            } else {
                "POST"
            },
            report.url,
            report.mode,
            if report.format == "json" {
                ", JSON"
            } else {
                ""
            }
        );
        println!("  sent: {}", report.sent);
        match report.status {
            Some(status) => println!("← HTTP {status} in {} ms", report.elapsed_ms),
            None => println!("← no answer after {} ms", report.elapsed_ms),
        }
        if let Some(reply) = &report.reply {
            println!("  reply: {reply}");
        }
        print_checks(&report.checks);
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

async fn simulate(
    args: &SimArgs,
    target: &Target,
    emulator: Option<&str>,
) -> anyhow::Result<SimReport> {
    let client = wxgate_client::http_client_builder().build()?;
    let timeout = Duration::from_millis(args.timeout_ms);
    let now = wxgate_client::clock::now();
    if let SimMessage::Verify = args.message {
        let echostr = rand::rng()
            .random_range(10u64.pow(17)..10u64.pow(18))
            .to_string();
        let query = target.verification_query(&target.token, now, &echostr);
        let exchange = target.send(&client, &query, None, timeout).await;
        let check = judge_echo(&exchange, &echostr);
        return Ok(SimReport {
            url: target.url.clone(),
            mode: target.mode.as_str(),
            sent: format!("echostr={echostr}"),
            status: exchange.status,
            elapsed_ms: exchange.elapsed.as_millis(),
            reply: Some(format!("{:?}", exchange.body)),
            format: target.format.as_str(),
            ok: check.status != probe::Status::Fail,
            checks: vec![check],
        });
    }
    // A WeCom push goes to the corp.
    let to = probe::push_to(target, &args.to);
    let xml = message_xml(&args.message, to, &args.openid, now);
    let sent = Message::parse(&xml)?;
    let window = match emulator {
        Some(api_base) => open_window(&client, api_base, &args.openid).await,
        None => false,
    };
    let request = target.push(&xml, to, &args.openid, now);
    let encrypted = target.encrypts();
    let exchange = target
        .send(&client, &request.query, Some(request.body), timeout)
        .await;
    let mut verdict = judge_reply(target, &sent, encrypted, &exchange, now);
    if window {
        verdict.checks.push(Check::new(
            "emulator",
            probe::Status::Pass,
            format!(
                "{} may get late replies for 48 h: the emulator at api_base heard of this message",
                args.openid
            ),
        ));
    }
    let reply = match (&verdict.reply, verdict.no_reply) {
        (Some(reply), _) => Some(probe::describe(&reply.reply)),
        (None, true) => Some("(none: success)".to_owned()),
        (None, false) => None,
    };
    Ok(SimReport {
        url: target.url.clone(),
        mode: if encrypted {
            target.mode.as_str()
        } else {
            "plain"
        },
        sent: describe_sent(&sent),
        status: exchange.status,
        elapsed_ms: exchange.elapsed.as_millis(),
        reply,
        format: target.format.as_str(),
        ok: verdict
            .checks
            .iter()
            .all(|c| c.status != probe::Status::Fail),
        checks: verdict.checks,
    })
}

fn describe_sent(message: &Message) -> String {
    match (message.content(), message.event()) {
        (Some(content), _) => format!("text {content:?} from {}", message.from_user_name),
        (_, Some(event)) => format!(
            "event {event}{} from {}",
            message
                .event_key()
                .map(|k| format!(" {k:?}"))
                .unwrap_or_default(),
            message.from_user_name
        ),
        _ => format!("{} from {}", message.msg_type, message.from_user_name),
    }
}
