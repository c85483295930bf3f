//! Hostile bodies and floods: field bounds, duplicated fields, the dedup memory's byte
//! budget, replies that must stay XML 1.0, and refusal logging under a flood. Each test
//! is named after the attack.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use wxgate::metrics::{Method, Outcome};
use wxgate_proto::console::Mode;
use wxgate_proto::envelope;
use wxgate_proto::push::build;
use wxgate_proto::reply::{Reply, ReplyMessage};
use wxgate_proto::xml::is_xml_char;

/// A text push with the header WeChat sends and `rest` as the remaining fields,
/// written by hand so that a test controls every byte.
fn text_push(ts: i64, rest: &str) -> String {
    format!(
        "<xml><ToUserName><![CDATA[gh_test]]></ToUserName><FromUserName><![CDATA[oUser]]></FromUserName><CreateTime>{ts}</CreateTime><MsgType><![CDATA[text]]></MsgType>{rest}</xml>"
    )
}

async fn post_plain(client: &reqwest::Client, server: &TestServer, xml: &str) -> (u16, String) {
    let request = push_request(Mode::Plain, xml, now());
    post(
        client,
        &format!("{}/wx/plain?{}", server.base, request.query),
        request.body,
    )
    .await
}

#[tokio::test]
async fn msgid_of_100_kb_is_refused() {
    let server = TestServer::start(&config_text("")).await;
    let client = wxgate_client::http_client();
    let xml = text_push(
        now(),
        &format!("<Content>x</Content><MsgId>{}</MsgId>", "7".repeat(100_000)),
    );
    let (status, reason) = post_plain(&client, &server, &xml).await;
    assert_eq!(status, 400, "{reason}");
    assert!(reason.contains("<MsgId> has 100000 bytes"), "{reason}");
    assert!(reason.len() < 300, "the reason does not echo the field");
    let account = server.state.account("plain").unwrap();
    let dedup = account.dedup().unwrap();
    assert_eq!(dedup.len(), 0, "nothing remembered for a refused push");
    assert_eq!(
        server
            .state
            .metrics
            .count("plain", Method::Post, Outcome::BadRequest),
        1
    );
    server.stop().await;
}

#[tokio::test]
async fn msgid_that_is_not_a_64_bit_number_is_refused() {
    let server = TestServer::start(&config_text("")).await;
    let client = wxgate_client::http_client();
    for bad in ["abc", "-1", "18446744073709551616", "1.5", "", "0x1f"] {
        let xml = text_push(now(), &format!("<Content>x</Content><MsgId>{bad}</MsgId>"));
        let (status, reason) = post_plain(&client, &server, &xml).await;
        assert_eq!(status, 400, "{bad:?}: {reason}");
        assert!(reason.contains("<MsgId> must be an integer"), "{reason}");
    }
    let xml = text_push(
        now(),
        "<Content>max</Content><MsgId>18446744073709551615</MsgId>",
    );
    let (status, body) = post_plain(&client, &server, &xml).await;
    assert_eq!(status, 200, "u64::MAX is a MsgId: {body}");
    server.stop().await;
}

#[tokio::test]
async fn duplicated_msgid_is_refused() {
    let server = TestServer::start(&config_text("")).await;
    let client = wxgate_client::http_client();
    let ts = now();
    for (field, rest) in [
        (
            "MsgId",
            "<Content>x</Content><MsgId>1</MsgId><MsgId>2</MsgId>".to_owned(),
        ),
        (
            "Content",
            "<Content>x</Content><Content>y</Content><MsgId>3</MsgId>".to_owned(),
        ),
        (
            "FromUserName",
            "<FromUserName>oOther</FromUserName><Content>x</Content><MsgId>4</MsgId>".to_owned(),
        ),
        (
            "CreateTime",
            format!("<CreateTime>{ts}</CreateTime><Content>x</Content><MsgId>5</MsgId>"),
        ),
        (
            "MsgType",
            "<MsgType>image</MsgType><Content>x</Content><MsgId>6</MsgId>".to_owned(),
        ),
    ] {
        let (status, reason) = post_plain(&client, &server, &text_push(ts, &rest)).await;
        assert_eq!(status, 400, "{field}: {reason}");
        assert!(
            reason.contains(&format!("<{field}> appears more than once")),
            "{reason}"
        );
    }
    // Lists stay legal: a picture menu event with two items in its PicList.
    let event = format!(
        "<xml><ToUserName>gh_test</ToUserName><FromUserName>oUser</FromUserName><CreateTime>{ts}</CreateTime><MsgType>event</MsgType><Event>pic_weixin</Event><EventKey>6</EventKey><SendPicsInfo><Count>2</Count><PicList><item><PicMd5Sum>a</PicMd5Sum></item><item><PicMd5Sum>b</PicMd5Sum></item></PicList></SendPicsInfo></xml>"
    );
    let (status, body) = post_plain(&client, &server, &event).await;
    assert_eq!((status, body.as_str()), (200, "success"));
    server.stop().await;
}

