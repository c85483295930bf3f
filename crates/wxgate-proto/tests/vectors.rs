//! Every case of `data/vectors.json` (computed by wechatpy, cross-checked with node
//! wechat-crypto), table-driven: one `check_*` function per section.

use serde_json::Value;
use wxgate_proto::crypto::{EncodingAesKey, MsgCrypt};
use wxgate_proto::signature::{jssdk_signature, msg_signature, sorted_concat, url_signature};
use wxgate_proto::urls::{oauth_authorize_url, qrconnect_url, Scope};
use wxgate_proto::{envelope, Error, Message};

fn vectors() -> Value {
    serde_json::from_str(include_str!("data/vectors.json")).expect("vectors.json parses")
}

fn s<'a>(case: &'a Value, key: &str) -> &'a str {
    case[key]
        .as_str()
        .unwrap_or_else(|| panic!("field {key} missing in {case}"))
}

fn section(name: &str) -> Vec<Value> {
    let cases = vectors()[name].as_array().expect("section").clone();
    assert!(!cases.is_empty(), "section {name} is empty");
    cases
}

#[test]
fn url_verification() {
    for case in section("url_verification") {
        let (token, ts, nonce) = (s(&case, "token"), s(&case, "timestamp"), s(&case, "nonce"));
        assert_eq!(
            sorted_concat(&mut [token, ts, nonce]),
            s(&case, "sorted_concat")
        );
        let sig = url_signature(token, ts, nonce);
        assert_eq!(sig.to_hex(), s(&case, "signature"), "{}", s(&case, "name"));
        assert!(sig.matches_hex(s(&case, "signature")));
        assert!(
            !sig.matches_hex(s(&case, "wrong_unsorted_signature")),
            "{}: an unsorted signature must be rejected",
            s(&case, "name")
        );
        assert_eq!(s(&case, "expected_response_body"), s(&case, "echostr"));
    }
}

#[test]
fn msg_signatures() {
    for case in section("msg_signature") {
        let parts = [
            s(&case, "token"),
            s(&case, "timestamp"),
            s(&case, "nonce"),
            s(&case, "encrypt"),
        ];
        assert_eq!(sorted_concat(&mut parts.clone()), s(&case, "sorted_concat"));
        let sig = msg_signature(parts[0], parts[1], parts[2], parts[3]);
        assert_eq!(sig.to_hex(), s(&case, "msg_signature"));
    }
}

#[test]
fn safe_mode_encrypt() {
    for case in section("safe_mode_encrypt") {
        let name = s(&case, "name");
        let key = EncodingAesKey::parse(s(&case, "encoding_aes_key")).expect(name);
        assert_eq!(
            hex::encode(key.key_bytes()),
            s(&case, "aes_key_hex"),
            "{name}"
        );
        assert_eq!(hex::encode(key.iv()), s(&case, "iv_hex"), "{name}");
        let crypt = MsgCrypt::new(&key, s(&case, "appid"));
        let random: [u8; 16] = hex::decode(s(&case, "random_prefix_hex"))
            .unwrap()
            .try_into()
            .unwrap();
        let plaintext = s(&case, "plaintext_xml");
        assert_eq!(
            plaintext.len() as u64,
            case["msg_len_utf8_bytes"].as_u64().unwrap()
        );

        let encrypt = crypt.encrypt(plaintext, &random);
        assert_eq!(
            encrypt,
            s(&case, "expected_encrypt"),
            "{name}: ciphertext byte for byte"
        );
        let decoded_len = base64_len(&encrypt);
        assert_eq!(decoded_len as u64, case["ciphertext_len"].as_u64().unwrap());
        assert_eq!(decoded_len as u64, case["padded_len"].as_u64().unwrap());

        let sig = msg_signature(
            s(&case, "token"),
            s(&case, "timestamp"),
            s(&case, "nonce"),
            &encrypt,
        );
        assert_eq!(sig.to_hex(), s(&case, "expected_msg_signature"), "{name}");

        // Decrypt what WeChat would POST.
        let body = wxgate_proto::xml::parse(s(&case, "encrypted_post_body")).unwrap();
        let inner = crypt
            .decrypt(envelope::encrypt_of(&body).unwrap())
            .expect(name);
        assert_eq!(inner, plaintext, "{name}");
        Message::parse(&inner).expect("decrypted message parses");

        // Our sealed reply, with the same inputs, opens to the same thing as wechatpy's.
        let ts: i64 = s(&case, "timestamp").parse().unwrap();
        let sealed = envelope::seal_reply(
            &crypt,
            s(&case, "token"),
            plaintext,
            ts,
            s(&case, "nonce"),
            &random,
        );
        let theirs = s(&case, "encrypted_reply_xml_by_wechatpy");
        let ours_opened = envelope::open_reply(&crypt, s(&case, "token"), &sealed).unwrap();
        let theirs_opened = envelope::open_reply(&crypt, s(&case, "token"), theirs).unwrap();
        assert_eq!(ours_opened, theirs_opened, "{name}");
        assert_eq!(
            sealed,
            theirs.replace('\n', ""),
            "{name}: envelope identical but for newlines"
        );
    }
}

