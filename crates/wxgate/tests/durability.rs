//! What a restart and a crash may repeat, and what retries do to the inbox file, against
//! the real binary: after SIGTERM nothing delivered is delivered again; after kill -9
//! only the deliveries of the last group-commit window (or in flight) repeat; hours of
//! retries do not grow `wxgate.redb` past a small factor of the live data.

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::hook::Hook;
use common::*;
use wxgate_proto::console::Mode;
use wxgate_proto::push::build;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wxgate-durability-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes the config of one forwarding account (`fwd`, plaintext) into `dir`.
fn write_config(dir: &Path, hook: &str, timeout_ms: u64, max_backoff_s: u64) {
    let config = format!(
        "data_dir = \"{}\"\nadmin_token = \"admin-token-0123456789\"\n\
         [[account]]\nname = \"fwd\"\napp_id = \"{APP_ID}\"\ntoken = \"{TOKEN}\"\nmode = \"plain\"\n\
         [account.forward]\nurl = \"{hook}\"\nsecret = \"forward-secret-0123456789\"\ntimeout_ms = {timeout_ms}\nmax_age_s = 86400\nmax_backoff_s = {max_backoff_s}\n",
        dir.join("data").display()
    );
    std::fs::write(dir.join("wxgate.toml"), config).unwrap();
}

async fn start(dir: &Path) -> (KillOnDrop, String) {
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || start_binary(&dir))
        .await
        .unwrap()
}

/// Sends SIGTERM and waits for the process to exit; asserts a clean exit.
async fn terminate(mut child: KillOnDrop) {
    let status = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || child.0.wait().unwrap())
        .await
        .unwrap();
    assert!(exit.success(), "SIGTERM is a clean stop: {exit:?}");
}

/// Pushes text message `msg_id`; returns the status.
async fn push_one(client: &reqwest::Client, base: &str, msg_id: u64) -> u16 {
    let ts = now();
    let xml = build::text("gh_test", "oUser", ts, &format!("m{msg_id}"), msg_id);
    push(client, base, "fwd", Mode::Plain, &xml, ts).await.0
}

/// Pushes `msg_ids` with `concurrency` requests at a time; returns those answered 200.
async fn push_all(base: &str, msg_ids: Vec<u64>, concurrency: usize) -> HashSet<String> {
    let client = wxgate_client::http_client();
    let queue = Arc::new(Mutex::new(msg_ids));
    let acked = Arc::new(Mutex::new(HashSet::new()));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, base, queue, acked) = (
            client.clone(),
            base.to_owned(),
            queue.clone(),
            acked.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let Some(msg_id) = queue.lock().unwrap().pop() else {
                    return;
                };
                if push_one(&client, &base, msg_id).await == 200 {
                    acked.lock().unwrap().insert(msg_id.to_string());
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    acked
}

async fn wait_delivered(hook: &Hook, expected: &HashSet<String>, timeout: Duration) {
    wait_until(timeout, || {
        let delivered = hook.delivered_msg_ids();
        let missing = expected.difference(&delivered).count();
        (missing > 0).then(|| format!("{missing} of {} not delivered", expected.len()))
    })
    .await;
}

/// SIGTERM right after the last delivery, then `serve` again, twice: nothing delivered
/// (with a passive reply, or after retries) is delivered a second time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_restart_repeats_no_delivery() {
    let hook = Hook::start().await;
    let dir = temp_dir("sigterm");
    write_config(&dir, &hook.url, 2000, 1);
    let (child, base) = start(&dir).await;
    // Ten messages while the service is down: delivered later, by retries.
    hook.up.store(false, Ordering::Relaxed);
    let retried = push_all(&base, (1..=10).collect(), 4).await;
    assert_eq!(retried.len(), 10);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    hook.up.store(true, Ordering::Relaxed);
    wait_delivered(&hook, &retried, Duration::from_secs(20)).await;
    // Forty with a passive reply, the last ones right before the signal.
    let passive = push_all(&base, (11..=50).collect(), 8).await;
    assert_eq!(passive.len(), 40);
    let mut all = retried.clone();
    all.extend(passive);
    wait_delivered(&hook, &all, Duration::from_secs(20)).await;
    let retries = hook
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|d| d.attempt > 1)
        .count();
    assert!(retries > 0, "some deliveries went through retries");
    terminate(child).await;
    for _ in 0..2 {
        let (child, _base) = start(&dir).await;
        // Long enough for the worker to resend anything it believed pending.
        tokio::time::sleep(Duration::from_secs(2)).await;
        terminate(child).await;
    }
    let repeats = hook.repeats();
    println!(
        "SIGTERM: {} delivered ({} after retries), 2 restarts, repeats {}",
        all.len(),
        retries,
        repeats.values().map(|n| n - 1).sum::<usize>()
    );
    assert!(
        repeats.is_empty(),
        "delivered again after SIGTERM: {repeats:?}"
    );
}

