//! How large a push may be, in one place.
//!
//! Everything before a valid signature is hostile, and in plain and compatible mode the
//! signature does not even cover the body: one signed query can carry any body for the
//! length of the timestamp window. So a push is held to what WeChat itself sends, and
//! anything larger is refused (a 400) before it reaches the rules, the dedup memory or
//! the JSON forwarded to a service.
//!
//! The bounds, and where they come from:
//!
//! | what | bound | why |
//! |---|---|---|
//! | document depth | [`MAX_DEPTH`] = 16 | WeChat nests 4 levels at most |
//! | elements per document | [`MAX_ELEMENTS`] = 4096 | the largest lists (PicList, ResultList) hold dozens |
//! | `ToUserName`, `FromUserName` | [`MAX_ID_BYTES`] = 128 | a `gh_` id is 15 bytes, an OpenID 28, a WeCom UserID at most 64 |
//! | `MsgType`, `Event` | [`MAX_WORD_BYTES`] = 64 | single words such as `TEMPLATESENDJOBFINISH` (21) |
//! | `CreateTime`, `MsgId` | [`MAX_NUMBER_BYTES`] = 32 | 64-bit decimal numbers have at most 20 digits |
//! | `EventKey` | [`MAX_EVENT_KEY_BYTES`] = 4096 | a menu key is ≤ 128 bytes, a menu URL ≤ 1024 |
//! | any other text, at any depth | [`MAX_TEXT_BYTES`] = 64 KiB | a text message is about 2048 bytes in practice, which WeChat does not guarantee: generous, but bounded |
//!
//! The same bounds hold for a JSON push (mini-programs and mini-games), read into the
//! same tree by [`crate::json`]: depth and element count are checked by that reader,
//! the field bounds here.
//!
//! A field counts in bytes of UTF-8 after CDATA and entities are read (after escapes,
//! for JSON; a JSON number counts as written). The fields wxgate itself reads
//! ([`TEXT_FIELDS`]) must be text: a group or an array there would show wxgate's rules
//! one value (none) and a service another. `MsgId` must also
//! be a 64-bit unsigned decimal number (surrounding whitespace allowed), and no field may
//! appear twice at the top level: WeChat sends each once, and a second `MsgId` or
//! `FromUserName` would mean one thing to wxgate's rules and another to a service that
//! reads the forwarded JSON. Names are compared as that JSON names them, without ASCII
//! case and underscores (`MsgId` and `MsgID` are both `msg_id`). Only elements the
//! protocol defines as lists ([`LIST_ELEMENTS`]) may repeat there; below the top level,
//! groups are lists or records whose shape varies by event (`PicList/item`,
//! `ResultList/item`, `PublishEventInfo/fail_idx`), so repetition stays legal and the
//! text bound applies.

use crate::error::shorten;
use crate::xml::Element;
use crate::Error;

pub use crate::xml::{MAX_DEPTH, MAX_ELEMENTS};
/// `ToUserName` and `FromUserName`.
pub const MAX_ID_BYTES: usize = 128;
/// `MsgType` and `Event`.
pub const MAX_WORD_BYTES: usize = 64;
/// `CreateTime` and `MsgId`.
pub const MAX_NUMBER_BYTES: usize = 32;
/// `EventKey`.
pub const MAX_EVENT_KEY_BYTES: usize = 4096;
/// Every other field, at any depth.
pub const MAX_TEXT_BYTES: usize = 64 * 1024;
/// Elements that may repeat at the top level, because the protocol defines them as
/// list items.
pub const LIST_ELEMENTS: [&str; 2] = ["List", "item"];
/// Top-level fields that wxgate reads (rules, dedup, replies): text or a number, never
/// a group or an array.
pub const TEXT_FIELDS: [&str; 8] = [
    "ToUserName",
    "FromUserName",
    "CreateTime",
    "MsgType",
    "MsgId",
    "Event",
    "EventKey",
    "Content",
];

/// The most bytes a top-level field named `name` may hold.
pub fn max_field_bytes(name: &str) -> usize {
    match name {
        "ToUserName" | "FromUserName" => MAX_ID_BYTES,
        "MsgType" | "Event" => MAX_WORD_BYTES,
        "CreateTime" | "MsgId" => MAX_NUMBER_BYTES,
        "EventKey" => MAX_EVENT_KEY_BYTES,
        _ => MAX_TEXT_BYTES,
    }
}

