//! Forwarding to the owner's service over real TCP: fast, slow, down then up, garbage,
//! retries, the HMAC the service checks, and kill -9 under load.

mod common;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use axum::Router;
use common::*;
use serde_json::Value;
use wxgate_emu::{App, Emulator, EmulatorConfig};
use wxgate_proto::console::Mode;
use wxgate_proto::push::build;
use wxgate_proto::reply::ReplyMessage;

const SECRET: &str = "0123456789abcdef0123456789abcdef";
const FORWARD_SECRET: &str = "forward-secret-0123456789";

/// How the test service behaves.
#[derive(Clone, Copy, Debug)]
enum Behaviour {
    /// Answers at once with a text reply echoing the content.
    Fast,
    /// Answers the echo after this many ms.
    Slow(u64),
    /// Answers 503 to the first N requests, then echoes.
    DownFor(usize),
    /// Answers 200 with an HTML page.
    Garbage,
}

#[derive(Default)]
struct Seen {
    requests: usize,
    /// delivery_id → message.msg_id, for every 2xx answer.
    delivered: HashMap<String, String>,
    /// delivery_id → how many times it was answered 2xx.
    repeats: HashMap<String, usize>,
    bad_signatures: usize,
}

/// A service that verifies wxgate's HMAC exactly as the README tells users to.
async fn service(behaviour: Behaviour) -> (String, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let shared = seen.clone();
    let handler = move |headers: HeaderMap, body: String| {
        let seen = shared.clone();
        async move {
            let timestamp: i64 = headers["x-wxgate-timestamp"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            let expected = wxgate::forward::signature(FORWARD_SECRET, timestamp, &body);
            let request: Value = serde_json::from_str(&body).unwrap();
            let index = {
                let mut seen = seen.lock().unwrap();
                seen.requests += 1;
                if headers["x-wxgate-signature"].to_str().unwrap() != expected {
                    seen.bad_signatures += 1;
                    return (StatusCode::UNAUTHORIZED, String::new());
                }
                seen.requests
            };
            let content = request["message"]["content"]
                .as_str()
                .unwrap_or("")
                .to_owned();
            let reply = serde_json::json!({ "reply": { "type": "text", "content": format!("svc: {content}") } }).to_string();
            let answer = match behaviour {
                Behaviour::Fast => (StatusCode::OK, reply),
                Behaviour::Slow(ms) => {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    (StatusCode::OK, reply)
                }
                Behaviour::DownFor(n) if index <= n => {
                    return (StatusCode::SERVICE_UNAVAILABLE, String::new())
                }
                Behaviour::DownFor(_) => (StatusCode::OK, reply),
                Behaviour::Garbage => (StatusCode::OK, "<html>oops</html>".to_owned()),
            };
            let id = request["delivery_id"].as_str().unwrap().to_owned();
            let mut seen = seen.lock().unwrap();
            seen.delivered.insert(
                id.clone(),
                request["message"]["msg_id"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
            );
            *seen.repeats.entry(id).or_default() += 1;
            answer
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

async fn emulator() -> (Emulator, String) {
    let emu = Emulator::new(EmulatorConfig::with_app(App::new(APP_ID, SECRET)));
    let (addr, _task) = emu
        .spawn(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    (emu, format!("http://{addr}"))
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("wxgate-forward-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn forward_config(data_dir: &std::path::Path, hook: &str, emu: &str, timeout_ms: u64) -> String {
    format!(
        "data_dir = \"{}\"\nadmin_token = \"admin-token-0123456789\"\napi_base = \"{emu}\"\n\
         [[account]]\nname = \"fwd\"\napp_id = \"{APP_ID}\"\napp_secret = \"{SECRET}\"\ntoken = \"{TOKEN}\"\nencoding_aes_key = \"{KEY}\"\nmode = \"compat\"\n\
         [[account.rule]]\nwhen = {{ msg_type = \"text\", keyword = \"rule\" }}\nreply = {{ text = \"from the rules\" }}\n\
         [account.forward]\nurl = \"{hook}\"\nsecret = \"{FORWARD_SECRET}\"\ntimeout_ms = {timeout_ms}\nmax_age_s = 3600\n",
        data_dir.display()
    )
}

struct Gateway {
    base: String,
    state: Arc<wxgate::app::AppState>,
}

async fn gateway(config_text: &str) -> Gateway {
    let config = wxgate::config::Config::parse(config_text, "t.toml").unwrap();
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
    Gateway { base, state }
}

async fn push_text(
    client: &reqwest::Client,
    base: &str,
    content: &str,
    msg_id: u64,
    mode: Mode,
) -> (u16, String, Duration) {
    let ts = now();
    let request = push_request(
        mode,
        &build::text("gh_test", "oUser", ts, content, msg_id),
        ts,
    );
    let started = Instant::now();
    let (status, body) = post(
        client,
        &format!("{base}/wx/fwd?{}", request.query),
        request.body,
    )
    .await;
    let plain = if body.contains("<Encrypt>") {
        wxgate_proto::envelope::open_reply(&crypt(), TOKEN, &body)
            .unwrap()
            .xml
    } else {
        body
    };
    (status, plain, started.elapsed())
}

fn reply_text(xml: &str) -> String {
    match ReplyMessage::parse(xml).unwrap().reply {
        wxgate_proto::reply::Reply::Text { content } => content,
        other => panic!("{other:?}"),
    }
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    wait_until(Duration::from_secs(15), || {
        (!done()).then(|| format!("timed out waiting for {what}"))
    })
    .await;
}

/// Inbox record `id`.
async fn record(gw: &Gateway, id: u64) -> wxgate::inbox::Record {
    let inbox = gw.state.forwarder().unwrap().inbox();
    inbox.get(id).await.unwrap().expect("the record exists")
}

/// Waits until inbox record `id` satisfies `done`, and returns it.
async fn wait_for_record(
    what: &str,
    gw: &Gateway,
    id: u64,
    done: impl Fn(&wxgate::inbox::Record) -> bool,
) -> wxgate::inbox::Record {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let record = record(gw, id).await;
        if done(&record) {
            return record;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {record:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fast_service_reply_is_the_passive_reply() {
    let (hook, seen) = service(Behaviour::Fast).await;
    let (_emu, emu_base) = emulator().await;
    let gw = gateway(&forward_config(&temp_dir("fast"), &hook, &emu_base, 4000)).await;
    let client = wxgate_client::http_client();
    for (mode, id) in [(Mode::Plain, 1), (Mode::Safe, 2)] {
        let (status, body, _) = push_text(&client, &gw.base, "hello", id, mode).await;
        assert_eq!(status, 200);
        assert_eq!(reply_text(&body), "svc: hello", "{mode:?}");
    }
    // The rules still come first.
    let (_, body, _) = push_text(&client, &gw.base, "rule", 3, Mode::Plain).await;
    assert_eq!(reply_text(&body), "from the rules");
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.delivered.len(), 2);
        assert_eq!(seen.bad_signatures, 0, "the service verified every HMAC");
    }
    let record = record(&gw, 1).await;
    assert_eq!(record.reply_outcome.as_deref(), Some("passive"));
    assert_eq!(record.message["msg_id"], "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_from_wechat_is_never_delivered_twice() {
    let (hook, seen) = service(Behaviour::Fast).await;
    let (_emu, emu_base) = emulator().await;
    let gw = gateway(&forward_config(&temp_dir("retry"), &hook, &emu_base, 4000)).await;
    let client = wxgate_client::http_client();
    let mut replies = Vec::new();
    for _ in 0..3 {
        let (status, body, _) = push_text(&client, &gw.base, "once", 4242, Mode::Safe).await;
        assert_eq!(status, 200);
        replies.push(reply_text(&body));
    }
    assert_eq!(
        replies,
        vec!["svc: once"; 3],
        "retries get the same passive reply"
    );
    assert_eq!(seen.lock().unwrap().requests, 1, "one delivery");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_service_gets_success_then_a_late_customer_service_reply() {
    let (hook, seen) = service(Behaviour::Slow(1500)).await;
    let (emu, emu_base) = emulator().await;
    emu.record_interaction("oUser");
    let gw = gateway(&forward_config(&temp_dir("slow"), &hook, &emu_base, 300)).await;
    let client = wxgate_client::http_client();
    let (status, body, elapsed) =
        push_text(&client, &gw.base, "take your time", 7, Mode::Plain).await;
    assert_eq!((status, body.as_str()), (200, "success"));
    assert!(
        elapsed < Duration::from_millis(1200),
        "answered within the timeout: {elapsed:?}"
    );
    wait_for("the late reply", || {
        emu.count("/cgi-bin/message/custom/send") == 1
    })
    .await;
    let call = emu
        .calls()
        .into_iter()
        .find(|c| c.path == "/cgi-bin/message/custom/send")
        .unwrap();
    assert!(
        call.body.contains("svc: take your time") && call.body.contains("oUser"),
        "{}",
        call.body
    );
    assert_eq!(call.errcode, 0);
    assert_eq!(seen.lock().unwrap().delivered.len(), 1);
    wait_for_record("the late reply", &gw, 1, |r| {
        r.reply_outcome.as_deref() == Some("late")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_is_down_gets_the_message_once_it_is_back() {
    let (hook, seen) = service(Behaviour::DownFor(2)).await;
    let (emu, emu_base) = emulator().await;
    // The user wrote within 48 h, so the service's (late) reply can be sent; until it
    // is, the record is not delivered.
    emu.record_interaction("oUser");
    let gw = gateway(&forward_config(&temp_dir("down"), &hook, &emu_base, 300)).await;
    let client = wxgate_client::http_client();
    let (status, body, _) = push_text(&client, &gw.base, "are you there", 9, Mode::Plain).await;
    assert_eq!(
        (status, body.as_str()),
        (200, "success"),
        "acknowledged although the service is down"
    );
    wait_for("delivery after the outage", || {
        seen.lock().unwrap().delivered.len() == 1
    })
    .await;
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.requests, 3, "two failures, then the delivery");
        assert_eq!(
            seen.repeats.values().copied().collect::<Vec<_>>(),
            vec![1],
            "delivered once"
        );
    }
    let record = wait_for_record("the delivered state", &gw, 1, |r| {
        r.state == wxgate::inbox::DeliveryState::Delivered
    })
    .await;
    assert_eq!(record.attempts, 3);
    assert_eq!(record.reply_outcome.as_deref(), Some("late"), "{record:?}");
    assert!(!record.reply_due);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_from_the_service_is_logged_and_wechat_gets_success() {
    let (hook, _seen) = service(Behaviour::Garbage).await;
    let (_emu, emu_base) = emulator().await;
    let gw = gateway(&forward_config(
        &temp_dir("garbage"),
        &hook,
        &emu_base,
        4000,
    ))
    .await;
    let client = wxgate_client::http_client();
    let (status, body, _) = push_text(&client, &gw.base, "x", 11, Mode::Safe).await;
    assert_eq!((status, body.as_str()), (200, "success"));
    let record = wait_for_record("the delivered state", &gw, 1, |r| {
        r.state == wxgate::inbox::DeliveryState::Delivered
    })
    .await;
    assert_eq!(record.service_reply, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_on_our_side_is_caught_by_the_service_and_retried() {
    let (hook, seen) = service(Behaviour::Fast).await;
    let (_emu, emu_base) = emulator().await;
    let text = forward_config(&temp_dir("hmac"), &hook, &emu_base, 300)
        .replace(FORWARD_SECRET, "a-different-secret-000000");
    let gw = gateway(&text).await;
    let client = wxgate_client::http_client();
    let (status, body, _) = push_text(&client, &gw.base, "x", 12, Mode::Plain).await;
    assert_eq!((status, body.as_str()), (200, "success"));
    wait_for("a retry", || seen.lock().unwrap().bad_signatures >= 2).await;
    assert!(
        seen.lock().unwrap().delivered.is_empty(),
        "a service that checks the HMAC never accepts it"
    );
    let record = record(&gw, 1).await;
    assert!(record.last_error.unwrap().contains("401"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbox_admin_api_lists_shows_retries_and_purges() {
    let (hook, _seen) = service(Behaviour::Fast).await;
    let (_emu, emu_base) = emulator().await;
    let gw = gateway(&forward_config(&temp_dir("admin"), &hook, &emu_base, 4000)).await;
    let client = wxgate_client::http_client();
    push_text(&client, &gw.base, "a", 21, Mode::Plain).await;
    let get = |path: &str| {
        client
            .get(format!("{}{path}", gw.base))
            .bearer_auth("admin-token-0123456789")
    };
    let list: Value = get("/api/inbox?state=delivered")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["counts"]["delivered"], 1, "{list}");
    assert_eq!(list["records"][0]["message"]["content"], "a");
    let one: Value = get("/api/inbox/1")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one["state"], "delivered");
    assert_eq!(
        get("/api/inbox/99").send().await.unwrap().status().as_u16(),
        404
    );
    let retry = client
        .post(format!("{}/api/inbox/1/retry", gw.base))
        .bearer_auth("admin-token-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(retry.status().as_u16(), 200);
    assert_eq!(
        client
            .get(format!("{}/api/inbox", gw.base))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );
    let metrics = wxgate_client::http_client()
        .get(format!("{}/metrics", gw.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("wxgate_inbox_records{state=\"pending\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("wxgate_forward_deliveries_total"));
    wait_for_record("the retried delivery", &gw, 1, |r| {
        r.state == wxgate::inbox::DeliveryState::Delivered
    })
    .await;
    let purged: Value = client
        .delete(format!("{}/api/inbox?older_than_s=-10", gw.base))
        .bearer_auth("admin-token-0123456789")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(purged["purged"], 1);
    // The CLI talks to the same API.
    push_text(&client, &gw.base, "b", 22, Mode::Plain).await;
    let cli = |args: &[&str]| {
        let mut full = vec![
            "inbox",
            "--url",
            gw.base.as_str(),
            "--admin-token",
            "admin-token-0123456789",
        ];
        full.extend_from_slice(args);
        let full: Vec<String> = full.iter().map(|s| s.to_string()).collect();
        async move {
            tokio::task::spawn_blocking(move || {
                std::process::Command::new(env!("CARGO_BIN_EXE_wxgate"))
                    .args(&full)
                    .current_dir(std::env::temp_dir())
                    .output()
                    .unwrap()
            })
            .await
            .unwrap()
        }
    };
    let listed = cli(&["list", "--state", "delivered", "--json"]).await;
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    assert!(String::from_utf8_lossy(&listed.stdout).contains("\"content\": \"b\""));
    // Without --json: a table, one line per record, and the counts.
    let table = cli(&["list", "--state", "delivered"]).await;
    let table = String::from_utf8_lossy(&table.stdout).into_owned();
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].contains("ID") && lines[0].contains("STATE"),
        "{table}"
    );
    assert!(
        lines[1..lines.len() - 1]
            .iter()
            .all(|line| line.contains("delivered") && line.contains(" text ")),
        "{table}"
    );
    assert!(lines.last().unwrap().contains(" shown; "), "{table}");
    let shown = cli(&["show", "2"]).await;
    let shown = String::from_utf8_lossy(&shown.stdout).into_owned();
    assert!(shown.contains("state: "), "{shown}");
    // Times also in UTC, with their zone.
    let received =
        regex::Regex::new(r"received_at: [0-9]+ \(20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z\)")
            .unwrap();
    assert!(received.is_match(&shown), "{shown}");
    assert!(cli(&["show", "2"]).await.status.success());
    assert!(cli(&["retry", "2"]).await.status.success());
    assert_eq!(cli(&["show", "999"]).await.status.code(), Some(1));
    assert_eq!(
        cli(&["purge", "--older-than", "1w"]).await.status.code(),
        Some(2)
    );
}

/// Kill -9 under load: every message that got a 200 is delivered after the restart
/// (at least once; a repeat carries the same delivery id) or sits in the dead letters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_loses_no_acknowledged_message() {
    let (hook, seen) = service(Behaviour::Slow(80)).await;
    let (_emu, emu_base) = emulator().await;
    let dir = temp_dir("crash");
    std::fs::write(
        dir.join("wxgate.toml"),
        forward_config(&dir.join("data"), &hook, &emu_base, 50),
    )
    .unwrap();
    let start = move || start_binary(&dir);
    let (mut child, base) = tokio::task::spawn_blocking(start.clone()).await.unwrap();
    let client = wxgate_client::http_client_builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let acked = Arc::new(Mutex::new(HashSet::new()));
    let mut tasks = Vec::new();
    for i in 0..300u64 {
        let client = client.clone();
        let base = base.clone();
        let acked = acked.clone();
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(i * 3)).await;
            let ts = now();
            let msg_id = 100_000 + i;
            let request = push_request(
                Mode::Plain,
                &build::text("gh_test", "oUser", ts, &format!("m{i}"), msg_id),
                ts,
            );
            if let Ok(response) = client
                .post(format!("{base}/wx/fwd?{}", request.query))
                .body(request.body)
                .send()
                .await
            {
                if response.status().as_u16() == 200 {
                    acked.lock().unwrap().insert(msg_id.to_string());
                }
            }
        }));
    }
    // Kill -9 in the middle of the load: once 40 messages are acknowledged.
    wait_for("40 acknowledged messages", || {
        acked.lock().unwrap().len() >= 40
    })
    .await;
    child.kill().unwrap();
    let _ = child.wait();
    for task in tasks {
        let _ = task.await;
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 40,
        "the load ran before the kill ({} acknowledged)",
        acked.len()
    );
    let before_restart = seen.lock().unwrap().delivered.len();
    let (mut child, _base) = tokio::task::spawn_blocking(start).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let delivered: HashSet<String> = seen.lock().unwrap().delivered.values().cloned().collect();
        let lost: Vec<_> = acked.iter().filter(|id| !delivered.contains(*id)).collect();
        if lost.is_empty() || Instant::now() > deadline {
            let repeats: usize = seen.lock().unwrap().repeats.values().map(|n| n - 1).sum();
            println!(
                "kill -9 under load: {} acknowledged, {} delivered before the restart, lost {}, repeats {} (same delivery id)",
                acked.len(),
                before_restart,
                lost.len(),
                repeats
            );
            assert!(
                lost.is_empty(),
                "acknowledged but never delivered: {lost:?}"
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The README's signature checks for services (kept in tests/interop/) accept wxgate's
/// signature and refuse a tampered body, a wrong secret and a stale timestamp.
#[test]
fn delivery_signatures_verify_in_python_and_node() {
    let python = std::env::var("WXGATE_INTEROP_PYTHON").unwrap_or_else(|_| {
        format!(
            "{}/../../target/interop-venv/bin/python",
            env!("CARGO_MANIFEST_DIR")
        )
    });
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop");
    let body_path = temp_dir("sig").join("body.json");
    let body = r#"{"delivery_id":"1","account":"fwd","attempt":1,"message":{"content":"你好"}}"#;
    std::fs::write(&body_path, body).unwrap();
    let ts = now();
    let good = wxgate::forward::signature(FORWARD_SECRET, ts, body);
    let stale = wxgate::forward::signature(FORWARD_SECRET, ts - 3600, body);
    let tampered = wxgate::forward::signature(FORWARD_SECRET, ts, &body.replace("你好", "hi"));
    for (program, script) in [
        (python.as_str(), "verify_delivery.py"),
        ("node", "verify_delivery.js"),
    ] {
        for (secret, timestamp, signature, expected) in [
            (FORWARD_SECRET, ts, &good, "ok"),
            ("another-secret-0000000000", ts, &good, "invalid"),
            (FORWARD_SECRET, ts, &tampered, "invalid"),
            (FORWARD_SECRET, ts - 3600, &stale, "invalid"),
        ] {
            let output = std::process::Command::new(program)
                .arg(dir.join(script))
                .args([secret, &timestamp.to_string(), signature.as_str()])
                .arg(&body_path)
                .output()
                .unwrap();
            assert_eq!(
                String::from_utf8_lossy(&output.stdout).trim(),
                expected,
                "{script}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
}

/// `[inbox] keep_delivered_days`: the worker's retention deletes delivered records
/// older than that, keeps younger ones and dead letters; 0 keeps everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_old_delivered_records() {
    use wxgate::inbox::{Accepted, DeliveryState};
    let (hook, _seen) = service(Behaviour::Fast).await;
    let (_emu, emu_base) = emulator().await;
    for (keep, expected) in [(7, 1), (0, 0)] {
        let text = format!(
            "{}[inbox]\nkeep_delivered_days = {keep}\n",
            forward_config(&temp_dir(&format!("keep{keep}")), &hook, &emu_base, 300)
        );
        let gw = gateway(&text).await;
        let forwarder = gw.state.forwarder().unwrap();
        // The worker would attempt the records between their accept and update below.
        forwarder.shutdown().await;
        let inbox = forwarder.inbox();
        let day = 86_400;
        for (key, age, state) in [
            ("m:1", 10, DeliveryState::Delivered),
            ("m:2", 10, DeliveryState::Dead),
            ("m:3", 1, DeliveryState::Delivered),
        ] {
            let Accepted::New(mut record) = inbox
                .accept(wxgate::inbox::Record::new(
                    0,
                    "fwd",
                    key,
                    serde_json::json!({}),
                    now() - age * day,
                ))
                .await
                .unwrap()
            else {
                panic!("{key} already stored")
            };
            record.state = state;
            inbox.update(&record).await.unwrap();
        }
        assert_eq!(
            forwarder.expire_delivered().await.unwrap(),
            expected,
            "keep_delivered_days = {keep}"
        );
        assert_eq!(
            inbox.counts().await.unwrap(),
            (0, 2 - expected as u64, 1),
            "keep_delivered_days = {keep}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gigabyte_answer_is_a_failed_attempt_read_no_further_than_max_reply_bytes() {
    let streamed = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = streamed.clone();
    let hook = serve_hook(Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let counter = counter.clone();
            async move {
                // 1 GB in 64 KiB chunks, without a Content-Length.
                let chunks = futures_util_stream(counter);
                axum::body::Body::from_stream(chunks)
            }
        }),
    ))
    .await;
    let (_emu, emu_base) = emulator().await;
    let gw = gateway(&forward_config(
        &temp_dir("bigreply"),
        &hook,
        &emu_base,
        300,
    ))
    .await;
    let before = rss_kb(std::process::id()).unwrap();
    let client = wxgate_client::http_client();
    let (status, body, _) = push_text(&client, &gw.base, "x", 41, Mode::Plain).await;
    assert_eq!((status, body.as_str()), (200, "success"));
    let record = wait_for_record("a failed attempt", &gw, 1, |r| r.last_error.is_some()).await;
    let after = rss_kb(std::process::id()).unwrap();
    let sent = streamed.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "1 GB answer: failed with {:?}; the service got to send {} KiB; test process RSS {} MB -> {} MB",
        record.last_error,
        sent / 1024,
        before / 1024,
        after / 1024
    );
    assert!(record
        .last_error
        .unwrap()
        .contains("over max_reply_bytes = 65536"));
    assert_eq!(record.state, wxgate::inbox::DeliveryState::Pending);
    assert!(after < before + 50 * 1024, "RSS {before} -> {after} KiB");
    assert!(
        sent < 64 * 1024 * 1024,
        "stopped reading early: {sent} bytes"
    );
}

/// 1 GB of `<`, in 64 KiB chunks, counting what was produced.
fn futures_util_stream(
    counter: Arc<std::sync::atomic::AtomicU64>,
) -> impl tokio_stream::Stream<Item = Result<axum::body::Bytes, std::io::Error>> {
    let chunk = axum::body::Bytes::from(vec![b'<'; 64 * 1024]);
    tokio_stream::iter((0..16 * 1024).map(move |_| {
        counter.fetch_add(chunk.len() as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(chunk.clone())
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirecting_service_is_a_failed_attempt_and_the_other_address_gets_nothing() {
    let elsewhere = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let hits = elsewhere.clone();
    let other = serve_hook(Router::new().route(
        "/hook",
        axum::routing::any(move || {
            let hits = hits.clone();
            async move {
                hits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                "{}"
            }
        }),
    ))
    .await;
    for status in [StatusCode::TEMPORARY_REDIRECT, StatusCode::FOUND] {
        let target = other.clone();
        let hook = serve_hook(Router::new().route(
            "/hook",
            axum::routing::post(move || {
                let target = target.clone();
                async move { (status, [(axum::http::header::LOCATION, target)]) }
            }),
        ))
        .await;
        let (_emu, emu_base) = emulator().await;
        let name = format!("redirect{}", status.as_u16());
        let gw = gateway(&forward_config(&temp_dir(&name), &hook, &emu_base, 300)).await;
        let client = wxgate_client::http_client();
        let (code, body, _) = push_text(&client, &gw.base, "x", 42, Mode::Plain).await;
        assert_eq!((code, body.as_str()), (200, "success"));
        let record = wait_for_record("a failed attempt", &gw, 1, |r| r.last_error.is_some()).await;
        let error = record.last_error.unwrap();
        println!("{status}: {error}");
        assert!(error.contains(&status.as_u16().to_string()), "{error}");
        assert!(error.contains(&other), "names the Location: {error}");
        assert_eq!(record.state, wxgate::inbox::DeliveryState::Pending);
    }
    assert_eq!(
        elsewhere.load(std::sync::atomic::Ordering::Relaxed),
        0,
        "no request followed a redirect"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_service_holds_at_most_max_in_flight_sockets_for_attempt_timeout_ms() {
    let open = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let peak = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (o, p) = (open.clone(), peak.clone());
    let hook = serve_hook(Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let (open, peak) = (o.clone(), p.clone());
            async move {
                let now = open.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                peak.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
                // Decrements when the client gives up and the handler is dropped.
                struct Leave(Arc<std::sync::atomic::AtomicUsize>);
                impl Drop for Leave {
                    fn drop(&mut self) {
                        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                    }
                }
                let _leave = Leave(open);
                std::future::pending::<()>().await;
            }
        }),
    ))
    .await;
    let (_emu, emu_base) = emulator().await;
    let text = forward_config(&temp_dir("hang"), &hook, &emu_base, 300).replace(
        "max_age_s = 3600\n",
        "max_age_s = 3600\nmax_in_flight = 4\nattempt_timeout_ms = 3000\n",
    );
    let gw = gateway(&text).await;
    let started = Instant::now();
    let pushes: Vec<_> = (0..40)
        .map(|msg_id| {
            let base = gw.base.clone();
            tokio::spawn(async move {
                let client = wxgate_client::http_client();
                push_text(&client, &base, "x", 500 + msg_id, Mode::Plain)
                    .await
                    .0
            })
        })
        .collect();
    for push in pushes {
        assert_eq!(push.await.unwrap(), 200);
    }
    // Before the first attempt times out, the hanging service holds exactly the slots.
    tokio::time::sleep(Duration::from_millis(2500).saturating_sub(started.elapsed())).await;
    let held = peak.load(std::sync::atomic::Ordering::SeqCst);
    let record = wait_for_record("a timed-out attempt", &gw, 1, |r| r.last_error.is_some()).await;
    println!(
        "40 pending on a hanging service: {held} attempts at once; first error after {:?}: {:?}",
        started.elapsed(),
        record.last_error
    );
    assert_eq!(held, 4, "attempts at once");
    assert!(record
        .last_error
        .unwrap()
        .contains("longer than attempt_timeout_ms = 3000"));
}
