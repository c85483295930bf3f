//! `[account.oauth]`: the 网页授权域名, the redirect allow-list (parsed with the `url`
//! crate, as the callback checks it), the signing key and the state budget.

use secrecy::SecretString;
use toml::Spanned;
use url::Url;

use super::raw::RawOAuth;
use super::validate::Validator;
use super::OAuthConfig;
use crate::oauth::AllowEntry;

/// Default `peak_sign_ins_per_s`: with the default `state_ttl_s` of 600, a memory of
/// 30,000 states per account.
pub const DEFAULT_PEAK_SIGN_INS_PER_S: u64 = 50;

/// Whether `domain` is a host name alone: what the `url` crate reads as the host of
/// `https://{domain}/`, with nothing else.
fn is_host_only(domain: &str) -> bool {
    !domain.is_empty()
        && Url::parse(&format!("https://{domain}/")).is_ok_and(|url| {
            url.host_str()
                .is_some_and(|host| host.eq_ignore_ascii_case(domain))
                && url.port().is_none()
                && url.path() == "/"
                && url.query().is_none()
                && url.fragment().is_none()
                && url.username().is_empty()
        })
}

impl Validator<'_> {
    pub(super) fn oauth(
        &mut self,
        index: usize,
        span: std::ops::Range<usize>,
        raw: RawOAuth,
        no_secret: bool,
    ) -> OAuthConfig {
        let key = |field: &str| format!("account[{index}].oauth.{field}");
        if no_secret {
            self.error(
                Some(span.clone()),
                key("(table)"),
                "OAuth needs the account's app_secret to exchange codes",
            );
        }
        let domain = raw.domain.get_ref();
        if !is_host_only(domain) {
            self.error(
                Some(raw.domain.span()),
                key("domain"),
                format!("{domain:?}: the 网页授权域名 is a host name only, without scheme, path or port (the usual cause of error 10003)"),
            );
        }
        let mut redirect_allow = Vec::new();
        for entry in &raw.redirect_allow {
            match AllowEntry::parse(entry.get_ref()) {
                Ok(parsed) => redirect_allow.push(parsed),
                Err(problem) => self.error(
                    Some(entry.span()),
                    key("redirect_allow"),
                    format!("{problem}; an entry permits its scheme, host and port, at or below its path"),
                ),
            }
        }
        if raw.redirect_allow.is_empty() {
            self.error(
                Some(span),
                key("redirect_allow"),
                "list the URLs your app may be sent back to, e.g. [\"https://app.example.com/\"] (no open redirect)",
            );
        }
        if raw.signing_key.get_ref().len() < 32 {
            self.error(
                Some(raw.signing_key.span()),
                key("signing_key"),
                "signing_key must have at least 32 characters (random, shared with your app)",
            );
        }
        self.placeholder_secret(&raw.signing_key, key("signing_key"), "signing_key");
        let state_ttl_s = raw.state_ttl_s.unwrap_or(600);
        if !(1..=3600).contains(&state_ttl_s) {
            self.error(
                None,
                key("state_ttl_s"),
                "state_ttl_s must be between 1 and 3600 seconds (default 600)",
            );
        }
        let peak = raw.peak_sign_ins_per_s.as_ref().map(Spanned::get_ref);
        if let (Some(&peak), Some(value)) = (peak, &raw.peak_sign_ins_per_s) {
            if !(1..=100_000).contains(&peak) {
                self.error(
                    Some(value.span()),
                    key("peak_sign_ins_per_s"),
                    "peak_sign_ins_per_s must be between 1 and 100000 (default 50)",
                );
            }
        }
        OAuthConfig {
            domain: domain.clone(),
            redirect_allow,
            signing_key: SecretString::from(raw.signing_key.into_inner()),
            identity_ttl_s: raw.identity_ttl_s.unwrap_or(300),
            state_ttl_s,
            peak_sign_ins_per_s: peak.copied().unwrap_or(DEFAULT_PEAK_SIGN_INS_PER_S),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_host_only;

    #[test]
    fn the_domain_is_a_host_alone() {
        for good in ["wx.example.com", "127.0.0.1", "WX.Example.com"] {
            assert!(is_host_only(good), "{good}");
        }
        for bad in [
            "",
            "https://wx.example.com/",
            "wx.example.com/",
            "wx.example.com/path",
            "wx.example.com:8080",
            "user@wx.example.com",
            "wx.example.com?x",
        ] {
            assert!(!is_host_only(bad), "{bad}");
        }
    }
}
