//! Mini-program links: `generatescheme` (an encrypted URL Scheme), `generate_urllink`
//! (a URL Link on wxaurl.cn) and `getwxacodeunlimit` (a mini-program code, as a PNG).
//!
//! The limits and errcodes follow WeChat's pages (consulted 2026-11):
//! * generateScheme, <https://developers.weixin.qq.com/miniprogram/dev/OpenApiDoc/qrcode-link/url-scheme/generateScheme.html>:
//!   URL Schemes (encrypted and plain) and URL Links together are capped at 500,000
//!   generations a day per mini-program (45009 past it, in the emulator
//!   `link_daily_quota`); a link lives at most 30 days; a path that is not a published
//!   page, or carries a query, is 40165; an expire_time out of range is 85401.
//! * getUnlimitedQRCode, <https://developers.weixin.qq.com/miniprogram/dev/OpenApiDoc/qrcode-link/qr-code/getUnlimitedQRCode.html>:
//!   the image itself on success and JSON on error; 41030 for a page that does not
//!   exist in the published mini-program (unless `check_path` is false), 45009 past the
//!   5000 calls a minute (`wxacode_minute_quota`); `scene` is at most 32 visible
//!   characters of `[0-9A-Za-z!#$&'()*+,/:;=?@-._~]` (40169 otherwise).

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{header, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::{with_token, Params};
use crate::ids::random;
use crate::state::error;
use crate::Emulator;

/// The longest a link lives: 30 days.
const MAX_LIFETIME_S: i64 = 30 * 86_400;

/// A link the emulator generated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedLink {
    /// The AppID it opens.
    pub app_id: String,
    /// `weixin://dl/business/?t=…` or `https://wxaurl.cn/…`.
    pub link: String,
    /// The page (`path`) and its `query`.
    pub path: String,
    /// The query the mini-program receives.
    pub query: String,
    /// Unix time it stops working.
    pub expires_at: i64,
}

impl Emulator {
    /// Every scheme and URL Link generated so far, in order.
    pub fn generated_links(&self) -> Vec<GeneratedLink> {
        self.lock().links.clone()
    }

    /// Whether `page` is a published page (every page when none are configured).
    fn published(&self, page: &str) -> bool {
        (self.config.published_pages.as_ref()).is_none_or(|pages| pages.iter().any(|p| p == page))
    }

    /// One generation of a scheme or URL Link, within the day's quota.
    fn generate(&self, app_id: &str, request: &Value, link: String) -> Value {
        let (path, query) = match request.get("jump_wxa") {
            Some(jump) => (&jump["path"], &jump["query"]),
            None => (&request["path"], &request["query"]),
        };
        let path = path.as_str().unwrap_or_default();
        let query = query.as_str().unwrap_or_default();
        if path.contains('?') || !(path.is_empty() || self.published(path)) {
            return error(40165, "invalid weapp pagepath");
        }
        let now = self.now();
        let expires_at = match expiry(request, now) {
            Ok(at) => at,
            Err(answer) => return answer,
        };
        let day = (now + 8 * 3600).div_euclid(86_400);
        let mut inner = self.lock();
        let count = inner
            .link_generations
            .entry((app_id.to_owned(), day))
            .or_insert(0);
        if *count >= self.config.link_daily_quota {
            return error(45009, "reach max api daily quota limit");
        }
        *count += 1;
        inner.links.push(GeneratedLink {
            app_id: app_id.to_owned(),
            link: link.clone(),
            path: path.to_owned(),
            query: query.to_owned(),
            expires_at,
        });
        json!({ "errcode": 0, "errmsg": "ok", "link": link })
    }
}

/// When a link of this request expires: `expire_type` 1 takes `expire_interval` days,
/// otherwise `expire_time`; without either, 30 days (every link expires since 2023).
fn expiry(request: &Value, now: i64) -> Result<i64, Value> {
    let interval = request["expire_interval"].as_i64();
    let time = request["expire_time"].as_i64();
    match (request["expire_type"].as_i64().unwrap_or(0), interval, time) {
        (1, Some(days), _) if (1..=30).contains(&days) => Ok(now + days * 86_400),
        (1, _, _) => Err(error(85401, "invalid expire_interval, 1 to 30 days")),
        (_, _, Some(at)) if at > now + 60 && at <= now + MAX_LIFETIME_S => Ok(at),
        (_, _, Some(_)) => Err(error(
            85401,
            "invalid expire_time, more than a minute and at most 30 days ahead",
        )),
        _ => Ok(now + MAX_LIFETIME_S),
    }
}

