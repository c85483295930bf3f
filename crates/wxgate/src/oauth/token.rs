//! The two signed strings of the OAuth flow: the `state` handed to WeChat and the
//! identity token handed to the app.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

fn mac(key: &str, parts: &[&str]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key.as_bytes()).expect("HMAC takes any key length");
    for part in parts {
        mac.update(part.as_bytes());
        mac.update(b"\n");
    }
    mac.finalize().into_bytes().into()
}

/// A `state` for WeChat: `{expiry:10}{nonce:16 hex}{mac:32 hex}`, letters and digits only,
/// binding the account, the app URL and the scope.
pub fn sign_state(
    key: &str,
    account: &str,
    to: &str,
    scope: &str,
    expires_at: i64,
    nonce: u64,
) -> String {
    let expires = format!("{expires_at:010}");
    let nonce = format!("{nonce:016x}");
    let tag = mac(key, &["state", account, to, scope, &expires, &nonce]);
    format!("{expires}{nonce}{}", hex::encode(&tag[..16]))
}

/// Why a `state` was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// Not produced by this server for this account, URL and scope.
    #[error("invalid state: the sign-in did not start here (CSRF?); start again from the app")]
    Tampered,
    /// Older than its expiry.
    #[error("sign-in link expired: start again")]
    Expired,
}

/// Checks a `state` made by [`sign_state`] and returns its expiry (Unix seconds): the
/// state must be remembered as used until then.
///
/// # Errors
/// [`StateError`].
pub fn verify_state(
    key: &str,
    account: &str,
    to: &str,
    scope: &str,
    state: &str,
    now: i64,
) -> Result<i64, StateError> {
    if state.len() != 10 + 16 + 32 || !state.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(StateError::Tampered);
    }
    let (expires, rest) = state.split_at(10);
    let (nonce, tag) = rest.split_at(16);
    let expected = mac(key, &["state", account, to, scope, expires, nonce]);
    if !bool::from(
        hex::encode(&expected[..16])
            .as_bytes()
            .ct_eq(tag.as_bytes()),
    ) {
        return Err(StateError::Tampered);
    }
    let expires_at: i64 = expires.parse().map_err(|_| StateError::Tampered)?;
    if expires_at < now {
        return Err(StateError::Expired);
    }
    Ok(expires_at)
}

/// The identity token handed to the app: `v1.{base64url(JSON)}.{base64url(HMAC-SHA256)}`,
/// the MAC over `v1.{base64url(JSON)}` with the account's `signing_key`.
pub fn sign_identity(key: &str, claims: &serde_json::Value) -> String {
    let payload = format!("v1.{}", URL_SAFE_NO_PAD.encode(claims.to_string()));
    let mut mac = HmacSha256::new_from_slice(key.as_bytes()).expect("any key length");
    mac.update(payload.as_bytes());
    format!(
        "{payload}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

/// Verifies an identity token and returns its claims when valid and unexpired.
pub fn verify_identity(key: &str, token: &str, now: i64) -> Option<serde_json::Value> {
    let (payload, signature) = token.rsplit_once('.')?;
    let mut mac = HmacSha256::new_from_slice(key.as_bytes()).ok()?;
    mac.update(payload.as_bytes());
    mac.verify_slice(&URL_SAFE_NO_PAD.decode(signature).ok()?)
        .ok()?;
    let json = URL_SAFE_NO_PAD.decode(payload.strip_prefix("v1.")?).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&json).ok()?;
    (claims["exp"].as_i64()? > now).then_some(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn state_round_trip_and_refusals() {
        let state = sign_state(
            "k".repeat(32).as_str(),
            "main",
            "https://app/x",
            "snsapi_base",
            2000,
            7,
        );
        assert_eq!(state.len(), 58);
        assert!(
            state.bytes().all(|b| b.is_ascii_alphanumeric()),
            "WeChat allows [A-Za-z0-9] only"
        );
        let key = "k".repeat(32);
        assert_eq!(
            verify_state(&key, "main", "https://app/x", "snsapi_base", &state, 1999),
            Ok(2000)
        );
        assert_eq!(
            verify_state(&key, "main", "https://app/x", "snsapi_base", &state, 2001),
            Err(StateError::Expired)
        );
        assert_eq!(
            verify_state(&key, "main", "https://evil/x", "snsapi_base", &state, 1999),
            Err(StateError::Tampered)
        );
        assert_eq!(
            verify_state(&key, "other", "https://app/x", "snsapi_base", &state, 1999),
            Err(StateError::Tampered)
        );
        let mut tampered = state.clone().into_bytes();
        tampered[0] = if tampered[0] == b'9' { b'8' } else { b'9' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert_eq!(
            verify_state(
                &key,
                "main",
                "https://app/x",
                "snsapi_base",
                &tampered,
                1999
            ),
            Err(StateError::Tampered)
        );
    }

    #[test]
    fn identity_round_trip() {
        let key = "s".repeat(32);
        let token = sign_identity(&key, &json!({ "openid": "o1", "exp": 100 }));
        assert_eq!(verify_identity(&key, &token, 99).unwrap()["openid"], "o1");
        assert!(verify_identity(&key, &token, 100).is_none(), "expired");
        assert!(
            verify_identity(&"x".repeat(32), &token, 99).is_none(),
            "wrong key"
        );
        assert!(
            verify_identity(&key, &token.replace("v1.", "v1.e"), 99).is_none(),
            "tampered"
        );
    }
}
