//! Text shown to people, shared by the server and the command line: a secret masked
//! for display, an error with its causes on one line.

/// Masks a secret for display: its first and last two characters and its length.
pub fn mask(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() <= 4 {
        return format!("<{} chars>", chars.len());
    }
    let head: String = chars[..2].iter().collect();
    let tail: String = chars[chars.len() - 2..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 4))
}

/// Describes an error and its causes in one line.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// `url` without what may hold a secret (user, password, query, fragment), for a
/// start-up line; a placeholder when it does not parse.
pub fn url_without_query(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.set_query(None);
            parsed.set_fragment(None);
            parsed.to_string()
        }
        Err(_) => "(unparsable URL)".to_owned(),
    }
}

#[cfg(test)]
mod url_tests {
    #[test]
    fn secrets_leave_the_url() {
        assert_eq!(
            super::url_without_query("https://u:p@svc.example.com:8443/hook?key=s#x"),
            "https://svc.example.com:8443/hook"
        );
        assert_eq!(super::url_without_query("not a url"), "(unparsable URL)");
    }
}
