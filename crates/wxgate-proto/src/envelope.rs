//! Safe-mode envelopes: the encrypted POST body WeChat sends and the encrypted reply we
//! answer with.
//!
//! ```text
//! request : <xml><ToUserName/><Encrypt/></xml>      (+ plaintext fields in compat mode)
//! reply   : <xml><Encrypt/><MsgSignature/><TimeStamp/><Nonce/></xml>
//! ```

use crate::crypto::MsgCrypt;
use crate::signature::msg_signature;
use crate::xml::{self, push_cdata, Element};
use crate::Error;

/// An encrypted POST body as WeChat sends it in safe mode.
pub fn request_body(to_user_name: &str, encrypt: &str) -> String {
    let mut out = String::with_capacity(encrypt.len() + 96);
    out.push_str("<xml>");
    push_cdata(&mut out, "ToUserName", to_user_name);
    push_cdata(&mut out, "Encrypt", encrypt);
    out.push_str("</xml>");
    out
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

/// An encrypted reply, opened by [`open_reply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedReply {
    /// The decrypted reply XML.
    pub xml: String,
    /// The envelope's `TimeStamp`.
    pub timestamp: String,
    /// The envelope's `Nonce`.
    pub nonce: String,
}

/// Checks an encrypted reply's `MsgSignature` and decrypts it (what WeChat does with our
/// answer; used by the simulator, the doctor and the tests).
///
/// # Errors
/// XML errors; [`Error::MissingField`] when a part of the envelope is missing;
/// [`Error::InvalidReply`] when `MsgSignature` does not match; decryption errors.
pub fn open_reply(crypt: &MsgCrypt, token: &str, envelope: &str) -> Result<OpenedReply, Error> {
    let root = xml::parse(envelope)?;
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
        timestamp: timestamp.to_owned(),
        nonce: nonce.to_owned(),
    })
}
