//! Properties: encryption round-trips for any message and AppID; replies render and
//! parse back to themselves, in XML and JSON; a JSON push is the same message as its
//! XML twin; the XML and JSON readers never panic.

use proptest::prelude::*;
use wxgate_proto::push::build;
use wxgate_proto::reply::{Article, Reply, ReplyMessage};
use wxgate_proto::{envelope, json, xml, EncodingAesKey, Message, MsgCrypt};

/// Characters XML 1.0 can carry (the others are dropped when a reply is written).
const XML_CHAR: &str = "[^\u{0}-\u{8}\u{b}\u{c}\u{e}-\u{1f}\u{fffe}\u{ffff}]";

fn xml_string(min: usize, max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("{XML_CHAR}{{{min},{max}}}")).unwrap()
}

fn reply_strategy() -> impl Strategy<Value = Reply> {
    let text = || xml_string(0, 200);
    let nonempty = || xml_string(1, 60);
    let opt = || proptest::option::of(text());
    let article =
        (text(), text(), text(), text()).prop_map(|(title, description, pic_url, url)| Article {
            title,
            description,
            pic_url,
            url,
        });
    prop_oneof![
        nonempty().prop_map(|content| Reply::Text { content }),
        nonempty().prop_map(|media_id| Reply::Image { media_id }),
        nonempty().prop_map(|media_id| Reply::Voice { media_id }),
        (nonempty(), opt(), opt()).prop_map(|(media_id, title, description)| {
            Reply::Video {
                media_id,
                title,
                description,
            }
        }),
        (opt(), opt(), opt(), opt(), nonempty()).prop_map(
            |(title, description, music_url, hq_music_url, thumb_media_id)| Reply::Music {
                title,
                description,
                music_url,
                hq_music_url,
                thumb_media_id
            }
        ),
        proptest::collection::vec(article, 1..=8).prop_map(|articles| Reply::News { articles }),
        proptest::option::of(nonempty())
            .prop_map(|kf_account| Reply::TransferCustomerService { kf_account }),
    ]
}

