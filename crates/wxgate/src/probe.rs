//! Acting as WeChat against any callback server: send a verification GET or a push,
//! and judge the answer as WeChat would. Used by `wxgate sim`, `wxgate doctor` and the
//! console's "try an account".
//!
//! The judging is pure ([`judge_reply`], [`judge_echo`]); only [`Target::send`] does I/O.

mod judge;

pub use judge::{judge_echo, judge_reply, ReplyVerdict};

use crate::text::error_chain;
use std::time::{Duration, Instant};

use rand::{Rng, RngExt};
use serde::Serialize;
use wxgate_proto::console::Mode;
use wxgate_proto::push::{self, PushParams};

use secrecy::ExposeSecret;
use wxgate_proto::reply::Reply;
use wxgate_proto::{Format, MsgCrypt};

use crate::config::AccountKind;

/// WeChat's limit for an answer.
pub const WECHAT_TIMEOUT: Duration = Duration::from_secs(5);

/// How one check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// As WeChat expects.
    Pass,
    /// Works, but is risky or unusual.
    Warn,
    /// WeChat would fail here.
    Fail,
    /// Not run (an earlier step failed or it does not apply).
    Skip,
}

impl Status {
    /// The mark printed before the check.
    pub fn mark(self) -> &'static str {
        match self {
            Status::Pass => "✓",
            Status::Warn => "!",
            Status::Fail => "✗",
            Status::Skip => "-",
        }
    }
}

/// One line of a checklist.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// What was checked.
    pub name: String,
    /// How it ended.
    pub status: Status,
    /// What was seen.
    pub detail: String,
    /// On warn or fail: the most likely cause and the fix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Check {
    /// A check with no hint.
    pub fn new(name: impl Into<String>, status: Status, detail: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            status,
            detail: detail.into(),
            hint: None,
        }
    }

    /// Adds the cause and fix.
    pub fn hint(mut self, hint: impl Into<String>) -> Check {
        self.hint = Some(hint.into());
        self
    }
}

/// Prints a checklist; returns whether nothing failed.
pub fn print_checks(checks: &[Check]) -> bool {
    for check in checks {
        println!("{} {}: {}", check.status.mark(), check.name, check.detail);
        if let Some(hint) = &check.hint {
            println!("    → {hint}");
        }
    }
    checks.iter().all(|c| c.status != Status::Fail)
}

/// Where and how to send: the callback URL and the account's secrets.
#[derive(Debug, Clone)]
pub struct Target {
    /// The callback URL, without a query string.
    pub url: String,
    /// The Token.
    pub token: String,
    /// How to send pushes.
    pub mode: Mode,
    /// The account's crypt, for compat and safe mode.
    pub crypt: Option<MsgCrypt>,
    /// What pushes are sent as: XML, or JSON as a mini-program with 数据格式 JSON.
    pub format: Format,
    /// A WeCom application's CorpID and AgentID: its verification and pushes are
    /// WeCom's (always encrypted, `msg_signature` only).
    pub wecom: Option<WeComTarget>,
}

/// What a WeCom application's requests carry besides the Token and the key.
#[derive(Debug, Clone)]
pub struct WeComTarget {
    /// The CorpID: `ToUserName` of every push, and the ciphertexts' trailer.
    pub corp_id: String,
    /// The AgentID, sent with every push.
    pub agent_id: Option<u64>,
}

/// An HTTP exchange.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// HTTP status, or `None` when no answer came (timeout, connection error).
    pub status: Option<u16>,
    /// The body.
    pub body: String,
    /// Content-Type.
    pub content_type: String,
    /// Time to the full answer.
    pub elapsed: Duration,
    /// Transport error, when there was no answer.
    pub error: Option<String>,
    /// No answer because the connection was refused (nothing listens there).
    pub refused: bool,
}

impl Exchange {
    /// What to do about an exchange that got no HTTP answer: start the server (a
    /// refused connection), answer faster (no answer in time), or look at the
    /// connection itself.
    pub fn no_answer_hint(&self) -> &'static str {
        if self.refused {
            "nothing listens there: start `wxgate serve` (sim, status and inbox then find it through data_dir/serve.addr), or give the server's address with --url"
        } else if self
            .error
            .as_deref()
            .is_some_and(|e| e.starts_with("no answer within"))
        {
            "WeChat waits 5 s, then retries up to three times and finally shows 「该公众号暂时无法提供服务」: answer `success` at once and reply later through the customer-service API"
        } else {
            "the connection failed before an HTTP answer (DNS, TLS, a reset): `wxgate doctor --url URL` checks each step"
        }
    }
}

