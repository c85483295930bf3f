//! The gateway over real TCP: what WeChat sends in each mode, and every refusal.

mod common;

use common::*;
use wxgate::metrics::{Method, Outcome};
use wxgate_proto::console::Mode;
use wxgate_proto::envelope;
use wxgate_proto::push::{self, build};
use wxgate_proto::reply::{Reply, ReplyMessage};

fn text_reply(xml: &str) -> (ReplyMessage, String) {
    let reply = ReplyMessage::parse(xml).unwrap_or_else(|e| panic!("{e}: {xml}"));
    let Reply::Text { content } = &reply.reply else {
        panic!("{reply:?}")
    };
    let content = content.clone();
    (reply, content)
}

#[tokio::test]
async fn url_verification_echoes_verbatim_in_every_mode() {
    let server = TestServer::start(&config_text("")).await;
    let client = wxgate_client::http_client();
    for mode in ["plain", "compat", "safe"] {
        for echostr in ["5518803317220094471", "hello-echo-42"] {
            let request = push::verification(TOKEN, &now().to_string(), "1234", echostr);
            let (status, content_type, body) = get(
                &client,
                &format!("{}/wx/{mode}?{}", server.base, request.query),
            )
            .await;
            assert_eq!(status, 200, "{mode}");
            assert_eq!(
                body, echostr,
                "{mode}: exactly the echostr, no quotes or newline"
            );
            assert!(content_type.starts_with("text/plain"), "{content_type}");
        }
        // Trailing slash is served too (a common proxy rewrite).
        let request = push::verification(TOKEN, &now().to_string(), "1234", "slash");
        let (status, _, body) = get(
            &client,
            &format!("{}/wx/{mode}/?{}", server.base, request.query),
        )
        .await;
        assert_eq!((status, body.as_str()), (200, "slash"));
    }
    server.stop().await;
}

#[tokio::test]
async fn messages_are_answered_in_each_mode() {
    let server = TestServer::start(&config_text("")).await;
    let client = wxgate_client::http_client();
    let mut msg_id = 1000;
    // (account, how WeChat sends, reply encrypted?)
    for (account, mode, encrypted) in [
        ("plain", Mode::Plain, false),
        ("compat", Mode::Plain, false),
        ("compat", Mode::Compat, true),
        ("safe", Mode::Safe, true),
    ] {
        msg_id += 1;
        let ts = now();
        let xml = build::text("gh_test", "oUser", ts, "你好 <&> ]]> 🎉", msg_id);
        let request = push_request(mode, &xml, ts);
        let (status, body) = post(
            &client,
            &format!("{}/wx/{account}?{}", server.base, request.query),
            request.body,
        )
        .await;
        assert_eq!(status, 200, "{account}/{mode:?}: {body}");
        let plain = if encrypted {
            let opened =
                envelope::open_reply(&crypt(), TOKEN, &body).expect("reply envelope verifies");
            let stamp: i64 = opened.timestamp.parse().expect("TimeStamp in seconds");
            assert!((stamp - now()).abs() < 5, "TimeStamp is now, in seconds");
            opened.xml
        } else {
            body
        };
        let (reply, content) = text_reply(&plain);
        assert_eq!(content, "你好 <&> ]]> 🎉");
        assert_eq!(
            (reply.to_user_name.as_str(), reply.from_user_name.as_str()),
            ("oUser", "gh_test")
        );
    }
    // No matching rule: `success`, even in safe mode.
    let ts = now();
    let request = push_request(
        Mode::Safe,
        &build::event("gh_test", "oUser", ts, "VIEW", Some("https://x")),
        ts,
    );
    let (status, body) = post(
        &client,
        &format!("{}/wx/safe?{}", server.base, request.query),
        request.body,
    )
    .await;
    assert_eq!((status, body.as_str()), (200, "success"));
    server.stop().await;
}

