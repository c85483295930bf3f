//! The URLs a configuration names, read with the `url` crate (the browsers' parser).

use url::Url;

/// Why a URL in the configuration cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Not a URL at all, or a relative one.
    #[error("{text:?} is not an absolute URL ({reason})")]
    NotAbsolute {
        /// The text as written.
        text: String,
        /// What the parser found.
        reason: url::ParseError,
    },
    /// Another scheme than http or https.
    #[error("{text:?} is not http:// or https://")]
    NotHttp {
        /// The text as written.
        text: String,
    },
    /// A base URL with `user:password@`.
    #[error("{text:?} carries a user name or password")]
    UserInfo {
        /// The text as written.
        text: String,
    },
    /// A base URL with a query or a fragment.
    #[error("{text:?} has a ?query or #fragment")]
    QueryOrFragment {
        /// The text as written.
        text: String,
    },
}

/// Checks an absolute http(s) URL (which has a host), as the `url` crate, the
/// browsers' parser, reads it.
///
/// # Errors
/// What is wrong, quoting the text.
pub fn http_url(text: &str) -> Result<Url, UrlError> {
    let url = Url::parse(text).map_err(|reason| UrlError::NotAbsolute {
        text: text.to_owned(),
        reason,
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(UrlError::NotHttp {
            text: text.to_owned(),
        });
    }
    Ok(url)
}

/// Checks a base URL: [`http_url`] without user info, query or fragment.
///
/// # Errors
/// What is wrong, quoting the text.
pub fn base_url(text: &str) -> Result<Url, UrlError> {
    let url = http_url(text)?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlError::UserInfo {
            text: text.to_owned(),
        });
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(UrlError::QueryOrFragment {
            text: text.to_owned(),
        });
    }
    Ok(url)
}
