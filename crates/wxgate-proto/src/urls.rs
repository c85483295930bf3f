//! URL builders: OAuth2 authorization (网页授权), website QR login (qrconnect), the
//! QR-code picture URL and the plain-text mini-program URL scheme.
//!
//! Parameter order, encoding and the `#wechat_redirect` suffix are exactly what WeChat
//! documents. Values are percent-encoded once, escaping everything except
//! `A–Z a–z 0–9 _ . - ~` (Python's `quote(safe='')`, which the test vectors follow).

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::Error;

/// Everything but unreserved characters is escaped.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'_')
    .remove(b'.')
    .remove(b'-')
    .remove(b'~');

/// Percent-encodes one query component (`quote(value, safe='')`).
pub fn encode_component(value: &str) -> String {
    utf8_percent_encode(value, COMPONENT).to_string()
}

/// OAuth2 scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Silent, OpenID only.
    SnsapiBase,
    /// Consent page; user info.
    SnsapiUserinfo,
    /// Website QR login.
    SnsapiLogin,
}

impl Scope {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::SnsapiBase => "snsapi_base",
            Scope::SnsapiUserinfo => "snsapi_userinfo",
            Scope::SnsapiLogin => "snsapi_login",
        }
    }

    /// Parses the wire spelling.
    pub fn parse(text: &str) -> Option<Scope> {
        match text {
            "snsapi_base" => Some(Scope::SnsapiBase),
            "snsapi_userinfo" => Some(Scope::SnsapiUserinfo),
            "snsapi_login" => Some(Scope::SnsapiLogin),
            _ => None,
        }
    }
}

/// Checks a redirect_uri: absolute http(s) with a host and no fragment, as the `url`
/// crate (the WHATWG parser browsers use) reads it.
///
/// # Errors
/// [`Error::InvalidInput`] naming the problem.
pub fn check_redirect_uri(uri: &str) -> Result<(), Error> {
    let invalid = |reason: &str| Error::InvalidInput {
        field: "redirect_uri",
        reason: reason.to_owned(),
    };
    // Checked on the text: the URL parser would silently drop a newline or a tab.
    if uri.chars().any(char::is_control) {
        return Err(invalid(
            "contains control characters (a newline pasted with the URL?)",
        ));
    }
    if let Some(reason) = encoded_as_a_whole(uri) {
        return Err(invalid(&reason));
    }
    let url = match url::Url::parse(uri) {
        Ok(url) => url,
        Err(url::ParseError::EmptyHost) => return Err(invalid("has no host")),
        Err(url::ParseError::RelativeUrlWithoutBase) => {
            return Err(invalid("must be an absolute http:// or https:// URL"))
        }
        Err(e) => return Err(invalid(&format!("is not a valid URL ({e})"))),
    };
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("must be an absolute http:// or https:// URL"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("has no host"));
    }
    if url.fragment().is_some() {
        return Err(invalid(
            "must not contain '#': WeChat appends ?code=…&state=… to it",
        ));
    }
    if let Some(reason) = encoded_delimiter_in_path(&url, uri) {
        return Err(invalid(&reason));
    }
    Ok(())
}

/// The URL with every `%xx` decoded once: what the user most likely meant to pass.
fn decoded_once(uri: &str) -> String {
    percent_encoding::percent_decode_str(uri)
        .decode_utf8_lossy()
        .into_owned()
}

/// A redirect_uri that was encoded as a whole (`https%3A%2F%2F…`): encoding it again
/// would send WeChat a URL it cannot redirect to.
fn encoded_as_a_whole(uri: &str) -> Option<String> {
    let lower = uri.get(..8).unwrap_or(uri).to_ascii_lowercase();
    (lower.starts_with("http%3a") || lower.starts_with("https%3a")).then(|| {
        format!(
            "is percent-encoded already (it starts with {}); pass it unencoded, as {} \
             (it is encoded once here)",
            &uri[..uri.find("%3").map_or(0, |i| i + 3)],
            decoded_once(uri)
        )
    })
}

