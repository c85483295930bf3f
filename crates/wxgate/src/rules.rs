//! Auto-reply rules from `[[account.rule]]`: a condition and a reply, tried in order,
//! first match wins.
//!
//! ```toml
//! [[account.rule]]
//! when = { msg_type = "text", keyword = "help" }   # all given conditions must hold
//! reply = { text = "You said {content}" }          # {content} {from} {to} {event_key}
//! ```
//! A rule without `when` (or with `when = {}`) matches everything: put it last as the
//! default.

mod lint;
pub(crate) use lint::did_you_mean;

pub use lint::{lint, RuleFinding};

use regex::Regex;
use serde::Deserialize;
use wxgate_proto::reply::{Article, Reply};
use wxgate_proto::Message;

/// A rule as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    #[serde(default)]
    when: RawWhen,
    reply: RawReply,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWhen {
    msg_type: Option<String>,
    keyword: Option<String>,
    contains: Option<String>,
    regex: Option<String>,
    event: Option<String>,
    event_key: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReply {
    text: Option<String>,
    image: Option<String>,
    voice: Option<String>,
    video: Option<RawVideo>,
    music: Option<RawMusic>,
    news: Option<Vec<RawArticle>>,
    transfer_customer_service: Option<RawTransfer>,
    success: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVideo {
    media_id: String,
    title: Option<String>,
    description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMusic {
    title: Option<String>,
    description: Option<String>,
    music_url: Option<String>,
    hq_music_url: Option<String>,
    thumb_media_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArticle {
    title: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    pic_url: String,
    #[serde(default)]
    url: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTransfer {
    kf_account: Option<String>,
}

/// A compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    when: When,
    action: Action,
}

#[derive(Debug, Clone, Default)]
struct When {
    msg_type: Option<String>,
    keyword: Option<String>,
    contains: Option<String>,
    regex: Option<Regex>,
    event: Option<String>,
    event_key: Option<String>,
}

#[derive(Debug, Clone)]
enum Action {
    /// Answer `success`: match, but send nothing.
    Success,
    /// A text reply with placeholders.
    Text(Template),
    /// Any other reply, sent as configured.
    Fixed(Reply),
}

/// What a rule decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Send this reply.
    Reply(Reply),
    /// A rule matched and asked for no reply.
    Success,
    /// No rule matched.
    NoMatch,
}

/// Why a rule in the configuration cannot be used; each says what to write instead.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    /// `when.regex` does not compile.
    #[error("when.regex {pattern:?} is not a valid regex: {reason}")]
    Regex {
        /// The pattern as written.
        pattern: String,
        /// What the regex crate found.
        reason: regex::Error,
    },
    /// `reply.text = ""`.
    #[error("reply.text is empty; use `reply = {{ success = true }}` to send nothing")]
    EmptyText,
    /// A `{name}` in the text that is not a placeholder.
    #[error("unknown placeholder {{{0}}} in reply.text; use {{content}}, {{from}}, {{to}}, {{event_key}}, {{event}}, {{msg_type}} or a capture group of when.regex ({{1}}, {{name}}) (write {{{{ for a literal brace)")]
    Placeholder(String),
    /// A `{1}` or `{name}` that the rule's regex does not capture.
    #[error("reply.text uses the capture group {{{group}}}, but {}", match regex { Some(pattern) => format!("when.regex {pattern:?} has no such group (its groups: {{0}} to {{{}}}{})", groups.0, groups.1), None => "the rule has no when.regex".to_owned() })]
    Group {
        /// The group as written.
        group: String,
        /// The rule's regex, if any.
        regex: Option<String>,
        /// The highest group number, and the names written as `, {a}, {b}`.
        groups: (usize, String),
    },
    /// Zero or several kinds of reply.
    #[error("reply must have exactly one of text, image, voice, video, music, news, transfer_customer_service, success = true (found {0})")]
    ReplyKinds(usize),
    /// A fixed reply WeChat would refuse.
    #[error("reply: {0}")]
    Reply(#[from] wxgate_proto::Error),
}

impl Rule {
    /// Compiles a rule; the error says what is wrong.
    ///
    /// # Errors
    /// A message for a bad regex, an unknown placeholder, or a reply with zero or
    /// several kinds.
    pub fn compile(raw: RawRule) -> Result<Rule, RuleError> {
        let regex = raw
            .when
            .regex
            .as_deref()
            .map(|pattern| {
                Regex::new(pattern).map_err(|reason| RuleError::Regex {
                    pattern: pattern.to_owned(),
                    reason,
                })
            })
            .transpose()?;
        let action = compile_reply(raw.reply, regex.as_ref())?;
        let when = When {
            msg_type: raw.when.msg_type.map(|t| t.to_ascii_lowercase()),
            keyword: raw.when.keyword.map(|k| k.trim().to_lowercase()),
            contains: raw.when.contains.map(|c| c.to_lowercase()),
            regex,
            event: raw.when.event.map(|e| e.to_ascii_lowercase()),
            event_key: raw.when.event_key,
        };
        Ok(Rule { when, action })
    }

    /// Whether the rule's conditions hold for `message`.
    pub fn matches(&self, message: &Message) -> bool {
        let when = &self.when;
        if let Some(msg_type) = &when.msg_type {
            if !message.msg_type.eq_ignore_ascii_case(msg_type) {
                return false;
            }
        }
        let content = message.content();
        if let Some(keyword) = &when.keyword {
            match content {
                Some(text) if text.trim().to_lowercase() == *keyword => {}
                _ => return false,
            }
        }
        if let Some(needle) = &when.contains {
            match content {
                Some(text) if text.to_lowercase().contains(needle.as_str()) => {}
                _ => return false,
            }
        }
        if let Some(regex) = &when.regex {
            match content.or_else(|| message.event_key()) {
                Some(text) if regex.is_match(text) => {}
                _ => return false,
            }
        }
        if let Some(event) = &when.event {
            match message.event() {
                Some(actual) if actual.eq_ignore_ascii_case(event) => {}
                _ => return false,
            }
        }
        if let Some(key) = &when.event_key {
            let actual = message.event_key().unwrap_or_default();
            // A subscribe through a QR code carries "qrscene_" + scene; match the scene too.
            if actual != key && actual.strip_prefix("qrscene_") != Some(key.as_str()) {
                return false;
            }
        }
        true
    }

    /// The `MsgType` of the reply this rule sends (`text` for a text template), or
    /// `None` for `success`.
    pub fn reply_type(&self) -> Option<&'static str> {
        match &self.action {
            Action::Success => None,
            Action::Text(_) => Some("text"),
            Action::Fixed(reply) => Some(reply.msg_type()),
        }
    }

    fn decide(&self, message: &Message) -> Decision {
        match &self.action {
            Action::Success => Decision::Success,
            Action::Fixed(reply) => Decision::Reply(reply.clone()),
            Action::Text(template) => {
                let captures = self
                    .when
                    .regex
                    .as_ref()
                    .filter(|_| template.uses_groups())
                    .and_then(|regex| {
                        regex.captures(message.content().or_else(|| message.event_key())?)
                    });
                let content = template.render(message, captures.as_ref());
                // Nothing a reply can carry (an echo of only control characters): send nothing.
                if wxgate_proto::xml::xml_chars(&content).is_empty() {
                    Decision::Success
                } else {
                    Decision::Reply(Reply::Text { content })
                }
            }
        }
    }
}

/// Runs the rules in order; the first that matches decides.
pub fn decide(rules: &[Rule], message: &Message) -> Decision {
    rules
        .iter()
        .find(|rule| rule.matches(message))
        .map_or(Decision::NoMatch, |rule| rule.decide(message))
}

/// [`decide`] for the account `account`, logging at debug level which rule matched
/// (its index in the account's `[[account.rule]]` list).
pub fn decide_logged(account: &str, rules: &[Rule], message: &Message) -> Decision {
    match rules.iter().position(|rule| rule.matches(message)) {
        Some(index) => {
            tracing::debug!(
                account,
                rule = index,
                "rule[{index}] of account {account} matched"
            );
            rules[index].decide(message)
        }
        None => {
            tracing::debug!(account, "no rule matched");
            Decision::NoMatch
        }
    }
}

fn compile_reply(raw: RawReply, regex: Option<&Regex>) -> Result<Action, RuleError> {
    let mut actions = Vec::new();
    if let Some(text) = raw.text {
        if text.is_empty() {
            return Err(RuleError::EmptyText);
        }
        actions.push(Action::Text(Template::parse(&text, regex)?));
    }
    if let Some(media_id) = raw.image {
        actions.push(Action::Fixed(Reply::Image { media_id }));
    }
    if let Some(media_id) = raw.voice {
        actions.push(Action::Fixed(Reply::Voice { media_id }));
    }
    if let Some(video) = raw.video {
        actions.push(Action::Fixed(Reply::Video {
            media_id: video.media_id,
            title: video.title,
            description: video.description,
        }));
    }
    if let Some(music) = raw.music {
        actions.push(Action::Fixed(Reply::Music {
            title: music.title,
            description: music.description,
            music_url: music.music_url,
            hq_music_url: music.hq_music_url,
            thumb_media_id: music.thumb_media_id,
        }));
    }
    if let Some(articles) = raw.news {
        actions.push(Action::Fixed(Reply::News {
            articles: articles
                .into_iter()
                .map(|a| Article {
                    title: a.title,
                    description: a.description,
                    pic_url: a.pic_url,
                    url: a.url,
                })
                .collect(),
        }));
    }
    if let Some(transfer) = raw.transfer_customer_service {
        actions.push(Action::Fixed(Reply::TransferCustomerService {
            kf_account: transfer.kf_account,
        }));
    }
    if raw.success == Some(true) {
        actions.push(Action::Success);
    }
    if actions.len() != 1 {
        return Err(RuleError::ReplyKinds(actions.len()));
    }
    let action = actions.pop().expect("one action");
    if let Action::Fixed(reply) = &action {
        reply.validate()?;
    }
    Ok(action)
}

/// A text with `{content}`, `{from}`, `{to}`, `{event_key}`, `{event}`, `{msg_type}`
/// placeholders and the capture groups of the rule's regex (`{1}`, `{name}`); `{{` and
/// `}}` are literal braces.
#[derive(Debug, Clone)]
struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone)]
enum Part {
    Literal(String),
    Content,
    From,
    To,
    EventKey,
    Event,
    MsgType,
    /// A capture group of the rule's regex, by number.
    Group(usize),
}

