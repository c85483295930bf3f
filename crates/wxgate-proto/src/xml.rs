//! A small, safe XML tree for WeChat payloads, and the CDATA writer.
//!
//! WeChat XML is flat or shallow: an `<xml>` root with text children, a few nested groups
//! (`ScanCodeInfo`, `SendPicsInfo/PicList/item`). This reader keeps every element, in
//! order, with its text (CDATA and escaped text both accepted, concatenated). It refuses
//! DOCTYPE and therefore every entity declaration; only the five predefined entities and
//! character references are expanded. Depth and element count are bounded.

use quick_xml::escape::resolve_xml_entity;
use quick_xml::events::{BytesRef, Event};
use quick_xml::Reader;

use crate::Error;

/// Deepest nesting the XML reader accepts.
pub const MAX_DEPTH: usize = 16;
/// Most elements the XML reader accepts in one document.
pub const MAX_ELEMENTS: usize = 4096;

/// One XML element: its name, its text and its child elements, in document order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    /// Tag name.
    pub name: String,
    /// Text content (CDATA sections and text nodes, concatenated); empty for groups.
    pub text: String,
    /// Child elements in document order.
    pub children: Vec<Element>,
    /// The group was a JSON array (its children are named `item`). Always false for
    /// XML, which has no arrays: a list there is a repeated element.
    pub array: bool,
}

impl Element {
    /// A leaf element with text.
    pub fn leaf(name: &str, text: &str) -> Self {
        Element {
            name: name.to_owned(),
            text: text.to_owned(),
            ..Element::default()
        }
    }

    /// The first child with this name.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The text of the first child with this name.
    pub fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.as_str())
    }

    /// The text of the first child with this name, or "" when absent.
    pub fn text_or_empty(&self, name: &str) -> &str {
        self.text_of(name).unwrap_or("")
    }
}

/// Parses a document and returns its root element (any name; WeChat's is `xml`).
///
/// # Errors
/// [`Error::XmlDoctype`] for a DOCTYPE; [`Error::MalformedXml`] for anything that is not
/// well-formed, an undefined entity, more than [`MAX_DEPTH`] levels or more than
/// [`MAX_ELEMENTS`] elements.
pub fn parse(xml: &str) -> Result<Element, Error> {
    let malformed = |reason: String| Error::MalformedXml { reason };
    let mut reader = Reader::from_str(xml);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Element> = Vec::new();
    let mut count = 0usize;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| malformed(format!("{e} at byte {}", reader.error_position())))?;
        match event {
            Event::DocType(_) => return Err(Error::XmlDoctype),
            Event::Start(start) => {
                count += 1;
                if stack.len() >= MAX_DEPTH || count > MAX_ELEMENTS {
                    return Err(malformed("document too deep or too large".to_owned()));
                }
                stack.push(Element {
                    name: start.name().as_ref().to_owned(),
                    ..Element::default()
                });
            }
            Event::Empty(start) => {
                count += 1;
                if count > MAX_ELEMENTS {
                    return Err(malformed("document too large".to_owned()));
                }
                let element = Element {
                    name: start.name().as_ref().to_owned(),
                    ..Element::default()
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => return Ok(element),
                }
            }
            Event::End(_) => {
                let done = stack.pop().expect("quick-xml checks end tags");
                match stack.last_mut() {
                    Some(parent) => parent.children.push(done),
                    None => return Ok(done),
                }
            }
            Event::Text(text) => push_text(&mut stack, &text)?,
            Event::GeneralRef(reference) => {
                let mut char_buf = [0u8; 4];
                let resolved = resolve_reference(&reference, &mut char_buf)?;
                push_text(&mut stack, resolved)?;
            }
            Event::CData(data) => match stack.last_mut() {
                Some(current) => current.text.push_str(&data),
                None => return Err(malformed("CDATA outside the root element".to_owned())),
            },
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) => {}
            Event::Eof => {
                return Err(malformed(if stack.is_empty() {
                    "no root element".to_owned()
                } else {
                    format!(
                        "unexpected end of document inside <{}>",
                        stack[stack.len() - 1].name
                    )
                }))
            }
        }
    }
}

