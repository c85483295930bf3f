//! Safe-mode envelopes: the encrypted POST body WeChat sends and the encrypted reply we
//! answer with.
//!
//! ```text
//! request : <xml><ToUserName/><Encrypt/></xml>      (+ plaintext fields in compat mode)
//! reply   : <xml><Encrypt/><MsgSignature/><TimeStamp/><Nonce/></xml>
//!
//! JSON (mini-programs and mini-games, 数据格式 JSON):
//! request : {"ToUserName": "…", "Encrypt": "…"}     (+ plaintext fields in compat mode)
//! reply   : {"Encrypt": "…", "MsgSignature": "…", "TimeStamp": 1713424427, "Nonce": "…"}
//! ```
//! `MsgSignature` covers the `Encrypt` value in both formats.

use crate::crypto::MsgCrypt;
use crate::json::ObjectWriter;
use crate::signature::msg_signature;
use crate::xml::{push_cdata, Element};
use crate::{Error, Format};

/// An encrypted POST body as WeChat sends it in safe mode.
pub fn request_body(to_user_name: &str, encrypt: &str) -> String {
    let mut out = String::with_capacity(encrypt.len() + 96);
    out.push_str("<xml>");
    push_cdata(&mut out, "ToUserName", to_user_name);
    push_cdata(&mut out, "Encrypt", encrypt);
    out.push_str("</xml>");
    out
}

/// An encrypted JSON POST body as a mini-program in safe mode sends it.
pub fn request_body_json(to_user_name: &str, encrypt: &str) -> String {
    ObjectWriter::new()
        .string("ToUserName", to_user_name)
        .string("Encrypt", encrypt)
        .finish()
}

/// An encrypted POST body in `format`.
pub fn request_body_in(format: Format, to_user_name: &str, encrypt: &str) -> String {
    match format {
        Format::Xml => request_body(to_user_name, encrypt),
        Format::Json => request_body_json(to_user_name, encrypt),
    }
}

/// The `Encrypt` element of a parsed POST body, trimmed of surrounding whitespace.
pub fn encrypt_of(root: &Element) -> Option<&str> {
    root.text_of("Encrypt").map(str::trim)
}

/// Encrypts `reply_xml` and wraps it with a fresh `MsgSignature` over `timestamp` and
/// `nonce`. The 16 random bytes, the timestamp and the nonce are the caller's.
pub fn seal_reply(
    crypt: &MsgCrypt,
    token: &str,
    reply_xml: &str,
    timestamp: i64,
    nonce: &str,
    random: &[u8; 16],
) -> String {
    let encrypt = crypt.encrypt(reply_xml, random);
    let timestamp = timestamp.to_string();
    let signature = msg_signature(token, &timestamp, nonce, &encrypt);
    let mut out = String::with_capacity(encrypt.len() + 160);
    out.push_str("<xml>");
    push_cdata(&mut out, "Encrypt", &encrypt);
    push_cdata(&mut out, "MsgSignature", &signature.to_hex());
    out.push_str("<TimeStamp>");
    out.push_str(&timestamp);
    out.push_str("</TimeStamp>");
    push_cdata(&mut out, "Nonce", nonce);
    out.push_str("</xml>");
    out
}

/// Encrypts `reply_json` and wraps it in the JSON envelope
/// `{"Encrypt","MsgSignature","TimeStamp","Nonce"}` (`TimeStamp` a number), with a
/// fresh `MsgSignature` over `timestamp` and `nonce`.
pub fn seal_reply_json(
    crypt: &MsgCrypt,
    token: &str,
    reply_json: &str,
    timestamp: i64,
    nonce: &str,
    random: &[u8; 16],
) -> String {
    let encrypt = crypt.encrypt(reply_json, random);
    let signature = msg_signature(token, &timestamp.to_string(), nonce, &encrypt);
    ObjectWriter::new()
        .string("Encrypt", &encrypt)
        .string("MsgSignature", &signature.to_hex())
        .number("TimeStamp", timestamp)
        .string("Nonce", nonce)
        .finish()
}

/// The encrypted reply in `format`: [`seal_reply`] or [`seal_reply_json`].
pub fn seal_reply_in(
    format: Format,
    crypt: &MsgCrypt,
    token: &str,
    reply: &str,
    timestamp: i64,
    nonce: &str,
    random: &[u8; 16],
) -> String {
    match format {
        Format::Xml => seal_reply(crypt, token, reply, timestamp, nonce, random),
        Format::Json => seal_reply_json(crypt, token, reply, timestamp, nonce, random),
    }
}

/// An encrypted reply, opened by [`open_reply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedReply {
    /// The decrypted reply: XML, or JSON when [`OpenedReply::format`] says so.
    pub xml: String,
    /// The envelope's format, which is also the reply's.
    pub format: Format,
    /// The envelope's `TimeStamp`.
    pub timestamp: String,
    /// The envelope's `Nonce`.
    pub nonce: String,
}

/// Checks an encrypted reply's `MsgSignature` and decrypts it (what WeChat does with our
/// answer; used by the simulator, the doctor and the tests).
///
/// # Errors
/// [`Error::UnknownFormat`], XML or JSON errors; [`Error::MissingField`] when a part of
/// the envelope is missing; [`Error::InvalidReply`] when `MsgSignature` does not
/// match; decryption errors.
pub fn open_reply(crypt: &MsgCrypt, token: &str, envelope: &str) -> Result<OpenedReply, Error> {
    let format = Format::detect(envelope)?;
    let root = format.parse(envelope)?;
    let field = |name: &'static str| -> Result<&str, Error> {
        root.text_of(name)
            .map(str::trim)
            .ok_or(Error::MissingField { field: name })
    };
    let encrypt = field("Encrypt")?;
    let signature = field("MsgSignature")?;
    let timestamp = field("TimeStamp")?;
    let nonce = field("Nonce")?;
    if !msg_signature(token, timestamp, nonce, encrypt).matches_hex(signature) {
        return Err(Error::InvalidReply {
            reason: "MsgSignature of the encrypted reply does not match".to_owned(),
        });
    }
    Ok(OpenedReply {
        xml: crypt.decrypt(encrypt)?,
        format,
        timestamp: timestamp.to_owned(),
        nonce: nonce.to_owned(),
    })
}
