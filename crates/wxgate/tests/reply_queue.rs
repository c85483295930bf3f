//! Replies that reach the user through the customer-service API are kept in the inbox
//! until they are sent, with the real binary and the emulator: a mini-program rule's
//! reply survives a kill -9 while the API is out of reach and is sent once after the
//! restart; a reply WeChat refuses for good (45015, the 48-hour window) is a dead
//! record and a metric, never "delivered", and `inbox retry` sends it again; a
//! service's late reply that fails is the same visible state.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use wxgate_emu::{App, Emulator, EmulatorConfig};
use wxgate_proto::console::Mode;
use wxgate_proto::push::build;

const ADMIN: &str = "admin-token-0123456789";

fn mini_config(dir: &std::path::Path, api_base: &str) -> String {
    format!(
        "data_dir = \"{}\"\nadmin_token = \"{ADMIN}\"\napi_base = \"{api_base}\"\n\
         [[account]]\nname = \"mini\"\nkind = \"miniprogram\"\napp_id = \"{APP_ID}\"\napp_secret = \"{APP_SECRET}\"\ntoken = \"{TOKEN}\"\nmode = \"plain\"\n\
         [[account.rule]]\nwhen = {{ msg_type = \"text\" }}\nreply = {{ text = \"echo {{content}}\" }}\n",
        dir.display()
    )
}

fn fresh_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("wxgate-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn start(dir: &std::path::Path, config: &str) -> (KillOnDrop, String) {
    std::fs::write(dir.join("wxgate.toml"), config).unwrap();
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || start_binary(&dir))
        .await
        .unwrap()
}

async fn emulator_on(addr: SocketAddr) -> Emulator {
    let emu = Emulator::new(EmulatorConfig::with_app(App::new(APP_ID, APP_SECRET)));
    emu.spawn(addr).await.unwrap();
    emu
}

/// A loopback address nothing listens on (yet).
async fn free_addr() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

