//! Authorizers' messages at `/open/{name}/{appid}/callback` over real TCP, with the
//! emulator as WeChat: the official vector through the route, the platform's rules
//! with the platform's AppID as the trailer, the forward naming the platform and the
//! authorizer, an AppID that never authorized refused before its body is read, and
//! the built-in full-network release test for WeChat's test accounts only.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::post as route_post;
use common::*;
use serde_json::Value;
use wxgate_emu::pusher::Pusher;
use wxgate_emu::{App, Component as EmuComponent, Emulator, EmulatorConfig};
use wxgate_proto::console::Mode;
use wxgate_proto::push::build;

const COMPONENT: &str = "wx134c8103faa5a59e";
const SECRET: &str = "0123456789abcdef0123456789abcdef";
const TOKEN: &str = "AAAAA";
const AUTHORIZER: &str = "wxa0a0a0a0a0a0a0a0";
const TESTER: &str = "wx570bc396a51b8ff8";

fn key() -> String {
    "A".repeat(43)
}

fn vector() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../wxgate-proto/tests/data/vectors-kinds.json"
    );
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::from_str::<Value>(&text).unwrap()["component"].clone()
}

struct Setup {
    emu: Emulator,
    server: TestServer,
    dir: std::path::PathBuf,
    delivered: Arc<Mutex<Vec<Value>>>,
}

async fn setup(name: &str) -> Setup {
    setup_with(name, "").await
}

