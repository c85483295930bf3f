//! `wxgate url`: build the URLs WeChat wants, byte for byte.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use rand::distr::{Alphanumeric, SampleString};
use wxgate_proto::urls::{self, EnvVersion, Scope};

use crate::config::{AccountKind, Config};

/// Build OAuth2, website-login, QR and mini-program URLs.
///
/// The inputs are checked first. The URL then has WeChat's exact parameter order and
/// encoding.
///
/// Examples:
///   wxgate url oauth --app-id wx1234567890abcdef --redirect-uri https://m.example.com/cb --scope snsapi_base
///   wxgate url scheme --app-id wx1234567890abcdef --path pages/index/index --query 'a=1&b=2'
///   wxgate url oauth --config wxgate.toml --account main --redirect-uri https://m.example.com/cb --scope snsapi_base
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct UrlArgs {
    /// Which URL.
    #[command(subcommand)]
    pub kind: UrlKind,
    /// Print the result as JSON.
    #[arg(long, global = true)]
    pub json: bool,
    /// Take the AppID from an account of this config file (oauth, scheme).
    #[arg(long, short, global = true)]
    pub config: Option<PathBuf>,
    /// The account of the config whose AppID to use (default: the first; oauth, scheme).
    #[arg(long, global = true)]
    pub account: Option<String>,
}

/// OAuth scopes for `url oauth`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ScopeArg {
    /// Silent; OpenID only.
    #[value(name = "snsapi_base")]
    Base,
    /// Consent page; user info.
    #[value(name = "snsapi_userinfo")]
    Userinfo,
}

/// Mini-program versions for `url scheme`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum EnvArg {
    /// Published.
    Release,
    /// Trial.
    Trial,
    /// Development.
    Develop,
}

/// The URLs.
#[derive(Debug, Subcommand)]
pub enum UrlKind {
    /// OAuth2 authorization inside WeChat (网页授权).
    ///
    /// Example: wxgate url oauth --app-id wx1234567890abcdef --redirect-uri https://m.example.com/cb --scope snsapi_base
    Oauth {
        /// The Official Account's AppID (or --config F --account NAME).
        #[arg(long)]
        app_id: Option<String>,
        /// Where WeChat sends the user back; its host must be the 网页授权域名.
        #[arg(long)]
        redirect_uri: String,
        /// The scope.
        #[arg(long, value_enum)]
        scope: ScopeArg,
        /// CSRF state (letters and digits, ≤ 128); random when absent.
        #[arg(long)]
        state: Option<String>,
    },
    /// Website QR login (Open Platform website app).
    ///
    /// Example: wxgate url qrconnect --app-id wx0a1b2c3d4e5f6071 --redirect-uri https://www.example.com/login/cb
    Qrconnect {
        /// The website app's AppID.
        #[arg(long)]
        app_id: String,
        /// Where WeChat sends the user back.
        #[arg(long)]
        redirect_uri: String,
        /// CSRF state; random when absent.
        #[arg(long)]
        state: Option<String>,
    },
    /// Plain-text mini-program URL scheme (weixin://dl/business/).
    ///
    /// Example: wxgate url scheme --app-id wx1234567890abcdef --path pages/index/index --query 'a=1&b=2'
    Scheme {
        /// The mini-program's AppID (or --config F --account NAME).
        #[arg(long)]
        app_id: Option<String>,
        /// Page path, without a leading '/' or a query; declared in the mini-program console.
        #[arg(long)]
        path: String,
        /// Query string for the page (encoded once here), ≤ 512 characters.
        #[arg(long)]
        query: Option<String>,
        /// Which version to open.
        #[arg(long, value_enum)]
        env_version: Option<EnvArg>,
    },
    /// The picture of a QR code ticket (showqrcode).
    ///
    /// Example: wxgate url showqrcode --ticket 'gQH47joAAAAAAAAAASxodHRwOi8v…'
    Showqrcode {
        /// The ticket from qrcode/create.
        #[arg(long)]
        ticket: String,
    },
}

/// Why no AppID could be found for `url`.
#[derive(Debug, thiserror::Error)]
pub enum AppIdError {
    /// Neither `--app-id` nor a config.
    #[error("pass --app-id, or --config FILE [--account NAME] to take the account's AppID")]
    Missing,
    /// The config does not load.
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    /// No such account.
    #[error("no account named {0:?} in the config")]
    NoAccount(String),
    /// The config has no accounts.
    #[error("the config has no account")]
    NoAccounts,
    /// A WeCom application has no AppID.
    #[error("account {0:?} is a WeCom application: it has a CorpID, not an AppID; pass --app-id")]
    WeCom(String),
}

/// The AppID given, or the one of the config's account (`--config`, or `./wxgate.toml`
/// with `--account`).
fn app_id_of(args: &UrlArgs, given: Option<&str>) -> Result<String, AppIdError> {
    if let Some(app_id) = given {
        return Ok(app_id.to_owned());
    }
    let default = std::path::Path::new("wxgate.toml");
    let config = match (&args.config, &args.account) {
        (Some(path), _) => Config::load(path)?,
        (None, Some(_)) if default.exists() => Config::load(default)?,
        _ => return Err(AppIdError::Missing),
    };
    let account = match &args.account {
        Some(name) => config
            .accounts
            .iter()
            .find(|a| &a.name == name)
            .ok_or_else(|| AppIdError::NoAccount(name.clone()))?,
        None => config.accounts.first().ok_or(AppIdError::NoAccounts)?,
    };
    if account.kind == AccountKind::WeCom {
        return Err(AppIdError::WeCom(account.name.clone()));
    }
    Ok(account.app_id.clone())
}

/// Runs `wxgate url`.
///
/// # Errors
/// No AppID (`--app-id` nor a config's account); invalid inputs are reported and exit 1.
pub fn run(args: UrlArgs) -> anyhow::Result<ExitCode> {
    let state = |given: &Option<String>| {
        given
            .clone()
            .unwrap_or_else(|| Alphanumeric.sample_string(&mut rand::rng(), 16))
    };
    let result = match &args.kind {
        UrlKind::Oauth {
            app_id,
            redirect_uri,
            scope,
            state: given,
        } => {
            let scope = match scope {
                ScopeArg::Base => Scope::SnsapiBase,
                ScopeArg::Userinfo => Scope::SnsapiUserinfo,
            };
            let app_id = app_id_of(&args, app_id.as_deref())?;
            urls::oauth_authorize_url(&app_id, redirect_uri, scope, &state(given))
        }
        UrlKind::Qrconnect {
            app_id,
            redirect_uri,
            state: given,
        } => urls::qrconnect_url(app_id, redirect_uri, &state(given)),
        UrlKind::Scheme {
            app_id,
            path,
            query,
            env_version,
        } => {
            let env = env_version.map(|e| match e {
                EnvArg::Release => EnvVersion::Release,
                EnvArg::Trial => EnvVersion::Trial,
                EnvArg::Develop => EnvVersion::Develop,
            });
            let app_id = app_id_of(&args, app_id.as_deref())?;
            urls::scheme_url(&app_id, path, query.as_deref(), env)
        }
        UrlKind::Showqrcode { ticket } => Ok(urls::showqrcode_url(ticket)),
    };
    match result {
        Ok(url) => {
            if args.json {
                println!("{:#}", serde_json::json!({ "url": url }));
            } else {
                println!("{url}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            if args.json {
                println!("{:#}", serde_json::json!({ "error": err.to_string() }));
            } else {
                eprintln!("error: {err}");
            }
            Ok(ExitCode::from(1))
        }
    }
}