async fn admin_get(client: &reqwest::Client, base: &str, path: &str) -> Value {
    let response = client
        .get(format!("{base}{path}"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200, "{path}");
    response.json().await.unwrap()
}

/// Polls the record until `done` holds; panics with the record after `within`.
async fn record_until(
    client: &reqwest::Client,
    base: &str,
    id: u64,
    within: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let record = admin_get(client, base, &format!("/api/inbox/{id}")).await;
        if done(&record) {
            return record;
        }
        assert!(Instant::now() < deadline, "{record:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn sends(emu: &Emulator) -> Vec<Value> {
    emu.calls()
        .into_iter()
        .filter(|c| c.path == "/cgi-bin/message/custom/send" && c.errcode == 0)
        .map(|c| serde_json::from_str(&c.body).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_reply_survives_a_kill_while_the_api_is_out_of_reach() {
    let dir = fresh_dir("reply-queue-kill");
    let api = free_addr().await;
    let config = mini_config(&dir, &format!("http://{api}"));
    let client = wxgate_client::http_client();
    let (server, base) = start(&dir, &config).await;
    let ts = now();
    let text = build::text("gh_test", "oUser", ts, "kept", 7001);
    let (status, body) = push(&client, &base, "mini", Mode::Plain, &text, ts).await;
    assert_eq!((status, body.as_str()), (200, "success"));
    // The API is out of reach: the reply waits, pending, and the failure is counted.
    let record = record_until(&client, &base, 1, Duration::from_secs(10), |r| {
        r["attempts"].as_u64() >= Some(1)
    })
    .await;
    assert_eq!(record["state"], "pending", "{record:#}");
    assert_eq!(record["reply_due"], true, "{record:#}");
    assert_eq!(
        record["service_reply"]["content"], "echo kept",
        "{record:#}"
    );
    assert!(
        record["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("customer-service API")),
        "{record:#}"
    );
    assert!(metric(&client, &base, "wxgate_forward_reply_failures_total").await >= 1);
    drop(server); // SIGKILL

    let emu = emulator_on(api).await;
    emu.record_interaction("oUser");
    let (_server, base) = start(&dir, &config).await;
    let record = record_until(&client, &base, 1, Duration::from_secs(20), |r| {
        r["state"] == "delivered"
    })
    .await;
    assert_eq!(record["reply_outcome"], "customer_service", "{record:#}");
    assert_eq!(
        record["reply_due"],
        Value::Null,
        "not due any more: {record:#}"
    );
    // WeChat retries the push it got `success` for: nothing is sent twice.
    let (status, body) = push(&client, &base, "mini", Mode::Plain, &text, ts).await;
    assert_eq!((status, body.as_str()), (200, "success"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sent = sends(&emu);
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert_eq!(sent[0]["touser"], "oUser");
    assert_eq!(sent[0]["text"]["content"], "echo kept");
    assert_eq!(
        metric(&client, &base, "wxgate_forward_late_replies_total").await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_refused_for_good_is_dead_and_counted_then_retried_by_hand() {
    let dir = fresh_dir("reply-queue-dead");
    let api = free_addr().await;
    let emu = emulator_on(api).await;
    let client = wxgate_client::http_client();
    let (_server, base) = start(&dir, &mini_config(&dir, &format!("http://{api}"))).await;
    let ts = now();
    let text = build::text("gh_test", "oQuiet", ts, "late", 7002);
    let (status, body) = push(&client, &base, "mini", Mode::Plain, &text, ts).await;
    assert_eq!((status, body.as_str()), (200, "success"));
    // oQuiet never wrote to the account in the emulator: 45015, which no retry mends.
    let record = record_until(&client, &base, 1, Duration::from_secs(10), |r| {
        r["state"] != "pending"
    })
    .await;
    assert_eq!(record["state"], "dead", "{record:#}");
    let reason = record["last_error"].as_str().unwrap_or_default();
    assert!(reason.contains("45015"), "{record:#}");
    assert_eq!(record["attempts"], 1, "not retried in vain: {record:#}");
    assert_eq!(
        metric(&client, &base, "wxgate_forward_reply_failures_total").await,
        1
    );
    assert_eq!(
        metric(&client, &base, "wxgate_forward_late_replies_total").await,
        0
    );
    let dead = admin_get(&client, &base, "/api/inbox?state=dead").await;
    assert_eq!(dead["counts"]["dead"], 1, "{dead:#}");

    // The user writes again (the window opens); the operator retries the record.
    emu.record_interaction("oQuiet");
    let retry = client
        .post(format!("{base}/api/inbox/1/retry"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(retry.status().as_u16(), 200);
    let record = record_until(&client, &base, 1, Duration::from_secs(10), |r| {
        r["state"] == "delivered"
    })
    .await;
    assert_eq!(record["reply_outcome"], "customer_service", "{record:#}");
    let sent = sends(&emu);
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert_eq!(sent[0]["text"]["content"], "echo late");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_reply_that_fails_is_not_delivered() {
    // A service that answers after the passive window, for a user whose window is
    // closed: the delivery to the service succeeded, the reply did not.
    let service = axum::Router::new().route(
        "/hook",
        axum::routing::post(|| async {
            tokio::time::sleep(Duration::from_millis(600)).await;
            axum::Json(serde_json::json!({ "reply": { "type": "text", "content": "too late" } }))
        }),
    );
    let hook = serve_hook(service).await;
    let dir = fresh_dir("reply-queue-late");
    let api = free_addr().await;
    let _emu = emulator_on(api).await;
    let config = format!(
        "data_dir = \"{}\"\nadmin_token = \"{ADMIN}\"\napi_base = \"http://{api}\"\n\
         [[account]]\nname = \"oa\"\napp_id = \"{APP_ID}\"\napp_secret = \"{APP_SECRET}\"\ntoken = \"{TOKEN}\"\nmode = \"plain\"\n\
         [account.forward]\nurl = \"{hook}\"\nsecret = \"forward-secret-0123456789\"\ntimeout_ms = 200\n",
        dir.display()
    );
    let client = wxgate_client::http_client();
    let (_server, base) = start(&dir, &config).await;
    let ts = now();
    let text = build::text("gh_test", "oGone", ts, "hello", 7003);
    let (status, body) = push(&client, &base, "oa", Mode::Plain, &text, ts).await;
    assert_eq!((status, body.as_str()), (200, "success"));
    let record = record_until(&client, &base, 1, Duration::from_secs(10), |r| {
        r["state"] != "pending"
    })
    .await;
    assert_eq!(record["state"], "dead", "{record:#}");
    assert!(
        record["delivered_at"].is_i64(),
        "the service had it: {record:#}"
    );
    assert_eq!(record["service_reply"]["content"], "too late", "{record:#}");
    assert!(
        record["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("45015")),
        "{record:#}"
    );
    assert_eq!(
        metric(&client, &base, "wxgate_forward_reply_failures_total").await,
        1
    );
}
