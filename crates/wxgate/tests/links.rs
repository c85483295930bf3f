//! `/go/{account}/{link}` against the emulator: each User-Agent class gets its answer;
//! N concurrent visitors (on one instance, and on two sharing Redis) cause one
//! generation; a link is renewed before it expires; at the cap and at WeChat's quota the
//! plain scheme stands in where allowed, else an error page; hostile input gets a
//! bounded 4xx; the admin API; and the desktop page in headless Chromium, its QR code
//! read back to the link.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{TestServer, APP_SECRET, KEY, TOKEN};
use wxgate_emu::{App, Emulator, EmulatorConfig};

const ADMIN: &str = "admin-token-for-links-0123456789";
/// An AppID of this file's own, so its keys in the shared Redis are its own.
const APP_ID: &str = "wx7e1c5a3b9d2f4086";

const WECHAT_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.44(0x18002c2c) NetType/WIFI Language/zh_CN";
const WECHAT_ANDROID: &str = "Mozilla/5.0 (Linux; Android 13; V2055A Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/111.0.5563.116 Mobile Safari/537.36 XWEB/1160065 MMWEBSDK/20231202 MicroMessenger/8.0.47.2560(0x28002F35) WeChat/arm64 Weixin NetType/WIFI";
const WECOM_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 wxwork/4.1.16 MicroMessenger/7.0.1 Language/zh";
const SAFARI_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1";
const WECHAT_WINDOWS: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/81.0.4044.138 Safari/537.36 NetType/WIFI MicroMessenger/7.0.20.1781(0x6700143B) WindowsWechat(0x63090819)";
const WECHAT_MAC: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) MicroMessenger/6.8.0(0x16080000) MacWechat/3.8.7(0x13080710) Safari/605.1.15 NetType/WIFI";
const WECOM_WINDOWS: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/107.0.0.0 Safari/537.36 wxwork/4.1.20 (MicroMessenger/6.2) WindowsWechat";
const CHROME_DESKTOP: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";

