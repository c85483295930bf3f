//! `[[verify_file]]`: the domain verification files the consoles ask for before they
//! accept a domain (网页授权域名, JS接口安全域名, 业务域名: `MP_verify_….txt`; WeCom's
//! `WW_verify_….txt`; a mini-program's 业务域名 file with a random name, maybe in a
//! sub-directory). wxgate serves each at its exact path, byte for byte.
//!
//! The path is bounded and limited to the characters a URL path carries unencoded, so
//! the configured text is the path a request carries; a path under one of wxgate's own
//! routes is refused. The name and content are checked only for the two prefixes whose
//! shape WeChat and WeCom define (a warning: the consoles, not wxgate, decide).

use std::collections::HashSet;

use toml::Spanned;
use wxgate_proto::console::Severity;

use super::raw::RawVerifyFile;
use super::validate::Validator;

/// The longest path accepted, bytes.
pub const MAX_PATH_BYTES: usize = 256;
/// The largest content accepted, bytes (the consoles' files hold 16 to 32 characters).
pub const MAX_CONTENT_BYTES: usize = 4096;
/// The most files accepted.
pub const MAX_FILES: usize = 64;

/// wxgate's own routes: a verification file may not sit at or under one of them.
/// `(path, whole tree)`: a tree also covers everything under `path/`.
pub const RESERVED_PATHS: [(&str, bool); 9] = [
    ("/wx", true),
    ("/api", true),
    ("/oauth", true),
    ("/go", true),
    ("/open", true),
    ("/console", true),
    ("/healthz", false),
    ("/metrics", false),
    ("/", false),
];

/// A checked verification file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyFile {
    /// The exact request path, starting with '/'.
    pub path: String,
    /// The bytes served, as written.
    pub content: String,
}

/// Why a path cannot be served, or `None` when it can.
pub fn path_problem(path: &str) -> Option<String> {
    if path.len() > MAX_PATH_BYTES {
        return Some(format!("the path is longer than {MAX_PATH_BYTES} bytes"));
    }
    let Some(rest) = path.strip_prefix('/') else {
        return Some("the path must start with '/', e.g. \"/MP_verify_abc.txt\"".into());
    };
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~' | '/');
    if let Some(bad) = rest.chars().find(|&c| !allowed(c)) {
        return Some(format!(
            "{bad:?} is not allowed in the path: use letters, digits, '-', '.', '_', '~' and '/' (as the console names the file)"
        ));
    }
    if rest
        .split('/')
        .any(|segment| segment.is_empty() || segment == "." || segment == "..")
    {
        return Some(
            "the path has an empty, '.' or '..' segment (or ends with '/'): give the file's own path"
                .into(),
        );
    }
    let reserved = RESERVED_PATHS.iter().find(|(own, tree)| {
        path == *own || (*tree && path.strip_prefix(own).is_some_and(|r| r.starts_with('/')))
    });
    reserved.map(|(own, _)| format!("the path is wxgate's own route {own}; verification files must sit elsewhere (the console names a file at the domain root)"))
}

/// What the console expects of a file with a defined shape: `(problem, fix)` when the
/// name or content is off. `MP_verify_` (WeChat) and `WW_verify_` (WeCom): the name is
/// the prefix, 16 letters or digits and `.txt`, at the domain root, and the content is
/// the 16 characters.
pub fn shape_problems(path: &str, content: &str) -> Vec<(String, String)> {
    let name = path.rsplit('/').next().unwrap_or(path);
    let Some(prefix) = ["MP_verify_", "WW_verify_"]
        .into_iter()
        .find(|p| name.starts_with(p))
    else {
        return Vec::new();
    };
    let mut problems = Vec::new();
    let code = name[prefix.len()..].strip_suffix(".txt");
    let code = code.filter(|c| c.len() == 16 && c.bytes().all(|b| b.is_ascii_alphanumeric()));
    let Some(code) = code else {
        problems.push((
            format!("{name:?} is not shaped like the console's file ({prefix} + 16 letters or digits + .txt)"),
            "copy the file name exactly as the console shows it".into(),
        ));
        return problems;
    };
    if path != format!("/{name}") {
        problems.push((
            format!("{name} sits in a sub-directory; the console fetches it at the domain root"),
            format!("set path = \"/{name}\""),
        ));
    }
    if content != code {
        problems.push((
            format!("the content is not the file's code {code:?}, which is what the console's file holds"),
            format!("set content = \"{code}\" (the text of the downloaded file, without a newline)"),
        ));
    }
    problems
}

impl Validator<'_> {
    /// Every `[[verify_file]]`, each path once.
    pub(super) fn verify_files(&mut self, raw: Vec<Spanned<RawVerifyFile>>) -> Vec<VerifyFile> {
        if raw.len() > MAX_FILES {
            self.error(
                None,
                "verify_file".into(),
                format!("at most {MAX_FILES} [[verify_file]] are served; remove the ones the consoles no longer need"),
            );
        }
        let mut seen = HashSet::new();
        let mut files = Vec::new();
        for (index, file) in raw.into_iter().enumerate() {
            let file = file.into_inner();
            let key = |field: &str| format!("verify_file[{index}].{field}");
            let (path, content) = (file.path.get_ref(), file.content.get_ref());
            let mut ok = true;
            if let Some(problem) = path_problem(path) {
                self.error(Some(file.path.span()), key("path"), problem);
                ok = false;
            } else if !seen.insert(path.clone()) {
                let problem = format!("{path} is configured twice; keep one");
                self.error(Some(file.path.span()), key("path"), problem);
                ok = false;
            }
            if content.len() > MAX_CONTENT_BYTES {
                let problem = format!("the content is longer than {MAX_CONTENT_BYTES} bytes");
                self.error(Some(file.content.span()), key("content"), problem);
                ok = false;
            }
            if ok {
                for (problem, fix) in shape_problems(path, content) {
                    let span = Some(file.path.span());
                    self.push(Severity::Warning, span, key("path"), problem, fix);
                }
                files.push(VerifyFile {
                    path: path.clone(),
                    content: content.clone(),
                });
            }
        }
        files
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_under_own_routes_or_odd_are_refused() {
        for bad in [
            "MP_verify_a.txt",
            "/",
            "/wx/shop",
            "/api",
            "/go/mini/x.txt",
            "/open/acme/notify",
            "/console/x.txt",
            "/healthz",
            "/a//b.txt",
            "/a/../b.txt",
            "/a b.txt",
            "/a%2Fb.txt",
            "/dir/",
        ] {
            assert!(path_problem(bad).is_some(), "{bad} was accepted");
        }
        for good in [
            "/MP_verify_abc.txt",
            "/wxapp/a1b2.txt",
            "/gone.txt",
            "/healthz2",
        ] {
            assert_eq!(path_problem(good), None, "{good}");
        }
        assert!(path_problem(&format!("/{}", "a".repeat(MAX_PATH_BYTES))).is_some());
    }

    #[test]
    fn console_shapes_are_checked_only_for_their_prefixes() {
        let code = "AbCdEfGh12345678";
        let root = format!("/MP_verify_{code}.txt");
        assert!(shape_problems(&root, code).is_empty());
        assert!(shape_problems(&format!("/WW_verify_{code}.txt"), code).is_empty());
        assert_eq!(shape_problems(&root, "other").len(), 1);
        assert_eq!(shape_problems(&format!("/sub{root}"), code).len(), 1);
        assert_eq!(shape_problems("/MP_verify_short.txt", "short").len(), 1);
        assert!(shape_problems("/8f3a.txt", "anything at all").is_empty());
    }
}