pub(super) async fn generate_scheme(
    State(emu): State<Emulator>,
    uri: Uri,
    Query(q): Params,
    body: String,
) -> Response {
    generate_named(emu, &uri, &q, &body, "weixin://dl/business/?t=", "openlink")
}

pub(super) async fn generate_urllink(
    State(emu): State<Emulator>,
    uri: Uri,
    Query(q): Params,
    body: String,
) -> Response {
    generate_named(emu, &uri, &q, &body, "https://wxaurl.cn/", "url_link")
}

/// A scheme or URL Link: `prefix` and a random ticket, answered under `key`.
fn generate_named(
    emu: Emulator,
    uri: &Uri,
    q: &HashMap<String, String>,
    body: &str,
    prefix: &'static str,
    key: &'static str,
) -> Response {
    let emu2 = emu.clone();
    with_token(&emu, uri, q, body, move |app_id, request| {
        let link = format!("{prefix}{}", random(12));
        let mut answer = emu2.generate(app_id, request, link);
        if let Some(link) = answer.as_object_mut().and_then(|a| a.remove("link")) {
            answer[key] = link;
        }
        answer
    })
}

/// The PNG on success; JSON (recorded like every answer) on error.
pub(super) async fn get_wxacode_unlimit(
    State(emu): State<Emulator>,
    uri: Uri,
    Query(q): Params,
    body: String,
) -> Response {
    let mut image = None;
    let emu2 = emu.clone();
    let response = with_token(&emu, &uri, &q, &body, |app_id, request| {
        match emu2.wxacode(app_id, request) {
            Ok(png) => {
                image = Some(png);
                json!({ "errcode": 0, "errmsg": "ok" })
            }
            Err(answer) => answer,
        }
    });
    match image {
        Some(png) => ([(header::CONTENT_TYPE, "image/png")], png).into_response(),
        None => response,
    }
}

impl Emulator {
    /// The code of `page` with `scene`: a QR code of `wxaurl-emu://{app_id}/{page}?scene=…`
    /// (the real one is a round mini-program code no library reads).
    fn wxacode(&self, app_id: &str, request: &Value) -> Result<Vec<u8>, Value> {
        let scene = request["scene"].as_str().unwrap_or_default();
        let allowed = |c: char| c.is_ascii_alphanumeric() || "!#$&'()*+,/:;=?@-._~".contains(c);
        if scene.is_empty() || scene.chars().count() > 32 || !scene.chars().all(allowed) {
            return Err(error(
                40169,
                "invalid length for scene, or the data is not json string",
            ));
        }
        let page = request["page"].as_str().unwrap_or_default();
        let check_path = request["check_path"].as_bool().unwrap_or(true);
        if !page.is_empty() && check_path && !self.published(page) {
            return Err(error(41030, "invalid page"));
        }
        let minute = self.now().div_euclid(60);
        {
            let mut inner = self.lock();
            let count = inner
                .wxacode_calls
                .entry((app_id.to_owned(), minute))
                .or_insert(0);
            if *count >= self.config.wxacode_minute_quota {
                return Err(error(45009, "reach max api minute quota limit"));
            }
            *count += 1;
        }
        let text = format!("wxaurl-emu://{app_id}/{page}?scene={scene}");
        qr_png(text.as_bytes()).map_err(|reason| error(-1, &format!("system error: {reason}")))
    }
}

/// A QR code of `data` as a greyscale PNG, 8 pixels a module with a 4-module margin.
pub(crate) fn qr_png(data: &[u8]) -> Result<Vec<u8>, String> {
    let code = qrcode::QrCode::new(data).map_err(|e| e.to_string())?;
    let width = code.width();
    let colors = code.to_colors();
    let (scale, margin) = (8usize, 4usize);
    let side = (width + 2 * margin) * scale;
    let mut pixels = vec![255u8; side * side];
    for (index, color) in colors.iter().enumerate() {
        if *color == qrcode::Color::Dark {
            let (mx, my) = (index % width + margin, index / width + margin);
            for y in my * scale..(my + 1) * scale {
                pixels[y * side + mx * scale..y * side + (mx + 1) * scale].fill(0);
            }
        }
    }
    let mut out = Vec::new();
    let side32 = u32::try_from(side).map_err(|e| e.to_string())?;
    let mut encoder = png::Encoder::new(&mut out, side32, side32);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
    writer
        .write_image_data(&pixels)
        .map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    Ok(out)
}
