//! What WeChat sends: signed verification GETs and message pushes in each mode, XML or
//! JSON.
//!
//! The simulator, the doctor, the emulator's pusher and the tests build their requests
//! here, so every one of them signs and encrypts exactly as WeChat does.

use crate::console::Mode;
use crate::crypto::MsgCrypt;
use crate::envelope;
use crate::signature::{msg_signature, url_signature};
use crate::urls::encode_component;
use crate::xml::{push_cdata, push_number};
use crate::Format;

/// A request as WeChat would send it: the query string (without `?`) and the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushRequest {
    /// `signature=…&timestamp=…&nonce=…[…]`, percent-encoded.
    pub query: String,
    /// The POST body (empty for the verification GET).
    pub body: String,
}

fn encode_query(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", encode_component(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The URL-verification GET's query.
pub fn verification(token: &str, timestamp: &str, nonce: &str, echostr: &str) -> PushRequest {
    let signature = url_signature(token, timestamp, nonce).to_hex();
    PushRequest {
        query: encode_query(&[
            ("signature", &signature),
            ("timestamp", timestamp),
            ("nonce", nonce),
            ("echostr", echostr),
        ]),
        body: String::new(),
    }
}

/// Inputs of a push besides the message.
#[derive(Debug, Clone, Copy)]
pub struct PushParams<'a> {
    /// The console Token.
    pub token: &'a str,
    /// How to send: plain, compat (plaintext fields + Encrypt) or safe (Encrypt only).
    pub mode: Mode,
    /// The account's crypt; required for compat and safe.
    pub crypt: Option<&'a MsgCrypt>,
    /// Unix seconds, as text.
    pub timestamp: &'a str,
    /// Random digits.
    pub nonce: &'a str,
    /// The 16 random bytes of the encryption.
    pub random: &'a [u8; 16],
    /// The sender's OpenID (the `openid` query parameter).
    pub openid: &'a str,
}

/// A message push in `params.mode`, XML.
///
/// # Panics
/// When `params.mode` is compat or safe and no crypt is given: a caller bug.
pub fn message(params: &PushParams<'_>, message_xml: &str, to_user_name: &str) -> PushRequest {
    message_as(params, Format::Xml, message_xml, to_user_name)
}

/// A message push in `params.mode` and `format`: `message` is the push's plaintext in
/// that format (XML, or a JSON object as a mini-program sends it; [`build::json`] turns
/// the builders' XML into JSON).
///
/// # Panics
/// When `params.mode` is compat or safe and no crypt is given: a caller bug.
pub fn message_as(
    params: &PushParams<'_>,
    format: Format,
    message: &str,
    to_user_name: &str,
) -> PushRequest {
    let signature = url_signature(params.token, params.timestamp, params.nonce).to_hex();
    let mut pairs = vec![
        ("signature", signature.as_str()),
        ("timestamp", params.timestamp),
        ("nonce", params.nonce),
        ("openid", params.openid),
    ];
    if params.mode == Mode::Plain {
        return PushRequest {
            query: encode_query(&pairs),
            body: message.to_owned(),
        };
    }
    let crypt = params.crypt.expect("compat and safe mode need a crypt");
    let encrypt = crypt.encrypt(message, params.random);
    let msg_sig = msg_signature(params.token, params.timestamp, params.nonce, &encrypt).to_hex();
    pairs.push(("encrypt_type", "aes"));
    pairs.push(("msg_signature", &msg_sig));
    let body = match (params.mode, format) {
        (Mode::Safe, _) => envelope::request_body_in(format, to_user_name, &encrypt),
        (_, Format::Json) => {
            // Compatible mode: the plaintext fields and "Encrypt" in one object.
            let inner = message
                .trim()
                .strip_prefix('{')
                .and_then(|rest| rest.strip_suffix('}'))
                .unwrap_or_default()
                .trim();
            let mut body = String::with_capacity(inner.len() + encrypt.len() + 16);
            body.push('{');
            body.push_str(inner);
            if !inner.is_empty() {
                body.push(',');
            }
            crate::json::push_string(&mut body, "Encrypt");
            body.push(':');
            crate::json::push_string(&mut body, &encrypt);
            body.push('}');
            body
        }
        (_, Format::Xml) => {
            // Compatible mode: the plaintext children and <Encrypt> in one <xml>.
            let inner = message
                .trim()
                .strip_prefix("<xml>")
                .and_then(|rest| rest.strip_suffix("</xml>"))
                .unwrap_or(message);
            let mut body = String::with_capacity(inner.len() + encrypt.len() + 40);
            body.push_str("<xml>");
            body.push_str(inner);
            push_cdata(&mut body, "Encrypt", &encrypt);
            body.push_str("</xml>");
            body
        }
    };
    PushRequest {
        query: encode_query(&pairs),
        body,
    }
}

/// A notify to a third-party platform's 授权事件接收URL, as WeChat sends it: always
/// encrypted with the platform's crypt (trailer: its AppID), with `signature`,
/// `encrypt_type=aes` and `msg_signature` in the query and
/// `<xml><AppId/><Encrypt/></xml>` as the body. `notify_xml` is
/// [`crate::component::Notify::to_xml`]'s.
pub fn component_notify(
    token: &str,
    crypt: &MsgCrypt,
    timestamp: &str,
    nonce: &str,
    random: &[u8; 16],
    notify_xml: &str,
) -> PushRequest {
    let signature = url_signature(token, timestamp, nonce).to_hex();
    let encrypt = crypt.encrypt(notify_xml, random);
    let msg_sig = msg_signature(token, timestamp, nonce, &encrypt).to_hex();
    PushRequest {
        query: encode_query(&[
            ("signature", &signature),
            ("timestamp", timestamp),
            ("nonce", nonce),
            ("encrypt_type", "aes"),
            ("msg_signature", &msg_sig),
        ]),
        body: crate::component::notify_body(crypt.app_id(), &encrypt),
    }
}

