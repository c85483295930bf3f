//! The admin console's format rules for the server configuration (基本配置 → 服务器配置).
//!
//! Each check returns [`Finding`]s that say what is wrong and how to fix it; an empty
//! list means the value passes. Rules marked unconfirmed in the protocol reference
//! (port, `#`/`%`) are still enforced, because the console is known to reject them in
//! practice and a stricter local check costs nothing.

use crate::crypto::EncodingAesKey;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Works, but probably not what was meant (a private IP in a callback URL).
    Warning,
    /// The console (or WeChat) will reject it.
    Error,
}

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Error or warning.
    pub severity: Severity,
    /// Which setting: `url`, `token`, `encoding_aes_key`, `app_id`, `mode`.
    pub field: &'static str,
    /// What is wrong.
    pub problem: String,
    /// How to fix it.
    pub fix: String,
}

impl Finding {
    fn error(field: &'static str, problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Finding {
            severity: Severity::Error,
            field,
            problem: problem.into(),
            fix: fix.into(),
        }
    }

    fn warning(field: &'static str, problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Finding {
            severity: Severity::Warning,
            field,
            problem: problem.into(),
            fix: fix.into(),
        }
    }
}

/// Checks the server URL (服务器地址(URL)).
pub fn check_url(url: &str) -> Vec<Finding> {
    let mut findings = Vec::new();
    // The console's rule is on the text as typed (the parser would accept `HTTPS:/x`).
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        findings.push(Finding::error(
            "url",
            format!("{url:?} does not start with http:// or https://"),
            "write the full URL, e.g. https://example.com/wx/demo",
        ));
        return findings;
    }
    if url.contains('#') {
        findings.push(Finding::error(
            "url",
            "the URL contains '#'",
            "remove the fragment: WeChat rejects '#'",
        ));
    }
    if url.contains('%') {
        findings.push(Finding::error(
            "url",
            "the URL contains '%' (percent-encoding)",
            "use a path of plain letters, digits, '-', '_' and '/'",
        ));
    }
    if url.contains('?') {
        findings.push(Finding::error(
            "url",
            "the URL has a query string",
            "remove '?…': WeChat appends its own signature, timestamp and nonce parameters",
        ));
    }
    if let Some(ch) = url
        .chars()
        .find(|c| !c.is_ascii() || c.is_ascii_whitespace() || c.is_ascii_control())
    {
        findings.push(Finding::error(
            "url",
            format!("the URL contains {ch:?}"),
            "use ASCII only, with no spaces (an internationalised domain must be written in punycode)",
        ));
    }
    let parsed = match url::Url::parse(url) {
        Ok(parsed) => parsed,
        Err(url::ParseError::EmptyHost) => {
            findings.push(Finding::error(
                "url",
                "the URL has no host name",
                "write a public domain name",
            ));
            return findings;
        }
        Err(url::ParseError::InvalidPort) => {
            findings.push(Finding::error(
                "url",
                "invalid port (not a number from 1 to 65535)",
                "remove the port",
            ));
            return findings;
        }
        Err(e) => {
            findings.push(Finding::error(
                "url",
                format!("the URL cannot be parsed ({e})"),
                "write the full URL, e.g. https://example.com/wx/demo",
            ));
            return findings;
        }
    };
    // `port()` is `None` for the scheme's default port, written or not.
    if let Some(port) = parsed.port() {
        findings.push(Finding::error(
            "url",
            format!("port {port}: the console accepts only 80 (http) and 443 (https)"),
            "serve the callback on port 80 or 443, e.g. behind a reverse proxy",
        ));
    }
    let host = match parsed.host() {
        Some(url::Host::Domain(domain)) => domain.to_owned(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        None => String::new(),
    };
    findings.extend(check_host(&host));
    findings
}

fn check_host(host: &str) -> Vec<Finding> {
    let lower = host.to_ascii_lowercase();
    if lower == "localhost" || lower.ends_with(".localhost") {
        return vec![Finding::warning(
            "url",
            format!("{host} is this machine: WeChat's servers cannot reach it"),
            "use a public domain, or a tunnel during development (see README: reaching a local port)",
        )];
    }
    if let Ok(ip) = host.parse::<std::net::Ipv4Addr>() {
        let octets = ip.octets();
        let private = ip.is_private()
            || ip.is_loopback()
            || ip.is_link_local()
            || ip.is_unspecified()
            || (octets[0] == 100 && (64..128).contains(&octets[1]));
        return vec![if private {
            Finding::warning(
                "url",
                format!(
                    "{host} is a private, loopback or link-local address: WeChat cannot reach it"
                ),
                "use a public domain name that resolves to a public IP",
            )
        } else {
            Finding::warning(
                "url",
                format!("{host} is a bare IP address; the console often refuses IPs"),
                "use a domain name (with ICP filing (备案) when the server is in mainland China)",
            )
        }];
    }
    if host.parse::<std::net::Ipv6Addr>().is_ok() {
        return vec![Finding::warning(
            "url",
            format!("{host} is a bare IPv6 address; WeChat needs an IPv4-reachable domain name"),
            "use a domain name with an A record",
        )];
    }
    if !host.contains('.') {
        return vec![Finding::warning(
            "url",
            format!("{host} is not a fully qualified domain name"),
            "use a public domain name such as wx.example.com",
        )];
    }
    Vec::new()
}

