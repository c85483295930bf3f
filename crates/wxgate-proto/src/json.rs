//! JSON pushes (mini-programs and mini-games), read into the same [`Element`] tree as
//! XML, and the small writer that renders JSON replies and envelopes.
//!
//! A mini-program whose console is set to 数据格式 JSON sends `{"ToUserName": …,
//! "MsgType": …, "CreateTime": 1714112445, …}` with the XML's field names. The reader
//! turns it into the tree the XML reader builds, so the limits, the message model, the
//! rules, the dedup key and the JSON forwarded to a service are the same for both:
//!
//! | JSON | [`Element`] |
//! |---|---|
//! | the top-level object | the root, named `xml` |
//! | `"Name": "text"` | a leaf `Name` with that text |
//! | `"Name": 123456789012345678901` | a leaf whose text is the number **as written** (never through a float) |
//! | `"Name": true` / `false` / `null` | a leaf with text `true` / `false` / empty |
//! | `"Name": {…}` | a group `Name` with one child per key, in order |
//! | `"Name": […]` | a group `Name` marked [`Element::array`], one child `item` per value |
//!
//! The document is held to the XML reader's bounds ([`MAX_DEPTH`] levels of the tree,
//! [`MAX_ELEMENTS`] elements) and no object may hold a key twice (compared as
//! [`crate::limits`] compares names: without ASCII case and underscores). serde_json
//! reads each value; a value that is an object or an array is read again from its raw
//! text one level down, so a document is scanned at most [`MAX_DEPTH`] times, and
//! serde_json's own recursion limit stops a deeper document before that.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::limits::{self, MAX_DEPTH, MAX_ELEMENTS};
use crate::xml::Element;
use crate::Error;

/// Parses a JSON push (or envelope) into an [`Element`] named `xml`.
///
/// # Errors
/// [`Error::MalformedJson`] for text that is not one JSON object, a document deeper
/// than [`MAX_DEPTH`] or with more than [`MAX_ELEMENTS`] elements;
/// [`Error::DuplicateField`] for an object that holds a key twice.
pub fn parse(text: &str) -> Result<Element, Error> {
    let mut reader = Reader {
        elements: 1,
        depth_seen: 1,
    };
    let children = reader.object(text, 1)?;
    Ok(Element {
        name: "xml".to_owned(),
        children,
        ..Element::default()
    })
}

struct Reader {
    /// Elements created so far (the root included).
    elements: usize,
    /// Deepest level reached (the root is level 1).
    depth_seen: usize,
}

fn malformed(reason: impl Into<String>) -> Error {
    Error::MalformedJson {
        reason: reason.into(),
    }
}

impl Reader {
    /// The elements for the keys of the object in `raw`, whose own element sits at
    /// `depth`.
    fn object(&mut self, raw: &str, depth: usize) -> Result<Vec<Element>, Error> {
        let room = MAX_ELEMENTS - self.elements;
        let entries = Entries::read(raw, room)?;
        let mut seen = HashSet::with_capacity(entries.len());
        let mut children = Vec::with_capacity(entries.len());
        for (name, value) in entries {
            if !seen.insert(limits::json_name(&name)) {
                return Err(Error::DuplicateField {
                    field: limits::shorten(&name),
                });
            }
            children.push(self.value(name, value, depth + 1)?);
        }
        Ok(children)
    }