impl Target {
    /// Sends `query` (and `body` as a POST when `Some`) and waits at most `timeout`.
    pub async fn send(
        &self,
        client: &reqwest::Client,
        query: &str,
        body: Option<String>,
        timeout: Duration,
    ) -> Exchange {
        let url = format!("{}?{query}", self.url);
        let started = Instant::now();
        let request = match body {
            Some(body) => client
                .post(&url)
                .header(
                    "Content-Type",
                    match self.format {
                        Format::Xml => "text/xml",
                        Format::Json => "application/json",
                    },
                )
                .body(body),
            None => client.get(&url),
        };
        let result = tokio::time::timeout(timeout, async {
            let response = request.send().await?;
            let status = response.status().as_u16();
            let content_type = response
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let body = response.text().await?;
            Ok::<_, reqwest::Error>((status, content_type, body))
        })
        .await;
        let elapsed = started.elapsed();
        match result {
            Ok(Ok((status, content_type, body))) => Exchange {
                status: Some(status),
                body,
                content_type,
                elapsed,
                error: None,
                refused: false,
            },
            Ok(Err(err)) => Exchange {
                status: None,
                body: String::new(),
                content_type: String::new(),
                elapsed,
                refused: err.is_connect() && refused(&err),
                error: Some(error_chain(&err)),
            },
            Err(_) => Exchange {
                status: None,
                body: String::new(),
                content_type: String::new(),
                elapsed,
                error: Some(format!("no answer within {} ms", timeout.as_millis())),
                refused: false,
            },
        }
    }

    /// The verification query for `echostr`, signed with `token` at `timestamp`.
    pub fn verification_query(&self, token: &str, timestamp: i64, echostr: &str) -> String {
        let mut rng = rand::rng();
        let nonce = rng.random_range(100_000_000u32..1_000_000_000).to_string();
        if let (Some(_), Some(crypt)) = (&self.wecom, &self.crypt) {
            let mut random = [0u8; 16];
            rng.fill_bytes(&mut random);
            let at = (timestamp.to_string(), nonce);
            return push::wecom_verification(token, crypt, (&at.0, &at.1), &random, echostr).query;
        }
        push::verification(token, &timestamp.to_string(), &nonce, echostr).query
    }

    /// Whether pushes to this target are encrypted.
    pub fn encrypts(&self) -> bool {
        self.crypt.is_some() && (self.wecom.is_some() || self.mode != Mode::Plain)
    }

    /// A push of `message_xml` in the target's mode and format (its JSON twin for a
    /// JSON target), signed at `timestamp`.
    pub fn push(
        &self,
        message_xml: &str,
        to_user_name: &str,
        openid: &str,
        timestamp: i64,
    ) -> push::PushRequest {
        let mut rng = rand::rng();
        let nonce = rng.random_range(100_000_000u32..1_000_000_000).to_string();
        let mut random = [0u8; 16];
        rng.fill_bytes(&mut random);
        let mode = if self.crypt.is_some() {
            self.mode
        } else {
            Mode::Plain
        };
        let message = match self.format {
            Format::Xml => message_xml.to_owned(),
            Format::Json => push::build::json(message_xml),
        };
        let timestamp = timestamp.to_string();
        let params = PushParams {
            token: &self.token,
            mode,
            crypt: self.crypt.as_ref(),
            timestamp: &timestamp,
            nonce: &nonce,
            random: &random,
            openid,
        };
        match &self.wecom {
            Some(wecom) if self.crypt.is_some() => {
                let with_agent = match wecom.agent_id {
                    Some(id) => {
                        message.replacen("</xml>", &format!("<AgentID>{id}</AgentID></xml>"), 1)
                    }
                    None => message,
                };
                push::wecom_message(&params, &with_agent, &wecom.corp_id, wecom.agent_id)
            }
            _ => push::message_as(&params, self.format, &message, to_user_name),
        }
    }
}

/// Whether a transport error is a refused connection (ECONNREFUSED somewhere in its
/// chain).
fn refused(error: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(error) = source {
        if let Some(io) = error.downcast_ref::<std::io::Error>() {
            return io.kind() == std::io::ErrorKind::ConnectionRefused;
        }
        source = error.source();
    }
    false
}

/// The target of an account's pushes at `url`: its secrets, mode and format (what
/// `sim --account` sends, and the console's "try an account").
pub fn account_target(account: &crate::config::AccountConfig, url: String) -> Target {
    Target {
        url,
        token: account.token.expose_secret().to_owned(),
        mode: account.mode,
        crypt: account
            .aes_key
            .as_ref()
            .map(|key| MsgCrypt::new(key, account.receive_id())),
        format: account.data_format,
        wecom: (account.kind == AccountKind::WeCom).then(|| WeComTarget {
            corp_id: account.app_id.clone(),
            agent_id: account.agent_id,
        }),
    }
}

/// The account's original id a simulated push goes to: `to`, or a WeCom corp's id.
pub fn push_to<'a>(target: &'a Target, to: &'a str) -> &'a str {
    target.wecom.as_ref().map_or(to, |w| w.corp_id.as_str())
}

/// A reply in one line, as `sim` prints it.
pub fn describe(reply: &Reply) -> String {
    match reply {
        Reply::Text { content } => format!("text {content:?}"),
        Reply::Image { media_id } => format!("image {media_id}"),
        Reply::Voice { media_id } => format!("voice {media_id}"),
        Reply::Video { media_id, .. } => format!("video {media_id}"),
        Reply::Music { title, .. } => format!("music {}", title.as_deref().unwrap_or("")),
        Reply::News { articles } => format!(
            "news: {}",
            articles
                .iter()
                .map(|a| format!("{:?} → {}", a.title, a.url))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        Reply::TransferCustomerService { kf_account } => {
            format!(
                "transfer to customer service{}",
                kf_account
                    .as_ref()
                    .map(|k| format!(" ({k})"))
                    .unwrap_or_default()
            )
        }
        other => format!("{other:?}"),
    }
}