/// [`setup`], with `extra` after the platform's tables.
async fn setup_with(name: &str, extra: &str) -> Setup {
    let emu = Emulator::new(
        EmulatorConfig::with_app(App::new(APP_ID, SECRET)).with_component(EmuComponent::new(
            COMPONENT,
            SECRET,
            TOKEN,
            &key(),
        )),
    );
    let (addr, _task) = emu
        .spawn(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let delivered = Arc::new(Mutex::new(Vec::new()));
    let hook = {
        let delivered = delivered.clone();
        serve_hook(axum::Router::new().route(
            "/hook",
            route_post(move |body: String| {
                let delivered = delivered.clone();
                async move {
                    let json = serde_json::from_str::<Value>(&body).unwrap();
                    let late = json["message"]["content"] == "late";
                    delivered.lock().unwrap().push(json);
                    if late {
                        // Past the forward's window: the reply goes out later.
                        tokio::time::sleep(Duration::from_millis(800)).await;
                        return r#"{"reply": {"type": "text", "content": "late answer"}}"#;
                    }
                    "{}"
                }
            }),
        ))
        .await
    };
    let dir = std::env::temp_dir().join(format!("wxgate-open-msg-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let server = TestServer::open_in(&dir, |base| {
        emu.set_notify_url(COMPONENT, &format!("{base}/open/acme/notify"));
        format!(
            "api_base = \"http://{addr}\"\n[[component]]\nname = \"acme\"\napp_id = \"{COMPONENT}\"\napp_secret = \"{SECRET}\"\ntoken = \"{TOKEN}\"\nencoding_aes_key = \"{}\"\ntimestamp_window_s = 0\n\
             [[component.rule]]\nwhen = {{ msg_type = \"text\", keyword = \"hi\" }}\nreply = {{ text = \"echo {{content}}\" }}\n\
             [component.forward]\nurl = \"{hook}\"\nsecret = \"forward-secret-0123456789\"\ntimeout_ms = 300\n{extra}",
            key()
        )
    })
    .await;
    for _ in 0..100 {
        let authorized = emu.push_authorized(COMPONENT, AUTHORIZER).await;
        if authorized.is_some_and(|o| o.status == Some(200)) {
            return Setup {
                emu,
                server,
                dir,
                delivered,
            };
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the authorizer was not authorized within 5 s");
}

fn pusher(setup: &Setup, app_id: &str) -> Pusher {
    let url = format!("{}/open/acme/{app_id}/callback", setup.server.base);
    Pusher::new(&url, TOKEN)
        .encrypted(Mode::Safe, &key(), COMPONENT)
        .unwrap()
        .with_emulator(setup.emu.clone())
}

#[tokio::test]
async fn an_authorizer_gets_the_platforms_rules_and_forward() {
    let setup = setup("rules").await;
    let push = pusher(&setup, AUTHORIZER);
    let outcome = push
        .push(&build::text("gh_merchant", "oUser1", now(), "hi", 1001))
        .await;
    assert_eq!(outcome.status, Some(200), "{outcome:?}");
    let reply = outcome
        .reply_xml
        .expect("an encrypted reply that opens with the platform's AppID");
    assert!(
        reply.contains("echo hi") && reply.contains("<ToUserName><![CDATA[oUser1]]>"),
        "{reply}"
    );

    let outcome = push
        .push(&build::text(
            "gh_merchant",
            "oUser1",
            now(),
            "anything else",
            1002,
        ))
        .await;
    assert_eq!(outcome.status, Some(200), "{outcome:?}");
    for _ in 0..100 {
        if !setup.delivered.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let delivered = setup.delivered.lock().unwrap().clone();
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    assert_eq!(delivered[0]["component"], "acme");
    assert_eq!(delivered[0]["authorizer"], AUTHORIZER);
    assert_eq!(delivered[0]["account"], format!("open/acme/{AUTHORIZER}"));
    assert_eq!(delivered[0]["message"]["content"], "anything else");

    // A service's reply that misses the window goes out through the customer-service
    // API with the authorizer's token.
    let outcome = push
        .push(&build::text("gh_merchant", "oUser1", now(), "late", 1004))
        .await;
    assert_eq!(
        (outcome.status, outcome.body.as_str()),
        (Some(200), "success")
    );
    let mut sent = false;
    for _ in 0..100 {
        sent = setup.emu.calls().iter().any(|c| {
            c.path == "/cgi-bin/message/custom/send"
                && c.errcode == 0
                && c.body.contains("late answer")
        });
        if sent {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(sent, "the late reply was sent: {:?}", setup.emu.calls());

    // The official vector (its trailer is the platform's AppID) opens through the route.
    let v = vector();
    let case = &v["encrypted"][0];
    let s = |value: &Value| value.as_str().unwrap().to_owned();
    let query = format!(
        "signature={}&timestamp={}&nonce={}&encrypt_type=aes&msg_signature={}",
        wxgate_proto::signature::url_signature(TOKEN, &s(&case["timestamp"]), &s(&case["nonce"]))
            .to_hex(),
        s(&case["timestamp"]),
        s(&case["nonce"]),
        s(&case["msg_signature"])
    );
    let body = wxgate_proto::envelope::request_body("gh_97417a04a28d", &s(&case["encrypt"]));
    let client = wxgate_client::http_client();
    let url = format!("{}/open/acme/{AUTHORIZER}/callback", setup.server.base);
    let (status, answer) = post(&client, &format!("{url}?{query}"), body.clone()).await;
    assert_eq!(status, 200, "{answer}");
    // A forged msg_signature is refused.
    let forged = query.replace("msg_signature=", "msg_signature=f");
    assert_ne!(
        post(&client, &format!("{url}?{forged}"), body.clone())
            .await
            .0,
        200
    );
    // Unsigned, plaintext (the platform is always safe mode) and oversized pushes.
    let unsigned: String = (query.split('&'))
        .filter(|p| !p.starts_with("signature=") && !p.starts_with("msg_signature="))
        .collect::<Vec<_>>()
        .join("&");
    assert_eq!(
        post(&client, &format!("{url}?{unsigned}"), body.clone())
            .await
            .0,
        403
    );
    let plain_query: String = (query.split('&'))
        .filter(|p| !p.starts_with("encrypt_type=") && !p.starts_with("msg_signature="))
        .collect::<Vec<_>>()
        .join("&");
    let plain = build::text("gh_merchant", "oUser1", now(), "hi", 1003);
    assert_eq!(
        post(&client, &format!("{url}?{plain_query}"), plain)
            .await
            .0,
        403
    );
    let huge = format!(
        "<xml><Encrypt>{}</Encrypt></xml>",
        "A".repeat(1024 * 1024 + 1)
    );
    assert_eq!(post(&client, &format!("{url}?{query}"), huge).await.0, 413);
    // An AppID that never authorized the platform: 404 before the body is read.
    let stranger = format!(
        "{}/open/acme/wx0000000000000009/callback?{query}",
        setup.server.base
    );
    assert_eq!(post(&client, &stranger, body).await.0, 404);
    setup.server.stop().await;
    let _ = std::fs::remove_dir_all(&setup.dir);
}

#[tokio::test]
async fn the_release_test_passes_for_test_accounts_only() {
    let setup = setup("release").await;
    let tester = pusher(&setup, TESTER);
    let outcome = tester
        .push(&build::text(
            "gh_3c884a361561",
            "oTester",
            now(),
            "TESTCOMPONENT_MSG_TYPE_TEXT",
            2001,
        ))
        .await;
    let reply = outcome
        .reply_xml
        .clone()
        .unwrap_or_else(|| panic!("{outcome:?}"));
    assert!(
        reply.contains("<Content><![CDATA[TESTCOMPONENT_MSG_TYPE_TEXT_callback]]>"),
        "{reply}"
    );

    let code = setup.emu.authorize(COMPONENT, TESTER);
    let outcome = tester
        .push(&build::text(
            "gh_3c884a361561",
            "oTester",
            now(),
            &format!("QUERY_AUTH_CODE:{code}"),
            2002,
        ))
        .await;
    assert_eq!(
        (outcome.status, outcome.body.as_str()),
        (Some(200), "success")
    );
    let expected = format!("{code}_from_api");
    let mut sent = false;
    for _ in 0..100 {
        sent = setup.emu.calls().iter().any(|c| {
            c.path == "/cgi-bin/message/custom/send" && c.errcode == 0 && c.body.contains(&expected)
        });
        if sent {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        sent,
        "{expected} went out through the customer-service API: {:?}",
        setup.emu.calls()
    );
    assert_eq!(
        setup.emu.count("/cgi-bin/component/api_query_auth"),
        2,
        "the authorizer's and the tester's"
    );

    // Anyone else typing the same text gets the rules and the forward.
    let outcome = pusher(&setup, AUTHORIZER)
        .push(&build::text(
            "gh_merchant",
            "oUser2",
            now(),
            "TESTCOMPONENT_MSG_TYPE_TEXT",
            2003,
        ))
        .await;
    assert!(
        outcome.reply_xml.is_none(),
        "no callback text for an ordinary user: {outcome:?}"
    );
    setup.server.stop().await;
    let _ = std::fs::remove_dir_all(&setup.dir);
}

/// `wxgate sim release-test` (the real binary) passes against wxgate, and fails
/// against a URL where the release test is not answered.
#[tokio::test]
async fn sim_release_test_passes_against_wxgate() {
    let setup = setup("sim").await;
    let code = setup.emu.authorize(COMPONENT, TESTER);
    setup.emu.record_interaction("oSimulatedUser0000000000000");
    let run = |app_id: &str, code: String| {
        let url = format!("{}/open/acme/{app_id}/callback", setup.server.base);
        let dir = setup.dir.clone();
        let key = key();
        tokio::task::spawn_blocking(move || {
            let args = [
                "sim",
                "--url",
                &url,
                "--token",
                TOKEN,
                "--aes-key",
                &key,
                "--app-id",
                COMPONENT,
                "--json",
                "release-test",
                "--code",
                &code,
            ];
            common::tools::wxgate(&dir, &args)
        })
    };
    let output = run(TESTER, code.clone()).await.unwrap();
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{report:#}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(report["ok"], true);
    let expected = format!("{code}_from_api");
    let mut sent = false;
    for _ in 0..100 {
        sent = setup
            .emu
            .calls()
            .iter()
            .any(|c| c.errcode == 0 && c.body.contains(&expected));
        if sent {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(sent, "{expected} was sent");
    // An ordinary authorizer's URL does not answer the release test.
    let output = run(AUTHORIZER, "queryauthcode@@@other".into())
        .await
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    setup.server.stop().await;
    let _ = std::fs::remove_dir_all(&setup.dir);
}

/// `[[component.authorizer]]`: an authorizer with rules of its own; the others keep
/// the platform's.
#[tokio::test]
async fn an_authorizer_may_have_rules_of_its_own() {
    const OWN: &str = "wxb1b1b1b1b1b1b1b1";
    let extra = format!(
        "[[component.authorizer]]\napp_id = \"{OWN}\"\n[[component.authorizer.rule]]\nwhen = {{ msg_type = \"text\", keyword = \"hi\" }}\nreply = {{ text = \"own {{content}}\" }}\n"
    );
    const MINI: &str = "wxc2c2c2c2c2c2c2c2";
    let extra =
        format!("{extra}[[component.authorizer]]\napp_id = \"{MINI}\"\nkind = \"miniprogram\"\n");
    let setup = setup_with("own", &extra).await;
    let outcome = setup.emu.push_authorized(COMPONENT, OWN).await.unwrap();
    assert_eq!(outcome.status, Some(200), "{outcome:?}");
    let own = pusher(&setup, OWN)
        .push(&build::text("gh_own", "oUser3", now(), "hi", 3001))
        .await;
    assert!(
        own.reply_xml
            .as_deref()
            .unwrap_or_default()
            .contains("own hi"),
        "{own:?}"
    );
    let platform = pusher(&setup, AUTHORIZER)
        .push(&build::text("gh_merchant", "oUser3", now(), "hi", 3002))
        .await;
    assert!(
        platform
            .reply_xml
            .as_deref()
            .unwrap_or_default()
            .contains("echo hi"),
        "{platform:?}"
    );
    // A mini-program authorizer shows no passive text: the rule's reply goes out
    // through the customer-service API with its token.
    let outcome = setup.emu.push_authorized(COMPONENT, MINI).await.unwrap();
    assert_eq!(outcome.status, Some(200), "{outcome:?}");
    let mini = pusher(&setup, MINI)
        .push(&build::text("gh_mini", "oUser4", now(), "hi", 3003))
        .await;
    assert_eq!(
        (mini.status, mini.body.as_str()),
        (Some(200), "success"),
        "{mini:?}"
    );
    let mut sent = false;
    for _ in 0..100 {
        sent = setup.emu.calls().iter().any(|c| {
            c.path == "/cgi-bin/message/custom/send" && c.errcode == 0 && c.body.contains("echo hi")
        });
        if sent {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        sent,
        "the rule's reply went through the customer-service API"
    );
    setup.server.stop().await;
    let _ = std::fs::remove_dir_all(&setup.dir);

    let base = format!(
        "[[component]]\nname = \"acme\"\napp_id = \"{COMPONENT}\"\napp_secret = \"{SECRET}\"\ntoken = \"{TOKEN}\"\nencoding_aes_key = \"{}\"\n",
        key()
    );
    for (extra, key) in [
        (format!("[[component.authorizer]]\napp_id = \"{OWN}\"\n[[component.authorizer]]\napp_id = \"{OWN}\"\n"), "component[0].authorizer[1].app_id"),
        ("[[component.authorizer]]\napp_id = \"not-an-appid\"\n".to_owned(), "component[0].authorizer[0].app_id"),
        (format!("[[component.authorizer]]\napp_id = \"{OWN}\"\nkind = \"wecom\"\n"), "component[0].authorizer[0].kind"),
    ] {
        let err = wxgate::config::Config::parse(&format!("{base}{extra}"), "t.toml").expect_err(key).to_string();
        assert!(err.contains(key), "{key}: {err}");
    }
}
