//! `[[account.link]]` (a mini-program page that `GET /go/{account}/{link}` opens) and
//! `[links]` (how long a generated link lives, when it is renewed, the daily cap).
//!
//! WeChat's rules (generateScheme, generateUrlLink): a generated link lives at most 30
//! days; schemes and URL Links together are capped at 500,000 generations a day per
//! mini-program; the page is a published page without a query; the query is at most
//! 512 characters (the plain scheme's bound) of `[0-9A-Za-z!#$&'()*+,/:;=?@-._~%]`.

use toml::Spanned;

use wxgate_proto::console::Severity;

use super::raw::{RawLink, RawLinks};
use super::validate::Validator;
use super::AccountKind;

/// The longest a generated link lives (WeChat: 30 days).
pub const MAX_TTL_S: u64 = 30 * 86_400;
/// The characters WeChat accepts in a link's query (and in a scheme's `cq`).
pub const QUERY_CHARS: &str = "!#$&'()*+,/:;=?@-._~%";
/// The longest query, characters (the plain scheme's bound; generated links take 1024).
pub const MAX_QUERY: usize = 512;
/// The longest link name (it is a URL path segment).
pub const MAX_NAME: usize = 32;

/// Whether `c` is one of the characters WeChat accepts in a query or `cq`.
pub fn query_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || QUERY_CHARS.contains(c)
}

/// What a mobile visitor outside WeChat is sent to first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefer {
    /// The URL Link (`https://wxaurl.cn/…`): a 302.
    UrlLink,
    /// The encrypted scheme (`weixin://dl/business/?t=…`), then the URL Link.
    Scheme,
    /// The plain scheme (`weixin://dl/business/?appid=…`), then the URL Link.
    PlainScheme,
}

/// One `[[account.link]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkConfig {
    /// The path segment of `/go/{account}/{name}`.
    pub name: String,
    /// The mini-program page, e.g. `pages/sale/index`.
    pub path: String,
    /// The fixed query the page receives.
    pub query: String,
    /// `release`, `trial` or `develop`.
    pub env_version: String,
    /// What a mobile browser gets first.
    pub prefer: Prefer,
    /// Past the daily cap (or WeChat's quota), send visitors to the plain scheme (the
    /// page must be declared in the console: 设置 → 隐私与安全 → 明文 scheme 拉起此小程序).
    pub plain_fallback: bool,
    /// Also show the mini-program code (`getwxacodeunlimit`, its `scene` the link's
    /// name, which the page reads from `query.scene`) on the desktop page.
    pub mini_program_code: bool,
}

/// `[links]`: shared by every link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinksConfig {
    /// How long a generated link lives, seconds (default and most: 30 days).
    pub ttl_s: u64,
    /// A link is renewed when less than this is left, seconds (default 1 day).
    pub renew_before_s: u64,
    /// Generations allowed per mini-program and day (UTC+8), schemes and URL Links
    /// together (default 100,000 of WeChat's 500,000, which the owner's other systems
    /// share); a warning at 80 %.
    pub daily_cap: u64,
}

impl Default for LinksConfig {
    fn default() -> Self {
        LinksConfig {
            ttl_s: MAX_TTL_S,
            renew_before_s: 86_400,
            daily_cap: 100_000,
        }
    }
}