/// Kill -9 half a second after the load stopped, while the last deliveries are still
/// finishing: nothing acknowledged is lost, and only deliveries the service answered
/// within the last group-commit window before the kill (or after it: in flight) repeat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_repeats_only_the_last_group_commit_window() {
    let hook = Hook::start().await;
    hook.delay_ms.store(600, Ordering::Relaxed);
    let dir = temp_dir("kill9");
    write_config(&dir, &hook.url, 50, 1);
    let (mut child, base) = start(&dir).await;
    let client = wxgate_client::http_client();
    let acked = Arc::new(Mutex::new(HashSet::new()));
    let mut tasks = Vec::new();
    for i in 0..200u64 {
        let (client, base, acked) = (client.clone(), base.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(i * 10)).await;
            if push_one(&client, &base, 1000 + i).await == 200 {
                acked.lock().unwrap().insert((1000 + i).to_string());
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    // Deliveries take 600 ms: they finish over the next half second, and some are in
    // flight at the kill.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let killed_at = Instant::now();
    child.kill().unwrap();
    let _ = child.wait();
    let before = hook.log.lock().unwrap().len();
    let acked = acked.lock().unwrap().clone();
    assert_eq!(acked.len(), 200);
    let (_child, _base) = start(&dir).await;
    wait_delivered(&hook, &acked, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let repeats = hook.repeats();
    // Age at the kill of each repeated delivery's first answer (negative: in flight).
    let ages: Vec<i64> = repeats
        .keys()
        .map(|id| {
            let first = hook.first_answer(id).unwrap();
            match killed_at.checked_duration_since(first) {
                Some(age) => age.as_millis() as i64,
                None => -(first.duration_since(killed_at).as_millis() as i64),
            }
        })
        .collect();
    for id in repeats.keys() {
        let answers: Vec<String> = hook
            .log
            .lock()
            .unwrap()
            .iter()
            .filter(|d| &d.id == id)
            .map(|d| {
                format!(
                    "attempt {} at {:+} ms",
                    d.attempt,
                    d.at.duration_since(killed_at).as_millis() as i64
                        - killed_at.duration_since(d.at).as_millis() as i64
                )
            })
            .collect();
        println!("  repeated {id}: {}", answers.join(", "));
    }
    let oldest = ages.iter().copied().max().unwrap_or(0);
    println!(
        "kill -9: {} acknowledged, {before} delivered before the kill, lost 0, repeats {} (oldest answered {oldest} ms before the kill; window {} ms)",
        acked.len(),
        repeats.len(),
        wxgate::inbox::GROUP_COMMIT_WINDOW.as_millis()
    );
    // The window, plus time for the answer to reach wxgate and the commit to run.
    let bound = wxgate::inbox::GROUP_COMMIT_WINDOW.as_millis() as i64 + 150;
    assert!(
        oldest <= bound,
        "a delivery answered {oldest} ms before the kill was repeated (bound {bound} ms): {ages:?}"
    );
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

async fn retries_total(base: &str) -> u64 {
    let text = wxgate_client::http_client()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("wxgate_forward_retries_total "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// 3000 messages pending with the service down and a 1 s retry schedule: a minute of
/// retries (about 60 rounds, over 100,000 record rewrites) leaves the file within a
/// small factor of its size with the same records after the first round.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_do_not_grow_the_inbox_file() {
    // A port nobody listens on: every attempt fails at once.
    let down = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/hook", listener.local_addr().unwrap())
    };
    let dir = temp_dir("growth");
    write_config(&dir, &down, 1000, 1);
    let (child, base) = start(&dir).await;
    let file = dir.join("data/wxgate.redb");
    let acked = push_all(&base, (1..=3000).collect(), 32).await;
    assert_eq!(acked.len(), 3000);
    // One round of retries so the records have their steady size.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (size_before, rss_before, retries_before) = (
        file_size(&file),
        common::rss_kb(child.id()).unwrap_or(0),
        retries_total(&base).await,
    );
    let mut samples = Vec::new();
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_secs(10)).await;
        samples.push(file_size(&file));
    }
    let largest = samples.iter().copied().max().unwrap_or(0);
    let retries = retries_total(&base).await - retries_before;
    let (size_after, rss_after) = (file_size(&file), common::rss_kb(child.id()).unwrap_or(0));
    println!(
        "inbox growth, 3000 pending, 60 s of retries ({retries} attempts): wxgate.redb {:.1} MB -> {:.1} MB (every 10 s: {}); RSS {} -> {} MiB",
        size_before as f64 / 1e6,
        size_after as f64 / 1e6,
        samples
            .iter()
            .map(|s| format!("{:.1}", *s as f64 / 1e6))
            .collect::<Vec<_>>()
            .join(" "),
        rss_before / 1024,
        rss_after / 1024
    );
    assert!(
        retries >= 30_000,
        "the retries ran: {retries} attempts in 60 s"
    );
    assert!(
        largest <= size_before * 3,
        "wxgate.redb grew from {size_before} to {largest} bytes"
    );
    terminate(child).await;
}
