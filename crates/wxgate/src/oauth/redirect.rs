//! Where the app may send its users back to: `redirect_allow`, parsed with the `url`
//! crate (the WHATWG parser browsers use) and compared part by part, never as a
//! string prefix.
//!
//! A target is permitted by an entry when the scheme, the host and the port are equal
//! and the target's path is the entry's path or below it at a `/` boundary
//! (`https://a.com/app` permits `/app` and `/app/x`, not `/apple`). An entry without a
//! path means `/`. A user name or password in either is refused.

use url::Url;

/// Why an app URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedirectError {
    /// A raw newline or other control character (browsers would silently drop it).
    #[error("the app URL contains a control character (a raw newline?); percent-encode it")]
    ControlCharacter,
    /// Not an absolute URL.
    #[error("the app URL is not an absolute URL ({0}); give the full https://… address")]
    NotAUrl(String),
    /// Not http or https.
    #[error("the app URL must start with https:// or http://")]
    Scheme,
    /// `user:password@host`.
    #[error("the app URL carries a user name or password (user@host), which is refused")]
    UserInfo,
    /// No entry permits it.
    #[error("redirect target is not on this account's oauth.redirect_allow list (the scheme, host and port must be equal, and the path must be an allowed path or below it)")]
    NotAllowed,
}

/// Why an allow-list entry in the configuration cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllowEntryError {
    /// Not an absolute URL.
    #[error("{text:?} is not an absolute URL ({reason}); write e.g. https://app.example.com/")]
    NotAUrl {
        /// The entry as written.
        text: String,
        /// What the parser found.
        reason: String,
    },
    /// Refused as an app URL would be (scheme, user info, control character).
    #[error("{text:?}: {}", .reason.to_string().replacen("the app URL", "the entry", 1))]
    Refused {
        /// The entry as written.
        text: String,
        /// Why.
        reason: RedirectError,
    },
    /// A query or a fragment.
    #[error("{0:?} has a ?query or #fragment; an entry is scheme://host[:port][/path]")]
    QueryOrFragment(String),
}

/// Parses an app URL: absolute http(s), no control character, no user info. The URL
/// the browser is sent to is this parse's serialization, so what was checked is what
/// the browser gets.
///
/// # Errors
/// [`RedirectError`] naming the problem.
pub fn parse_target(text: &str) -> Result<Url, RedirectError> {
    if text.chars().any(char::is_control) {
        return Err(RedirectError::ControlCharacter);
    }
    let url = Url::parse(text).map_err(|e| RedirectError::NotAUrl(e.to_string()))?;
    if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
        return Err(RedirectError::Scheme);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(RedirectError::UserInfo);
    }
    Ok(url)
}

/// One `redirect_allow` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowEntry {
    url: Url,
}

impl AllowEntry {
    /// Parses an entry: `scheme://host[:port][/path]`, without user info, query or
    /// fragment.
    ///
    /// # Errors
    /// What is wrong, for the configuration error.
    pub fn parse(text: &str) -> Result<AllowEntry, AllowEntryError> {
        let text_owned = || text.to_owned();
        let url = parse_target(text).map_err(|e| match e {
            RedirectError::NotAUrl(reason) => AllowEntryError::NotAUrl {
                text: text_owned(),
                reason,
            },
            reason => AllowEntryError::Refused {
                text: text_owned(),
                reason,
            },
        })?;
        if url.query().is_some() || url.fragment().is_some() {
            return Err(AllowEntryError::QueryOrFragment(text_owned()));
        }
        Ok(AllowEntry { url })
    }

    /// The entry as parsed.
    pub fn as_str(&self) -> &str {
        self.url.as_str()
    }

