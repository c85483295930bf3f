//! Whom `wxgate doctor` talks to: an account of the config (its kind, format, mode and
//! secrets), or a URL with the secrets, kind and format given as flags.

use std::path::Path;

use secrecy::ExposeSecret;
use wxgate_proto::console::Mode;
use wxgate_proto::{EncodingAesKey, Format, MsgCrypt};

use super::DoctorArgs;
use crate::cli::probe::{Target, WeComTarget};
use crate::config::{AccountKind, Config, ConfigError};

/// The target and the kind of account behind it.
pub(super) struct Setup {
    pub(super) target: Target,
    pub(super) kind: AccountKind,
}

/// Flags that do not describe a target.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// `--token` together with a config.
    #[error("--token describes a URL without a config; drop --config and --account, or drop --token to use the account's own secrets")]
    TokenWithConfig,
    /// A flag that the config's account already answers.
    #[error("{0}: the account in the config says it; drop the flag (it is for a URL probed with --token, without a config)")]
    FlagWithConfig(&'static str),
    /// A URL, no `--token` and no config.
    #[error("no secrets for this URL: pass --token (with --aes-key and --app-id when it encrypts), or --config FILE [--account NAME]")]
    NoSecrets,
    /// `--token` without the URL.
    #[error("--token needs the URL to probe: wxgate doctor URL --token T")]
    NoUrl,
    /// The config does not load.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// No such account.
    #[error("no account named {0:?} in the config; `wxgate check` lists the accounts' problems")]
    NoAccount(String),
    /// An EncodingAESKey that does not decode.
    #[error("--aes-key: {0}")]
    Key(#[from] wxgate_proto::Error),
    /// A key without the id that closes every ciphertext.
    #[error("--aes-key needs --app-id (or --corp-id with --kind wecom): the ID is inside every encrypted message")]
    KeyNeedsId,
    /// An encrypted mode without a key.
    #[error("--mode {0} needs --aes-key and --app-id")]
    ModeNeedsKey(&'static str),
    /// `--format` for a kind without 数据格式.
    #[error("--format is a mini-program's or mini-game's 数据格式: add --kind miniprogram or --kind minigame")]
    FormatNotForKind,
    /// `--corp-id` or `--agent-id` without `--kind wecom`.
    #[error("{0} is for a WeCom application: add --kind wecom")]
    WeComFlag(&'static str),
    /// `--app-id` with `--kind wecom`.
    #[error("--app-id: a WeCom application has a CorpID instead; pass --corp-id")]
    AppIdForWeCom,
    /// WeCom without its key or CorpID.
    #[error("--kind wecom needs --aes-key and --corp-id: WeCom always encrypts, and the CorpID closes every ciphertext")]
    WeComNeedsKey,
    /// WeCom in a mode other than safe.
    #[error("--mode {0}: a WeCom application always encrypts; drop --mode")]
    WeComMode(&'static str),
}

/// The target from the flags (with `--token`) or from the config's account.
pub(super) fn resolve(args: &DoctorArgs) -> Result<Setup, TargetError> {
    if args.token.is_some() {
        if args.config.is_some() || args.account.is_some() {
            return Err(TargetError::TokenWithConfig);
        }
        return from_flags(args);
    }
    for (given, flag) in [
        (args.kind.is_some(), "--kind"),
        (args.format.is_some(), "--format"),
        (args.mode.is_some(), "--mode"),
        (args.app_id.is_some(), "--app-id"),
        (args.aes_key.is_some(), "--aes-key"),
        (args.corp_id.is_some(), "--corp-id"),
        (args.agent_id.is_some(), "--agent-id"),
    ] {
        if given {
            return Err(TargetError::FlagWithConfig(flag));
        }
    }
    from_config(args)
}

fn from_config(args: &DoctorArgs) -> Result<Setup, TargetError> {
    let default = Path::new("wxgate.toml");
    let config = match &args.config {
        Some(path) => Config::load(path)?,
        None if default.exists() => Config::load(default)?,
        None if args.url.is_none() => Config::demo()?,
        None => return Err(TargetError::NoSecrets),
    };
    let account = match &args.account {
        Some(name) => config
            .accounts
            .iter()
            .find(|a| &a.name == name)
            .ok_or_else(|| TargetError::NoAccount(name.clone()))?,
        None => config.accounts.first().ok_or(TargetError::NoSecrets)?,
    };
    let url = args.url.clone().unwrap_or_else(|| {
        let host = if config.listen.ip().is_unspecified() {
            std::net::SocketAddr::from(([127, 0, 0, 1], config.listen.port()))
        } else {
            config.listen
        };
        format!("http://{host}/wx/{}", account.name)
    });
    let target = Target {
        url,
        token: account.token.expose_secret().to_owned(),
        mode: account.mode,
        crypt: account
            .aes_key
            .as_ref()
            .map(|key| MsgCrypt::new(key, account.receive_id())),
        format: account.data_format,
        wecom: (account.kind == AccountKind::WeCom).then(|| WeComTarget {
            corp_id: account.receive_id().to_owned(),
            agent_id: account.agent_id,
        }),
    };
    Ok(Setup {
        target,
        kind: account.kind,
    })
}

fn from_flags(args: &DoctorArgs) -> Result<Setup, TargetError> {
    let kind = args.kind.map_or(AccountKind::OfficialAccount, Into::into);
    if args.format.is_some() && !kind.has_data_format() {
        return Err(TargetError::FormatNotForKind);
    }
    let key = args
        .aes_key
        .as_deref()
        .map(EncodingAesKey::parse)
        .transpose()?;
    let wecom = if kind == AccountKind::WeCom {
        if args.app_id.is_some() {
            return Err(TargetError::AppIdForWeCom);
        }
        let (Some(_), Some(corp_id)) = (&key, &args.corp_id) else {
            return Err(TargetError::WeComNeedsKey);
        };
        Some(WeComTarget {
            corp_id: corp_id.clone(),
            agent_id: args.agent_id,
        })
    } else {
        if args.corp_id.is_some() {
            return Err(TargetError::WeComFlag("--corp-id"));
        }
        if args.agent_id.is_some() {
            return Err(TargetError::WeComFlag("--agent-id"));
        }
        None
    };
    let receive_id = wecom
        .as_ref()
        .map(|w| w.corp_id.as_str())
        .or(args.app_id.as_deref());
    let crypt = match (&key, receive_id) {
        (Some(key), Some(id)) => Some(MsgCrypt::new(key, id)),
        (Some(_), None) => return Err(TargetError::KeyNeedsId),
        (None, _) => None,
    };
    let mode = match (args.mode.map(Mode::from), &crypt) {
        (Some(mode), _) => mode,
        (None, Some(_)) => Mode::Safe,
        (None, None) => Mode::Plain,
    };
    if wecom.is_some() && mode != Mode::Safe {
        return Err(TargetError::WeComMode(mode.as_str()));
    }
    if mode != Mode::Plain && crypt.is_none() {
        return Err(TargetError::ModeNeedsKey(mode.as_str()));
    }
    let target = Target {
        url: args.url.clone().ok_or(TargetError::NoUrl)?,
        token: args.token.clone().unwrap_or_default(),
        mode,
        crypt,
        format: args.format.map_or(Format::Xml, Format::from),
        wecom,
    };
    Ok(Setup { target, kind })
}
