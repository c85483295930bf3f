//! The message parser: any input either fails or yields a message within the bounds of
//! `wxgate_proto::limits`, with a numeric MsgId, no duplicated top-level field, a
//! bounded dedup key, forwarded JSON without arrays at the top (except lists), and an
//! echo reply that is XML 1.0.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wxgate_proto::limits::{self, LIST_ELEMENTS};
use wxgate_proto::reply::{Reply, ReplyMessage};
use wxgate_proto::{xml, Message};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(message) = Message::parse(text) else {
        return;
    };
    for field in &message.raw.children {
        assert!(field.text.len() <= limits::max_field_bytes(&field.name));
    }
    assert_eq!(message.msg_id.is_some(), message.field("MsgId").is_some());
    let max_key =
        5 + limits::MAX_ID_BYTES + 20 + limits::MAX_WORD_BYTES + limits::MAX_EVENT_KEY_BYTES;
    assert!(message.dedup_key().len() <= max_key);
    let _ = (message.event(), message.event_key(), message.content());

    let json = wxgate::forward::message_json(&message);
    if let Some(fields) = json.as_object() {
        for (name, value) in fields {
            let plain: String = name.chars().filter(|&c| c != '_').collect();
            let list = LIST_ELEMENTS.iter().any(|l| l.eq_ignore_ascii_case(&plain));
            assert!(
                list || !value.is_array(),
                "{name} is an array in the forwarded JSON"
            );
        }
    }

    let echo = Reply::Text {
        content: message.content().unwrap_or("x").to_owned(),
    };
    let rendered = echo.render_for(&message, message.create_time);
    assert!(rendered.chars().all(xml::is_xml_char), "{rendered:?}");
    let read = ReplyMessage::parse(&rendered).expect("our reply parses");
    assert_eq!(read.to_user_name, xml::xml_chars(&message.from_user_name));
});
