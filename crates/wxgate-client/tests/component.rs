//! A third-party platform's API and its component_access_token in the credential
//! center, against the emulator over real TCP: the ticket kept by CreateTime, one fetch
//! for many callers, compare-and-expire, the start-push call once, and the emulator's
//! error codes (61005, 61006, 61009, 61010, 61023, 40001, 40125).

use std::net::SocketAddr;
use std::sync::Arc;

use wxgate_client::credential::{TicketAsk, TicketOffer};
use wxgate_client::{
    AccountSecrets, CenterConfig, Client, CredentialCenter, CredentialKind, Error, MemoryStore,
    TokenSource,
};
use wxgate_emu::{App, Component, Emulator, EmulatorConfig};

const COMPONENT: &str = "wx134c8103faa5a59e";
const SECRET: &str = "0123456789abcdef0123456789abcdef";
const AUTHORIZER: &str = "wxa0a0a0a0a0a0a0a0";
const NAME: &str = "open/acme";

async fn emulator(rotate: bool) -> (Emulator, String) {
    let mut component = Component::new(COMPONENT, SECRET, "AAAAA", &"A".repeat(43));
    component.rotate_refresh_tokens = rotate;
    let config =
        EmulatorConfig::with_app(App::new("wx1234567890abcdef", SECRET)).with_component(component);
    let emu = Emulator::new(config);
    let (addr, _task) = emu
        .spawn(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    (emu, format!("http://{addr}"))
}

fn center(base: &str) -> Arc<CredentialCenter> {
    CredentialCenter::new(
        Client::new(base),
        Arc::new(MemoryStore::default()),
        CenterConfig::default(),
        vec![AccountSecrets {
            name: NAME.into(),
            app_id: COMPONENT.into(),
            secret: SECRET.into(),
            source: TokenSource::Component,
        }],
    )
}

#[tokio::test]
async fn without_a_ticket_the_token_is_refused_and_start_push_is_asked_once() {
    let (emu, base) = emulator(false).await;
    let center = center(&base);
    let err = center
        .get(NAME, CredentialKind::AccessToken)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::NoVerifyTicket { expired: false, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("授权事件接收URL"), "{err}");
    assert_eq!(center.ask_for_ticket(NAME).await.unwrap(), TicketAsk::Asked);
    // Asked within the last 10 minutes: no second call.
    assert_eq!(
        center.ask_for_ticket(NAME).await.unwrap(),
        TicketAsk::AskedElsewhere
    );
    assert_eq!(emu.count("/cgi-bin/component/api_start_push_ticket"), 1);
    let err = center
        .get(NAME, CredentialKind::JsapiTicket)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotForComponent { .. }), "{err}");
}

#[tokio::test]
async fn the_latest_ticket_gives_one_token_for_many_callers() {
    let (emu, base) = emulator(false).await;
    let center = center(&base);
    let now = center.now();
    let old = emu.issue_ticket(COMPONENT);
    let new = emu.issue_ticket(COMPONENT);
    assert_eq!(
        center.offer_verify_ticket(NAME, &new, now).await.unwrap(),
        TicketOffer::Stored
    );
    // A replayed or delayed older push never replaces the newer ticket.
    assert_eq!(
        center
            .offer_verify_ticket(NAME, &old, now - 600)
            .await
            .unwrap(),
        TicketOffer::Older
    );
    assert_eq!(
        center.offer_verify_ticket(NAME, &new, now).await.unwrap(),
        TicketOffer::Repeated
    );
    assert_eq!(center.verify_ticket(NAME).await.unwrap().value, new);
    assert_eq!(center.ask_for_ticket(NAME).await.unwrap(), TicketAsk::Held);

    let callers = (0..50).map(|_| {
        let center = center.clone();
        tokio::spawn(async move { center.get(NAME, CredentialKind::AccessToken).await })
    });
    let mut values = std::collections::HashSet::new();
    for caller in callers {
        values.insert(caller.await.unwrap().unwrap().value.clone());
    }
    assert_eq!(values.len(), 1, "every caller got the same token");
    assert_eq!(emu.count("/cgi-bin/component/api_component_token"), 1);
    assert_eq!(center.fetches_today(NAME, CredentialKind::AccessToken), 1);

    // Compare-and-expire: a rejected token is replaced once; a stale rejection is not.
    let first = values.into_iter().next().unwrap();
    assert!(center.invalidate(NAME, CredentialKind::AccessToken, &first));
    assert!(!center.invalidate(NAME, CredentialKind::AccessToken, &first));
    let second = center.get(NAME, CredentialKind::AccessToken).await.unwrap();
    assert_ne!(second.value, first);
    assert_eq!(emu.count("/cgi-bin/component/api_component_token"), 2);
}