    /// The element `name` for one value, at `depth`.
    fn value(&mut self, name: String, value: &RawValue, depth: usize) -> Result<Element, Error> {
        self.elements += 1;
        if self.elements > MAX_ELEMENTS {
            return Err(malformed(format!(
                "more than {MAX_ELEMENTS} fields and values in all"
            )));
        }
        if depth > MAX_DEPTH {
            return Err(malformed(format!("nested deeper than {MAX_DEPTH} levels")));
        }
        self.depth_seen = self.depth_seen.max(depth);
        let raw = value.get();
        let mut element = Element {
            name,
            ..Element::default()
        };
        match raw.as_bytes().first() {
            Some(b'{') => element.children = self.object(raw, depth)?,
            Some(b'[') => {
                element.array = true;
                let room = MAX_ELEMENTS - self.elements;
                for item in Items::read(raw, room)? {
                    element
                        .children
                        .push(self.value("item".to_owned(), item, depth + 1)?);
                }
            }
            Some(b'"') => {
                element.text = serde_json::from_str(raw).map_err(|e| malformed(e.to_string()))?;
            }
            Some(b'n') => {}
            // true, false and numbers: the text as written, so no number goes through
            // a float and a 64-bit MsgId stays exact.
            _ => element.text = raw.to_owned(),
        }
        Ok(element)
    }
}

/// The keys and raw values of one object, in order, at most `room` of them.
struct Entries<'a>(Vec<(String, &'a RawValue)>);

impl<'a> Entries<'a> {
    fn read(raw: &'a str, room: usize) -> Result<Vec<(String, &'a RawValue)>, Error> {
        let mut de = serde_json::Deserializer::from_str(raw);
        let entries = EntriesSeed { room }
            .deserialize(&mut de)
            .and_then(|entries| de.end().map(|()| entries))
            .map_err(|e| malformed(e.to_string()))?;
        Ok(entries.0)
    }
}

struct EntriesSeed {
    room: usize,
}

impl<'de> DeserializeSeed<'de> for EntriesSeed {
    type Value = Entries<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EntriesSeed {
    type Value = Entries<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            if entries.len() >= self.room {
                return Err(de::Error::custom(format!(
                    "more than {MAX_ELEMENTS} fields and values in all"
                )));
            }
            let value: &'de RawValue = map.next_value()?;
            entries.push((key, value));
        }
        Ok(Entries(entries))
    }
}

/// The raw values of one array, at most `room` of them.
struct Items<'a>(Vec<&'a RawValue>);

impl<'a> Items<'a> {
    fn read(raw: &'a str, room: usize) -> Result<Vec<&'a RawValue>, Error> {
        let mut de = serde_json::Deserializer::from_str(raw);
        let items = ItemsSeed { room }
            .deserialize(&mut de)
            .and_then(|items| de.end().map(|()| items))
            .map_err(|e| malformed(e.to_string()))?;
        Ok(items.0)
    }
}

struct ItemsSeed {
    room: usize,
}

impl<'de> DeserializeSeed<'de> for ItemsSeed {
    type Value = Items<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ItemsSeed {
    type Value = Items<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<&'de RawValue>()? {
            if items.len() >= self.room {
                return Err(de::Error::custom(format!(
                    "more than {MAX_ELEMENTS} fields and values in all"
                )));
            }
            items.push(item);
        }
        Ok(Items(items))
    }
}

/// Writes one JSON object, keys in the order given (WeChat's order, which a reader of
/// the bytes may compare).
#[derive(Debug)]
pub struct ObjectWriter {
    out: String,
}

impl Default for ObjectWriter {
    fn default() -> Self {
        ObjectWriter::new()
    }
}

impl ObjectWriter {
    /// An empty object.
    pub fn new() -> Self {
        ObjectWriter {
            out: String::from("{"),
        }
    }

    fn key(&mut self, key: &str) {
        if self.out.len() > 1 {
            self.out.push(',');
        }
        push_string(&mut self.out, key);
        self.out.push(':');
    }

    /// `"key":"value"`, escaped as JSON requires.
    pub fn string(&mut self, key: &str, value: &str) -> &mut Self {
        self.key(key);
        push_string(&mut self.out, value);
        self
    }

    /// `"key":value` for a number.
    pub fn number(&mut self, key: &str, value: impl fmt::Display) -> &mut Self {
        use std::fmt::Write;
        self.key(key);
        let _ = write!(self.out, "{value}");
        self
    }

