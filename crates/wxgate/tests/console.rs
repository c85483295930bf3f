//! The web console at `/console`: sign-in, sessions and CSRF against an attacker, the
//! loopback rule, hostile pushed content, and the whole page in a real headless
//! Chromium (signs in, sees a push appear, retries a dead letter until delivered).

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::hook::Hook;
use common::webdriver::{screenshot_dir, Browser};
use common::{config_text, push, TestServer};
use serde_json::Value;
use tower::ServiceExt;
use wxgate::app::AppState;
use wxgate::config::Config;
use wxgate::http::conn::Peer;
use wxgate_proto::console::Mode;
use wxgate_proto::push::build;

const ADMIN: &str = "admin-token-0123456789";
const FORWARD_SECRET: &str = "forward-secret-0123456789";

/// The echo accounts (plain, compat, safe) and `fwd`, which forwards to `hook` and
/// dead-letters a delivery after a second of failures.
fn config(hook: &str) -> String {
    let mut text = config_text("");
    text.push_str(&format!(
        "[[account]]\nname = \"fwd\"\napp_id = \"{}\"\ntoken = \"{}\"\nmode = \"plain\"\n\
         [account.forward]\nurl = \"{hook}\"\nsecret = \"{FORWARD_SECRET}\"\ntimeout_ms = 300\nmax_age_s = 1\nmax_backoff_s = 1\n",
        common::APP_ID,
        common::TOKEN
    ));
    text
}

