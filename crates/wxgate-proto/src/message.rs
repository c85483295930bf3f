//! The inbound message and event model.
//!
//! [`Message::parse`] accepts any `<xml>` push that has the four common fields, and
//! [`Message::parse_json`] the same push in JSON (mini-programs and mini-games). Every
//! MsgType and Event of the reference gets a typed [`Kind`]; an unknown one becomes
//! [`Kind::Unknown`] or [`Event::Unknown`], never an error, and every field, known or
//! not, stays available in [`Message::raw`] exactly as sent. Numbers that WeChat sends as
//! 64-bit integers (`MsgId`) are kept as integers or text, never as floats; coordinates
//! and scales are kept as the decimal text WeChat sent.

use crate::xml::{self, Element};
use crate::{limits, Error, Format};

/// One push from WeChat, after decryption.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The account's original id (`gh_…`).
    pub to_user_name: String,
    /// The sender's OpenID.
    pub from_user_name: String,
    /// Unix seconds.
    pub create_time: i64,
    /// `text`, `image`, …, `event`, or anything WeChat adds later.
    pub msg_type: String,
    /// `MsgId` when present (events have none); always a 64-bit unsigned number.
    pub msg_id: Option<u64>,
    /// The typed view of the message.
    pub kind: Kind,
    /// Every element as sent, for fields the typed view does not name (a JSON push
    /// as [`crate::json`] maps it).
    pub raw: Element,
}

/// The typed part of a [`Message`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Kind {
    /// `text`. `MsgDataId`/`Idx` are present when the text came from an article comment.
    Text {
        /// The text the user sent (control characters kept).
        content: String,
    },
    /// `image`.
    Image {
        /// Image URL on WeChat's servers.
        pic_url: String,
        /// Media id for the media API.
        media_id: String,
    },
    /// `voice`.
    Voice {
        /// Media id.
        media_id: String,
        /// `amr`, `speex`, …
        format: String,
        /// Speech-to-text result, when voice recognition is on.
        recognition: Option<String>,
    },
    /// `video`.
    Video(VideoInfo),
    /// `shortvideo`.
    ShortVideo(VideoInfo),
    /// `location`.
    Location(LocationInfo),
    /// `link`.
    Link {
        /// Title.
        title: String,
        /// Description.
        description: String,
        /// Target URL.
        url: String,
    },
    /// `event`.
    Event(Event),
    /// A MsgType this version does not know (`file`, …); see [`Message::raw`].
    Unknown,
}

/// Fields of `video` and `shortvideo` messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoInfo {
    /// Media id.
    pub media_id: String,
    /// Thumbnail media id.
    pub thumb_media_id: String,
}

/// A location as WeChat sends it (decimal text kept exactly).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocationInfo {
    /// Latitude (`Location_X`).
    pub latitude: String,
    /// Longitude (`Location_Y`).
    pub longitude: String,
    /// Map scale.
    pub scale: String,
    /// Place description.
    pub label: String,
    /// Point-of-interest name (`location_select` only).
    pub poiname: Option<String>,
}

/// `ScanCodeInfo` of the scancode menu events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanCodeInfo {
    /// Menu key.
    pub key: String,
    /// `qrcode`, `barcode`, …
    pub scan_type: String,
    /// The scanned text.
    pub scan_result: String,
}

/// `SendPicsInfo` of the picture menu events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PicsInfo {
    /// Menu key.
    pub key: String,
    /// Number of pictures.
    pub count: u32,
    /// MD5 of each picture.
    pub pic_md5_sums: Vec<String>,
}

/// `MsgType=event` pushes.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// Follow. Through a parametric QR code, `scene` is the scene value without the
    /// `qrscene_` prefix and `ticket` is set.
    Subscribe {
        /// Scene value of the QR code, if any.
        scene: Option<String>,
        /// QR ticket, if any.
        ticket: Option<String>,
    },
    /// Unfollow.
    Unsubscribe,
    /// A follower scanned a parametric QR code.
    Scan {
        /// Scene value.
        scene: String,
        /// QR ticket.
        ticket: Option<String>,
    },
    /// Periodic location report.
    Location {
        /// Latitude.
        latitude: String,
        /// Longitude.
        longitude: String,
        /// Precision.
        precision: String,
    },
    /// Menu click.
    Click {
        /// Menu key.
        key: String,
    },
    /// Menu link opened.
    View {
        /// Target URL.
        url: String,
        /// Conditional-menu id.
        menu_id: Option<String>,
    },
    /// Scan from the menu, result pushed.
    ScancodePush(ScanCodeInfo),
    /// Scan from the menu, client shows "消息接收中".
    ScancodeWaitmsg(ScanCodeInfo),
    /// Camera from the menu.
    PicSysphoto(PicsInfo),
    /// Camera or album from the menu.
    PicPhotoOrAlbum(PicsInfo),
    /// WeChat album from the menu.
    PicWeixin(PicsInfo),
    /// Location picker from the menu.
    LocationSelect {
        /// Menu key.
        key: String,
        /// The picked location.
        location: LocationInfo,
    },
    /// Mini-program opened from the menu.
    ViewMiniprogram {
        /// Page path.
        page_path: String,
        /// Conditional-menu id.
        menu_id: Option<String>,
    },
    /// Template message delivery result.
    TemplateSendJobFinish {
        /// `MsgID` of the template message (text: kept exact).
        msg_id: String,
        /// `success`, `failed:user block`, `failed: system failed`, …
        status: String,
    },
    /// Mass-send result.
    MassSendJobFinish {
        /// `MsgID`.
        msg_id: String,
        /// `send success`, `err(NNNNN)`, …
        status: String,
        /// Counts as sent by WeChat (text kept exact).
        total_count: String,
        /// Filtered count.
        filter_count: String,
        /// Sent count.
        sent_count: String,
        /// Error count.
        error_count: String,
    },
    /// An event this version does not model; see [`Message::raw`].
    Unknown {
        /// The `Event` value.
        event: String,
    },
}

