//! Values from the environment: a string value written as `"${VAR}"` (the whole value)
//! is replaced by the variable, once, on the parsed file before any check, so every key
//! takes it and every finding keeps its line. `$${` writes a literal `${`; any other
//! `${` is an error, so that a half-substituted value never passes silently.
//!
//! Also here: the dotted key path (`account[0].rule[1].when`) of a place in the file,
//! for the errors serde reports with a span only.

use std::borrow::Cow;
use std::env::VarError;
use std::fmt::Write as _;
use std::ops::Range;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::{line_of, ConfigError};

/// Reads a variable: `std::env::var` in the binary, a map in tests.
pub(super) type Lookup<'a> = &'a dyn Fn(&str) -> Result<String, VarError>;

/// One step of a key path.
#[derive(Clone)]
enum Step {
    Key(String),
    Index(usize),
}

fn path_text(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Key(key) if out.is_empty() => out.push_str(key),
            Step::Key(key) => {
                out.push('.');
                out.push_str(key);
            }
            Step::Index(index) => {
                let _ = write!(out, "[{index}]");
            }
        }
    }
    out
}

/// Replaces every `"${VAR}"` value of `root` by the variable and every `$${` by `${`.
///
/// # Errors
/// A variable that is not set or not UTF-8, or a `${` that is not the whole value;
/// the error names the line and the key, never a value.
pub(super) fn substitute(
    root: &mut Spanned<DeTable<'_>>,
    text: &str,
    file: &str,
    lookup: Lookup<'_>,
) -> Result<(), ConfigError> {
    let mut path = Vec::new();
    let mut on_string = |value: &mut Cow<'_, str>, span: Range<usize>, path: &[Step]| {
        let error = |message: String| ConfigError {
            file: file.to_owned(),
            line: Some(line_of(text, span.start)),
            key: path_text(path),
            message,
        };
        match expand(value, lookup) {
            Ok(Some(new)) => {
                *value = Cow::Owned(new);
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(problem) => Err(error(problem.to_string())),
        }
    };
    walk_table(root.get_mut(), &mut path, &mut on_string)
}

