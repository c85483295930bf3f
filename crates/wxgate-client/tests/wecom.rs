//! A WeCom application's token in the credential center, against the emulator as
//! `qyapi_base` over real TCP: single flight, refresh ahead (and WeCom's documented
//! same-token-until-expiry), compare-and-expire on 42001 and 40014, a wrong Secret, an
//! unknown CorpID, the trusted-IP refusal (60020), two applications of one corp, and
//! `message/send`.

use std::net::SocketAddr;
use std::sync::Arc;

use wxgate_client::{
    AccountSecrets, CenterConfig, Client, CredentialCenter, CredentialKind, CredentialStore,
    CustomMessage, Error, MemoryStore, TokenSource,
};
use wxgate_emu::{Emulator, EmulatorConfig, WeComApp};

const CORP_ID: &str = "ww0123456789abcdef";
const SECRET: &str = "wecom-app-secret-0123456789abcdefghijklmnop";
const OTHER_SECRET: &str = "wecom-other-secret-0123456789abcdefghijklm";
const AGENT: u64 = 1000002;
const OTHER_AGENT: u64 = 1000003;

fn emulator_config() -> EmulatorConfig {
    EmulatorConfig {
        apps: Vec::new(),
        ..EmulatorConfig::with_app(wxgate_emu::App::new("wx1234567890abcdef", "x"))
    }
    .with_wecom_app(WeComApp::new(CORP_ID, AGENT, SECRET))
    .with_wecom_app(WeComApp::new(CORP_ID, OTHER_AGENT, OTHER_SECRET))
}

