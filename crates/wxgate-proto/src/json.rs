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
//! [`crate::limits`] compares names: without ASCII case and underscores). It is read in
//! one pass by serde_json, which stops at the first level or element too many; before
//! it, one linear scan collects the text of each number, so that a number reaches the
//! tree as written and never through a float. (serde_json still refuses a number
//! beyond a 64-bit float's range, such as `1e999`: WeChat sends none.)

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

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
        numbers: number_texts(text)?.into_iter(),
        elements: 0,
        failure: None,
    };
    let mut de = serde_json::Deserializer::from_str(text);
    let seed = ValueSeed {
        reader: &mut reader,
        name: "xml".to_owned(),
        depth: 1,
    };
    let read = seed
        .deserialize(&mut de)
        .and_then(|root| de.end().map(|()| root));
    match (read, reader.failure) {
        (_, Some(failure)) => Err(failure),
        (Ok(root), None) => Ok(root),
        (Err(e), None) => Err(malformed(e.to_string())),
    }
}

fn malformed(reason: impl Into<String>) -> Error {
    Error::MalformedJson {
        reason: reason.into(),
    }
}

fn too_many() -> Error {
    malformed(format!("more than {MAX_ELEMENTS} fields and values in all"))
}

/// The text of every number in `text`, in document order, read outside strings. Only
/// meaningful for valid JSON, which serde_json checks in the same call to [`parse`].
fn number_texts(text: &str) -> Result<Vec<&str>, Error> {
    let bytes = text.as_bytes();
    let mut numbers = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'"' => {
                at += 1;
                while at < bytes.len() && bytes[at] != b'"' {
                    at += if bytes[at] == b'\\' { 2 } else { 1 };
                }
                at += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = at;
                while at < bytes.len()
                    && matches!(bytes[at], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
                {
                    at += 1;
                }
                if numbers.len() == MAX_ELEMENTS {
                    return Err(too_many());
                }
                numbers.push(&text[start..at]);
            }
            _ => at += 1,
        }
    }
    Ok(numbers)
}

struct Reader<'t> {
    /// The numbers' texts, taken in the order serde_json visits them.
    numbers: std::vec::IntoIter<&'t str>,
    /// Elements created so far.
    elements: usize,
    /// Why reading stopped, when it is one of ours rather than serde_json's.
    failure: Option<Error>,
}

impl Reader<'_> {
    fn fail<E: de::Error>(&mut self, error: Error) -> E {
        let message = error.to_string();
        self.failure = Some(error);
        E::custom(message)
    }

    fn number<E: de::Error>(&mut self, visited: impl fmt::Display) -> Result<String, E> {
        match self.numbers.next() {
            Some(text) => Ok(text.to_owned()),
            // Not reachable for valid JSON; the visited value is the best left.
            None => Ok(visited.to_string()),
        }
    }
}

/// Reads one value into the element `name`, at `depth` in the tree.
struct ValueSeed<'r, 't> {
    reader: &'r mut Reader<'t>,
    name: String,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_, '_> {
    type Value = Element;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Element, D::Error> {
        self.reader.elements += 1;
        if self.reader.elements > MAX_ELEMENTS {
            return Err(self.reader.fail(too_many()));
        }
        if self.depth > MAX_DEPTH {
            let deep = malformed(format!("nested deeper than {MAX_DEPTH} levels"));
            return Err(self.reader.fail(deep));
        }
        if self.depth == 1 {
            deserializer.deserialize_map(self)
        } else {
            deserializer.deserialize_any(self)
        }
    }
}

impl ValueSeed<'_, '_> {
    fn leaf(self, text: String) -> Element {
        Element {
            name: self.name,
            text,
            ..Element::default()
        }
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_, '_> {
    type Value = Element;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.depth == 1 {
            "a JSON object (a push)"
        } else {
            "a JSON value"
        })
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Element, E> {
        Ok(self.leaf(text.to_owned()))
    }

    fn visit_string<E: de::Error>(self, text: String) -> Result<Element, E> {
        Ok(self.leaf(text))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Element, E> {
        let text = self.reader.number(value)?;
        Ok(self.leaf(text))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Element, E> {
        let text = self.reader.number(value)?;
        Ok(self.leaf(text))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Element, E> {
        let text = self.reader.number(value)?;
        Ok(self.leaf(text))
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Element, E> {
        Ok(self.leaf(value.to_string()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Element, E> {
        Ok(self.leaf(String::new()))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Element, A::Error> {
        let mut seen = HashSet::new();
        let mut children = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(limits::json_name(&key).collect::<Vec<u8>>()) {
                let field = crate::error::shorten(&key);
                return Err(self.reader.fail(Error::DuplicateField { field }));
            }
            children.push(map.next_value_seed(ValueSeed {
                reader: &mut *self.reader,
                name: key,
                depth: self.depth + 1,
            })?);
        }
        Ok(Element {
            name: self.name,
            children,
            ..Element::default()
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Element, A::Error> {
        let mut children = Vec::new();
        while let Some(item) = seq.next_element_seed(ValueSeed {
            reader: &mut *self.reader,
            name: "item".to_owned(),
            depth: self.depth + 1,
        })? {
            children.push(item);
        }
        Ok(Element {
            name: self.name,
            children,
            array: true,
            ..Element::default()
        })
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
            "{\"a\":1e999}",
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
        // Far past serde_json's own recursion limit, closed or not: an error, not a
        // stack overflow, found at level 17.
        for abyss in [
            format!("{{\"a\":{}", "[".repeat(100_000)),
            format!("{{\"a\":{}1{}}}", "[".repeat(500_000), "]".repeat(500_000)),
        ] {
            assert_eq!(
                parse(&abyss),
                Err(malformed(format!("nested deeper than {MAX_DEPTH} levels")))
            );
        }
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
