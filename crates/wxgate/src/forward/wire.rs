//! What goes over the wire to the owner's service and back: the JSON form of a
//! message, the HMAC signature of a delivery, and the service's `{"reply": {...}}`
//! ([`ServiceReply`]), which is also the form stored with the inbox record.

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use sha2::Sha256;
use wxgate_proto::reply::{Article, Reply};
use wxgate_proto::xml::Element;
use wxgate_proto::Message;

use crate::inbox::Record;

/// `ToUserName` → `to_user_name`, `MsgID` → `msg_id`, `Location_X` → `location_x`.
pub fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev = i.checked_sub(1).map(|j| chars[j]);
            let next = chars.get(i + 1).copied();
            let boundary = match prev {
                Some(p) if p.is_ascii_lowercase() || p.is_ascii_digit() => true,
                Some(p) if p.is_ascii_uppercase() => next.is_some_and(|n| n.is_ascii_lowercase()),
                _ => false,
            };
            if boundary && !out.ends_with('_') {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn element_json(element: &Element) -> Value {
    if element.array {
        return Value::Array(element.children.iter().map(element_json).collect());
    }
    if element.children.is_empty() {
        return Value::String(element.text.clone());
    }
    let mut map = Map::new();
    for child in &element.children {
        let key = snake_case(&child.name);
        let value = element_json(child);
        match map.get_mut(&key) {
            Some(Value::Array(items)) => items.push(value),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, value]);
            }
            None => {
                map.insert(key, value);
            }
        }
    }
    Value::Object(map)
}

/// A message as the service receives it: every field of the XML, snake_case, with its
/// text exactly as WeChat sent it (numbers too, so a 64-bit `msg_id` stays exact).
/// A JSON push gives the same shape: its numbers, `true`, `false` and `null` become
/// text as written (`null` empty), its objects objects, and its arrays arrays (an
/// XML list, a repeated element, becomes an array from its second item on).
pub fn message_json(message: &Message) -> Value {
    element_json(&message.raw)
}

/// `sha256=` + hex HMAC-SHA256 of `timestamp + "." + body`.
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Why the service's answer carries no usable reply.
#[derive(Debug, thiserror::Error)]
pub enum ReplyError {
    /// The answer is neither empty, `success`, nor JSON.
    #[error("the answer is not JSON ({0})")]
    NotJson(serde_json::Error),
    /// `reply` is not one of the replies wxgate knows, or lacks a field.
    #[error("reply: {0}")]
    Shape(serde_json::Error),
    /// The reply is one wxgate knows, but WeChat would refuse it.
    #[error("{0}")]
    Invalid(wxgate_proto::Error),
    /// A reply of a kind that has no JSON form here (a newer kind of the protocol crate).
    #[error("a {0} reply has no JSON form in wxgate's service protocol")]
    NoJsonForm(&'static str),
}

/// The service's reply, as it sends it in `{"reply": {...}}` and as the inbox record
/// stores it: `{"type": "text", "content": "…"}` and so on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServiceReply {
    /// `{"type": "text", "content"}`.
    Text {
        /// The text.
        content: String,
    },
    /// `{"type": "image", "media_id"}`.
    Image {
        /// Media id.
        media_id: String,
    },
    /// `{"type": "voice", "media_id"}`.
    Voice {
        /// Media id.
        media_id: String,
    },
    /// `{"type": "video", "media_id", "title"?, "description"?}`.
    Video {
        /// Media id.
        media_id: String,
        /// Title.
        title: Option<String>,
        /// Description.
        description: Option<String>,
    },
    /// `{"type": "music", "thumb_media_id", "title"?, "description"?, "music_url"?,
    /// "hq_music_url"?}`.
    Music {
        /// Title.
        title: Option<String>,
        /// Description.
        description: Option<String>,
        /// Music URL.
        music_url: Option<String>,
        /// High-quality music URL.
        hq_music_url: Option<String>,
        /// Thumbnail media id.
        thumb_media_id: String,
    },
    /// `{"type": "news", "articles": [{"title", "description", "pic_url", "url"}]}`;
    /// a missing or null article field is empty.
    News {
        /// The articles.
        articles: Vec<ServiceArticle>,
    },
    /// `{"type": "transfer_customer_service", "kf_account"?}`.
    TransferCustomerService {
        /// A specific agent.
        kf_account: Option<String>,
    },
}