    /// Whether `target` (from [`parse_target`]) is this entry's origin, at or below its
    /// path.
    pub fn permits(&self, target: &Url) -> bool {
        let base = self.url.path().trim_end_matches('/');
        let path = target.path();
        target.scheme() == self.url.scheme()
            && target.host() == self.url.host()
            && target.port_or_known_default() == self.url.port_or_known_default()
            && target.username().is_empty()
            && target.password().is_none()
            && (path == base
                || path
                    .strip_prefix(base)
                    .is_some_and(|rest| rest.starts_with('/')))
    }
}

/// Parses `text` and checks it against the allow-list.
///
/// # Errors
/// [`RedirectError`]: unparsable, or permitted by no entry.
pub fn check(allow: &[AllowEntry], text: &str) -> Result<Url, RedirectError> {
    let target = parse_target(text)?;
    if allow.iter().any(|entry| entry.permits(&target)) {
        Ok(target)
    } else {
        Err(RedirectError::NotAllowed)
    }
}

/// `target` with `name=value` added to its query, before any `#fragment` (a fragment
/// never reaches the app's server).
pub fn with_param(target: &Url, name: &str, value: &str) -> String {
    let mut url = target.clone();
    url.query_pairs_mut().append_pair(name, value);
    url.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(entry: &str, target: &str) -> bool {
        check(&[AllowEntry::parse(entry).unwrap()], target).is_ok()
    }

    #[test]
    fn look_alike_hosts_and_userinfo_are_refused() {
        let entry = "https://app.example.com";
        for target in [
            "https://app.example.com.evil.net/",
            "https://app.example.com@evil.net/",
            "https://user:pw@app.example.com/",
            "https://app.example.com:8443/",
            "http://app.example.com/",
            "https://evil.net/https://app.example.com/",
            "https://evil.net\\@app.example.com/",
            "//app.example.com/",
            "javascript:alert(1)//app.example.com",
        ] {
            assert!(!allowed(entry, target), "{target} must be refused");
        }
        for target in [
            "https://app.example.com",
            "https://app.example.com/",
            "https://APP.example.com:443/x?y=1#z",
            "https://app.example.com/any/path",
        ] {
            assert!(allowed(entry, target), "{target} must be allowed");
        }
    }

    #[test]
    fn paths_match_at_a_segment_boundary() {
        for entry in ["https://a.com/app", "https://a.com/app/"] {
            assert!(allowed(entry, "https://a.com/app/x"), "{entry}");
            assert!(allowed(entry, "https://a.com/app/"), "{entry}");
            assert!(!allowed(entry, "https://a.com/apple"), "{entry}");
            assert!(!allowed(entry, "https://a.com/"), "{entry}");
            assert!(!allowed(entry, "https://a.com/app/../admin"), "{entry}");
            assert!(!allowed(entry, "https://a.com/app%2F..%2Fadmin"), "{entry}");
        }
        assert!(allowed("https://a.com/app", "https://a.com/app"));
        assert!(allowed("https://a.com/app", "https://a.com/app?x=1"));
    }

    #[test]
    fn control_characters_and_bad_entries_are_refused() {
        assert_eq!(
            check(
                &[AllowEntry::parse("https://a.com/").unwrap()],
                "https://a.com/\r\nSet-Cookie: x=1"
            ),
            Err(RedirectError::ControlCharacter)
        );
        for entry in [
            "app.example.com",
            "ftp://a.com/",
            "https://u@a.com/",
            "https://a.com/?x=1",
            "https://a.com/#f",
            "https://",
        ] {
            assert!(AllowEntry::parse(entry).is_err(), "{entry}");
        }
    }

    #[test]
    fn parameters_go_in_the_query_before_the_fragment() {
        let target = parse_target("https://a.com/app?x=1#/route").unwrap();
        assert_eq!(
            with_param(&target, "wxgate_identity", "v1.abc.def"),
            "https://a.com/app?x=1&wxgate_identity=v1.abc.def#/route"
        );
        let target = parse_target("https://a.com/#top").unwrap();
        assert_eq!(
            with_param(&target, "wxgate_error", "access_denied"),
            "https://a.com/?wxgate_error=access_denied#top"
        );
    }
}
