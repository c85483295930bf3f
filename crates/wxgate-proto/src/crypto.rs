//! Safe-mode encryption (the WXBizMsgCrypt scheme).
//!
//! ```text
//! plaintext = random(16) || len(msg) as u32 big-endian || msg (UTF-8) || AppID
//! padded    = PKCS#7 with block size 32 (1..=32 bytes of value n)
//! Encrypt   = base64( AES-256-CBC(key, iv = key[..16], padded) )   no cipher padding
//! key       = base64_decode(EncodingAESKey + "=")                  trailing bits ignored
//! ```
//!
//! The 16 random bytes are an argument: this crate draws no randomness.

use aes::cipher::{
    block_padding::NoPadding, BlockModeDecrypt, BlockModeEncrypt, InnerIvInit, KeyInit,
};
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::{alphabet, Engine};

use crate::Error;

type Aes256CbcEnc = cbc::Encryptor<aes::Aes256>;
type Aes256CbcDec = cbc::Decryptor<aes::Aes256>;

/// Base64 decoder for EncodingAESKeys: about three keys in four carry non-zero bits in
/// the last symbol, which strict decoders reject and WeChat ignores.
const LENIENT_KEY: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Base64 decoder for the `Encrypt` field: standard alphabet, padding optional.
const CIPHERTEXT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// PKCS#7 block size of the scheme: 32, not AES's 16.
pub const PAD_BLOCK: usize = 32;

/// A checked EncodingAESKey: 43 characters of `[A-Za-z0-9]` that decode to a 32-byte
/// AES-256 key. `Debug` never prints the key.
#[derive(Clone, PartialEq, Eq)]
pub struct EncodingAesKey {
    key: [u8; 32],
}

impl EncodingAesKey {
    /// Parses and checks a key as pasted from the console.
    ///
    /// # Errors
    /// [`Error::InvalidAesKey`] when the key is not 43 characters, has a character
    /// outside `[A-Za-z0-9]`, or does not decode to 32 bytes.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let invalid = |reason: String| Error::InvalidAesKey { reason };
        let count = text.chars().count();
        if count != 43 {
            let hint = if text.trim().chars().count() == 43 {
                " (it has leading or trailing whitespace)"
            } else {
                ""
            };
            return Err(invalid(format!(
                "it has {count} characters, it must have exactly 43{hint}"
            )));
        }
        if let Some((index, ch)) = text
            .char_indices()
            .find(|(_, c)| !c.is_ascii_alphanumeric())
        {
            return Err(invalid(format!(
                "character {:?} at position {} is not a letter or digit",
                ch,
                index + 1
            )));
        }
        let decoded = LENIENT_KEY
            .decode(text)
            .map_err(|e| invalid(format!("it is not base64: {e}")))?;
        let key: [u8; 32] = decoded
            .try_into()
            .map_err(|v: Vec<u8>| invalid(format!("it decodes to {} bytes, not 32", v.len())))?;
        Ok(EncodingAesKey { key })
    }

    /// Builds a key from 32 raw bytes (used to generate new keys).
    pub fn from_bytes(key: [u8; 32]) -> Self {
        EncodingAesKey { key }
    }

    /// The 43-character console form (canonical base64 without `=`).
    pub fn to_console_string(&self) -> String {
        let mut text = STANDARD.encode(self.key);
        text.truncate(43);
        text
    }

    /// The 32-byte AES key.
    pub fn key_bytes(&self) -> &[u8; 32] {
        &self.key
    }

    /// The CBC initialisation vector: the key's first 16 bytes.
    pub fn iv(&self) -> [u8; 16] {
        let mut iv = [0u8; 16];
        iv.copy_from_slice(&self.key[..16]);
        iv
    }
}

impl std::fmt::Debug for EncodingAesKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EncodingAesKey(***)")
    }
}

/// What [`MsgCrypt::decrypt_unchecked`] found inside a ciphertext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decrypted {
    /// The message (UTF-8 XML).
    pub message: String,
    /// The receive-id trailer: the AppID that encrypted it.
    pub app_id: String,
}

/// Encrypts and decrypts messages for one account (key + AppID).
#[derive(Clone)]
pub struct MsgCrypt {
    cipher: aes::Aes256,
    iv: [u8; 16],
    app_id: String,
}