impl Validator<'_> {
    /// `[links]`.
    pub(super) fn links_section(&mut self, raw: RawLinks) -> LinksConfig {
        let d = LinksConfig::default();
        let ttl_s = self.bounded(raw.ttl_s, "links.ttl_s", d.ttl_s, 61..=MAX_TTL_S);
        let renew_span = raw.renew_before_s.as_ref().map(Spanned::span);
        let renew_before_s = self.bounded(
            raw.renew_before_s,
            "links.renew_before_s",
            d.renew_before_s.min(ttl_s / 2),
            0..=MAX_TTL_S,
        );
        if renew_before_s >= ttl_s {
            self.error(
                renew_span,
                "links.renew_before_s".into(),
                format!("renew_before_s ({renew_before_s}) must be less than ttl_s ({ttl_s}), or every visit renews the link"),
            );
        }
        let daily_cap = self.bounded(raw.daily_cap, "links.daily_cap", d.daily_cap, 1..=500_000);
        LinksConfig {
            ttl_s,
            renew_before_s,
            daily_cap,
        }
    }

    /// Every `[[account.link]]` of account `index`, each name once.
    pub(super) fn links(
        &mut self,
        index: usize,
        kind: AccountKind,
        raw: Vec<Spanned<RawLink>>,
    ) -> Vec<LinkConfig> {
        let mut links: Vec<LinkConfig> = Vec::new();
        for (i, link) in raw.into_iter().enumerate() {
            let span = Some(link.span());
            let key = |field: &str| format!("account[{index}].link[{i}].{field}");
            if kind != AccountKind::MiniProgram {
                let problem = "[[account.link]] opens a mini-program page: it belongs on an account with kind = \"miniprogram\"";
                self.error(span, key("name"), problem);
                continue;
            }
            let link = link.into_inner();
            let errors = self.error_count();
            let name = link.name.get_ref();
            let name_ok = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
            if name.is_empty() || name.len() > MAX_NAME || !name.chars().all(name_ok) {
                let problem = format!("{name:?}: the name is the path /go/{{account}}/{{name}}; use 1 to {MAX_NAME} letters, digits, '-' and '_'");
                self.error(Some(link.name.span()), key("name"), problem);
            } else if links.iter().any(|l| &l.name == name) {
                let problem = format!("link {name:?} is configured twice on this account");
                self.error(Some(link.name.span()), key("name"), problem);
            }
            self.link_path(&link.path, key("path"));
            let query = link
                .query
                .as_ref()
                .map(|q| q.get_ref().clone())
                .unwrap_or_default();
            if query.chars().count() > MAX_QUERY || !query.chars().all(query_char) {
                let problem = format!("the query has at most {MAX_QUERY} characters of letters, digits and {QUERY_CHARS} (encode the rest)");
                self.error(
                    link.query.as_ref().map(Spanned::span),
                    key("query"),
                    problem,
                );
            }
            let env_version = self.one_of(
                link.env_version.as_ref(),
                &key("env_version"),
                &["release", "trial", "develop"],
            );
            let prefer = match self
                .one_of(
                    link.prefer.as_ref(),
                    &key("prefer"),
                    &["urllink", "scheme", "plain_scheme"],
                )
                .as_str()
            {
                "scheme" => Prefer::Scheme,
                "plain_scheme" => Prefer::PlainScheme,
                _ => Prefer::UrlLink,
            };
            let plain_fallback = link.plain_fallback.unwrap_or(false);
            if self.error_count() == errors && (plain_fallback || prefer == Prefer::PlainScheme) {
                self.push(
                    Severity::Warning,
                    Some(link.path.span()),
                    key("path"),
                    format!("link {name:?} may send visitors to the plain scheme, which opens only pages declared in the console"),
                    format!("declare {:?} under 设置 → 隐私与安全 → 明文 scheme 拉起此小程序", link.path.get_ref()),
                );
            }
            if self.error_count() == errors {
                links.push(LinkConfig {
                    name: name.clone(),
                    path: link.path.into_inner(),
                    query,
                    env_version,
                    prefer,
                    plain_fallback,
                    mini_program_code: link.mini_program_code.unwrap_or(false),
                });
            }
        }
        links
    }

    fn link_path(&mut self, path: &Spanned<String>, key: String) {
        let text = path.get_ref();
        let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '/' | '.');
        let problem = if text.is_empty() || text.len() > 256 {
            Some("the page has 1 to 256 characters, e.g. \"pages/index/index\"")
        } else if text.starts_with('/') {
            Some("the page has no leading '/' (WeChat's form: \"pages/index/index\")")
        } else if text.contains('?') {
            Some("the page carries no query: put it in `query`")
        } else if !text.chars().all(ok) {
            Some("the page has letters, digits, '-', '_', '.' and '/' only")
        } else {
            None
        };
        if let Some(problem) = problem {
            self.error(Some(path.span()), key, problem);
        }
    }

    /// The value of `field` if it is one of `allowed`, else an error and the first.
    fn one_of(&mut self, field: Option<&Spanned<String>>, key: &str, allowed: &[&str]) -> String {
        let Some(field) = field else {
            return allowed[0].to_owned();
        };
        if !allowed.contains(&field.get_ref().as_str()) {
            let problem = format!("{:?}: use one of {}", field.get_ref(), allowed.join(", "));
            self.error(Some(field.span()), key.to_owned(), problem);
        }
        field.get_ref().clone()
    }
}