    /// `"key":` followed by `json`, which must already be valid JSON (an object or an
    /// array from another writer).
    pub fn raw(&mut self, key: &str, json: &str) -> &mut Self {
        self.key(key);
        self.out.push_str(json);
        self
    }

    /// The object's text.
    pub fn finish(&mut self) -> String {
        let mut out = std::mem::take(&mut self.out);
        out.push('}');
        self.out.push('{');
        out
    }
}

/// Appends `text` as a JSON string literal.
pub fn push_string(out: &mut String, text: &str) {
    out.push_str(&serde_json::to_string(text).expect("a string always serializes"));
}

/// The JSON form of an XML push as WeChat's JSON format writes it: the same field
/// names, `CreateTime` and `MsgId` as numbers, groups as objects, repeated elements as
/// arrays. The builders of [`crate::push::build`] produce XML; this gives their JSON
/// twin.
///
/// # Errors
/// XML errors.
pub fn from_xml(xml_text: &str) -> Result<String, Error> {
    Ok(group_json(&crate::xml::parse(xml_text)?, true))
}

fn group_json(group: &Element, top: bool) -> String {
    let mut writer = ObjectWriter::new();
    let mut done: Vec<&str> = Vec::new();
    for child in &group.children {
        if done.contains(&child.name.as_str()) {
            continue;
        }
        let same: Vec<&Element> = group
            .children
            .iter()
            .filter(|c| c.name == child.name)
            .collect();
        if same.len() > 1 {
            let items: Vec<String> = same.iter().map(|c| value_json(c, false)).collect();
            writer.raw(&child.name, &format!("[{}]", items.join(",")));
        } else {
            writer.raw(&child.name, &value_json(child, top));
        }
        done.push(&child.name);
    }
    writer.finish()
}

fn value_json(element: &Element, top: bool) -> String {
    if !element.children.is_empty() {
        return group_json(element, false);
    }
    let numeric = top && matches!(element.name.as_str(), "CreateTime" | "MsgId");
    let text = element.text.trim();
    if numeric && !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        text.to_owned()
    } else {
        let mut out = String::new();
        push_string(&mut out, &element.text);
        out
    }
}

