//! The link service with real tools: the desktop page in headless Chromium, its QR code
//! read back to the link with `rqrr`; the real binary's warnings at 80 % of the daily
//! cap and at the cap; the link kept across a restart; `check` on `[[account.link]]`
//! and `[links]`.

mod common;

use common::links::*;
use common::TestServer;

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
                // Bounded: a browser that hangs fails the test instead.
                let output = std::process::Command::new("timeout")
                    .args(["60", "chromium"])
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

/// The real binary keeps the generated link in its database: a restart does not
/// generate again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_the_generated_link() {
    let (emu, api) = emulator(500_000).await;
    let dir = common::tools::temp_dir("links-restart");
    std::fs::write(dir.join("wxgate.toml"), config(&api, "")).unwrap();
    let start = || {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || common::start_binary(&dir))
    };
    let (server, base) = start().await.unwrap();
    let (status, first, _) = visit(&base, "/go/mini/sale", WECHAT_IPHONE).await;
    assert_eq!(status, 302);
    drop(server);
    let (_server, base) = start().await.unwrap();
    assert_eq!(visit(&base, "/go/mini/sale", WECHAT_IPHONE).await.1, first);
    assert_eq!(emu.generated_links().len(), 1);
}
