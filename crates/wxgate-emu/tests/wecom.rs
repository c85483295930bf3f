//! The emulator's WeCom side over real TCP: `gettoken` and `message/send` with WeCom's
//! error codes, and the pusher sending as a WeCom application's callback does.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use wxgate_emu::pusher::Pusher;
use wxgate_emu::{App, Emulator, EmulatorConfig, WeComApp};
use wxgate_proto::signature::msg_signature;
use wxgate_proto::{EncodingAesKey, MsgCrypt};

const CORP_ID: &str = "ww0123456789abcdef";
const SECRET: &str = "wecom-secret-0123456789";
const AGENT: u64 = 1000002;
const KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const TOKEN: &str = "wecomToken42";

/// A client as the workspace builds them (reqwest has no TLS provider of its own here).
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

async fn start(app: WeComApp) -> (Emulator, String) {
    let config = EmulatorConfig::with_app(App::new("wx1234567890abcdef", "s")).with_wecom_app(app);
    let emu = Emulator::new(config);
    let (addr, _task) = emu
        .spawn(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    (emu, format!("http://{addr}"))
}

async fn gettoken(base: &str, query: &str) -> Value {
    let url = format!("{base}/cgi-bin/gettoken?{query}");
    let answer = http().get(url).send().await.unwrap().text().await.unwrap();
    serde_json::from_str(&answer).unwrap()
}

async fn send(base: &str, token: &str, body: &Value) -> Value {
    let url = format!("{base}/cgi-bin/message/send?access_token={token}");
    post(&url, body).await
}

async fn post(url: &str, body: &Value) -> Value {
    let response = http()
        .post(url)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    serde_json::from_str(&response.text().await.unwrap()).unwrap()
}

fn text(agent_id: u64, touser: &str, content: &str) -> Value {
    json!({ "touser": touser, "msgtype": "text", "agentid": agent_id, "text": { "content": content } })
}

#[tokio::test]
async fn gettoken_answers_with_wecom_error_codes() {
    let (_emu, base) = start(WeComApp::new(CORP_ID, AGENT, SECRET)).await;
    for (query, errcode) in [
        ("corpsecret=x".to_owned(), 41002),
        ("corpid=ww00000000000000ff&corpsecret=x".to_owned(), 40013),
        (format!("corpid={CORP_ID}"), 41004),
        (format!("corpid={CORP_ID}&corpsecret=wrong"), 40001),
    ] {
        let answer = gettoken(&base, &query).await;
        assert_eq!(answer["errcode"], errcode, "{query}: {answer}");
        let errmsg = answer["errmsg"].as_str().unwrap();
        assert!(errmsg.contains("from ip: 127.0.0.1"), "{errmsg}");
        assert!(
            !errmsg.contains("wrong"),
            "the secret is not echoed: {errmsg}"
        );
    }
    let query = format!("corpid={CORP_ID}&corpsecret={SECRET}");
    let first = gettoken(&base, &query).await;
    assert_eq!(
        (first["errcode"].clone(), first["expires_in"].clone()),
        (json!(0), json!(7200))
    );
    let again = gettoken(&base, &query).await;
    assert_eq!(
        again["access_token"], first["access_token"],
        "the same token within its validity"
    );
}

#[tokio::test]
async fn message_send_checks_token_ip_agent_and_user() {
    let mut app = WeComApp::new(CORP_ID, AGENT, SECRET);
    app.users = Some(vec!["zhangsan".into()]);
    let (emu, base) = start(app).await;
    let token = gettoken(&base, &format!("corpid={CORP_ID}&corpsecret={SECRET}")).await;
    let token = token["access_token"].as_str().unwrap().to_owned();
    let ok = text(AGENT, "zhangsan", "你好");
    assert_eq!(send(&base, "", &ok).await["errcode"], 41001);
    assert_eq!(send(&base, "bogus", &ok).await["errcode"], 40014);
    assert_eq!(
        send(&base, &token, &text(AGENT + 1, "zhangsan", "x")).await["errcode"],
        301002
    );
    assert_eq!(
        send(&base, &token, &text(AGENT, "nobody", "x")).await["errcode"],
        81013
    );
    let answer = send(&base, &token, &ok).await;
    assert_eq!(
        (answer["errcode"].clone(), answer["invaliduser"].clone()),
        (json!(0), json!(""))
    );
    let sent = emu.wecom_sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        (
            sent[0].touser.as_str(),
            sent[0].agent_id,
            sent[0].msgtype.as_str(),
            sent[0].content.as_str()
        ),
        ("zhangsan", AGENT, "text", "你好")
    );
    // Partly unknown recipients: delivered to the known one, the others named.
    let answer = send(&base, &token, &text(AGENT, "zhangsan|ghost", "x")).await;
    assert_eq!(
        (answer["errcode"].clone(), answer["invaliduser"].clone()),
        (json!(0), json!("ghost"))
    );
    emu.advance(7201);
    assert_eq!(send(&base, &token, &ok).await["errcode"], 42001);
    let fresh = gettoken(&base, &format!("corpid={CORP_ID}&corpsecret={SECRET}")).await;
    assert_ne!(
        fresh["access_token"].as_str().unwrap(),
        token,
        "a new token after expiry"
    );
    emu.revoke_wecom_tokens(CORP_ID, AGENT);
    let revoked = fresh["access_token"].as_str().unwrap();
    assert_eq!(send(&base, revoked, &ok).await["errcode"], 40014);
}