impl Template {
    fn parse(text: &str, regex: Option<&Regex>) -> Result<Template, RuleError> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let name: String = chars.by_ref().take_while(|&c| c != '}').collect();
                    let part = match name.as_str() {
                        "content" => Part::Content,
                        "from" => Part::From,
                        "to" => Part::To,
                        "event_key" => Part::EventKey,
                        "event" => Part::Event,
                        "msg_type" => Part::MsgType,
                        other => Part::Group(group(other, regex)?),
                    };
                    if !literal.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut literal)));
                    }
                    parts.push(part);
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(Template { parts })
    }

    fn uses_groups(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Group(_)))
    }

    fn render(&self, message: &Message, captures: Option<&regex::Captures<'_>>) -> String {
        let mut out = String::new();
        for part in &self.parts {
            out.push_str(match part {
                Part::Literal(text) => text,
                Part::Content => message.content().unwrap_or_default(),
                Part::From => &message.from_user_name,
                Part::To => &message.to_user_name,
                Part::EventKey => message.event_key().unwrap_or_default(),
                Part::Event => message.event().unwrap_or_default(),
                Part::MsgType => &message.msg_type,
                Part::Group(index) => captures
                    .and_then(|c| c.get(*index))
                    .map_or("", |m| m.as_str()),
            });
        }
        out
    }
}

