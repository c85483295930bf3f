//! A WeCom application (企业微信 自建应用) over real TCP, driven by the documentation's
//! own vectors (`wecom` in crates/wxgate-proto/tests/data/vectors-kinds.json): the
//! verification that answers the decrypted echostr, a push with the CorpID as trailer
//! and its encrypted reply, and the forged, missing and misplaced signatures.

mod common;

use common::*;
use serde_json::Value;
use wxgate::config::Config;
use wxgate_proto::envelope;
use wxgate_proto::{EncodingAesKey, MsgCrypt};

fn vectors() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../wxgate-proto/tests/data/vectors-kinds.json"
    );
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::from_str::<Value>(&text).unwrap()["wecom"].clone()
}

fn s(value: &Value) -> &str {
    value.as_str().unwrap()
}

/// The vectors' corp as an account; their timestamps are from 2014, so the window is
/// off.
fn corp_config(v: &Value, extra: &str) -> String {
    format!(
        "[[account]]\nname = \"corp\"\nkind = \"wecom\"\ncorp_id = \"{}\"\nagent_id = 218\n\
         token = \"{}\"\nencoding_aes_key = \"{}\"\ntimestamp_window_s = 0\n{extra}\n\
         [[account.rule]]\nwhen = {{ msg_type = \"text\" }}\nreply = {{ text = \"echo {{content}}\" }}\n",
        s(&v["corp_id"]),
        s(&v["token"]),
        s(&v["encoding_aes_key"]),
    )
}

fn encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[tokio::test]
async fn verification_answers_the_decrypted_echostr() {
    let v = vectors();
    let server = TestServer::start(&corp_config(&v, "")).await;
    let client = wxgate_client::http_client();
    let get = &v["encrypted"][0];
    let url = |echostr: &str, signature: &str| {
        format!(
            "{}/wx/corp?msg_signature={signature}&timestamp={}&nonce={}&echostr={echostr}",
            server.base,
            s(&get["timestamp"]),
            s(&get["nonce"]),
        )
    };
    let signature = s(&get["msg_signature"]);
    let (status, _, body) =
        common::get(&client, &url(&encode(s(&get["encrypt"])), signature)).await;
    assert_eq!((status, body.as_str()), (200, s(&get["plaintext"])));
    // The base64 sent unescaped: its `+` must survive the query's decoding.
    assert!(s(&get["encrypt"]).contains('+'));
    let (status, _, body) = common::get(&client, &url(s(&get["encrypt"]), signature)).await;
    assert_eq!((status, body.as_str()), (200, s(&get["plaintext"])));
    // A forged signature, and none at all: 403, and nothing decrypted is answered.
    let forged = format!("{}0", &signature[..39]);
    let (status, _, body) = common::get(&client, &url(&encode(s(&get["encrypt"])), &forged)).await;
    assert_eq!(status, 403, "{body}");
    assert!(!body.contains(s(&get["plaintext"])));
    let (status, _, body) = common::get(
        &client,
        &format!(
            "{}/wx/corp?timestamp=1&nonce=1&echostr={}",
            server.base,
            encode(s(&get["encrypt"]))
        ),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("msg_signature"), "{body}");
    server.stop().await;
}

/// The echostr of a corp with another CorpID: the signature holds (the Token is the
/// same), the trailer does not, and the answer is the one decryption refusal.
#[tokio::test]
async fn verification_for_another_corp_is_the_one_decryption_refusal() {
    let v = vectors();
    let text = corp_config(&v, "").replace(s(&v["corp_id"]), "ww0123456789abcdef");
    let server = TestServer::start(&text).await;
    let get = &v["encrypted"][0];
    let (status, _, body) = common::get(
        &wxgate_client::http_client(),
        &format!(
            "{}/wx/corp?msg_signature={}&timestamp={}&nonce={}&echostr={}",
            server.base,
            s(&get["msg_signature"]),
            s(&get["timestamp"]),
            s(&get["nonce"]),
            encode(s(&get["encrypt"]))
        ),
    )
    .await;
    assert_eq!((status, body.trim()), (400, "cannot decrypt"));
    server.stop().await;
}

#[tokio::test]
async fn a_push_is_opened_with_the_corp_id_and_answered_encrypted() {
    let v = vectors();
    let server = TestServer::start(&corp_config(&v, "")).await;
    let client = wxgate_client::http_client();
    let push = &v["encrypted"][1];
    let body = format!(
        "<xml><ToUserName><![CDATA[{}]]></ToUserName><Encrypt><![CDATA[{}]]></Encrypt><AgentID><![CDATA[218]]></AgentID></xml>",
        s(&v["corp_id"]),
        s(&push["encrypt"])
    );
    let url = |signature: &str| {
        format!(
            "{}/wx/corp?msg_signature={signature}&timestamp={}&nonce={}",
            server.base,
            s(&push["timestamp"]),
            s(&push["nonce"])
        )
    };
    let (status, answer) = post(&client, &url(s(&push["msg_signature"])), body.clone()).await;
    assert_eq!(status, 200, "{answer}");
    let crypt = MsgCrypt::new(
        &EncodingAesKey::parse(s(&v["encoding_aes_key"])).unwrap(),
        s(&v["corp_id"]),
    );
    let opened = envelope::open_reply(&crypt, s(&v["token"]), &answer).unwrap();
    assert!(opened.xml.contains("echo hello"), "{}", opened.xml);
    assert!(opened
        .xml
        .contains("<ToUserName><![CDATA[mycreate]]></ToUserName>"));
    // Forged, and missing: 403.
    let forged = format!("{}0", &s(&push["msg_signature"])[..39]);
    let (status, answer) = post(&client, &url(&forged), body.clone()).await;
    assert_eq!(status, 403, "{answer}");
    let (status, answer) = post(
        &client,
        &format!("{}/wx/corp?timestamp=1&nonce=1", server.base),
        body,
    )
    .await;
    assert_eq!(status, 403, "{answer}");
    assert!(answer.contains("msg_signature"), "{answer}");
    server.stop().await;
}

#[test]
fn a_wecom_account_is_checked_as_one() {
    let v = vectors();
    let ok = corp_config(&v, "");
    let config = Config::parse(&ok, "t").unwrap();
    let corp = &config.accounts[0];
    assert_eq!(
        corp.app_id,
        s(&v["corp_id"]),
        "the CorpID is the receive id"
    );
    assert_eq!(corp.agent_id, Some(218));
    assert_eq!(corp.mode, wxgate_proto::console::Mode::Safe);
    for (change, needle) in [
        (
            ok.replace("corp_id = \"wx5823bf96d3bd56c7\"\n", ""),
            "corp_id",
        ),
        (
            ok.replace(
                "corp_id = \"wx5823bf96d3bd56c7\"",
                "corp_id = \"WW5823BF96D3BD56C7\"",
            ),
            "uppercase",
        ),
        (
            ok.replace(
                "kind = \"wecom\"",
                "kind = \"wecom\"\napp_id = \"wx5823bf96d3bd56c7\"",
            ),
            "no app_id",
        ),
        (corp_config(&v, "mode = \"compat\""), "always encrypts"),
        (
            ok.replace(
                &format!("encoding_aes_key = \"{}\"\n", s(&v["encoding_aes_key"])),
                "",
            ),
            "encoding_aes_key",
        ),
        (ok.replace("agent_id = 218", "agent_id = -1"), "AgentID"),
        (ok.replace("kind = \"wecom\"\n", ""), "belongs to WeCom"),
    ] {
        let error = Config::parse(&change, "t").unwrap_err().to_string();
        assert!(error.contains(needle), "{needle}: {error}");
    }
}