/// A redirect_uri whose path holds an encoded `?`, `=`, `&` or `#`: the query was
/// encoded before it was passed, and encoding the whole URI again would double-encode
/// it (WeChat would send the user to a path named `cb?a=1`). Encoded text in the query
/// itself (`?next=%2Fhome`) is legitimate and kept.
fn encoded_delimiter_in_path(url: &url::Url, uri: &str) -> Option<String> {
    let path = url.path().to_ascii_uppercase();
    let found = ["%3F", "%3D", "%26", "%23"]
        .into_iter()
        .find(|code| path.contains(code))?;
    Some(format!(
        "its path holds {found}, an encoded delimiter: the URI was percent-encoded already \
         and would be encoded twice; pass it unencoded, as {} (it is encoded once here)",
        decoded_once(uri)
    ))
}

/// Checks a `state`: letters and digits, at most 128 bytes.
///
/// # Errors
/// [`Error::InvalidInput`] naming the problem.
pub fn check_state(state: &str) -> Result<(), Error> {
    if state.len() > 128 {
        return Err(Error::InvalidInput {
            field: "state",
            reason: format!("{} bytes; WeChat allows at most 128", state.len()),
        });
    }
    if let Some(ch) = state.chars().find(|c| !c.is_ascii_alphanumeric()) {
        return Err(Error::InvalidInput {
            field: "state",
            reason: format!("contains {ch:?}; WeChat allows letters and digits only"),
        });
    }
    Ok(())
}

fn connect_url(
    base: &str,
    app_id: &str,
    redirect_uri: &str,
    scope: Scope,
    state: &str,
) -> Result<String, Error> {
    check_redirect_uri(redirect_uri)?;
    check_state(state)?;
    Ok(format!(
        "{base}?appid={app_id}&redirect_uri={}&response_type=code&scope={}&state={state}#wechat_redirect",
        encode_component(redirect_uri),
        scope.as_str()
    ))
}

/// The host of WeChat's authorization pages.
pub const OPEN_BASE: &str = "https://open.weixin.qq.com";

/// `https://open.weixin.qq.com/connect/oauth2/authorize?…#wechat_redirect` (inside WeChat).
///
/// # Errors
/// [`Error::InvalidInput`] for a bad redirect_uri, state, or the `snsapi_login` scope
/// (which belongs to [`qrconnect_url`]).
pub fn oauth_authorize_url(
    app_id: &str,
    redirect_uri: &str,
    scope: Scope,
    state: &str,
) -> Result<String, Error> {
    oauth_authorize_url_at(OPEN_BASE, app_id, redirect_uri, scope, state)
}

/// [`oauth_authorize_url`] on another host (an emulator in tests).
///
/// # Errors
/// As [`oauth_authorize_url`].
pub fn oauth_authorize_url_at(
    base: &str,
    app_id: &str,
    redirect_uri: &str,
    scope: Scope,
    state: &str,
) -> Result<String, Error> {
    if scope == Scope::SnsapiLogin {
        return Err(Error::InvalidInput {
            field: "scope",
            reason: "snsapi_login is for website QR login (qrconnect), use snsapi_base or snsapi_userinfo".to_owned(),
        });
    }
    connect_url(
        &format!("{base}/connect/oauth2/authorize"),
        app_id,
        redirect_uri,
        scope,
        state,
    )
}

/// The host of a third-party platform's authorization page.
pub const MP_BASE: &str = "https://mp.weixin.qq.com";

/// A third-party platform's authorization page on a computer:
/// `{base}/cgi-bin/componentloginpage?component_appid=…&pre_auth_code=…&redirect_uri=…&auth_type=3`
/// (`auth_type` 3: Official Accounts and mini-programs alike). WeChat shows it only
/// when it is opened from a page on the platform's 发起页域名, and sends the merchant
/// back to `redirect_uri` with `auth_code` and `expires_in` appended.
///
/// # Errors
/// [`Error::InvalidInput`] for a bad redirect_uri.
pub fn component_login_url(
    base: &str,
    component_app_id: &str,
    pre_auth_code: &str,
    redirect_uri: &str,
) -> Result<String, Error> {
    check_redirect_uri(redirect_uri)?;
    Ok(format!(
        "{base}/cgi-bin/componentloginpage?component_appid={component_app_id}&pre_auth_code={}&redirect_uri={}&auth_type=3",
        encode_component(pre_auth_code),
        encode_component(redirect_uri)
    ))
}