impl std::fmt::Debug for MsgCrypt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MsgCrypt")
            .field("app_id", &self.app_id)
            .finish_non_exhaustive()
    }
}

impl MsgCrypt {
    /// A crypt for the account with this key and AppID (the receive-id trailer).
    pub fn new(key: &EncodingAesKey, app_id: &str) -> Self {
        MsgCrypt {
            cipher: aes::Aes256::new(key.key_bytes().into()),
            iv: key.iv(),
            app_id: app_id.to_owned(),
        }
    }

    /// The AppID this crypt writes and expects.
    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    /// Encrypts `message` with the given 16-byte random prefix and returns the base64
    /// `Encrypt` text.
    pub fn encrypt(&self, message: &str, random: &[u8; 16]) -> String {
        let unpadded = 20 + message.len() + self.app_id.len();
        let pad = PAD_BLOCK - unpadded % PAD_BLOCK;
        let mut buf = Vec::with_capacity(unpadded + pad);
        buf.extend_from_slice(random);
        buf.extend_from_slice(&(message.len() as u32).to_be_bytes());
        buf.extend_from_slice(message.as_bytes());
        buf.extend_from_slice(self.app_id.as_bytes());
        buf.resize(unpadded + pad, pad as u8);
        let len = buf.len();
        let encryptor = Aes256CbcEnc::inner_iv_init(self.cipher.clone(), (&self.iv).into());
        let ciphertext = encryptor
            .encrypt_padded::<NoPadding>(&mut buf, len)
            .expect("buffer length is a multiple of 32");
        STANDARD.encode(ciphertext)
    }

    /// Decrypts an `Encrypt` text and checks that its AppID trailer is this account's.
    ///
    /// # Errors
    /// [`Error::BadCiphertext`], [`Error::BadPadding`], [`Error::BadBuffer`],
    /// [`Error::NotUtf8`] and [`Error::AppIdMismatch`]. No error carries a decrypted
    /// byte, except a trailer shaped exactly like an AppID (see [`looks_like_app_id`]).
    pub fn decrypt(&self, encrypt: &str) -> Result<String, Error> {
        let decrypted = self.decrypt_unchecked(encrypt)?;
        let matches: bool =
            subtle::ConstantTimeEq::ct_eq(decrypted.app_id.as_bytes(), self.app_id.as_bytes())
                .into();
        if !matches {
            let got = looks_like_app_id(&decrypted.app_id).then_some(decrypted.app_id);
            return Err(Error::AppIdMismatch {
                expected: self.app_id.clone(),
                got,
            });
        }
        Ok(decrypted.message)
    }

    /// Decrypts an `Encrypt` text without looking at the AppID trailer (the caller
    /// compares [`Decrypted::app_id`]).
    ///
    /// # Errors
    /// As [`MsgCrypt::decrypt`], except [`Error::AppIdMismatch`].
    pub fn decrypt_unchecked(&self, encrypt: &str) -> Result<Decrypted, Error> {
        let mut buf = CIPHERTEXT
            .decode(encrypt.trim())
            .map_err(|e| Error::BadCiphertext {
                reason: e.to_string(),
            })?;
        if buf.is_empty() || buf.len() % 16 != 0 {
            return Err(Error::BadCiphertext {
                reason: format!("{} bytes is not a non-zero multiple of 16", buf.len()),
            });
        }
        let decryptor = Aes256CbcDec::inner_iv_init(self.cipher.clone(), (&self.iv).into());
        let plain = decryptor
            .decrypt_padded::<NoPadding>(&mut buf)
            .map_err(|_| Error::BadCiphertext {
                reason: "AES block error".to_owned(),
            })?;
        let pad_byte = *plain.last().expect("non-empty");
        let pad = pad_byte as usize;
        if !(1..=PAD_BLOCK).contains(&pad)
            || pad > plain.len()
            || plain[plain.len() - pad..].iter().any(|&b| b != pad_byte)
        {
            return Err(Error::BadPadding);
        }
        let content = &plain[..plain.len() - pad];
        if content.len() < 20 {
            return Err(Error::BadBuffer {
                reason: "shorter than the 16-byte random prefix and the 4-byte length",
            });
        }
        let msg_len = u32::from_be_bytes(content[16..20].try_into().expect("4 bytes")) as usize;
        if msg_len > content.len() - 20 {
            return Err(Error::BadBuffer {
                reason: "the announced message length exceeds the bytes present",
            });
        }
        let message = std::str::from_utf8(&content[20..20 + msg_len])
            .map_err(|_| Error::NotUtf8)?
            .to_owned();
        let app_id = String::from_utf8_lossy(&content[20 + msg_len..]).into_owned();
        Ok(Decrypted { message, app_id })
    }
}