/// Checks a parsed push against the bounds above, and returns its `MsgId`, if any.
///
/// # Errors
/// [`Error::FieldTooLong`] for a field over its bound, [`Error::DuplicateField`] for a
/// top-level field sent twice, [`Error::FieldNotText`] for a group or an array in one
/// of [`TEXT_FIELDS`], [`Error::BadNumber`] for a `MsgId` that is not a 64-bit unsigned
/// number.
pub fn check_push(root: &Element) -> Result<Option<u64>, Error> {
    for field in &root.children {
        let max = max_field_bytes(&field.name);
        if field.text.len() > max {
            return Err(too_long(&field.name, field.text.len(), max));
        }
        if (field.array || !field.children.is_empty()) && TEXT_FIELDS.contains(&field.name.as_str())
        {
            return Err(Error::FieldNotText {
                field: field.name.clone(),
            });
        }
        check_text_below(field)?;
    }
    if let Some(field) = first_duplicate(&root.children) {
        return Err(Error::DuplicateField {
            field: shorten(&field.name),
        });
    }
    root.text_of("MsgId").map(msg_id).transpose()
}

/// A `MsgId` as its number: decimal digits only (around them, ASCII whitespace), at
/// most `u64::MAX`.
///
/// # Errors
/// [`Error::BadNumber`] otherwise; the value in it is at most [`MAX_NUMBER_BYTES`]
/// long when the field passed [`check_push`].
pub fn msg_id(text: &str) -> Result<u64, Error> {
    let digits = text.trim_ascii();
    let number = digits.bytes().try_fold(0u64, |n, b| {
        let digit = b.checked_sub(b'0').filter(|d| *d <= 9)?;
        n.checked_mul(10)?.checked_add(u64::from(digit))
    });
    match number {
        Some(id) if !digits.is_empty() => Ok(id),
        _ => Err(Error::BadNumber {
            field: "MsgId",
            value: shorten(digits),
        }),
    }
}

/// The first field, in document order, whose name an earlier field already has, as
/// [`json_name`] compares them; [`LIST_ELEMENTS`] (so compared) may repeat. Pairwise, without
/// allocating, for the dozen fields of a real push; sorted for a long list, so that
/// thousands of fields cost n·log n, not n².
fn first_duplicate(fields: &[Element]) -> Option<&Element> {
    const PAIRWISE_UP_TO: usize = 32;
    let is_list = |field: &Element| {
        LIST_ELEMENTS
            .iter()
            .any(|list| json_name(list).eq(json_name(&field.name)))
    };
    if fields.len() <= PAIRWISE_UP_TO {
        return fields.iter().enumerate().find_map(|(at, field)| {
            let twice = fields[..at]
                .iter()
                .any(|e| json_name(&e.name).eq(json_name(&field.name)));
            (twice && !is_list(field)).then_some(field)
        });
    }
    let mut names: Vec<(Vec<u8>, usize)> = fields
        .iter()
        .enumerate()
        .filter(|(_, field)| !is_list(field))
        .map(|(at, field)| (json_name(&field.name).collect(), at))
        .collect();
    names.sort_unstable();
    names
        .windows(2)
        .filter(|pair| pair[0].0 == pair[1].0)
        .map(|pair| pair[1].1)
        .min()
        .map(|at| &fields[at])
}

/// The name as compared for duplicates: ASCII lowercase, without underscores. Two names
/// the forwarded JSON would give the same key always compare equal here.
pub(crate) fn json_name(name: &str) -> impl Iterator<Item = u8> + '_ {
    name.bytes()
        .filter(|&b| b != b'_')
        .map(|b| b.to_ascii_lowercase())
}

fn check_text_below(group: &Element) -> Result<(), Error> {
    let mut stack: Vec<&Element> = group.children.iter().collect();
    while let Some(element) = stack.pop() {
        if element.text.len() > MAX_TEXT_BYTES {
            return Err(too_long(&element.name, element.text.len(), MAX_TEXT_BYTES));
        }
        stack.extend(&element.children);
    }
    Ok(())
}

