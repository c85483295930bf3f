//! Two real instances sharing a real Redis (its own redis-server) for one third-party
//! platform, with the emulator as WeChat (refresh tokens that rotate): one
//! `api_start_push_ticket` for both starts, one stored ticket, one component token for
//! 100 concurrent requests, and one authorizer refresh for 100 concurrent requests
//! once the authorizer's token expired, each refresh token presented once.

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use serde_json::Value;
use wxgate_emu::{App, Component as EmuComponent, Emulator, EmulatorConfig};

const COMPONENT: &str = "wx134c8103faa5a59e";
const SECRET: &str = "0123456789abcdef0123456789abcdef";
const AUTHORIZER: &str = "wxa0a0a0a0a0a0a0a0";
const ADMIN: &str = "admin-token-0123456789";
const AUTHORIZER_TTL_S: i64 = 5;

async fn get_json(client: reqwest::Client, url: String) -> (u16, Value) {
    let response = client.get(url).bearer_auth(ADMIN).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// 100 concurrent admin requests for `path`, spread over the instances; the distinct
/// values of `field`.
async fn hammer(
    client: &reqwest::Client,
    bases: &[String],
    path: &str,
    field: &str,
) -> HashSet<String> {
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let url = format!("{}{path}", bases[i % bases.len()]);
            tokio::spawn(get_json(client.clone(), url))
        })
        .collect();
    let mut values = HashSet::new();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        assert_eq!(status, 200, "{path}: {body}");
        values.insert(body[field].as_str().unwrap().to_owned());
    }
    values
}

async fn redis_up(port: u16) {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/0")).unwrap();
    for _ in 0..100 {
        if let Ok(mut connection) = client.get_multiplexed_async_connection().await {
            let pong: Result<String, _> = redis::cmd("PING").query_async(&mut connection).await;
            if pong.is_ok() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("redis-server did not start");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_one_ticket_one_component_token_and_one_authorizer_refresh() {
    let (port, start_redis) = own_redis("open");
    let _redis = start_redis();
    redis_up(port).await;
    let key = "A".repeat(43);
    let mut component = EmuComponent::new(COMPONENT, SECRET, "AAAAA", &key);
    component.rotate_refresh_tokens = true;
    component.authorizer_token_ttl_s = Some(AUTHORIZER_TTL_S);
    let emu =
        Emulator::new(EmulatorConfig::with_app(App::new(APP_ID, SECRET)).with_component(component));
    let (addr, _task) = emu
        .spawn(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let config = format!(
        "data_dir = \"data\"\nadmin_token = \"{ADMIN}\"\napi_base = \"http://{addr}\"\n\
         [storage]\nbackend = \"redis\"\nredis_url = \"redis://127.0.0.1:{port}/0\"\n\
         [[component]]\nname = \"acme\"\napp_id = \"{COMPONENT}\"\napp_secret = \"{SECRET}\"\ntoken = \"AAAAA\"\nencoding_aes_key = \"{key}\"\n"
    );
    let (first, second) = tokio::join!(
        start_instance("open-redis-0", &config),
        start_instance("open-redis-1", &config)
    );
    let bases = vec![first.1.clone(), second.1.clone()];
    emu.set_notify_url(COMPONENT, &format!("{}/open/acme/notify", bases[0]));
    let client = wxgate_client::http_client();
    let path = "/api/open/acme/component_access_token";
    for _ in 0..100 {
        if get_json(client.clone(), format!("{}{path}", bases[1]))
            .await
            .0
            == 200
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let tokens = hammer(&client, &bases, path, "component_access_token").await;
    assert_eq!(tokens.len(), 1, "one component token on both instances");
    assert_eq!(
        emu.count("/cgi-bin/component/api_start_push_ticket"),
        1,
        "one ask for both starts"
    );
    assert_eq!(
        emu.count("/cgi-bin/component/api_component_token"),
        1,
        "one fetch for both"
    );

    let outcome = emu.push_authorized(COMPONENT, AUTHORIZER).await.unwrap();
    assert_eq!(
        (outcome.status, outcome.body.as_str()),
        (Some(200), "success"),
        "{outcome:?}"
    );
    let path = format!("/api/open/acme/authorizers/{AUTHORIZER}/access_token");
    let fresh = hammer(&client, &bases, &path, "authorizer_access_token").await;
    assert_eq!(fresh.len(), 1);
    assert_eq!(
        emu.count("/cgi-bin/component/api_authorizer_token"),
        0,
        "the exchanged token is shared"
    );

    // Past its expiry: one refresh for both instances, whoever starts it.
    tokio::time::sleep(Duration::from_millis(AUTHORIZER_TTL_S as u64 * 1000 + 300)).await;
    let refreshed = hammer(&client, &bases, &path, "authorizer_access_token").await;
    assert_eq!(refreshed.len(), 1, "{refreshed:?}");
    assert!(refreshed.is_disjoint(&fresh));
    assert_eq!(
        emu.count("/cgi-bin/component/api_authorizer_token"),
        1,
        "one refresh for both"
    );
    let uses = emu.refresh_token_uses();
    assert!(
        uses.values().all(|&n| n == 1),
        "no refresh token presented twice: {uses:?}"
    );
    assert_eq!(emu.count("/cgi-bin/component/api_component_token"), 1);

    let redis = redis::Client::open(format!("redis://127.0.0.1:{port}/0")).unwrap();
    let mut connection = redis.get_multiplexed_async_connection().await.unwrap();
    let stored: String = redis::cmd("GET")
        .arg(format!(
            "wxgate:cred:component:{COMPONENT}:authorizer:{AUTHORIZER}:access_token"
        ))
        .query_async(&mut connection)
        .await
        .unwrap();
    let stored: Value = serde_json::from_str(&stored).unwrap();
    assert_eq!(
        stored["refresh_token"].as_str(),
        emu.current_refresh_token(COMPONENT, AUTHORIZER).as_deref(),
        "the rotated refresh token is stored with the access token"
    );
    let ttl: i64 = redis::cmd("TTL")
        .arg(format!(
            "wxgate:cred:component:{COMPONENT}:authorizer:{AUTHORIZER}:access_token"
        ))
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(
        ttl, -1,
        "a credential with a refresh token never expires in Redis"
    );
}
