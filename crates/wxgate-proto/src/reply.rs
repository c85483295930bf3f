//! Passive replies: the XML body answered to a push.
//!
//! [`Reply::render`] writes WeChat's format (parties swapped by [`Reply::render_for`],
//! strings in CDATA with `]]>` split, `CreateTime` in seconds). [`ReplyMessage::parse`]
//! reads one back, for the simulator, the doctor and tests. A push that came as JSON
//! is answered in JSON ([`Reply::render_json`]).

use crate::json::ObjectWriter;
use crate::message::Message;
use crate::xml::{self, push_cdata, push_number};
use crate::{Error, Format};

/// Most articles in a `news` reply (to an event; a reply to a user message shows only
/// the first since 2018).
pub const MAX_NEWS_ARTICLES: usize = 8;

/// A passive reply, without its envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reply {
    /// Text; newlines and `<a href>` links are shown.
    Text {
        /// The text.
        content: String,
    },
    /// An uploaded image.
    Image {
        /// Media id from the media API.
        media_id: String,
    },
    /// An uploaded voice clip.
    Voice {
        /// Media id.
        media_id: String,
    },
    /// An uploaded video.
    Video {
        /// Media id.
        media_id: String,
        /// Optional title.
        title: Option<String>,
        /// Optional description.
        description: Option<String>,
    },
    /// Music card.
    Music {
        /// Optional title.
        title: Option<String>,
        /// Optional description.
        description: Option<String>,
        /// Music URL.
        music_url: Option<String>,
        /// High-quality music URL (Wi-Fi).
        hq_music_url: Option<String>,
        /// Thumbnail media id (required by WeChat).
        thumb_media_id: String,
    },
    /// Article cards.
    News {
        /// 1 to [`MAX_NEWS_ARTICLES`] articles.
        articles: Vec<Article>,
    },
    /// Hand the conversation to the customer-service system.
    TransferCustomerService {
        /// A specific agent (`kf@gh_…`), if any.
        kf_account: Option<String>,
    },
}

/// One article of a `news` reply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Article {
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Picture URL (360×200 large, 200×200 small).
    pub pic_url: String,
    /// Link.
    pub url: String,
}

/// A reply with its header, as read back by [`ReplyMessage::parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyMessage {
    /// The user's OpenID.
    pub to_user_name: String,
    /// The account's `gh_` id.
    pub from_user_name: String,
    /// Unix seconds.
    pub create_time: i64,
    /// The reply.
    pub reply: Reply,
}

