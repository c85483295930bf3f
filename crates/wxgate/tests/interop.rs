//! Interop with wechatpy: a Python client, with wechatpy doing the signing and the
//! crypto, drives a running wxgate in plain, compat and safe mode and decrypts our
//! replies. A second client, written from the protocol with `cryptography` alone, does
//! the same as WeChat with a mini-program's JSON pushes. `scripts/test.sh` installs both
//! libraries into `target/interop-venv`.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::*;

fn interop_python() -> PathBuf {
    if let Some(path) = std::env::var_os("WXGATE_INTEROP_PYTHON") {
        return PathBuf::from(path);
    }
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = workspace.join("target/interop-venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `bash scripts/test.sh`, which installs wechatpy for this test",
        python.display()
    );
    python
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wechatpy_drives_wxgate_in_every_mode() {
    let server = TestServer::start(&config_text("")).await;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/wechatpy_client.py");
    let python = interop_python();
    let base = server.base.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .args([base.as_str(), TOKEN, KEY, APP_ID])
            .output()
            .expect("python runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "wechatpy interop failed:\n{stdout}\n{stderr}"
    );
    let oks = stdout.lines().filter(|l| l.starts_with("OK")).count();
    assert!(
        oks >= 14,
        "expected every check to run, got {oks}:\n{stdout}"
    );
    assert!(stdout.contains("0 failed"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_independent_client_drives_json_pushes_in_every_mode() {
    let server = TestServer::start(&mini_config_text("")).await;
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/miniprogram_json_client.py");
    let python = interop_python();
    let base = server.base.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .args([base.as_str(), TOKEN, KEY, APP_ID])
            .output()
            .expect("python runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "JSON interop failed:\n{stdout}\n{stderr}"
    );
    let oks = stdout.lines().filter(|l| l.starts_with("OK")).count();
    assert_eq!(oks, 17, "expected every check to run:\n{stdout}");
    assert!(stdout.contains("0 failed"));
    server.stop().await;
}

/// wechatpy's WeCom crypto (`wechatpy.enterprise.crypto.WeChatCrypto`) plays WeCom
/// against a wxgate WeCom account: URL verification and a message round trip.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wechatpy_enterprise_drives_a_wecom_account() {
    const CORP_ID: &str = "ww3f2e1d0c9b8a7654";
    let server = TestServer::start(&format!(
        "[[account]]\nname = \"corp\"\nkind = \"wecom\"\ncorp_id = \"{CORP_ID}\"\nagent_id = 1000002\n\
         token = \"{TOKEN}\"\nencoding_aes_key = \"{KEY}\"\n\
         [[account.rule]]\nwhen = {{ msg_type = \"text\" }}\nreply = {{ text = \"echo {{content}}\" }}\n"
    ))
    .await;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/wecom_client.py");
    let python = interop_python();
    let base = server.base.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .args([base.as_str(), TOKEN, KEY, CORP_ID])
            .output()
            .expect("python runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "WeCom interop failed:\n{stdout}\n{stderr}"
    );
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("OK")).count(),
        7,
        "{stdout}"
    );
    server.stop().await;
}
