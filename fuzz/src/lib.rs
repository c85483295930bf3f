//! Code shared by the fuzz targets.

use wxgate_proto::reply::{Article, Reply};
use wxgate_proto::xml::xml_chars;

fn text(s: &str) -> String {
    xml_chars(s).into_owned()
}

fn opt(s: &Option<String>) -> Option<String> {
    s.as_deref().map(text)
}

/// `reply` as it reads back once rendered: every string without the characters XML 1.0
/// forbids.
pub fn clean(reply: &Reply) -> Reply {
    match reply {
        Reply::Text { content } => Reply::Text {
            content: text(content),
        },
        Reply::Image { media_id } => Reply::Image {
            media_id: text(media_id),
        },
        Reply::Voice { media_id } => Reply::Voice {
            media_id: text(media_id),
        },
        Reply::Video {
            media_id,
            title,
            description,
        } => Reply::Video {
            media_id: text(media_id),
            title: opt(title),
            description: opt(description),
        },
        Reply::Music {
            title,
            description,
            music_url,
            hq_music_url,
            thumb_media_id,
        } => Reply::Music {
            title: opt(title),
            description: opt(description),
            music_url: opt(music_url),
            hq_music_url: opt(hq_music_url),
            thumb_media_id: text(thumb_media_id),
        },
        Reply::News { articles } => Reply::News {
            articles: articles
                .iter()
                .map(|a| Article {
                    title: text(&a.title),
                    description: text(&a.description),
                    pic_url: text(&a.pic_url),
                    url: text(&a.url),
                })
                .collect(),
        },
        Reply::TransferCustomerService { kf_account } => Reply::TransferCustomerService {
            kf_account: opt(kf_account),
        },
        other => other.clone(),
    }
}
