//! Several real wxgate processes sharing a real redis-server: one access_token per
//! account, fetched and refreshed by exactly one instance. `scripts/test.sh` starts
//! Redis and sets WXGATE_TEST_REDIS.

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use wxgate_emu::{App, Emulator, EmulatorConfig};

const SECRET: &str = "0123456789abcdef0123456789abcdef";
const ADMIN: &str = "scale-admin-token-0123456789";

/// `GET /api/status` of an instance.
async fn status(client: &reqwest::Client, base: &str) -> serde_json::Value {
    client
        .get(format!("{base}/api/status"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// A service that answers every delivery with 200 and an empty body, and the set of
/// msg_ids it was delivered.
async fn msg_id_service() -> (String, Arc<Mutex<HashSet<String>>>) {
    let delivered: Arc<Mutex<HashSet<String>>> = Arc::default();
    let seen = Arc::clone(&delivered);
    let service = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: String| {
            let seen = Arc::clone(&seen);
            async move {
                let request: serde_json::Value = serde_json::from_str(&body).unwrap();
                seen.lock()
                    .unwrap()
                    .insert(request["message"]["msg_id"].as_str().unwrap().to_owned());
                ""
            }
        }),
    );
    let hook = serve_hook(service).await;
    (hook, delivered)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_fetch_one_token_and_refresh_it_once() {
    let url = redis_url(5);
    flush(&url).await;
    let mut config = EmulatorConfig::with_app(App::new(APP_ID, SECRET));
    config.token_ttl_s = 8;
    let emu = Emulator::new(config);
    let (emu_addr, _task) = emu
        .spawn(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();

    let mut instances = Vec::new();
    for i in 0..3 {
        let config = format!(
                "data_dir = \"data\"\nadmin_token = \"{ADMIN}\"\napi_base = \"http://{emu_addr}\"\n[storage]\nbackend = \"redis\"\nredis_url = \"{url}\"\n\
                 [[account]]\nname = \"main\"\napp_id = \"{APP_ID}\"\napp_secret = \"{SECRET}\"\ntoken = \"{TOKEN}\"\n"
            );
        let name = format!("scale-{i}");
        instances.push(start_instance(&name, &config).await);
    }
    let bases: Vec<String> = instances.iter().map(|(_, base)| base.clone()).collect();
    let client = wxgate_client::http_client();
    let fetch_all = |n: usize| {
        let mut tasks = Vec::new();
        for i in 0..n {
            let request = client
                .get(format!(
                    "{}/api/accounts/main/access_token",
                    bases[i % bases.len()]
                ))
                .bearer_auth(ADMIN);
            tasks.push(tokio::spawn(async move {
                let response = request.send().await.unwrap();
                assert_eq!(response.status().as_u16(), 200);
                let body: serde_json::Value = response.json().await.unwrap();
                body["access_token"].as_str().unwrap().to_owned()
            }));
        }
        tasks
    };
    let mut tokens = std::collections::HashSet::new();
    for task in fetch_all(300) {
        tokens.insert(task.await.unwrap());
    }
    assert_eq!(tokens.len(), 1, "every instance hands out the same token");
    assert_eq!(
        emu.count("/cgi-bin/stable_token"),
        1,
        "300 requests over 3 instances, one fetch"
    );

    // The token lives 8 s and is refreshed 2 s before expiry: by one instance only.
    tokio::time::sleep(Duration::from_millis(8500)).await;
    let mut after = std::collections::HashSet::new();
    for task in fetch_all(30) {
        after.insert(task.await.unwrap());
    }
    assert_eq!(after.len(), 1, "the instances agree after the refresh");
    assert!(!after.contains(tokens.iter().next().unwrap()), "refreshed");
    assert_eq!(
        emu.count("/cgi-bin/stable_token"),
        2,
        "exactly one refresh across the instances"
    );

    for (mut child, _) in instances {
        let _ = child.kill();
        let _ = child.wait();
    }
}

#[test]
fn storage_config_rules() {
    let base = "[[account]]\nname = \"a\"\napp_id = \"wx1234567890abcdef\"\ntoken = \"tok123\"\n";
    let err = |storage: &str| {
        wxgate::config::Config::parse(&format!("{storage}\n{base}"), "t")
            .unwrap_err()
            .to_string()
    };
    assert!(err("[storage]\nbackend = \"redis\"").contains("needs redis_url"));
    assert!(
        err("[storage]\nbackend = \"redis\"\nredis_url = \"localhost:6379\"").contains("redis://")
    );
    assert!(err("[storage]\nbackend = \"etcd\"").contains("\"redb\""));
    assert!(err(
        "[storage]\nbackend = \"redis\"\nredis_url = \"redis://127.0.0.1/0\"\nreclaim_after_s = 0"
    )
    .contains("between 1 and 3600"));
    let ok = wxgate::config::Config::parse(
        &format!(
            "[storage]\nbackend = \"redis\"\nredis_url = \"redis://127.0.0.1:6379/0\"\n{base}"
        ),
        "t",
    )
    .unwrap();
    assert_eq!(
        ok.redis_url.as_ref().map(|u| {
            use secrecy::ExposeSecret;
            u.expose_secret()
        }),
        Some("redis://127.0.0.1:6379/0")
    );
    assert_eq!(ok.reclaim_after_s, 30, "the default");
}

/// The refresh lease is fenced: an instance that paused past its lease cannot
/// overwrite the token that the next lease holder stored.
#[tokio::test]
async fn a_late_lease_holder_cannot_overwrite_a_newer_token() {
    use wxgate_client::{Credential, CredentialStore};
    let url = redis_url(6);
    flush(&url).await;
    let store = wxgate::credentials::redis::RedisStore::connect(&url)
        .await
        .unwrap();
    let key = "wxgate:cred:wx1234567890abcdef:access_token";
    let first = store
        .try_lock(key, Duration::from_millis(150))
        .await
        .unwrap()
        .expect("lease granted");
    assert_eq!(
        store.try_lock(key, Duration::from_secs(5)).await.unwrap(),
        None,
        "one holder at a time"
    );
    tokio::time::sleep(Duration::from_millis(250)).await; // the first holder "pauses" past its lease
    let second = store
        .try_lock(key, Duration::from_secs(5))
        .await
        .unwrap()
        .expect("the lease expired");
    assert!(second > first, "fences increase");
    let newer = Credential {
        value: "newer".into(),
        expires_at: now() + 100,
        fetched_at: now(),
        refresh_token: None,
    };
    store.save(key, &newer, Some(second)).await.unwrap();
    let stale = Credential {
        value: "stale".into(),
        expires_at: now() + 100,
        fetched_at: now(),
        refresh_token: None,
    };
    let refused = store.save(key, &stale, Some(first)).await.unwrap_err();
    assert!(refused.to_string().contains("superseded"), "{refused}");
    assert_eq!(store.load(key).await.unwrap().unwrap().value, "newer");
    store.unlock(key, second).await.unwrap();
    assert!(
        store
            .try_lock(key, Duration::from_secs(5))
            .await
            .unwrap()
            .is_some(),
        "released"
    );
    assert!(
        wxgate::credentials::redis::RedisStore::connect("redis://127.0.0.1:1/0")
            .await
            .unwrap_err()
            .to_string()
            .contains("redis")
    );
}

/// OAuth started on one instance finishes on another: the state is signed with the
/// shared signing_key, so any instance can check it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_authorize_on_one_instance_callback_on_another() {
    let mut app = App::new(APP_ID, SECRET);
    app.oauth_domain = Some("127.0.0.1".into());
    let emu = Emulator::new(EmulatorConfig::with_app(app));
    let (emu_addr, _task) = emu
        .spawn(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let url = redis_url(7);
    flush(&url).await;
    let mut instances = Vec::new();
    for i in 0..2 {
        let config = format!(
                "data_dir = \"data\"\nadmin_token = \"{ADMIN}\"\napi_base = \"http://{emu_addr}\"\nopen_base = \"http://{emu_addr}\"\npublic_url = \"http://127.0.0.1:1\"\n\
                 [storage]\nbackend = \"redis\"\nredis_url = \"{url}\"\n\
                 [[account]]\nname = \"main\"\napp_id = \"{APP_ID}\"\napp_secret = \"{SECRET}\"\ntoken = \"{TOKEN}\"\n\
                 [account.oauth]\ndomain = \"127.0.0.1\"\nredirect_allow = [\"https://app.example.com/\"]\nsigning_key = \"shared-signing-key-0123456789abcdef\"\n"
            );
        let name = format!("scale-oauth-{i}");
        instances.push(start_instance(&name, &config).await);
    }
    let client = wxgate_client::http_client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let location =
        |response: reqwest::Response| response.headers()["location"].to_str().unwrap().to_owned();
    let start = format!(
        "{}/oauth/main/authorize?redirect=https%3A%2F%2Fapp.example.com%2F&scope=snsapi_base",
        instances[0].1
    );
    let to_wechat = location(client.get(&start).send().await.unwrap());
    let to_callback = location(client.get(&to_wechat).send().await.unwrap());
    // WeChat redirects to public_url; the load balancer sends it to instance 2.
    let on_second = to_callback.replace("http://127.0.0.1:1", &instances[1].1);
    let to_app = location(client.get(&on_second).send().await.unwrap());
    assert!(
        to_app.starts_with("https://app.example.com/?wxgate_identity=v1."),
        "{to_app}"
    );
    // The same callback replayed on instance 1: the first result, no second exchange.
    let on_first = to_callback.replace("http://127.0.0.1:1", &instances[0].1);
    assert_eq!(
        location(client.get(&on_first).send().await.unwrap()),
        to_app
    );
    assert_eq!(emu.count("/sns/oauth2/access_token"), 1);
    // The same state with another code, on instance 1: refused, the state is used.
    let replayed = on_first.replace("code=", "code=other");
    let response = client.get(&replayed).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 400);
    assert!(response.text().await.unwrap().contains("already used"));
    // Redis keeps the used state exactly until the state expires (state_ttl_s = 600).
    let state = to_callback
        .split("state=")
        .nth(1)
        .unwrap()
        .split('&')
        .next();
    let mut redis = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let ttl: i64 = redis::cmd("TTL")
        .arg(format!("wxgate:oauth:state:{}", state.unwrap()))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!((590..=601).contains(&ttl), "TTL {ttl} s");
    for (mut child, _) in instances {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// The same push on instance 1 and its retry on instance 2: one delivery, and the
/// retry gets the reply the first instance gave; a retry of a push answered from the
/// rules is recognised on the other instance too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_on_another_instance_is_not_delivered_twice() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let deliveries = Arc::new(AtomicUsize::new(0));
    let counter = deliveries.clone();
    let service = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                r#"{"reply":{"type":"text","content":"from the service"}}"#
            }
        }),
    );
    let hook = serve_hook(service).await;
    let url = redis_url(8);
    flush(&url).await;
    let mut instances = Vec::new();
    for i in 0..2 {
        let config = format!(
                "data_dir = \"data\"\nadmin_token = \"{ADMIN}\"\n[storage]\nbackend = \"redis\"\nredis_url = \"{url}\"\n\
                 [[account]]\nname = \"fwd\"\napp_id = \"{APP_ID}\"\ntoken = \"{TOKEN}\"\nencoding_aes_key = \"{KEY}\"\nmode = \"compat\"\n\
                 [account.forward]\nurl = \"{hook}\"\nsecret = \"forward-secret-0123456789\"\n\
                 [[account]]\nname = \"rules\"\napp_id = \"{APP_ID}\"\ntoken = \"{TOKEN}\"\nmode = \"plain\"\n\
                 [[account.rule]]\nwhen = {{ msg_type = \"text\" }}\nreply = {{ text = \"from the rules\" }}\n"
            );
        let name = format!("scale-fwd-{i}");
        instances.push(start_instance(&name, &config).await);
    }
    let client = wxgate_client::http_client();
    let ts = now();
    let message = wxgate_proto::push::build::text("gh_test", "oUser", ts, "retry me", 777_777);
    let mut replies = Vec::new();
    for (_, base) in &instances {
        let (status, body) = push(
            &client,
            base,
            "fwd",
            wxgate_proto::console::Mode::Safe,
            &message,
            ts,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        replies.push(
            wxgate_proto::envelope::open_reply(&crypt(), TOKEN, &body)
                .unwrap()
                .xml,
        );
    }
    assert!(
        replies.iter().all(|r| r.contains("from the service")),
        "{replies:?}"
    );
    assert_eq!(
        deliveries.load(Ordering::SeqCst),
        1,
        "one delivery across the instances"
    );

    // Answered from the rules: the retry on instance 2 is recognised as one.
    let message = wxgate_proto::push::build::text("gh_test", "oUser", ts, "hi", 888_888);
    for (_, base) in &instances {
        let (status, body) = push(
            &client,
            base,
            "rules",
            wxgate_proto::console::Mode::Plain,
            &message,
            ts,
        )
        .await;
        assert_eq!(status, 200);
        assert!(body.contains("from the rules"), "{body}");
        // The first answer is shared in the background.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let metrics = client
        .get(format!("{}/metrics", instances[1].1))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            "wxgate_requests_total{account=\"rules\",method=\"POST\",outcome=\"duplicate\"} 1"
        ),
        "{metrics}"
    );
}