/// `https://open.weixin.qq.com/connect/qrconnect?…&scope=snsapi_login…` (website login,
/// with the website app's AppID).
///
/// # Errors
/// [`Error::InvalidInput`] for a bad redirect_uri or state.
pub fn qrconnect_url(app_id: &str, redirect_uri: &str, state: &str) -> Result<String, Error> {
    connect_url(
        &format!("{OPEN_BASE}/connect/qrconnect"),
        app_id,
        redirect_uri,
        Scope::SnsapiLogin,
        state,
    )
}

/// The picture of a QR code ticket; the ticket must be URL-encoded (a raw one gives 404).
pub fn showqrcode_url(ticket: &str) -> String {
    format!(
        "https://mp.weixin.qq.com/cgi-bin/showqrcode?ticket={}",
        encode_component(ticket)
    )
}

/// Mini-program version a scheme opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvVersion {
    /// Published version.
    Release,
    /// Trial version.
    Trial,
    /// Development version.
    Develop,
}

impl EnvVersion {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            EnvVersion::Release => "release",
            EnvVersion::Trial => "trial",
            EnvVersion::Develop => "develop",
        }
    }

    /// Parses the wire spelling.
    pub fn parse(text: &str) -> Option<EnvVersion> {
        match text {
            "release" => Some(EnvVersion::Release),
            "trial" => Some(EnvVersion::Trial),
            "develop" => Some(EnvVersion::Develop),
            _ => None,
        }
    }
}

/// The plain-text scheme `weixin://dl/business/?appid=…&path=…[&query=…][&env_version=…]`.
/// The path must be declared in the mini-program console (明文Scheme拉起此小程序).
///
/// # Errors
/// [`Error::InvalidInput`] for an empty path, a path with a leading `/` or a query, or a
/// query over 512 characters.
pub fn scheme_url(
    app_id: &str,
    path: &str,
    query: Option<&str>,
    env_version: Option<EnvVersion>,
) -> Result<String, Error> {
    let invalid = |field: &'static str, reason: &str| {
        Err(Error::InvalidInput {
            field,
            reason: reason.to_owned(),
        })
    };
    if path.is_empty() {
        return invalid(
            "path",
            "is empty; give the page path, e.g. pages/index/index",
        );
    }
    if path.starts_with('/') {
        return invalid("path", "must not start with '/' (write pages/index/index)");
    }
    if path.contains('?') {
        return invalid("path", "must not contain a query; pass it with --query");
    }
    if let Some(ch) = path
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "_-./".contains(*c)))
    {
        return Err(Error::InvalidInput {
            field: "path",
            reason: format!(
                "contains {ch:?}; a page path has letters, digits, '_', '-', '.' and '/' only"
            ),
        });
    }
    let mut url = format!("weixin://dl/business/?appid={app_id}&path={path}");
    if let Some(query) = query.filter(|q| !q.is_empty()) {
        if query.chars().count() > 512 {
            return invalid("query", "is longer than 512 characters");
        }
        url.push_str("&query=");
        url.push_str(&encode_component(query));
    }
    if let Some(env) = env_version {
        url.push_str("&env_version=");
        url.push_str(env.as_str());
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_are_parsed_not_pattern_matched() {
        assert!(check_redirect_uri("https://wx.example.com/oauth/cb?to=x").is_ok());
        assert!(check_redirect_uri("https://wx.example.com/cb?src=pc&r=%2Fhome%3Fa%3D1").is_ok());
        assert!(
            check_redirect_uri("https://wx.example.com/%E8%AE%A2%E5%8D%95?q=%E4%B8%AD").is_ok()
        );
        for (uri, needle) in [
            ("/relative", "absolute"),
            ("wx.example.com/cb", "absolute"),
            ("ftp://wx.example.com/", "absolute"),
            ("https://", "no host"),
            ("https://wx.example.com/cb#x", "'#'"),
            ("https://wx.example.com/cb#", "'#'"),
            ("https://wx.example.com/c\nb", "control"),
            ("https://wx.example.com:99999/", "valid URL"),
            (
                "https://m.example.com/cb%3Fa%3D1",
                "https://m.example.com/cb?a=1",
            ),
            ("https%3A%2F%2Fm.example.com%2Fcb", "encoded already"),
            (
                "HTTPS%3a%2f%2fm.example.com%2fcb",
                "HTTPS://m.example.com/cb",
            ),
        ] {
            let err = check_redirect_uri(uri).unwrap_err().to_string();
            assert!(err.contains(needle), "{uri:?}: {err}");
        }
    }
}