impl Message {
    /// Parses a decrypted push.
    ///
    /// # Errors
    /// [`Error::XmlDoctype`] / [`Error::MalformedXml`] from the XML reader;
    /// [`Error::MissingField`] when `ToUserName`, `FromUserName`, `CreateTime` or
    /// `MsgType` is absent; [`Error::BadNumber`] when `CreateTime` is not an integer or
    /// `MsgId` not a 64-bit unsigned one; [`Error::FieldTooLong`] and
    /// [`Error::DuplicateField`] for what [`crate::limits`] refuses.
    pub fn parse(xml_text: &str) -> Result<Self, Error> {
        Self::from_element(xml::parse(xml_text)?)
    }

    /// Parses a decrypted JSON push (a mini-program's or mini-game's, 数据格式 JSON) into
    /// the same model: see [`crate::json`] for how its values map to elements.
    ///
    /// # Errors
    /// [`Error::MalformedJson`] and [`Error::DuplicateField`] from the JSON reader, then
    /// as [`Message::parse`].
    pub fn parse_json(json_text: &str) -> Result<Self, Error> {
        Self::from_element(crate::json::parse(json_text)?)
    }

    /// Parses a decrypted push in `format`.
    ///
    /// # Errors
    /// As [`Message::parse`] or [`Message::parse_json`].
    pub fn parse_as(format: Format, text: &str) -> Result<Self, Error> {
        Self::from_element(format.parse(text)?)
    }

    /// Builds a message from an already parsed root element.
    ///
    /// # Errors
    /// As [`Message::parse`], minus the XML errors.
    pub fn from_element(raw: Element) -> Result<Self, Error> {
        let msg_id = limits::check_push(&raw)?;
        let required = |field: &'static str| -> Result<String, Error> {
            raw.text_of(field)
                .map(|t| t.trim().to_owned())
                .ok_or(Error::MissingField { field })
        };
        let to_user_name = required("ToUserName")?;
        let from_user_name = required("FromUserName")?;
        let create_time_text = required("CreateTime")?;
        let create_time = create_time_text.parse().map_err(|_| Error::BadNumber {
            field: "CreateTime",
            value: create_time_text.clone(),
        })?;
        let msg_type = required("MsgType")?;
        let kind = kind_of(&msg_type, &raw);
        Ok(Message {
            to_user_name,
            from_user_name,
            create_time,
            msg_type,
            msg_id,
            kind,
            raw,
        })
    }

    /// The text of any field, as sent (`None` when absent).
    pub fn field(&self, name: &str) -> Option<&str> {
        self.raw.text_of(name)
    }

    /// The `Event` value, for `MsgType=event`.
    pub fn event(&self) -> Option<&str> {
        (self.msg_type == "event")
            .then(|| self.field("Event").map(str::trim))
            .flatten()
    }

    /// The `EventKey` value, if any.
    pub fn event_key(&self) -> Option<&str> {
        self.field("EventKey")
    }

    /// The `Content` of a text message.
    pub fn content(&self) -> Option<&str> {
        match &self.kind {
            Kind::Text { content } => Some(content),
            _ => None,
        }
    }

    /// The key under which WeChat's retries of this push are recognised: `MsgId` for
    /// messages; for events `FromUserName` + `CreateTime` (WeChat's recommendation) plus
    /// `Event` and `EventKey`, so two different events in the same second do not collide
    /// while a retry, which repeats every field, still does. The field bounds of
    /// [`crate::limits`] keep it under 4.3 KiB.
    pub fn dedup_key(&self) -> String {
        match self.msg_id {
            Some(id) => format!("m:{id}"),
            None => format!(
                "e:{}:{}:{}:{}",
                self.from_user_name,
                self.create_time,
                self.field("Event").unwrap_or_default(),
                self.event_key().unwrap_or_default()
            ),
        }
    }
}

