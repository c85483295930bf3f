//! Live reload through the real binary: `wxgate reload` and SIGHUP swap rules and
//! accounts at once, a broken file changes nothing, restart-only settings are named,
//! ten reloads under load fail no request, and an account a reload removes still gets
//! what its inbox holds delivered.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::tools::{err, out, temp_dir, wxgate};
use common::*;
use wxgate_proto::console::Mode;
use wxgate_proto::push::build;

const ADMIN: &str = "reload-admin-token-0123456789";

/// An account `name` in plain mode whose text rule answers `answer`.
fn account(name: &str, answer: &str) -> String {
    format!(
        "[[account]]\nname = \"{name}\"\napp_id = \"{APP_ID}\"\ntoken = \"{TOKEN}\"\nmode = \"plain\"\n\
         [[account.rule]]\nwhen = {{ msg_type = \"text\" }}\nreply = {{ text = \"{answer}\" }}\n"
    )
}

fn write_config(dir: &Path, body: &str) {
    std::fs::write(
        dir.join("wxgate.toml"),
        format!("admin_token = \"{ADMIN}\"\n{body}"),
    )
    .unwrap();
}

fn text(output: &Output) -> String {
    format!("{}{}", out(output), err(output))
}

/// The reply to a text pushed to `account` (its MsgId from `id`).
async fn reply(client: &reqwest::Client, base: &str, account: &str, id: u64) -> (u16, String) {
    let xml = build::text("gh_test", "oUser", now(), "hello", id);
    push(client, base, account, Mode::Plain, &xml, now()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_swaps_rules_and_accounts_and_a_broken_file_changes_nothing() {
    let dir = temp_dir("swap");
    write_config(&dir, &account("shop", "first rules"));
    let (server, base) = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || start_binary(&dir))
            .await
            .unwrap()
    };
    let client = wxgate_client::http_client();
    let (status, body) = reply(&client, &base, "shop", 1).await;
    assert_eq!(status, 200);
    assert!(body.contains("first rules"), "{body}");

    // New rules and a second account, through `wxgate reload`.
    write_config(
        &dir,
        &format!(
            "{}{}",
            account("shop", "second rules"),
            account("desk", "desk rules")
        ),
    );
    let reloaded = wxgate(&dir, &["reload"]);
    assert_eq!(reloaded.status.code(), Some(0), "{}", text(&reloaded));
    assert!(
        text(&reloaded).contains("added: desk"),
        "{}",
        text(&reloaded)
    );
    assert!(reply(&client, &base, "shop", 2)
        .await
        .1
        .contains("second rules"));
    assert!(reply(&client, &base, "desk", 3)
        .await
        .1
        .contains("desk rules"));
    // WeChat's retry of a message answered before the reload gets the same answer.
    assert!(reply(&client, &base, "shop", 1)
        .await
        .1
        .contains("first rules"));
    let metrics = client.get(format!("{base}/metrics")).send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    assert!(
        metrics.contains("account=\"desk\""),
        "the new account is counted"
    );

    // A file with two errors: both are named with their lines, nothing changes.
    write_config(
        &dir,
        &account("shop", "broken")
            .replace(TOKEN, "ab")
            .replace("mode = \"plain\"", "mode = \"Plain\""),
    );
    let refused = wxgate(&dir, &["reload"]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(text(&refused).contains("nothing was reloaded"));
    // The server refuses it the same way (here asked without the CLI).
    let answer = client
        .post(format!("{base}/api/reload"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 400);
    let said = answer.text().await.unwrap();
    assert!(
        said.contains("wxgate.toml:5: account[0].token")
            && said.contains("Token has 2 characters")
            && said.contains("wxgate.toml:6: account[0].mode"),
        "{said}"
    );
    assert!(reply(&client, &base, "shop", 4)
        .await
        .1
        .contains("second rules"));
    assert_eq!(reply(&client, &base, "desk", 5).await.0, 200);

    // SIGHUP reloads too; a broken file under SIGHUP changes nothing either.
    let hup = |server: &KillOnDrop| {
        let sent = Command::new("kill")
            .args(["-HUP", &server.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
    };
    hup(&server);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(reply(&client, &base, "shop", 6)
        .await
        .1
        .contains("second rules"));
    write_config(&dir, &account("shop", "third rules"));
    hup(&server);
    wait_for_reply(&client, &base, "third rules").await;
    assert_eq!(
        reply(&client, &base, "desk", 7).await.0,
        404,
        "desk was removed"
    );

    // Restart-only settings are named, and the rest applies (`listen` in the file
    // would not be: `serve --listen` overrides it).
    write_config(
        &dir,
        &format!(
            "daily_token_quota = 10\n[http]\nidle_timeout_s = 5\n{}",
            account("shop", "fourth rules")
        ),
    );
    let partial = wxgate(&dir, &["reload", "--url", &base]);
    let said = text(&partial);
    assert_eq!(partial.status.code(), Some(0), "{said}");
    assert!(
        said.contains("needs a restart to take effect: daily_token_quota")
            && said.contains("needs a restart to take effect: [http]"),
        "{said}"
    );
    assert!(reply(&client, &base, "shop", 8)
        .await
        .1
        .contains("fourth rules"));
    drop(server);
}

/// Pushes new texts until the reply is `answer` (a SIGHUP is handled asynchronously).
async fn wait_for_reply(client: &reqwest::Client, base: &str, answer: &str) {
    for id in 100..150 {
        if reply(client, base, "shop", id).await.1.contains(answer) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the reply never became {answer:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_reloads_under_load_fail_no_request() {
    let dir = temp_dir("load");
    write_config(&dir, &account("shop", "rules 0"));
    let (server, base) = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || start_binary(&dir))
            .await
            .unwrap()
    };
    let stop = Arc::new(AtomicBool::new(false));
    let (sent, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut load = Vec::new();
    for worker in 0..8u64 {
        let (base, stop, sent, failed) = (base.clone(), stop.clone(), sent.clone(), failed.clone());
        load.push(tokio::spawn(async move {
            let client = wxgate_client::http_client();
            let mut id = worker * 1_000_000;
            while !stop.load(Ordering::SeqCst) {
                id += 1;
                let (status, body) = reply(&client, &base, "shop", id).await;
                sent.fetch_add(1, Ordering::SeqCst);
                if status != 200 || !body.contains("rules ") {
                    failed.fetch_add(1, Ordering::SeqCst);
                    eprintln!("failed: {status} {body}");
                }
            }
        }));
    }
    for round in 1..=10 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        write_config(&dir, &account("shop", &format!("rules {round}")));
        let dir = dir.clone();
        let reloaded = tokio::task::spawn_blocking(move || wxgate(&dir, &["reload"]))
            .await
            .unwrap();
        assert_eq!(reloaded.status.code(), Some(0), "{}", text(&reloaded));
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    stop.store(true, Ordering::SeqCst);
    for worker in load {
        worker.await.unwrap();
    }
    let (sent, failed) = (sent.load(Ordering::SeqCst), failed.load(Ordering::SeqCst));
    assert!(sent > 100, "only {sent} requests ran beside the reloads");
    assert_eq!(failed, 0, "{failed} of {sent} requests failed");
    let client = wxgate_client::http_client();
    assert!(reply(&client, &base, "shop", 999_999_999)
        .await
        .1
        .contains("rules 10"));
    eprintln!("{sent} requests beside 10 reloads, {failed} failed");
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_a_reload_removes_still_gets_its_inbox_delivered() {
    let up = Arc::new(AtomicBool::new(false));
    let delivered = Arc::new(AtomicU64::new(0));
    let hook = {
        let (up, delivered) = (up.clone(), delivered.clone());
        serve_hook(axum::Router::new().route(
            "/hook",
            axum::routing::post(move || {
                let (up, delivered) = (up.clone(), delivered.clone());
                async move {
                    if up.load(Ordering::SeqCst) {
                        delivered.fetch_add(1, Ordering::SeqCst);
                        axum::http::StatusCode::OK
                    } else {
                        axum::http::StatusCode::SERVICE_UNAVAILABLE
                    }
                }
            }),
        ))
        .await
    };
    let dir = temp_dir("removed");
    let forwarded = format!(
        "[[account]]\nname = \"old\"\napp_id = \"{APP_ID}\"\ntoken = \"{TOKEN}\"\nmode = \"plain\"\n\
         [account.forward]\nurl = \"{hook}\"\nsecret = \"forward-secret-0123456789\"\nmax_backoff_s = 1\n"
    );
    write_config(&dir, &forwarded);
    let (server, base) = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || start_binary(&dir))
            .await
            .unwrap()
    };
    let client = wxgate_client::http_client();
    let (status, body) = reply(&client, &base, "old", 1).await;
    assert_eq!(
        (status, body.as_str()),
        (200, "success"),
        "stored, the service down"
    );

    // The account is renamed: `old` is gone from the file.
    write_config(&dir, &forwarded.replace("name = \"old\"", "name = \"new\""));
    let reloaded = wxgate(&dir, &["reload"]);
    assert!(text(&reloaded).contains("removed"), "{}", text(&reloaded));
    assert_eq!(reply(&client, &base, "old", 2).await.0, 404);
    up.store(true, Ordering::SeqCst);
    let delivered_now = delivered.clone();
    wait_until(Duration::from_secs(10), move || {
        (delivered_now.load(Ordering::SeqCst) == 0)
            .then(|| "the removed account's pending message was not delivered".to_owned())
    })
    .await;
    let listed = wxgate(&dir, &["inbox", "list", "--json"]);
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed["counts"]["delivered"], 1, "{listed:#}");
    assert_eq!(listed["counts"]["pending"], 0, "{listed:#}");
    drop(server);
}
