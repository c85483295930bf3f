//! `wxgate init`: write a new wxgate.toml for one account of any kind, with a random
//! Token and EncodingAESKey, and print what to enter in that kind's console.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use rand::distr::{Alphanumeric, SampleString};
use rand::rand_core::UnwrapErr;
use rand::rngs::SysRng;
use wxgate_proto::console::{self, Mode, Severity};
use wxgate_proto::Format;

use super::{FormatArg, KindArg, ModeArg};
use crate::config::AccountKind;

/// Write wxgate.toml with a random Token and EncodingAESKey.
///
/// The Token (32 letters and digits) and the EncodingAESKey (43 characters) come from the
/// operating system's secure random source. The command prints exactly what to enter in
/// the console of the account's kind: an Official Account's 服务器配置, a mini-program's
/// or mini-game's 消息推送 (with its 数据格式), or a WeCom application's 接收消息.
///
/// Never overwrites an existing file unless --force is given.
///
/// Examples:
///   wxgate init --app-id wx1234567890abcdef --name shop
///   wxgate init --kind miniprogram --format json --app-id wx1234567890abcdef --name mini
///   wxgate init --kind wecom --corp-id ww3f2e1d0c9b8a7654 --agent-id 1000002 --name corp
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct InitArgs {
    /// Directory to write wxgate.toml into.
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    /// Overwrite an existing wxgate.toml.
    #[arg(long)]
    pub force: bool,
    /// Account name (the callback path /wx/NAME).
    #[arg(long, default_value = "main")]
    pub name: String,
    /// What kind of account pushes to it.
    #[arg(long, value_enum, default_value_t = KindArg::OfficialAccount)]
    pub kind: KindArg,
    /// 数据格式 of a mini-program or mini-game (default xml).
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    /// The AppID (开发者ID) of an Official Account, mini-program or mini-game; a
    /// placeholder is written when absent.
    #[arg(long)]
    pub app_id: Option<String>,
    /// A WeCom application's CorpID (企业ID); a placeholder is written when absent.
    #[arg(long)]
    pub corp_id: Option<String>,
    /// A WeCom application's AgentId.
    #[arg(long)]
    pub agent_id: Option<u64>,
    /// Message encryption mode (消息加解密方式; default safe, and a WeCom application
    /// is always safe).
    #[arg(long, value_enum)]
    pub mode: Option<ModeArg>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// A combination of flags that `init` cannot write.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// The name is not a path segment.
    #[error("--name {0:?}: use letters, digits, '-' and '_' (it becomes the path /wx/NAME)")]
    Name(String),
    /// `--format` for a kind without 数据格式.
    #[error("--format applies to mini-programs and mini-games only: {0} always pushes XML; drop --format, or pass --kind miniprogram or --kind minigame")]
    FormatNotForKind(&'static str),
    /// A WeCom application in a mode other than safe.
    #[error(
        "--mode {0}: a WeCom application always encrypts its callbacks; drop --mode (it is safe)"
    )]
    WeComMode(&'static str),
    /// `--app-id` for WeCom.
    #[error("--app-id: a WeCom application has a CorpID instead; pass --corp-id (我的企业 → 企业信息 → 企业ID)")]
    AppIdForWeCom,
    /// `--corp-id` or `--agent-id` for another kind.
    #[error("{0} belongs to WeCom applications; pass --kind wecom, or --app-id for {1}")]
    WeComFlag(&'static str, &'static str),
    /// An AppID or CorpID the console would refuse.
    #[error("{flag}: {problem}; {fix}")]
    Id {
        /// The flag.
        flag: &'static str,
        /// What is wrong.
        problem: String,
        /// How to fix it.
        fix: String,
    },
}

/// What `init` writes, from the flags.
#[derive(Debug, Clone, Copy)]
struct Plan {
    kind: AccountKind,
    format: Format,
    mode: Mode,
}

/// A placeholder AppID, to be replaced (`check` warns about it).
const PLACEHOLDER_APP_ID: &str = "wx0000000000000000";
/// A placeholder CorpID, to be replaced (`check` warns about it).
const PLACEHOLDER_CORP_ID: &str = "ww0000000000000000";

