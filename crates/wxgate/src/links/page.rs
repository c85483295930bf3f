//! The pages of `/go/{account}/{link}`, as text: every value printed is escaped
//! ([`escape`]), none reaches a script as code (the mobile page's script reads the
//! targets from the links' `href`s), and the QR code is drawn here from the link
//! ([`qr_svg`]), never fetched.

use base64::Engine as _;

/// `s` safe in HTML text and in a double- or single-quoted attribute.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A QR code of `data` as an SVG document, 8 units a module with the quiet zone.
///
/// # Errors
/// `data` does not fit in a QR code (a link is far shorter than the limit).
pub fn qr_svg(data: &str) -> Result<String, qrcode::types::QrError> {
    let code = qrcode::QrCode::new(data.as_bytes())?;
    Ok(code
        .render::<qrcode::render::svg::Color<'_>>()
        .module_dimensions(8, 8)
        .quiet_zone(true)
        .build())
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:34rem;margin:2rem auto;padding:0 1rem;text-align:center;color:#222}\
a.button{display:inline-block;margin:.5rem;padding:.8rem 1.4rem;border-radius:.4rem;background:#07c160;color:#fff;text-decoration:none}\
code{word-break:break-all}";

fn document(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta name=\"referrer\" content=\"no-referrer\">\
         <title>{}</title><style>{STYLE}</style></head><body>{body}</body></html>\n",
        escape(title)
    )
}

/// For a desktop: the QR code of `target` (the URL Link; the plain scheme when no
/// link could be generated) and the target as text.
///
/// # Errors
/// As [`qr_svg`].
pub fn desktop(
    title: &str,
    target: &str,
    note: &str,
    code: Option<&str>,
) -> Result<String, qrcode::types::QrError> {
    let svg = qr_svg(target)?;
    let data = base64::engine::general_purpose::STANDARD.encode(svg);
    let code = code
        .map(|src| {
            format!(
                "<p>Or scan the mini-program code:</p><p><img id=\"code\" alt=\"mini-program code\" width=\"280\" height=\"280\" src=\"{}\"></p>",
                escape(src)
            )
        })
        .unwrap_or_default();
    let body = format!(
        "<h1>{title}</h1><p>Scan with WeChat on your phone.</p>\
         <p><img id=\"qr\" alt=\"QR code of the link\" width=\"320\" height=\"320\" src=\"data:image/svg+xml;base64,{data}\"></p>\
         <p>Or open it on the phone: <code id=\"link\">{target}</code></p><p>{note}</p>{code}",
        title = escape(title),
        target = escape(target),
        note = escape(note),
    );
    Ok(document(title, &body))
}

/// For a phone's browser: try the scheme, then go to the URL Link after 2 s (or stay
/// with both buttons when there is no link).
pub fn mobile(title: &str, scheme: &str, link: Option<&str>) -> String {
    let fallback = link
        .map(|link| {
            format!(
                "<a class=\"button\" id=\"link\" href=\"{}\">Open the link</a>",
                escape(link)
            )
        })
        .unwrap_or_default();
    let body = format!(
        "<h1>{title}</h1><p>Opening WeChat…</p>\
         <p><a class=\"button\" id=\"scheme\" href=\"{scheme}\">Open in WeChat</a>{fallback}</p>\
         <script>(function(){{var s=document.getElementById('scheme'),l=document.getElementById('link');\
         location.href=s.href;if(l){{setTimeout(function(){{if(!document.hidden)location.replace(l.href);}},2000);}}}})();</script>",
        title = escape(title),
        scheme = escape(scheme),
    );
    document(title, &body)
}

/// An error page: what went wrong and what the visitor can do.
pub fn error(title: &str, message: &str) -> String {
    let body = format!("<h1>{}</h1><p>{}</p>", escape(title), escape(message));
    document(title, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_printed_is_escaped() {
        let hostile = "\"><script>alert(1)</script>'&";
        for page in [
            desktop(hostile, "https://wxaurl.cn/a\"b<c>", hostile, Some(hostile)).unwrap(),
            mobile(
                hostile,
                "weixin://dl/business/?t=x&cq=\"'<>",
                Some("https://wxaurl.cn/'><"),
            ),
            error(hostile, hostile),
        ] {
            for raw in ["<script>alert", "a\"b", "b<c>", "/'><", "cq=\"", "'&\""] {
                assert!(!page.contains(raw), "{raw} in {page}");
            }
        }
        assert_eq!(escape("a&b<c>\"d'"), "a&amp;b&lt;c&gt;&quot;d&#39;");
    }
}