type OnString<'f> =
    dyn FnMut(&mut Cow<'_, str>, Range<usize>, &[Step]) -> Result<(), ConfigError> + 'f;

fn walk_table(
    table: &mut DeTable<'_>,
    path: &mut Vec<Step>,
    on_string: &mut OnString<'_>,
) -> Result<(), ConfigError> {
    for (key, value) in table.iter_mut() {
        path.push(Step::Key(key.get_ref().to_string()));
        walk_value(value, path, on_string)?;
        path.pop();
    }
    Ok(())
}

fn walk_value(
    value: &mut Spanned<DeValue<'_>>,
    path: &mut Vec<Step>,
    on_string: &mut OnString<'_>,
) -> Result<(), ConfigError> {
    let span = value.span();
    match value.get_mut() {
        DeValue::String(text) => on_string(text, span, path),
        DeValue::Table(table) => walk_table(table, path, on_string),
        DeValue::Array(array) => {
            for (index, item) in array.iter_mut().enumerate() {
                path.push(Step::Index(index));
                walk_value(item, path, on_string)?;
                path.pop();
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Why a value cannot take its variable. The messages never hold the value.
#[derive(Debug, thiserror::Error)]
enum EnvError {
    #[error("the environment variable {0} is not set; set it before starting wxgate (or write $${{ for a literal ${{)")]
    Unset(String),
    #[error("the environment variable {0} is not valid UTF-8; set it to UTF-8 text")]
    BadUnicode(String),
    #[error("\"${{\" is read from the environment only as the whole value, \"${{NAME}}\"; write $${{ for a literal ${{")]
    Partial,
}

/// The value to put instead of `value`, or `None` to keep it.
///
/// # Errors
/// What is wrong, without the value.
fn expand(value: &str, lookup: Lookup<'_>) -> Result<Option<String>, EnvError> {
    if let Some(name) = value
        .strip_prefix("${")
        .and_then(|rest| rest.strip_suffix('}'))
        .filter(|name| is_variable_name(name))
    {
        return match lookup(name) {
            Ok(found) => Ok(Some(found)),
            Err(VarError::NotPresent) => Err(EnvError::Unset(name.to_owned())),
            Err(VarError::NotUnicode(_)) => Err(EnvError::BadUnicode(name.to_owned())),
        };
    }
    if !value.contains("${") {
        return Ok(None);
    }
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find("${") {
        let Some(before) = rest[..at].strip_suffix('$') else {
            return Err(EnvError::Partial);
        };
        out.push_str(before);
        out.push_str("${");
        rest = &rest[at + 2..];
    }
    out.push_str(rest);
    Ok(Some(out))
}

/// `[A-Za-z_][A-Za-z0-9_]*`, as a shell names a variable.
fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The dotted path of the deepest key or value at `offset` of the file, e.g.
/// `account[0].tokn`; empty at the top level.
pub(super) fn path_at(root: &DeTable<'_>, offset: usize) -> String {
    let mut path = Vec::new();
    find_in_table(root, offset, &mut path);
    path_text(&path)
}

fn find_in_table(table: &DeTable<'_>, offset: usize, path: &mut Vec<Step>) -> bool {
    for (key, value) in table {
        let here = key.span().contains(&offset) || value.span().contains(&offset);
        if here || contains_offset(value, offset) {
            path.push(Step::Key(key.get_ref().to_string()));
            find_in_value(value, offset, path);
            return true;
        }
    }
    false
}

fn find_in_value(value: &Spanned<DeValue<'_>>, offset: usize, path: &mut Vec<Step>) {
    match value.get_ref() {
        DeValue::Table(table) => {
            find_in_table(table, offset, path);
        }
        DeValue::Array(array) => {
            for (index, item) in array.iter().enumerate() {
                if item.span().contains(&offset) || contains_offset(item, offset) {
                    path.push(Step::Index(index));
                    find_in_value(item, offset, path);
                    return;
                }
            }
        }
        _ => {}
    }
}

/// Whether a key or value anywhere inside `value` is at `offset` (a `[[table]]`'s own
/// span does not cover the keys written under it).
fn contains_offset(value: &Spanned<DeValue<'_>>, offset: usize) -> bool {
    match value.get_ref() {
        DeValue::Table(table) => table.iter().any(|(key, value)| {
            key.span().contains(&offset)
                || value.span().contains(&offset)
                || contains_offset(value, offset)
        }),
        DeValue::Array(array) => array
            .iter()
            .any(|item| item.span().contains(&offset) || contains_offset(item, offset)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(name: &str) -> Result<String, VarError> {
        match name {
            "WX_TOKEN" => Ok("from-the-environment".into()),
            _ => Err(VarError::NotPresent),
        }
    }

    #[test]
    fn a_whole_value_is_read_from_the_environment() {
        assert_eq!(
            expand("${WX_TOKEN}", &lookup).unwrap().as_deref(),
            Some("from-the-environment")
        );
        assert_eq!(expand("plain", &lookup).unwrap(), None);
    }

    #[test]
    fn a_doubled_dollar_is_a_literal() {
        assert_eq!(
            expand("$${WX_TOKEN}", &lookup).unwrap().as_deref(),
            Some("${WX_TOKEN}")
        );
        assert_eq!(
            expand("a $${b} c $${d}", &lookup).unwrap().as_deref(),
            Some("a ${b} c ${d}")
        );
    }

    #[test]
    fn a_missing_variable_or_a_partial_one_is_an_error() {
        let missing = expand("${WX_NOT_SET}", &lookup).unwrap_err().to_string();
        assert!(missing.contains("WX_NOT_SET is not set"), "{missing}");
        let partial = expand("https://${HOST}/x", &lookup)
            .unwrap_err()
            .to_string();
        assert!(partial.contains("whole value"), "{partial}");
        let bad_name = expand("${WX-TOKEN}", &lookup).unwrap_err().to_string();
        assert!(bad_name.contains("whole value"), "{bad_name}");
    }

    #[test]
    fn a_value_that_is_not_utf8_is_an_error() {
        let not_utf8 = |_: &str| -> Result<String, VarError> {
            Err(VarError::NotUnicode(std::ffi::OsString::from("x")))
        };
        let error = expand("${WX_TOKEN}", &not_utf8).unwrap_err().to_string();
        assert!(error.contains("not valid UTF-8"), "{error}");
    }

    #[test]
    fn the_path_of_a_place_names_the_account_index() {
        let text = "listen = \"127.0.0.1:1\"\n[[account]]\nname = \"a\"\n[[account]]\nname = \"b\"\ntokn = \"x\"\n";
        let root = DeTable::parse(text).unwrap();
        let offset = text.find("tokn").unwrap();
        assert_eq!(path_at(root.get_ref(), offset), "account[1].tokn");
        assert_eq!(path_at(root.get_ref(), 1), "listen");
    }
}
