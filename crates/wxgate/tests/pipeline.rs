//! The push pipeline without HTTP: the branches that need more than the account (the
//! memory shared with other instances, the inbox and the forwarder) driven through the
//! same `Pipeline::handle` the HTTP handler calls.

mod common;

use axum::routing::post;
use axum::{Json, Router};
use common::*;
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::json;
use wxgate::app::AppState;
use wxgate::config::Config;
use wxgate::credentials::redis::RedisStore;
use wxgate::gateway::account::{Account, Answer, CallbackQuery};
use wxgate::metrics::Outcome;
use wxgate::pipeline::{Handled, Pipeline, PushError};
use wxgate::redis::SharedSeen;
use wxgate_proto::console::Mode;
use wxgate_proto::push::build;

fn query_of(request: &wxgate_proto::push::PushRequest) -> CallbackQuery {
    let mut query = CallbackQuery::default();
    for (key, value) in url::form_urlencoded::parse(request.query.as_bytes()) {
        let value = Some(value.into_owned());
        match key.as_ref() {
            "signature" => query.signature = value,
            "timestamp" => query.timestamp = value,
            "nonce" => query.nonce = value,
            "encrypt_type" => query.encrypt_type = value,
            "msg_signature" => query.msg_signature = value,
            "openid" => query.openid = value,
            _ => {}
        }
    }
    query
}

async fn handle(
    pipeline: Pipeline<'_>,
    account: &Account,
    request: &wxgate_proto::push::PushRequest,
) -> Result<Handled, PushError> {
    let query = query_of(request);
    let now = now();
    let admitted = account.admit(&query, now)?;
    pipeline
        .handle(account, admitted, &query, &request.body, now, || {
            StdRng::seed_from_u64(3)
        })
        .await
}

fn plain_text(handled: &Handled) -> &str {
    match &handled.answer {
        Answer::Xml(xml) => xml,
        other => panic!("expected a plain XML reply, got {other:?}"),
    }
}

#[tokio::test]
async fn a_message_for_forwarding_without_an_inbox_is_unstored_not_acknowledged() {
    let config = Config::parse(
        &format!(
            "[[account]]\nname = \"f\"\napp_id = \"{APP_ID}\"\ntoken = \"{TOKEN}\"\nmode = \"plain\"\n\
             [account.forward]\nurl = \"http://127.0.0.1:9/hook\"\nsecret = \"forward-secret-0123456789\"\n"
        ),
        "t",
    )
    .unwrap();
    let account = Account::new(config.accounts[0].clone());
    let request = push_request(
        Mode::Plain,
        &build::text("gh", "oUser", now(), "hi", 1),
        now(),
    );
    let error = handle(Pipeline::default(), &account, &request)
        .await
        .unwrap_err();
    assert!(matches!(error, PushError::Unstored(_)), "{error:?}");
    assert!(error.to_string().contains("WeChat retries"), "{error}");
}

/// WeChat's retry lands on another instance: the shared memory gives it the answer the
/// first instance gave, as a duplicate.
#[tokio::test]
async fn a_retry_on_another_instance_gets_the_first_answer_from_redis() {
    let url = redis_url(2);
    flush(&url).await;
    let config = Config::parse(&config_text(""), "t").unwrap();
    let plain = config.accounts.iter().find(|a| a.name == "plain").unwrap();
    let (first, second) = (Account::new(plain.clone()), Account::new(plain.clone()));
    let shared = SharedSeen::new(RedisStore::connect(&url).await.unwrap().link());
    let pipeline = Pipeline {
        shared: Some(&shared),
        ..Pipeline::default()
    };
    let request = push_request(
        Mode::Plain,
        &build::text("gh", "oUser", now(), "shared", 77),
        now(),
    );
    let answered = handle(pipeline, &first, &request).await.unwrap();
    assert_eq!(answered.outcome, Outcome::Ok);
    assert!(plain_text(&answered).contains("shared"));
    let retried = handle(pipeline, &second, &request).await.unwrap();
    assert_eq!(retried.outcome, Outcome::Duplicate);
    assert_eq!(plain_text(&retried), plain_text(&answered));
}

