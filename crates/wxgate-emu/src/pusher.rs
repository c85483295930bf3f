//! WeChat's side of the callback: URL verification and pushes in any mode, with
//! WeChat's retry policy (5-second timeout, 3 tries in all, the same signed request each
//! time). The reply is opened as WeChat would open it. A push is XML, or JSON as a
//! mini-program with 数据格式 JSON sends it; its format is read from the message. A
//! WeCom pusher ([`Pusher::wecom`]) sends as a WeCom application's callback does.

use std::time::Duration;

use rand::{Rng, RngExt};
use wxgate_proto::console::Mode;
use wxgate_proto::push::{self, PushParams};
use wxgate_proto::{envelope, EncodingAesKey, Format, Message, MsgCrypt};

use crate::Emulator;

/// A reqwest client on rustls with the ring provider and the webpki roots, as
/// `wxgate_client::http_client` builds it (the emulator does not depend on the client).
/// reqwest has no provider of its own here: a bare builder would panic.
pub(crate) fn http_client() -> reqwest::Client {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .build()
        .expect("a client on a preconfigured rustls builds")
}

/// Sends pushes to one callback URL.
#[derive(Debug, Clone)]
pub struct Pusher {
    client: reqwest::Client,
    url: String,
    token: String,
    mode: Mode,
    crypt: Option<MsgCrypt>,
    /// Per-try timeout (WeChat: 5 s).
    pub timeout: Duration,
    /// Tries in all (WeChat: 3).
    pub tries: u32,
    emulator: Option<Emulator>,
    /// A WeCom application's CorpID and AgentID: pushes and the verification as WeCom
    /// sends them.
    wecom: Option<(String, u64)>,
}

/// What happened to one push.
#[derive(Debug, Clone)]
pub struct PushOutcome {
    /// Tries made.
    pub attempts: u32,
    /// Status of the last answer, `None` when every try timed out or failed.
    pub status: Option<u16>,
    /// Body of the last answer.
    pub body: String,
    /// The reply (XML, or JSON for a JSON push), decrypted when it was encrypted;
    /// `None` for `success` or no answer.
    pub reply_xml: Option<String>,
    /// Why the reply could not be opened, if it could not.
    pub error: Option<String>,
}

impl Pusher {
    /// A pusher for a plaintext-mode account.
    pub fn new(url: &str, token: &str) -> Pusher {
        Pusher {
            client: http_client(),
            url: url.to_owned(),
            token: token.to_owned(),
            mode: Mode::Plain,
            crypt: None,
            timeout: Duration::from_secs(5),
            tries: 3,
            emulator: None,
            wecom: None,
        }
    }

    /// A pusher for a WeCom application: every push encrypted with `corp_id` as the
    /// trailer, signed with `msg_signature` only, with `AgentID` in the envelope; the
    /// verification GET carries an encrypted echostr.
    ///
    /// # Errors
    /// An invalid EncodingAESKey.
    pub fn wecom(
        url: &str,
        token: &str,
        aes_key: &str,
        corp_id: &str,
        agent_id: u64,
    ) -> Result<Pusher, wxgate_proto::Error> {
        let mut pusher = Pusher::new(url, token).encrypted(Mode::Safe, aes_key, corp_id)?;
        pusher.wecom = Some((corp_id.to_owned(), agent_id));
        Ok(pusher)
    }

    /// Sends in compat or safe mode with this key and AppID.
    ///
    /// # Errors
    /// An invalid EncodingAESKey.
    pub fn encrypted(
        mut self,
        mode: Mode,
        aes_key: &str,
        app_id: &str,
    ) -> Result<Pusher, wxgate_proto::Error> {
        self.crypt = Some(MsgCrypt::new(&EncodingAesKey::parse(aes_key)?, app_id));
        self.mode = mode;
        Ok(self)
    }

    /// Records each pushed message's sender as an interaction in `emulator` (opens the
    /// customer-service window, as a real message does).
    pub fn with_emulator(mut self, emulator: Emulator) -> Pusher {
        self.emulator = Some(emulator);
        self
    }

