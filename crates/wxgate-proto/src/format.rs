//! The two data formats of a push: XML (every Official Account, and mini-programs by
//! default) and JSON (mini-programs and mini-games whose console says 数据格式 JSON).
//!
//! The format is read from the body, not from the configuration: the console switch
//! applies at once, so a push may come in the other format than configured, and its
//! answer must be in the format it came in.

use crate::xml::Element;
use crate::{json, xml, Error};

/// XML or JSON.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Format {
    /// `<xml>…</xml>`.
    #[default]
    Xml,
    /// `{…}`.
    Json,
}

impl Format {
    /// The format of a body, from its first byte that is not whitespace: `<` is XML,
    /// `{` is JSON.
    ///
    /// # Errors
    /// [`Error::UnknownFormat`] for anything else, an empty body included.
    pub fn detect(body: &str) -> Result<Format, Error> {
        match body
            .bytes()
            .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        {
            Some(b'<') => Ok(Format::Xml),
            Some(b'{') => Ok(Format::Json),
            _ => Err(Error::UnknownFormat),
        }
    }

    /// Parses a document of this format into its root element.
    ///
    /// # Errors
    /// The errors of [`xml::parse`] or [`json::parse`].
    pub fn parse(self, text: &str) -> Result<Element, Error> {
        match self {
            Format::Xml => xml::parse(text),
            Format::Json => json::parse(text),
        }
    }

    /// `xml` or `json`, as the configuration spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Xml => "xml",
            Format::Json => "json",
        }
    }

    /// Reads `xml` or `json`.
    pub fn parse_name(text: &str) -> Option<Format> {
        match text {
            "xml" => Some(Format::Xml),
            "json" => Some(Format::Json),
            _ => None,
        }
    }

    /// The `Content-Type` of an answer in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Xml => "application/xml; charset=utf-8",
            Format::Json => "application/json; charset=utf-8",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection_by_first_byte() {
        for (body, format) in [
            ("<xml/>", Ok(Format::Xml)),
            (" \r\n\t<xml/>", Ok(Format::Xml)),
            ("{}", Ok(Format::Json)),
            ("\n {\"a\":1}", Ok(Format::Json)),
            ("", Err(Error::UnknownFormat)),
            ("   ", Err(Error::UnknownFormat)),
            ("[1]", Err(Error::UnknownFormat)),
            ("xml", Err(Error::UnknownFormat)),
            ("\u{feff}<xml/>", Err(Error::UnknownFormat)),
        ] {
            assert_eq!(Format::detect(body), format, "{body:?}");
        }
        assert_eq!(Format::parse_name("json"), Some(Format::Json));
        assert_eq!(Format::parse_name("JSON"), None);
        assert_eq!(Format::Xml.as_str(), "xml");
    }
}
