//! The callback protocol for one account, as plain functions: verify, decrypt, parse,
//! route, reply. No HTTP here; `http` maps the results to responses.
//!
//! A push is XML or JSON (mini-programs and mini-games), read from its body; it is
//! answered in the format it came in. A mini-program or mini-game shows no passive
//! reply but `transfer_customer_service`, so a rule's other replies become
//! [`Decided::CustomerService`]: `success` now, the reply through the API.
//!
//! Every refusal is a [`Refusal`] that knows its status code, its metrics outcome and
//! the log line that explains it. Nothing here logs secrets.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use rand::Rng;
use secrecy::ExposeSecret;
use serde::Deserialize;
use wxgate_proto::console::Mode;
use wxgate_proto::reply::Reply;
use wxgate_proto::signature::{diagnose_mismatch, url_signature, MismatchHint};
use wxgate_proto::{envelope, Format, Message, MsgCrypt};

use crate::config::{AccountConfig, AccountKind};
use crate::gateway::dedup::{self, Dedup, Remembered};
use crate::metrics::Outcome;
use crate::rules::{self, Decision};

/// The query string WeChat puts on callback requests. Unknown parameters are ignored.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct CallbackQuery {
    /// `sha1(sort(token, timestamp, nonce))`.
    pub signature: Option<String>,
    /// Unix seconds.
    pub timestamp: Option<String>,
    /// Random digits.
    pub nonce: Option<String>,
    /// URL verification only: the string to echo.
    pub echostr: Option<String>,
    /// `aes` for encrypted pushes; absent or `raw` for plaintext.
    pub encrypt_type: Option<String>,
    /// Encrypted pushes: `sha1(sort(token, timestamp, nonce, Encrypt))`.
    pub msg_signature: Option<String>,
    /// The sender's OpenID (informational; the body's FromUserName is authoritative).
    pub openid: Option<String>,
}

/// Why a request was refused.
#[derive(Debug)]
pub enum Refusal {
    /// A required query parameter is absent.
    MissingParameter(&'static str),
    /// `signature` or `msg_signature` does not match.
    BadSignature {
        /// `signature` or `msg_signature`.
        which: &'static str,
        /// What recomputing it with the usual mistakes found.
        hint: MismatchHint,
    },
    /// The timestamp is outside the account's window.
    StaleTimestamp {
        /// Seconds between the request's timestamp and our clock (positive: in the past).
        skew_s: i64,
        /// The window.
        window_s: u64,
    },
    /// A plaintext push to an account in safe mode.
    PlaintextInSafeMode,
    /// An encrypted push to an account without an EncodingAESKey.
    EncryptedWithoutKey,
    /// The body (XML or JSON) could not be parsed, is neither, or lacks a field.
    Malformed(wxgate_proto::Error),
    /// The ciphertext did not decrypt, its AppID is not ours, or what it decrypted to is
    /// not a message. Every kind gets the same answer, [`DECRYPT_REFUSAL`].
    Decrypt(DecryptFailure),
}

/// The one answer to every decryption failure: a response that differed by kind would
/// be an oracle (padding, length, UTF-8, XML) for an attacker who replays a captured
/// ciphertext with a block altered.
pub const DECRYPT_REFUSAL: &str = "cannot decrypt";

/// Why a ciphertext was refused. It holds no decrypted byte, except a trailer shaped
/// exactly like an AppID (`(wx|ww)[0-9a-f]{16}`), which only the log line shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecryptFailure {
    /// Not base64, or not a non-zero multiple of 16 bytes.
    Ciphertext,
    /// The PKCS#7 padding is invalid.
    Padding,
    /// Too short, or the announced length exceeds the buffer.
    Length,
    /// The message is not UTF-8.
    Utf8,
    /// The trailer is not this account's AppID.
    AppId {
        /// The trailer, when it is shaped like an AppID.
        trailer: Option<String>,
    },
    /// The decrypted message is not a WeChat message (XML, or a field missing).
    Xml,
}

impl DecryptFailure {
    /// Classifies an error of [`MsgCrypt::decrypt`], keeping no decrypted byte.
    pub fn of(error: wxgate_proto::Error) -> DecryptFailure {
        use wxgate_proto::Error as E;
        match error {
            E::BadPadding => DecryptFailure::Padding,
            E::BadBuffer { .. } => DecryptFailure::Length,
            E::NotUtf8 => DecryptFailure::Utf8,
            E::AppIdMismatch { got, .. } => DecryptFailure::AppId {
                trailer: got.filter(|t| wxgate_proto::crypto::looks_like_app_id(t)),
            },
            _ => DecryptFailure::Ciphertext,
        }
    }