/// A WeCom application's URL-verification GET: `echostr` encrypted with the corp's
/// crypt (trailer: the CorpID) and `msg_signature` over it; the server must answer
/// `echostr` in plaintext.
pub fn wecom_verification(
    token: &str,
    crypt: &MsgCrypt,
    (timestamp, nonce): (&str, &str),
    random: &[u8; 16],
    echostr: &str,
) -> PushRequest {
    let encrypted = crypt.encrypt(echostr, random);
    let signature = msg_signature(token, timestamp, nonce, &encrypted).to_hex();
    PushRequest {
        query: encode_query(&[
            ("msg_signature", &signature),
            ("timestamp", timestamp),
            ("nonce", nonce),
            ("echostr", &encrypted),
        ]),
        body: String::new(),
    }
}

/// A WeCom application's push: `<xml><ToUserName/><Encrypt/><AgentID/></xml>` with only
/// `msg_signature`, `timestamp` and `nonce` in the query. `params.mode` and
/// `params.openid` are not used (WeCom always encrypts, and sends no openid).
///
/// # Panics
/// Without a crypt in `params`: a caller bug.
pub fn wecom_message(
    params: &PushParams<'_>,
    message_xml: &str,
    corp_id: &str,
    agent_id: Option<u64>,
) -> PushRequest {
    let crypt = params.crypt.expect("a WeCom push needs the corp's crypt");
    let encrypt = crypt.encrypt(message_xml, params.random);
    let msg_sig = msg_signature(params.token, params.timestamp, params.nonce, &encrypt).to_hex();
    let mut body = String::with_capacity(encrypt.len() + 120);
    body.push_str("<xml>");
    push_cdata(&mut body, "ToUserName", corp_id);
    push_cdata(&mut body, "Encrypt", &encrypt);
    if let Some(agent_id) = agent_id {
        push_cdata(&mut body, "AgentID", &agent_id.to_string());
    }
    body.push_str("</xml>");
    PushRequest {
        query: encode_query(&[
            ("msg_signature", &msg_sig),
            ("timestamp", params.timestamp),
            ("nonce", params.nonce),
        ]),
        body,
    }
}

/// Builders for the XML of common pushes, as WeChat formats them; [`build::json`]
/// gives the JSON twin of any of them.
pub mod build {
    use super::*;

    /// The JSON form of a push built here, as a mini-program with 数据格式 JSON sends
    /// it (see [`crate::json::from_xml`]).
    ///
    /// # Panics
    /// When `xml` is not well-formed: the builders' output always is.
    pub fn json(xml: &str) -> String {
        crate::json::from_xml(xml).expect("the builders write well-formed XML")
    }

    fn header(out: &mut String, to: &str, from: &str, create_time: i64, msg_type: &str) {
        out.push_str("<xml>");
        push_cdata(out, "ToUserName", to);
        push_cdata(out, "FromUserName", from);
        push_number(out, "CreateTime", create_time);
        push_cdata(out, "MsgType", msg_type);
    }

    /// A text message.
    pub fn text(to: &str, from: &str, create_time: i64, content: &str, msg_id: u64) -> String {
        let mut out = String::new();
        header(&mut out, to, from, create_time, "text");
        push_cdata(&mut out, "Content", content);
        push_number(&mut out, "MsgId", msg_id);
        out.push_str("</xml>");
        out
    }

    /// An image message.
    pub fn image(to: &str, from: &str, create_time: i64, media_id: &str, msg_id: u64) -> String {
        let mut out = String::new();
        header(&mut out, to, from, create_time, "image");
        push_cdata(
            &mut out,
            "PicUrl",
            &format!("https://mmbiz.qpic.cn/{media_id}"),
        );
        push_cdata(&mut out, "MediaId", media_id);
        push_number(&mut out, "MsgId", msg_id);
        out.push_str("</xml>");
        out
    }

    /// A location message.
    pub fn location(
        to: &str,
        from: &str,
        create_time: i64,
        latitude: &str,
        longitude: &str,
        msg_id: u64,
    ) -> String {
        let mut out = String::new();
        header(&mut out, to, from, create_time, "location");
        push_number(&mut out, "Location_X", latitude);
        push_number(&mut out, "Location_Y", longitude);
        push_number(&mut out, "Scale", 15);
        push_cdata(&mut out, "Label", "");
        push_number(&mut out, "MsgId", msg_id);
        out.push_str("</xml>");
        out
    }

    /// An event, with an optional EventKey.
    pub fn event(
        to: &str,
        from: &str,
        create_time: i64,
        event: &str,
        event_key: Option<&str>,
    ) -> String {
        let mut out = String::new();
        header(&mut out, to, from, create_time, "event");
        push_cdata(&mut out, "Event", event);
        if let Some(key) = event_key {
            push_cdata(&mut out, "EventKey", key);
        }
        out.push_str("</xml>");
        out
    }
}