fn client() -> reqwest::Client {
    wxgate_client::http_client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Signs in with `token`: the status and the session cookie (`name=value`), if set.
async fn sign_in(base: &str, token: &str, origin: Option<&str>) -> (u16, Option<String>, String) {
    let mut request = client()
        .post(format!("{base}/console/sign-in"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!(
            "token={}",
            url::form_urlencoded::byte_serialize(token.as_bytes()).collect::<String>()
        ));
    if let Some(origin) = origin {
        request = request.header("Origin", origin);
    }
    let answer = request.send().await.unwrap();
    let status = answer.status().as_u16();
    let cookie = answer
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, cookie, answer.text().await.unwrap())
}

/// Signs in and reads the page's CSRF token: `(cookie pair, csrf)`.
async fn session(base: &str) -> (String, String) {
    let (status, cookie, _) = sign_in(base, ADMIN, Some(base)).await;
    assert_eq!(status, 303);
    let pair = cookie.unwrap().split(';').next().unwrap().to_owned();
    let page = client()
        .get(format!("{base}/console"))
        .header("Cookie", &pair)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = page
        .split("name=\"csrf-token\" content=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    (pair, csrf)
}

async fn call(
    method: reqwest::Method,
    url: &str,
    cookie: Option<&str>,
    csrf: Option<&str>,
    origin: Option<&str>,
) -> (u16, Value) {
    let mut request = client().request(method, url);
    if let Some(cookie) = cookie {
        request = request.header("Cookie", cookie);
    }
    if let Some(csrf) = csrf {
        request = request.header("X-Csrf-Token", csrf);
    }
    if let Some(origin) = origin {
        request = request.header("Origin", origin);
    }
    let answer = request.send().await.unwrap();
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_session_and_its_csrf_token_nothing_is_served_or_changed() {
    let hook = Hook::start().await;
    let server = TestServer::open("console-attack", &config(&hook.url)).await;
    let base = server.base.clone();
    let get = reqwest::Method::GET;
    let post = reqwest::Method::POST;

    // No cookie: the page sends to the sign-in form, the API refuses.
    let page = client()
        .get(format!("{base}/console"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 303);
    assert_eq!(page.headers()["location"], "/console/sign-in");
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    let recent = format!("{base}/console/api/recent");
    assert_eq!(call(get.clone(), &recent, None, None, None).await.0, 401);

    // A guessed session id.
    let guessed = format!("wxgate_console={}", "0123456789abcdef".repeat(4));
    assert_eq!(
        call(get.clone(), &recent, Some(&guessed), None, None)
            .await
            .0,
        401
    );
    let page = (client().get(format!("{base}/console")))
        .header("Cookie", &guessed)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 303);

    // Sign-in from another origin, or with none: refused (login CSRF).
    assert_eq!(sign_in(&base, ADMIN, None).await.0, 403);
    assert_eq!(
        sign_in(&base, ADMIN, Some("http://evil.example")).await.0,
        403
    );

    // The cookie: a random id, never the token; HttpOnly, SameSite=Strict, Path=/console.
    let (status, cookie, _) = sign_in(&base, ADMIN, Some(&base)).await;
    assert_eq!(status, 303);
    let cookie = cookie.unwrap();
    assert!(!cookie.contains(ADMIN), "{cookie}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");

    // State changes: no CSRF token, a forged one, or a foreign origin, all 403.
    let (cookie, csrf) = session(&base).await;
    let purge = format!("{base}/console/api/inbox/purge");
    let forged = "f".repeat(64);
    let cases = [
        (None, Some(base.as_str())),
        (Some(forged.as_str()), Some(base.as_str())),
        (Some(csrf.as_str()), Some("http://evil.example")),
        (Some(csrf.as_str()), None),
    ];
    for (token, origin) in cases {
        let (status, body) = call(post.clone(), &purge, Some(&cookie), token, origin).await;
        assert_eq!(status, 403, "{token:?} {origin:?}: {body}");
    }
    let (status, body) = call(
        post.clone(),
        &purge,
        Some(&cookie),
        Some(&csrf),
        Some(&base),
    )
    .await;
    assert_eq!((status, body["purged"].as_u64()), (200, Some(0)), "{body}");
    let sign_out = format!("{base}/console/sign-out");
    assert_eq!(
        call(post.clone(), &sign_out, Some(&cookie), None, Some(&base))
            .await
            .0,
        403
    );
    assert_eq!(
        call(get.clone(), &recent, Some(&cookie), None, None)
            .await
            .0,
        200
    );
    assert_eq!(
        call(
            post.clone(),
            &sign_out,
            Some(&cookie),
            Some(&csrf),
            Some(&base)
        )
        .await
        .0,
        204
    );
    assert_eq!(
        call(get.clone(), &recent, Some(&cookie), None, None)
            .await
            .0,
        401,
        "signed out"
    );

    // Wrong tokens: a clear refusal, then a wait, even for the right token.
    for _ in 0..5 {
        let (status, _, body) = sign_in(&base, "wrong-token", Some(&base)).await;
        assert_eq!(status, 401);
        assert!(body.contains("wrong admin token"), "{body}");
    }
    let (status, _, body) = sign_in(&base, ADMIN, Some(&base)).await;
    assert_eq!(status, 429);
    assert!(body.contains("too many wrong admin tokens"), "{body}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_content_is_masked_data_and_no_secret_is_shown() {
    let hook = Hook::start().await;
    let server = TestServer::open("console-content", &config(&hook.url)).await;
    let base = server.base.clone();
    let (cookie, csrf) = session(&base).await;
    let hostile = "<script>alert(1)</script>";
    let xml = build::text("gh_test", "oUser", common::now(), hostile, 7);
    let (status, _) = push(&client(), &base, "plain", Mode::Plain, &xml, common::now()).await;
    assert_eq!(status, 200);

    let recent = format!("{base}/console/api/recent");
    let answer = client()
        .get(&recent)
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert!(answer.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    assert_eq!(answer.headers()["x-content-type-options"], "nosniff");
    let body: Value = answer.json().await.unwrap();
    let entry = &body["entries"][0];
    assert_eq!(entry["account"], "plain");
    assert_eq!(
        (entry["kind"].as_str(), entry["msg_type"].as_str()),
        (Some("message"), Some("text"))
    );
    assert_eq!(entry["outcome"], "ok");
    assert_eq!(
        entry["content"],
        format!("<{} chars hidden>", hostile.len())
    );
    assert!(entry["latency_ms"].as_f64().unwrap() > 0.0);
    let (_, unmasked) = call(
        reqwest::Method::GET,
        &format!("{recent}?unmask=1"),
        Some(&cookie),
        None,
        None,
    )
    .await;
    assert_eq!(unmasked["entries"][0]["content"], hostile);

    // A refusal is shown with its reason.
    let (status, _) = push(&client(), &base, "safe", Mode::Plain, &xml, common::now()).await;
    assert_eq!(status, 403);
    let (_, after) = call(
        reqwest::Method::GET,
        &format!("{recent}?after=1"),
        Some(&cookie),
        None,
        None,
    )
    .await;
    assert_eq!(after["entries"][0]["outcome"], "wrong_mode");
    assert!(
        after["entries"][0]["reason"].as_str().unwrap().len() > 10,
        "{after}"
    );

    // Credentials and the configuration, without a secret.
    let (_, overview) = call(
        reqwest::Method::GET,
        &format!("{base}/console/api/overview"),
        Some(&cookie),
        None,
        None,
    )
    .await;
    let text = overview.to_string();
    for secret in [common::TOKEN, common::KEY, ADMIN, FORWARD_SECRET] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    assert_eq!(overview["config"]["accounts"].as_array().unwrap().len(), 4);
    assert_eq!(overview["accounts"][0]["name"], "compat");

    // Try an account: sim's round trip through this server, judged.
    let tried = client()
        .post(format!("{base}/console/api/try/safe"))
        .header("Cookie", &cookie)
        .header("X-Csrf-Token", &csrf)
        .header("Origin", &base)
        .json(&serde_json::json!({ "text": "hi there" }))
        .send()
        .await
        .unwrap();
    let tried: Value = tried.json().await.unwrap();
    assert_eq!(tried["ok"], true, "{tried}");
    assert_eq!(tried["reply"], "text \"hi there\"", "{tried}");
    server.stop().await;
}

async fn console_get(state: Arc<AppState>, peer: Option<Peer>) -> u16 {
    let mut request = axum::http::Request::get("/console/sign-in")
        .body(axum::body::Body::empty())
        .unwrap();
    if let Some(peer) = peer {
        request.extensions_mut().insert(peer);
    }
    let answer = wxgate::http::app(state).oneshot(request).await.unwrap();
    answer.status().as_u16()
}

#[tokio::test]
async fn off_loopback_the_console_needs_admin_token() {
    let far = Peer {
        addr: "203.0.113.7:40000".parse().unwrap(),
        tls: false,
    };
    let near = Peer {
        addr: "127.0.0.1:40000".parse().unwrap(),
        tls: false,
    };
    let config = Config::parse(&config_text(""), "test.toml").unwrap();
    let state = Arc::new(AppState::new(&config));
    assert_eq!(console_get(state.clone(), Some(far)).await, 403);
    assert_eq!(console_get(state.clone(), None).await, 403);
    assert_eq!(console_get(state.clone(), Some(near)).await, 200);

    let config = Config::parse(
        &config_text(&format!("admin_token = \"{ADMIN}\"")),
        "test.toml",
    )
    .unwrap();
    let state = Arc::new(AppState::new(&config));
    assert_eq!(console_get(state.clone(), Some(far)).await, 200);
    // Over TLS the cookie is Secure.
    let mut request = axum::http::Request::post("/console/sign-in")
        .header("Host", "wx.example.com")
        .header("Origin", "https://wx.example.com")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(axum::body::Body::from(format!("token={ADMIN}")))
        .unwrap();
    request.extensions_mut().insert(Peer { tls: true, ..far });
    let answer = wxgate::http::app(state).oneshot(request).await.unwrap();
    assert_eq!(answer.status(), 303);
    let cookie = answer.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.ends_with("; Secure"), "{cookie}");
}

/// The page in Chromium: a wrong token refused, a push seen within 2 s (hostile text
/// shown as text), a dead letter retried until delivered, and "try an account".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_chromium() {
    // A service that answers 503 until it is up, then 200 without a reply.
    let up = Arc::new(AtomicBool::new(false));
    let delivered = Arc::new(AtomicU64::new(0));
    let service = axum::Router::new().route(
        "/hook",
        axum::routing::post({
            let (up, delivered) = (up.clone(), delivered.clone());
            move || async move {
                if up.load(Ordering::Relaxed) {
                    delivered.fetch_add(1, Ordering::Relaxed);
                    (axum::http::StatusCode::OK, "{}")
                } else {
                    (axum::http::StatusCode::SERVICE_UNAVAILABLE, "")
                }
            }
        }),
    );
    let hook = common::serve_hook(service).await;
    let server = TestServer::open("console-chromium", &config(&hook)).await;
    let base = server.base.clone();
    let browser = Browser::start("console-chromium").await;
    let wait = Duration::from_secs(10);

    browser.goto(&format!("{base}/console")).await;
    assert!(browser.url().await.ends_with("/console/sign-in"));
    browser.type_into("#token", "not-the-token").await;
    browser.click("#sign-in").await;
    browser
        .wait_for(
            "return document.getElementById('message').textContent.includes('wrong admin token')",
            wait,
            "the wrong token is refused",
        )
        .await;
    browser.screenshot("sign-in-refused.png").await;
    browser.type_into("#token", ADMIN).await;
    browser.click("#sign-in").await;
    browser
        .wait_for(
            "return location.pathname === '/console' && !!document.getElementById('recent-plain')",
            wait,
            "the console opens",
        )
        .await;

    // A push appears within 2 s; hostile content is text, not markup.
    let hostile = "<img src=x onerror=\"window.pwned=1\"><script>window.pwned=2</script>";
    let xml = build::text("gh_test", "oUser", common::now(), hostile, 11);
    let pushed = std::time::Instant::now();
    let (status, _) = push(&client(), &base, "plain", Mode::Plain, &xml, common::now()).await;
    assert_eq!(status, 200);
    browser
        .wait_for(
            "return document.querySelectorAll('#recent-plain tbody tr').length > 0",
            Duration::from_secs(2),
            "the push appears within 2 s",
        )
        .await;
    let seen = pushed.elapsed();
    assert!(seen < Duration::from_secs(2), "{seen:?}");
    println!("push seen in the console after {} ms", seen.as_millis());
    browser.click("#unmask").await;
    let shown = "return Array.from(document.querySelectorAll('#recent-plain td.content')).some(td => td.textContent.includes('<script>window.pwned=2</script>'))";
    browser
        .wait_for(shown, wait, "the unmasked text is shown as text")
        .await;
    let injected = browser
        .eval("return [document.querySelectorAll('#recent img, #recent script').length, window.pwned === undefined]")
        .await;
    assert_eq!(injected, serde_json::json!([0, true]));

    // A delivery fails until it is dead; once the service is up, Retry delivers it.
    let xml = build::text("gh_test", "oUser", common::now(), "for the service", 12);
    let (status, _) = push(&client(), &base, "fwd", Mode::Plain, &xml, common::now()).await;
    assert_eq!(status, 200);
    browser
        .wait_for(
            "return document.querySelectorAll('#dead tbody tr button.retry').length === 1",
            Duration::from_secs(20),
            "the delivery is dead",
        )
        .await;
    browser.screenshot("console-dead-letter.png").await;
    up.store(true, Ordering::Relaxed);
    browser.click("#dead button.retry").await;
    let result = "return document.getElementById('inbox-result').textContent";
    browser
        .wait_for(&format!("{result} !== ''"), wait, "the retry answers")
        .await;
    let said = browser.eval(result).await;
    assert_eq!(said, "delivery 1 is pending again");
    browser
        .wait_for("return document.querySelectorAll('#delivered tbody tr').length === 1 && document.querySelectorAll('#dead tbody tr').length === 0", Duration::from_secs(15), "the retried delivery is delivered")
        .await;
    assert_eq!(delivered.load(Ordering::Relaxed), 1);

    // Try an account.
    browser.type_into("#try-text", "from the console").await;
    browser.click("#try").await;
    browser
        .wait_for("const r = document.getElementById('try-reply'); return !!r && r.textContent.includes('from the console')", wait, "the try's reply is shown")
        .await;
    // The try went through the callback handler: it is among the recent callbacks.
    browser
        .wait_for("return Array.from(document.querySelectorAll('#recent-plain td.content')).some(td => td.textContent === 'from the console')", wait, "the try's push is listed")
        .await;
    browser.eval("window.scrollTo(0, 0); return true").await;
    let png = browser.screenshot("console.png").await;
    assert!(png.starts_with(b"\x89PNG"));
    println!("screenshots in {}", screenshot_dir().display());

    // Purge takes the delivered record away.
    browser.click("#purge").await;
    browser
        .wait_for(
            "return document.getElementById('inbox-result').textContent === '1 records purged' && document.querySelectorAll('#delivered tbody tr').length === 0",
            wait,
            "the delivered record is purged",
        )
        .await;
    browser.quit().await;
    server.stop().await;
}