#[tokio::test]
async fn a_caller_outside_the_trusted_ips_gets_60020_and_a_wechat_token_is_not_a_wecom_one() {
    let mut app = WeComApp::new(CORP_ID, AGENT, SECRET);
    app.trusted_ips = Some(vec!["203.0.113.7".parse().unwrap()]);
    let (emu, base) = start(app).await;
    let token = gettoken(&base, &format!("corpid={CORP_ID}&corpsecret={SECRET}")).await;
    assert_eq!(token["errcode"], 0, "gettoken itself is not restricted");
    let answer = send(
        &base,
        token["access_token"].as_str().unwrap(),
        &text(AGENT, "u", "x"),
    )
    .await;
    assert_eq!(answer["errcode"], 60020);
    assert!(answer["errmsg"]
        .as_str()
        .unwrap()
        .starts_with("not allow to access from your ip"));
    assert!(emu.wecom_sent().is_empty());
    let wechat = post(
        &format!("{base}/cgi-bin/stable_token"),
        &json!({ "grant_type": "client_credential", "appid": "wx1234567890abcdef", "secret": "s" }),
    )
    .await;
    let answer = send(
        &base,
        wechat["access_token"].as_str().unwrap(),
        &text(AGENT, "u", "x"),
    )
    .await;
    assert_eq!(answer["errcode"], 40014);
}

type Seen = Arc<Mutex<Vec<(HashMap<String, String>, String)>>>;

/// A callback server that records each request, answers a verification with the
/// echostr decrypted with the corp's key, and a push with `success`.
async fn callback_server() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let record = Arc::clone(&seen);
    let handler = move |axum::extract::Query(q): axum::extract::Query<HashMap<String, String>>,
                        body: String| {
        let record = Arc::clone(&record);
        async move {
            record.lock().unwrap().push((q.clone(), body));
            match q.get("echostr") {
                Some(echostr) => crypt().decrypt(echostr).unwrap_or_default(),
                None => "success".to_owned(),
            }
        }
    };
    let router = axum::Router::new().route("/wx/corp", axum::routing::any(handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (format!("http://{addr}/wx/corp"), seen)
}

fn crypt() -> MsgCrypt {
    MsgCrypt::new(&EncodingAesKey::parse(KEY).unwrap(), CORP_ID)
}

#[tokio::test]
async fn the_pusher_sends_as_wecom_does() {
    let (url, seen) = callback_server().await;
    let pusher = Pusher::wecom(&url, TOKEN, KEY, CORP_ID, AGENT).unwrap();
    assert!(
        pusher.verify_url().await,
        "the encrypted echostr came back decrypted"
    );
    let message = format!(
        "<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><FromUserName><![CDATA[zhangsan]]></FromUserName><CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hi]]></Content><MsgId>1234567890123456</MsgId><AgentID>{AGENT}</AgentID></xml>"
    );
    let outcome = pusher.push(&message).await;
    assert_eq!((outcome.status, outcome.attempts), (Some(200), 1));
    let seen = seen.lock().unwrap();
    let (verify, _) = &seen[0];
    assert!(verify.contains_key("msg_signature") && !verify.contains_key("signature"));
    let (query, body) = &seen[1];
    for absent in ["signature", "openid", "encrypt_type"] {
        assert!(!query.contains_key(absent), "{absent} in {query:?}");
    }
    let root = wxgate_proto::xml::parse(body).unwrap();
    let encrypt = root.text_of("Encrypt").unwrap();
    assert_eq!(root.text_of("AgentID"), Some(AGENT.to_string().as_str()));
    assert_eq!(root.text_of("ToUserName"), Some(CORP_ID));
    let expected = msg_signature(TOKEN, &query["timestamp"], &query["nonce"], encrypt).to_hex();
    assert_eq!(query["msg_signature"], expected);
    let opened = crypt().decrypt_unchecked(encrypt).unwrap();
    assert_eq!(opened.message, message);
    assert_eq!(opened.app_id, CORP_ID, "the CorpID is the trailer");
}
