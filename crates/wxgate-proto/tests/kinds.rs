//! Every case of `data/vectors-kinds.json` (WeChat's and WeCom's documentation samples,
//! checked by the shared reference with `cryptography` and wechatpy): one `check_*`
//! function per kind of entry, run over every section.

use serde_json::Value;
use wxgate_proto::envelope::{self, request_body_json, seal_reply_json};
use wxgate_proto::json;
use wxgate_proto::signature::{msg_signature, url_signature};
use wxgate_proto::{EncodingAesKey, Format, Message, MsgCrypt};

fn vectors() -> Value {
    serde_json::from_str(include_str!("data/vectors-kinds.json")).expect("vectors parse")
}

fn s<'a>(case: &'a Value, key: &str) -> &'a str {
    case[key]
        .as_str()
        .unwrap_or_else(|| panic!("field {key} missing in {case}"))
}

fn sections() -> Vec<(String, Value)> {
    let all = vectors();
    let sections: Vec<(String, Value)> = all
        .as_object()
        .unwrap()
        .iter()
        .filter(|(name, _)| !name.starts_with('_'))
        .map(|(name, v)| (name.clone(), v.clone()))
        .collect();
    assert_eq!(sections.len(), 3, "miniprogram_json, component, wecom");
    sections
}

fn list<'a>(section: &'a Value, key: &str) -> &'a [Value] {
    section[key].as_array().map(Vec::as_slice).unwrap_or(&[])
}

fn key_of(section: &Value) -> EncodingAesKey {
    EncodingAesKey::parse(s(section, "encoding_aes_key")).unwrap()
}

#[test]
fn url_signatures() {
    let mut checked = 0;
    for (name, section) in sections() {
        for case in list(&section, "url_signatures") {
            let sig = url_signature(s(&section, "token"), s(case, "timestamp"), s(case, "nonce"));
            assert!(sig.matches_hex(s(case, "signature")), "{name}: {case}");
            checked += 1;
        }
    }
    assert_eq!(checked, 4);
}

#[test]
fn encrypted_pushes() {
    let mut checked = 0;
    for (name, section) in sections() {
        for case in list(&section, "encrypted") {
            check_encrypted(&name, &section, case);
            checked += 1;
        }
    }
    assert_eq!(checked, 4);
}

fn check_encrypted(name: &str, section: &Value, case: &Value) {
    let (token, encrypt) = (s(section, "token"), s(case, "encrypt"));
    let sig = msg_signature(token, s(case, "timestamp"), s(case, "nonce"), encrypt);
    assert_eq!(sig.to_hex(), s(case, "msg_signature"), "{name}");
    let key = key_of(section);
    let trailer = s(case, "trailer");
    let opened = MsgCrypt::new(&key, "wx0000000000000000")
        .decrypt_unchecked(encrypt)
        .unwrap();
    assert_eq!(opened.app_id, trailer, "{name}");
    let plaintext = MsgCrypt::new(&key, trailer).decrypt(encrypt).unwrap();
    assert_eq!(plaintext, s(case, "plaintext"), "{name}");
    match Format::detect(&plaintext) {
        Ok(format) => {
            let message = Message::parse_as(format, &plaintext).unwrap();
            assert!(!message.from_user_name.is_empty(), "{name}");
        }
        // WeCom's verification echostr is a bare number, not a message.
        Err(_) => assert!(plaintext.bytes().all(|b| b.is_ascii_digit()), "{name}"),
    }
}

/// The JSON push as the mini-program sends it in safe mode: the body is opened, the
/// signature checked over its `Encrypt`, and the plaintext read as a message.
#[test]
fn miniprogram_json_push_end_to_end() {
    let section = &vectors()["miniprogram_json"];
    let case = &section["encrypted"][0];
    let body = request_body_json("gh_97417a04a28d", s(case, "encrypt"));
    assert_eq!(Format::detect(&body), Ok(Format::Json));
    let outer = json::parse(&body).unwrap();
    let encrypt = envelope::encrypt_of(&outer).unwrap();
    assert_eq!(encrypt, s(case, "encrypt"));
    assert!(msg_signature(
        s(section, "token"),
        s(case, "timestamp"),
        s(case, "nonce"),
        encrypt
    )
    .matches_hex(s(case, "msg_signature")));
    let crypt = MsgCrypt::new(&key_of(section), s(section, "app_id"));
    let message = Message::parse_json(&crypt.decrypt(encrypt).unwrap()).unwrap();
    assert_eq!(message.to_user_name, "gh_97417a04a28d");
    assert_eq!(message.from_user_name, "o9AgO5Kd5ggOC-bXrbNODIiE3bGY");
    assert_eq!(message.create_time, 1_714_112_445);
    assert_eq!(message.event(), Some("debug_demo"));
    assert_eq!(message.field("debug_str"), Some("hello world"));
    assert_eq!(
        message.dedup_key(),
        "e:o9AgO5Kd5ggOC-bXrbNODIiE3bGY:1714112445:debug_demo:"
    );
}

/// The encrypted JSON reply: given the vector's 16 random bytes, timestamp and nonce,
/// every field value matches byte for byte, and the envelope opens again.
#[test]
fn encrypted_json_reply() {
    let section = &vectors()["miniprogram_json"];
    let replies = list(section, "replies");
    assert_eq!(replies.len(), 1);
    for case in replies {
        let random: [u8; 16] = s(case, "random16").as_bytes().try_into().unwrap();
        let crypt = MsgCrypt::new(&key_of(section), s(case, "trailer"));
        let timestamp: i64 = s(case, "timestamp").parse().unwrap();
        assert_eq!(
            crypt.encrypt(s(case, "plaintext"), &random),
            s(case, "encrypt")
        );
        let sealed = seal_reply_json(
            &crypt,
            s(section, "token"),
            s(case, "plaintext"),
            timestamp,
            s(case, "nonce"),
            &random,
        );
        let envelope: Value = serde_json::from_str(&sealed).unwrap();
        let keys: Vec<&str> = envelope
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            sealed,
            format!(
                r#"{{"Encrypt":"{}","MsgSignature":"{}","TimeStamp":{timestamp},"Nonce":"{}"}}"#,
                s(case, "encrypt"),
                s(case, "msg_signature"),
                s(case, "nonce")
            ),
            "field order and values: {keys:?}"
        );
        assert_eq!(envelope["TimeStamp"], timestamp, "TimeStamp is a number");
        let opened = envelope::open_reply(&crypt, s(section, "token"), &sealed).unwrap();
        assert_eq!(opened.xml, s(case, "plaintext"));
        assert_eq!(opened.format, Format::Json);
        assert_eq!(opened.timestamp, s(case, "timestamp"));
    }
}
