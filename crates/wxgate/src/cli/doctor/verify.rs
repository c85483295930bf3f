//! `wxgate doctor --verify-domain URL`: fetches each `[[verify_file]]` of the config
//! from the domain the console will fetch it from, and compares it byte for byte, as
//! the console does before it accepts the domain.

use std::path::Path;
use std::time::Duration;

use crate::cli::probe::{Check, Status};
use crate::config::{base_url, Config, VerifyFile};

/// The most bytes read of an answer (a verification file is a few dozen).
const MAX_READ: usize = 64 * 1024;

/// The config the files come from: `--config`, else `./wxgate.toml`.
pub(super) fn files(config: Option<&Path>) -> Result<Vec<VerifyFile>, String> {
    let path = config.unwrap_or(Path::new("wxgate.toml"));
    let config = Config::load(path).map_err(|e| e.to_string())?;
    if config.verify_files.is_empty() {
        return Err(format!(
            "{} has no [[verify_file]]; add the file the console asks for (path and content) first",
            path.display()
        ));
    }
    Ok(config.verify_files)
}

/// One check per file: fetched at `domain` + its path, status 200, the same bytes,
/// `text/plain`.
pub(super) async fn check(
    client: &reqwest::Client,
    domain: &str,
    files: &[VerifyFile],
    timeout: Duration,
) -> Vec<Check> {
    let base = match base_url(domain) {
        Ok(_) => domain.trim_end_matches('/'),
        Err(problem) => {
            let detail = format!("{domain}: {problem}");
            let check = Check::new("verification domain", Status::Fail, detail)
                .hint("give the domain as the console has it, e.g. https://wx.example.com");
            return vec![check];
        }
    };
    let mut checks = Vec::new();
    for file in files {
        let url = format!("{base}{}", file.path);
        checks.push(match fetch(client, &url, timeout).await {
            Ok((status, content_type, body)) => judge(&url, file, status, &content_type, &body),
            Err(reason) => Check::new(format!("verify file {}", file.path), Status::Fail, format!("{url}: {reason}"))
                .hint("the console cannot fetch it either: check DNS, the proxy in front of wxgate and that it passes this path through"),
        });
    }
    checks
}

async fn fetch(
    client: &reqwest::Client,
    url: &str,
    timeout: Duration,
) -> Result<(u16, String, Vec<u8>), String> {
    let request = async {
        let mut response = client.get(url).send().await?;
        let status = response.status().as_u16();
        let content_type = (response.headers().get(reqwest::header::CONTENT_TYPE))
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_READ {
                break;
            }
        }
        Ok::<_, reqwest::Error>((status, content_type, body))
    };
    match tokio::time::timeout(timeout, request).await {
        Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
        Ok(Err(err)) => Err(crate::text::error_chain(&err.without_url())),
        Ok(Ok(answer)) => Ok(answer),
    }
}

fn judge(url: &str, file: &VerifyFile, status: u16, content_type: &str, body: &[u8]) -> Check {
    let name = format!("verify file {}", file.path);
    if status != 200 {
        return Check::new(name, Status::Fail, format!("{url} answered {status}"))
            .hint("the proxy in front of wxgate must pass this path through to it (or serve the same file)");
    }
    if body != file.content.as_bytes() {
        let shown = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
        return Check::new(
            name,
            Status::Fail,
            format!("{url} answered {} bytes that differ from the configured {} bytes: {shown:?}", body.len(), file.content.len()),
        )
        .hint("another server answers this path (a proxy rule, a static site) or the content changed; the console compares byte for byte");
    }
    if !content_type.starts_with("text/plain") {
        return Check::new(
            name,
            Status::Warn,
            format!("{url} has the content, but as {content_type:?}"),
        )
        .hint("serve it as text/plain; some consoles refuse other types");
    }
    Check::new(
        name,
        Status::Pass,
        format!("{url}: the same {} bytes, text/plain", body.len()),
    )
}
