//! Mini-program accounts over real TCP: JSON pushes in every mode, the attacks on the
//! JSON path (a forged msg_signature, oversized, duplicated and deeply nested fields),
//! rule replies through the customer-service message API, and forwarding, whose JSON is
//! the same for a JSON push as for an XML one.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use common::*;
use serde_json::Value;
use wxgate::metrics::{Method, Outcome};
use wxgate_emu::{App, Emulator, EmulatorConfig};
use wxgate_proto::console::Mode;
use wxgate_proto::push::{self, build, PushParams};
use wxgate_proto::reply::{Reply, ReplyMessage};
use wxgate_proto::{envelope, Format};

const FORWARD_SECRET: &str = "forward-secret-0123456789";

fn request_as(mode: Mode, format: Format, message: &str, timestamp: i64) -> push::PushRequest {
    let crypt = crypt();
    let ts = timestamp.to_string();
    push::message_as(
        &PushParams {
            token: TOKEN,
            mode,
            crypt: Some(&crypt),
            timestamp: &ts,
            nonce: "314159",
            random: &[7u8; 16],
            openid: "oUser",
        },
        format,
        message,
        "gh_test",
    )
}

/// POSTs a request; returns the status, the Content-Type and the body.
async fn send(
    client: &reqwest::Client,
    base: &str,
    account: &str,
    request: push::PushRequest,
) -> (u16, String, String) {
    let response = client
        .post(format!("{base}/wx/{account}?{}", request.query))
        .header("Content-Type", "application/json")
        .body(request.body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, response.text().await.unwrap())
}

fn tempsession(ts: i64) -> String {
    build::json(&build::event(
        "gh_test",
        "oUser",
        ts,
        "user_enter_tempsession",
        None,
    ))
}

fn text_json(ts: i64, rest: &str) -> String {
    format!(
        r#"{{"ToUserName":"gh_test","FromUserName":"oUser","CreateTime":{ts},"MsgType":"text"{rest}}}"#
    )
}

