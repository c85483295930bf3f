//! The service's JSON reply (`wxgate::forward::parse_reply`): any answer is refused or
//! yields a valid reply that renders as XML 1.0, parses back, and survives the JSON
//! form stored with the inbox record (used to answer WeChat's retries).
#![no_main]

use libfuzzer_sys::fuzz_target;
use wxgate::forward::{parse_reply, reply_json};
use wxgate_fuzz::clean;
use wxgate_proto::reply::ReplyMessage;
use wxgate_proto::{xml, Message};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(Some(reply)) = parse_reply(text) else {
        return;
    };
    reply
        .validate()
        .expect("parse_reply returns only valid replies");
    let message = Message::parse(
        "<xml><ToUserName>gh_a</ToUserName><FromUserName>oUser</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType><Content>x</Content><MsgId>1</MsgId></xml>",
    )
    .expect("a fixed push");
    let rendered = reply.render_for(&message, 2);
    assert!(rendered.chars().all(xml::is_xml_char), "{rendered:?}");
    let read = ReplyMessage::parse(&rendered).expect("a rendered reply parses");
    assert_eq!(read.reply, clean(&reply));
    let stored = serde_json::json!({ "reply": reply_json(&reply) }).to_string();
    assert_eq!(parse_reply(&stored), Ok(Some(reply)));
});