fn too_long(name: &str, bytes: usize, max: usize) -> Error {
    Error::FieldTooLong {
        field: shorten(name),
        bytes,
        max,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml;

    fn check(body: &str) -> Result<(), Error> {
        check_push(&xml::parse(body).unwrap()).map(|_| ())
    }

    #[test]
    fn bounds_by_field() {
        let at =
            |name: &str, len: usize| format!("<xml><{name}>{}</{name}></xml>", "1".repeat(len));
        for (name, max) in [
            ("ToUserName", MAX_ID_BYTES),
            ("FromUserName", MAX_ID_BYTES),
            ("MsgType", MAX_WORD_BYTES),
            ("Event", MAX_WORD_BYTES),
            ("CreateTime", MAX_NUMBER_BYTES),
            ("MsgId", MAX_NUMBER_BYTES),
            ("EventKey", MAX_EVENT_KEY_BYTES),
            ("Content", MAX_TEXT_BYTES),
            ("Anything", MAX_TEXT_BYTES),
        ] {
            if name != "MsgId" {
                assert_eq!(check(&at(name, max)), Ok(()), "{name}");
            }
            assert_eq!(
                check(&at(name, max + 1)),
                Err(Error::FieldTooLong {
                    field: name.to_owned(),
                    bytes: max + 1,
                    max
                }),
                "{name}"
            );
        }
    }

    #[test]
    fn nested_text_is_bounded_too() {
        let body = format!(
            "<xml><SendPicsInfo><PicList><item><PicMd5Sum>{}</PicMd5Sum></item></PicList></SendPicsInfo></xml>",
            "a".repeat(MAX_TEXT_BYTES + 1)
        );
        assert!(
            matches!(check(&body), Err(Error::FieldTooLong { field, .. }) if field == "PicMd5Sum")
        );
    }

    #[test]
    fn top_level_fields_are_single_lists_and_nested_groups_repeat() {
        for field in [
            "MsgId",
            "FromUserName",
            "CreateTime",
            "MsgType",
            "Content",
            "ScanCodeInfo",
        ] {
            let body = format!("<xml><{field}>1</{field}><{field}>1</{field}></xml>");
            assert_eq!(
                check(&body),
                Err(Error::DuplicateField {
                    field: field.to_owned()
                }),
                "{field}"
            );
        }
        for (first, second) in [
            ("MsgId", "MsgID"),
            ("Location_X", "LocationX"),
            ("msgId", "Msg_Id"),
        ] {
            let body = format!("<xml><{first}>1</{first}><{second}>2</{second}></xml>");
            assert_eq!(
                check(&body),
                Err(Error::DuplicateField {
                    field: second.to_owned()
                }),
                "{body}"
            );
        }
        assert_eq!(
            check("<xml><List><A>1</A></List><List><A>2</A></List></xml>"),
            Ok(())
        );
        assert_eq!(
            check("<xml><PicList><item>a</item><item>b</item></PicList><PublishEventInfo><fail_idx>1</fail_idx><fail_idx>2</fail_idx></PublishEventInfo></xml>"),
            Ok(())
        );
    }

    #[test]
    fn fields_wxgate_reads_are_text() {
        for field in TEXT_FIELDS {
            let body = format!("<xml><{field}><A>1</A></{field}></xml>");
            assert_eq!(
                check(&body),
                Err(Error::FieldNotText {
                    field: field.to_owned()
                }),
                "{field}"
            );
        }
        assert_eq!(
            check("<xml><ScanCodeInfo><A>1</A></ScanCodeInfo></xml>"),
            Ok(())
        );
    }

    #[test]
    fn many_fields_are_checked_like_a_few() {
        let fields: String = (0..3000).map(|i| format!("<F{i}>x</F{i}>")).collect();
        assert_eq!(check(&format!("<xml>{fields}<List/><List/></xml>")), Ok(()));
        let body =
            format!("<xml>{fields}<Msg_Id>1</Msg_Id><item/><MSGID>2</MSGID><F7>y</F7></xml>");
        assert_eq!(
            check(&body),
            Err(Error::DuplicateField {
                field: "MSGID".to_owned()
            }),
            "the first repeat in document order"
        );
        let few = "<xml><F7>x</F7><Msg_Id>1</Msg_Id><item/><MSGID>2</MSGID><F7>y</F7></xml>";
        assert_eq!(
            check(few),
            Err(Error::DuplicateField {
                field: "MSGID".to_owned()
            })
        );
    }

    #[test]
    fn msg_id_is_a_u64() {
        assert_eq!(msg_id("18446744073709551615"), Ok(u64::MAX));
        assert_eq!(msg_id(" 42\n"), Ok(42));
        assert_eq!(msg_id("007"), Ok(7));
        assert_eq!(msg_id("0"), Ok(0));
        assert_eq!(
            check_push(&xml::parse("<xml><MsgId>12</MsgId></xml>").unwrap()),
            Ok(Some(12))
        );
        assert_eq!(check_push(&xml::parse("<xml/>").unwrap()), Ok(None));
        for bad in [
            "",
            " ",
            "18446744073709551616",
            "-1",
            "+1",
            "1e3",
            "0x10",
            "12 34",
            "١٢",
        ] {
            assert!(
                matches!(msg_id(bad), Err(Error::BadNumber { field: "MsgId", .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn names_in_errors_are_short() {
        let name = "N".repeat(10_000);
        let body = format!("<xml><{name}>1</{name}><{name}>1</{name}></xml>");
        let Err(Error::DuplicateField { field }) = check(&body) else {
            panic!("duplicate expected")
        };
        assert!(field.len() < 80, "{}", field.len());
        assert!(shorten(&"é".repeat(100)).len() <= 67);
    }
}
