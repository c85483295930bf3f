//! SHA1 signatures: URL verification (`signature`), message signature (`msg_signature`)
//! and the JS-SDK `wx.config` signature.
//!
//! WeChat sorts the inputs **byte-wise** (digits < uppercase < lowercase), concatenates
//! them without a separator and hashes the result with SHA1, compared as lowercase hex.
//! Comparisons here are constant-time.

use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

/// A SHA1 signature (20 bytes). Compare it with [`Signature::matches_hex`], which runs
/// in constant time.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature([u8; 20]);

impl Signature {
    /// The raw digest.
    pub fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }

    /// Lowercase hex, the form WeChat sends.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// True when `got` (40 hex characters, either case) is this signature. Constant time
    /// over the digest; a value of the wrong length or with non-hex characters is simply
    /// unequal.
    pub fn matches_hex(&self, got: &str) -> bool {
        let mut decoded = [0u8; 20];
        if got.len() != 40 || hex::decode_to_slice(got, &mut decoded).is_err() {
            return false;
        }
        self.0.ct_eq(&decoded).into()
    }
}

impl std::fmt::Debug for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signature({})", self.to_hex())
    }
}

impl std::fmt::Display for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// SHA1 of the byte-wise sorted, concatenated parts.
pub fn sorted_sha1(parts: &mut [&str]) -> Signature {
    parts.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    let mut hasher = Sha1::new();
    for part in parts.iter() {
        hasher.update(part.as_bytes());
    }
    Signature(hasher.finalize().into())
}

/// The exact string that [`sorted_sha1`] hashes: what a user compares when a signature
/// does not match.
pub fn sorted_concat(parts: &mut [&str]) -> String {
    parts.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    parts.concat()
}

/// The URL-verification and plaintext-POST `signature`: `sha1(sort([token, timestamp, nonce]))`.
pub fn url_signature(token: &str, timestamp: &str, nonce: &str) -> Signature {
    sorted_sha1(&mut [token, timestamp, nonce])
}

/// The safe-mode `msg_signature`: `sha1(sort([token, timestamp, nonce, encrypt]))`, with
/// `encrypt` exactly as it stands in the XML.
pub fn msg_signature(token: &str, timestamp: &str, nonce: &str, encrypt: &str) -> Signature {
    sorted_sha1(&mut [token, timestamp, nonce, encrypt])
}

/// SHA1 of arbitrary bytes (the JS-SDK signature hashes `string1` as is).
pub fn sha1_of(input: &str) -> Signature {
    Signature(Sha1::digest(input.as_bytes()).into())
}

/// A likely reason why a received signature did not match, found by recomputing it with
/// the usual mistakes applied. Never carries the Token itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MismatchHint {
    /// The signature matches when the Token is compared case-insensitively: the console
    /// Token and the configured one differ only in letter case.
    TokenCase,
    /// The signature matches once leading/trailing whitespace is removed from the
    /// configured Token (a newline read from a file or environment variable).
    TokenWhitespace,
    /// The sender hashed the parts without sorting them.
    Unsorted,
    /// Nothing obvious; the Token differs, or the request was not signed by WeChat.
    Unknown,
}

impl MismatchHint {
    /// A sentence that tells the user what to check.
    pub fn advice(self) -> &'static str {
        match self {
            MismatchHint::TokenCase => "the signature matches if the Token's letter case is changed: the Token is case-sensitive, copy it exactly from the console (服务器配置 → Token)",
            MismatchHint::TokenWhitespace => "the signature matches once whitespace is trimmed from the configured Token: remove the stray space or newline from `token`",
            MismatchHint::Unsorted => "the sender hashed token+timestamp+nonce without sorting them: the parts must be sorted byte-wise before hashing",
            MismatchHint::Unknown => "usual causes: the Token differs from the console's (case, whitespace), the account is in the wrong mode, or the request did not come from WeChat",
        }
    }
}

/// Recomputes a failed signature with the usual mistakes applied and says which one
/// explains it. `extra` is the `Encrypt` text for a `msg_signature`, `None` for a
/// `signature`. Only called on the failure path: it costs a handful of SHA1s.
pub fn diagnose_mismatch(
    token: &str,
    timestamp: &str,
    nonce: &str,
    extra: Option<&str>,
    got: &str,
) -> MismatchHint {
    let sign = |token: &str| match extra {
        Some(encrypt) => msg_signature(token, timestamp, nonce, encrypt),
        None => url_signature(token, timestamp, nonce),
    };
    let trimmed = token.trim();
    if trimmed != token && sign(trimmed).matches_hex(got) {
        return MismatchHint::TokenWhitespace;
    }
    for variant in [
        token.to_ascii_lowercase(),
        token.to_ascii_uppercase(),
        swap_case(token),
    ] {
        if variant != token && sign(&variant).matches_hex(got) {
            return MismatchHint::TokenCase;
        }
    }
    let unsorted = match extra {
        Some(encrypt) => sha1_of(&[token, timestamp, nonce, encrypt].concat()),
        None => sha1_of(&[token, timestamp, nonce].concat()),
    };
    if unsorted.matches_hex(got) {
        return MismatchHint::Unsorted;
    }
    MismatchHint::Unknown
}