/// The number of the capture group `name` (a number or a group's name) of `regex`.
///
/// # Errors
/// `name` is neither a group of `regex` nor a number: an unknown placeholder.
fn group(name: &str, regex: Option<&Regex>) -> Result<usize, RuleError> {
    let numbered = name.parse::<usize>().ok();
    let named = !name.is_empty() && name.chars().all(|c| c.is_alphanumeric() || c == '_');
    if numbered.is_none() && !named {
        return Err(RuleError::Placeholder(name.to_owned()));
    }
    let found = regex.and_then(|regex| match numbered {
        Some(index) => (index < regex.captures_len()).then_some(index),
        None => regex.capture_names().position(|n| n == Some(name)),
    });
    match (found, regex) {
        (Some(index), _) => Ok(index),
        (None, _) if numbered.is_none() => Err(RuleError::Placeholder(name.to_owned())),
        (None, regex) => Err(RuleError::Group {
            group: name.to_owned(),
            regex: regex.map(|r| r.as_str().to_owned()),
            groups: regex.map_or((0, String::new()), |r| {
                let names: String = r
                    .capture_names()
                    .flatten()
                    .map(|n| format!(", {{{n}}}"))
                    .collect();
                (r.captures_len() - 1, names)
            }),
        }),
    }
}

#[cfg(test)]
mod tests;