#[tokio::test]
async fn content_over_64_kib_is_refused_and_64_kib_is_answered() {
    let server = TestServer::start(&config_text("")).await;
    let client = wxgate_client::http_client();
    let max = wxgate_proto::limits::MAX_TEXT_BYTES;
    let over = text_push(
        now(),
        &format!("<Content>{}</Content><MsgId>1</MsgId>", "a".repeat(max + 1)),
    );
    let (status, reason) = post_plain(&client, &server, &over).await;
    assert_eq!(status, 400, "{reason}");
    assert!(reason.contains("<Content> has 65537 bytes"), "{reason}");
    let at = text_push(
        now(),
        &format!("<Content>{}</Content><MsgId>2</MsgId>", "a".repeat(max)),
    );
    let (status, body) = post_plain(&client, &server, &at).await;
    assert_eq!(status, 200);
    assert!(body.contains(&"a".repeat(max)));
    server.stop().await;
}

/// In plain mode the signature covers only the query: one signed query, replayed
/// with 400 different 60 KB bodies, each echoed back and remembered for retries.
#[tokio::test]
async fn dedup_stays_under_its_byte_budget_after_many_large_signed_pushes() {
    let server = TestServer::start(&config_text("")).await;
    let client = wxgate_client::http_client();
    let ts = now();
    let signed = push_request(
        Mode::Plain,
        &build::text("gh_test", "oUser", ts, "x", 1),
        ts,
    );
    let url = format!("{}/wx/plain?{}", server.base, signed.query);
    let content = "z".repeat(60_000);
    let account = server.state.account("plain").unwrap();
    let dedup = account.dedup().unwrap();
    let mut peak = 0;
    for id in 0..400u64 {
        let xml = build::text("gh_test", "oUser", ts, &content, 1_000_000 + id);
        let (status, _) = post(&client, &url, xml).await;
        assert_eq!(status, 200);
        peak = peak.max(dedup.bytes());
    }
    let budget = dedup.max_bytes();
    assert_eq!(budget, wxgate::gateway::dedup::DEFAULT_MAX_BYTES);
    assert!(peak <= budget, "dedup held {peak} bytes, budget {budget}");
    assert!(
        peak > budget - 2 * 61_000,
        "the pushes did reach the budget: {peak}"
    );
    assert!(
        dedup.len() < 400,
        "older answers were dropped: {}",
        dedup.len()
    );
    // The newest answer is still served to a retry.
    let xml = build::text("gh_test", "oUser", ts, &content, 1_000_399);
    let (status, body) = post(&client, &url, xml).await;
    assert_eq!(status, 200);
    assert!(body.contains(&content));
    assert_eq!(
        server
            .state
            .metrics
            .count("plain", Method::Post, Outcome::Duplicate),
        1
    );
    let (_, _, metrics) = get(&client, &format!("{}/metrics", server.base)).await;
    assert!(
        metrics.contains(&format!(
            "wxgate_dedup_bytes{{account=\"plain\"}} {}",
            dedup.bytes()
        )),
        "{}",
        metrics
            .lines()
            .filter(|l| l.contains("dedup"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    server.stop().await;
}

const FORBIDDEN_AND_EDGES: &str = "nul\0 vt\u{b} ff\u{c} esc\u{1b} fffe\u{fffe} ffff\u{ffff} tab\t nl\n edges\u{d7ff}\u{e000}\u{fffd}\u{10000}\u{10ffff}";
const CLEANED: &str =
    "nul vt ff esc fffe ffff tab\t nl\n edges\u{d7ff}\u{e000}\u{fffd}\u{10000}\u{10ffff}";

fn text_of(xml: &str) -> String {
    assert!(
        xml.chars().all(is_xml_char),
        "a reply must be XML 1.0: {xml:?}"
    );
    match ReplyMessage::parse(xml).unwrap().reply {
        Reply::Text { content } => content,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn nul_and_control_characters_never_reach_an_echo_reply() {
    let server = TestServer::start(&config_text("")).await;
    let client = wxgate_client::http_client();
    for (id, (account, mode, encrypted)) in [
        ("plain", Mode::Plain, false),
        ("compat", Mode::Compat, true),
        ("safe", Mode::Safe, true),
    ]
    .into_iter()
    .enumerate()
    {
        let ts = now();
        let xml = text_push(
            ts,
            &format!("<Content><![CDATA[{FORBIDDEN_AND_EDGES}]]></Content><MsgId>{id}</MsgId>"),
        );
        let request = push_request(mode, &xml, ts);
        let (status, body) = post(
            &client,
            &format!("{}/wx/{account}?{}", server.base, request.query),
            request.body,
        )
        .await;
        assert_eq!(status, 200, "{account}: {body}");
        assert!(body.chars().all(is_xml_char), "{account}: {body:?}");
        let plain = if encrypted {
            envelope::open_reply(&crypt(), TOKEN, &body).unwrap().xml
        } else {
            body
        };
        assert_eq!(text_of(&plain), CLEANED, "{account}");
    }
    // An echo of nothing but forbidden characters sends nothing.
    let xml = text_push(
        now(),
        "<Content><![CDATA[\0\u{1}]]></Content><MsgId>9</MsgId>",
    );
    let (status, body) = post_plain(&client, &server, &xml).await;
    assert_eq!((status, body.as_str()), (200, "success"));
    server.stop().await;
}

/// A service that answers every forwarded message with a text holding a NUL, U+000B
/// and U+FFFE.
async fn control_character_service() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let reply = serde_json::json!({ "reply": { "type": "text", "content": FORBIDDEN_AND_EDGES } })
        .to_string();
    let router = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let reply = reply.clone();
            async move { reply }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}/hook")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_service_reply_with_control_characters_is_written_as_xml_1_0() {
    let hook = control_character_service().await;
    let dir = std::env::temp_dir().join(format!("wxgate-bodies-fwd-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = format!(
        "data_dir = \"{}\"\n[[account]]\nname = \"fwd\"\napp_id = \"{APP_ID}\"\ntoken = \"{TOKEN}\"\nencoding_aes_key = \"{KEY}\"\nmode = \"compat\"\n\
         [account.forward]\nurl = \"{hook}\"\nsecret = \"forward-secret-0123456789\"\ntimeout_ms = 4000\n",
        dir.display()
    );
    let config = wxgate::config::Config::parse(&config, "t.toml").unwrap();
    let state = Arc::new(
        wxgate::app::AppState::open(&config, "admin-token-0123456789".into())
            .await
            .unwrap(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(wxgate::http::serve(listener, state, std::future::pending()));
    let client = wxgate_client::http_client();
    for (id, mode) in [(1, Mode::Plain), (2, Mode::Compat)] {
        let ts = now();
        let request = push_request(mode, &build::text("gh_test", "oUser", ts, "hi", id), ts);
        let (status, body) = post(
            &client,
            &format!("{base}/wx/fwd?{}", request.query),
            request.body,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let plain = if mode == Mode::Compat {
            envelope::open_reply(&crypt(), TOKEN, &body).unwrap().xml
        } else {
            body
        };
        assert_eq!(text_of(&plain), CLEANED, "{mode:?}");
    }
}

/// The real binary, its stderr (the log) going to `log`.
fn start_logging_binary(dir: &std::path::Path, log: &std::path::Path) -> (KillOnDrop, String) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_wxgate"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(dir)
        .env_remove("WXGATE_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("wxgate starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let base = std::io::BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|line| {
            line.strip_prefix("wxgate listening on ").map(|rest| {
                rest.split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            })
        })
        .expect("wxgate prints its address");
    (KillOnDrop(child), base)
}

/// "(N similar refusals suppressed …)" or "(1 similar refusal suppressed …)" → N.
fn suppressed_in(line: &str) -> u64 {
    let Some(at) = line.find(" similar refusal") else {
        return 0;
    };
    let digits = line[..at].rsplit('(').next().unwrap();
    digits.parse().unwrap_or_else(|_| panic!("{line}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_unknown_account_requests_log_a_handful_of_lines() {
    const REQUESTS: u64 = 10_000;
    let dir = std::env::temp_dir().join(format!("wxgate-bodies-flood-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("wxgate.toml"),
        format!("[[account]]\nname = \"real\"\napp_id = \"{APP_ID}\"\ntoken = \"{TOKEN}\"\n"),
    )
    .unwrap();
    let log = dir.join("stderr.log");
    let (run_dir, log_path) = (dir.clone(), log.clone());
    let (_child, base) =
        tokio::task::spawn_blocking(move || start_logging_binary(&run_dir, &log_path))
            .await
            .unwrap();
    let client = wxgate_client::http_client();
    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let workers: Vec<_> = (0..16)
        .map(|_| {
            let (client, base, next) = (client.clone(), base.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= REQUESTS {
                        break;
                    }
                    // Every request names another account: they share one bucket.
                    let url = format!("{base}/wx/attacker-{i}?signature=x&timestamp=1&nonce=1");
                    let status = client.get(&url).send().await.unwrap().status();
                    assert_eq!(status.as_u16(), 404);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
    let flood = started.elapsed();
    // Once the window has passed, the next refusal logs and states what was suppressed.
    let window = wxgate::gateway::log_limit::WINDOW;
    tokio::time::sleep(window.saturating_sub(started.elapsed()) + Duration::from_millis(200)).await;
    let (status, _, _) = get(&client, &format!("{base}/wx/attacker-last")).await;
    assert_eq!(status, 404);
    let (_, _, metrics) = get(&client, &format!("{base}/metrics")).await;
    assert!(
        metrics.contains(&format!(
            "wxgate_requests_total{{account=\"\",method=\"GET\",outcome=\"unknown_account\"}} {}",
            REQUESTS + 1
        )),
        "the metrics count every request:\n{metrics}"
    );
    let mut lines = Vec::new();
    wait_until(Duration::from_secs(5), || {
        let text = std::fs::read_to_string(&log).unwrap();
        lines = text
            .lines()
            .filter(|l| l.contains("refused:"))
            .map(str::to_owned)
            .collect();
        let reported: u64 = lines.iter().map(|l| suppressed_in(l)).sum();
        (reported + lines.len() as u64 != REQUESTS + 1).then(|| {
            format!(
                "{} lines reporting {reported} suppressed, expected {} in all:\n{}",
                lines.len(),
                REQUESTS + 1,
                lines.join("\n")
            )
        })
    })
    .await;
    // At most LINES_PER_WINDOW per window the flood and the wait touched.
    let windows = (flood.as_millis() / window.as_millis()) as u64 + 2;
    let bound = wxgate::gateway::log_limit::LINES_PER_WINDOW * windows;
    println!(
        "{REQUESTS} refused requests in {flood:?} wrote {} log lines",
        lines.len()
    );
    assert!(
        lines.len() as u64 <= bound,
        "{} lines (bound {bound}):\n{}",
        lines.len(),
        lines.join("\n")
    );
    let last = lines.last().unwrap();
    assert!(last.contains("attacker-last"), "{last}");
    assert!(
        suppressed_in(last) > 0,
        "the last line states the suppressed count: {last}"
    );
    assert!(
        last.contains("similar refusals suppressed in the last"),
        "{last}"
    );
}