async fn emulator(quota: u32) -> (Emulator, String) {
    let config = EmulatorConfig {
        link_daily_quota: quota,
        ..EmulatorConfig::with_app(App::new(APP_ID, APP_SECRET))
    };
    let emu = Emulator::new(config);
    let (addr, _task) = emu
        .spawn(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    (emu, format!("http://{addr}"))
}

/// A mini-program with five links: the URL Link first, the scheme first, the plain
/// scheme first, one that falls back to the plain scheme, and one that also shows the
/// mini-program code.
fn config(api_base: &str, top: &str) -> String {
    format!(
        "admin_token = \"{ADMIN}\"\napi_base = \"{api_base}\"\n{top}\n\
         [[account]]\nname = \"mini\"\nkind = \"miniprogram\"\napp_id = \"{APP_ID}\"\napp_secret = \"{APP_SECRET}\"\n\
         token = \"{TOKEN}\"\nencoding_aes_key = \"{KEY}\"\nmode = \"safe\"\n\
         [[account.link]]\nname = \"sale\"\npath = \"pages/sale/index\"\nquery = \"from=sms\"\n\
         [[account.link]]\nname = \"scheme\"\npath = \"pages/sale/index\"\nprefer = \"scheme\"\n\
         [[account.link]]\nname = \"plain\"\npath = \"pages/index/index\"\nquery = \"a=1\"\nprefer = \"plain_scheme\"\nenv_version = \"trial\"\n\
         [[account.link]]\nname = \"fallback\"\npath = \"pages/index/index\"\nplain_fallback = true\n\
         [[account.link]]\nname = \"coded\"\npath = \"pages/index/index\"\nmini_program_code = true\n"
    )
}

fn client() -> reqwest::Client {
    wxgate_client::http_client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Status, Location and body of a visit with `agent` (none when empty).
async fn visit(base: &str, path: &str, agent: &str) -> (u16, String, String) {
    let mut request = client().get(format!("{base}{path}"));
    if !agent.is_empty() {
        request = request.header("user-agent", agent);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let location = (response.headers().get("location"))
        .map(|l| l.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, location, response.text().await.unwrap())
}

#[tokio::test]
async fn each_user_agent_class_gets_its_answer() {
    let (emu, api) = emulator(500_000).await;
    let server = TestServer::start(&config(&api, "")).await;
    let base = &server.base;
    // Inside WeChat on a phone, and a mobile browser on a URL-Link-first link: a 302.
    let (status, link, _) = visit(base, "/go/mini/sale", WECHAT_IPHONE).await;
    assert_eq!(status, 302);
    assert!(link.starts_with("https://wxaurl.cn/"), "{link}");
    for agent in [WECHAT_ANDROID, SAFARI_IPHONE] {
        assert_eq!(visit(base, "/go/mini/sale", agent).await.1, link, "{agent}");
    }
    // A scheme-first link: a page that tries the scheme (with the visitor's cq), then
    // the URL Link; WeCom's browser is sent the same way.
    for agent in [SAFARI_IPHONE, WECOM_IPHONE] {
        let (status, _, page) =
            visit(base, "/go/mini/scheme?cq=shop%3D7%26from%3Dsms", agent).await;
        assert_eq!(status, 200);
        assert!(
            page.contains("id=\"scheme\" href=\"weixin://dl/business/?t="),
            "{page}"
        );
        assert!(page.contains("&amp;cq=shop%3D7%26from%3Dsms\""), "{page}");
        assert!(
            page.contains("id=\"link\" href=\"https://wxaurl.cn/"),
            "{page}"
        );
    }
    // A plain-scheme-first link: no generated scheme.
    let (_, _, page) = visit(base, "/go/mini/plain", SAFARI_IPHONE).await;
    assert!(
        page.contains(&format!("href=\"weixin://dl/business/?appid={APP_ID}&amp;path=pages/index/index&amp;query=a%3D1&amp;env_version=trial\"")),
        "{page}"
    );
    // Desktops, WeChat for Windows and Mac, WeCom on a desktop, and no User-Agent: the
    // page with the code and the link as text.
    for agent in [
        CHROME_DESKTOP,
        WECHAT_WINDOWS,
        WECHAT_MAC,
        WECOM_WINDOWS,
        "",
    ] {
        let (status, _, page) = visit(base, "/go/mini/sale", agent).await;
        assert_eq!(status, 200, "{agent}");
        assert!(page.contains("<img id=\"qr\""), "{agent}: {page}");
        assert!(
            page.contains(&format!("<code id=\"link\">{link}</code>")),
            "{agent}: {page}"
        );
    }
    // One generation per link and kind for all of them.
    // (sale's, and the fallbacks of the scheme-first and plain-first links.)
    assert_eq!(
        emu.count("/wxa/generate_urllink"),
        3,
        "{:?}",
        emu.generated_links()
    );
    assert_eq!(emu.count("/wxa/generatescheme"), 1);
    server.stop().await;
}

#[tokio::test]
async fn hostile_input_gets_a_bounded_answer() {
    let (emu, api) = emulator(500_000).await;
    let server = TestServer::start(&config(&api, "")).await;
    let base = &server.base;
    let long_cq = "a".repeat(257);
    for (path, agent, status, needle) in [
        (
            format!("/go/mini/scheme?cq={long_cq}"),
            SAFARI_IPHONE,
            400,
            "at most 256",
        ),
        (
            "/go/mini/scheme?cq=%3Cscript%3E".into(),
            SAFARI_IPHONE,
            400,
            "at most 256",
        ),
        (
            "/go/mini/%3Cscript%3Ealert(1)%3C%2Fscript%3E".into(),
            CHROME_DESKTOP,
            404,
            "&lt;script&gt;",
        ),
        (
            format!("/go/mini/{}", "x".repeat(5000)),
            CHROME_DESKTOP,
            404,
            "no link",
        ),
        ("/go/nobody/sale".into(), CHROME_DESKTOP, 404, "no link"),
    ] {
        let (got, _, page) = visit(base, &path, agent).await;
        assert_eq!(got, status, "{path}: {page}");
        assert!(page.contains(needle), "{path}: {page}");
        assert!(!page.contains("<script>alert"), "{page}");
        assert!(page.len() < 2048, "{} bytes", page.len());
    }
    let (status, _, _) = visit(base, "/go/mini/sale", &"M".repeat(1025)).await;
    assert_eq!(status, 400);
    let (status, _, _) = visit(base, "/go/mini/sale", &"M".repeat(1024)).await;
    assert_eq!(status, 200);
    assert_eq!(
        emu.count("/wxa/generatescheme"),
        0,
        "a refused cq generates nothing"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_visitors_generate_once() {
    let (emu, api) = emulator(500_000).await;
    let server = TestServer::start(&config(&api, "")).await;
    let visits = (0..50).map(|_| {
        let base = server.base.clone();
        tokio::spawn(async move { visit(&base, "/go/mini/sale", WECHAT_IPHONE).await })
    });
    let mut locations = std::collections::HashSet::new();
    for visit in visits {
        let (status, location, _) = visit.await.unwrap();
        assert_eq!(status, 302);
        locations.insert(location);
    }
    assert_eq!(locations.len(), 1, "{locations:?}");
    assert_eq!(emu.count("/wxa/generate_urllink"), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_redis_generate_once() {
    let (emu, api) = emulator(500_000).await;
    let redis = common::redis_url(15);
    {
        // This file's keys only (its own AppID): links, counts, and the token a
        // previous run left, which this emulator would not know.
        let client = redis::Client::open(redis.as_str()).unwrap();
        let mut connection = client.get_multiplexed_async_connection().await.unwrap();
        for pattern in [
            format!("wxgate:link*:{APP_ID}:*"),
            format!("wxgate:cred:{APP_ID}:*"),
        ] {
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(pattern)
                .query_async(&mut connection)
                .await
                .unwrap();
            for key in keys {
                let _: i64 = redis::cmd("DEL")
                    .arg(key)
                    .query_async(&mut connection)
                    .await
                    .unwrap();
            }
        }
    }
    let text = config(
        &api,
        &format!("[storage]\nbackend = \"redis\"\nredis_url = \"{redis}\"\n"),
    );
    let one = TestServer::open("links-redis-1", &text).await;
    let two = TestServer::open("links-redis-2", &text).await;
    let visits = (0..40).map(|i| {
        let base = if i % 2 == 0 {
            one.base.clone()
        } else {
            two.base.clone()
        };
        tokio::spawn(async move { visit(&base, "/go/mini/sale", WECHAT_IPHONE).await })
    });
    let mut locations = std::collections::HashSet::new();
    for visit in visits {
        locations.insert(visit.await.unwrap().1);
    }
    assert_eq!(locations.len(), 1, "{locations:?}");
    assert_eq!(emu.count("/wxa/generate_urllink"), 1, "{:?}", emu.calls());
    assert_eq!(emu.generated_links().len(), 1);
    // The day's count is shared too.
    let response = client()
        .post(format!("{}/api/accounts/mini/links/sale", two.base))
        .bearer_auth("admin-token-0123456789")
        .send()
        .await
        .unwrap();
    let answer: serde_json::Value = response.json().await.unwrap();
    assert_eq!(answer["generated_today"], 1, "{answer}");
    one.stop().await;
    two.stop().await;
}

#[tokio::test]
async fn a_link_is_renewed_before_it_expires() {
    let (emu, api) = emulator(500_000).await;
    let server =
        TestServer::start(&config(&api, "[links]\nttl_s = 62\nrenew_before_s = 60\n")).await;
    let (_, first, _) = visit(&server.base, "/go/mini/sale", WECHAT_IPHONE).await;
    let expires = emu.generated_links()[0].expires_at;
    assert!((expires - emu.now() - 62).abs() <= 1, "{expires}");
    assert_eq!(
        visit(&server.base, "/go/mini/sale", WECHAT_IPHONE).await.1,
        first
    );
    assert_eq!(emu.count("/wxa/generate_urllink"), 1);
    // Past ttl_s - renew_before_s (2 s), the next visitor gets a new link.
    tokio::time::sleep(Duration::from_millis(2600)).await;
    let (_, second, _) = visit(&server.base, "/go/mini/sale", WECHAT_IPHONE).await;
    assert_ne!(second, first);
    assert_eq!(emu.count("/wxa/generate_urllink"), 2);
    assert_eq!(
        visit(&server.base, "/go/mini/sale", WECHAT_IPHONE).await.1,
        second
    );
    server.stop().await;
}

#[tokio::test]
async fn at_the_quota_the_plain_scheme_stands_in_where_allowed() {
    // WeChat's quota (45009), set to one generation in the emulator.
    let (emu, api) = emulator(1).await;
    let server = TestServer::start(&config(&api, "")).await;
    let base = &server.base;
    assert_eq!(visit(base, "/go/mini/sale", WECHAT_IPHONE).await.0, 302);
    let (status, _, page) = visit(base, "/go/mini/fallback", CHROME_DESKTOP).await;
    assert_eq!(status, 200);
    let plain = format!(
        "weixin://dl/business/?appid={APP_ID}&amp;path=pages/index/index&amp;env_version=release"
    );
    assert!(
        page.contains(&format!("<code id=\"link\">{plain}</code>")),
        "{page}"
    );
    let (status, _, page) = visit(base, "/go/mini/fallback", WECHAT_IPHONE).await;
    assert_eq!(status, 200);
    assert!(
        page.contains(&format!("id=\"scheme\" href=\"{plain}\"")),
        "{page}"
    );
    let (status, _, page) = visit(base, "/go/mini/scheme", SAFARI_IPHONE).await;
    assert_eq!(status, 503);
    assert!(page.contains("daily quota"), "{page}");
    // WeChat was asked once past its quota; the day's other visitors were not sent.
    let refused = emu.calls().iter().filter(|c| c.errcode == 45009).count();
    assert_eq!(refused, 1);
    server.stop().await;

    // wxgate's own cap: the third generation of the day is not asked for.
    let (emu, api) = emulator(500_000).await;
    let server = TestServer::start(&config(&api, "[links]\ndaily_cap = 2\n")).await;
    let base = &server.base;
    assert_eq!(visit(base, "/go/mini/sale", WECHAT_IPHONE).await.0, 302);
    assert_eq!(visit(base, "/go/mini/plain", SAFARI_IPHONE).await.0, 200);
    let (status, _, page) = visit(base, "/go/mini/scheme", SAFARI_IPHONE).await;
    assert_eq!(status, 503);
    assert!(page.contains("links.daily_cap"), "{page}");
    let (status, _, page) = visit(base, "/go/mini/fallback", WECHAT_IPHONE).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("href=\"weixin://dl/business/?appid="),
        "{page}"
    );
    assert_eq!(
        emu.count("/wxa/generate_urllink") + emu.count("/wxa/generatescheme"),
        2
    );
    server.stop().await;
}

#[tokio::test]
async fn a_refused_generation_is_not_repeated_by_every_visitor() {
    let config_emu = EmulatorConfig {
        published_pages: Some(vec!["pages/index/index".into()]),
        ..EmulatorConfig::with_app(App::new(APP_ID, APP_SECRET))
    };
    let emu = Emulator::new(config_emu);
    let (addr, _task) = emu
        .spawn(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let server = TestServer::start(&config(&format!("http://{addr}"), "")).await;
    for _ in 0..5 {
        let (status, _, page) = visit(&server.base, "/go/mini/sale", WECHAT_IPHONE).await;
        assert_eq!(status, 502);
        assert!(page.contains("40165"), "{page}");
    }
    assert_eq!(emu.count("/wxa/generate_urllink"), 1);
    // Another link of a published page is not held back.
    assert_eq!(
        visit(&server.base, "/go/mini/fallback", WECHAT_IPHONE)
            .await
            .0,
        302
    );
    server.stop().await;
}

#[tokio::test]
async fn the_mini_program_code_is_fetched_once() {
    let (emu, api) = emulator(500_000).await;
    let server = TestServer::start(&config(&api, "")).await;
    let (status, _, page) = visit(&server.base, "/go/mini/coded", CHROME_DESKTOP).await;
    assert_eq!(status, 200);
    assert!(page.contains("<img id=\"code\""), "{page}");
    assert!(page.contains("src=\"/go/mini/coded/code.png\""), "{page}");
    for _ in 0..3 {
        let response = client()
            .get(format!("{}/go/mini/coded/code.png", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "image/png");
        let png = response.bytes().await.unwrap();
        assert_eq!(
            read_qr(&png),
            format!("wxaurl-emu://{APP_ID}/pages/index/index?scene=coded")
        );
    }
    assert_eq!(emu.count("/wxa/getwxacodeunlimit"), 1);
    let (status, _, page) = visit(&server.base, "/go/mini/sale", CHROME_DESKTOP).await;
    assert_eq!(status, 200);
    assert!(!page.contains("id=\"code\""), "{page}");
    let none = client()
        .get(format!("{}/go/mini/sale/code.png", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 404);
    assert!(none
        .text()
        .await
        .unwrap()
        .contains("mini_program_code = true"));
    server.stop().await;
}

#[tokio::test]
async fn the_admin_api_returns_the_current_link() {
    let (emu, api) = emulator(500_000).await;
    let server = TestServer::start(&config(&api, "")).await;
    let url = format!("{}/api/accounts/mini/links/sale", server.base);
    let refused = client().post(&url).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    let answer: serde_json::Value = client()
        .post(&url)
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let link = answer["url_link"].as_str().unwrap();
    assert_eq!(
        visit(&server.base, "/go/mini/sale", WECHAT_IPHONE).await.1,
        link
    );
    let expires = answer["expires_at"].as_i64().unwrap();
    assert!((expires - emu.now() - 30 * 86_400).abs() <= 2, "{answer}");
    assert_eq!(answer["code_image_url"], "/go/mini/sale/qr.svg");
    assert_eq!(answer["mini_program_code_url"], serde_json::Value::Null);
    let svg = client()
        .get(format!("{}/go/mini/sale/qr.svg", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(svg.headers()["content-type"], "image/svg+xml");
    assert!(svg.text().await.unwrap().contains("<svg"));
    let missing = client()
        .post(format!("{}/api/accounts/mini/links/nope", server.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(emu.count("/wxa/generate_urllink"), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_desktop_page_in_chromium_shows_a_code_of_the_link() {
    let (_emu, api) = emulator(500_000).await;
    let server = TestServer::start(&config(&api, "")).await;
    let link = visit(&server.base, "/go/mini/sale", WECHAT_IPHONE).await.1;
    let page = format!("{}/go/mini/sale", server.base);
    let dir = std::env::temp_dir().join(format!("wxgate-links-chromium-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let shot = dir.join("page.png");
    let (dom, png) = tokio::task::spawn_blocking({
        let (dir, shot) = (dir.clone(), shot.clone());
        move || {
            let run = |extra: &[String]| {
                let output = std::process::Command::new("chromium")
                    .args([
                        "--headless",
                        "--no-sandbox",
                        "--disable-gpu",
                        "--hide-scrollbars",
                        "--no-first-run",
                        "--disable-dev-shm-usage",
                    ])
                    .arg(format!("--user-data-dir={}", dir.join("profile").display()))
                    .args(["--window-size=700,900", "--force-device-scale-factor=1"])
                    .args(extra)
                    .arg(&page)
                    .output()
                    .expect("chromium runs (scripts/test.sh installs it)");
                assert!(
                    output.status.success(),
                    "{}",
                    String::from_utf8_lossy(&output.stderr)
                );
                output
            };
            let dom = run(&["--dump-dom".into()]).stdout;
            run(&[format!("--screenshot={}", shot.display())]);
            (
                String::from_utf8(dom).unwrap(),
                std::fs::read(&shot).unwrap(),
            )
        }
    })
    .await
    .unwrap();
    assert!(
        dom.contains(&format!("<code id=\"link\">{link}</code>")),
        "{dom}"
    );
    assert_eq!(read_qr(&png), link);
    server.stop().await;
}

/// The one QR code in a PNG screenshot.
fn read_qr(png_bytes: &[u8]) -> String {
    let mut reader = png::Decoder::new(std::io::Cursor::new(png_bytes))
        .read_info()
        .unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    let (w, h) = (info.width as usize, info.height as usize);
    let channels = info.color_type.samples();
    let grey = |x: usize, y: usize| {
        let at = (y * w + x) * channels;
        let rgb = &pixels[at..at + channels.min(3)];
        (rgb.iter().map(|&v| u32::from(v)).sum::<u32>() / rgb.len() as u32) as u8
    };
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(w, h, grey);
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the screenshot");
    grids[0].decode().unwrap().1
}

#[test]
fn link_config_is_checked() {
    let good = config("http://127.0.0.1:9", "");
    wxgate::config::Config::parse(&good, "links.toml").expect("the test config is valid");
    for (from, to, needle) in [
        (
            "kind = \"miniprogram\"\n",
            "",
            "belongs on an account with kind",
        ),
        ("name = \"sale\"", "name = \"sa/le\"", "letters, digits"),
        ("name = \"scheme\"", "name = \"sale\"", "configured twice"),
        (
            "path = \"pages/sale/index\"\nquery",
            "path = \"/pages/sale/index\"\nquery",
            "no leading '/'",
        ),
        (
            "path = \"pages/sale/index\"\nquery",
            "path = \"pages/sale/index?a=1\"\nquery",
            "no query",
        ),
        (
            "query = \"from=sms\"",
            "query = \"from=短信\"",
            "at most 512",
        ),
        (
            "prefer = \"scheme\"",
            "prefer = \"qr\"",
            "use one of urllink, scheme, plain_scheme",
        ),
        (
            "env_version = \"trial\"",
            "env_version = \"beta\"",
            "release, trial, develop",
        ),
        (
            "api_base",
            "[links]\nttl_s = 100\nrenew_before_s = 100\n",
            "must be less than ttl_s",
        ),
        (
            "api_base",
            "[links]\nttl_s = 2592001\n",
            "between 61 and 2592000",
        ),
        (
            "api_base",
            "[links]\ndaily_cap = 500001\n",
            "between 1 and 500000",
        ),
    ] {
        let text = if from == "api_base" {
            let (top, accounts) = good.split_once("[[account]]").unwrap();
            format!("{top}{to}[[account]]{accounts}")
        } else {
            good.replacen(from, to, 1)
        };
        let error = wxgate::config::Config::parse(&text, "links.toml").unwrap_err();
        assert!(error.to_string().contains(needle), "{from} → {to}: {error}");
    }
}

/// The real binary: `check` warns about links that may use the plain scheme, and the
/// log says when 80 % of the daily cap is reached and when the cap is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_warns_at_80_percent_of_the_cap() {
    let (emu, api) = emulator(500_000).await;
    let dir = common::tools::temp_dir("links-cap");
    let text = config(&api, "[links]\ndaily_cap = 5\n")
        + "[[account.link]]\nname = \"extra\"\npath = \"pages/index/index\"\n";
    std::fs::write(dir.join("wxgate.toml"), &text).unwrap();
    let (code, report) = common::tools::check_text(&dir, &text);
    assert_eq!(code, Some(0), "{report:#}");
    for key in ["account[0].link[2].path", "account[0].link[3].path"] {
        common::tools::find_finding(&report, key, "plain scheme");
    }
    let log = dir.join("wxgate.log");
    let (_server, base) = {
        let (dir, log) = (dir.clone(), log.clone());
        tokio::task::spawn_blocking(move || common::start_binary_logged(&dir, &log))
            .await
            .unwrap()
    };
    // Four generations: sale's link, the scheme link's scheme and link, plain's link.
    assert_eq!(visit(&base, "/go/mini/sale", WECHAT_IPHONE).await.0, 302);
    assert_eq!(visit(&base, "/go/mini/scheme", SAFARI_IPHONE).await.0, 200);
    assert_eq!(visit(&base, "/go/mini/plain", SAFARI_IPHONE).await.0, 200);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("generated 4 links today, 80 % of links.daily_cap (5)"),
        "{text}"
    );
    assert!(!text.contains("reached links.daily_cap"), "{text}");
    // The fifth is the last; past it a link without plain_fallback gets the error
    // page, and the log says so once.
    let (status, _, page) = visit(&base, "/go/mini/fallback", CHROME_DESKTOP).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("<code id=\"link\">https://wxaurl.cn/"),
        "{page}"
    );
    for _ in 0..2 {
        let (status, _, page) = visit(&base, "/go/mini/extra", CHROME_DESKTOP).await;
        assert_eq!(status, 503);
        assert!(page.contains("links.daily_cap"), "{page}");
    }
    assert_eq!(emu.generated_links().len(), 5);
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text.matches("80 % of links.daily_cap").count(), 1, "{text}");
    assert_eq!(
        text.matches("reached links.daily_cap (5)").count(),
        1,
        "{text}"
    );
}
