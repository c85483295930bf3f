//! The crate's one error type.

/// Everything that can go wrong in the protocol layer.
///
/// Each variant says when it happens and what usually causes it. The messages are
/// written for the person running the server: they say what to check. Secrets (Token,
/// EncodingAESKey, AppSecret) never appear in a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The EncodingAESKey is not 43 characters of `[A-Za-z0-9]` decoding to 32 bytes.
    ///
    /// Usual cause: a key copied with a missing or extra character, or with whitespace.
    /// WXBizMsgCrypt code −40004.
    #[error("invalid EncodingAESKey: {reason}; copy the 43-character key from the console (服务器配置 → EncodingAESKey) again")]
    InvalidAesKey {
        /// What exactly is wrong with it (length, character, decoded size).
        reason: String,
    },

    /// The `Encrypt` text is not valid base64, or its decoded length is not a non-zero
    /// multiple of 16. WXBizMsgCrypt code −40010.
    #[error("the Encrypt field is not valid base64 ciphertext ({reason}); the body was altered in transit or is not from WeChat")]
    BadCiphertext {
        /// What was wrong with it.
        reason: String,
    },

    /// The decrypted buffer's PKCS#7 padding is invalid: the pad byte is outside 1..=32
    /// or the padding bytes differ. Usual cause: a wrong EncodingAESKey (the decryption
    /// "succeeds" into garbage). WXBizMsgCrypt code −40008.
    ///
    /// The error carries no decrypted byte: a message that said which pad byte it found
    /// would be a padding oracle.
    #[error("decrypted message has invalid padding; the EncodingAESKey in wxgate.toml probably differs from the console's")]
    BadPadding,

    /// The decrypted buffer is too short for its 16-byte random prefix, 4-byte length and
    /// the announced message length. WXBizMsgCrypt code −40008.
    #[error("decrypted message is malformed ({reason}); the EncodingAESKey in wxgate.toml probably differs from the console's")]
    BadBuffer {
        /// Which length check failed (a fixed sentence, never a decrypted value).
        reason: &'static str,
    },

    /// The AppID trailer inside the ciphertext is not this account's AppID.
    ///
    /// Usual cause: another account's AppID configured here, or the Open Platform AppID
    /// instead of the Official Account's. WXBizMsgCrypt code −40005. A trailer that is
    /// not shaped like an AppID is never carried: after a tampered length field it holds
    /// the message itself.
    #[error("{}", app_id_mismatch(expected, got.as_deref()))]
    AppIdMismatch {
        /// The configured AppID.
        expected: String,
        /// The decrypted trailer, only when it is exactly `(wx|ww)[0-9a-f]{16}`.
        got: Option<String>,
    },

    /// The decrypted message is not UTF-8.
    #[error("decrypted message is not valid UTF-8")]
    NotUtf8,

    /// The XML could not be parsed.
    #[error("malformed XML: {reason}")]
    MalformedXml {
        /// What the parser complained about.
        reason: String,
    },

    /// The XML carries a DOCTYPE or an entity declaration, which WeChat never sends and
    /// which is the vehicle of XXE and entity-expansion attacks.
    #[error("XML with a DOCTYPE or entity declaration is refused (WeChat never sends one)")]
    XmlDoctype,

    /// The XML is valid but lacks a field WeChat always sends.
    #[error("XML is missing the <{field}> element")]
    MissingField {
        /// The element name.
        field: &'static str,
    },

    /// A field is longer than anything WeChat sends (see [`crate::limits`]).
    #[error("<{field}> has {bytes} bytes, more than the {max} WeChat ever sends in it; this push did not come from WeChat")]
    FieldTooLong {
        /// The element name (cut to 64 bytes).
        field: String,
        /// Its length in bytes.
        bytes: usize,
        /// The bound for this field.
        max: usize,
    },

    /// A field appears twice at the top level of a push, where WeChat sends each once.
    #[error("<{field}> appears more than once (perhaps spelt differently: names are compared without case and underscores); WeChat sends each field once, so this push did not come from WeChat")]
    DuplicateField {
        /// The element name (cut to 64 bytes).
        field: String,
    },

    /// A field that wxgate reads as text (see [`crate::limits::TEXT_FIELDS`]) is a group
    /// or an array.
    #[error("<{field}> must be text or a number, not a group or an array; WeChat always sends it as one value, so this push did not come from WeChat")]
    FieldNotText {
        /// The field name.
        field: String,
    },

    /// The JSON could not be parsed, or goes beyond the reader's bounds.
    #[error("malformed JSON: {reason}")]
    MalformedJson {
        /// What the parser complained about.
        reason: String,
    },

    /// The body is neither XML nor JSON.
    #[error("the body is neither XML (starting with `<`) nor JSON (starting with `{{`); WeChat sends one of the two")]
    UnknownFormat,

    /// A field that must be a number is not.
    #[error("<{field}> must be an integer, got {value:?}")]
    BadNumber {
        /// The element name.
        field: &'static str,
        /// The text found.
        value: String,
    },

    /// A reply cannot be rendered as WeChat requires.
    #[error("invalid reply: {reason}")]
    InvalidReply {
        /// What is wrong with it.
        reason: String,
    },

    /// An input to a URL builder breaks WeChat's rules.
    #[error("invalid {field}: {reason}")]
    InvalidInput {
        /// Which input.
        field: &'static str,
        /// What is wrong and how to fix it.
        reason: String,
    },
}

fn app_id_mismatch(expected: &str, got: Option<&str>) -> String {
    match got {
        Some(got) => format!("AppID inside the encrypted message is {got:?} but this account is configured with {expected:?}; set `app_id` to the account's AppID (开发 → 基本配置)"),
        None => format!("the trailer inside the encrypted message is not an AppID (this account is configured with {expected:?}); the message was altered, or the EncodingAESKey differs from the console's"),
    }
}

/// At most 64 bytes of `text` (cut at a character boundary), for error messages: an
/// element name or value chosen by a sender must not make a log line large.
pub(crate) fn shorten(text: &str) -> String {
    const MAX: usize = 64;
    if text.len() <= MAX {
        return text.to_owned();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}