    /// The kind, for the log line.
    pub fn kind(&self) -> &'static str {
        match self {
            DecryptFailure::Ciphertext => "ciphertext",
            DecryptFailure::Padding => "padding",
            DecryptFailure::Length => "length",
            DecryptFailure::Utf8 => "utf8",
            DecryptFailure::AppId { .. } => "app_id",
            DecryptFailure::Xml => "xml",
        }
    }

    /// The log sentence: the kind and what usually causes it, without decrypted text.
    fn explain(&self) -> String {
        let kind = self.kind();
        let cause = match self {
            DecryptFailure::Ciphertext => "the Encrypt field is not base64 of whole AES blocks; the body was altered or is not from WeChat".to_owned(),
            DecryptFailure::Padding | DecryptFailure::Length | DecryptFailure::Utf8 => "the EncodingAESKey in wxgate.toml probably differs from the console's (or the ciphertext was altered)".to_owned(),
            DecryptFailure::AppId { trailer: Some(trailer) } => format!("the message was encrypted for AppID {trailer:?}, not this account's app_id; set `app_id` to the account's AppID (开发 → 基本配置)"),
            DecryptFailure::AppId { trailer: None } => "the trailer is not an AppID: the ciphertext was altered, or the EncodingAESKey differs from the console's".to_owned(),
            DecryptFailure::Xml => "the decrypted text is not a WeChat message (the ciphertext was altered, or the sender is not WeChat)".to_owned(),
        };
        format!("{DECRYPT_REFUSAL} ({kind}): {cause}")
    }
}

impl Refusal {
    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::MissingParameter("signature" | "msg_signature") => 403,
            Refusal::BadSignature { .. }
            | Refusal::StaleTimestamp { .. }
            | Refusal::PlaintextInSafeMode => 403,
            Refusal::MissingParameter(_)
            | Refusal::EncryptedWithoutKey
            | Refusal::Malformed(_)
            | Refusal::Decrypt(_) => 400,
        }
    }

    /// The metrics outcome.
    pub fn outcome(&self) -> Outcome {
        match self {
            Refusal::MissingParameter("signature" | "msg_signature")
            | Refusal::BadSignature { .. } => Outcome::BadSignature,
            Refusal::StaleTimestamp { .. } => Outcome::StaleTimestamp,
            Refusal::PlaintextInSafeMode | Refusal::EncryptedWithoutKey => Outcome::WrongMode,
            Refusal::MissingParameter(_) | Refusal::Malformed(_) => Outcome::BadRequest,
            Refusal::Decrypt(_) => Outcome::DecryptFailed,
        }
    }

    /// The response body: [`Refusal::reason`], except for a decryption failure, which
    /// always answers [`DECRYPT_REFUSAL`] whatever its kind.
    pub fn answer(&self) -> String {
        match self {
            Refusal::Decrypt(_) => DECRYPT_REFUSAL.to_owned(),
            other => other.reason(),
        }
    }

    /// One sentence for the log: which check failed and what usually causes it.
    /// Contains no secret and no decrypted byte.
    pub fn reason(&self) -> String {
        match self {
            Refusal::MissingParameter(name) => format!("missing query parameter `{name}`: requests must come from WeChat with signature, timestamp and nonce"),
            Refusal::BadSignature { which, hint } => format!("{which} mismatch: {}", hint.advice()),
            Refusal::StaleTimestamp { skew_s, window_s } => format!(
                "timestamp is {}s {} our clock, outside the {window_s}s window: check the server clock (NTP), or a replayed request; timestamp_window_s = 0 turns the check off",
                skew_s.abs(),
                if *skew_s >= 0 { "behind" } else { "ahead of" }
            ),
            Refusal::PlaintextInSafeMode => "plaintext request refused: this account is in safe mode (安全模式) and accepts only encrypted pushes; if the console is set to plaintext or compatible mode, set `mode` to match".to_owned(),
            Refusal::EncryptedWithoutKey => "encrypted request (encrypt_type=aes) but this account has no encoding_aes_key: copy the console's EncodingAESKey into wxgate.toml and set `mode`".to_owned(),
            Refusal::Malformed(err) => format!("bad request body: {err}"),
            Refusal::Decrypt(failure) => failure.explain(),
        }
    }
}

