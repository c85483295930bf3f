//! The reply parser: whatever parses renders back to XML 1.0 that parses to the same
//! reply, less the characters XML 1.0 forbids.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wxgate_fuzz::clean;
use wxgate_proto::reply::ReplyMessage;
use wxgate_proto::xml;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(parsed) = ReplyMessage::parse(text) else {
        return;
    };
    let _ = parsed.reply.validate();
    let rendered = parsed.reply.render(
        &parsed.to_user_name,
        &parsed.from_user_name,
        parsed.create_time,
    );
    assert!(rendered.chars().all(xml::is_xml_char), "{rendered:?}");
    let again = ReplyMessage::parse(&rendered).expect("a rendered reply parses");
    assert_eq!(again.reply, clean(&parsed.reply));
    assert_eq!(again.to_user_name, xml::xml_chars(&parsed.to_user_name));
    assert_eq!(again.create_time, parsed.create_time);
});