/// Whether a decrypted trailer is shaped exactly like an AppID or a WeCom CorpID,
/// `(wx|ww)[0-9a-f]{16}`: the only decrypted text that may be shown (in a log line) to
/// explain a mismatch. A trailer after a shrunk length field is message text, and never
/// has this shape, since a message ends with `>`.
pub fn looks_like_app_id(trailer: &str) -> bool {
    let bytes = trailer.as_bytes();
    bytes.len() == 18
        && (bytes.starts_with(b"wx") || bytes.starts_with(b"ww"))
        && bytes[2..]
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_errors_say_what_is_wrong() {
        let err = |text: &str| match EncodingAesKey::parse(text) {
            Err(Error::InvalidAesKey { reason }) => reason,
            other => panic!("expected InvalidAesKey, got {other:?}"),
        };
        assert!(err("short").contains("5 characters"));
        assert!(err(&format!(" {}", "a".repeat(43))).contains("whitespace"));
        assert!(err(&format!("{}+", "a".repeat(42))).contains("position 43"));
        assert!(EncodingAesKey::parse(&"a".repeat(43)).is_ok());
    }

    #[test]
    fn console_string_round_trips() {
        let key = EncodingAesKey::from_bytes([7u8; 32]);
        let text = key.to_console_string();
        assert_eq!(text.len(), 43);
        assert_eq!(EncodingAesKey::parse(&text).unwrap(), key);
        assert_eq!(format!("{key:?}"), "EncodingAesKey(***)");
    }

    #[test]
    fn truncated_and_garbage_ciphertexts_are_typed_errors() {
        let crypt = MsgCrypt::new(&EncodingAesKey::from_bytes([1u8; 32]), "wx0000000000000000");
        let good = crypt.encrypt("<xml/>", &[0u8; 16]);
        assert_eq!(crypt.decrypt(&good).unwrap(), "<xml/>");
        assert!(matches!(
            crypt.decrypt("!!!"),
            Err(Error::BadCiphertext { .. })
        ));
        assert!(matches!(
            crypt.decrypt(""),
            Err(Error::BadCiphertext { .. })
        ));
        assert!(matches!(
            crypt.decrypt("AAAA"),
            Err(Error::BadCiphertext { .. })
        ));
        // A different key decrypts into garbage, which fails padding or length checks.
        let other = MsgCrypt::new(&EncodingAesKey::from_bytes([2u8; 32]), "wx0000000000000000");
        assert!(other.decrypt(&good).is_err());
    }

    #[test]
    fn only_a_trailer_shaped_like_an_app_id_is_carried() {
        for (trailer, shown) in [
            ("wx0123456789abcdef", true),
            ("ww0123456789abcdef", true),
            ("wx0123456789ABCDEF", false),
            ("wx0123456789abcde", false),
            ("wx0123456789abcdef0", false),
            ("xx0123456789abcdef", false),
            ("<Content>secret</Content></xml>wx0123456789abcdef", false),
            ("", false),
        ] {
            assert_eq!(looks_like_app_id(trailer), shown, "{trailer:?}");
        }
        let key = EncodingAesKey::from_bytes([1u8; 32]);
        let receiver = MsgCrypt::new(&key, "wx0000000000000000");
        let foreign = MsgCrypt::new(&key, "wx1111111111111111").encrypt("<xml/>", &[0; 16]);
        assert_eq!(
            receiver.decrypt(&foreign),
            Err(Error::AppIdMismatch {
                expected: "wx0000000000000000".into(),
                got: Some("wx1111111111111111".into()),
            })
        );
        let odd = MsgCrypt::new(&key, "not-an-app-id").encrypt("<xml/>", &[0; 16]);
        let err = receiver.decrypt(&odd).unwrap_err();
        assert_eq!(
            err,
            Error::AppIdMismatch {
                expected: "wx0000000000000000".into(),
                got: None,
            }
        );
        assert!(!err.to_string().contains("not-an-app-id"), "{err}");
    }
}