async fn emulator(config: EmulatorConfig) -> (Emulator, String) {
    let emu = Emulator::new(config);
    let (addr, _task) = emu
        .spawn(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    (emu, format!("http://{addr}"))
}

fn corp(name: &str, agent_id: u64, secret: &str) -> AccountSecrets {
    AccountSecrets {
        name: name.into(),
        app_id: CORP_ID.into(),
        secret: secret.into(),
        source: TokenSource::WeCom { agent_id },
    }
}

/// A center whose only WeChat base is closed, so any call that went to `api_base`
/// instead of `qyapi_base` fails.
fn center_on(
    base: &str,
    store: Arc<dyn CredentialStore>,
    accounts: Vec<AccountSecrets>,
) -> Arc<CredentialCenter> {
    CredentialCenter::new(
        Client::new("http://127.0.0.1:9"),
        store,
        CenterConfig {
            qyapi_base: base.to_owned(),
            ..CenterConfig::default()
        },
        accounts,
    )
}

fn center(base: &str) -> Arc<CredentialCenter> {
    center_on(
        base,
        Arc::new(MemoryStore::default()),
        vec![corp("corp", AGENT, SECRET)],
    )
}

/// Sends `text` to `touser` through message/send with the managed token (one retry on
/// a rejected token).
async fn send(center: &CredentialCenter, touser: &str, text: &str) -> Result<(), Error> {
    let message = CustomMessage::Text(text.into());
    center
        .with_access_token("corp", |token| {
            let message = message.clone();
            async move {
                center
                    .wecom()
                    .message_send(&token, AGENT, touser, &message)
                    .await
            }
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_callers_cause_one_gettoken() {
    let (emu, base) = emulator(emulator_config()).await;
    let center = center(&base);
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let center = center.clone();
        tasks.push(tokio::spawn(async move {
            let token = center.get("corp", CredentialKind::AccessToken).await;
            token.unwrap().value.clone()
        }));
    }
    let mut values = std::collections::HashSet::new();
    for task in tasks {
        values.insert(task.await.unwrap());
    }
    assert_eq!(values.len(), 1, "every caller got the same token");
    assert!(values.iter().next().unwrap().starts_with("WECOM_"));
    assert_eq!(
        emu.count("/cgi-bin/gettoken"),
        1,
        "one gettoken reached WeCom"
    );
    assert_eq!(center.stats().fetches, 1);
    let call = &emu.calls()[0];
    assert!(
        call.query.contains(&format!("corpid={CORP_ID}")) && call.query.contains("corpsecret="),
        "{}",
        call.query
    );
}

#[tokio::test]
async fn the_token_is_refreshed_ahead_of_its_expiry_once() {
    let (emu, base) = emulator(emulator_config()).await;
    let center = center(&base);
    let first = center
        .get("corp", CredentialKind::AccessToken)
        .await
        .unwrap();
    emu.advance(7000);
    center.advance_clock(7000);
    assert!(
        center.cached("corp", CredentialKind::AccessToken).is_some(),
        "still valid: callers do not wait"
    );
    center.refresh_due().await;
    center.refresh_due().await;
    let second = center
        .get("corp", CredentialKind::AccessToken)
        .await
        .unwrap();
    assert_ne!(first.value, second.value, "refreshed ahead of expiry");
    assert_eq!(emu.count("/cgi-bin/gettoken"), 2, "exactly one refresh");
    // The old token stays valid until its own expiry, the new one works.
    send(&center, "zhangsan", "after the refresh")
        .await
        .unwrap();
    assert_eq!(emu.count("/cgi-bin/gettoken"), 2);
}

/// WeCom's documentation: within its validity `gettoken` returns the same token. A
/// refresh ahead then gets it back; the refresher must not ask again every tick, and
/// the token is replaced once it expires.
#[tokio::test]
async fn a_token_handed_out_again_until_expiry_is_not_asked_for_every_tick() {
    let mut config = emulator_config();
    config.wecom_renew_window_s = 0;
    let (emu, base) = emulator(config).await;
    let center = center(&base);
    let first = center
        .get("corp", CredentialKind::AccessToken)
        .await
        .unwrap();
    emu.advance(7000);
    center.advance_clock(7000);
    // From 200 s before its expiry to 5 s before it, the refresher ticks.
    for step in [0, 50, 50, 50, 30, 15] {
        emu.advance(step);
        center.advance_clock(step);
        center.refresh_due().await;
        center.refresh_due().await;
    }
    assert_eq!(
        emu.count("/cgi-bin/gettoken"),
        2,
        "one refresh ahead, which got the same token back, then nothing until expiry"
    );
    let cached = center.cached("corp", CredentialKind::AccessToken).unwrap();
    assert_eq!(cached.value, first.value);
    emu.advance(6);
    center.advance_clock(6);
    let fresh = center
        .get("corp", CredentialKind::AccessToken)
        .await
        .unwrap();
    assert_ne!(fresh.value, first.value, "a new token after the expiry");
    assert_eq!(emu.count("/cgi-bin/gettoken"), 3);
}

#[tokio::test]
async fn an_expired_token_42001_is_expired_and_fetched_again_once() {
    let (emu, base) = emulator(emulator_config()).await;
    let center = center(&base);
    let first = center
        .get("corp", CredentialKind::AccessToken)
        .await
        .unwrap();
    // WeCom's clock is past the expiry, ours is not: WeCom answers 42001.
    emu.advance(7300);
    send(&center, "zhangsan", "hello").await.unwrap();
    let calls = emu.calls();
    let sends: Vec<_> = calls
        .iter()
        .filter(|c| c.path == "/cgi-bin/message/send")
        .collect();
    assert_eq!(sends.len(), 2, "the rejected send and one retry");
    assert_eq!((sends[0].errcode, sends[1].errcode), (42001, 0));
    assert_eq!(
        emu.count("/cgi-bin/gettoken"),
        2,
        "one fetch after the rejection"
    );
    let now = center
        .get("corp", CredentialKind::AccessToken)
        .await
        .unwrap();
    assert_ne!(now.value, first.value);
    // The rejected token is not current any more: expiring it again changes nothing.
    assert!(!center.invalidate("corp", CredentialKind::AccessToken, &first.value));
    assert_eq!(
        center
            .cached("corp", CredentialKind::AccessToken)
            .unwrap()
            .value,
        now.value
    );
    let sent = emu.wecom_sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        (
            sent[0].touser.as_str(),
            sent[0].agent_id,
            sent[0].content.as_str()
        ),
        ("zhangsan", AGENT, "hello")
    );
}

#[tokio::test]
async fn a_revoked_token_40014_is_expired_and_fetched_again_once() {
    let (emu, base) = emulator(emulator_config()).await;
    let center = center(&base);
    center
        .get("corp", CredentialKind::AccessToken)
        .await
        .unwrap();
    emu.revoke_wecom_tokens(CORP_ID, AGENT);
    send(&center, "lisi", "again").await.unwrap();
    let errcodes: Vec<i64> = emu
        .calls()
        .iter()
        .filter(|c| c.path == "/cgi-bin/message/send")
        .map(|c| c.errcode)
        .collect();
    assert_eq!(errcodes, vec![40014, 0]);
    assert_eq!(emu.count("/cgi-bin/gettoken"), 2);
    assert_eq!(
        center.stats().foreign_refreshes,
        1,
        "a rejection before expiry is counted"
    );
    // A second rejection within the retry is not retried again.
    emu.revoke_wecom_tokens(CORP_ID, AGENT);
    let before = emu.count("/cgi-bin/gettoken");
    send(&center, "lisi", "third").await.unwrap();
    assert_eq!(emu.count("/cgi-bin/gettoken"), before + 1);
}

#[tokio::test]
async fn a_wrong_secret_is_40001_with_a_hint_and_without_the_secret() {
    let (emu, base) = emulator(emulator_config()).await;
    let wrong = "not-the-application-secret-0123456789abcd";
    let center = center_on(
        &base,
        Arc::new(MemoryStore::default()),
        vec![corp("corp", AGENT, wrong)],
    );
    let err = center
        .get("corp", CredentialKind::AccessToken)
        .await
        .unwrap_err();
    assert_eq!(err.errcode(), Some(40001));
    let shown = format!("{err} | {err:?}");
    assert!(shown.contains("corp_secret"), "{shown}");
    assert!(shown.contains("应用管理"), "{shown}");
    assert!(!shown.contains(wrong), "the secret never shows: {shown}");
    assert!(
        !format!("{center:?}").contains(wrong),
        "nor in the center's Debug"
    );
    // A wrong Secret is not retried at once: the backoff holds the next attempt.
    let again = center
        .get("corp", CredentialKind::AccessToken)
        .await
        .unwrap_err();
    assert!(matches!(again, Error::Backoff { .. }), "{again}");
    assert_eq!(emu.count("/cgi-bin/gettoken"), 1);
}

#[tokio::test]
async fn an_unknown_corp_id_is_40013() {
    let (_emu, base) = emulator(emulator_config()).await;
    let mut account = corp("corp", AGENT, SECRET);
    account.app_id = "ww00000000000000ff".into();
    let center = center_on(&base, Arc::new(MemoryStore::default()), vec![account]);
    let err = center
        .get("corp", CredentialKind::AccessToken)
        .await
        .unwrap_err();
    assert_eq!(err.errcode(), Some(40013));
    assert!(err.to_string().contains("corp_id"), "{err}");
}

#[tokio::test]
async fn a_caller_outside_the_trusted_ips_gets_60020_with_the_ip_to_add() {
    let mut app = WeComApp::new(CORP_ID, AGENT, SECRET);
    app.trusted_ips = Some(vec!["203.0.113.7".parse().unwrap()]);
    let config = EmulatorConfig {
        wecom_apps: vec![app],
        ..emulator_config()
    };
    let (emu, base) = emulator(config).await;
    let center = center(&base);
    let err = send(&center, "zhangsan", "hi").await.unwrap_err();
    assert_eq!(err.errcode(), Some(60020));
    let text = err.to_string();
    assert!(
        text.contains("add 127.0.0.1 to the application's trusted IPs")
            && text.contains("企业可信IP"),
        "{text}"
    );
    assert_eq!(
        emu.count("/cgi-bin/message/send"),
        1,
        "60020 is not a token problem: no retry"
    );
    assert_eq!(emu.count("/cgi-bin/gettoken"), 1);
    assert!(center.cached("corp", CredentialKind::AccessToken).is_some());
}

#[tokio::test]
async fn an_unknown_user_is_81013_and_a_card_is_refused_before_the_call() {
    let mut app = WeComApp::new(CORP_ID, AGENT, SECRET);
    app.users = Some(vec!["zhangsan".into()]);
    let config = EmulatorConfig {
        wecom_apps: vec![app],
        ..emulator_config()
    };
    let (emu, base) = emulator(config).await;
    let center = center(&base);
    let err = send(&center, "nobody", "hi").await.unwrap_err();
    assert_eq!(err.errcode(), Some(81013));
    assert!(err.to_string().contains("可见范围"), "{err}");
    let token = center
        .get("corp", CredentialKind::AccessToken)
        .await
        .unwrap();
    let card = CustomMessage::MiniProgramPage {
        title: "t".into(),
        appid: "wx1234567890abcdef".into(),
        pagepath: "p".into(),
        thumb_media_id: "m".into(),
    };
    let err = center
        .wecom()
        .message_send(&token.value, AGENT, "zhangsan", &card)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::WeComMessage { .. }), "{err}");
    assert_eq!(emu.count("/cgi-bin/message/send"), 1);
}