/// A successful answer to a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The literal body `success`: nothing is sent to the user.
    Success,
    /// A reply body (plain XML, or the encrypted envelope).
    Xml(String),
    /// A reply body to a JSON push (plain JSON, or the encrypted JSON envelope).
    Json(String),
}

impl Answer {
    /// The `Content-Type` of the answer.
    pub fn content_type(&self) -> &'static str {
        match self {
            Answer::Success => "text/plain; charset=utf-8",
            Answer::Xml(_) => Format::Xml.content_type(),
            Answer::Json(_) => Format::Json.content_type(),
        }
    }
}

/// A verified, decrypted push.
#[derive(Debug)]
pub struct Opened<'a> {
    /// The message.
    pub message: Message,
    /// The key that decrypted it (`None` for plaintext).
    pub crypt: Option<&'a MsgCrypt>,
    /// The body's format, which the answer must have too.
    pub format: Format,
}

/// A push whose query passed every check that needs no body.
#[derive(Debug, Clone, Copy)]
pub struct Admitted {
    encrypted: bool,
}

impl Admitted {
    /// Whether the push is encrypted (`encrypt_type=aes`).
    pub fn encrypted(self) -> bool {
        self.encrypted
    }
}

/// What the rules decided.
#[derive(Debug)]
pub enum Decided {
    /// Answer with this plain reply (`None`: `success`).
    Answer {
        /// The plain reply XML.
        plain: Remembered,
        /// Ok, duplicate or internal error.
        outcome: Outcome,
    },
    /// No rule matched and the account forwards to its service.
    Forward,
    /// A rule's reply that this kind of account shows only when it comes through the
    /// customer-service message API: answer `success` and send it there. Returned once
    /// per push: the dedup cache remembers `success` for WeChat's retries.
    CustomerService(Reply),
}

/// One account, ready to serve.
#[derive(Debug)]
pub struct Account {
    /// Its configuration.
    pub config: AccountConfig,
    /// Current key first, then the previous one.
    crypts: Vec<MsgCrypt>,
    dedup: Option<std::sync::Arc<Dedup>>,
    /// When a push in the other format than `data_format` was last logged.
    format_noted_at: AtomicI64,
}

/// A push in the other format than `data_format` is logged at most this often.
const FORMAT_NOTE_INTERVAL_S: i64 = 600;

impl Account {
    /// Prepares an account from its validated configuration.
    pub fn new(config: AccountConfig) -> Self {
        let crypts = [&config.aes_key, &config.previous_aes_key]
            .into_iter()
            .flatten()
            .map(|key| MsgCrypt::new(key, config.receive_id()))
            .collect();
        let dedup = config.dedup.then(|| {
            std::sync::Arc::new(Dedup::new(
                dedup::DEFAULT_CAPACITY,
                dedup::DEFAULT_MAX_BYTES,
                dedup::DEFAULT_TTL_S,
            ))
        });
        Account {
            config,
            crypts,
            dedup,
            format_noted_at: AtomicI64::new(i64::MIN),
        }
    }

    /// The account of a reloaded configuration: it keeps `previous`'s memory of
    /// answers (so WeChat's retries of a message answered before the reload get the
    /// same answer), unless the AppID changed or dedup is now off.
    pub fn reloaded(config: AccountConfig, previous: &Account) -> Self {
        let same_account = previous.config.app_id == config.app_id;
        let mut account = Account::new(config);
        if let (Some(_), Some(kept), true) = (&account.dedup, &previous.dedup, same_account) {
            account.dedup = Some(std::sync::Arc::clone(kept));
        }
        account
    }