fn errcode<T>(result: Result<T, Error>) -> Option<i64> {
    result.map(drop).unwrap_err().errcode()
}

#[tokio::test]
async fn the_emulator_answers_wechat_codes_for_tickets_tokens_and_codes() {
    let (emu, base) = emulator(false).await;
    let client = Client::new(&base);
    assert_eq!(
        errcode(
            client
                .component_token(COMPONENT, SECRET, "ticket@@@never")
                .await
        ),
        Some(61006)
    );
    assert_eq!(
        errcode(
            client
                .component_token(COMPONENT, "f".repeat(32).as_str(), "x")
                .await
        ),
        Some(40125)
    );
    let ticket = emu.issue_ticket(COMPONENT);
    emu.advance(12 * 3600 + 1);
    assert_eq!(
        errcode(client.component_token(COMPONENT, SECRET, &ticket).await),
        Some(61005)
    );
    let ticket = emu.issue_ticket(COMPONENT);
    let token = client
        .component_token(COMPONENT, SECRET, &ticket)
        .await
        .unwrap()
        .value;
    assert_eq!(
        errcode(
            client
                .create_preauthcode("EMU_COMPONENT_forged", COMPONENT)
                .await
        ),
        Some(40001)
    );
    let pre = client.create_preauthcode(&token, COMPONENT).await.unwrap();
    assert!(pre.value.starts_with("preauthcode@@@"));
    assert_eq!(
        errcode(
            client
                .query_auth(&token, COMPONENT, "queryauthcode@@@never")
                .await
        ),
        Some(61009)
    );
    let code = emu.authorize(COMPONENT, AUTHORIZER);
    let tokens = client.query_auth(&token, COMPONENT, &code).await.unwrap();
    assert_eq!(tokens.authorizer_app_id, AUTHORIZER);
    assert!(
        !format!("{tokens:?}").contains(&tokens.refresh_token),
        "Debug hides the refresh token"
    );
    assert_eq!(
        errcode(client.query_auth(&token, COMPONENT, &code).await),
        Some(61010)
    );
    assert_eq!(
        errcode(
            client
                .authorizer_token(&token, COMPONENT, AUTHORIZER, "refreshtoken@@@forged")
                .await
        ),
        Some(61023)
    );
    // The authorizer's access token works on the ordinary API.
    let ips = client.callback_ips(&tokens.access.value).await;
    assert!(ips.is_ok(), "{ips:?}");
}

#[tokio::test]
async fn a_refresh_token_stays_or_rotates_as_the_platform_does() {
    for rotate in [false, true] {
        let (emu, base) = emulator(rotate).await;
        let client = Client::new(&base);
        let ticket = emu.issue_ticket(COMPONENT);
        let token = client
            .component_token(COMPONENT, SECRET, &ticket)
            .await
            .unwrap()
            .value;
        let code = emu.authorize(COMPONENT, AUTHORIZER);
        let first = client.query_auth(&token, COMPONENT, &code).await.unwrap();
        let second = (client.authorizer_token(&token, COMPONENT, AUTHORIZER, &first.refresh_token))
            .await
            .unwrap();
        assert_ne!(second.access.value, first.access.value);
        assert_eq!(
            second.refresh_token == first.refresh_token,
            !rotate,
            "rotate = {rotate}"
        );
        let again = client
            .authorizer_token(&token, COMPONENT, AUTHORIZER, &first.refresh_token)
            .await;
        // A rotated refresh token works once; one that stays keeps working.
        assert_eq!(again.is_ok(), !rotate, "rotate = {rotate}");
        assert_eq!(
            emu.current_refresh_token(COMPONENT, AUTHORIZER).as_deref(),
            Some(second.refresh_token.as_str())
        );
    }
}