/// A push no rule answers goes to the inbox and the service; its reply comes back as
/// the passive reply, and WeChat's retry gets the same reply without a second delivery.
#[tokio::test]
async fn a_forwarded_push_gets_the_service_reply_and_its_retry_the_same() {
    let deliveries = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = deliveries.clone();
    let hook = serve_hook(Router::new().route(
        "/hook",
        post(move || {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async { Json(json!({ "reply": { "type": "text", "content": "from the service" } })) }
        }),
    ))
    .await;
    let dir = std::env::temp_dir().join(format!("wxgate-pipeline-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = Config::parse(
        &format!(
            "data_dir = \"{}\"\n[[account]]\nname = \"f\"\napp_id = \"{APP_ID}\"\ntoken = \"{TOKEN}\"\nmode = \"plain\"\n\
             [account.forward]\nurl = \"{hook}\"\nsecret = \"forward-secret-0123456789\"\n",
            dir.display()
        ),
        "t",
    )
    .unwrap();
    let state = AppState::open(&config, "admin-token-0123456789".into())
        .await
        .unwrap();
    let account = state.account("f").unwrap().clone();
    let request = push_request(
        Mode::Plain,
        &build::text("gh", "oUser", now(), "forward me", 5),
        now(),
    );
    let first = handle(state.pipeline(), &account, &request).await.unwrap();
    assert_eq!(first.outcome, Outcome::Ok);
    assert!(plain_text(&first).contains("from the service"));
    let retry = handle(state.pipeline(), &account, &request).await.unwrap();
    assert_eq!(retry.outcome, Outcome::Duplicate);
    assert!(plain_text(&retry).contains("from the service"));
    assert_eq!(
        deliveries.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the retry is not delivered again"
    );
    state.shutdown().await;
}

/// A worker round that runs while a request stores its new message leaves the first
/// attempt to that request: every push gets the service's reply passively, none late.
/// The worker's rounds are run back to back here, so that many of them fall between a
/// record's commit and its request's first attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_round_never_takes_the_first_attempt_from_the_waiting_request() {
    let hook = serve_hook(Router::new().route(
        "/hook",
        post(|| async { Json(json!({ "reply": { "type": "text", "content": "passive" } })) }),
    ))
    .await;
    let dir = std::env::temp_dir().join(format!("wxgate-pipeline-race-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = Config::parse(
        &format!(
            "data_dir = \"{}\"\n[[account]]\nname = \"f\"\napp_id = \"{APP_ID}\"\ntoken = \"{TOKEN}\"\nmode = \"plain\"\n\
             [account.forward]\nurl = \"{hook}\"\nsecret = \"forward-secret-0123456789\"\n",
            dir.display()
        ),
        "t",
    )
    .unwrap();
    let state = std::sync::Arc::new(
        AppState::open(&config, "admin-token-0123456789".into())
            .await
            .unwrap(),
    );
    let forwarder = state.forwarder().unwrap().clone();
    let rounds = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let worker = {
        let (forwarder, stop, rounds) = (forwarder.clone(), stop.clone(), rounds.clone());
        tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                forwarder.run_due().await;
                rounds.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::task::yield_now().await;
            }
        })
    };
    let account = state.account("f").unwrap().clone();
    let (mut sent, mut passive) = (0u64, 0u64);
    // Batches of concurrent pushes until the worker has run 200 rounds beside them.
    while rounds.load(std::sync::atomic::Ordering::SeqCst) < 200 && sent < 5000 {
        let pushes = (sent..sent + 50).map(|i| {
            let (state, account) = (state.clone(), account.clone());
            tokio::spawn(async move {
                let request = push_request(
                    Mode::Plain,
                    &build::text("gh", "oUser", now(), &format!("message {i}"), 1000 + i),
                    now(),
                );
                let handled = handle(state.pipeline(), &account, &request).await.unwrap();
                matches!(&handled.answer, Answer::Xml(xml) if xml.contains("passive"))
            })
        });
        for push in pushes.collect::<Vec<_>>() {
            passive += u64::from(push.await.unwrap());
        }
        sent += 50;
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    worker.await.unwrap();
    assert!(rounds.load(std::sync::atomic::Ordering::SeqCst) >= 200);
    assert_eq!(
        passive, sent,
        "pushes answered passively (the rest went late)"
    );
    state.shutdown().await;
}
