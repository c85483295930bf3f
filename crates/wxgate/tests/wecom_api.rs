//! A WeCom application's API side, with the emulator as `qyapi_base`: the admin API
//! hands out its token (one `gettoken` for many callers, in one process and across
//! instances sharing Redis), refuses what WeCom has no use for, and a reply that
//! misses the passive window goes out through WeCom's `message/send`. The token and
//! the Secret never reach the log or a `Debug` string.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use wxgate_emu::pusher::Pusher;
use wxgate_emu::{App, Emulator, EmulatorConfig, WeComApp};

const CORP_ID: &str = "ww0123456789abcdef";
const AGENT: u64 = 1000002;
const CORP_SECRET: &str = "wecom-corp-secret-0123456789abcdefghijklmn";
const ADMIN: &str = "wecom-admin-token-0123456789";
const FORWARD_SECRET: &str = "wecom-forward-secret-0123";

async fn emulator(app: WeComApp) -> (Emulator, String) {
    let config = EmulatorConfig::with_app(App::new(APP_ID, APP_SECRET)).with_wecom_app(app);
    let emu = Emulator::new(config);
    let (addr, _task) = emu
        .spawn(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    (emu, format!("http://{addr}"))
}

/// A WeCom account on `qyapi_base`; `api_base` points nowhere, so a call that went
/// there instead would fail.
fn corp_config(top: &str, qyapi_base: &str, extra: &str) -> String {
    format!(
        "admin_token = \"{ADMIN}\"\napi_base = \"http://127.0.0.1:9\"\nqyapi_base = \"{qyapi_base}\"\n{top}\n\
         [[account]]\nname = \"corp\"\nkind = \"wecom\"\ncorp_id = \"{CORP_ID}\"\nagent_id = {AGENT}\n\
         corp_secret = \"{CORP_SECRET}\"\ntoken = \"{TOKEN}\"\nencoding_aes_key = \"{KEY}\"\n{extra}\n"
    )
}

fn admin(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
) -> reqwest::RequestBuilder {
    client.request(method, url).bearer_auth(ADMIN)
}

async fn json_of(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_hands_out_one_wecom_token_and_refuses_wechat_routes() {
    let (emu, qyapi) = emulator(WeComApp::new(CORP_ID, AGENT, CORP_SECRET)).await;
    let server = TestServer::start(&corp_config("", &qyapi, "")).await;
    let client = wxgate_client::http_client();
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let request = admin(
            &client,
            reqwest::Method::GET,
            format!("{}/api/accounts/corp/access_token", server.base),
        );
        tasks.push(tokio::spawn(json_of(request)));
    }
    let mut tokens = std::collections::HashSet::new();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        assert_eq!(status, 200, "{body}");
        tokens.insert(body["access_token"].as_str().unwrap().to_owned());
    }
    assert_eq!(tokens.len(), 1);
    let token = tokens.into_iter().next().unwrap();
    assert!(token.starts_with("WECOM_"));
    assert_eq!(
        emu.count("/cgi-bin/gettoken"),
        1,
        "100 requests, one gettoken"
    );

    let base = &server.base;
    let (status, body) = json_of(admin(
        &client,
        reqwest::Method::GET,
        format!("{base}/api/accounts/corp/jsapi_ticket"),
    ))
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("WeCom application"),
        "{body}"
    );
    for (path, body) in [
        (
            "jssdk_config",
            json!({ "url": "https://m.example.com/page" }),
        ),
        ("qrcode", json!({ "scene_id": 1 })),
        ("custom_send", json!({ "touser": "u" })),
    ] {
        let (status, answer) = json_of(
            admin(
                &client,
                reqwest::Method::POST,
                format!("{base}/api/accounts/corp/{path}"),
            )
            .body(body.to_string()),
        )
        .await;
        assert_eq!(status, 400, "{path}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains("WeCom"),
            "{path}: {answer}"
        );
    }
    let (_, status) = json_of(admin(
        &client,
        reqwest::Method::GET,
        format!("{base}/api/status"),
    ))
    .await;
    let account = &status["accounts"][0];
    assert_eq!(
        account["credentials"]["access_token"]["cached"], true,
        "{status}"
    );
    assert_eq!(
        emu.count("/cgi-bin/gettoken"),
        1,
        "nothing else fetched a token"
    );
    // Attacker's view: the state's Debug holds neither the token nor the Secret.
    let debug = format!("{:?}", server.state);
    assert!(
        !debug.contains(&token) && !debug.contains(CORP_SECRET),
        "{debug}"
    );
    server.stop().await;
}

