//! The credential center against the emulator, over real TCP.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use wxgate_client::credential::StoreFuture;
use wxgate_client::{
    AccountSecrets, CenterConfig, Client, Credential, CredentialCenter, CredentialKind,
    CredentialStore, Error, Fence, MemoryStore, StoreError, TokenEndpoint,
};
use wxgate_emu::{App, Emulator, EmulatorConfig};

const APP_ID: &str = "wx1234567890abcdef";
const SECRET: &str = "0123456789abcdef0123456789abcdef";

async fn emulator(config: EmulatorConfig) -> (Emulator, String) {
    let emu = Emulator::new(config);
    let (addr, _task) = emu
        .spawn(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    (emu, format!("http://{addr}"))
}

fn default_emulator() -> EmulatorConfig {
    EmulatorConfig::with_app(App::new(APP_ID, SECRET))
}

fn center_with(
    base: &str,
    store: Arc<dyn CredentialStore>,
    endpoint: TokenEndpoint,
    secret: &str,
) -> Arc<CredentialCenter> {
    CredentialCenter::new(
        Client::new(base),
        store,
        CenterConfig {
            endpoint,
            ..CenterConfig::default()
        },
        vec![AccountSecrets {
            name: "main".into(),
            app_id: APP_ID.into(),
            secret: secret.into(),
            source: wxgate_client::TokenSource::WeChat,
        }],
    )
}

fn center(base: &str) -> Arc<CredentialCenter> {
    center_with(
        base,
        Arc::new(MemoryStore::default()),
        TokenEndpoint::Stable,
        SECRET,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_callers_on_a_cold_cache_cause_one_fetch() {
    let (emu, base) = emulator(default_emulator()).await;
    let center = center(&base);
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let center = center.clone();
        tasks.push(tokio::spawn(async move {
            center
                .get("main", CredentialKind::AccessToken)
                .await
                .unwrap()
                .value
                .clone()
        }));
    }
    let mut values = std::collections::HashSet::new();
    for task in tasks {
        values.insert(task.await.unwrap());
    }
    assert_eq!(values.len(), 1, "every caller got the same token");
    assert_eq!(
        emu.count("/cgi-bin/stable_token"),
        1,
        "exactly one token request reached WeChat"
    );
    assert_eq!(center.stats().fetches, 1);
}

#[tokio::test]
async fn expiry_causes_exactly_one_refresh_ahead_of_time() {
    let (emu, base) = emulator(default_emulator()).await;
    let center = center(&base);
    let first = center
        .get("main", CredentialKind::AccessToken)
        .await
        .unwrap();
    // 7000 s later the token (7200 s) is inside the 300 s refresh margin.
    emu.advance(7000);
    center.advance_clock(7000);
    assert!(
        center.cached("main", CredentialKind::AccessToken).is_some(),
        "still valid: callers do not wait"
    );
    center.refresh_due().await;
    center.refresh_due().await;
    let second = center
        .get("main", CredentialKind::AccessToken)
        .await
        .unwrap();
    assert_ne!(first.value, second.value, "refreshed ahead of expiry");
    assert_eq!(emu.count("/cgi-bin/stable_token"), 2, "exactly one refresh");
    // Nothing is due any more.
    center.refresh_due().await;
    assert_eq!(emu.count("/cgi-bin/stable_token"), 2);
}

#[tokio::test]
async fn the_background_refresher_refreshes_short_lived_tokens() {
    let mut config = default_emulator();
    config.token_ttl_s = 4;
    let (emu, base) = emulator(config).await;
    let center = CredentialCenter::new(
        Client::new(&base),
        Arc::new(MemoryStore::default()),
        CenterConfig {
            refresh_tick: Duration::from_millis(100),
            ..CenterConfig::default()
        },
        vec![AccountSecrets {
            name: "main".into(),
            app_id: APP_ID.into(),
            secret: SECRET.into(),
            source: wxgate_client::TokenSource::WeChat,
        }],
    );
    let refresher = center.spawn_refresher();
    let first = center
        .get("main", CredentialKind::AccessToken)
        .await
        .unwrap();
    // The token lives 4 s and is refreshed 1 s before expiry, at about 3 s.
    tokio::time::sleep(Duration::from_millis(4500)).await;
    let current = center
        .cached("main", CredentialKind::AccessToken)
        .expect("never a gap");
    assert_ne!(current.value, first.value);
    assert_eq!(
        emu.count("/cgi-bin/stable_token"),
        2,
        "one fetch, one refresh"
    );
    refresher.abort();
}

#[tokio::test]
async fn a_token_invalidated_elsewhere_is_recovered_with_one_retry() {
    let (emu, base) = emulator(default_emulator()).await;
    let center = center(&base);
    center
        .get("main", CredentialKind::AccessToken)
        .await
        .unwrap();
    emu.refresh_elsewhere(APP_ID);
    let client = center.client().clone();
    let ips = center
        .with_access_token("main", |token| {
            let client = client.clone();
            async move { client.callback_ips(&token).await }
        })
        .await
        .unwrap();
    assert!(!ips.is_empty());
    assert_eq!(
        emu.count("/cgi-bin/getcallbackip"),
        2,
        "the failed call and one retry"
    );
    assert_eq!(emu.count("/cgi-bin/stable_token"), 2);
    assert_eq!(
        center.stats().foreign_refreshes,
        1,
        "a foreign refresh is detected"
    );
}

#[tokio::test]
async fn compare_and_expire_keeps_a_newer_token() {
    let (emu, base) = emulator(default_emulator()).await;
    let center = center(&base);
    let token = center
        .get("main", CredentialKind::AccessToken)
        .await
        .unwrap();
    assert!(!center.invalidate("main", CredentialKind::AccessToken, "some-older-token"));
    assert_eq!(
        center
            .cached("main", CredentialKind::AccessToken)
            .unwrap()
            .value,
        token.value
    );
    assert!(center.invalidate("main", CredentialKind::AccessToken, &token.value));
    assert!(center.cached("main", CredentialKind::AccessToken).is_none());
    assert_eq!(emu.count("/cgi-bin/stable_token"), 1);
}

#[tokio::test]
async fn classic_holders_invalidate_each_other_stable_holders_do_not() {
    let (emu, base) = emulator(default_emulator()).await;
    let a = center_with(
        &base,
        Arc::new(MemoryStore::default()),
        TokenEndpoint::Classic,
        SECRET,
    );
    let b = center_with(
        &base,
        Arc::new(MemoryStore::default()),
        TokenEndpoint::Classic,
        SECRET,
    );
    let token_a = a.get("main", CredentialKind::AccessToken).await.unwrap();
    b.get("main", CredentialKind::AccessToken).await.unwrap();
    let err = a.client().callback_ips(&token_a.value).await.unwrap_err();
    assert_eq!(err.errcode(), Some(40001), "{err}");
    assert!(
        err.to_string().contains("another system refreshed"),
        "{err}"
    );

    emu.clear_calls();
    let c = center(&base);
    let d = center(&base);
    let token_c = c.get("main", CredentialKind::AccessToken).await.unwrap();
    let token_d = d.get("main", CredentialKind::AccessToken).await.unwrap();
    assert_eq!(
        token_c.value, token_d.value,
        "stable_token hands out the current token"
    );
    c.client().callback_ips(&token_c.value).await.unwrap();
}

#[tokio::test]
async fn a_persistent_store_spares_the_quota_across_restarts() {
    let (emu, base) = emulator(default_emulator()).await;
    let store: Arc<dyn CredentialStore> = Arc::new(MemoryStore::default());
    let before = center_with(&base, store.clone(), TokenEndpoint::Stable, SECRET);
    let token = before
        .get("main", CredentialKind::AccessToken)
        .await
        .unwrap();
    drop(before);
    let after = center_with(&base, store, TokenEndpoint::Stable, SECRET);
    assert_eq!(
        after
            .get("main", CredentialKind::AccessToken)
            .await
            .unwrap()
            .value,
        token.value
    );
    assert_eq!(
        emu.count("/cgi-bin/stable_token"),
        1,
        "no new fetch after the restart"
    );
}

#[tokio::test]
async fn errors_carry_hints_and_failed_refreshes_back_off() {
    let (emu, base) = emulator(default_emulator()).await;
    let center = center_with(
        &base,
        Arc::new(MemoryStore::default()),
        TokenEndpoint::Stable,
        "wrong-secret",
    );
    let err = center
        .get("main", CredentialKind::AccessToken)
        .await
        .unwrap_err();
    assert_eq!(err.errcode(), Some(40125));
    assert!(err.to_string().contains("AppSecret"), "{err}");
    assert!(
        !err.to_string().contains("wrong-secret"),
        "secrets never appear in errors: {err}"
    );
    let again = center
        .get("main", CredentialKind::AccessToken)
        .await
        .unwrap_err();
    assert!(matches!(again, Error::Backoff { .. }), "{again}");
    assert_eq!(
        emu.count("/cgi-bin/stable_token"),
        1,
        "no second request during backoff"
    );
    assert_eq!(center.stats().failures, 1);
}

#[tokio::test]
async fn ip_whitelist_error_names_the_ip_to_add() {
    let mut config = default_emulator();
    config.ip_whitelist = Some(vec!["10.1.2.3".parse().unwrap()]);
    let (_emu, base) = emulator(config).await;
    let err = center(&base)
        .get("main", CredentialKind::AccessToken)
        .await
        .unwrap_err();
    assert_eq!(err.errcode(), Some(40164));
    assert!(
        err.to_string()
            .contains("add 127.0.0.1 to the IP whitelist"),
        "{err}"
    );
}

#[tokio::test]
async fn daily_quota_is_enforced_and_named() {
    let mut config = default_emulator();
    config.daily_token_quota = 1;
    let (_emu, base) = emulator(config).await;
    let center = center_with(
        &base,
        Arc::new(MemoryStore::default()),
        TokenEndpoint::Classic,
        SECRET,
    );
    let token = center
        .get("main", CredentialKind::AccessToken)
        .await
        .unwrap();
    center.invalidate("main", CredentialKind::AccessToken, &token.value);
    let err = center
        .get("main", CredentialKind::AccessToken)
        .await
        .unwrap_err();
    assert_eq!(err.errcode(), Some(45009));
    assert!(err.to_string().contains("quota"), "{err}");
    assert_eq!(center.fetches_today("main", CredentialKind::AccessToken), 1);
}

/// A store where everything fails: the fetched token must still be used. `shared`
/// plays a shared store (Redis) that is down.
#[derive(Default)]
struct BrokenStore {
    shared: bool,
}

impl CredentialStore for BrokenStore {
    fn load<'a>(&'a self, _key: &'a str) -> StoreFuture<'a, Option<Credential>> {
        Box::pin(async { Err(StoreError::unavailable("disk on fire")) })
    }
    fn save<'a>(
        &'a self,
        _key: &'a str,
        _c: &'a Credential,
        _lease: Option<Fence>,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async { Err(StoreError::unavailable("disk on fire")) })
    }
    fn try_lock<'a>(&'a self, _key: &'a str, _ttl: Duration) -> StoreFuture<'a, Option<Fence>> {
        Box::pin(async { Err(StoreError::unavailable("disk on fire")) })
    }
    fn unlock<'a>(&'a self, _key: &'a str, _fence: Fence) -> StoreFuture<'a, ()> {
        Box::pin(async { Ok(()) })
    }
    fn name(&self) -> &'static str {
        "broken"
    }
    fn shared(&self) -> bool {
        self.shared
    }
}