/// Characters XML 1.0 can carry; WeChat content may hold others, which the reader keeps
/// but a writer drops.
fn xml_text() -> impl Strategy<Value = String> {
    xml_string(0, 300)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn encrypt_then_decrypt_is_identity(
        key in proptest::array::uniform32(any::<u8>()),
        random in proptest::array::uniform16(any::<u8>()),
        message in ".{0,2000}",
        app_id in "[ -~]{0,40}",
    ) {
        let crypt = MsgCrypt::new(&EncodingAesKey::from_bytes(key), &app_id);
        let encrypt = crypt.encrypt(&message, &random);
        prop_assert_eq!(crypt.decrypt(&encrypt).unwrap(), message);
    }

    #[test]
    fn sealed_reply_opens(
        key in proptest::array::uniform32(any::<u8>()),
        random in proptest::array::uniform16(any::<u8>()),
        body in ".{0,500}",
        nonce in "[0-9]{1,10}",
        timestamp in 0i64..4_000_000_000,
    ) {
        let crypt = MsgCrypt::new(&EncodingAesKey::from_bytes(key), "wx1234567890abcdef");
        let sealed = envelope::seal_reply(&crypt, "token", &body, timestamp, &nonce, &random);
        let opened = envelope::open_reply(&crypt, "token", &sealed).unwrap();
        prop_assert_eq!(opened.xml, body);
        prop_assert_eq!(opened.nonce, nonce);
        prop_assert_eq!(opened.timestamp, timestamp.to_string());
    }

    #[test]
    fn reply_render_then_parse_is_identity(
        reply in reply_strategy(),
        to in "[A-Za-z0-9_-]{1,40}",
        from in "gh_[a-f0-9]{12}",
        create_time in 0i64..4_000_000_000,
    ) {
        reply.validate().unwrap();
        let xml_text = reply.render(&to, &from, create_time);
        let parsed = ReplyMessage::parse(&xml_text).unwrap();
        prop_assert_eq!(parsed.to_user_name, to);
        prop_assert_eq!(parsed.from_user_name, from);
        prop_assert_eq!(parsed.create_time, create_time);
        prop_assert_eq!(parsed.reply, reply);
    }

    #[test]
    fn text_content_survives_any_characters(content in xml_text()) {
        let xml_text = wxgate_proto::push::build::text("gh_a", "oUser", 1, &content, 1);
        let message = Message::parse(&xml_text).unwrap();
        prop_assert_eq!(message.content(), Some(content.as_str()));
    }

    #[test]
    fn xml_chars_drops_exactly_what_is_xml_char_refuses(text in any::<String>()) {
        let kept: String = text.chars().filter(|&c| xml::is_xml_char(c)).collect();
        prop_assert_eq!(xml::xml_chars(&text).into_owned(), kept);
    }

    #[test]
    fn rendered_replies_are_xml_1_0_whatever_they_hold(
        content in any::<String>(),
        title in any::<String>(),
        to in any::<String>(),
    ) {
        for reply in [
            Reply::Text { content: content.clone() },
            Reply::News { articles: vec![Article { title: title.clone(), description: content.clone(), ..Article::default() }] },
        ] {
            let rendered = reply.render(&to, "gh_a", 1);
            prop_assert!(rendered.chars().all(xml::is_xml_char), "{:?}", rendered);
            let parsed = ReplyMessage::parse(&rendered).unwrap();
            prop_assert_eq!(parsed.to_user_name, xml::xml_chars(&to).into_owned());
        }
    }

    #[test]
    fn xml_reader_never_panics(input in ".{0,400}") {
        let _ = xml::parse(&input);
        let _ = Message::parse(&input);
        let _ = ReplyMessage::parse(&input);
    }

    #[test]
    fn json_reply_render_then_parse_is_identity(
        reply in reply_strategy(),
        to in any::<String>(),
        create_time in 0i64..4_000_000_000,
    ) {
        let rendered = reply.render_json(&to, "gh_a", create_time);
        prop_assert!(serde_json::from_str::<serde_json::Value>(&rendered).is_ok());
        let parsed = ReplyMessage::parse(&rendered).unwrap();
        prop_assert_eq!(parsed.to_user_name, to);
        prop_assert_eq!(parsed.create_time, create_time);
        prop_assert_eq!(parsed.reply, reply);
    }

    #[test]
    fn sealed_json_reply_opens(
        key in proptest::array::uniform32(any::<u8>()),
        random in proptest::array::uniform16(any::<u8>()),
        body in ".{0,500}",
        nonce in "[0-9]{1,10}",
        timestamp in 0i64..4_000_000_000,
    ) {
        let crypt = MsgCrypt::new(&EncodingAesKey::from_bytes(key), "wx1234567890abcdef");
        let sealed = envelope::seal_reply_json(&crypt, "token", &body, timestamp, &nonce, &random);
        let opened = envelope::open_reply(&crypt, "token", &sealed).unwrap();
        prop_assert_eq!(opened.xml, body);
        prop_assert_eq!(opened.format, wxgate_proto::Format::Json);
        prop_assert_eq!(opened.timestamp, timestamp.to_string());
    }

    #[test]
    fn a_json_push_is_the_same_message_as_its_xml_twin(
        content in xml_text(),
        msg_id in any::<u64>(),
        create_time in 0i64..4_000_000_000,
        event_key in proptest::option::of(xml_string(0, 60)),
    ) {
        for xml_text in [
            build::text("gh_a", "oUser", create_time, &content, msg_id),
            build::event("gh_a", "oUser", create_time, "CLICK", event_key.as_deref()),
        ] {
            let from_xml = Message::parse(&xml_text).unwrap();
            let from_json = Message::parse_json(&build::json(&xml_text)).unwrap();
            prop_assert_eq!(&from_json, &from_xml);
            prop_assert_eq!(from_json.dedup_key(), from_xml.dedup_key());
        }
    }

    #[test]
    fn json_numbers_reach_the_tree_as_written(
        numbers in proptest::collection::vec(
            "-?(0|[1-9][0-9]{0,30})(\\.[0-9]{1,10})?([eE][+-]?[0-9]{1,2})?",
            1..20,
        ),
        noise in proptest::collection::vec("[a-z0-9\"\\\\ .eE+-]{0,12}", 1..20),
    ) {
        let mut fields = Vec::new();
        for (i, number) in numbers.iter().enumerate() {
            let text = serde_json::to_string(&noise[i % noise.len()]).unwrap();
            fields.push(format!("\"s{i}\":{text},\"n{i}\":{number}"));
        }
        let list = numbers.iter().map(|n| format!("{{\"x\":[{n}]}}")).collect::<Vec<_>>();
        let body = format!("{{{},\"L\":[{}]}}", fields.join(","), list.join(","));
        let root = json::parse(&body).unwrap();
        for (i, number) in numbers.iter().enumerate() {
            prop_assert_eq!(root.text_of(&format!("n{i}")), Some(number.as_str()));
            let item = &root.child("L").unwrap().children[i];
            prop_assert_eq!(item.child("x").unwrap().children[0].text.as_str(), number.as_str());
        }
    }

    #[test]
    fn json_reader_never_panics(
        input in ".{0,400}",
        jsonish in "[{}\\[\\]\":,0-9a-zA-Z_ .eE+-]{0,400}",
    ) {
        for text in [&input, &jsonish] {
            let _ = json::parse(text);
            let _ = Message::parse_json(text);
            let _ = ReplyMessage::parse(text);
        }
    }

    #[test]
    fn decrypt_never_panics_on_garbage(input in "[A-Za-z0-9+/=]{0,200}") {
        let crypt = MsgCrypt::new(&EncodingAesKey::from_bytes([5; 32]), "wx1234567890abcdef");
        let _ = crypt.decrypt(&input);
    }
}