/// A random Token: 32 letters and digits from the OS's CSPRNG.
pub fn random_token() -> String {
    Alphanumeric.sample_string(&mut UnwrapErr(SysRng), 32)
}

/// A random EncodingAESKey: 43 letters and digits (any such string decodes to 32 bytes).
pub fn random_aes_key() -> String {
    Alphanumeric.sample_string(&mut UnwrapErr(SysRng), 43)
}

/// Checks the flags against each other and against the console's rules.
fn plan(args: &InitArgs) -> Result<Plan, InitError> {
    if args.name.is_empty()
        || !args
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(InitError::Name(args.name.clone()));
    }
    let kind = AccountKind::from(args.kind);
    if args.format.is_some() && !kind.has_data_format() {
        return Err(InitError::FormatNotForKind(kind_label(kind)));
    }
    let mode = args.mode.map_or(Mode::Safe, Mode::from);
    if kind == AccountKind::WeCom {
        if mode != Mode::Safe {
            return Err(InitError::WeComMode(mode.as_str()));
        }
        if args.app_id.is_some() {
            return Err(InitError::AppIdForWeCom);
        }
        if let Some(corp_id) = &args.corp_id {
            refuse_id("--corp-id", console::check_corp_id(corp_id))?;
        }
    } else {
        let other = kind_label(kind);
        if args.corp_id.is_some() {
            return Err(InitError::WeComFlag("--corp-id", other));
        }
        if args.agent_id.is_some() {
            return Err(InitError::WeComFlag("--agent-id", other));
        }
        if let Some(app_id) = &args.app_id {
            refuse_id("--app-id", console::check_app_id(app_id))?;
        }
    }
    let format = args.format.map_or(Format::Xml, Format::from);
    Ok(Plan { kind, format, mode })
}

fn refuse_id(flag: &'static str, findings: Vec<console::Finding>) -> Result<(), InitError> {
    match findings.into_iter().find(|f| f.severity == Severity::Error) {
        Some(f) => Err(InitError::Id {
            flag,
            problem: f.problem,
            fix: f.fix,
        }),
        None => Ok(()),
    }
}

fn kind_label(kind: AccountKind) -> &'static str {
    match kind {
        AccountKind::OfficialAccount => "an Official Account",
        AccountKind::MiniProgram => "a mini-program",
        AccountKind::MiniGame => "a mini-game",
        AccountKind::WeCom => "a WeCom application",
    }
}