/// One article of a news reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceArticle {
    /// Title.
    #[serde(default, deserialize_with = "text_or_empty")]
    pub title: String,
    /// Description.
    #[serde(default, deserialize_with = "text_or_empty")]
    pub description: String,
    /// Picture URL.
    #[serde(default, deserialize_with = "text_or_empty")]
    pub pic_url: String,
    /// Link.
    #[serde(default, deserialize_with = "text_or_empty")]
    pub url: String,
}

/// A string, with `null` read as empty.
fn text_or_empty<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(deserializer)?.unwrap_or_default())
}

impl From<ServiceReply> for Reply {
    fn from(reply: ServiceReply) -> Reply {
        match reply {
            ServiceReply::Text { content } => Reply::Text { content },
            ServiceReply::Image { media_id } => Reply::Image { media_id },
            ServiceReply::Voice { media_id } => Reply::Voice { media_id },
            ServiceReply::Video {
                media_id,
                title,
                description,
            } => Reply::Video {
                media_id,
                title,
                description,
            },
            ServiceReply::Music {
                title,
                description,
                music_url,
                hq_music_url,
                thumb_media_id,
            } => Reply::Music {
                title,
                description,
                music_url,
                hq_music_url,
                thumb_media_id,
            },
            ServiceReply::News { articles } => Reply::News {
                articles: articles
                    .into_iter()
                    .map(|a| Article {
                        title: a.title,
                        description: a.description,
                        pic_url: a.pic_url,
                        url: a.url,
                    })
                    .collect(),
            },
            ServiceReply::TransferCustomerService { kf_account } => {
                Reply::TransferCustomerService { kf_account }
            }
        }
    }
}

impl TryFrom<&Reply> for ServiceReply {
    type Error = ReplyError;

    fn try_from(reply: &Reply) -> Result<ServiceReply, ReplyError> {
        let reply = reply.clone();
        Ok(match reply {
            Reply::Text { content } => ServiceReply::Text { content },
            Reply::Image { media_id } => ServiceReply::Image { media_id },
            Reply::Voice { media_id } => ServiceReply::Voice { media_id },
            Reply::Video {
                media_id,
                title,
                description,
            } => ServiceReply::Video {
                media_id,
                title,
                description,
            },
            Reply::Music {
                title,
                description,
                music_url,
                hq_music_url,
                thumb_media_id,
            } => ServiceReply::Music {
                title,
                description,
                music_url,
                hq_music_url,
                thumb_media_id,
            },
            Reply::News { articles } => ServiceReply::News {
                articles: articles
                    .into_iter()
                    .map(|a| ServiceArticle {
                        title: a.title,
                        description: a.description,
                        pic_url: a.pic_url,
                        url: a.url,
                    })
                    .collect(),
            },
            Reply::TransferCustomerService { kf_account } => {
                ServiceReply::TransferCustomerService { kf_account }
            }
            other => return Err(ReplyError::NoJsonForm(other.msg_type())),
        })
    }
}

/// Reads the service's `{"reply": {...}}`. `Ok(None)` is "no reply": an empty answer,
/// `success`, JSON without `reply` (or with `"reply": null`).
///
/// # Errors
/// The answer is not JSON, the reply is not one wxgate knows, or WeChat would refuse
/// it ([`Reply::validate`]).
pub fn parse_reply(body: &str) -> Result<Option<Reply>, ReplyError> {
    let trimmed = body.trim();
    if trimmed.is_empty() || trimmed == "success" {
        return Ok(None);
    }
    let mut value: Value = serde_json::from_str(trimmed).map_err(ReplyError::NotJson)?;
    let Some(reply) = value.get_mut("reply").filter(|r| !r.is_null()) else {
        return Ok(None);
    };
    let reply = ServiceReply::deserialize(reply.take()).map_err(ReplyError::Shape)?;
    let reply = Reply::from(reply);
    reply.validate().map_err(ReplyError::Invalid)?;
    Ok(Some(reply))
}

/// The JSON form of a reply, as stored with the record (`service_reply`); `None` for
/// a kind that has none.
pub fn reply_json(reply: &Reply) -> Option<Value> {
    let reply = ServiceReply::try_from(reply).ok()?;
    serde_json::to_value(reply).ok()
}

/// The service's reply stored with a record, as a reply again; `None` when it has
/// none, or the stored form is not one wxgate reads.
pub fn stored_reply(record: &Record) -> Option<Reply> {
    let stored = record.service_reply.as_ref()?;
    ServiceReply::deserialize(stored).ok().map(Reply::from)
}

#[cfg(test)]
mod tests;
