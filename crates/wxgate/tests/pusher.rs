//! The emulator's pusher (WeChat's side of the callback) against wxgate and against a
//! server too slow to answer, to check WeChat's retry policy.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::routing::post;
use axum::Router;
use common::*;
use wxgate_emu::pusher::Pusher;
use wxgate_proto::console::Mode;
use wxgate_proto::push::build;
use wxgate_proto::reply::{Reply, ReplyMessage};

#[tokio::test]
async fn pusher_verifies_and_pushes_in_every_mode() {
    let server = TestServer::start(&config_text("")).await;
    for (account, mode) in [
        ("plain", Mode::Plain),
        ("compat", Mode::Compat),
        ("safe", Mode::Safe),
    ] {
        let url = format!("{}/wx/{account}", server.base);
        let mut pusher = Pusher::new(&url, TOKEN);
        if mode != Mode::Plain {
            pusher = pusher.encrypted(mode, KEY, APP_ID).unwrap();
        }
        assert!(pusher.verify_url().await, "{account}");
        let outcome = pusher
            .push(&build::text(
                "gh_test",
                "oPushed",
                now(),
                "pushed",
                77 + mode as u64,
            ))
            .await;
        assert_eq!(
            (outcome.attempts, outcome.status),
            (1, Some(200)),
            "{account}"
        );
        let reply = ReplyMessage::parse(outcome.reply_xml.as_deref().expect("a reply")).unwrap();
        assert_eq!(
            reply.reply,
            Reply::Text {
                content: "pushed".into()
            }
        );
        let event = pusher
            .push(&build::event(
                "gh_test",
                "oPushed",
                now(),
                "VIEW",
                Some("https://x"),
            ))
            .await;
        assert_eq!(event.reply_xml, None, "success means no reply");
    }
    let wrong = Pusher::new(&format!("{}/wx/plain", server.base), "WrongToken");
    assert!(!wrong.verify_url().await);
    server.stop().await;
}

#[tokio::test]
async fn pusher_pushes_json_like_a_mini_program_in_every_mode() {
    let server = TestServer::start(&mini_config_text("")).await;
    for mode in [Mode::Plain, Mode::Compat, Mode::Safe] {
        let url = format!("{}/wx/mini-{}", server.base, mode.as_str());
        let mut pusher = Pusher::new(&url, TOKEN);
        if mode != Mode::Plain {
            pusher = pusher.encrypted(mode, KEY, APP_ID).unwrap();
        }
        assert!(pusher.verify_url().await, "{mode:?}");
        let event = build::event("gh_test", "oPushed", now(), "user_enter_tempsession", None);
        let outcome = pusher.push(&build::json(&event)).await;
        assert_eq!(
            (outcome.attempts, outcome.status),
            (1, Some(200)),
            "{mode:?}"
        );
        let reply_json = outcome.reply_xml.expect("a reply");
        assert!(
            reply_json.starts_with('{'),
            "answered in JSON: {reply_json}"
        );
        let reply = ReplyMessage::parse(&reply_json).unwrap();
        assert_eq!(
            reply.reply,
            Reply::TransferCustomerService {
                kf_account: Some("kf2001@gh_test".into())
            }
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn pusher_retries_three_times_like_wechat() {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let router = Router::new().route(
        "/wx",
        post(move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(500)).await;
                "success"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let mut pusher = Pusher::new(&format!("http://{addr}/wx"), TOKEN);
    pusher.timeout = Duration::from_millis(100);
    let outcome = pusher
        .push(&build::text("gh_test", "oUser", now(), "slow", 1))
        .await;
    assert_eq!(outcome.attempts, 3);
    assert_eq!(outcome.status, None, "no answer in time");
    assert_eq!(hits.load(Ordering::SeqCst), 3, "the same push three times");
}