/// Runs `wxgate init`.
///
/// # Errors
/// I/O errors writing the file.
pub fn run(args: InitArgs) -> anyhow::Result<ExitCode> {
    let path = args.dir.join("wxgate.toml");
    let plan = match plan(&args) {
        Ok(plan) => plan,
        Err(err) => {
            eprintln!("error: {err}");
            return Ok(ExitCode::from(2));
        }
    };
    if path.exists() && !args.force {
        eprintln!(
            "{} already exists; pass --force to overwrite it (its Token and key would change)",
            path.display()
        );
        return Ok(ExitCode::from(1));
    }
    let token = random_token();
    let aes_key = random_aes_key();
    let text = config_text(&args, plan, &token, &aes_key);
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    // It holds the Token, the EncodingAESKey and the admin token: owner only.
    crate::storage::files::write_private(&path, text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    if args.json {
        println!(
            "{:#}",
            serde_json::json!({
                "path": path.display().to_string(),
                "kind": plan.kind.as_str(),
                "data_format": plan.format.as_str(),
                "url": format!("https://YOUR.DOMAIN/wx/{}", args.name),
                "token": token,
                "encoding_aes_key": aes_key,
                "mode": plan.mode.as_str(),
                "console": console_path(plan.kind),
            })
        );
        return Ok(ExitCode::SUCCESS);
    }
    print_console_steps(&args, plan, &path, (&token, &aes_key));
    Ok(ExitCode::SUCCESS)
}

/// The config `init` writes: one account and the rules that suit its kind.
fn config_text(args: &InitArgs, plan: Plan, token: &str, aes_key: &str) -> String {
    let mut text = format!(
        "# Written by `wxgate init`. Every key is explained in wxgate.example.toml.\n\
         listen = \"127.0.0.1:8080\"\n\
         data_dir = \"wxgate-data\"\n\
         \n\
         [[account]]\n\
         name = \"{name}\"\n\
         kind = \"{kind}\"\n",
        name = args.name,
        kind = plan.kind.as_str(),
    );
    text.push_str(&identity_lines(args, plan));
    text.push_str(&format!(
        "token = \"{token}\"\n\
         encoding_aes_key = \"{aes_key}\"\n\
         mode = \"{mode}\"{mode_note}\n\
         timestamp_window_s = 300\n\
         dedup = true\n\n",
        mode = plan.mode.as_str(),
        mode_note = if plan.kind == AccountKind::WeCom {
            "   # a WeCom application always encrypts"
        } else {
            ""
        },
    ));
    text.push_str(if plan.kind.shows_passive_replies() {
        "[[account.rule]]\n\
         when = { msg_type = \"event\", event = \"subscribe\" }\n\
         reply = { text = \"Welcome!\" }\n\
         \n\
         [[account.rule]]\n\
         when = { msg_type = \"text\" }\n\
         reply = { text = \"{content}\" }\n"
    } else {
        "# A mini-program shows no passive reply but transfer_customer_service: these rules\n\
         # hand the user to the customer-service tools.\n\
         [[account.rule]]\n\
         when = { msg_type = \"event\", event = \"user_enter_tempsession\" }\n\
         reply = { transfer_customer_service = {} }\n\
         \n\
         [[account.rule]]\n\
         when = { msg_type = \"text\" }\n\
         reply = { transfer_customer_service = {} }\n\
         \n\
         # A text reply is answered `success` and sent through the customer-service message\n\
         # API, which needs app_secret:\n\
         # [[account.rule]]\n\
         # when = { msg_type = \"text\" }\n\
         # reply = { text = \"We got your message: {content}\" }\n"
    });
    text
}

/// The lines that say who the account is: AppID and AppSecret (and the data format),
/// or CorpID, AgentID and the application's Secret.
fn identity_lines(args: &InitArgs, plan: Plan) -> String {
    if plan.kind == AccountKind::WeCom {
        let corp_id = match &args.corp_id {
            Some(corp_id) => format!("corp_id = \"{corp_id}\"\n"),
            None => format!("corp_id = \"{PLACEHOLDER_CORP_ID}\"   # REPLACE with your CorpID (我的企业 → 企业信息 → 企业ID)\n"),
        };
        let agent_id = match args.agent_id {
            Some(agent_id) => format!("agent_id = {agent_id}\n"),
            None => "# agent_id = 1000002   # REPLACE and uncomment: the application's AgentId (应用管理 → 应用)\n".to_owned(),
        };
        return format!(
            "{corp_id}{agent_id}corp_secret = \"\"   # the application's Secret (应用管理 → 应用 → Secret): for its access token\n"
        );
    }
    let mut lines = String::new();
    if plan.kind.has_data_format() {
        lines.push_str(&format!(
            "data_format = \"{}\"   # 数据格式, as chosen in the console\n",
            plan.format.as_str()
        ));
    }
    let where_app_id = if plan.kind == AccountKind::OfficialAccount {
        "设置与开发 → 基本配置"
    } else {
        "开发 → 开发管理 → 开发设置"
    };
    match &args.app_id {
        Some(app_id) => lines.push_str(&format!("app_id = \"{app_id}\"\n")),
        None => lines.push_str(&format!(
            "app_id = \"{PLACEHOLDER_APP_ID}\"   # REPLACE with your AppID ({where_app_id})\n"
        )),
    }
    lines.push_str(if plan.kind.shows_passive_replies() {
        "app_secret = \"\"   # AppSecret (设置与开发 → 基本配置): for the access token, the API and late replies\n"
    } else {
        "app_secret = \"\"   # needed for replies other than transfer_customer_service\n"
    });
    lines
}

/// Where the server configuration is, in the console of `kind`.
fn console_path(kind: AccountKind) -> &'static str {
    match kind {
        AccountKind::OfficialAccount => "设置与开发 → 基本配置 → 服务器配置 → 修改配置",
        AccountKind::MiniProgram | AccountKind::MiniGame => "开发 → 开发管理 → 消息推送",
        AccountKind::WeCom => "应用管理 → 应用 → (your application) → 接收消息 → 设置API接收",
    }
}