#[test]
fn qyapi_base_and_agent_id_are_checked() {
    let ok = corp_config("", "http://127.0.0.1:1", "");
    let config = wxgate::config::Config::parse(&ok, "t").unwrap();
    assert_eq!(config.qyapi_base, "http://127.0.0.1:1");
    let default = ok.replace("qyapi_base = \"http://127.0.0.1:1\"\n", "");
    let config = wxgate::config::Config::parse(&default, "t").unwrap();
    assert_eq!(config.qyapi_base, "https://qyapi.weixin.qq.com");
    for (text, needle) in [
        (
            ok.replace("\"http://127.0.0.1:1\"", "\"qyapi.weixin.qq.com\""),
            "qyapi_base",
        ),
        (
            ok.replace(
                "\"http://127.0.0.1:1\"",
                "\"https://u:p@qyapi.weixin.qq.com\"",
            ),
            "qyapi_base",
        ),
        (
            ok.replace("\"http://127.0.0.1:9\"", "\"ftp://x\""),
            "api_base",
        ),
        (
            ok.replace(&format!("agent_id = {AGENT}\n"), ""),
            "corp_secret needs agent_id",
        ),
    ] {
        let error = wxgate::config::Config::parse(&text, "t")
            .unwrap_err()
            .to_string();
        assert!(error.contains(needle), "{needle}: {error}");
        assert!(!error.contains(CORP_SECRET), "{error}");
    }
}

/// A service that answers every delivery after `delay_ms` with a text echo.
async fn slow_service(delay_ms: u64) -> String {
    let service = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: String| async move {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            let request: Value = serde_json::from_str(&body).unwrap();
            let content = request["message"]["content"].as_str().unwrap_or_default();
            json!({ "reply": { "type": "text", "content": format!("svc: {content}") } }).to_string()
        }),
    );
    serve_hook(service).await
}

fn forward(hook: &str) -> String {
    format!(
        "[account.forward]\nurl = \"{hook}\"\nsecret = \"{FORWARD_SECRET}\"\ntimeout_ms = 300\nmax_age_s = 3600\n"
    )
}

/// A member's text message as the WeCom application pushes it.
fn member_text(content: &str, msg_id: u64) -> String {
    format!(
        "<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><FromUserName><![CDATA[zhangsan]]></FromUserName>\
         <CreateTime>{}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{content}]]></Content>\
         <MsgId>{msg_id}</MsgId><AgentID>{AGENT}</AgentID></xml>",
        now()
    )
}

