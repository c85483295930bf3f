//! The XML reader: any UTF-8 input either fails with an error or yields a tree within
//! the bounds, whose texts survive being written back with `push_cdata` (minus the
//! characters XML 1.0 forbids).
#![no_main]

use libfuzzer_sys::fuzz_target;
use wxgate_proto::xml::{self, Element};

fn walk(element: &Element, depth: usize, count: &mut usize) {
    *count += 1;
    assert!(depth <= xml::MAX_DEPTH, "depth {depth}");
    let mut out = String::from("<xml>");
    xml::push_cdata(&mut out, "T", &element.text);
    out.push_str("</xml>");
    assert!(out.chars().all(xml::is_xml_char), "{out:?}");
    let read = xml::parse(&out).expect("push_cdata writes well-formed XML");
    assert_eq!(
        read.text_of("T"),
        Some(xml::xml_chars(&element.text).as_ref())
    );
    for child in &element.children {
        walk(child, depth + 1, count);
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(root) = xml::parse(text) {
        let mut count = 0;
        walk(&root, 1, &mut count);
        assert!(count <= xml::MAX_ELEMENTS, "{count} elements");
    }
});