/// How deep a parsed tree goes (the root is level 1); for tests and diagnostics.
pub fn depth(element: &Element) -> usize {
    1 + element.children.iter().map(depth).max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_numbers_and_groups() {
        let root = parse(
            r#" {"ToUserName":"gh_1","CreateTime":1714112445,"MsgId":18446744073709551615,
                "Big":123456789012345678901234567890,"Float":23.1340,"Ok":true,"No":null,
                "Text":"a\u0000b\"c","List":[{"TemplateId":"t1"},{"TemplateId":"t2"}],
                "Nested":{"A":{"B":"deep"}},"Empty":[],"Obj":{}} "#,
        )
        .unwrap();
        assert_eq!(root.name, "xml");
        assert_eq!(root.text_of("ToUserName"), Some("gh_1"));
        assert_eq!(root.text_of("CreateTime"), Some("1714112445"));
        assert_eq!(root.text_of("MsgId"), Some("18446744073709551615"));
        assert_eq!(root.text_of("Big"), Some("123456789012345678901234567890"));
        assert_eq!(root.text_of("Float"), Some("23.1340"), "as written");
        assert_eq!(root.text_of("Ok"), Some("true"));
        assert_eq!(root.text_of("No"), Some(""));
        assert_eq!(root.text_of("Text"), Some("a\0b\"c"));
        let list = root.child("List").unwrap();
        assert!(list.array);
        assert_eq!(list.children.len(), 2);
        assert_eq!(list.children[1].name, "item");
        assert_eq!(list.children[1].text_of("TemplateId"), Some("t2"));
        let nested = root.child("Nested").unwrap();
        assert!(!nested.array);
        assert_eq!(nested.child("A").and_then(|a| a.text_of("B")), Some("deep"));
        let empty = root.child("Empty").unwrap();
        assert!(empty.array && empty.children.is_empty());
        assert!(!root.child("Obj").unwrap().array);
        let names: Vec<&str> = root.children.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names[..3],
            ["ToUserName", "CreateTime", "MsgId"],
            "order kept"
        );
    }

    #[test]
    fn refusals() {
        for bad in [
            "",
            "[]",
            "\"x\"",
            "1",
            "{",
            "{\"a\":}",
            "{\"a\":1}x",
            "{\"a\":1,}",
            "{'a':1}",
            "{\"a\":01}",
            "{\"a\":\"\\x\"}",
        ] {
            assert!(
                matches!(parse(bad), Err(Error::MalformedJson { .. })),
                "{bad:?}: {:?}",
                parse(bad)
            );
        }
        for (body, field) in [
            (r#"{"MsgId":1,"MsgId":2}"#, "MsgId"),
            (r#"{"MsgId":1,"msg_id":2}"#, "msg_id"),
            (r#"{"A":{"b":1,"B":2}}"#, "B"),
            (r#"{"A":[{"x":1,"x":1}]}"#, "x"),
        ] {
            assert_eq!(
                parse(body),
                Err(Error::DuplicateField {
                    field: field.to_owned()
                }),
                "{body}"
            );
        }
    }

    #[test]
    fn depth_and_size_are_bounded() {
        let nest = |levels: usize| {
            format!(
                "{}1{}",
                "{\"a\":".repeat(levels - 1),
                "}".repeat(levels - 1)
            )
        };
        // levels - 1 objects, then the leaf: `levels` levels of tree.
        let ok = parse(&nest(MAX_DEPTH)).unwrap();
        assert_eq!(depth(&ok), MAX_DEPTH);
        assert!(matches!(
            parse(&nest(MAX_DEPTH + 1)),
            Err(Error::MalformedJson { .. })
        ));
        let arrays = format!("{{\"a\":{}1{}}}", "[".repeat(50), "]".repeat(50));
        assert!(matches!(parse(&arrays), Err(Error::MalformedJson { .. })));
        // Far past serde_json's own recursion limit: an error, not a stack overflow.
        let abyss = format!("{{\"a\":{}", "[".repeat(100_000));
        assert!(matches!(parse(&abyss), Err(Error::MalformedJson { .. })));
        let wide = |n: usize| {
            let fields: Vec<String> = (0..n).map(|i| format!("\"f{i}\":1")).collect();
            format!("{{{}}}", fields.join(","))
        };
        assert!(parse(&wide(MAX_ELEMENTS - 1)).is_ok());
        assert!(matches!(
            parse(&wide(MAX_ELEMENTS)),
            Err(Error::MalformedJson { .. })
        ));
        let items = format!("{{\"a\":[{}1]}}", "1,".repeat(MAX_ELEMENTS));
        assert!(matches!(parse(&items), Err(Error::MalformedJson { .. })));
    }

    #[test]
    fn writer_and_from_xml() {
        let text = ObjectWriter::new()
            .string("A", "x\"y\n")
            .number("N", 5)
            .raw("O", "{}")
            .finish();
        assert_eq!(text, r#"{"A":"x\"y\n","N":5,"O":{}}"#);
        assert_eq!(ObjectWriter::new().finish(), "{}");
        let json = from_xml("<xml><ToUserName><![CDATA[gh]]></ToUserName><CreateTime>12</CreateTime><MsgId>18446744073709551615</MsgId><Info><Count>2</Count><Item>a</Item><Item>b</Item></Info></xml>").unwrap();
        assert_eq!(
            json,
            r#"{"ToUserName":"gh","CreateTime":12,"MsgId":18446744073709551615,"Info":{"Count":"2","Item":["a","b"]}}"#
        );
    }
}
