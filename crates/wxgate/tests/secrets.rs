//! Secrets in `Debug` and in log lines: a loaded configuration and the server's state
//! print placeholders, and failed WeChat API calls (the OAuth code exchange, an admin
//! call) leave neither the AppSecret, the access_token nor the code in the running
//! binary's log or answers.

mod common;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wxgate::app::AppState;
use wxgate::config::Config;
use wxgate_proto::urls::encode_component;

const APP_SECRET: &str = "feedfacefeedfacefeedfacefeedface";
const SECRET_TOKEN: &str = "TokenSecret0123";
const AES_KEY: &str = "SECRETsecretSECRETsecretSECRETsecretSECRETs";
const PREVIOUS_KEY: &str = "PREVIOUSpreviousPREVIOUSpreviousPREVIOUSpre";
const FORWARD_SECRET: &str = "forward-secret-0123456789";
const SIGNING_KEY: &str = "oauth-signing-key-0123456789abcdef";
const ADMIN_TOKEN: &str = "admin-token-0123456789abcdef";
const REDIS_PASSWORD: &str = "redis-password-0123";
const ACCESS_TOKEN: &str = "ACCESS-TOKEN-VALUE-0042";
const CODE: &str = "OAUTH-CODE-VALUE-0044";

fn config_text(api_base: &str, public_url: &str, storage: &str) -> String {
    format!(
        "admin_token = \"{ADMIN_TOKEN}\"\napi_base = \"{api_base}\"\nopen_base = \"{api_base}\"\npublic_url = \"{public_url}\"\n{storage}\n\
         [[account]]\nname = \"main\"\napp_id = \"{APP_ID}\"\napp_secret = \"{APP_SECRET}\"\ntoken = \"{SECRET_TOKEN}\"\n\
         encoding_aes_key = \"{AES_KEY}\"\nprevious_encoding_aes_key = \"{PREVIOUS_KEY}\"\n\
         [account.forward]\nurl = \"http://127.0.0.1:9/hook\"\nsecret = \"{FORWARD_SECRET}\"\n\
         [account.oauth]\ndomain = \"127.0.0.1\"\nredirect_allow = [\"https://app.example.com/\"]\nsigning_key = \"{SIGNING_KEY}\"\n"
    )
}

const SECRETS: [&str; 8] = [
    APP_SECRET,
    SECRET_TOKEN,
    AES_KEY,
    PREVIOUS_KEY,
    FORWARD_SECRET,
    SIGNING_KEY,
    ADMIN_TOKEN,
    REDIS_PASSWORD,
];

#[test]
fn the_debug_of_a_loaded_config_and_of_the_state_prints_no_secret() {
    let redis = format!(
        "[storage]\nbackend = \"redis\"\nredis_url = \"redis://:{REDIS_PASSWORD}@127.0.0.1:6399/0\"\n"
    );
    let text = config_text("http://127.0.0.1:9", "http://127.0.0.1:8080", &redis);
    let config = Config::parse(&text, "t.toml").expect("valid");
    let state = AppState::new(&config);
    for (what, debug) in [
        ("config", format!("{config:?}")),
        ("pretty config", format!("{config:#?}")),
        ("state", format!("{state:?}")),
    ] {
        for secret in SECRETS {
            assert!(
                !debug.contains(secret),
                "the {what} prints {secret}: {debug}"
            );
        }
        assert!(
            debug.contains("REDACTED"),
            "{what}: the fields are there: {debug}"
        );
    }
}

/// A WeChat API that hands out an access_token and then drops every other request
/// without an answer: each call fails with an HTTP client error, the kind that prints
/// its URL.
async fn failing_wechat() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = vec![0u8; 8192];
                let n = socket.read(&mut head).await.unwrap_or(0);
                if head[..n].starts_with(b"POST /cgi-bin/stable_token") {
                    let body =
                        format!("{{\"access_token\":\"{ACCESS_TOKEN}\",\"expires_in\":7200}}");
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(answer.as_bytes()).await;
                }
                // Anything else: the connection closes unanswered.
            });
        }
    });
    base
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_wechat_calls_log_no_app_secret_token_or_code() {
    let api = failing_wechat().await;
    let dir = std::env::temp_dir().join(format!("wxgate-secrets-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // The binary picks its own port, so public_url is only used for the callback's host.
    let storage = format!("data_dir = \"{}\"\n", dir.join("data").display());
    std::fs::write(
        dir.join("wxgate.toml"),
        config_text(&api, "http://127.0.0.1", &storage),
    )
    .unwrap();
    let log = dir.join("wxgate.log");
    let (run_dir, log_path) = (dir.clone(), log.clone());
    let (child, base) =
        tokio::task::spawn_blocking(move || start_binary_logged(&run_dir, &log_path))
            .await
            .unwrap();
    let client = wxgate_client::http_client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut answers = String::new();

    // 1. The OAuth code exchange (secret and code in the URL).
    let authorize = format!(
        "{base}/oauth/main/authorize?redirect={}&scope=snsapi_base",
        encode_component("https://app.example.com/")
    );
    let response = client.get(&authorize).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 302);
    let to_wechat = url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    let param = |name: &str| {
        to_wechat
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .unwrap()
    };
    let (redirect_uri, state) = (param("redirect_uri"), param("state"));
    let callback = redirect_uri.replacen("http://127.0.0.1", &base, 1);
    let response = client
        .get(format!("{callback}&code={CODE}&state={state}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 502, "the exchange failed");
    answers.push_str(&response.text().await.unwrap());

    // 2. An admin call with the access_token in its URL.
    let response = client
        .get(format!("{base}/api/accounts/main/menu"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 502, "the call failed");
    answers.push_str(&response.text().await.unwrap());
    drop(child);

    let log = std::fs::read_to_string(&log).unwrap();
    assert!(log.contains("OAuth code exchange failed"), "{log}");
    assert!(log.contains("admin API call failed"), "{log}");
    for secret in [APP_SECRET, ACCESS_TOKEN, CODE] {
        assert!(!log.contains(secret), "the log carries {secret}:\n{log}");
        assert!(
            !answers.contains(secret),
            "an answer carries {secret}: {answers}"
        );
    }
    assert!(
        log.contains("secret=***"),
        "the redacted URL is logged:\n{log}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
