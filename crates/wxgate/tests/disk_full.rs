//! A full disk, for real: `data_dir` on a small tmpfs (tests run as root; a refused
//! mount fails the test). Pushes get 503 and `/healthz` says why while the inbox cannot
//! commit; once space is freed, the inbox and the credential store work again without a
//! restart, and nothing acknowledged is lost.

mod common;

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::hook::Hook;
use common::*;
use wxgate_emu::{App, Emulator, EmulatorConfig};
use wxgate_proto::console::Mode;
use wxgate_proto::push::build;

const SECRET: &str = "0123456789abcdef0123456789abcdef";
const ADMIN: &str = "admin-token-0123456789";

/// A mounted tmpfs, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        let _ = Command::new("umount").arg(dir).output();
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).unwrap();
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .expect("mount runs");
        assert!(
            output.status.success(),
            "cannot mount a tmpfs at {} (this test needs root): {}",
            dir.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        Tmpfs(dir.to_owned())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes zeros to `path` until the file system refuses.
fn fill(path: &Path) -> u64 {
    let mut file = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    let mut written = 0;
    loop {
        match file.write(&chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => written += n as u64,
        }
    }
    let _ = file.sync_all();
    written
}

async fn push_one(client: &reqwest::Client, base: &str, msg_id: u64) -> (u16, String) {
    let ts = now();
    let xml = build::text("gh_test", "oUser", ts, &format!("m{msg_id}"), msg_id);
    push(client, base, "fwd", Mode::Plain, &xml, ts).await
}

async fn healthz(client: &reqwest::Client, base: &str) -> (u16, String) {
    let response = client.get(format!("{base}/healthz")).send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_recovers_without_a_restart() {
    let hook = Hook::start().await;
    let emu = Emulator::new(EmulatorConfig::with_app(App::new(APP_ID, SECRET)));
    let (emu_addr, _task) = emu
        .spawn(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let root = std::env::temp_dir().join(format!("wxgate-diskfull-{}", std::process::id()));
    std::fs::create_dir_all(&root).unwrap();
    let mount = Tmpfs::mount(&root.join("disk"), "4m");
    let config = format!(
        "data_dir = \"{}\"\nadmin_token = \"{ADMIN}\"\napi_base = \"http://{emu_addr}\"\n\
         [[account]]\nname = \"fwd\"\napp_id = \"{APP_ID}\"\napp_secret = \"{SECRET}\"\ntoken = \"{TOKEN}\"\nmode = \"plain\"\n\
         [account.forward]\nurl = \"{}\"\nsecret = \"forward-secret-0123456789\"\ntimeout_ms = 2000\n",
        mount.0.join("data").display(),
        hook.url
    );
    std::fs::write(root.join("wxgate.toml"), config).unwrap();
    let dir = root.clone();
    let (_child, base) = tokio::task::spawn_blocking(move || start_binary(&dir))
        .await
        .unwrap();
    let client = wxgate_client::http_client();
    let mut acked = HashSet::new();
    for msg_id in 1..=20 {
        assert_eq!(push_one(&client, &base, msg_id).await.0, 200);
        acked.insert(msg_id.to_string());
    }
    assert_eq!(healthz(&client, &base).await, (200, "ok".to_owned()));

    // Fill the disk, then push until the inbox refuses.
    let filler = mount.0.join("filler");
    let filled = fill(&filler);
    let mut msg_id = 20;
    let refused = loop {
        msg_id += 1;
        assert!(
            msg_id < 5000,
            "the inbox never refused a push on a full disk"
        );
        let (status, body) = push_one(&client, &base, msg_id).await;
        match status {
            200 => {
                acked.insert(msg_id.to_string());
            }
            503 => break body,
            other => panic!("push on a full disk: {other} {body}"),
        }
    };
    let (status, reason) = healthz(&client, &base).await;
    println!(
        "full disk ({} KiB of filler): {} pushes acknowledged, then 503 ({refused}); /healthz {status}: {reason}",
        filled / 1024,
        acked.len()
    );
    assert_eq!(
        status, 503,
        "/healthz while the inbox cannot commit: {reason}"
    );
    assert!(reason.contains("cannot commit"), "{reason}");
    // A few seconds later, after reopen attempts on the full disk: /healthz and the
    // pushes still agree.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(1200)).await;
        msg_id += 1;
        let (pushed, _) = push_one(&client, &base, msg_id).await;
        if pushed == 200 {
            acked.insert(msg_id.to_string());
        }
        let (health, reason) = healthz(&client, &base).await;
        println!("still full: push {pushed}, /healthz {health} {reason}");
        assert_eq!(pushed, 503, "a push on a full disk");
        assert_eq!(health, 503, "/healthz on a full disk: {reason}");
    }

    // Free the space: the database recovers by itself, with no push to trigger it.
    std::fs::remove_file(&filler).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = healthz(&client, &base).await;
        if status == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "/healthz still {status} 10 s after space was freed: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for _ in 0..20 {
        msg_id += 1;
        let (status, body) = push_one(&client, &base, msg_id).await;
        assert_eq!(status, 200, "a push after recovery: {body}");
        acked.insert(msg_id.to_string());
    }
    // The credential store shares the database: a token fetched now is stored.
    let failures = metric(&client, &base, "wxgate_credential_store_failures_total").await;
    let token = client
        .get(format!("{base}/api/accounts/fwd/access_token"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(token.status().as_u16(), 200);
    assert_eq!(
        metric(&client, &base, "wxgate_credential_store_failures_total").await,
        failures,
        "the credential store writes again"
    );
    wait_until(Duration::from_secs(20), || {
        let delivered = hook.delivered_msg_ids();
        let lost: Vec<_> = acked.difference(&delivered).collect();
        (!lost.is_empty()).then(|| format!("acknowledged, not delivered: {lost:?}"))
    })
    .await;
    println!(
        "recovered without a restart: {} acknowledged, all delivered",
        acked.len()
    );
}