fn kind_of(msg_type: &str, raw: &Element) -> Kind {
    let text = |name: &str| raw.text_or_empty(name).to_owned();
    let video = || VideoInfo {
        media_id: text("MediaId"),
        thumb_media_id: text("ThumbMediaId"),
    };
    match msg_type {
        "text" => Kind::Text {
            content: text("Content"),
        },
        "image" => Kind::Image {
            pic_url: text("PicUrl"),
            media_id: text("MediaId"),
        },
        "voice" => Kind::Voice {
            media_id: text("MediaId"),
            format: text("Format"),
            recognition: raw
                .text_of("Recognition")
                .or_else(|| raw.text_of("Recongnition"))
                .map(str::to_owned),
        },
        "video" => Kind::Video(video()),
        "shortvideo" => Kind::ShortVideo(video()),
        "location" => Kind::Location(location_of(raw)),
        "link" => Kind::Link {
            title: text("Title"),
            description: text("Description"),
            url: text("Url"),
        },
        "event" => Kind::Event(event_of(raw)),
        _ => Kind::Unknown,
    }
}

fn location_of(group: &Element) -> LocationInfo {
    LocationInfo {
        latitude: group.text_or_empty("Location_X").trim().to_owned(),
        longitude: group.text_or_empty("Location_Y").trim().to_owned(),
        scale: group.text_or_empty("Scale").trim().to_owned(),
        label: group.text_or_empty("Label").to_owned(),
        poiname: group.text_of("Poiname").map(str::to_owned),
    }
}

fn event_of(raw: &Element) -> Event {
    let text = |name: &str| raw.text_or_empty(name).to_owned();
    let opt = |name: &str| {
        raw.text_of(name)
            .map(str::to_owned)
            .filter(|t| !t.is_empty())
    };
    let key = || text("EventKey");
    let scan_code = || {
        let info = raw.child("ScanCodeInfo").cloned().unwrap_or_default();
        ScanCodeInfo {
            key: key(),
            scan_type: info.text_or_empty("ScanType").to_owned(),
            scan_result: info.text_or_empty("ScanResult").to_owned(),
        }
    };
    let pics = || {
        let info = raw.child("SendPicsInfo").cloned().unwrap_or_default();
        PicsInfo {
            key: key(),
            count: info.text_or_empty("Count").trim().parse().unwrap_or(0),
            pic_md5_sums: info
                .child("PicList")
                .map(|list| {
                    list.children
                        .iter()
                        .map(|item| item.text_or_empty("PicMd5Sum").to_owned())
                        .collect()
                })
                .unwrap_or_default(),
        }
    };
    let event = raw.text_or_empty("Event").trim();
    match event {
        "subscribe" => Event::Subscribe {
            scene: opt("EventKey").map(|k| k.strip_prefix("qrscene_").unwrap_or(&k).to_owned()),
            ticket: opt("Ticket"),
        },
        "unsubscribe" => Event::Unsubscribe,
        "SCAN" => Event::Scan {
            scene: key(),
            ticket: opt("Ticket"),
        },
        "LOCATION" => Event::Location {
            latitude: text("Latitude").trim().to_owned(),
            longitude: text("Longitude").trim().to_owned(),
            precision: text("Precision").trim().to_owned(),
        },
        "CLICK" => Event::Click { key: key() },
        "VIEW" => Event::View {
            url: key(),
            menu_id: opt("MenuId"),
        },
        "scancode_push" => Event::ScancodePush(scan_code()),
        "scancode_waitmsg" => Event::ScancodeWaitmsg(scan_code()),
        "pic_sysphoto" => Event::PicSysphoto(pics()),
        "pic_photo_or_album" => Event::PicPhotoOrAlbum(pics()),
        "pic_weixin" => Event::PicWeixin(pics()),
        "location_select" => Event::LocationSelect {
            key: key(),
            location: location_of(&raw.child("SendLocationInfo").cloned().unwrap_or_default()),
        },
        "view_miniprogram" => Event::ViewMiniprogram {
            page_path: key(),
            menu_id: opt("MenuId"),
        },
        "TEMPLATESENDJOBFINISH" => Event::TemplateSendJobFinish {
            msg_id: text("MsgID").trim().to_owned(),
            status: text("Status"),
        },
        "MASSSENDJOBFINISH" => Event::MassSendJobFinish {
            msg_id: text("MsgID").trim().to_owned(),
            status: text("Status"),
            total_count: text("TotalCount").trim().to_owned(),
            filter_count: text("FilterCount").trim().to_owned(),
            sent_count: text("SentCount").trim().to_owned(),
            error_count: text("ErrorCount").trim().to_owned(),
        },
        other => Event::Unknown {
            event: other.to_owned(),
        },
    }
}
