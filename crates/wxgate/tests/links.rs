//! `/go/{account}/{link}` against the emulator: each User-Agent class gets its answer;
//! N concurrent visitors (on one instance, and on two sharing Redis) cause one
//! generation; a link is renewed before it expires; at the cap and at WeChat's quota the
//! plain scheme stands in where allowed, else an error page; a refusal is not repeated
//! by every visitor; hostile input gets a bounded 4xx; the mini-program code; the admin
//! API. (The browser, the binary and the config checks: `links_tools.rs`.)

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::links::*;
use common::{TestServer, APP_SECRET};
use wxgate_emu::{App, Emulator, EmulatorConfig};

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
