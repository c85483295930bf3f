//! Third-party platforms' authorizers over real TCP, with the emulator as WeChat: the
//! `authorized` notify exchanged for tokens before `success`, the refresh token stored
//! in the same write as the access token at every refresh (one that stays, one that
//! rotates), `unauthorized` releasing the authorizer, and the admin routes.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::Value;
use wxgate_client::{CredentialKind, CredentialStore};
use wxgate_emu::{App, Component as EmuComponent, Emulator, EmulatorConfig};

const COMPONENT: &str = "wx134c8103faa5a59e";
const SECRET: &str = "0123456789abcdef0123456789abcdef";
const TOKEN: &str = "AAAAA";
const AUTHORIZER: &str = "wxa0a0a0a0a0a0a0a0";
const ADMIN: &str = "admin-token-0123456789";

fn key() -> String {
    "A".repeat(43)
}

async fn emulator(rotate: bool) -> (Emulator, String) {
    let mut component = EmuComponent::new(COMPONENT, SECRET, TOKEN, &key());
    component.rotate_refresh_tokens = rotate;
    let config = EmulatorConfig::with_app(App::new(APP_ID, SECRET)).with_component(component);
    let emu = Emulator::new(config);
    let (addr, _task) = emu
        .spawn(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    (emu, format!("http://{addr}"))
}

fn component_toml(api_base: &str) -> String {
    format!(
        "admin_token = \"{ADMIN}\"\napi_base = \"{api_base}\"\n[[component]]\nname = \"acme\"\napp_id = \"{COMPONENT}\"\napp_secret = \"{SECRET}\"\ntoken = \"{TOKEN}\"\nencoding_aes_key = \"{}\"\n",
        key()
    )
}

async fn server(name: &str, emu: &Emulator, api_base: &str) -> (TestServer, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("wxgate-authz-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let server = TestServer::open_in(&dir, |base| {
        emu.set_notify_url(COMPONENT, &format!("{base}/open/acme/notify"));
        component_toml(api_base)
    })
    .await;
    for _ in 0..100 {
        if server
            .state
            .center()
            .verify_ticket("open/acme")
            .await
            .is_ok()
        {
            return (server, dir);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no ticket within 5 s");
}

async fn admin(client: &reqwest::Client, url: &str) -> (u16, Value) {
    let response = client.get(url).bearer_auth(ADMIN).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The stored authorizer credential (access and refresh token), read from the server's
/// own database.
async fn stored(server: &TestServer) -> wxgate_client::Credential {
    let db = server.state.database().unwrap().clone();
    let store = wxgate::credentials::redb::RedbStore::new(db).unwrap();
    let key = format!("wxgate:cred:component:{COMPONENT}:authorizer:{AUTHORIZER}:access_token");
    store
        .load(&key)
        .await
        .unwrap()
        .expect("the authorizer's credential is stored")
}

#[tokio::test]
async fn every_refresh_stores_the_refresh_token_with_the_access_token() {
    for rotate in [false, true] {
        let (emu, api_base) = emulator(rotate).await;
        let (server, dir) = server(&format!("refresh-{rotate}"), &emu, &api_base).await;
        let client = wxgate_client::http_client();
        let url = format!(
            "{}/api/open/acme/authorizers/{AUTHORIZER}/access_token",
            server.base
        );
        let (status, _) = admin(&client, &url).await;
        assert_eq!(status, 404, "not authorized yet");

        let outcome = emu.push_authorized(COMPONENT, AUTHORIZER).await.unwrap();
        assert_eq!(
            (outcome.status, outcome.body.as_str()),
            (Some(200), "success"),
            "{outcome:?}"
        );
        // Exchanged before `success`: the tokens are stored already.
        let first = stored(&server).await;
        assert_eq!(
            first.refresh_token,
            emu.current_refresh_token(COMPONENT, AUTHORIZER)
        );
        let (status, body) = admin(&client, &url).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["authorizer_access_token"], first.value.as_str());
        let ips = wxgate_client::Client::new(&api_base)
            .callback_ips(&first.value)
            .await;
        assert!(ips.is_ok(), "the authorizer token works: {ips:?}");

        let mut previous = first;
        for round in 0..3 {
            emu.advance(7200);
            server.state.center().advance_clock(7200);
            let fresh = server
                .state
                .center()
                .get(
                    &format!("open/acme/{AUTHORIZER}"),
                    CredentialKind::AccessToken,
                )
                .await;
            let fresh = fresh.unwrap_or_else(|e| panic!("round {round}, rotate {rotate}: {e}"));
            let now_stored = stored(&server).await;
            assert_eq!(
                now_stored.value, fresh.value,
                "stored with the access token"
            );
            assert_eq!(
                now_stored.refresh_token,
                emu.current_refresh_token(COMPONENT, AUTHORIZER)
            );
            assert_eq!(now_stored.refresh_token != previous.refresh_token, rotate);
            previous = now_stored;
        }
        let uses = emu.refresh_token_uses();
        if rotate {
            assert!(
                uses.values().all(|&n| n == 1),
                "no rotated token presented twice: {uses:?}"
            );
            assert_eq!(uses.len(), 3);
        } else {
            assert_eq!(uses.values().sum::<u32>(), 3);
        }
        assert_eq!(emu.count("/cgi-bin/component/api_query_auth"), 1);

        let (status, body) = admin(
            &client,
            &format!("{}/api/open/acme/authorizers", server.base),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(body["authorizers"][0]["app_id"], AUTHORIZER);
        // Back to the server's clock, which checks the notify's timestamp.
        emu.advance(-3 * 7200);
        let outcome = emu.push_unauthorized(COMPONENT, AUTHORIZER).await.unwrap();
        assert_eq!(outcome.status, Some(200), "{outcome:?}");
        let (status, body) = admin(&client, &url).await;
        assert_eq!(status, 404, "released: {body}");
        server.stop().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[tokio::test]
async fn the_admin_routes_refuse_what_is_not_theirs() {
    let (emu, api_base) = emulator(false).await;
    let (server, dir) = server("admin", &emu, &api_base).await;
    let client = wxgate_client::http_client();
    let base = &server.base;
    let unauthenticated = client
        .get(format!("{base}/api/open/acme/component_access_token"))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status().as_u16(), 401);
    for (path, status) in [
        ("/api/open/nobody/component_access_token", 404),
        ("/api/open/nobody/authorizers", 404),
        ("/api/open/acme/authorizers/not-an-appid/access_token", 404),
        (
            "/api/open/acme/authorizers/wx0000000000000000/access_token",
            404,
        ),
        // The platform is not an account: /api/accounts never reaches it.
        ("/api/accounts/acme/access_token", 404),
        ("/api/accounts/open%2Facme/access_token", 404),
    ] {
        let (got, body) = admin(&client, &format!("{base}{path}")).await;
        assert_eq!(got, status, "{path}: {body}");
    }
    let (status, body) = admin(
        &client,
        &format!("{base}/api/open/acme/component_access_token"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let held = Arc::clone(&server.state);
    drop(held);
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// The real binary is killed (-9) while its refresh of an authorizer's token waits at
/// a slow WeChat; restarted, it refreshes with the stored refresh token, which still
/// works (no 61023), and no refresh token was presented twice. (The emulator drops a
/// request whose caller hung up during its delay. A crash after WeChat rotated the
/// token and before wxgate's write is the one window no client can close: the new
/// refresh token exists only in WeChat's answer.)
#[tokio::test]
async fn kill_9_in_the_middle_of_a_refresh_loses_no_refresh_token() {
    let mut component = EmuComponent::new(COMPONENT, SECRET, TOKEN, &key());
    component.rotate_refresh_tokens = true;
    component.authorizer_token_ttl_s = Some(2);
    component.authorizer_token_delay = Duration::from_millis(2500);
    let emu =
        Emulator::new(EmulatorConfig::with_app(App::new(APP_ID, SECRET)).with_component(component));
    let (addr, _task) = emu
        .spawn(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let api_base = format!("http://{addr}");
    let dir = std::env::temp_dir().join(format!("wxgate-authz-kill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = format!("data_dir = \"data\"\n{}", component_toml(&api_base));
    std::fs::write(dir.join("wxgate.toml"), config).unwrap();
    let start = || {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || start_binary(&dir))
    };
    let client = wxgate_client::http_client();
    let (mut first, base) = start().await.unwrap();
    emu.set_notify_url(COMPONENT, &format!("{base}/open/acme/notify"));
    let mut authorized = None;
    for _ in 0..100 {
        authorized = emu.push_authorized(COMPONENT, AUTHORIZER).await;
        if authorized.as_ref().is_some_and(|o| o.status == Some(200)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        authorized.unwrap().status,
        Some(200),
        "authorized once a ticket is in"
    );
    let url = |base: &str| format!("{base}/api/open/acme/authorizers/{AUTHORIZER}/access_token");
    assert_eq!(admin(&client, &url(&base)).await.0, 200);
    // The refresher refreshes the 2-second token at its expiry; WeChat holds it.
    for _ in 0..100 {
        if emu.refreshes_waiting() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(emu.refreshes_waiting(), 1, "a refresh is in flight");
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    tokio::time::sleep(Duration::from_millis(2800)).await;
    assert_eq!(emu.refreshes_waiting(), 0);

    let (_second, base) = start().await.unwrap();
    let (status, body) = admin(&client, &url(&base)).await;
    assert_eq!(status, 200, "the stored refresh token still works: {body}");
    let token = body["authorizer_access_token"].as_str().unwrap().to_owned();
    let ips = wxgate_client::Client::new(&api_base)
        .callback_ips(&token)
        .await;
    assert!(ips.is_ok(), "{ips:?}");
    let refused = emu.calls().iter().filter(|c| c.errcode == 61023).count();
    assert_eq!(refused, 0, "no stale refresh token was presented");
    let uses = emu.refresh_token_uses();
    assert!(
        uses.values().all(|&n| n == 1),
        "none presented twice: {uses:?}"
    );
    assert!(!uses.is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

/// The authorization page: a link to WeChat's page with a fresh pre-auth code and a
/// `redirect_uri` that carries the app URL and a signed state; WeChat's return is
/// checked (allow-list, signature, single use) before the merchant goes back.
#[tokio::test]
async fn the_authorization_page_carries_a_signed_single_use_state() {
    let (emu, api_base) = emulator(false).await;
    let dir = std::env::temp_dir().join(format!("wxgate-authz-page-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let server = TestServer::open_in(&dir, |base| {
        emu.set_notify_url(COMPONENT, &format!("{base}/open/acme/notify"));
        format!(
            "public_url = \"{base}\"\n{}redirect_allow = [\"https://app.example.com/done\"]\nsigning_key = \"{}\"\n",
            component_toml(&api_base),
            "k".repeat(40)
        )
    })
    .await;
    let client = wxgate_client::http_client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let base = &server.base;
    let page = |to: &str| {
        let url = format!(
            "{base}/open/acme/authorize?redirect={}",
            wxgate_proto::urls::encode_component(to)
        );
        let client = client.clone();
        async move {
            let response = client.get(url).send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    // Refusals consume nothing and call nothing.
    assert_eq!(
        page("https://app.example.com.evil.example/done").await.0,
        400
    );
    assert_eq!(page("https://app.example.com/other").await.0, 400);
    let missing = client
        .get(format!("{base}/open/acme/authorize"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status().as_u16(), 400);
    let unknown = client
        .get(format!("{base}/open/nobody/authorize?redirect=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status().as_u16(), 404);

    let mut html = (0, String::new());
    for _ in 0..100 {
        html = page("https://app.example.com/done").await;
        if html.0 == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(html.0, 200, "{}", html.1);
    let href = html
        .1
        .split("href=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    let wechat = url::Url::parse(&href).unwrap();
    assert_eq!(wechat.host_str(), Some("mp.weixin.qq.com"));
    assert_eq!(wechat.path(), "/cgi-bin/componentloginpage");
    let params: std::collections::HashMap<String, String> =
        wechat.query_pairs().into_owned().collect();
    assert_eq!(params["component_appid"], COMPONENT);
    assert!(params["pre_auth_code"].starts_with("preauthcode@@@"));
    let back = &params["redirect_uri"];
    assert!(
        back.starts_with(&format!("{base}/open/acme/authorized?to=")),
        "{back}"
    );

    let visit = |url: String| {
        let client = client.clone();
        async move {
            let response = client.get(url).send().await.unwrap();
            let location = response
                .headers()
                .get("location")
                .map(|v| v.to_str().unwrap().to_owned());
            (response.status().as_u16(), location)
        }
    };
    let state = back.split("state=").nth(1).unwrap().to_owned();
    let mut tampered = state.clone();
    let last = if tampered.ends_with('0') { "1" } else { "0" };
    tampered.replace_range(tampered.len() - 1.., last);
    assert_eq!(
        visit(back.replace(&state, &tampered) + "&auth_code=x")
            .await
            .0,
        400,
        "tampered"
    );
    let other_app = back.replace("done", "other");
    assert_eq!(
        visit(other_app + "&auth_code=x").await.0,
        400,
        "another app URL"
    );
    let (status, location) = visit(format!(
        "{back}&auth_code=queryauthcode@@@x&expires_in=3600"
    ))
    .await;
    assert_eq!(status, 302);
    assert_eq!(
        location.as_deref(),
        Some("https://app.example.com/done?wxgate_authorized=1")
    );
    assert_eq!(
        visit(format!("{back}&auth_code=queryauthcode@@@x")).await.0,
        400,
        "used once"
    );
    assert_eq!(emu.count("/cgi-bin/component/api_create_preauthcode"), 1);
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_authorization_page_needs_its_key_its_list_and_public_url() {
    let base = component_toml("http://127.0.0.1:9");
    let cases = [
        (
            format!("{base}redirect_allow = [\"https://a.example/x\"]\n"),
            "signing_key",
        ),
        (
            format!("{base}signing_key = \"{}\"\n", "k".repeat(40)),
            "redirect_allow",
        ),
        (
            format!("{base}redirect_allow = [\"https://a.example/x\"]\nsigning_key = \"short\"\n"),
            "signing_key",
        ),
        (
            format!(
                "{base}redirect_allow = [\"https://a.example/x\"]\nsigning_key = \"{}\"\n",
                "k".repeat(40)
            ),
            "public_url",
        ),
    ];
    for (text, key) in cases {
        let err = wxgate::config::Config::parse(&text, "t.toml")
            .expect_err(key)
            .to_string();
        assert!(err.contains(key), "{key}: {err}");
    }
}

/// The same `authorized` notify twice (WeChat repeats pushes; a replay within the
/// window): the second finds its code exchanged and is answered `success` too, with
/// one exchange; a notify whose code was never issued is not acknowledged.
#[tokio::test]
async fn a_repeated_authorization_notify_is_acknowledged_once_exchanged() {
    use wxgate_proto::component::{Authorization, Info, Notify};
    let (emu, api_base) = emulator(false).await;
    let (server, dir) = server("repeat", &emu, &api_base).await;
    let crypt = wxgate_proto::MsgCrypt::new(
        &wxgate_proto::EncodingAesKey::parse(&key()).unwrap(),
        COMPONENT,
    );
    let notify = |code: &str| {
        let now = now();
        let notify = Notify {
            app_id: COMPONENT.into(),
            create_time: now,
            info: Info::Authorized(Authorization {
                authorizer_app_id: AUTHORIZER.into(),
                authorization_code: code.into(),
                code_expires_at: now + 3600,
            }),
        };
        let request = wxgate_proto::push::component_notify(
            TOKEN,
            &crypt,
            &now.to_string(),
            "777",
            &[3; 16],
            &notify.to_xml(),
        );
        (
            format!("{}/open/acme/notify?{}", server.base, request.query),
            request.body,
        )
    };
    let client = wxgate_client::http_client();
    let code = emu.authorize(COMPONENT, AUTHORIZER);
    let (url, body) = notify(&code);
    assert_eq!(
        post(&client, &url, body.clone()).await,
        (200, "success".into())
    );
    assert_eq!(post(&client, &url, body).await, (200, "success".into()));
    assert_eq!(
        emu.count("/cgi-bin/component/api_query_auth"),
        2,
        "the second one was refused: 61010"
    );
    let (url, body) = notify("queryauthcode@@@never-issued");
    assert_eq!(
        post(&client, &url, body).await.0,
        503,
        "not acknowledged: WeChat pushes again"
    );
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
