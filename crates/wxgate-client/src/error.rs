//! The client's one error type.

/// Everything an API call or a credential refresh can end with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// WeChat answered with a non-zero `errcode`. The message includes a hint for the
    /// common codes; `errmsg` carries WeChat's `rid`, which the console can look up.
    #[error("WeChat error {errcode}: {errmsg}{}", hint.as_ref().map(|h| format!(" — {h}")).unwrap_or_default())]
    Api {
        /// WeChat's error code.
        errcode: i64,
        /// WeChat's message (with its rid).
        errmsg: String,
        /// What usually causes it and what to do.
        hint: Option<String>,
    },
    /// The request did not complete (connection, TLS, timeout).
    #[error("request to {path} failed: {reason}; check the network path to api_base")]
    Http {
        /// The API path.
        path: String,
        /// What failed.
        reason: String,
    },
    /// The answer was not the JSON this call expects.
    #[error("unexpected answer from {path}: {reason}")]
    Decode {
        /// The API path.
        path: String,
        /// What was wrong.
        reason: String,
    },
    /// The credential store failed (the fetched credential is still used).
    #[error("credential store: {0}")]
    Store(crate::credential::StoreError),
    /// A refresh failed recently and the next attempt waits (exponential backoff).
    #[error("{what} for account {account} is unavailable: the last refresh failed ({last}); next attempt in {retry_in_s}s")]
    Backoff {
        /// Account name.
        account: String,
        /// `access_token` or `jsapi_ticket`.
        what: &'static str,
        /// The last failure.
        last: String,
        /// Seconds until the next attempt.
        retry_in_s: i64,
    },
    /// The shared store's refresh lease cannot be taken, and a refresh without it would
    /// invalidate the token the other instances use (classic endpoint).
    #[error("access_token for account {account} cannot be refreshed: the shared credential store ({store}) is unreachable ({reason}), and with token_endpoint = \"classic\" a refresh here would invalidate the token the other instances use; bring {store} back, or set token_endpoint = \"stable\", which refreshes safely without the lease")]
    SharedStoreUnavailable {
        /// Account name.
        account: String,
        /// The store's name.
        store: &'static str,
        /// Why the lease could not be taken.
        reason: crate::credential::StoreError,
    },
    /// No such account in the credential center.
    #[error("unknown account {0:?}")]
    UnknownAccount(String),
    /// The account is a WeCom application, which has no such credential here.
    #[error("account {account} is a WeCom application: wxgate does not manage its {what} (WeCom's JS-SDK ticket comes from /cgi-bin/get_jsapi_ticket on qyapi_base, with the access_token this center hands out); ask for access_token instead")]
    NotForWeCom {
        /// Account name.
        account: String,
        /// The credential asked for.
        what: &'static str,
    },
    /// The account is a third-party platform, which has no such credential.
    #[error("account {account} is a third-party platform: it has a component_access_token, not a {what}; ask for access_token, or for an authorizer's credentials")]
    NotForComponent {
        /// Account name.
        account: String,
        /// The credential asked for.
        what: &'static str,
    },
    /// A third-party platform has no valid `component_verify_ticket` yet.
    #[error("third-party platform {account} has no valid component_verify_ticket{}: WeChat pushes one every 10 minutes to the platform's 授权事件接收URL (wxgate's /open/{{name}}/notify); check that URL in 开发资料 → 开发配置, and that the Token and EncodingAESKey are the console's", if *expired { " (the latest one expired)" } else { "" })]
    NoVerifyTicket {
        /// Account name.
        account: String,
        /// Whether one was stored but is past its 12 hours.
        expired: bool,
    },
    /// Another instance holds an authorizer's refresh lease past the wait: refreshing
    /// here too could present a refresh token that the other refresh retires.
    #[error("the authorizer {account}'s token is being refreshed by another instance, which has held the lease for over 5 s; retry shortly")]
    RefreshHeldElsewhere {
        /// The authorizer's name in the center.
        account: String,
    },
    /// No refresh token is stored for the authorizer: it never authorized the platform,
    /// or withdrew the authorization.
    #[error("{account} holds no authorization: the merchant has not authorized the platform (or withdrew it); send them through /open/{{name}}/authorize")]
    NotAuthorized {
        /// The authorizer's name in the center.
        account: String,
    },
    /// WeCom's message/send has no form for this message.
    #[error(
        "WeCom's message/send cannot carry a {msgtype} message: reply with text, image or news"
    )]
    WeComMessage {
        /// The customer-service message type.
        msgtype: &'static str,
    },
    /// WeCom accepted message/send but not its recipient (`invaliduser`).
    #[error("WeCom did not deliver to {touser:?}: not a member's UserID in the application's visible range (可见范围)")]
    RecipientRefused {
        /// The UserID WeCom named.
        touser: String,
    },
}