/// Checks a Token (令牌): 3 to 32 letters and digits, case-sensitive.
pub fn check_token(token: &str) -> Vec<Finding> {
    let mut findings = Vec::new();
    if token.trim() != token {
        findings.push(Finding::error(
            "token",
            "the Token has leading or trailing whitespace",
            "remove it: the Token is hashed byte for byte, a stray space or newline breaks every signature",
        ));
    }
    let count = token.chars().count();
    if !(3..=32).contains(&count) {
        findings.push(Finding::error(
            "token",
            format!("the Token has {count} characters; it must have 3 to 32"),
            "use `wxgate init` to generate one, or pick 3–32 letters and digits",
        ));
    }
    if let Some(ch) = token.trim().chars().find(|c| !c.is_ascii_alphanumeric()) {
        findings.push(Finding::error(
            "token",
            format!("the Token contains {ch:?}; only letters and digits are allowed"),
            "use letters and digits only, and the same Token in the console and in wxgate.toml",
        ));
    }
    findings
}

/// Checks an EncodingAESKey (消息加解密密钥).
pub fn check_aes_key(key: &str) -> Vec<Finding> {
    match EncodingAesKey::parse(key) {
        Ok(_) => Vec::new(),
        Err(err) => vec![Finding::error(
            "encoding_aes_key",
            err.to_string(),
            "press 随机生成 in the console (or run `wxgate init`) and copy all 43 characters",
        )],
    }
}

/// Checks an AppID: `wx` followed by 16 lowercase hex digits.
pub fn check_app_id(app_id: &str) -> Vec<Finding> {
    let valid = |s: &str| {
        s.len() == 18
            && s.starts_with("wx")
            && s[2..]
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    if valid(app_id) {
        return Vec::new();
    }
    let problem = if valid(&app_id.to_ascii_lowercase()) {
        format!("AppID {app_id:?} has uppercase letters; AppIDs are lowercase")
    } else if app_id.trim() != app_id {
        format!("AppID {app_id:?} has surrounding whitespace")
    } else {
        format!("AppID {app_id:?} is not 'wx' followed by 16 hex digits")
    };
    vec![Finding::error(
        "app_id",
        problem,
        "copy the AppID (开发者ID) from 开发 → 基本配置; it is also the trailer of every encrypted message",
    )]
}

/// The WeCom CorpID (企业ID): `ww` (or, for older corps, `wx`) and 16 lowercase hex
/// digits. It closes every ciphertext of the corp's applications, as the AppID does
/// for an Official Account.
pub fn check_corp_id(corp_id: &str) -> Vec<Finding> {
    let valid = |s: &str| {
        s.len() == 18
            && (s.starts_with("ww") || s.starts_with("wx"))
            && s[2..]
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    if valid(corp_id) {
        return Vec::new();
    }
    let problem = if valid(&corp_id.to_ascii_lowercase()) {
        format!("CorpID {corp_id:?} has uppercase letters; CorpIDs are lowercase")
    } else if corp_id.trim() != corp_id {
        format!("CorpID {corp_id:?} has surrounding whitespace")
    } else {
        format!("CorpID {corp_id:?} is not 'ww' (or 'wx') followed by 16 hex digits")
    };
    vec![Finding::error(
        "corp_id",
        problem,
        "copy the CorpID (企业ID) from the WeCom admin console: 我的企业 → 企业信息",
    )]
}

/// The three message security modes (消息加解密方式).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// 明文模式: plain XML, no encryption.
    Plain,
    /// 兼容模式: plaintext fields and `Encrypt` side by side.
    Compat,
    /// 安全模式: only `Encrypt`; replies must be encrypted.
    Safe,
}

impl Mode {
    /// Parses `plain`, `compat` or `safe` (also `compatible`, `plaintext`).
    pub fn parse(text: &str) -> Option<Mode> {
        match text {
            "plain" | "plaintext" => Some(Mode::Plain),
            "compat" | "compatible" => Some(Mode::Compat),
            "safe" => Some(Mode::Safe),
            _ => None,
        }
    }

    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Plain => "plain",
            Mode::Compat => "compat",
            Mode::Safe => "safe",
        }
    }

    /// Whether this mode decrypts and encrypts.
    pub fn needs_key(self) -> bool {
        self != Mode::Plain
    }
}

/// Checks that the mode fits the presence of an EncodingAESKey.
pub fn check_mode(mode: Mode, has_key: bool) -> Vec<Finding> {
    if mode.needs_key() && !has_key {
        vec![Finding::error(
            "mode",
            format!("mode {:?} needs an EncodingAESKey", mode.as_str()),
            "set encoding_aes_key to the console's 43-character key, or use mode = \"plain\"",
        )]
    } else {
        Vec::new()
    }
}