async fn emulator() -> (Emulator, String) {
    let emu = Emulator::new(EmulatorConfig::with_app(App::new(APP_ID, APP_SECRET)));
    let (addr, _task) = emu
        .spawn(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    (emu, format!("http://{addr}"))
}

#[tokio::test]
async fn json_pushes_are_answered_in_json_in_every_mode() {
    let server = TestServer::start(&mini_config_text("")).await;
    let client = wxgate_client::http_client();
    for mode in [Mode::Plain, Mode::Compat, Mode::Safe] {
        let account = format!("mini-{}", mode.as_str());
        let request = request_as(mode, Format::Json, &tempsession(now()), now());
        assert!(request.body.starts_with('{'), "{}", request.body);
        let (status, content_type, body) = send(&client, &server.base, &account, request).await;
        assert_eq!(status, 200, "{account}: {body}");
        assert_eq!(content_type, "application/json; charset=utf-8", "{account}");
        let plain = if mode == Mode::Plain {
            body
        } else {
            let envelope: Value = serde_json::from_str(&body).unwrap();
            let keys: Vec<&String> = envelope.as_object().unwrap().keys().collect();
            assert_eq!(keys.len(), 4, "{body}");
            let opened = envelope::open_reply(&crypt(), TOKEN, &body).unwrap();
            assert_eq!(opened.format, Format::Json);
            opened.xml
        };
        let reply = ReplyMessage::parse(&plain).unwrap();
        assert_eq!(
            reply.reply,
            Reply::TransferCustomerService {
                kf_account: Some("kf2001@gh_test".into())
            },
            "{account}"
        );
        assert_eq!(reply.to_user_name, "oUser");
    }
    server.stop().await;
}

#[tokio::test]
async fn a_forged_msg_signature_on_a_json_push_is_403() {
    let server = TestServer::start(&mini_config_text("")).await;
    let client = wxgate_client::http_client();
    let ts = now();
    let genuine = request_as(Mode::Safe, Format::Json, &tempsession(ts), ts);
    // The same body under a made-up msg_signature.
    let mut forged = genuine.clone();
    let at = forged.query.find("msg_signature=").unwrap() + "msg_signature=".len();
    forged
        .query
        .replace_range(at..at + 40, "0123456789abcdef0123456789abcdef01234567");
    let (status, _, reason) = send(&client, &server.base, "mini-safe", forged).await;
    assert_eq!(status, 403, "{reason}");
    assert!(reason.contains("msg_signature"), "{reason}");
    // Another message's Encrypt under the genuine signature.
    let other = request_as(
        Mode::Safe,
        Format::Json,
        &text_json(ts, r#","Content":"x","MsgId":5"#),
        ts,
    );
    let swapped = push::PushRequest {
        query: genuine.query.clone(),
        body: other.body,
    };
    let (status, _, _) = send(&client, &server.base, "mini-safe", swapped).await;
    assert_eq!(status, 403);
    // A plaintext JSON push to the safe-mode account.
    let plain = request_as(Mode::Plain, Format::Json, &tempsession(ts), ts);
    let (status, _, _) = send(&client, &server.base, "mini-safe", plain).await;
    assert_eq!(status, 403);
    let metrics = &server.state.metrics;
    assert_eq!(
        metrics.count("mini-safe", Method::Post, Outcome::BadSignature),
        2
    );
    let (status, _, _) = send(&client, &server.base, "mini-safe", genuine).await;
    assert_eq!(status, 200, "the genuine push still passes");
    server.stop().await;
}

#[tokio::test]
async fn oversized_duplicated_and_deeply_nested_json_is_400() {
    let server = TestServer::start(&mini_config_text("")).await;
    let client = wxgate_client::http_client();
    let ts = now();
    let cases = [
        (
            text_json(
                ts,
                &format!(r#","Content":"x","MsgId":"{}""#, "7".repeat(100_000)),
            ),
            "<MsgId> has 100000 bytes",
        ),
        (
            text_json(
                ts,
                &format!(r#","Content":"x","MsgId":{}"#, "7".repeat(100_000)),
            ),
            "number out of range",
        ),
        (
            text_json(ts, r#","Content":"x","MsgId":18446744073709551616"#),
            "<MsgId> must be an integer",
        ),
        (
            text_json(
                ts,
                &format!(r#","Content":"{}""#, "x".repeat(64 * 1024 + 1)),
            ),
            "Content",
        ),
        (
            text_json(ts, r#","Content":"a","MsgId":1,"MsgId":2"#),
            "appears more than once",
        ),
        (
            text_json(ts, r#","Content":"a","Content":"b""#),
            "appears more than once",
        ),
        (
            text_json(ts, r#","MsgId":1,"Msg_ID":2"#),
            "appears more than once",
        ),
        (
            text_json(ts, r#","Content":["a","b"]"#),
            "not a group or an array",
        ),
        (
            text_json(
                ts,
                &format!(r#","X":{}1{}"#, "[".repeat(17), "]".repeat(17)),
            ),
            "deeper than 16",
        ),
        (
            text_json(
                ts,
                &format!(r#","X":{}1{}"#, "{\"a\":".repeat(20), "}".repeat(20)),
            ),
            "deeper than 16",
        ),
        (
            text_json(
                ts,
                &(0..5000)
                    .map(|i| format!(",\"f{i}\":1"))
                    .collect::<String>(),
            ),
            "more than 4096",
        ),
        ("{\"ToUserName\":".to_owned(), "EOF"),
        ("[]".to_owned(), "neither XML"),
    ];
    for (body, needle) in cases {
        for (mode, account) in [(Mode::Plain, "mini-plain"), (Mode::Safe, "mini-safe")] {
            let request = request_as(mode, Format::Json, &body, ts);
            let (status, _, reason) = send(&client, &server.base, account, request).await;
            assert_eq!(status, 400, "{account} {needle}: {reason}");
            // Inside a ciphertext, every failure gets the one answer that is no oracle
            // (the kind goes to the log line only).
            let needle = if mode == Mode::Safe {
                "cannot decrypt"
            } else {
                needle
            };
            assert!(reason.contains(needle), "{account} {needle}: {reason}");
            assert!(reason.len() < 400, "the reason does not echo the body");
        }
    }
    // A body of nothing but nesting, as large as max_body_bytes allows, is refused
    // quickly: each level is scanned once, and no more than 16 levels are entered.
    let depth = 500_000;
    let abyss = text_json(
        ts,
        &format!(r#","X":{}1{}"#, "[".repeat(depth), "]".repeat(depth)),
    );
    assert!(abyss.len() < 1024 * 1024);
    let started = Instant::now();
    let request = request_as(Mode::Plain, Format::Json, &abyss, ts);
    let (status, _, reason) = send(&client, &server.base, "mini-plain", request).await;
    assert_eq!(status, 400, "{reason}");
    let elapsed = started.elapsed();
    println!("a 1 MB nesting bomb was refused in {elapsed:?}");
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    let account = server.state.account("mini-plain").unwrap();
    let dedup = account.dedup().unwrap();
    assert_eq!(dedup.len(), 0, "nothing remembered for a refused push");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_rule_on_a_mini_program_answers_success_and_sends_through_the_api() {
    let (emu, emu_base) = emulator().await;
    emu.record_interaction("oUser");
    let config = mini_config_text(&format!("api_base = \"{emu_base}\""));
    let server = TestServer::open("kinds-rule-reply", &config).await;
    let client = wxgate_client::http_client();
    let ts = now();
    let message = build::json(&build::text(
        "gh_test",
        "oUser",
        ts,
        "hi",
        9_007_199_254_740_993,
    ));
    for attempt in 0..3 {
        // WeChat's retries of one push: one send.
        let request = request_as(Mode::Safe, Format::Json, &message, ts);
        let (status, _, body) = send(&client, &server.base, "mini-safe", request).await;
        assert_eq!(
            (status, body.as_str()),
            (200, "success"),
            "attempt {attempt}"
        );
    }
    // The same rule for an XML push to this JSON account (the console's switch).
    let xml = build::text("gh_test", "oUser", ts, "xml too", 42);
    let request = request_as(Mode::Safe, Format::Xml, &xml, ts);
    let (status, _, body) = send(&client, &server.base, "mini-safe", request).await;
    assert_eq!((status, body.as_str()), (200, "success"));
    wait_until(Duration::from_secs(10), || {
        let sent = emu.count("/cgi-bin/message/custom/send");
        (sent < 2).then(|| format!("{sent} customer-service messages so far"))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let calls: Vec<Value> = emu
        .calls()
        .into_iter()
        .filter(|c| c.path == "/cgi-bin/message/custom/send")
        .map(|c| {
            assert_eq!(c.errcode, 0, "{}", c.body);
            serde_json::from_str(&c.body).unwrap()
        })
        .collect();
    let mut texts: Vec<&str> = calls
        .iter()
        .map(|c| c["text"]["content"].as_str().unwrap())
        .collect();
    texts.sort_unstable();
    assert_eq!(texts, ["echo hi", "echo xml too"], "each push sent once");
    assert!(calls
        .iter()
        .all(|c| c["touser"] == "oUser" && c["msgtype"] == "text"));
    server.stop().await;
}

/// What a service saw: the `message` of each delivery.
async fn recording_service(reply: Value) -> (String, Arc<Mutex<Vec<Value>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let shared = seen.clone();
    let handler = move |body: String| {
        let (seen, reply) = (shared.clone(), reply.clone());
        async move {
            let request: Value = serde_json::from_str(&body).unwrap();
            seen.lock().unwrap().push(request["message"].clone());
            serde_json::json!({ "reply": reply }).to_string()
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            Router::new().route("/hook", axum::routing::post(handler)),
        )
        .await
        .unwrap()
    });
    (format!("http://{addr}/hook"), seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_gives_the_service_the_same_json_for_a_json_and_an_xml_push() {
    let (emu, emu_base) = emulator().await;
    emu.record_interaction("oUser");
    let reply = serde_json::json!({ "type": "text", "content": "from the service" });
    let (hook, seen) = recording_service(reply).await;
    let dir = std::env::temp_dir().join(format!("wxgate-kinds-forward-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let text = format!(
        "data_dir = \"{}\"\nadmin_token = \"admin-token-0123456789\"\napi_base = \"{emu_base}\"\n\
         [[account]]\nname = \"mini\"\nkind = \"miniprogram\"\napp_id = \"{APP_ID}\"\napp_secret = \"{APP_SECRET}\"\ntoken = \"{TOKEN}\"\nencoding_aes_key = \"{KEY}\"\nmode = \"compat\"\n\
         [account.forward]\nurl = \"{hook}\"\nsecret = \"{FORWARD_SECRET}\"\ntimeout_ms = 3000\n",
        dir.display()
    );
    let config = wxgate::config::Config::parse(&text, "t.toml").unwrap();
    let state = Arc::new(
        wxgate::app::AppState::open(&config, "admin-token-0123456789".into())
            .await
            .unwrap(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app_state = state.clone();
    tokio::spawn(async move {
        wxgate::http::serve(listener, app_state, std::future::pending())
            .await
            .unwrap()
    });
    let client = wxgate_client::http_client();
    let ts = now();
    let xml = build::text(
        "gh_test",
        "oUser",
        ts,
        "same <text> & \"quotes\"",
        18_446_744_073_709_551_615,
    );
    for (format, mode) in [(Format::Xml, Mode::Plain), (Format::Json, Mode::Safe)] {
        let message = match format {
            Format::Xml => xml.clone(),
            Format::Json => {
                build::json(&xml).replace("18446744073709551615", "18446744073709551614")
            }
        };
        let request = request_as(mode, format, &message, ts);
        let (status, _, body) = send(&client, &base, "mini", request).await;
        // A mini-program shows no passive text: success now, the reply through the API.
        assert_eq!((status, body.as_str()), (200, "success"), "{format:?}");
    }
    let messages = seen.lock().unwrap().clone();
    assert_eq!(messages.len(), 2);
    let mut without_id = messages.clone();
    for message in &mut without_id {
        message.as_object_mut().unwrap().remove("msg_id");
    }
    assert_eq!(without_id[0], without_id[1], "{messages:#?}");
    assert_eq!(messages[0]["msg_id"], "18446744073709551615");
    assert_eq!(
        messages[1]["msg_id"], "18446744073709551614",
        "exact past 2^53"
    );
    assert_eq!(messages[1]["content"], "same <text> & \"quotes\"");
    assert_eq!(messages[1]["create_time"], ts.to_string());
    wait_until(Duration::from_secs(10), || {
        let sent = emu.count("/cgi-bin/message/custom/send");
        (sent < 2).then(|| format!("{sent} customer-service messages so far"))
    })
    .await;
    let inbox = state.forwarder().unwrap().inbox();
    let deadline = Instant::now() + Duration::from_secs(10);
    for id in [1, 2] {
        loop {
            let record = inbox.get(id).await.unwrap().expect("the record exists");
            if record.reply_outcome.as_deref() == Some("customer_service") {
                break;
            }
            assert!(Instant::now() < deadline, "{record:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Runs the real binary with `args`.
async fn wxgate(args: Vec<String>) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_wxgate"))
            .args(&args)
            .output()
            .expect("wxgate runs")
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_sends_json_like_a_mini_program() {
    let server = TestServer::start(&mini_config_text("")).await;
    for (account, format, encrypted) in [
        ("mini-safe", "json", true),
        ("mini-compat", "json", true),
        ("mini-plain", "json", false),
        ("mini-safe", "xml", true),
    ] {
        let url = format!("{}/wx/{account}", server.base);
        let mut args: Vec<String> = [
            "sim", "--url", &url, "--token", TOKEN, "--json", "--format", format,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if encrypted {
            let mode = account.trim_start_matches("mini-");
            args.extend(
                ["--aes-key", KEY, "--app-id", APP_ID, "--mode", mode]
                    .iter()
                    .map(|s| s.to_string()),
            );
        }
        args.extend(
            ["event", "user_enter_tempsession"]
                .iter()
                .map(|s| s.to_string()),
        );
        let output = wxgate(args).await;
        let report: Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stdout)));
        assert_eq!(
            output.status.code(),
            Some(0),
            "{account} {format}: {report:#}"
        );
        assert_eq!(report["format"], format);
        assert_eq!(
            report["reply"], "transfer to customer service (kf2001@gh_test)",
            "{account} {format}: {report:#}"
        );
        let checks = report["checks"].to_string();
        let reply_check = if format == "json" {
            "reply JSON"
        } else {
            "reply XML"
        };
        assert!(checks.contains(reply_check), "{checks}");
        assert_eq!(
            encrypted,
            checks.contains("MsgSignature verifies"),
            "{checks}"
        );
    }
    // A text to the mini-program: `success` (the rule's reply goes through the API).
    let url = format!("{}/wx/mini-plain", server.base);
    let args = [
        "sim", "--url", &url, "--token", TOKEN, "--format", "json", "text", "hi",
    ];
    let output = wxgate(args.iter().map(|s| s.to_string()).collect()).await;
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{printed}");
    assert!(printed.contains("(plain mode, JSON)"), "{printed}");
    assert!(printed.contains("(none: success)"), "{printed}");
    server.stop().await;
}

#[test]
fn the_probe_judges_json_answers_as_wechat_would() {
    use wxgate::cli::probe::{judge_reply, Exchange, Status, Target};
    let target = Target {
        url: "http://127.0.0.1:9/wx/mini".into(),
        token: TOKEN.into(),
        mode: Mode::Plain,
        crypt: None,
        format: Format::Json,
        wecom: None,
    };
    let ts = now();
    let sent = wxgate_proto::Message::parse_json(&tempsession(ts)).unwrap();
    let exchange = |body: String| Exchange {
        status: Some(200),
        body,
        content_type: "application/json".into(),
        elapsed: Duration::from_millis(3),
        error: None,
        refused: false,
    };
    let status_of = |checks: &[wxgate::cli::probe::Check], name: &str| {
        checks.iter().find(|c| c.name == name).map(|c| c.status)
    };
    let transfer = Reply::TransferCustomerService { kf_account: None };
    let verdict = judge_reply(
        &target,
        &sent,
        false,
        &exchange(transfer.render_json("oUser", "gh_test", ts)),
        ts,
    );
    assert_eq!(status_of(&verdict.checks, "reply JSON"), Some(Status::Pass));
    assert_eq!(status_of(&verdict.checks, "passive reply"), None);
    let text = Reply::Text {
        content: "hi".into(),
    };
    let verdict = judge_reply(
        &target,
        &sent,
        false,
        &exchange(text.render_json("oUser", "gh_test", ts)),
        ts,
    );
    assert_eq!(
        status_of(&verdict.checks, "passive reply"),
        Some(Status::Warn)
    );
    let verdict = judge_reply(
        &target,
        &sent,
        false,
        &exchange(text.render("oUser", "gh_test", ts)),
        ts,
    );
    assert_eq!(
        status_of(&verdict.checks, "answer"),
        Some(Status::Fail),
        "XML to a JSON push"
    );
    let xml_target = Target {
        format: Format::Xml,
        ..target
    };
    let verdict = judge_reply(
        &xml_target,
        &sent,
        false,
        &exchange(text.render_json("oUser", "gh_test", ts)),
        ts,
    );
    assert_eq!(
        status_of(&verdict.checks, "answer"),
        Some(Status::Fail),
        "JSON to an XML push"
    );
}
