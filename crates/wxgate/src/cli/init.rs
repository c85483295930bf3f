//! `wxgate init`: write a new wxgate.toml with a random Token and EncodingAESKey.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use rand::distr::{Alphanumeric, SampleString};
use rand::rand_core::UnwrapErr;
use rand::rngs::SysRng;
use wxgate_proto::console::Mode;

use super::ModeArg;

/// Write wxgate.toml with a random Token and EncodingAESKey.
///
/// The Token (32 letters and digits) and the EncodingAESKey (43 characters) come from the
/// operating system's secure random source. The command prints exactly what to paste into
/// the console's server configuration.
///
/// Never overwrites an existing file unless --force is given.
///
/// Example:
///   wxgate init --app-id wx1234567890abcdef --name shop
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
    /// The account's AppID (开发者ID); a placeholder is written when absent.
    #[arg(long)]
    pub app_id: Option<String>,
    /// Message encryption mode (消息加解密方式).
    #[arg(long, value_enum, default_value_t = ModeArg::Safe)]
    pub mode: ModeArg,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// A random Token: 32 letters and digits from the OS's CSPRNG.
pub fn random_token() -> String {
    Alphanumeric.sample_string(&mut UnwrapErr(SysRng), 32)
}

/// A random EncodingAESKey: 43 letters and digits (any such string decodes to 32 bytes).
pub fn random_aes_key() -> String {
    Alphanumeric.sample_string(&mut UnwrapErr(SysRng), 43)
}

/// Runs `wxgate init`.
///
/// # Errors
/// I/O errors writing the file.
pub fn run(args: InitArgs) -> anyhow::Result<ExitCode> {
    let path = args.dir.join("wxgate.toml");
    if path.exists() && !args.force {
        eprintln!(
            "{} already exists; pass --force to overwrite it (its Token and key would change)",
            path.display()
        );
        return Ok(ExitCode::from(1));
    }
    if !args
        .name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        || args.name.is_empty()
    {
        eprintln!(
            "--name {:?}: use letters, digits, '-' and '_' (it becomes the path /wx/NAME)",
            args.name
        );
        return Ok(ExitCode::from(2));
    }
    let token = random_token();
    let aes_key = random_aes_key();
    let mode: Mode = args.mode.into();
    let text = config_text(&args, &token, &aes_key, mode);
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    // It holds the Token, the EncodingAESKey and the admin token: owner only.
    crate::storage::files::write_private(&path, text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    let mode_label = match mode {
        Mode::Plain => "明文模式 (plain)",
        Mode::Compat => "兼容模式 (compat)",
        Mode::Safe => "安全模式 (safe)",
    };
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "path": path.display().to_string(),
                "url": format!("https://YOUR.DOMAIN/wx/{}", args.name),
                "token": token,
                "encoding_aes_key": aes_key,
                "mode": mode.as_str(),
            })
        );
        return Ok(ExitCode::SUCCESS);
    }
    print_console_steps(&args, &path, (&token, &aes_key), mode_label);
    Ok(ExitCode::SUCCESS)
}

/// The config `init` writes: one account, a welcome and an echo rule.
fn config_text(args: &InitArgs, token: &str, aes_key: &str, mode: Mode) -> String {
    let app_id = args
        .app_id
        .clone()
        .unwrap_or_else(|| "wx0000000000000000".to_owned());
    format!(
        "# Written by `wxgate init`. Every key is explained in wxgate.example.toml.\n\
         listen = \"127.0.0.1:8080\"\n\
         data_dir = \"wxgate-data\"\n\
         \n\
         [[account]]\n\
         name = \"{name}\"\n\
         app_id = \"{app_id}\"{app_id_note}\n\
         app_secret = \"\"\n\
         token = \"{token}\"\n\
         encoding_aes_key = \"{aes_key}\"\n\
         mode = \"{mode}\"\n\
         timestamp_window_s = 300\n\
         dedup = true\n\
         \n\
         [[account.rule]]\n\
         when = {{ msg_type = \"event\", event = \"subscribe\" }}\n\
         reply = {{ text = \"Welcome!\" }}\n\
         \n\
         [[account.rule]]\n\
         when = {{ msg_type = \"text\" }}\n\
         reply = {{ text = \"{{content}}\" }}\n",
        name = args.name,
        app_id_note = if args.app_id.is_none() {
            "   # replace with your AppID (开发 → 基本配置)"
        } else {
            ""
        },
        mode = mode.as_str(),
    )
}

/// What to type into the console, after the file is written.
fn print_console_steps(
    args: &InitArgs,
    path: &std::path::Path,
    (token, aes_key): (&str, &str),
    mode_label: &str,
) {
    println!("Wrote {}.", path.display());
    println!("\nIn the console, open 开发 → 基本配置 → 服务器配置 → 修改配置 and enter:\n");
    println!(
        "  服务器地址(URL)                 https://YOUR.DOMAIN/wx/{}",
        args.name
    );
    println!("  令牌(Token)                     {token}");
    println!("  消息加解密密钥(EncodingAESKey)  {aes_key}");
    println!("  消息加解密方式                  {mode_label}");
    println!("\nThe URL must be reachable by WeChat on port 80 or 443 (see README: reaching a local port).");
    if args.app_id.is_none() {
        println!("Set app_id in {} to your AppID (开发者ID).", path.display());
    }
    println!("Then start wxgate before pressing 提交 (Submit): wxgate serve");
}