    /// A sentence for the log when a push came in the other format than the
    /// configured `data_format` (the console's switch applies at once, so it is
    /// accepted), at most once per ten minutes per account; `None` otherwise.
    pub fn format_note(&self, format: Format, now: i64) -> Option<String> {
        if format == self.config.data_format {
            return None;
        }
        let last = self.format_noted_at.load(Ordering::Relaxed);
        if now.saturating_sub(last) < FORMAT_NOTE_INTERVAL_S
            || self
                .format_noted_at
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return None;
        }
        Some(format!(
            "a push came as {} but data_format = \"{}\": it was read and answered as {}; set data_format to match the console (数据格式) (logged at most every {} minutes)",
            format.as_str().to_uppercase(),
            self.config.data_format.as_str(),
            format.as_str().to_uppercase(),
            FORMAT_NOTE_INTERVAL_S / 60
        ))
    }

    fn token(&self) -> &str {
        self.config.token.expose_secret()
    }

    /// The dedup cache, when enabled.
    pub fn dedup(&self) -> Option<&Dedup> {
        self.dedup.as_deref()
    }

    /// URL verification: returns the `echostr` to echo.
    ///
    /// # Errors
    /// A [`Refusal`] for a missing parameter, a bad signature or a stale timestamp.
    pub fn verify_url(&self, query: &CallbackQuery, now: i64) -> Result<String, Refusal> {
        if self.config.kind == AccountKind::WeCom {
            return self.verify_wecom_url(query, now);
        }
        self.check_signature(query, now)?;
        query
            .echostr
            .clone()
            .ok_or(Refusal::MissingParameter("echostr"))
    }

    fn check_signature(&self, query: &CallbackQuery, now: i64) -> Result<(), Refusal> {
        let signature = query
            .signature
            .as_deref()
            .ok_or(Refusal::MissingParameter("signature"))?;
        let (timestamp, nonce) = self.timestamp_and_nonce(query, now)?;
        if !url_signature(self.token(), timestamp, nonce).matches_hex(signature) {
            let hint = diagnose_mismatch(self.token(), timestamp, nonce, None, signature);
            return Err(Refusal::BadSignature {
                which: "signature",
                hint,
            });
        }
        Ok(())
    }

    fn timestamp_and_nonce<'q>(
        &self,
        query: &'q CallbackQuery,
        now: i64,
    ) -> Result<(&'q str, &'q str), Refusal> {
        let timestamp = query
            .timestamp
            .as_deref()
            .ok_or(Refusal::MissingParameter("timestamp"))?;
        let nonce = query
            .nonce
            .as_deref()
            .ok_or(Refusal::MissingParameter("nonce"))?;
        let window_s = self.config.timestamp_window_s;
        if window_s > 0 {
            let Ok(seconds) = timestamp.parse::<i64>() else {
                return Err(Refusal::StaleTimestamp {
                    skew_s: i64::MAX,
                    window_s,
                });
            };
            let skew_s = now.saturating_sub(seconds);
            if skew_s.unsigned_abs() > window_s {
                return Err(Refusal::StaleTimestamp { skew_s, window_s });
            }
        }
        Ok((timestamp, nonce))
    }

    /// Checks the signatures and the timestamp, decrypts, and parses the message:
    /// [`Account::admit`], then [`Account::open_admitted`].
    ///
    /// # Errors
    /// A [`Refusal`] for every check that fails.
    pub fn open(&self, query: &CallbackQuery, body: &str, now: i64) -> Result<Opened<'_>, Refusal> {
        let admitted = self.admit(query, now)?;
        self.open_admitted(admitted, query, body)
    }

    /// Everything that can be checked before the body is read: the mode, the timestamp
    /// window, and `signature` (which covers only the query). An encrypted push must
    /// carry `msg_signature`, checked against the body by [`Account::open_admitted`].
    ///
    /// # Errors
    /// A [`Refusal`] for every check that fails.
    pub fn admit(&self, query: &CallbackQuery, now: i64) -> Result<Admitted, Refusal> {
        if self.config.kind == AccountKind::WeCom {
            return self.admit_wecom(query, now);
        }
        let encrypted = query.encrypt_type.as_deref() == Some("aes");
        // An unsigned request is a 403 before anything else is looked at.
        let signed = if encrypted {
            query.msg_signature.is_some() || query.signature.is_some()
        } else {
            query.signature.is_some()
        };
        if !signed {
            return Err(Refusal::MissingParameter(if encrypted {
                "msg_signature"
            } else {
                "signature"
            }));
        }
        self.timestamp_and_nonce(query, now)?;
        if encrypted {
            if self.crypts.is_empty() {
                return Err(Refusal::EncryptedWithoutKey);
            }
            // WeChat also sends `signature` on encrypted pushes; when present it must hold.
            if query.signature.is_some() {
                self.check_signature(query, now)?;
            }
            if query.msg_signature.is_none() {
                return Err(Refusal::MissingParameter("msg_signature"));
            }
        } else {
            if self.config.mode == Mode::Safe {
                return Err(Refusal::PlaintextInSafeMode);
            }
            self.check_signature(query, now)?;
        }
        Ok(Admitted { encrypted })
    }

    /// Decrypts and parses a push that [`Account::admit`] let in; checks
    /// `msg_signature` over the body first. The body's first byte says whether it is
    /// XML or JSON, and the decrypted message's whether that is.
    ///
    /// # Errors
    /// A [`Refusal`] for every check that fails.
    pub fn open_admitted(
        &self,
        admitted: Admitted,
        query: &CallbackQuery,
        body: &str,
    ) -> Result<Opened<'_>, Refusal> {
        let format = Format::detect(body).map_err(Refusal::Malformed)?;
        if !admitted.encrypted {
            return Ok(Opened {
                message: Message::parse_as(format, body).map_err(Refusal::Malformed)?,
                crypt: None,
                format,
            });
        }
        let (inner, crypt) = self.unseal(query, body, format)?;
        let inner_format = Format::detect(&inner);
        // The parser's error may quote the decrypted text: only the kind is kept.
        let message = inner_format
            .and_then(|f| Message::parse_as(f, &inner))
            .map_err(|_| Refusal::Decrypt(DecryptFailure::Xml))?;
        Ok(Opened {
            message,
            crypt: Some(crypt),
            format,
        })
    }

    /// Answers a retry from the dedup cache, or runs the rules; a reply is rendered in
    /// `format`, the push's. When no rule matches and the account forwards, returns
    /// [`Decided::Forward`] (the inbox deduplicates those). On an account that shows
    /// no passive reply but `transfer_customer_service`, another reply is
    /// [`Decided::CustomerService`], and `success` is remembered for the retries.
    pub fn decide(&self, message: &Message, format: Format, now: i64) -> Decided {
        let key = self.dedup.as_ref().map(|_| message.dedup_key());
        if let (Some(dedup), Some(key)) = (&self.dedup, &key) {
            if let Some(remembered) = dedup.get(key, now) {
                return Decided::Answer {
                    plain: remembered,
                    outcome: Outcome::Duplicate,
                };
            }
        }
        let decided = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            rules::decide_logged(&self.config.name, &self.config.rules, message)
        }));
        let mut by_api = None;
        let (plain, outcome) = match decided {
            Ok(Decision::Reply(reply)) if !self.shows(&reply) => {
                by_api = Some(reply);
                (None, Outcome::Ok)
            }
            Ok(Decision::Reply(reply)) => {
                (Some(reply.render_for_in(format, message, now)), Outcome::Ok)
            }
            Ok(Decision::NoMatch) if self.config.forward.is_some() => return Decided::Forward,
            Ok(Decision::Success | Decision::NoMatch) => (None, Outcome::Ok),
            Err(_) => {
                tracing::error!(account = %self.config.name, msg_type = %message.msg_type, "handling the message panicked; answered `success` so WeChat shows no error to the user");
                (None, Outcome::InternalError)
            }
        };
        let remembered: Remembered = plain.map(Arc::from);
        if let (Some(dedup), Some(key), Outcome::Ok) = (&self.dedup, key, outcome) {
            dedup.put(key, remembered.clone(), now);
        }
        match by_api {
            Some(reply) => Decided::CustomerService(reply),
            None => Decided::Answer {
                plain: remembered,
                outcome,
            },
        }
    }

    /// Whether this account's user sees `reply` as a passive reply.
    pub fn shows(&self, reply: &Reply) -> bool {
        self.config.kind.shows_passive_replies()
            || matches!(reply, Reply::TransferCustomerService { .. })
    }

    /// The answer to send: `success`, the plain reply, or the reply encrypted with the
    /// key that decrypted the request (fresh nonce, TimeStamp now), in `format`.
    pub fn seal(
        &self,
        plain: Option<&str>,
        crypt: Option<&MsgCrypt>,
        format: Format,
        now: i64,
        rng: &mut dyn Rng,
    ) -> Answer {
        let body = match (plain, crypt) {
            (None, _) => return Answer::Success,
            (Some(plain), None) => plain.to_owned(),
            (Some(plain), Some(crypt)) => {
                let mut random = [0u8; 16];
                rng.fill_bytes(&mut random);
                let nonce = (rng.next_u32() % 1_000_000_000).to_string();
                let token = self.token();
                envelope::seal_reply_in(format, crypt, token, plain, now, &nonce, &random)
            }
        };
        match format {
            Format::Xml => Answer::Xml(body),
            Format::Json => Answer::Json(body),
        }
    }
}

mod unseal;
mod wecom;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod json_tests;