impl Reply {
    /// The `MsgType` this reply is sent as.
    pub fn msg_type(&self) -> &'static str {
        match self {
            Reply::Text { .. } => "text",
            Reply::Image { .. } => "image",
            Reply::Voice { .. } => "voice",
            Reply::Video { .. } => "video",
            Reply::Music { .. } => "music",
            Reply::News { .. } => "news",
            Reply::TransferCustomerService { .. } => "transfer_customer_service",
        }
    }

    /// Checks the rules WeChat enforces on replies.
    ///
    /// # Errors
    /// [`Error::InvalidReply`] for empty text (once the characters XML 1.0 forbids are
    /// dropped, as [`Reply::render`] does), an empty media id, a news reply without
    /// articles or with more than [`MAX_NEWS_ARTICLES`].
    pub fn validate(&self) -> Result<(), Error> {
        let invalid = |reason: &str| {
            Err(Error::InvalidReply {
                reason: reason.to_owned(),
            })
        };
        match self {
            Reply::Text { content } if xml::xml_chars(content).is_empty() => invalid(
                "text reply with empty content, or only characters XML 1.0 cannot carry (answer `success` to send nothing)",
            ),
            Reply::Image { media_id }
            | Reply::Voice { media_id }
            | Reply::Video { media_id, .. }
                if media_id.is_empty() =>
            {
                invalid("media_id is empty: upload the media first (素材管理) and use its media_id")
            }
            Reply::Music { thumb_media_id, .. } if thumb_media_id.is_empty() => {
                invalid("music reply needs thumb_media_id")
            }
            Reply::News { articles } if articles.is_empty() => {
                invalid("news reply without articles")
            }
            Reply::News { articles } if articles.len() > MAX_NEWS_ARTICLES => {
                Err(Error::InvalidReply {
                    reason: format!(
                        "news reply with {} articles; WeChat accepts at most {MAX_NEWS_ARTICLES}",
                        articles.len()
                    ),
                })
            }
            _ => Ok(()),
        }
    }

    /// Renders the reply to `message`: `ToUserName` is the sender, `FromUserName` the
    /// account.
    pub fn render_for(&self, message: &Message, create_time: i64) -> String {
        self.render(&message.from_user_name, &message.to_user_name, create_time)
    }

    /// Renders the reply XML. Every string goes through [`xml::push_cdata`], so the
    /// result is XML 1.0 whatever the strings hold: forbidden characters are dropped.
    pub fn render(&self, to_user_name: &str, from_user_name: &str, create_time: i64) -> String {
        let mut out = String::with_capacity(256);
        out.push_str("<xml>");
        push_cdata(&mut out, "ToUserName", to_user_name);
        push_cdata(&mut out, "FromUserName", from_user_name);
        push_number(&mut out, "CreateTime", create_time);
        push_cdata(&mut out, "MsgType", self.msg_type());
        let optional = |out: &mut String, name: &str, value: &Option<String>| {
            if let Some(value) = value {
                push_cdata(out, name, value);
            }
        };
        match self {
            Reply::Text { content } => push_cdata(&mut out, "Content", content),
            Reply::Image { media_id } => {
                out.push_str("<Image>");
                push_cdata(&mut out, "MediaId", media_id);
                out.push_str("</Image>");
            }
            Reply::Voice { media_id } => {
                out.push_str("<Voice>");
                push_cdata(&mut out, "MediaId", media_id);
                out.push_str("</Voice>");
            }
            Reply::Video {
                media_id,
                title,
                description,
            } => {
                out.push_str("<Video>");
                push_cdata(&mut out, "MediaId", media_id);
                optional(&mut out, "Title", title);
                optional(&mut out, "Description", description);
                out.push_str("</Video>");
            }
            Reply::Music {
                title,
                description,
                music_url,
                hq_music_url,
                thumb_media_id,
            } => {
                out.push_str("<Music>");
                optional(&mut out, "Title", title);
                optional(&mut out, "Description", description);
                optional(&mut out, "MusicUrl", music_url);
                optional(&mut out, "HQMusicUrl", hq_music_url);
                push_cdata(&mut out, "ThumbMediaId", thumb_media_id);
                out.push_str("</Music>");
            }
            Reply::News { articles } => {
                push_number(&mut out, "ArticleCount", articles.len());
                out.push_str("<Articles>");
                for article in articles {
                    out.push_str("<item>");
                    push_cdata(&mut out, "Title", &article.title);
                    push_cdata(&mut out, "Description", &article.description);
                    push_cdata(&mut out, "PicUrl", &article.pic_url);
                    push_cdata(&mut out, "Url", &article.url);
                    out.push_str("</item>");
                }
                out.push_str("</Articles>");
            }
            Reply::TransferCustomerService { kf_account } => {
                if let Some(account) = kf_account {
                    out.push_str("<TransInfo>");
                    push_cdata(&mut out, "KfAccount", account);
                    out.push_str("</TransInfo>");
                }
            }
        }
        out.push_str("</xml>");
        out
    }
}

impl Reply {
    /// Renders the reply to `message` in `format`.
    pub fn render_for_in(&self, format: Format, message: &Message, create_time: i64) -> String {
        match format {
            Format::Xml => self.render_for(message, create_time),
            Format::Json => {
                self.render_json(&message.from_user_name, &message.to_user_name, create_time)
            }
        }
    }

    /// Renders the reply as JSON, for a push that came as JSON: the XML's field names
    /// and nesting, `CreateTime` and `ArticleCount` as numbers, the articles as an
    /// array. A mini-program honours only `transfer_customer_service` this way (WeChat's
    /// docs), which is how wxgate uses it.
    pub fn render_json(
        &self,
        to_user_name: &str,
        from_user_name: &str,
        create_time: i64,
    ) -> String {
        let group = |fields: &[(&str, Option<&str>)]| {
            let mut writer = ObjectWriter::new();
            for (name, value) in fields {
                if let Some(value) = value {
                    writer.string(name, value);
                }
            }
            writer.finish()
        };
        let mut out = ObjectWriter::new();
        out.string("ToUserName", to_user_name)
            .string("FromUserName", from_user_name)
            .number("CreateTime", create_time)
            .string("MsgType", self.msg_type());
        match self {
            Reply::Text { content } => {
                out.string("Content", content);
            }
            Reply::Image { media_id } => {
                out.raw("Image", &group(&[("MediaId", Some(media_id))]));
            }
            Reply::Voice { media_id } => {
                out.raw("Voice", &group(&[("MediaId", Some(media_id))]));
            }
            Reply::Video {
                media_id,
                title,
                description,
            } => {
                let video = group(&[
                    ("MediaId", Some(media_id)),
                    ("Title", title.as_deref()),
                    ("Description", description.as_deref()),
                ]);
                out.raw("Video", &video);
            }
            Reply::Music {
                title,
                description,
                music_url,
                hq_music_url,
                thumb_media_id,
            } => {
                let music = group(&[
                    ("Title", title.as_deref()),
                    ("Description", description.as_deref()),
                    ("MusicUrl", music_url.as_deref()),
                    ("HQMusicUrl", hq_music_url.as_deref()),
                    ("ThumbMediaId", Some(thumb_media_id)),
                ]);
                out.raw("Music", &music);
            }
            Reply::News { articles } => {
                let items: Vec<String> = articles
                    .iter()
                    .map(|a| {
                        group(&[
                            ("Title", Some(&a.title)),
                            ("Description", Some(&a.description)),
                            ("PicUrl", Some(&a.pic_url)),
                            ("Url", Some(&a.url)),
                        ])
                    })
                    .collect();
                out.number("ArticleCount", articles.len())
                    .raw("Articles", &format!("[{}]", items.join(",")));
            }
            Reply::TransferCustomerService { kf_account } => {
                if let Some(account) = kf_account {
                    out.raw("TransInfo", &group(&[("KfAccount", Some(account))]));
                }
            }
        }
        out.finish()
    }
}

