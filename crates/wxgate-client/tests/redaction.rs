//! The AppSecret in an error: every API call that carries a secret in its URL fails once
//! (nothing listens on the port), and neither the error's text nor its `Debug` may carry
//! the secret, the token or the code. An HTTP client error prints its whole URL by
//! default, `secret=` included.

use serde_json::json;
use wxgate_client::{Client, CustomMessage, Scene, WeComClient};

const APP_ID: &str = "wx1234567890abcdef";
const SECRET: &str = "feedfacefeedfacefeedfacefeedface";
const ACCESS_TOKEN: &str = "ACCESS-TOKEN-VALUE-0042";
const OAUTH_TOKEN: &str = "OAUTH-WEB-TOKEN-0043";
const CODE: &str = "OAUTH-CODE-VALUE-0044";
const REFRESH_TOKEN: &str = "REFRESH-TOKEN-VALUE-0045";

/// A base URL where nothing listens.
fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

#[tokio::test]
async fn failed_calls_never_print_a_secret_token_or_code() {
    let client = Client::new(&closed_port());
    let wecom = WeComClient::new(&closed_port());
    let body = json!({});
    let scene = Scene::Id(1);
    let text = CustomMessage::Text("hi".into());
    let t = ACCESS_TOKEN;
    let errors = vec![
        (
            "classic_token",
            client.classic_token(APP_ID, SECRET).await.err(),
        ),
        (
            "stable_token",
            client.stable_token(APP_ID, SECRET, false).await.err(),
        ),
        ("jsapi_ticket", client.jsapi_ticket(t).await.err()),
        (
            "oauth_exchange",
            client.oauth_exchange(APP_ID, SECRET, CODE).await.err(),
        ),
        (
            "oauth_refresh",
            client.oauth_refresh(APP_ID, REFRESH_TOKEN).await.err(),
        ),
        (
            "oauth_userinfo",
            client.oauth_userinfo(OAUTH_TOKEN, "o1").await.err(),
        ),
        (
            "oauth_check",
            client.oauth_check(OAUTH_TOKEN, "o1").await.err(),
        ),
        (
            "qrcode_create",
            client.qrcode_create(t, &scene, Some(60)).await.err(),
        ),
        (
            "generate_scheme",
            client.generate_scheme(t, &body).await.err(),
        ),
        (
            "generate_urllink",
            client.generate_urllink(t, &body).await.err(),
        ),
        (
            "custom_send",
            client.custom_send(t, "o1", &text).await.err(),
        ),
        (
            "custom_typing",
            client.custom_typing(t, "o1", true).await.err(),
        ),
        ("template_send", client.template_send(t, &body).await.err()),
        ("menu_create", client.menu_create(t, &body).await.err()),
        ("menu_get", client.menu_get(t).await.err()),
        ("menu_delete", client.menu_delete(t).await.err()),
        ("user_info", client.user_info(t, "o1").await.err()),
        ("callback_ips", client.callback_ips(t).await.err()),
        (
            "wecom gettoken",
            wecom.gettoken("ww0123456789abcdef", SECRET).await.err(),
        ),
        (
            "wecom message_send",
            wecom.message_send(t, 1000002, "u1", &text).await.err(),
        ),
    ];
    for (call, error) in errors {
        let error = error.unwrap_or_else(|| panic!("{call}: nothing listens, the call fails"));
        let shown = format!("{error} | {error:?}");
        for secret in [SECRET, ACCESS_TOKEN, OAUTH_TOKEN, CODE, REFRESH_TOKEN] {
            assert!(!shown.contains(secret), "{call} prints {secret}: {shown}");
        }
        // Still useful: it says what failed and where.
        assert!(shown.contains("127.0.0.1"), "{call}: {shown}");
    }
}

#[test]
fn urls_are_redacted_by_parameter_name() {
    let url = url::Url::parse(&format!(
        "https://api.weixin.qq.com/sns/oauth2/access_token?appid={APP_ID}&secret={SECRET}&code={CODE}&grant_type=authorization_code&corpsecret=c&access_token={ACCESS_TOKEN}&refresh_token={REFRESH_TOKEN}"
    ))
    .unwrap();
    assert_eq!(
        wxgate_client::redact_url(&url),
        format!("https://api.weixin.qq.com/sns/oauth2/access_token?appid={APP_ID}&secret=***&code=***&grant_type=authorization_code&corpsecret=***&access_token=***&refresh_token=***")
    );
    let redis = url::Url::parse("redis://:hunter2@127.0.0.1:6379/0").unwrap();
    assert_eq!(
        wxgate_client::redact_url(&redis),
        "redis://:***@127.0.0.1:6379/0"
    );
}
