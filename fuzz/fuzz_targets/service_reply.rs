//! The service's JSON reply (`wxgate::forward::parse_reply`): any answer is refused or
//! yields a valid reply that renders as XML 1.0, parses back, and survives the JSON
//! form stored with the inbox record (`stored_reply`, used to answer WeChat's
//! retries), which is also an answer the service could have sent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wxgate::forward::{parse_reply, reply_json, stored_reply};
use wxgate::inbox::Record;
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
    let mut record = Record::new(1, "acct", "oUser:1", serde_json::json!({}), 1);
    record.service_reply = Some(reply_json(&reply).expect("every parsed reply has a JSON form"));
    assert_eq!(stored_reply(&record).as_ref(), Some(&reply));
    let stored = serde_json::json!({ "reply": record.service_reply }).to_string();
    assert_eq!(parse_reply(&stored).ok(), Some(Some(reply)));
});
