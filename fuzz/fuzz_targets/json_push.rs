//! The JSON push reader (mini-programs and mini-games): any input is refused or yields
//! a tree within the XML reader's bounds (16 levels, 4096 elements) with no key twice
//! in one object, which written back as JSON reads again to the same tree; a message
//! parsed from it keeps every field within `wxgate_proto::limits`, a `MsgId` field
//! always gives a number, the dedup key stays bounded, the forwarded JSON keeps the
//! arrays as arrays, and the JSON reply to it parses back.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use wxgate_proto::json::{self, push_string};
use wxgate_proto::limits::{self, MAX_DEPTH, MAX_ELEMENTS};
use wxgate_proto::reply::{Reply, ReplyMessage};
use wxgate_proto::xml::Element;
use wxgate_proto::Message;

fn count(element: &Element) -> usize {
    1 + element.children.iter().map(count).sum::<usize>()
}

fn no_key_twice(element: &Element) {
    if !element.array {
        let mut seen = HashSet::new();
        for child in &element.children {
            let name: String = child
                .name
                .chars()
                .filter(|&c| c != '_')
                .map(|c| c.to_ascii_lowercase())
                .collect();
            assert!(seen.insert(name), "{} twice", child.name);
        }
    }
    element.children.iter().for_each(no_key_twice);
}

/// The tree written back as JSON: groups as objects or arrays, every leaf a string.
fn write(element: &Element, out: &mut String) {
    if element.array {
        out.push('[');
        for (i, item) in element.children.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            write(item, out);
        }
        out.push(']');
    } else if element.children.is_empty() && !element.text.is_empty() {
        push_string(out, &element.text);
    } else {
        out.push('{');
        for (i, child) in element.children.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_string(out, &child.name);
            out.push(':');
            write(child, out);
        }
        out.push('}');
    }
}

/// `element` with every leaf's text as a string would carry it, and every empty leaf
/// an empty group (an empty string, `null` and `{}` all read as an empty leaf).
fn same_tree(a: &Element, b: &Element) -> bool {
    a.name == b.name
        && a.text == b.text
        && a.array == b.array
        && a.children.len() == b.children.len()
        && a.children
            .iter()
            .zip(&b.children)
            .all(|(x, y)| same_tree(x, y))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(root) = json::parse(text) else {
        return;
    };
    assert!(json::depth(&root) <= MAX_DEPTH);
    assert!(count(&root) <= MAX_ELEMENTS);
    no_key_twice(&root);
    let mut again = String::new();
    write(&root, &mut again);
    let reread = json::parse(&again).expect("the tree written back reads again");
    assert!(same_tree(&root, &reread), "{again}");

    let Ok(message) = Message::parse_json(text) else {
        return;
    };
    for field in &message.raw.children {
        assert!(field.text.len() <= limits::max_field_bytes(&field.name));
    }
    assert_eq!(message.msg_id.is_some(), message.field("MsgId").is_some());
    let max_key =
        5 + limits::MAX_ID_BYTES + 20 + limits::MAX_WORD_BYTES + limits::MAX_EVENT_KEY_BYTES;
    assert!(message.dedup_key().len() <= max_key);

    let forwarded = wxgate::forward::message_json(&message);
    for field in &message.raw.children {
        if field.array {
            let key = wxgate::forward::snake_case(&field.name);
            assert!(forwarded[&key].is_array(), "{key} is forwarded as an array");
        }
    }

    let reply = Reply::Text {
        content: message.content().unwrap_or("x").to_owned(),
    };
    let rendered = reply.render_for_in(wxgate_proto::Format::Json, &message, message.create_time);
    let read = ReplyMessage::parse(&rendered).expect("our JSON reply parses");
    assert_eq!(read.to_user_name, message.from_user_name);
    assert_eq!(read.reply, reply);
});
