//! OAuth sign-in attacked: look-alike redirect targets, callbacks without a code, a raw
//! newline in the app URL, a fragment, and a flood that fills the memory of used states.
//! Each test is named after the attack; the emulator plays WeChat over real TCP.

mod common;

use std::net::SocketAddr;

use common::*;
use wxgate_emu::{App, Emulator, EmulatorConfig};
use wxgate_proto::urls::encode_component;

const SECRET: &str = "0123456789abcdef0123456789abcdef";
const SIGNING_KEY: &str = "app-shared-signing-key-0123456789abcdef";

async fn start(oauth_extra: &str) -> (Emulator, TestServer) {
    let mut app = App::new(APP_ID, SECRET);
    app.oauth_domain = Some("127.0.0.1".into());
    let emu = Emulator::new(EmulatorConfig::with_app(app));
    let (addr, _task) = emu
        .spawn(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let emu_base = format!("http://{addr}");
    let server = TestServer::start_with(|base| {
        format!(
            "api_base = \"{emu_base}\"\nopen_base = \"{emu_base}\"\npublic_url = \"{base}\"\n\
             [[account]]\nname = \"main\"\napp_id = \"{APP_ID}\"\napp_secret = \"{SECRET}\"\ntoken = \"{TOKEN}\"\n\
             [account.oauth]\ndomain = \"127.0.0.1\"\nredirect_allow = [\"https://app.example.com\"]\nsigning_key = \"{SIGNING_KEY}\"\n{oauth_extra}\n"
        )
    })
    .await;
    (emu, server)
}

fn client() -> reqwest::Client {
    wxgate_client::http_client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// One request; its status, Location (empty when none) and body.
async fn fetch(client: &reqwest::Client, url: &str) -> (u16, String, String) {
    let response = client.get(url).send().await.unwrap();
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, location, response.text().await.unwrap())
}

fn authorize_url(server: &TestServer, app_url: &str) -> String {
    format!(
        "{}/oauth/main/authorize?redirect={}&scope=snsapi_base",
        server.base,
        encode_component(app_url)
    )
}

/// authorize, then WeChat's consent: the callback URL WeChat sends the browser to.
async fn callback_from_wechat(
    client: &reqwest::Client,
    server: &TestServer,
    app_url: &str,
) -> String {
    let (status, to_wechat, body) = fetch(client, &authorize_url(server, app_url)).await;
    assert_eq!(status, 302, "{body}");
    let (status, to_callback, body) = fetch(client, &to_wechat).await;
    assert_eq!(status, 302, "{body}");
    to_callback
}

fn query_value(url: &str, name: &str) -> String {
    let url = url::Url::parse(url).unwrap();
    url.query_pairs()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn look_alike_hosts_and_userinfo_get_no_sign_in() {
    let (_emu, server) = start("").await;
    let client = client();
    for evil in [
        "https://app.example.com.evil.net/",
        "https://app.example.com@evil.net/",
        "https://app.example.com:8443/",
        "http://app.example.com/",
        "https://evil.net/?https://app.example.com",
    ] {
        let (status, location, body) = fetch(&client, &authorize_url(&server, evil)).await;
        assert_eq!((status, location.as_str()), (400, ""), "{evil}: {body}");
        assert!(
            body.contains("redirect_allow") || body.contains("user name"),
            "{evil}: {body}"
        );
    }
    // The same look-alikes at the callback, with a state signed for them: still refused
    // before the state is even looked at.
    for evil in [
        "https://app.example.com.evil.net/",
        "https://app.example.com@evil.net/",
    ] {
        let forged = format!(
            "{}/oauth/main/callback?to={}&code=c&state=x",
            server.base,
            encode_component(evil)
        );
        let (status, location, _) = fetch(&client, &forged).await;
        assert_eq!((status, location.as_str()), (400, ""), "{evil}");
    }
    let (status, _, body) = fetch(
        &client,
        &authorize_url(&server, "https://app.example.com/any/page"),
    )
    .await;
    assert_eq!(status, 302, "the allowed host, any path: {body}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_without_a_code_checks_the_state_before_redirecting() {
    let (_emu, server) = start("").await;
    let client = client();
    // No code, no valid state: no redirect anywhere.
    for state in [
        "",
        "0000000000deadbeefdeadbeef00000000000000000000000000000000",
    ] {
        let url = format!(
            "{}/oauth/main/callback?to={}&state={state}",
            server.base,
            encode_component("https://app.example.com/")
        );
        let (status, location, body) = fetch(&client, &url).await;
        assert_eq!((status, location.as_str()), (400, ""), "{body}");
        assert!(body.contains("invalid state"), "{body}");
    }
    // A refused consent with the real state: back to the app, with the error.
    let callback = callback_from_wechat(&client, &server, "https://app.example.com/home").await;
    let state = query_value(&callback, "state");
    let denied = format!(
        "{}/oauth/main/callback?to={}&state={state}",
        server.base,
        encode_component("https://app.example.com/home")
    );
    let (status, location, _) = fetch(&client, &denied).await;
    assert_eq!(
        (status, location.as_str()),
        (
            302,
            "https://app.example.com/home?wxgate_error=access_denied"
        )
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_url_with_a_fragment_gets_the_identity_in_its_query() {
    let (_emu, server) = start("").await;
    let client = client();
    let callback = callback_from_wechat(
        &client,
        &server,
        "https://app.example.com/spa?x=1#/orders/42",
    )
    .await;
    let (status, to_app, body) = fetch(&client, &callback).await;
    assert_eq!(status, 302, "{body}");
    let (before, fragment) = to_app.split_once('#').expect("the fragment is kept");
    assert_eq!(fragment, "/orders/42");
    assert!(
        before.starts_with("https://app.example.com/spa?x=1&wxgate_identity=v1."),
        "{to_app}"
    );
    let identity = query_value(&to_app, "wxgate_identity");
    assert!(wxgate::oauth::verify_identity(SIGNING_KEY, &identity, now()).is_some());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raw_newline_in_the_app_url_consumes_no_state_and_gets_a_reason() {
    let (_emu, server) = start("").await;
    let client = client();
    let (status, location, body) = fetch(
        &client,
        &authorize_url(&server, "https://app.example.com/\r\nSet-Cookie: a=b"),
    )
    .await;
    assert_eq!((status, location.as_str()), (400, ""), "{body}");
    assert!(body.contains("control character"), "{body}");

    let callback = callback_from_wechat(&client, &server, "https://app.example.com/next").await;
    let with_newline = callback.replace(
        &format!("to={}", encode_component("https://app.example.com/next")),
        &format!("to={}", encode_component("https://app.example.com/next\n")),
    );
    assert_ne!(with_newline, callback);
    let (status, location, body) = fetch(&client, &with_newline).await;
    assert_eq!((status, location.as_str()), (400, ""), "{body}");
    assert!(body.contains("control character"), "{body}");
    // The state was not consumed: the genuine callback still signs in.
    let (status, to_app, body) = fetch(&client, &callback).await;
    assert_eq!(status, 302, "{body}");
    assert!(
        to_app.starts_with("https://app.example.com/next?wxgate_identity=v1."),
        "{to_app}"
    );
    server.stop().await;
}

/// The budget is `peak_sign_ins_per_s × state_ttl_s` = 30 here. Filling it neither
/// frees the victim's used state nor lets a fifth sign-in start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_sign_ins_never_makes_a_used_state_valid_again() {
    let (_emu, server) = start("state_ttl_s = 30\npeak_sign_ins_per_s = 1\n").await;
    let budget = server
        .state
        .account("main")
        .and_then(|a| a.config.oauth.as_ref().map(|o| o.state_budget()))
        .unwrap();
    assert_eq!(budget, 30);
    let client = client();
    let victim = callback_from_wechat(&client, &server, "https://app.example.com/").await;
    let (status, _, body) = fetch(&client, &victim).await;
    assert_eq!(status, 302, "{body}");
    let replay = victim.replace("code=", "code=replayed");
    let (status, _, body) = fetch(&client, &replay).await;
    assert_eq!(
        (status, body.as_str()),
        (400, "this sign-in link was already used: start again")
    );
    // The attacker starts and finishes sign-ins (with bogus codes) up to the budget.
    for i in 1..budget {
        let (status, to_wechat, body) =
            fetch(&client, &authorize_url(&server, "https://app.example.com/")).await;
        assert_eq!(status, 302, "sign-in {i}: {body}");
        let redirect_uri = query_value(&to_wechat, "redirect_uri");
        let state = query_value(&to_wechat, "state");
        let (status, _, _) = fetch(
            &client,
            &format!("{redirect_uri}&code=bogus{i}&state={state}"),
        )
        .await;
        assert_eq!(
            status, 502,
            "the state is used, the bogus code fails at WeChat"
        );
    }
    assert_eq!(
        server.state.oauth_memory().held("main", now()),
        (budget, budget)
    );
    // (b) The next sign-in is refused with the reason, instead of forgetting anything.
    let (status, location, body) =
        fetch(&client, &authorize_url(&server, "https://app.example.com/")).await;
    assert_eq!((status, location.as_str()), (503, ""));
    assert!(body.contains("peak_sign_ins_per_s"), "{body}");
    // (a) The victim's used state is still refused.
    let (status, _, body) = fetch(&client, &victim.replace("code=", "code=again")).await;
    assert_eq!(
        (status, body.as_str()),
        (400, "this sign-in link was already used: start again")
    );
    server.stop().await;
}