#[tokio::test]
async fn a_wecom_account_has_no_jsapi_ticket_here() {
    let (emu, base) = emulator(emulator_config()).await;
    let center = center(&base);
    let err = center
        .get("corp", CredentialKind::JsapiTicket)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotForWeCom { .. }), "{err}");
    assert!(err.to_string().contains("WeCom application"), "{err}");
    assert!(
        emu.calls().is_empty(),
        "no call went anywhere: {:?}",
        emu.calls()
    );
}

#[tokio::test]
async fn two_applications_of_one_corp_keep_two_tokens_in_one_store() {
    let (emu, base) = emulator(emulator_config()).await;
    let store: Arc<dyn CredentialStore> = Arc::new(MemoryStore::default());
    let center = center_on(
        &base,
        store.clone(),
        vec![
            corp("app-a", AGENT, SECRET),
            corp("app-b", OTHER_AGENT, OTHER_SECRET),
        ],
    );
    let a = center
        .get("app-a", CredentialKind::AccessToken)
        .await
        .unwrap();
    let b = center
        .get("app-b", CredentialKind::AccessToken)
        .await
        .unwrap();
    assert_ne!(a.value, b.value);
    let key_a = corp("app-a", AGENT, SECRET).store_key(CredentialKind::AccessToken);
    let key_b = corp("app-b", OTHER_AGENT, OTHER_SECRET).store_key(CredentialKind::AccessToken);
    assert_eq!(
        key_a,
        format!("wxgate:cred:wecom:{CORP_ID}:{AGENT}:access_token")
    );
    assert_ne!(key_a, key_b);
    assert_eq!(store.load(&key_a).await.unwrap().unwrap().value, a.value);
    assert_eq!(store.load(&key_b).await.unwrap().unwrap().value, b.value);
    // A restarted center over the same store fetches nothing.
    let restarted = center_on(
        &base,
        store,
        vec![
            corp("app-a", AGENT, SECRET),
            corp("app-b", OTHER_AGENT, OTHER_SECRET),
        ],
    );
    let again = restarted
        .get("app-b", CredentialKind::AccessToken)
        .await
        .unwrap();
    assert_eq!(again.value, b.value);
    assert_eq!(emu.count("/cgi-bin/gettoken"), 2);
    // An Official Account whose AppID equals the CorpID text does not share the key.
    let official = AccountSecrets {
        source: TokenSource::WeChat,
        ..corp("oa", AGENT, SECRET)
    };
    assert_ne!(official.store_key(CredentialKind::AccessToken), key_a);
}
