//! The credential center and OAuth inside `wxgate serve`, against the emulator over
//! real TCP.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use serde_json::Value;
use wxgate_emu::{App, Emulator, EmulatorConfig};

const SECRET: &str = "0123456789abcdef0123456789abcdef";
const ADMIN: &str = "test-admin-token-0123456789";
const SIGNING_KEY: &str = "app-shared-signing-key-0123456789abcdef";

async fn emulator() -> (Emulator, String) {
    let mut app = App::new(APP_ID, SECRET);
    app.oauth_domain = Some("127.0.0.1".into());
    let emu = Emulator::new(EmulatorConfig::with_app(app));
    let (addr, _task) = emu
        .spawn(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    (emu, format!("http://{addr}"))
}

fn config(emu: &str, base: &str) -> String {
    format!(
        "admin_token = \"{ADMIN}\"\napi_base = \"{emu}\"\nopen_base = \"{emu}\"\npublic_url = \"{base}\"\n\
         [[account]]\nname = \"main\"\napp_id = \"{APP_ID}\"\napp_secret = \"{SECRET}\"\ntoken = \"{TOKEN}\"\n\
         [account.oauth]\ndomain = \"127.0.0.1\"\nredirect_allow = [\"https://app.example.com/\"]\nsigning_key = \"{SIGNING_KEY}\"\n"
    )
}

async fn start() -> (Emulator, TestServer) {
    let (emu, emu_base) = emulator().await;
    let server = TestServer::start_with(|base| config(&emu_base, base)).await;
    (emu, server)
}

fn admin(client: &reqwest::Client, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
    client.request(method, url).bearer_auth(ADMIN)
}

/// Sends a request and reads its status and JSON body.
async fn call(request: reqwest::RequestBuilder) -> (u16, Value) {
    json_of(request.send().await.unwrap()).await
}

async fn json_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_needs_the_bearer_token() {
    let (_emu, server) = start().await;
    let client = wxgate_client::http_client();
    let url = format!("{}/api/accounts/main/access_token", server.base);
    let (status, body) = call(client.get(&url)).await;
    assert_eq!(status, 401);
    assert!(body["error"].as_str().unwrap().contains("Bearer"), "{body}");
    let (status, _) = call(client.get(&url).bearer_auth("wrong-token-0123456789xx")).await;
    assert_eq!(status, 401);
    let (status, _) = call(admin(&client, reqwest::Method::GET, &url)).await;
    assert_eq!(status, 200);
    let (status, _) = call(admin(
        &client,
        reqwest::Method::GET,
        &format!("{}/api/accounts/nosuch/access_token", server.base),
    ))
    .await;
    assert_eq!(status, 404);
    server.stop().await;
}

/// `/api/status` says how the instance stands, and never shows a credential's value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reports_storage_and_credentials_without_values() {
    let (_emu, server) = start().await;
    let client = wxgate_client::http_client();
    let url = format!("{}/api/status", server.base);
    assert_eq!(call(client.get(&url)).await.0, 401, "admin only");
    let (status, before) = call(admin(&client, reqwest::Method::GET, &url)).await;
    assert_eq!(status, 200);
    assert_eq!(before["storage"]["backend"], "redb");
    assert_eq!(before["storage"]["redis"], Value::Null);
    let account = &before["accounts"][0];
    assert_eq!(account["name"], "main");
    assert_eq!(account["mode"], "plain");
    assert_eq!(account["credentials"]["access_token"]["cached"], false);

    let (_, token) = call(admin(
        &client,
        reqwest::Method::GET,
        &format!("{}/api/accounts/main/access_token", server.base),
    ))
    .await;
    let value = token["access_token"].as_str().unwrap().to_owned();
    let (_, after) = call(admin(&client, reqwest::Method::GET, &url)).await;
    let access = &after["accounts"][0]["credentials"]["access_token"];
    assert_eq!(access["cached"], true);
    assert_eq!(access["fetches_today"], 1);
    assert!(access["expires_in_s"].as_i64().unwrap() > 0);
    assert_eq!(after["credentials"]["fetches"], 1);
    let text = after.to_string();
    assert!(
        !text.contains(&value) && !text.contains(SECRET),
        "no credential or secret in the status: {text}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_token_requests_fetch_once() {
    let (emu, server) = start().await;
    let client = wxgate_client::http_client();
    let url = format!("{}/api/accounts/main/access_token", server.base);
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let request = admin(&client, reqwest::Method::GET, &url);
        tasks.push(tokio::spawn(async move { call(request).await }));
    }
    let mut tokens = std::collections::HashSet::new();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        assert_eq!(status, 200, "{body}");
        assert!(body["expires_at"].as_i64().unwrap() > now());
        tokens.insert(body["access_token"].as_str().unwrap().to_owned());
    }
    assert_eq!(tokens.len(), 1);
    assert_eq!(
        emu.count("/cgi-bin/stable_token"),
        1,
        "200 concurrent callers, one fetch"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jssdk_config_signs_the_page_url_without_fragment() {
    let (emu, server) = start().await;
    let client = wxgate_client::http_client();
    let page = "https://app.example.com/shop/?tab=cart#/checkout";
    let response = admin(
        &client,
        reqwest::Method::POST,
        &format!("{}/api/accounts/main/jssdk_config?debug=1", server.base),
    )
    .body(serde_json::json!({ "url": page }).to_string())
    .send()
    .await
    .unwrap();
    let (status, config) = json_of(response).await;
    assert_eq!(status, 200, "{config}");
    assert_eq!(config["appId"], APP_ID);
    let (_, ticket) = call(admin(
        &client,
        reqwest::Method::GET,
        &format!("{}/api/accounts/main/jsapi_ticket", server.base),
    ))
    .await;
    let expected = wxgate_proto::signature::jssdk_signature(
        ticket["ticket"].as_str().unwrap(),
        config["nonceStr"].as_str().unwrap(),
        &config["timestamp"].to_string(),
        page,
    );
    assert_eq!(config["signature"], expected.signature.to_hex());
    assert_eq!(
        config["debug"]["signed_url"],
        "https://app.example.com/shop/?tab=cart"
    );
    let signed = config["debug"]["signed_string"].as_str().unwrap();
    assert!(
        signed.starts_with("jsapi_ticket=TI") && signed.contains('*'),
        "ticket masked: {signed}"
    );
    assert!(!signed.contains(ticket["ticket"].as_str().unwrap()));
    assert_eq!(
        emu.count("/cgi-bin/ticket/getticket"),
        1,
        "the ticket is cached"
    );
    let (status, _) = call(
        admin(
            &client,
            reqwest::Method::POST,
            &format!("{}/api/accounts/main/jssdk_config", server.base),
        )
        .body("{\"url\":\"/relative\"}"),
    )
    .await;
    assert_eq!(status, 400);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_calls_are_forwarded_with_the_managed_token() {
    let (emu, server) = start().await;
    let client = wxgate_client::http_client();
    let post = |path: &str, body: Value| {
        admin(
            &client,
            reqwest::Method::POST,
            &format!("{}/api/accounts/main/{path}", server.base),
        )
        .body(body.to_string())
    };
    let (status, qr) = call(post(
        "qrcode",
        serde_json::json!({ "scene_str": "promo", "expire_seconds": 600 }),
    ))
    .await;
    assert_eq!(status, 200, "{qr}");
    assert!(qr["image_url"]
        .as_str()
        .unwrap()
        .starts_with("https://mp.weixin.qq.com/cgi-bin/showqrcode?ticket="));
    let (status, body) = call(post("qrcode", serde_json::json!({}))).await;
    assert_eq!(status, 400, "{body}");
    let (status, scheme) = call(post(
        "scheme",
        serde_json::json!({ "jump_wxa": { "path": "pages/a/b" } }),
    ))
    .await;
    assert_eq!(status, 200);
    assert!(scheme["openlink"]
        .as_str()
        .unwrap()
        .starts_with("weixin://"));
    let (status, _) = call(post("urllink", serde_json::json!({ "path": "pages/a/b" }))).await;
    assert_eq!(status, 200);
    // WeChat's errors come back with their code and a hint.
    let (status, error) = call(post(
        "custom_send",
        serde_json::json!({ "touser": "oNew", "msgtype": "text", "text": { "content": "hi" } }),
    ))
    .await;
    assert_eq!(status, 502);
    assert_eq!(error["errcode"], 45015);
    assert!(error["hint"].as_str().unwrap().contains("48 hours"));
    emu.record_interaction("oNew");
    let (status, _) = call(post(
        "custom_send",
        serde_json::json!({ "touser": "oNew", "msgtype": "text", "text": { "content": "hi" } }),
    ))
    .await;
    assert_eq!(status, 200);
    let (status, sent) = call(post(
        "template_send",
        serde_json::json!({ "touser": "oNew", "template_id": "T", "data": {} }),
    ))
    .await;
    assert_eq!(status, 200, "{sent}");
    let (status, _) = call(post("menu", serde_json::json!({ "button": [] }))).await;
    assert_eq!(status, 200);
    let (status, menu) = call(admin(
        &client,
        reqwest::Method::GET,
        &format!("{}/api/accounts/main/menu", server.base),
    ))
    .await;
    assert_eq!((status, menu["menu"]["button"].is_array()), (200, true));
    let (status, _) = call(admin(
        &client,
        reqwest::Method::DELETE,
        &format!("{}/api/accounts/main/menu", server.base),
    ))
    .await;
    assert_eq!(status, 200);
    // A token invalidated elsewhere is recovered with one retry.
    emu.refresh_elsewhere(APP_ID);
    let (status, _) = call(post("urllink", serde_json::json!({ "path": "pages/a/b" }))).await;
    assert_eq!(status, 200);
    assert_eq!(emu.count("/cgi-bin/stable_token"), 2);
    assert_eq!(server.state.center().stats().foreign_refreshes, 1);
    server.stop().await;
}

/// Follows one redirect by hand and returns the Location.
async fn location(client: &reqwest::Client, url: &str) -> (u16, String) {
    let response = client.get(url).send().await.unwrap();
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, location)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_end_to_end_with_replay_and_tamper_refusals() {
    let (emu, server) = start().await;
    let client = wxgate_client::http_client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let app_url = "https://app.example.com/after?x=1";
    let start_url = format!(
        "{}/oauth/main/authorize?redirect={}&scope=snsapi_userinfo",
        server.base,
        wxgate_proto::urls::encode_component(app_url)
    );
    // 1. wxgate sends the browser to WeChat with a signed state and the callback URL.
    let (status, to_wechat) = location(&client, &start_url).await;
    assert_eq!(status, 302);
    assert!(
        to_wechat.contains("/connect/oauth2/authorize?appid=wx1234567890abcdef&redirect_uri="),
        "{to_wechat}"
    );
    assert!(to_wechat.ends_with("#wechat_redirect"));
    // 2. WeChat (the emulator) consents and sends the browser back with a code.
    let (status, to_callback) = location(&client, &to_wechat).await;
    assert_eq!(status, 302, "{to_callback}");
    assert!(to_callback.starts_with(&format!("{}/oauth/main/callback?to=", server.base)));
    // 3. wxgate exchanges the code and sends the browser to the app with an identity.
    let (status, to_app) = location(&client, &to_callback).await;
    assert_eq!(status, 302);
    assert!(
        to_app.starts_with("https://app.example.com/after?x=1&wxgate_identity=v1."),
        "{to_app}"
    );
    let token = to_app.split("wxgate_identity=").nth(1).unwrap();
    let claims = wxgate::oauth::verify_identity(SIGNING_KEY, token, now())
        .expect("the app can verify the identity");
    assert_eq!(claims["openid"], "oEmulatorUser000000000000000");
    assert_eq!(claims["userinfo"]["nickname"], "Emulated User");
    assert!(
        wxgate::oauth::verify_identity("another-key-0123456789abcdef0123", token, now()).is_none()
    );
    // 4. The same callback again (back button): the first result, not WeChat's 40163.
    let (status, again) = location(&client, &to_callback).await;
    assert_eq!((status, again.as_str()), (302, to_app.as_str()));
    assert_eq!(emu.count("/sns/oauth2/access_token"), 1);
    // 5. Tampered state.
    let state = to_callback
        .split("state=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_owned();
    let mut forged = state.clone().into_bytes();
    forged[20] = if forged[20] == b'a' { b'b' } else { b'a' };
    let tampered = to_callback
        .replace(&state, std::str::from_utf8(&forged).unwrap())
        .replace("code=", "code=x");
    let response = client.get(&tampered).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 400);
    assert!(response.text().await.unwrap().contains("invalid state"));
    // 6. Replayed state with a new code.
    let replayed = to_callback.replace("code=", "code=new");
    let response = client.get(&replayed).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 400);
    assert!(response.text().await.unwrap().contains("already used"));
    // 7. A different app URL under the same state is tampering.
    let moved = to_callback
        .replace("app.example.com", "app.example.com%2Fevil")
        .replace("code=", "code=other");
    assert_eq!(
        client.get(&moved).send().await.unwrap().status().as_u16(),
        400
    );
    // 8. A redirect target off the allow-list is refused before WeChat sees it.
    let evil = format!(
        "{}/oauth/main/authorize?redirect=https%3A%2F%2Fevil.example.org%2F&scope=snsapi_base",
        server.base
    );
    let response = client.get(&evil).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 400);
    assert!(response.text().await.unwrap().contains("allow"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_state_is_refused() {
    let (_emu, emu_base) = emulator().await;
    let server =
        TestServer::start_with(|base| format!("{}state_ttl_s = 1\n", config(&emu_base, base)))
            .await;
    let client = wxgate_client::http_client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let start = format!(
        "{}/oauth/main/authorize?redirect=https%3A%2F%2Fapp.example.com%2F&scope=snsapi_base",
        server.base
    );
    let (_, to_wechat) = location(&client, &start).await;
    let (_, to_callback) = location(&client, &to_wechat).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let response = client.get(&to_callback).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 400);
    assert!(response.text().await.unwrap().contains("expired"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_domain_mismatch_is_caught_before_wechat_says_10003() {
    let (_emu, emu_base) = emulator().await;
    let server = TestServer::start_with(|base| {
        config(&emu_base, base).replace("domain = \"127.0.0.1\"", "domain = \"m.example.com\"")
    })
    .await;
    let client = wxgate_client::http_client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = client
        .get(format!(
            "{}/oauth/main/authorize?redirect=https%3A%2F%2Fapp.example.com%2F&scope=snsapi_base",
            server.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 500);
    assert!(response.text().await.unwrap().contains("10003"));
    server.stop().await;
}

#[test]
fn oauth_and_admin_config_rules() {
    let base = |extra: &str| {
        format!("{extra}\n[[account]]\nname = \"main\"\napp_id = \"{APP_ID}\"\napp_secret = \"{SECRET}\"\ntoken = \"{TOKEN}\"\n")
    };
    let err = |text: &str| {
        wxgate::config::Config::parse(text, "t.toml")
            .unwrap_err()
            .to_string()
    };
    assert!(err(&base("listen = \"0.0.0.0:8080\"")).contains("needs admin_token"));
    assert!(err(&base("admin_token = \"short\"")).contains("16 characters"));
    let with_oauth = |fields: &str| {
        format!(
            "public_url = \"https://wx.example.com\"\n{}[account.oauth]\n{fields}\n",
            base("")
        )
    };
    assert!(err(&with_oauth(&format!("domain = \"https://wx.example.com/\"\nredirect_allow = [\"https://a.example.com/\"]\nsigning_key = \"{SIGNING_KEY}\""))).contains("10003"));
    assert!(err(&with_oauth(&format!(
        "domain = \"wx.example.com\"\nredirect_allow = []\nsigning_key = \"{SIGNING_KEY}\""
    )))
    .contains("open redirect"));
    assert!(err(&with_oauth("domain = \"wx.example.com\"\nredirect_allow = [\"https://a.example.com/\"]\nsigning_key = \"short\"")).contains("32 characters"));
    assert!(wxgate::config::Config::parse(&with_oauth(&format!("domain = \"wx.example.com\"\nredirect_allow = [\"https://a.example.com/\"]\nsigning_key = \"{SIGNING_KEY}\"")), "t").is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_with_the_redb_store_fetches_no_new_token() {
    let (emu, emu_base) = emulator().await;
    let dir = std::env::temp_dir().join(format!("wxgate-restart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let text = format!(
        "data_dir = \"{}\"\nadmin_token = \"{ADMIN}\"\napi_base = \"{emu_base}\"\n[[account]]\nname = \"main\"\napp_id = \"{APP_ID}\"\napp_secret = \"{SECRET}\"\ntoken = \"{TOKEN}\"\n",
        dir.join("data").display()
    );
    std::fs::write(dir.join("wxgate.toml"), text).unwrap();
    let mut tokens = Vec::new();
    for _ in 0..2 {
        let run_dir = dir.clone();
        let (mut child, base) = tokio::task::spawn_blocking(move || start_binary(&run_dir))
            .await
            .unwrap();
        let client = wxgate_client::http_client();
        let (status, body) = call(admin(
            &client,
            reqwest::Method::GET,
            &format!("{base}/api/accounts/main/access_token"),
        ))
        .await;
        assert_eq!(status, 200, "{body}");
        tokens.push(body["access_token"].as_str().unwrap().to_owned());
        std::process::Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .unwrap();
        let _ = tokio::task::spawn_blocking(move || child.wait()).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(tokens[0], tokens[1]);
    assert_eq!(
        emu.count("/cgi-bin/stable_token"),
        1,
        "the restarted instance reused the stored token"
    );
}

/// The README's verification snippets (kept in tests/interop/) accept a real identity
/// token and refuse a tampered or expired one.
#[test]
fn identity_tokens_verify_in_python_and_node() {
    let python = std::env::var("WXGATE_INTEROP_PYTHON").unwrap_or_else(|_| {
        format!(
            "{}/../../target/interop-venv/bin/python",
            env!("CARGO_MANIFEST_DIR")
        )
    });
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop");
    let valid = wxgate::oauth::sign_identity(
        SIGNING_KEY,
        &serde_json::json!({ "openid": "oVerified", "exp": now() + 60 }),
    );
    let expired = wxgate::oauth::sign_identity(
        SIGNING_KEY,
        &serde_json::json!({ "openid": "oOld", "exp": now() - 1 }),
    );
    let tampered = valid.replacen("v1.", "v1.x", 1);
    for (program, script) in [
        (python.as_str(), "verify_identity.py"),
        ("node", "verify_identity.js"),
    ] {
        for (token, key, expected) in [
            (&valid, SIGNING_KEY, "oVerified"),
            (&expired, SIGNING_KEY, "invalid"),
            (&tampered, SIGNING_KEY, "invalid"),
            (&valid, "another-key-0123456789abcdef012345", "invalid"),
        ] {
            let output = std::process::Command::new(program)
                .arg(dir.join(script))
                .args([token.as_str(), key])
                .output()
                .unwrap_or_else(|e| panic!("{program} runs: {e}"));
            assert_eq!(
                String::from_utf8_lossy(&output.stdout).trim(),
                expected,
                "{script}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
}