    /// The URL-verification GET; true when the echostr came back exactly.
    pub async fn verify_url(&self) -> bool {
        let echostr = rand::rng()
            .random_range(10u64.pow(17)..10u64.pow(18))
            .to_string();
        let timestamp = crate::unix_now().to_string();
        let query = match (&self.wecom, &self.crypt) {
            (Some(_), Some(crypt)) => {
                let mut random = [0u8; 16];
                rand::rng().fill_bytes(&mut random);
                let nonce = nonce();
                push::wecom_verification(
                    &self.token,
                    crypt,
                    (&timestamp, &nonce),
                    &random,
                    &echostr,
                )
                .query
            }
            _ => push::verification(&self.token, &timestamp, &nonce(), &echostr).query,
        };
        match self
            .client
            .get(format!("{}?{query}", self.url))
            .timeout(self.timeout)
            .send()
            .await
        {
            Ok(response) if response.status().is_success() => {
                response.text().await.is_ok_and(|body| body == echostr)
            }
            _ => false,
        }
    }

    /// Pushes `message` (XML, or a JSON object; signed now) with WeChat's retry policy.
    pub async fn push(&self, message: &str) -> PushOutcome {
        let mut random = [0u8; 16];
        rand::rng().fill_bytes(&mut random);
        let timestamp = crate::unix_now().to_string();
        let nonce = nonce();
        let format = Format::detect(message).unwrap_or_default();
        let message_text = message;
        let message = Message::parse_as(format, message_text).ok();
        if let (Some(emulator), Some(message)) = (&self.emulator, &message) {
            emulator.record_interaction(&message.from_user_name);
        }
        let to = message
            .as_ref()
            .map(|m| m.to_user_name.clone())
            .unwrap_or_default();
        let openid = message
            .as_ref()
            .map(|m| m.from_user_name.clone())
            .unwrap_or_default();
        let params = PushParams {
            token: &self.token,
            mode: self.mode,
            crypt: self.crypt.as_ref(),
            timestamp: &timestamp,
            nonce: &nonce,
            random: &random,
            openid: &openid,
        };
        let request = match &self.wecom {
            Some((corp_id, agent_id)) => {
                push::wecom_message(&params, message_text, corp_id, Some(*agent_id))
            }
            None => push::message_as(&params, format, message_text, &to),
        };
        let content_type = match format {
            Format::Xml => "text/xml",
            Format::Json => "application/json",
        };
        let url = format!("{}?{}", self.url, request.query);
        let mut outcome = PushOutcome {
            attempts: 0,
            status: None,
            body: String::new(),
            reply_xml: None,
            error: None,
        };
        for _ in 0..self.tries.max(1) {
            outcome.attempts += 1;
            let sent = self
                .client
                .post(&url)
                .header("Content-Type", content_type)
                .body(request.body.clone())
                .timeout(self.timeout)
                .send()
                .await;
            let Ok(response) = sent else { continue };
            outcome.status = Some(response.status().as_u16());
            outcome.body = response.text().await.unwrap_or_default();
            if outcome.status == Some(200) {
                self.open(&mut outcome);
                return outcome;
            }
        }
        outcome
    }

    fn open(&self, outcome: &mut PushOutcome) {
        let body = outcome.body.trim();
        if body.is_empty() || body == "success" {
            return;
        }
        let sealed = Format::detect(body)
            .and_then(|format| format.parse(body))
            .is_ok_and(|root| root.child("Encrypt").is_some());
        match (&self.crypt, sealed) {
            (Some(crypt), true) => match envelope::open_reply(crypt, &self.token, body) {
                Ok(opened) => outcome.reply_xml = Some(opened.xml),
                Err(err) => outcome.error = Some(err.to_string()),
            },
            _ => outcome.reply_xml = Some(body.to_owned()),
        }
    }
}

fn nonce() -> String {
    rand::rng()
        .random_range(100_000_000u32..1_000_000_000)
        .to_string()
}