impl Error {
    /// Builds an [`Error::Api`] with the hint for `errcode`.
    pub fn api(errcode: i64, errmsg: &str) -> Error {
        Error::Api {
            errcode,
            errmsg: errmsg.to_owned(),
            hint: hint(errcode, errmsg),
        }
    }

    /// The errcode, when WeChat answered with one.
    pub fn errcode(&self) -> Option<i64> {
        match self {
            Error::Api { errcode, .. } => Some(*errcode),
            _ => None,
        }
    }

    /// Whether the access_token used was rejected (40001, 40014, 42001): expire it and
    /// retry once with a fresh one.
    pub fn is_token_rejected(&self) -> bool {
        matches!(self.errcode(), Some(40001 | 40014 | 42001))
    }
}

/// What usually causes a WeChat error code, and the fix.
pub fn hint(errcode: i64, errmsg: &str) -> Option<String> {
    let text = match errcode {
        -1 => "WeChat is busy: retry with backoff",
        40001 => "the access_token is invalid or not the latest: another system refreshed this AppID (make wxgate the only token holder), or the AppSecret is wrong",
        40013 => "invalid AppID: check app_id (wx + 16 lowercase hex digits)",
        40014 => "invalid access_token: malformed, or for another account",
        40029 => "invalid OAuth code: expired (5 minutes), already used, or issued to another AppID",
        40125 => "invalid AppSecret: copy it again from 开发 → 基本配置 (reset it there if lost)",
        40163 => "OAuth code already used: a page reload or double redirect; exchange each code once and redirect away from ?code=",
        40164 => {
            let ip = errmsg
                .split("invalid ip ")
                .nth(1)
                .and_then(|rest| rest.split([' ', ',']).next())
                .unwrap_or("the server's egress IP");
            return Some(format!(
                "add {ip} to the IP whitelist (IP白名单) in 开发 → 基本配置; it is the address WeChat saw"
            ));
        }
        40243 => "the AppSecret is frozen: unfreeze or reset it in the console",
        42001 => "the access_token expired: it is refreshed and the call retried",
        45009 => "the daily API quota is used up: look for a refresh storm (several token holders), then reset with clear_quota",
        45011 => "per-minute frequency limit: retry in the next minute",
        45015 => "outside the customer-service window: the user has not interacted in 48 hours",
        48001 => "this API is not authorized for the account (unverified account or wrong account type)",
        89503 => "this IP needs the admin's confirmation: approve it in the template message WeChat sent, then retry",
        // The third-party platform's codes (开放平台 第三方平台, 返回码说明).
        61004 => "this server's IP is not on the third-party platform's IP whitelist (开发资料 → 开发配置 → 白名单IP地址列表)",
        61005 => "the component_verify_ticket expired: wxgate uses the latest one WeChat pushed; check that pushes reach /open/{name}/notify (授权事件接收URL)",
        61006 => "the component_verify_ticket is invalid: wxgate uses the latest one WeChat pushed; check that pushes reach /open/{name}/notify (授权事件接收URL) and that the platform's EncodingAESKey is the console's",
        61023 => "the authorizer_refresh_token is no longer valid: the merchant must authorize the platform again",
        10003 => "the redirect_uri's domain is not the 网页授权域名 configured in the console",
        _ => return None,
    };
    Some(text.to_owned())
}

/// Query parameters whose values never appear in an error or a log line.
pub const SECRET_PARAMS: [&str; 6] = [
    "secret",
    "component_access_token",
    "corpsecret",
    "access_token",
    "code",
    "refresh_token",
];

/// `url` with the values of [`SECRET_PARAMS`] and any password replaced by `***`.
pub fn redact_url(url: &url::Url) -> String {
    let mut url = url.clone();
    if url.password().is_some() {
        let _ = url.set_password(Some("***"));
    }
    if url.query().is_some() {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(name, value)| {
                let value = if SECRET_PARAMS.contains(&name.as_ref()) {
                    "***".to_owned()
                } else {
                    value.into_owned()
                };
                (name.into_owned(), value)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.into()
}

/// An HTTP client error as text: its chain of causes, and its URL redacted (a client
/// error prints the whole URL, with `secret=` or `access_token=`, by default).
pub(crate) fn describe(error: reqwest::Error) -> String {
    let url = error.url().map(redact_url);
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    if let Some(url) = url {
        text.push_str(&format!(" (url: {url})"));
    }
    text
}
