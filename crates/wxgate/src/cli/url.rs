//! `wxgate url`: build the URLs WeChat wants, byte for byte.

use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use rand::distr::{Alphanumeric, SampleString};
use wxgate_proto::urls::{self, EnvVersion, Scope};

/// Build OAuth2, website-login, QR and mini-program URLs.
///
/// The inputs are checked first. The URL then has WeChat's exact parameter order and
/// encoding.
///
/// Examples:
///   wxgate url oauth --app-id wx1234567890abcdef --redirect-uri https://m.example.com/cb --scope snsapi_base
///   wxgate url scheme --app-id wx1234567890abcdef --path pages/index/index --query 'a=1&b=2'
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct UrlArgs {
    /// Which URL.
    #[command(subcommand)]
    pub kind: UrlKind,
    /// Print the result as JSON.
    #[arg(long, global = true)]
    pub json: bool,
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
        /// The Official Account's AppID.
        #[arg(long)]
        app_id: String,
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
        /// The mini-program's AppID.
        #[arg(long)]
        app_id: String,
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

/// Runs `wxgate url`.
///
/// # Errors
/// Never; invalid inputs are reported and exit 1.
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
            urls::oauth_authorize_url(app_id, redirect_uri, scope, &state(given))
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
            urls::scheme_url(app_id, path, query.as_deref(), env)
        }
        UrlKind::Showqrcode { ticket } => Ok(urls::showqrcode_url(ticket)),
    };
    match result {
        Ok(url) => {
            if args.json {
                println!("{}", serde_json::json!({ "url": url }));
            } else {
                println!("{url}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            if args.json {
                println!("{}", serde_json::json!({ "error": err.to_string() }));
            } else {
                eprintln!("error: {err}");
            }
            Ok(ExitCode::from(1))
        }
    }
}
