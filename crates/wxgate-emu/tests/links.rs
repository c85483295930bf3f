//! The emulator's mini-program links over real TCP: schemes and URL Links within the
//! daily quota (45009 past it, shared by both), 40165 for a page that is not published,
//! 85401 for an expiry out of range, and `getwxacodeunlimit`'s PNG (read back as a QR
//! code) or its JSON errors (41030, 40169).

use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::{json, Value};
use wxgate_emu::{App, Emulator, EmulatorConfig};

const APP_ID: &str = "wx1234567890abcdef";
const SECRET: &str = "0123456789abcdef0123456789abcdef";

fn http() -> reqwest::Client {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .build()
        .unwrap()
}

async fn start(quota: u32) -> (Emulator, String, String) {
    let config = EmulatorConfig {
        link_daily_quota: quota,
        wxacode_minute_quota: 2,
        published_pages: Some(vec!["pages/sale/index".into(), "pages/index/index".into()]),
        ..EmulatorConfig::with_app(App::new(APP_ID, SECRET))
    };
    let emu = Emulator::new(config);
    let (addr, _task) = emu
        .spawn(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let base = format!("http://{addr}");
    let token = fetch_token(&base).await;
    (emu, base, token)
}

async fn fetch_token(base: &str) -> String {
    let body = json!({ "grant_type": "client_credential", "appid": APP_ID, "secret": SECRET });
    let answer = post(&format!("{base}/cgi-bin/stable_token"), &body).await.1;
    answer["access_token"].as_str().unwrap().to_owned()
}

/// The content type and the body: JSON parsed, or the bytes' length under "bytes".
async fn post(url: &str, body: &Value) -> (String, Value, Vec<u8>) {
    let response = http()
        .post(url)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let kind = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    let bytes = response.bytes().await.unwrap().to_vec();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (kind, json, bytes)
}

#[tokio::test]
async fn schemes_and_links_share_the_daily_quota() {
    let (emu, base, token) = start(3).await;
    let scheme = format!("{base}/wxa/generatescheme?access_token={token}");
    let urllink = format!("{base}/wxa/generate_urllink?access_token={token}");
    let jump = json!({ "jump_wxa": { "path": "pages/sale/index", "query": "from=sms" }, "expire_type": 1, "expire_interval": 30 });
    let (_, first, _) = post(&scheme, &jump).await;
    assert!(
        first["openlink"]
            .as_str()
            .unwrap()
            .starts_with("weixin://dl/business/?t="),
        "{first}"
    );
    let link_body = json!({ "path": "pages/sale/index", "query": "from=sms", "expire_type": 0, "expire_time": emu.now() + 3600 });
    let (_, second, _) = post(&urllink, &link_body).await;
    assert!(
        second["url_link"]
            .as_str()
            .unwrap()
            .starts_with("https://wxaurl.cn/"),
        "{second}"
    );
    // Refusals do not count.
    let (_, bad_path, _) = post(&urllink, &json!({ "path": "pages/missing/index" })).await;
    assert_eq!(bad_path["errcode"], 40165);
    let (_, with_query, _) = post(
        &scheme,
        &json!({ "jump_wxa": { "path": "pages/sale/index?x=1" } }),
    )
    .await;
    assert_eq!(with_query["errcode"], 40165);
    let (_, too_long, _) = post(
        &urllink,
        &json!({ "path": "pages/sale/index", "expire_type": 1, "expire_interval": 31 }),
    )
    .await;
    assert_eq!(too_long["errcode"], 85401);
    let (_, third, _) = post(&urllink, &json!({ "path": "pages/sale/index" })).await;
    assert_eq!(third["errcode"], 0, "{third}");
    let (_, over, _) = post(&scheme, &jump).await;
    assert_eq!(over["errcode"], 45009, "{over}");
    let (_, over, _) = post(&urllink, &json!({ "path": "pages/sale/index" })).await;
    assert_eq!(over["errcode"], 45009, "{over}");
    let links = emu.generated_links();
    assert_eq!(links.len(), 3);
    assert_eq!(links[0].expires_at - emu.now(), 30 * 86_400);
    assert!((links[1].expires_at - emu.now() - 3600).abs() <= 1);
    assert_eq!(links[1].query, "from=sms");
    // The next day (in UTC+8) the quota is fresh.
    emu.advance(86_400);
    let scheme = format!(
        "{base}/wxa/generatescheme?access_token={}",
        fetch_token(&base).await
    );
    let (_, next_day, _) = post(&scheme, &jump).await;
    assert_eq!(next_day["errcode"], 0, "{next_day}");
}

#[tokio::test]
async fn the_code_is_a_png_or_json() {
    let (_emu, base, token) = start(10).await;
    let url = format!("{base}/wxa/getwxacodeunlimit?access_token={token}");
    let (kind, _, png) = post(
        &url,
        &json!({ "scene": "id=42&from=desk", "page": "pages/sale/index" }),
    )
    .await;
    assert_eq!(kind, "image/png");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(
        read_qr(&png),
        format!("wxaurl-emu://{APP_ID}/pages/sale/index?scene=id=42&from=desk")
    );
    for (body, errcode) in [
        (
            json!({ "scene": "a", "page": "pages/missing/index" }),
            41030,
        ),
        (
            json!({ "scene": "x".repeat(33), "page": "pages/sale/index" }),
            40169,
        ),
        (
            json!({ "scene": "中文", "page": "pages/sale/index" }),
            40169,
        ),
    ] {
        let (kind, answer, _) = post(&url, &body).await;
        assert!(kind.starts_with("application/json"), "{kind}");
        assert_eq!(answer["errcode"], errcode, "{body}: {answer}");
    }
    // An unpublished page with check_path = false is drawn; then the minute's quota.
    let (kind, _, _) = post(
        &url,
        &json!({ "scene": "a", "page": "pages/new/index", "check_path": false }),
    )
    .await;
    assert_eq!(kind, "image/png");
    let (_, answer, _) = post(&url, &json!({ "scene": "a" })).await;
    assert_eq!(answer["errcode"], 45009);
    let (_, answer, _) = post(
        &format!("{base}/wxa/getwxacodeunlimit?access_token=wrong"),
        &json!({ "scene": "a" }),
    )
    .await;
    assert_eq!(answer["errcode"], 40014);
}

fn read_qr(png_bytes: &[u8]) -> String {
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    let (w, h) = (info.width as usize, info.height as usize);
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| pixels[y * w + x]);
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1);
    grids[0].decode().unwrap().1
}