#[tokio::test]
async fn nonces_of_encrypted_replies_are_fresh() {
    let server = TestServer::start(&config_text("")).await;
    let client = wxgate_client::http_client();
    let mut nonces = std::collections::HashSet::new();
    for id in 0..10 {
        let ts = now();
        let request = push_request(
            Mode::Safe,
            &build::text("gh_test", "oUser", ts, "n", 5000 + id),
            ts,
        );
        let (_, body) = post(
            &client,
            &format!("{}/wx/safe?{}", server.base, request.query),
            request.body,
        )
        .await;
        nonces.insert(envelope::open_reply(&crypt(), TOKEN, &body).unwrap().nonce);
    }
    assert!(nonces.len() >= 9, "reply nonces repeat: {nonces:?}");
    server.stop().await;
}

#[tokio::test]
async fn every_refusal_has_its_status() {
    let server = TestServer::start(&config_text("max_body_bytes = 4096")).await;
    let client = wxgate_client::http_client();
    let url = |account: &str, query: &str| format!("{}/wx/{account}?{query}", server.base);
    let ts = now();
    let xml = build::text("gh_test", "oUser", ts, "x", 1);
    let plain = push_request(Mode::Plain, &xml, ts);
    let safe = push_request(Mode::Safe, &xml, ts);

    let cases: Vec<(&str, String, String, u16)> = vec![
        (
            "bad signature",
            url("plain", &plain.query.replace("signature=", "signature=0")),
            plain.body.clone(),
            403,
        ),
        (
            "missing signature",
            url("plain", &format!("timestamp={ts}&nonce=1")),
            plain.body.clone(),
            403,
        ),
        (
            "bad msg_signature",
            url(
                "safe",
                &safe.query.replace("msg_signature=", "msg_signature=f"),
            ),
            safe.body.clone(),
            403,
        ),
        (
            "plaintext to safe mode",
            url("safe", &plain.query),
            plain.body.clone(),
            403,
        ),
        (
            "unknown account",
            url("nosuch", &plain.query),
            plain.body.clone(),
            404,
        ),
        (
            "malformed xml",
            url("plain", &plain.query),
            "<xml><ToUserName>".into(),
            400,
        ),
        (
            "doctype",
            url("plain", &plain.query),
            "<!DOCTYPE x [<!ENTITY a \"b\">]><xml>&a;</xml>".into(),
            400,
        ),
        (
            "missing fields",
            url("plain", &plain.query),
            "<xml><MsgType>text</MsgType></xml>".into(),
            400,
        ),
        (
            "too large",
            url("plain", &plain.query),
            format!("<xml>{}</xml>", "a".repeat(5000)),
            413,
        ),
    ];
    for (name, url, body, expected) in cases {
        let (status, reason) = post(&client, &url, body).await;
        assert_eq!(status, expected, "{name}: {reason}");
        assert!(
            !reason.is_empty() && !reason.contains(TOKEN) && !reason.contains(KEY),
            "{name}: {reason}"
        );
    }
    let (status, reason) = post(
        &client,
        &url("plain", &plain.query),
        vec![b'<', 0xff, 0xfe, b'>'],
    )
    .await;
    assert_eq!(status, 400, "not UTF-8: {reason}");
    assert!(reason.contains("UTF-8"), "{reason}");
    // Stale timestamp, GET and POST.
    let old = ts - 3600;
    let stale = push_request(
        Mode::Plain,
        &build::text("gh_test", "oUser", old, "x", 2),
        old,
    );
    let (status, reason) = post(&client, &url("plain", &stale.query), stale.body).await;
    assert_eq!(status, 403, "{reason}");
    assert!(reason.contains("window"), "{reason}");
    let request = push::verification(TOKEN, &old.to_string(), "1", "e");
    assert_eq!(get(&client, &url("plain", &request.query)).await.0, 403);
    // Wrong-case token: refused, and the reason names the cause.
    let request = push::verification("BENCHTOKEN123", &ts.to_string(), "1", "e");
    let (status, _, reason) = get(&client, &url("plain", &request.query)).await;
    assert_eq!(status, 403);
    assert!(reason.contains("case"), "{reason}");
    // Missing echostr.
    let request = push::verification(TOKEN, &ts.to_string(), "1", "e");
    let no_echo = request.query.replace("&echostr=e", "");
    assert_eq!(get(&client, &url("plain", &no_echo)).await.0, 400);

    let metrics = &server.state.metrics;
    assert!(metrics.count("plain", Method::Post, Outcome::BadSignature) >= 2);
    assert_eq!(metrics.count("", Method::Post, Outcome::UnknownAccount), 1);
    assert_eq!(metrics.count("plain", Method::Post, Outcome::TooLarge), 1);
    assert_eq!(metrics.count("safe", Method::Post, Outcome::WrongMode), 1);
    server.stop().await;
}