async fn open_gateway(config_text: &str) -> (String, Arc<wxgate::app::AppState>) {
    let config = wxgate::config::Config::parse(config_text, "t.toml").unwrap();
    let state = Arc::new(
        wxgate::app::AppState::open(&config, ADMIN.into())
            .await
            .unwrap(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let serving = state.clone();
    tokio::spawn(
        async move { wxgate::http::serve(listener, serving, std::future::pending()).await },
    );
    (base, state)
}

fn data_dir(name: &str) -> String {
    let dir = std::env::temp_dir().join(format!("wxgate-wecom-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    format!("data_dir = \"{}\"", dir.display())
}

/// Waits until inbox record `id` has a reply outcome, and returns it.
async fn wait_for_outcome(state: &wxgate::app::AppState, id: u64) -> String {
    let inbox = state.forwarder().unwrap().inbox();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let record = inbox.get(id).await.unwrap();
        if let Some(outcome) = record.as_ref().and_then(|r| r.reply_outcome.clone()) {
            return outcome;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "record {id} has no reply outcome: {record:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_reply_goes_out_through_message_send() {
    let (emu, qyapi) = emulator(WeComApp::new(CORP_ID, AGENT, CORP_SECRET)).await;
    let hook = slow_service(1500).await;
    let (base, state) =
        open_gateway(&corp_config(&data_dir("late"), &qyapi, &forward(&hook))).await;
    let pusher = Pusher::wecom(&format!("{base}/wx/corp"), TOKEN, KEY, CORP_ID, AGENT).unwrap();
    let outcome = pusher.push(&member_text("take your time", 77)).await;
    assert_eq!(
        (outcome.status, outcome.body.as_str()),
        (Some(200), "success")
    );
    assert_eq!(wait_for_outcome(&state, 1).await, "late");
    let sent = emu.wecom_sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        (
            sent[0].touser.as_str(),
            sent[0].agent_id,
            sent[0].msgtype.as_str(),
            sent[0].content.as_str()
        ),
        ("zhangsan", AGENT, "text", "svc: take your time")
    );
    assert_eq!(
        emu.count("/cgi-bin/message/custom/send"),
        0,
        "not the customer-service API"
    );
    let call = emu
        .calls()
        .into_iter()
        .find(|c| c.path == "/cgi-bin/message/send")
        .unwrap();
    let body: Value = serde_json::from_str(&call.body).unwrap();
    assert_eq!(body["agentid"], AGENT, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_reply_refused_60020_is_recorded_with_the_trusted_ip_hint() {
    let mut app = WeComApp::new(CORP_ID, AGENT, CORP_SECRET);
    app.trusted_ips = Some(vec!["203.0.113.7".parse().unwrap()]);
    let (emu, qyapi) = emulator(app).await;
    let hook = slow_service(1000).await;
    let (base, state) = open_gateway(&corp_config(&data_dir("ip"), &qyapi, &forward(&hook))).await;
    let pusher = Pusher::wecom(&format!("{base}/wx/corp"), TOKEN, KEY, CORP_ID, AGENT).unwrap();
    let outcome = pusher.push(&member_text("from a new server", 78)).await;
    assert_eq!(outcome.status, Some(200));
    let record = wait_for_error(&state, 1).await;
    let recorded = record.last_error.clone().unwrap_or_default();
    assert!(
        recorded.contains("60020") && recorded.contains("企业可信IP"),
        "{recorded}"
    );
    assert!(
        recorded.contains("127.0.0.1"),
        "names the IP to add: {recorded}"
    );
    // Not delivered: the reply waits, pending, and is tried again with backoff, so it
    // goes out once the operator adds the IP.
    assert_eq!(
        record.state,
        wxgate::inbox::DeliveryState::Pending,
        "{record:?}"
    );
    assert!(record.reply_due, "{record:?}");
    assert_eq!(record.reply_outcome, None, "{record:?}");
    assert!(emu.wecom_sent().is_empty());
}

/// Waits until record `id` holds a reply that failed to send.
async fn wait_for_error(state: &wxgate::app::AppState, id: u64) -> wxgate::inbox::Record {
    let inbox = state.forwarder().unwrap().inbox();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let record = inbox.get(id).await.unwrap();
        if let Some(record) = record.filter(|r| r.reply_due && r.last_error.is_some()) {
            return record;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "record {id} has no failed reply"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_sharing_redis_fetch_one_wecom_token() {
    let url = redis_url(1);
    flush(&url).await;
    let (emu, qyapi) = emulator(WeComApp::new(CORP_ID, AGENT, CORP_SECRET)).await;
    let storage =
        format!("data_dir = \"data\"\n[storage]\nbackend = \"redis\"\nredis_url = \"{url}\"");
    // `[storage]` must come after the top-level keys and before the accounts.
    let config = corp_config("", &qyapi, "").replacen(
        "\n[[account]]",
        &format!("\n{storage}\n[[account]]"),
        1,
    );
    let mut instances = Vec::new();
    for i in 0..2 {
        instances.push(start_instance(&format!("wecom-redis-{i}"), &config).await);
    }
    let client = wxgate_client::http_client();
    let mut tasks = Vec::new();
    for i in 0..100 {
        let base = &instances[i % 2].1;
        let request = admin(
            &client,
            reqwest::Method::GET,
            format!("{base}/api/accounts/corp/access_token"),
        );
        tasks.push(tokio::spawn(json_of(request)));
    }
    let mut tokens = std::collections::HashSet::new();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        assert_eq!(status, 200, "{body}");
        tokens.insert(body["access_token"].as_str().unwrap().to_owned());
    }
    assert_eq!(tokens.len(), 1, "both instances hand out the same token");
    assert_eq!(
        emu.count("/cgi-bin/gettoken"),
        1,
        "100 requests over 2 instances, one fetch"
    );
    let redis = redis::Client::open(url.as_str()).unwrap();
    let mut connection = redis.get_multiplexed_async_connection().await.unwrap();
    let stored: Option<String> = redis::cmd("GET")
        .arg(format!("wxgate:cred:wecom:{CORP_ID}:{AGENT}:access_token"))
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!(
        stored.unwrap().contains(tokens.iter().next().unwrap()),
        "keyed by CorpID and AgentID"
    );
    for (mut child, _) in instances {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// The real binary at debug level: a token fetched, rejected by WeCom (42001) on a late
/// reply, fetched again and used. Neither token nor the Secret is in the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wecom_token_never_reaches_the_log() {
    let (emu, qyapi) = emulator(WeComApp::new(CORP_ID, AGENT, CORP_SECRET)).await;
    let hook = slow_service(1000).await;
    let dir = std::env::temp_dir().join(format!("wxgate-wecom-log-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = corp_config("data_dir = \"data\"", &qyapi, &forward(&hook));
    std::fs::write(dir.join("wxgate.toml"), config).unwrap();
    let log = dir.join("wxgate.log");
    let (run_dir, log_path) = (dir.clone(), log.clone());
    let (child, base) =
        tokio::task::spawn_blocking(move || start_binary_logged(&run_dir, &log_path))
            .await
            .unwrap();
    let client = wxgate_client::http_client();
    let token_url = format!("{base}/api/accounts/corp/access_token");
    let (_, first) = json_of(admin(&client, reqwest::Method::GET, token_url.clone())).await;
    let first = first["access_token"].as_str().unwrap().to_owned();
    // WeCom's clock passes the token's expiry; wxgate's does not: 42001 on the send.
    emu.advance(7300);
    let pusher = Pusher::wecom(&format!("{base}/wx/corp"), TOKEN, KEY, CORP_ID, AGENT).unwrap();
    let outcome = pusher.push(&member_text("after expiry", 79)).await;
    assert_eq!(outcome.status, Some(200));
    wait_until(Duration::from_secs(15), || {
        (emu.wecom_sent().len() != 1).then(|| "the late reply after one refetch".to_owned())
    })
    .await;
    let (_, second) = json_of(admin(&client, reqwest::Method::GET, token_url)).await;
    let second = second["access_token"].as_str().unwrap().to_owned();
    assert_ne!(first, second);
    assert_eq!(emu.count("/cgi-bin/gettoken"), 2);
    drop(child);
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(log.contains("fetched a new access_token"), "{log}");
    for secret in [first.as_str(), second.as_str(), CORP_SECRET] {
        assert!(!log.contains(secret), "the log carries {secret}:\n{log}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