fn swap_case(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_uppercase() {
                c.to_ascii_lowercase()
            } else {
                c.to_ascii_uppercase()
            }
        })
        .collect()
}

/// The JS-SDK `wx.config` signature and the exact string it hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsSdkSignature {
    /// The URL that was signed: the input without `#` and what follows.
    pub url: String,
    /// `jsapi_ticket=…&noncestr=…&timestamp=…&url=…`, the SHA1 pre-image.
    pub string1: String,
    /// `sha1(string1)`.
    pub signature: Signature,
}

/// Signs a page URL for `wx.config`. The `#fragment` is dropped, as the browser's
/// `location.href.split('#')[0]` does; nothing is URL-encoded or decoded.
pub fn jssdk_signature(ticket: &str, noncestr: &str, timestamp: &str, url: &str) -> JsSdkSignature {
    let url = url.split('#').next().unwrap_or_default().to_owned();
    let string1 =
        format!("jsapi_ticket={ticket}&noncestr={noncestr}&timestamp={timestamp}&url={url}");
    let signature = sha1_of(&string1);
    JsSdkSignature {
        url,
        string1,
        signature,
    }
}

/// The values a page passes to `wx.config({appId, timestamp, nonceStr, signature, …})`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WxConfig {
    /// `appId`.
    pub app_id: String,
    /// `timestamp`, the same that was signed.
    pub timestamp: i64,
    /// `nonceStr`, the same that was signed (as `noncestr`).
    pub nonce_str: String,
    /// The signature, and what was signed.
    pub signed: JsSdkSignature,
}

/// Builds the `wx.config` values for a page URL (the `#fragment` is dropped).
pub fn wx_config(
    app_id: &str,
    ticket: &str,
    nonce_str: &str,
    timestamp: i64,
    url: &str,
) -> WxConfig {
    WxConfig {
        app_id: app_id.to_owned(),
        timestamp,
        nonce_str: nonce_str.to_owned(),
        signed: jssdk_signature(ticket, nonce_str, &timestamp.to_string(), url),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wx_config_signs_what_it_returns() {
        let config = wx_config(
            "wx1",
            "ticket",
            "n0nce",
            1718020002,
            "https://a.b/c?d=1#frag",
        );
        assert_eq!(
            config.signed,
            jssdk_signature("ticket", "n0nce", "1718020002", "https://a.b/c?d=1")
        );
        assert_eq!(
            (config.timestamp, config.nonce_str.as_str()),
            (1718020002, "n0nce")
        );
    }

    #[test]
    fn uppercase_hex_is_accepted_and_garbage_is_not() {
        let sig = url_signature("tok", "1", "2");
        assert!(sig.matches_hex(&sig.to_hex()));
        assert!(sig.matches_hex(&sig.to_hex().to_uppercase()));
        assert!(!sig.matches_hex(""));
        assert!(!sig.matches_hex(&sig.to_hex()[..39]));
        assert!(!sig.matches_hex(&format!("{}0", sig.to_hex())));
        assert!(!sig.matches_hex(&"z".repeat(40)));
        assert!(!url_signature("tok", "1", "3").matches_hex(&sig.to_hex()));
    }

    #[test]
    fn diagnose_finds_the_usual_mistakes() {
        let check = |configured: &str, signed_with: &str, expect: MismatchHint| {
            let got = url_signature(signed_with, "1712345678", "880417233").to_hex();
            assert_eq!(
                diagnose_mismatch(configured, "1712345678", "880417233", None, &got),
                expect,
                "configured {configured:?}, signed with {signed_with:?}"
            );
        };
        check("MyToken", "mytoken", MismatchHint::TokenCase);
        check("mytoken", "MYTOKEN", MismatchHint::TokenCase);
        check("MyToken", "mYtOKEN", MismatchHint::TokenCase);
        check("MyToken\n", "MyToken", MismatchHint::TokenWhitespace);
        check(" MyToken", "MyToken", MismatchHint::TokenWhitespace);
        check("MyToken", "Another", MismatchHint::Unknown);

        let unsorted = sha1_of("MyToken1712345678880417233").to_hex();
        assert_eq!(
            diagnose_mismatch("MyToken", "1712345678", "880417233", None, &unsorted),
            MismatchHint::Unsorted
        );
        let got = msg_signature("mytoken", "1", "2", "ENC").to_hex();
        assert_eq!(
            diagnose_mismatch("MyToken", "1", "2", Some("ENC"), &got),
            MismatchHint::TokenCase
        );
    }
}
