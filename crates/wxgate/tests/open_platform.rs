//! Open Platform third-party platforms (`[[component]]`) over real TCP, with the
//! emulator as WeChat: the official vector through the platform's gateway, the notify
//! route against forged, unsigned, plaintext, oversized, stale, replayed and
//! misaddressed pushes, the ticket kept by CreateTime and durable across kill -9,
//! `api_start_push_ticket` once on a fresh start, one component token for many
//! callers, and the config's checks.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use common::*;
use serde_json::Value;
use wxgate::component::Component;
use wxgate::config::Config;
use wxgate_client::CredentialKind;
use wxgate_emu::{App, Component as EmuComponent, Emulator, EmulatorConfig};
use wxgate_proto::component::{Info, Notify};
use wxgate_proto::{push, EncodingAesKey, MsgCrypt};

const SECRET: &str = "0123456789abcdef0123456789abcdef";
const NAME: &str = "open/acme";

/// The `component` section of the shared vectors (copied into wxgate-proto's test
/// data; see its README for the provenance).
fn vector() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../wxgate-proto/tests/data/vectors-kinds.json"
    );
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::from_str::<Value>(&text).unwrap()["component"].clone()
}

fn s(value: &Value) -> String {
    value.as_str().unwrap().to_owned()
}

/// The vector's platform: its AppID, Token and key.
struct Platform {
    app_id: String,
    token: String,
    key: String,
}

fn platform() -> Platform {
    let v = vector();
    Platform {
        app_id: s(&v["component_app_id"]),
        token: s(&v["token"]),
        key: s(&v["encoding_aes_key"]),
    }
}

fn component_toml(p: &Platform, extra: &str) -> String {
    format!(
        "[[component]]\nname = \"acme\"\napp_id = \"{}\"\napp_secret = \"{SECRET}\"\ntoken = \"{}\"\nencoding_aes_key = \"{}\"\n{extra}",
        p.app_id, p.token, p.key
    )
}