#[tokio::test]
async fn chunked_body_over_the_limit_is_refused_without_reading_it_all() {
    let server = TestServer::start(&config_text("max_body_bytes = 4096")).await;
    let client = wxgate_client::http_client();
    let ts = now();
    let request = push_request(
        Mode::Plain,
        &build::text("gh_test", "oUser", ts, "x", 1),
        ts,
    );
    // A stream without Content-Length: the limit must hold while reading.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..64).map(|_| Ok(vec![b'a'; 1024])).collect();
    let body = reqwest::Body::wrap_stream(futures_stream(chunks));
    let response = client
        .post(format!("{}/wx/plain?{}", server.base, request.query))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 413);
    server.stop().await;
}

fn futures_stream(
    items: Vec<Result<Vec<u8>, std::io::Error>>,
) -> impl futures_core::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static {
    tokio_stream::iter(items)
}

#[tokio::test]
async fn retries_are_answered_once() {
    let server = TestServer::start(&config_text("")).await;
    let client = wxgate_client::http_client();
    let ts = now();
    let xml = build::text("gh_test", "oUser", ts, "retry me", 424242);
    let mut bodies = Vec::new();
    for _ in 0..3 {
        let request = push_request(Mode::Safe, &xml, ts);
        let (status, body) = post(
            &client,
            &format!("{}/wx/safe?{}", server.base, request.query),
            request.body,
        )
        .await;
        assert_eq!(status, 200);
        bodies.push(text_reply(&envelope::open_reply(&crypt(), TOKEN, &body).unwrap().xml).1);
    }
    assert_eq!(bodies, vec!["retry me"; 3]);
    let metrics = &server.state.metrics;
    assert_eq!(metrics.count("safe", Method::Post, Outcome::Ok), 1);
    assert_eq!(metrics.count("safe", Method::Post, Outcome::Duplicate), 2);
    server.stop().await;
}

#[tokio::test]
async fn health_and_metrics() {
    let server = TestServer::start(&config_text("")).await;
    let client = wxgate_client::http_client();
    let (status, _, body) = get(&client, &format!("{}/healthz", server.base)).await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    let request = push::verification(TOKEN, &now().to_string(), "1", "e");
    get(
        &client,
        &format!("{}/wx/compat?{}", server.base, request.query),
    )
    .await;
    let (status, content_type, metrics) = get(&client, &format!("{}/metrics", server.base)).await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/plain"));
    assert!(
        metrics
            .contains("wxgate_requests_total{account=\"compat\",method=\"GET\",outcome=\"ok\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("wxgate_request_duration_seconds_bucket{method=\"GET\",le=\"+Inf\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("wxgate_dedup_entries{account=\"safe\"} 0"),
        "{metrics}"
    );
    let (status, _, _) = get(&client, &format!("{}/nothing", server.base)).await;
    assert_eq!(status, 404);
    server.stop().await;
}

#[tokio::test]
async fn concurrent_pushes_to_several_accounts() {
    let server = TestServer::start(&config_text("")).await;
    let client = wxgate_client::http_client();
    let mut tasks = Vec::new();
    for i in 0..60u64 {
        let client = client.clone();
        let base = server.base.clone();
        tasks.push(tokio::spawn(async move {
            let (account, mode) = [
                ("plain", Mode::Plain),
                ("compat", Mode::Compat),
                ("safe", Mode::Safe),
            ][(i % 3) as usize];
            let ts = now();
            let content = format!("m{i}");
            let request = push_request(
                mode,
                &build::text("gh_test", "oUser", ts, &content, 9000 + i),
                ts,
            );
            let (status, body) = post(
                &client,
                &format!("{base}/wx/{account}?{}", request.query),
                request.body,
            )
            .await;
            assert_eq!(status, 200);
            let xml = if mode == Mode::Plain {
                body
            } else {
                envelope::open_reply(&crypt(), TOKEN, &body).unwrap().xml
            };
            assert_eq!(text_reply(&xml).1, content);
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    server.stop().await;
}