fn mode_label(mode: Mode) -> &'static str {
    match mode {
        Mode::Plain => "明文模式 (plain)",
        Mode::Compat => "兼容模式 (compat)",
        Mode::Safe => "安全模式 (safe)",
    }
}

/// What to type into the console, after the file is written.
fn print_console_steps(args: &InitArgs, plan: Plan, path: &Path, (token, aes_key): (&str, &str)) {
    let url = format!("https://YOUR.DOMAIN/wx/{}", args.name);
    println!("Wrote {} ({}).", path.display(), plan.kind.as_str());
    println!(
        "\nIn the console, open {} and enter:\n",
        console_path(plan.kind)
    );
    match plan.kind {
        AccountKind::OfficialAccount => {
            println!("  服务器地址(URL)                 {url}");
            println!("  令牌(Token)                     {token}");
            println!("  消息加解密密钥(EncodingAESKey)  {aes_key}");
            println!(
                "  消息加解密方式                  {}",
                mode_label(plan.mode)
            );
        }
        AccountKind::MiniProgram | AccountKind::MiniGame => {
            println!("  URL(服务器地址)                 {url}");
            println!("  Token(令牌)                     {token}");
            println!("  EncodingAESKey(消息加密密钥)    {aes_key}");
            println!(
                "  消息加密方式                    {}",
                mode_label(plan.mode)
            );
            println!(
                "  数据格式                        {}",
                plan.format.as_str().to_ascii_uppercase()
            );
        }
        AccountKind::WeCom => {
            println!("  URL                             {url}");
            println!("  Token                           {token}");
            println!("  EncodingAESKey                  {aes_key}");
        }
    }
    println!("\nThe URL must be reachable by WeChat on port 80 or 443 (see README: reaching a local port).");
    print_what_to_fill(args, plan, path);
    let submit = if plan.kind == AccountKind::WeCom {
        "保存 (Save)"
    } else {
        "提交 (Submit)"
    };
    println!("Then start wxgate before pressing {submit}: wxgate serve");
    println!("Check the file with `wxgate check`, and the running server with `wxgate doctor`.");
}

/// The keys of the file that still need the user's values.
fn print_what_to_fill(args: &InitArgs, plan: Plan, path: &Path) {
    let file = path.display();
    match plan.kind {
        AccountKind::WeCom => {
            if args.corp_id.is_none() {
                println!(
                    "Replace corp_id in {file} with your CorpID (我的企业 → 企业信息 → 企业ID)."
                );
            }
            if args.agent_id.is_none() {
                println!("Set agent_id in {file} to the application's AgentId (应用管理 → 应用).");
            }
            println!("Set corp_secret in {file} to the application's Secret (应用管理 → 应用 → Secret) for its access token.");
        }
        AccountKind::OfficialAccount => {
            if args.app_id.is_none() {
                println!(
                    "Replace app_id in {file} with your AppID (开发者ID, 设置与开发 → 基本配置)."
                );
            }
            println!("Set app_secret in {file} (AppSecret, same page) for the access token, the API and replies after 5 s; add this server's IP to the IP whitelist there.");
        }
        AccountKind::MiniProgram | AccountKind::MiniGame => {
            if args.app_id.is_none() {
                println!("Replace app_id in {file} with your AppID (开发 → 开发管理 → 开发设置).");
            }
            println!("Set app_secret in {file} (AppSecret, same page) for the access token and the customer-service replies.");
        }
    }
}