impl ReplyMessage {
    /// Reads a plaintext reply back, XML or JSON (as [`Reply::render_json`] writes it).
    ///
    /// # Errors
    /// [`Error::UnknownFormat`], XML or JSON errors; [`Error::MissingField`] for a
    /// missing header field; [`Error::InvalidReply`] for an unknown MsgType or an
    /// `ArticleCount` that differs from the articles present.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let root = Format::detect(text)?.parse(text)?;
        let required = |field: &'static str| -> Result<&str, Error> {
            root.text_of(field).ok_or(Error::MissingField { field })
        };
        let create_time_text = required("CreateTime")?.trim();
        let create_time = create_time_text.parse().map_err(|_| Error::BadNumber {
            field: "CreateTime",
            value: create_time_text.to_owned(),
        })?;
        let group =
            |name: &'static str| root.child(name).ok_or(Error::MissingField { field: name });
        let opt = |group: &xml::Element, name: &str| group.text_of(name).map(str::to_owned);
        let media_id = |name: &'static str| -> Result<String, Error> {
            group(name)?
                .text_of("MediaId")
                .map(str::to_owned)
                .ok_or(Error::MissingField { field: "MediaId" })
        };
        let reply = match required("MsgType")?.trim() {
            "text" => Reply::Text {
                content: required("Content")?.to_owned(),
            },
            "image" => Reply::Image {
                media_id: media_id("Image")?,
            },
            "voice" => Reply::Voice {
                media_id: media_id("Voice")?,
            },
            "video" => {
                let video = group("Video")?;
                Reply::Video {
                    media_id: media_id("Video")?,
                    title: opt(video, "Title"),
                    description: opt(video, "Description"),
                }
            }
            "music" => {
                let music = group("Music")?;
                Reply::Music {
                    title: opt(music, "Title"),
                    description: opt(music, "Description"),
                    music_url: opt(music, "MusicUrl"),
                    hq_music_url: opt(music, "HQMusicUrl"),
                    thumb_media_id: music
                        .text_of("ThumbMediaId")
                        .ok_or(Error::MissingField {
                            field: "ThumbMediaId",
                        })?
                        .to_owned(),
                }
            }
            "news" => {
                let articles: Vec<Article> = group("Articles")?
                    .children
                    .iter()
                    .map(|item| Article {
                        title: item.text_or_empty("Title").to_owned(),
                        description: item.text_or_empty("Description").to_owned(),
                        pic_url: item.text_or_empty("PicUrl").to_owned(),
                        url: item.text_or_empty("Url").to_owned(),
                    })
                    .collect();
                let count = required("ArticleCount")?.trim();
                if count != articles.len().to_string() {
                    return Err(Error::InvalidReply {
                        reason: format!(
                            "ArticleCount is {count} but {} articles follow",
                            articles.len()
                        ),
                    });
                }
                Reply::News { articles }
            }
            "transfer_customer_service" => Reply::TransferCustomerService {
                kf_account: root
                    .child("TransInfo")
                    .and_then(|info| info.text_of("KfAccount"))
                    .map(str::to_owned),
            },
            other => {
                return Err(Error::InvalidReply {
                    reason: format!("unsupported MsgType {other:?} in a reply"),
                })
            }
        };
        Ok(ReplyMessage {
            to_user_name: required("ToUserName")?.to_owned(),
            from_user_name: required("FromUserName")?.to_owned(),
            create_time,
            reply,
        })
    }
}