/// Restart redis-server under load: every acknowledged push is still delivered (during
/// the outage the local fallback inbox takes the messages), the credential API keeps
/// answering from memory, and the queue and shared dedup resume by themselves when
/// Redis is back.
///
/// Regression: with redis's ConnectionManager, the second push after Redis died hung
/// for more than WeChat's 5 s. Every Redis step is now bounded (`RedisLink`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_under_load_loses_nothing() {
    // A redis-server of this test's own, so it can be restarted.
    let (port, start_redis) = own_redis("restart");
    let mut redis = start_redis();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let url = format!("redis://127.0.0.1:{port}/0");

    let (hook, delivered) = msg_id_service().await;
    let emu = Emulator::new(EmulatorConfig::with_app(App::new(APP_ID, SECRET)));
    let (emu_addr, _task) = emu
        .spawn(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();

    let config = format!(
            "data_dir = \"data\"\nadmin_token = \"{ADMIN}\"\napi_base = \"http://{emu_addr}\"\n[storage]\nbackend = \"redis\"\nredis_url = \"{url}\"\n\
             [[account]]\nname = \"fwd\"\napp_id = \"{APP_ID}\"\napp_secret = \"{SECRET}\"\ntoken = \"{TOKEN}\"\nmode = \"plain\"\n\
             [account.forward]\nurl = \"{hook}\"\nsecret = \"forward-secret-0123456789\"\n"
        );
    let (mut child, base) = start_instance("scale-restart", &config).await;
    let client = wxgate_client::http_client_builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let token_url = format!("{base}/api/accounts/fwd/access_token");
    let token = |client: reqwest::Client| {
        let url = token_url.clone();
        async move {
            client
                .get(url)
                .bearer_auth(ADMIN)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(token(client.clone()).await, 200);

    let mut acked = HashSet::new();
    for i in 0..120u64 {
        if i == 40 {
            let _ = redis.kill();
            let _ = redis.wait();
        }
        if i == 80 {
            redis = start_redis();
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        if i == 60 {
            assert_eq!(
                token(client.clone()).await,
                200,
                "tokens are served from memory while Redis is down"
            );
            assert_eq!(
                status(&client, &base).await["storage"]["redis"]["reachable"],
                false
            );
        }
        let ts = now();
        let msg_id = 500_000 + i;
        let (status, _) = push(
            &client,
            &base,
            "fwd",
            wxgate_proto::console::Mode::Plain,
            &wxgate_proto::push::build::text("gh_test", "oUser", ts, "x", msg_id),
            ts,
        )
        .await;
        if status == 200 {
            acked.insert(msg_id.to_string());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        acked.len(),
        120,
        "the callback path kept answering through the outage"
    );
    wait_until(Duration::from_secs(20), || {
        let lost = acked.difference(&delivered.lock().unwrap()).count();
        (lost > 0).then(|| format!("{lost} acknowledged pushes never delivered"))
    })
    .await;
    // What arrived during the outage went to the local fallback inbox (ids above
    // FALLBACK_ID_BASE) and was delivered from there; the rest went through Redis.
    let listed: serde_json::Value = client
        .get(format!("{base}/api/inbox?limit=1000"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let records = listed["records"].as_array().unwrap();
    let fallback = records
        .iter()
        .filter(|r| r["id"].as_u64().unwrap() > wxgate::inbox::FALLBACK_ID_BASE)
        .count();
    let stored: HashSet<&str> = records
        .iter()
        .map(|r| r["message"]["msg_id"].as_str().unwrap())
        .collect();
    // A Redis that answers an accept too late (its outcome unknown) leaves the message
    // stored twice, once locally; the extra record is closed as a duplicate at the
    // next renewal. So every message is stored, possibly twice.
    assert_eq!(stored.len(), 120, "{listed}");
    println!(
        "redis restart: 120 messages, {} records, {fallback} in the local fallback",
        records.len()
    );
    assert!(
        fallback > 0 && fallback < 120,
        "{fallback} of 120 taken by the local fallback"
    );
    // Redis is back: the Redis inbox works again without a restart of wxgate.
    let ts = now();
    let message = wxgate_proto::push::build::text("gh_test", "oUser", ts, "after", 999_999);
    for _ in 0..2 {
        push(
            &client,
            &base,
            "fwd",
            wxgate_proto::console::Mode::Plain,
            &message,
            ts,
        )
        .await;
    }
    let probe = redis::Client::open(url.as_str()).unwrap();
    let mut connection = probe.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("wxgate:inbox:dedup:fwd:*")
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!(
        keys.iter().any(|k| k.ends_with("m:999999")),
        "the Redis inbox is back: {keys:?}"
    );
    assert_eq!(token(client.clone()).await, 200);
    let status = status(&client, &base).await;
    assert_eq!(status["storage"]["backend"], "redis");
    assert_eq!(status["storage"]["redis"]["reachable"], true);
    assert_eq!(status["storage"]["redis"]["appendfsync"], "always");
    assert_eq!(
        status["storage"]["redis"]["warning"],
        serde_json::Value::Null,
        "persistent the way the README asks: {status}"
    );
    assert!(status["queue"]["consumer"].is_string(), "{status}");
    let _ = child.kill();
    let _ = child.wait();
    let _ = redis.kill();
    let _ = redis.wait();
}

/// What the test service saw: per delivery id, the msg_id and how many times it was
/// delivered (answered 200).
#[derive(Default)]
struct Deliveries {
    msg_ids: std::collections::HashMap<String, String>,
    delivered: std::collections::HashMap<String, usize>,
}

/// kill -9 one of three instances under forwarding load. The service fails the first
/// attempt of every even msg_id, so the killed instance dies holding deliveries that
/// wait for their retry; the survivors take them over after reclaim_after_s and every
/// acknowledged message is delivered. Prints lost (must be 0) and repeats.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_one_instance_under_forwarding_load_survivors_deliver_everything() {
    let seen = Arc::new(Mutex::new(Deliveries::default()));
    let service_seen = seen.clone();
    let service = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let seen = service_seen.clone();
            async move {
                let request: serde_json::Value = serde_json::from_str(&body).unwrap();
                let msg_id = request["message"]["msg_id"].as_str().unwrap().to_owned();
                let delivery = request["delivery_id"].as_str().unwrap().to_owned();
                let first = headers["x-wxgate-attempt"] == "1";
                tokio::time::sleep(Duration::from_millis(20)).await;
                if first && msg_id.parse::<u64>().unwrap() % 2 == 0 {
                    return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                }
                let mut seen = seen.lock().unwrap();
                seen.msg_ids.insert(delivery.clone(), msg_id);
                *seen.delivered.entry(delivery).or_default() += 1;
                axum::http::StatusCode::OK
            }
        }),
    );
    let hook = serve_hook(service).await;
    let url = redis_url(13);
    flush(&url).await;
    let mut instances = Vec::new();
    for i in 0..3 {
        let config = format!(
            "data_dir = \"data\"\nadmin_token = \"{ADMIN}\"\n[storage]\nbackend = \"redis\"\nredis_url = \"{url}\"\nreclaim_after_s = 2\n\
             [[account]]\nname = \"fwd\"\napp_id = \"{APP_ID}\"\ntoken = \"{TOKEN}\"\nmode = \"plain\"\n\
             [account.forward]\nurl = \"{hook}\"\nsecret = \"forward-secret-0123456789\"\ntimeout_ms = 300\n"
        );
        instances.push(start_instance(&format!("scale-kill-{i}"), &config).await);
    }
    let bases: Vec<String> = instances.iter().map(|(_, base)| base.clone()).collect();
    let killed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(HashSet::new()));
    let client = wxgate_client::http_client_builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let stop_at = std::time::Instant::now() + Duration::from_secs(3);
    let mut senders = Vec::new();
    for sender in 0..6u64 {
        let (bases, killed, acked, client) =
            (bases.clone(), killed.clone(), acked.clone(), client.clone());
        senders.push(tokio::spawn(async move {
            let mut n = 0u64;
            while std::time::Instant::now() < stop_at {
                n += 1;
                let msg_id = 1_000_000 + sender * 100_000 + n;
                let mut target = (msg_id % 3) as usize;
                if target == 1 && killed.load(std::sync::atomic::Ordering::SeqCst) {
                    target = 2;
                }
                let ts = now();
                let request = push_request(
                    wxgate_proto::console::Mode::Plain,
                    &wxgate_proto::push::build::text("gh_test", "oUser", ts, "load", msg_id),
                    ts,
                );
                let url = format!("{}/wx/fwd?{}", bases[target], request.query);
                if let Ok(response) = client.post(url).body(request.body).send().await {
                    if response.status() == 200 {
                        acked.lock().unwrap().insert(msg_id.to_string());
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (mut victim, _) = instances.remove(1);
    victim.kill().unwrap(); // SIGKILL
    victim.wait().unwrap();
    killed.store(true, std::sync::atomic::Ordering::SeqCst);
    for sender in senders {
        sender.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    let (lost, repeats) = loop {
        let (delivered_ids, repeats) = {
            let seen = seen.lock().unwrap();
            let ids: HashSet<String> = seen.msg_ids.values().cloned().collect();
            let repeats: usize = seen.delivered.values().map(|n| n - 1).sum();
            (ids, repeats)
        };
        let lost = acked.difference(&delivered_ids).count();
        if lost == 0 || std::time::Instant::now() > deadline {
            break (lost, repeats);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let client = wxgate_client::http_client();
    let mut reclaimed = 0u64;
    for (_, base) in &instances {
        let metrics = client
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        reclaimed += metrics
            .lines()
            .find_map(|l| l.strip_prefix("wxgate_queue_reclaimed_total "))
            .and_then(|v| v.parse::<u64>().ok())
            .expect("the survivors report wxgate_queue_reclaimed_total");
    }
    println!(
        "kill -9 one of 3 instances under forwarding load: {} acknowledged, lost {lost}, repeats {repeats} (same delivery id), {reclaimed} deliveries taken over by the survivors",
        acked.len()
    );
    assert!(
        acked.len() > 100,
        "the load ran: {} acknowledged",
        acked.len()
    );
    assert_eq!(lost, 0, "every acknowledged message is delivered");
    assert!(
        reclaimed > 0,
        "the killed instance held deliveries that the survivors took over"
    );
    for (mut child, _) in instances {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// A push whose client hangs up while wxgate handles it, then WeChat's retry of it:
/// the message is delivered, at once.
///
/// Regressions: (1) the push claimed the message in Redis before storing it, so when
/// the request was cancelled in between, the retry was answered `success` as a
/// duplicate and the message was never stored; (2) a request cancelled while the
/// message was being stored left a queue entry that nothing delivered until the next
/// renewal (reclaim_after_s / 3). Storing and starting the delivery now run apart from
/// the request, and the Redis inbox itself recognises retries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_abandoned_by_the_client_and_retried_are_delivered_at_once() {
    let (hook, delivered) = msg_id_service().await;
    let url = redis_url(14);
    flush(&url).await;
    let config = format!(
        "data_dir = \"data\"\nadmin_token = \"{ADMIN}\"\n[storage]\nbackend = \"redis\"\nredis_url = \"{url}\"\nreclaim_after_s = 60\n\
         [[account]]\nname = \"fwd\"\napp_id = \"{APP_ID}\"\ntoken = \"{TOKEN}\"\nmode = \"plain\"\n\
         [account.forward]\nurl = \"{hook}\"\nsecret = \"forward-secret-0123456789\"\n"
    );
    let (mut child, base) = start_instance("scale-abandoned", &config).await;
    let client = wxgate_client::http_client();
    // The test Redis runs without appendonly: the status says what that risks.
    let warning = status(&client, &base).await["storage"]["redis"]["warning"].clone();
    assert!(
        warning
            .as_str()
            .is_some_and(|w| w.contains("appendonly yes")),
        "{warning}"
    );
    let addr = base.trim_start_matches("http://").to_owned();
    let mut tasks = Vec::new();
    for i in 0..200u64 {
        let (addr, base, client) = (addr.clone(), base.clone(), client.clone());
        tasks.push(tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let ts = now();
            let message =
                wxgate_proto::push::build::text("gh_test", "oUser", ts, "x", 3_000_000 + i);
            // The push, written whole on a raw socket that is closed at once: the server
            // sees the client gone while it handles it.
            let request = push_request(wxgate_proto::console::Mode::Plain, &message, ts);
            let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
            let head = format!(
                "POST /wx/fwd?{} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\n\r\n",
                request.query,
                request.body.len()
            );
            stream.write_all(head.as_bytes()).await.unwrap();
            stream.write_all(request.body.as_bytes()).await.unwrap();
            tokio::time::sleep(Duration::from_micros(50 * (i % 20))).await;
            drop(stream);
            // WeChat got no answer, so it retries.
            tokio::time::sleep(Duration::from_millis(20)).await;
            let (status, body) = push(
                &client,
                &base,
                "fwd",
                wxgate_proto::console::Mode::Plain,
                &message,
                ts,
            )
            .await;
            assert_eq!((status, body.as_str()), (200, "success"));
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    // Well under the 20 s until the first renewal would find a forgotten entry.
    wait_until(Duration::from_secs(5), || {
        let missing = 200 - delivered.lock().unwrap().len();
        (missing > 0).then(|| format!("{missing} of 200 acknowledged pushes not delivered"))
    })
    .await;
    let _ = child.kill();
    let _ = child.wait();
}

/// Redis down before any token was fetched: with the classic endpoint, a refresh
/// without the lease would invalidate the other instances' token, so the credential
/// call fails with 503 and says why; once Redis is back, it works without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_classic_refresh_waits_for_redis() {
    let (port, start_redis) = own_redis("classic");
    let mut redis = start_redis();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let emu = Emulator::new(EmulatorConfig::with_app(App::new(APP_ID, SECRET)));
    let (emu_addr, _task) = emu
        .spawn(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let config = format!(
        "data_dir = \"data\"\nadmin_token = \"{ADMIN}\"\napi_base = \"http://{emu_addr}\"\ntoken_endpoint = \"classic\"\n\
         [storage]\nbackend = \"redis\"\nredis_url = \"redis://127.0.0.1:{port}/0\"\n\
         [[account]]\nname = \"a\"\napp_id = \"{APP_ID}\"\napp_secret = \"{SECRET}\"\ntoken = \"{TOKEN}\"\n"
    );
    let (_child, base) = start_instance("scale-classic", &config).await;
    let _ = redis.kill();
    let _ = redis.wait();
    let client = wxgate_client::http_client();
    let token = || async {
        let response = client
            .get(format!("{base}/api/accounts/a/access_token"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    };
    let (status, body) = token().await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("token_endpoint = \\\"stable\\\"") && body.contains("redis"),
        "{body}"
    );
    assert_eq!(
        emu.count("/cgi-bin/token"),
        0,
        "no refresh without the lease"
    );
    redis = start_redis();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, body) = token().await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(emu.count("/cgi-bin/token"), 1);
    drop(redis);
}