/// Appends text (a text node, or a resolved reference) to the open element; outside the
/// root only whitespace is allowed.
fn push_text(stack: &mut [Element], text: &str) -> Result<(), Error> {
    match stack.last_mut() {
        Some(current) => current.text.push_str(text),
        None if text.trim().is_empty() => {}
        None => {
            return Err(Error::MalformedXml {
                reason: "text outside the root element".to_owned(),
            })
        }
    }
    Ok(())
}

/// The text of `&name;`: a character reference or one of the five predefined entities.
/// Any other entity is undefined, since a DOCTYPE (which could declare one) is refused.
fn resolve_reference<'a>(
    reference: &'a BytesRef<'_>,
    buf: &'a mut [u8; 4],
) -> Result<&'a str, Error> {
    let malformed = |reason: String| Error::MalformedXml { reason };
    match reference.resolve_char_ref() {
        Ok(Some(c)) => Ok(c.encode_utf8(buf)),
        Ok(None) => resolve_xml_entity(reference).ok_or_else(|| {
            malformed(format!(
                "bad entity or character reference: undefined entity &{};",
                crate::error::shorten(reference)
            ))
        }),
        Err(e) => Err(malformed(format!("bad entity or character reference: {e}"))),
    }
}

/// Whether XML 1.0 allows `c` in a document (production \[2\] `Char`): tab, newline,
/// carriage return, U+0020–U+D7FF, U+E000–U+FFFD and U+10000–U+10FFFF. A Rust `char` is
/// never a surrogate, so what this refuses is the other C0 controls (NUL, U+000B, …)
/// and U+FFFE/U+FFFF. No escape can carry them: `&#0;` is not well-formed either.
pub fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// `text` without the characters XML 1.0 forbids (see [`is_xml_char`]); borrowed when
/// there is none, which is the usual case.
pub fn xml_chars(text: &str) -> std::borrow::Cow<'_, str> {
    if all_xml_chars(text.as_bytes()) {
        std::borrow::Cow::Borrowed(text)
    } else {
        std::borrow::Cow::Owned(text.chars().filter(|&c| is_xml_char(c)).collect())
    }
}

/// [`is_xml_char`] for every character, on the bytes: in UTF-8 the forbidden characters
/// are the bytes below 0x20 other than tab, newline and carriage return, and the
/// sequences EF BF BE (U+FFFE) and EF BF BF (U+FFFF). One pass without branches (it
/// vectorises) decides for most text; the sequences are looked for only after an EF.
fn all_xml_chars(bytes: &[u8]) -> bool {
    let (control, ef) = bytes.iter().fold((false, false), |(control, ef), &b| {
        let forbidden = b < 0x20 && b != b'\t' && b != b'\n' && b != b'\r';
        (control | forbidden, ef | (b == 0xEF))
    });
    let noncharacter = || {
        bytes
            .windows(3)
            .any(|w| w[0] == 0xEF && w[1] == 0xBF && w[2] >= 0xBE)
    };
    !(control || (ef && noncharacter()))
}