fn base64_len(text: &str) -> usize {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
        .len()
}

#[test]
fn non_canonical_key_is_accepted() {
    let cases = section("safe_mode_encrypt");
    let lenient: Vec<_> = cases
        .iter()
        .filter(|c| c["encoding_aes_key_is_canonical_base64"] == Value::Bool(false))
        .collect();
    assert!(!lenient.is_empty(), "the vectors carry a non-canonical key");
    for case in lenient {
        EncodingAesKey::parse(s(case, "encoding_aes_key")).expect("trailing bits are ignored");
    }
}

#[test]
fn safe_mode_decrypt_failures() {
    for case in section("safe_mode_decrypt_failures") {
        let name = s(&case, "name");
        assert_eq!(case["signature_valid"], Value::Bool(true));
        let sig = msg_signature(
            s(&case, "token"),
            s(&case, "timestamp"),
            s(&case, "nonce"),
            s(&case, "encrypt"),
        );
        assert!(
            sig.matches_hex(s(&case, "msg_signature")),
            "{name}: signature is valid"
        );
        let key = EncodingAesKey::parse(s(&case, "encoding_aes_key")).unwrap();
        match name {
            "wrong_appid_trailer" => {
                let crypt = MsgCrypt::new(&key, s(&case, "configured_appid"));
                let err = crypt.decrypt(s(&case, "encrypt")).unwrap_err();
                assert_eq!(
                    err,
                    Error::AppIdMismatch {
                        expected: s(&case, "configured_appid").to_owned(),
                        got: Some(s(&case, "appid_inside_ciphertext").to_owned()),
                    }
                );
            }
            "corrupted_padding_last_byte_zero" => {
                let crypt = MsgCrypt::new(&key, s(&case, "appid"));
                let err = crypt.decrypt(s(&case, "encrypt")).unwrap_err();
                assert_eq!(err, Error::BadPadding, "strict padding check");
            }
            other => panic!("unknown failure vector {other}: add its expectation"),
        }
    }
}

#[test]
fn jssdk_signatures() {
    for case in section("jssdk_signature") {
        let signed = jssdk_signature(
            s(&case, "ticket"),
            s(&case, "noncestr"),
            s(&case, "timestamp"),
            s(&case, "input_url"),
        );
        assert_eq!(signed.url, s(&case, "signed_url"));
        assert_eq!(signed.string1, s(&case, "string1"));
        assert_eq!(
            signed.signature.to_hex(),
            s(&case, "signature"),
            "{}",
            s(&case, "name")
        );
    }
}

#[test]
fn oauth2_urls() {
    for case in section("oauth2_urls") {
        let url = match s(&case, "method") {
            "authorize_url" => oauth_authorize_url(
                s(&case, "appid"),
                s(&case, "redirect_uri"),
                Scope::parse(s(&case, "scope")).unwrap(),
                s(&case, "state"),
            ),
            "qrconnect_url" => qrconnect_url(
                s(&case, "appid"),
                s(&case, "redirect_uri"),
                s(&case, "state"),
            ),
            other => panic!("unknown method {other}"),
        };
        assert_eq!(
            url.unwrap(),
            s(&case, "expected_url"),
            "{}",
            s(&case, "name")
        );
    }
}