#[tokio::test]
async fn a_failing_store_does_not_stop_the_token() {
    let (emu, base) = emulator(default_emulator()).await;
    let center = center_with(
        &base,
        Arc::new(BrokenStore::default()),
        TokenEndpoint::Stable,
        SECRET,
    );
    center
        .get("main", CredentialKind::AccessToken)
        .await
        .unwrap();
    center
        .get("main", CredentialKind::AccessToken)
        .await
        .unwrap();
    assert_eq!(
        emu.count("/cgi-bin/stable_token"),
        1,
        "the cached token is reused"
    );
    assert!(center.stats().store_failures >= 2);
}

/// A shared store that is down: a classic refresh without the lease would invalidate
/// the other instances' token, so it is refused with a clear error; the stable
/// endpoint refreshes without the lease, which is safe.
#[tokio::test]
async fn an_unreachable_shared_store_refuses_a_classic_refresh_only() {
    let (emu, base) = emulator(default_emulator()).await;
    let down = Arc::new(BrokenStore { shared: true });
    let classic = center_with(&base, down.clone(), TokenEndpoint::Classic, SECRET);
    let err = classic
        .get("main", CredentialKind::AccessToken)
        .await
        .unwrap_err();
    assert!(
        matches!(err, wxgate_client::Error::SharedStoreUnavailable { .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains("broken") && message.contains("token_endpoint = \"stable\""),
        "{message}"
    );
    assert_eq!(
        emu.count("/cgi-bin/token"),
        0,
        "no refresh without the lease"
    );
    let stable = center_with(&base, down, TokenEndpoint::Stable, SECRET);
    stable
        .get("main", CredentialKind::AccessToken)
        .await
        .unwrap();
    assert_eq!(emu.count("/cgi-bin/stable_token"), 1);
}

#[tokio::test]
async fn jsapi_ticket_uses_the_managed_token() {
    let (emu, base) = emulator(default_emulator()).await;
    let center = center(&base);
    let ticket = center
        .get("main", CredentialKind::JsapiTicket)
        .await
        .unwrap();
    assert!(ticket.value.starts_with("TICKET_"));
    center
        .get("main", CredentialKind::JsapiTicket)
        .await
        .unwrap();
    assert_eq!(emu.count("/cgi-bin/ticket/getticket"), 1);
    assert_eq!(emu.count("/cgi-bin/stable_token"), 1);
}

#[tokio::test]
async fn typed_calls_against_the_emulator() {
    let (emu, base) = emulator(default_emulator()).await;
    let center = center(&base);
    let token = center
        .get("main", CredentialKind::AccessToken)
        .await
        .unwrap()
        .value
        .clone();
    let client = center.client();
    let qr = client
        .qrcode_create(
            &token,
            &wxgate_client::Scene::Str("promo".into()),
            Some(600),
        )
        .await
        .unwrap();
    assert!(!qr.ticket.is_empty() && qr.expire_seconds == Some(600));
    let permanent = client
        .qrcode_create(&token, &wxgate_client::Scene::Id(42), None)
        .await
        .unwrap();
    assert_eq!(permanent.expire_seconds, None);
    assert!(emu
        .calls()
        .iter()
        .any(|c| c.body.contains("QR_LIMIT_SCENE")));
    let link = client
        .generate_scheme(
            &token,
            &serde_json::json!({ "jump_wxa": { "path": "pages/index/index" } }),
        )
        .await
        .unwrap();
    assert!(link.starts_with("weixin://dl/business/?t="));
    let url = client
        .generate_urllink(&token, &serde_json::json!({ "path": "pages/index/index" }))
        .await
        .unwrap();
    assert!(url.starts_with("https://"));
    // Customer service needs an interaction within 48 h.
    let message = wxgate_client::CustomMessage::Text("你好".into());
    assert_eq!(
        client
            .custom_send(&token, "oUser", &message)
            .await
            .unwrap_err()
            .errcode(),
        Some(45015)
    );
    emu.record_interaction("oUser");
    client.custom_send(&token, "oUser", &message).await.unwrap();
    assert!(
        emu.calls().iter().any(|c| c.body.contains("你好")),
        "UTF-8 sent raw, not \\u escaped"
    );
    client.custom_typing(&token, "oUser", true).await.unwrap();
    let msgid = client
        .template_send(
            &token,
            &serde_json::json!({ "touser": "oUser", "template_id": "T1", "data": {} }),
        )
        .await
        .unwrap();
    assert!(msgid >= 0);
    assert_eq!(
        client.menu_get(&token).await.unwrap_err().errcode(),
        Some(46003)
    );
    client
        .menu_create(
            &token,
            &serde_json::json!({ "button": [{ "type": "click", "name": "A", "key": "A" }] }),
        )
        .await
        .unwrap();
    assert!(client.menu_get(&token).await.unwrap()["menu"]["button"].is_array());
    client.menu_delete(&token).await.unwrap();
    assert_eq!(
        client.user_info(&token, "oUser").await.unwrap()["subscribe"],
        1
    );
    emu.advance(7300);
    assert_eq!(
        client
            .user_info(&token, "oUser")
            .await
            .unwrap_err()
            .errcode(),
        Some(42001),
        "expired tokens get 42001"
    );
}

#[tokio::test]
async fn oauth_codes_are_single_use_and_expire() {
    let (emu, base) = emulator(default_emulator()).await;
    let client = Client::new(&base);
    let authorize = |state: &str| {
        format!("{base}/connect/oauth2/authorize?appid={APP_ID}&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb&response_type=code&scope=snsapi_userinfo&state={state}")
    };
    let http = wxgate_client::http_client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let code_of = |location: &str| {
        location
            .split("code=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap()
            .to_owned()
    };
    let response = http.get(authorize("s1")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 302);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with("https://app.example.com/cb?code=") && location.ends_with("&state=s1"),
        "{location}"
    );
    let code = code_of(&location);
    let token = client.oauth_exchange(APP_ID, SECRET, &code).await.unwrap();
    assert_eq!(token.scope, "snsapi_userinfo");
    assert_eq!(
        client
            .oauth_exchange(APP_ID, SECRET, &code)
            .await
            .unwrap_err()
            .errcode(),
        Some(40163)
    );
    let user = client
        .oauth_userinfo(&token.access_token, &token.openid)
        .await
        .unwrap();
    assert_eq!(user["openid"], token.openid);
    client
        .oauth_check(&token.access_token, &token.openid)
        .await
        .unwrap();
    let refreshed = client
        .oauth_refresh(APP_ID, &token.refresh_token)
        .await
        .unwrap();
    assert_eq!(refreshed.openid, token.openid);

    let response = http.get(authorize("s2")).send().await.unwrap();
    let code = code_of(response.headers()["location"].to_str().unwrap());
    emu.advance(301);
    assert_eq!(
        client
            .oauth_exchange(APP_ID, SECRET, &code)
            .await
            .unwrap_err()
            .errcode(),
        Some(40029),
        "codes live 5 minutes"
    );
}