/// Appends `<name><![CDATA[text]]></name>`. Characters XML 1.0 forbids are dropped
/// (WeChat refuses a reply that is not well-formed, and a user may send a NUL that an
/// echo would return), then any `]]>` is split so the section stays well-formed.
pub fn push_cdata(out: &mut String, name: &str, text: &str) {
    out.push('<');
    out.push_str(name);
    out.push_str("><![CDATA[");
    let text = xml_chars(text);
    let mut rest = text.as_ref();
    while let Some(at) = rest.find("]]>") {
        out.push_str(&rest[..at]);
        out.push_str("]]]]><![CDATA[>");
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    out.push_str("]]></");
    out.push_str(name);
    out.push('>');
}

/// Appends `<name>value</name>` for a number.
pub fn push_number(out: &mut String, name: &str, value: impl std::fmt::Display) {
    use std::fmt::Write;
    let _ = write!(out, "<{name}>{value}</{name}>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cdata_and_text_both_work_and_concatenate() {
        let root =
            parse("<xml><A><![CDATA[x]]]]><![CDATA[>y]]></A><B>1 &lt; 2</B><C/></xml>").unwrap();
        assert_eq!(root.text_of("A"), Some("x]]>y"));
        assert_eq!(root.text_of("B"), Some("1 < 2"));
        assert_eq!(root.text_of("C"), Some(""));
        assert_eq!(root.text_of("D"), None);
    }

    #[test]
    fn references_expand_and_undefined_ones_are_refused() {
        let root =
            parse("&#32;<xml><A>&lt;&gt;&amp;&apos;&quot;</A><B>a&#65;&#x42;&#x4e2d;z</B></xml>")
                .unwrap();
        assert_eq!(root.text_of("A"), Some("<>&'\""));
        assert_eq!(root.text_of("B"), Some("aAB中z"));
        for bad in [
            "<xml><A>&#0;</A></xml>",
            "<xml><A>&#xZZ;</A></xml>",
            "&amp;<xml></xml>",
        ] {
            assert!(
                matches!(parse(bad), Err(Error::MalformedXml { .. })),
                "{bad:?}"
            );
        }
        let long = format!("<xml><A>&{};</A></xml>", "e".repeat(10_000));
        let Err(Error::MalformedXml { reason }) = parse(&long) else {
            panic!("an undefined entity is refused")
        };
        assert!(
            reason.contains("undefined entity") && reason.len() < 200,
            "{reason}"
        );
    }

    #[test]
    fn push_cdata_survives_terminators() {
        for text in ["", "]]>", "a]]>b]]>c", "]]]]>", "plain"] {
            let mut out = String::from("<xml>");
            push_cdata(&mut out, "T", text);
            out.push_str("</xml>");
            assert_eq!(parse(&out).unwrap().text_of("T"), Some(text), "{out}");
        }
    }

    #[test]
    fn refusals() {
        let doctype =
            "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY a \"b\">]><xml><A>&a;</A></xml>";
        assert_eq!(parse(doctype), Err(Error::XmlDoctype));
        for bad in [
            "",
            "<xml>",
            "<xml><A></B></xml>",
            "<xml><A>&unknown;</A></xml>",
            "not xml",
            "<xml><A>x</A>",
        ] {
            assert!(
                matches!(parse(bad), Err(Error::MalformedXml { .. })),
                "{bad:?}"
            );
        }
        let deep = format!(
            "{}{}",
            "<a>".repeat(MAX_DEPTH + 1),
            "</a>".repeat(MAX_DEPTH + 1)
        );
        assert!(matches!(parse(&deep), Err(Error::MalformedXml { .. })));
        let wide = format!("<xml>{}</xml>", "<a/>".repeat(MAX_ELEMENTS + 1));
        assert!(matches!(parse(&wide), Err(Error::MalformedXml { .. })));
    }

    #[test]
    fn push_cdata_writes_only_xml_1_0_characters() {
        for (text, written) in [
            ("a\0b", "ab"),
            ("a\u{b}b\u{c}c\u{1}\u{8}\u{e}\u{1f}", "abc"),
            ("\u{fffe}x\u{ffff}", "x"),
            ("]]\0>", "]]>"),
            ("tab\tnl\ncr\r end", "tab\tnl\ncr\r end"),
            (
                "\u{20}\u{7f}\u{d7ff}\u{e000}\u{fffd}\u{10000}\u{10ffff}",
                "\u{20}\u{7f}\u{d7ff}\u{e000}\u{fffd}\u{10000}\u{10ffff}",
            ),
        ] {
            let mut out = String::from("<xml>");
            push_cdata(&mut out, "T", text);
            out.push_str("</xml>");
            assert!(out.chars().all(is_xml_char), "{out:?}");
            assert_eq!(parse(&out).unwrap().text_of("T"), Some(written), "{text:?}");
        }
        assert!(matches!(xml_chars("plain"), std::borrow::Cow::Borrowed(_)));
        // Full-width punctuation shares the lead byte of U+FFFE and stays.
        assert!(matches!(
            xml_chars("你好，世界！\u{fffd}"),
            std::borrow::Cow::Borrowed(_)
        ));
        for c in ['\0', '\u{b}', '\u{fffe}', '\u{ffff}', '\u{1f}'] {
            assert!(
                matches!(xml_chars(&format!("a{c}")), std::borrow::Cow::Owned(_)),
                "{c:?}"
            );
        }
    }

    #[test]
    fn control_characters_in_text_are_kept() {
        let root = parse("<xml><Content><![CDATA[a\u{1}b\u{1f}c]]></Content></xml>").unwrap();
        assert_eq!(root.text_of("Content"), Some("a\u{1}b\u{1f}c"));
    }
}
