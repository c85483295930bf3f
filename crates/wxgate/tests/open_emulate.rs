//! `wxgate emulate` (the real binary) as a third-party platform's WeChat: it pushes
//! tickets to the notify URL at the interval given, and the component token it hands
//! out comes from the ticket wxgate stored.

mod common;

use std::time::Duration;

use common::*;
use wxgate_client::CredentialKind;

const COMPONENT: &str = "wx134c8103faa5a59e";
const SECRET: &str = "0123456789abcdef0123456789abcdef";

#[tokio::test]
async fn emulate_pushes_tickets_to_the_notify_url() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let key = "A".repeat(43);
    let server = TestServer::start(&format!(
        "api_base = \"http://127.0.0.1:{port}\"\n[[component]]\nname = \"acme\"\napp_id = \"{COMPONENT}\"\napp_secret = \"{SECRET}\"\ntoken = \"AAAAA\"\nencoding_aes_key = \"{key}\"\n"
    ))
    .await;
    let notify = format!("{}/open/acme/notify", server.base);
    let listen = format!("127.0.0.1:{port}");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_wxgate"))
        .args([
            "emulate",
            "--listen",
            &listen,
            "--json",
            "--component-app-id",
            COMPONENT,
            "--component-secret",
            SECRET,
            "--component-token",
            "AAAAA",
            "--component-key",
            &key,
            "--notify-url",
            &notify,
            "--ticket-interval-s",
            "1",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let _child = KillOnDrop(child);
    let center = server.state.center();
    let mut tickets = std::collections::HashSet::new();
    for _ in 0..100 {
        if let Ok(ticket) = center.verify_ticket("open/acme").await {
            tickets.insert(ticket.value);
            if tickets.len() >= 2 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        tickets.len() >= 2,
        "a ticket at once and another a second later: {}",
        tickets.len()
    );
    let token = center.get("open/acme", CredentialKind::AccessToken).await;
    assert!(
        token.is_ok(),
        "the emulator accepts the pushed ticket: {token:?}"
    );
    server.stop().await;
}