async fn emulator() -> (Emulator, String) {
    let p = platform();
    let config = EmulatorConfig::with_app(App::new(APP_ID, SECRET))
        .with_component(EmuComponent::new(&p.app_id, SECRET, &p.token, &p.key));
    let emu = Emulator::new(config);
    let (addr, _task) = emu
        .spawn(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    (emu, format!("http://{addr}"))
}

fn data_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wxgate-open-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A server over `dir` whose platform's notify URL the emulator knows.
async fn server(dir: &std::path::Path, emu: &Emulator, api_base: &str) -> TestServer {
    let p = platform();
    TestServer::open_in(dir, |base| {
        emu.set_notify_url(&p.app_id, &format!("{base}/open/acme/notify"));
        format!("api_base = \"{api_base}\"\n{}", component_toml(&p, ""))
    })
    .await
}

async fn wait_for_ticket(server: &TestServer) -> String {
    for _ in 0..100 {
        if let Ok(ticket) = server.state.center().verify_ticket(NAME).await {
            return ticket.value;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no ticket was stored within 5 s");
}

/// A notify as WeChat sends it, signed at `timestamp` with `token`, encrypted with
/// the vector's key and `trailer`.
fn notify_request(
    token: &str,
    trailer: &str,
    notify: &Notify,
    timestamp: i64,
) -> push::PushRequest {
    let crypt = MsgCrypt::new(&EncodingAesKey::parse(&platform().key).unwrap(), trailer);
    push::component_notify(
        token,
        &crypt,
        &timestamp.to_string(),
        "4242",
        &[7; 16],
        &notify.to_xml(),
    )
}

fn ticket_notify(app_id: &str, ticket: &str, create_time: i64) -> Notify {
    Notify {
        app_id: app_id.to_owned(),
        create_time,
        info: Info::VerifyTicket(ticket.to_owned()),
    }
}

#[tokio::test]
async fn the_official_vector_opens_with_the_platform_as_trailer() {
    let v = vector();
    let p = platform();
    let config = Config::parse(&component_toml(&p, ""), "test.toml").unwrap();
    let component = Component::new(config.components[0].clone());
    let case = &v["encrypted"][0];
    let query = wxgate::gateway::account::CallbackQuery {
        timestamp: Some(s(&case["timestamp"])),
        nonce: Some(s(&case["nonce"])),
        msg_signature: Some(s(&case["msg_signature"])),
        encrypt_type: Some("aes".into()),
        ..Default::default()
    };
    let body = wxgate_proto::envelope::request_body("gh_97417a04a28d", &s(&case["encrypt"]));
    let (plain, crypt) = component
        .gateway
        .unseal(&query, &body, wxgate_proto::Format::Xml)
        .expect("the vector opens");
    assert_eq!(plain, s(&case["plaintext"]));
    assert_eq!(crypt.app_id(), s(&case["trailer"]));
}

#[tokio::test]
async fn a_fresh_start_asks_once_and_many_callers_share_one_token() {
    let (emu, api_base) = emulator().await;
    let dir = data_dir("fresh");
    let first = server(&dir, &emu, &api_base).await;
    let ticket = wait_for_ticket(&first).await;
    assert_eq!(emu.count("/cgi-bin/component/api_start_push_ticket"), 1);
    let stored = first
        .state
        .component_store()
        .unwrap()
        .ticket(&platform().app_id)
        .await;
    assert_eq!(
        stored.unwrap().unwrap().ticket,
        ticket,
        "durable in the database"
    );
    let callers = (0..100).map(|_| {
        let state = first.state.clone();
        tokio::spawn(async move { state.center().get(NAME, CredentialKind::AccessToken).await })
    });
    let mut tokens = std::collections::HashSet::new();
    for caller in callers {
        tokens.insert(caller.await.unwrap().unwrap().value.clone());
    }
    assert_eq!(tokens.len(), 1);
    assert_eq!(emu.count("/cgi-bin/component/api_component_token"), 1);
    first.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

async fn admin_component_token(client: &reqwest::Client, base: &str) -> (u16, Value) {
    let response = client
        .get(format!("{base}/api/open/acme/component_access_token"))
        .bearer_auth("admin-token-0123456789")
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn start(dir: &std::path::Path) -> (KillOnDrop, String) {
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || start_binary(&dir))
        .await
        .unwrap()
}

/// The real binary: a ticket answered `success` survives kill -9 at once after, and
/// the restart reuses the stored ticket and token (no second start-push, no fetch).
#[tokio::test]
async fn a_stored_ticket_survives_kill_9_right_after_success() {
    let (emu, api_base) = emulator().await;
    let p = platform();
    let dir = data_dir("kill9");
    std::fs::create_dir_all(&dir).unwrap();
    let config = format!(
        "data_dir = \"{}\"\nadmin_token = \"admin-token-0123456789\"\napi_base = \"{api_base}\"\n{}",
        dir.join("data").display(),
        component_toml(&p, "")
    );
    std::fs::write(dir.join("wxgate.toml"), config).unwrap();
    let client = wxgate_client::http_client();
    let (mut first, base) = start(&dir).await;
    emu.set_notify_url(&p.app_id, &format!("{base}/open/acme/notify"));
    let mut token = Value::Null;
    for _ in 0..100 {
        let (status, body) = admin_component_token(&client, &base).await;
        if status == 200 {
            token = body["component_access_token"].clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        token.is_string(),
        "the started binary got a ticket and a token"
    );
    assert_eq!(emu.count("/cgi-bin/component/api_start_push_ticket"), 1);
    assert_eq!(emu.count("/cgi-bin/component/api_component_token"), 1);

    let ticket = emu.issue_ticket(&p.app_id);
    let outcome = emu
        .push_notify(&p.app_id, Info::VerifyTicket(ticket.clone()))
        .await
        .unwrap();
    assert_eq!(
        (outcome.status, outcome.body.as_str()),
        (Some(200), "success")
    );
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    {
        let db = wxgate::storage::Db::open(&dir.join("data").join("wxgate.redb")).unwrap();
        let store = wxgate::component::ComponentStore::new(db).unwrap();
        let stored = store
            .ticket(&p.app_id)
            .await
            .unwrap()
            .expect("the ticket is on disk");
        assert_eq!(stored.ticket, ticket);
    }

    let (_second, base) = start(&dir).await;
    let (status, body) = admin_component_token(&client, &base).await;
    assert_eq!(
        (status, &body["component_access_token"]),
        (200, &token),
        "{body}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        emu.count("/cgi-bin/component/api_start_push_ticket"),
        1,
        "no second ask"
    );
    assert_eq!(
        emu.count("/cgi-bin/component/api_component_token"),
        1,
        "no second fetch"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn pushed_tickets_and_authorization_events_are_stored_in_order() {
    let (emu, api_base) = emulator().await;
    let dir = data_dir("events");
    let server = server(&dir, &emu, &api_base).await;
    let first = wait_for_ticket(&server).await;
    let pusher = emu.spawn_ticket_pusher(&platform().app_id, Duration::from_millis(300));
    let mut latest = first.clone();
    for _ in 0..60 {
        latest = server
            .state
            .center()
            .verify_ticket(NAME)
            .await
            .unwrap()
            .value;
        if latest != first {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    pusher.abort();
    assert_ne!(
        latest, first,
        "the interval pusher's ticket replaced the first"
    );
    let token = server
        .state
        .center()
        .get(NAME, CredentialKind::AccessToken)
        .await;
    assert!(
        token.is_ok(),
        "the emulator accepts the stored ticket: {token:?}"
    );

    let authorizer = "wxa0a0a0a0a0a0a0a0";
    let outcome = emu
        .push_authorized(&platform().app_id, authorizer)
        .await
        .unwrap();
    assert_eq!(
        (outcome.status, outcome.body.as_str()),
        (Some(200), "success")
    );
    let store = server.state.component_store().unwrap();
    let event = store
        .authorizer(&platform().app_id, authorizer)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(event.info_type, "authorized");
    assert!(event
        .authorization_code
        .unwrap()
        .starts_with("queryauthcode@@@"));
    let outcome = emu
        .push_unauthorized(&platform().app_id, authorizer)
        .await
        .unwrap();
    assert_eq!(outcome.status, Some(200));
    let event = store
        .authorizer(&platform().app_id, authorizer)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(event.info_type, "unauthorized");
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every forged, unsigned, plaintext, oversized, stale, misaddressed or undecryptable
/// notify is refused, and nothing is stored; a replayed or older ticket never
/// replaces the newer one.
#[tokio::test]
async fn adversarial_notifies_store_nothing() {
    let (emu, api_base) = emulator().await;
    let dir = data_dir("adversarial");
    // The emulator's push for the start is sent to a URL nobody serves.
    let server = TestServer::open_in(&dir, |_| {
        format!(
            "api_base = \"{api_base}\"\n{}",
            component_toml(&platform(), "")
        )
    })
    .await;
    let p = platform();
    let client = wxgate_client::http_client();
    let url = format!("{}/open/acme/notify", server.base);
    let now = now();
    let good = notify_request(
        &p.token,
        &p.app_id,
        &ticket_notify(&p.app_id, "ticket@@@good", now),
        now,
    );
    let post_to = |query: String, body: String| {
        let (client, url) = (client.clone(), url.clone());
        async move { post(&client, &format!("{url}?{query}"), body).await }
    };
    let strip = |query: &str, names: &[&str]| {
        (query.split('&'))
            .filter(|pair| !names.iter().any(|n| pair.starts_with(&format!("{n}="))))
            .collect::<Vec<_>>()
            .join("&")
    };
    let cases: Vec<(&str, String, String, u16)> = vec![
        (
            "unsigned",
            strip(&good.query, &["signature", "msg_signature"]),
            good.body.clone(),
            403,
        ),
        (
            "forged msg_signature",
            good.query.replace("msg_signature=", "msg_signature=0"),
            good.body.clone(),
            400,
        ),
        (
            "plaintext",
            strip(&good.query, &["encrypt_type", "msg_signature"]),
            ticket_notify(&p.app_id, "ticket@@@plain", now).to_xml(),
            403,
        ),
        (
            "another Token",
            notify_request(
                "OtherToken9",
                &p.app_id,
                &ticket_notify(&p.app_id, "t", now),
                now,
            )
            .query,
            good.body.clone(),
            403,
        ),
        (
            "stale",
            {
                let r = notify_request(
                    &p.token,
                    &p.app_id,
                    &ticket_notify(&p.app_id, "ticket@@@stale", now - 3600),
                    now - 3600,
                );
                r.query
            },
            good.body.clone(),
            403,
        ),
        (
            "oversized",
            good.query.clone(),
            format!(
                "<xml><Encrypt>{}</Encrypt></xml>",
                "A".repeat(1024 * 1024 + 1)
            ),
            413,
        ),
    ];
    for (what, query, body, status) in cases {
        let (got, answer) = post_to(query, body).await;
        assert!(
            got == status || (what == "forged msg_signature" && got == 403),
            "{what}: {got} {answer}"
        );
    }
    // Signed and encrypted, but for another platform (its AppID as the trailer).
    let other = notify_request(
        &p.token,
        "wx0000000000000001",
        &ticket_notify("wx0000000000000001", "ticket@@@other", now),
        now,
    );
    let (status, answer) = post_to(other.query, other.body).await;
    assert_eq!((status, answer.trim()), (400, "cannot decrypt"));
    // Our trailer, but the notify names another platform.
    let named = notify_request(
        &p.token,
        &p.app_id,
        &ticket_notify("wx0000000000000001", "ticket@@@named", now),
        now,
    );
    let (status, _) = post_to(named.query, named.body).await;
    assert_eq!(status, 403);
    // Garbage ciphertext under a valid msg_signature.
    let garbage = "QUJD".repeat(8);
    let sig = wxgate_proto::signature::msg_signature(&p.token, &now.to_string(), "4242", &garbage)
        .to_hex();
    let query = format!(
        "{}&msg_signature={sig}",
        strip(&good.query, &["msg_signature"])
    );
    let (status, answer) = post_to(
        query,
        wxgate_proto::component::notify_body(&p.app_id, &garbage),
    )
    .await;
    assert_eq!((status, answer.trim()), (400, "cannot decrypt"));
    let (status, _) = post(
        &client,
        &format!("{}/open/nobody/notify?{}", server.base, good.query),
        good.body.clone(),
    )
    .await;
    assert_eq!(status, 404);
    assert!(
        server.state.center().verify_ticket(NAME).await.is_err(),
        "nothing stored"
    );
    assert_eq!(
        server
            .state
            .component_store()
            .unwrap()
            .ticket(&p.app_id)
            .await
            .unwrap(),
        None
    );

    // The genuine push is stored; its replay and an older ticket change nothing.
    assert_eq!(
        post_to(good.query.clone(), good.body.clone()).await,
        (200, "success".into())
    );
    assert_eq!(
        post_to(good.query.clone(), good.body.clone()).await,
        (200, "success".into())
    );
    let older = notify_request(
        &p.token,
        &p.app_id,
        &ticket_notify(&p.app_id, "ticket@@@older", now - 600),
        now,
    );
    assert_eq!(
        post_to(older.query, older.body).await,
        (200, "success".into())
    );
    assert_eq!(
        server
            .state
            .center()
            .verify_ticket(NAME)
            .await
            .unwrap()
            .value,
        "ticket@@@good"
    );
    let stored = server
        .state
        .component_store()
        .unwrap()
        .ticket(&p.app_id)
        .await
        .unwrap();
    assert_eq!(stored.unwrap().ticket, "ticket@@@good");
    let debug = format!("{:?}", server.state);
    assert!(
        !debug.contains(SECRET) && !debug.contains("ticket@@@good"),
        "Debug hides secrets"
    );
    drop(emu);
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_config_checks_each_platform() {
    let p = platform();
    let config =
        Config::parse(&component_toml(&p, ""), "test.toml").expect("a platform alone is a config");
    assert_eq!(config.components[0].name, "acme");
    let debug = format!("{config:?}");
    assert!(!debug.contains(SECRET), "Debug hides the AppSecret");
    let cases = [
        (
            component_toml(&p, "").replace(&p.key, ""),
            "component[0].encoding_aes_key",
        ),
        (
            component_toml(&p, "").replace(SECRET, ""),
            "component[0].app_secret",
        ),
        (
            format!("{0}{0}", component_toml(&p, "")),
            "component[1].name",
        ),
        (component_toml(&p, "mode = \"plain\"\n"), "mode"),
        (
            component_toml(&p, "").replace("\"acme\"", "\"a/b\""),
            "component[0].name",
        ),
    ];
    for (text, key) in cases {
        let err = Config::parse(&text, "test.toml")
            .expect_err(key)
            .to_string();
        assert!(err.contains(key), "{key}: {err}");
    }
}
