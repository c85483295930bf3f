//! Secrets that are not secret: the placeholders of `wxgate.example.toml` and of
//! published examples. `serve` runs with them, so `check` (and the start-up log) warns,
//! as for a placeholder Token.

use toml::Spanned;

use wxgate_proto::console::Severity;

use super::validate::Validator;

/// Prefixes that mark a placeholder (compared case-insensitively).
pub(super) const PLACEHOLDER_PREFIXES: [&str; 5] =
    ["your", "replace", "example", "changeme", "placeholder"];

/// Whether `text` is a placeholder rather than a secret: it starts with one of
/// [`PLACEHOLDER_PREFIXES`], or says to replace it.
pub(super) fn is_placeholder(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    PLACEHOLDER_PREFIXES.iter().any(|p| lower.starts_with(p))
        || lower.contains("replace-with")
        || lower.contains("replace_with")
}

impl Validator<'_> {
    /// Warns when the secret `what` at `key` is a placeholder.
    pub(super) fn placeholder_secret(&mut self, value: &Spanned<String>, key: String, what: &str) {
        if is_placeholder(value.get_ref()) {
            self.push(
                Severity::Warning,
                Some(value.span()),
                key,
                format!("{what} is the example's placeholder, which anyone can read"),
                "set a random value of your own, e.g. from `openssl rand -hex 24`",
            );
        }
    }
}
