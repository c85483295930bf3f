//! The callback protocol without HTTP: one `check_*` helper per behaviour, cases as rows.

use super::*;
use crate::config::Config;
use crate::pipeline::RulesOnly;
use rand::rngs::StdRng;
use rand::SeedableRng;
use wxgate_proto::push::{self, build, PushParams};
use wxgate_proto::reply::{Reply, ReplyMessage};
use wxgate_proto::signature::msg_signature;
use wxgate_proto::EncodingAesKey;

const TOKEN: &str = "benchToken123";
const KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const APP_ID: &str = "wx1234567890abcdef";
const NOW: i64 = 1_800_000_000;

fn account(mode: &str, extra: &str) -> Account {
    let text = format!(
        "[[account]]\nname = \"t\"\napp_id = \"{APP_ID}\"\ntoken = \"{TOKEN}\"\nencoding_aes_key = \"{KEY}\"\nmode = \"{mode}\"\n{extra}\n[[account.rule]]\nwhen = {{ msg_type = \"text\" }}\nreply = {{ text = \"echo {{content}}\" }}\n"
    );
    Account::new(Config::parse(&text, "t").unwrap().accounts.remove(0))
}

fn crypt() -> MsgCrypt {
    MsgCrypt::new(&EncodingAesKey::parse(KEY).unwrap(), APP_ID)
}

fn query_of(request: &push::PushRequest) -> CallbackQuery {
    let pairs: Vec<(String, String)> = request
        .query
        .split('&')
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (
                k.to_owned(),
                v.replace("%2B", "+")
                    .replace("%2F", "/")
                    .replace("%3D", "="),
            )
        })
        .collect();
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    CallbackQuery {
        signature: get("signature"),
        timestamp: get("timestamp"),
        nonce: get("nonce"),
        echostr: get("echostr"),
        encrypt_type: get("encrypt_type"),
        msg_signature: get("msg_signature"),
        openid: get("openid"),
    }
}

fn send(account: &Account, mode: Mode, xml: &str, timestamp: i64) -> (CallbackQuery, String) {
    let crypt = crypt();
    let ts = timestamp.to_string();
    let request = push::message(
        &PushParams {
            token: TOKEN,
            mode,
            crypt: Some(&crypt),
            timestamp: &ts,
            nonce: "12345",
            random: &[3u8; 16],
            openid: "oUser",
        },
        xml,
        "gh_acct",
    );
    let _ = account;
    (query_of(&request), request.body)
}

fn rng() -> StdRng {
    StdRng::seed_from_u64(7)
}

/// Opens an answer the way WeChat would and returns the reply's text content.
#[track_caller]
fn check_reply(answer: &Answer, encrypted: bool, expect_content: &str) {
    let Answer::Xml(body) = answer else {
        panic!("expected a reply, got {answer:?}")
    };
    let xml = if encrypted {
        envelope::open_reply(&crypt(), TOKEN, body)
            .expect("valid envelope")
            .xml
    } else {
        assert!(
            !body.contains("<Encrypt>"),
            "plaintext request gets a plaintext reply"
        );
        body.clone()
    };
    let reply = ReplyMessage::parse(&xml).unwrap();
    assert_eq!(reply.to_user_name, "oUser", "To/From swapped");
    assert_eq!(reply.from_user_name, "gh_acct");
    assert_eq!(reply.create_time, NOW);
    assert_eq!(
        reply.reply,
        Reply::Text {
            content: expect_content.to_owned()
        }
    );
}

#[test]
fn every_mode_answers_in_kind() {
    let msg = build::text("gh_acct", "oUser", NOW, "hi", 1);
    // (account mode, request mode, encrypted reply expected)
    for (account_mode, request_mode, encrypted) in [
        ("plain", Mode::Plain, false),
        ("compat", Mode::Plain, false),
        ("compat", Mode::Compat, true),
        ("compat", Mode::Safe, true),
        ("safe", Mode::Safe, true),
        ("safe", Mode::Compat, true),
        ("plain", Mode::Safe, true), // a key is configured, so an encrypted push still works
    ] {
        let account = account(account_mode, "dedup = false");
        let (query, body) = send(&account, request_mode, &msg, NOW);
        let handled = account
            .handle_message(&query, &body, NOW, &mut rng())
            .unwrap_or_else(|r| panic!("{account_mode}/{request_mode:?}: {}", r.reason()));
        check_reply(&handled.answer, encrypted, "echo hi");
    }
}

#[test]
fn refusals() {
    let msg = build::text("gh_acct", "oUser", NOW, "hi", 1);
    let safe = account("safe", "");
    let plain = account("plain", "");

    let (query, body) = send(&safe, Mode::Plain, &msg, NOW);
    let refusal = safe
        .handle_message(&query, &body, NOW, &mut rng())
        .unwrap_err();
    assert!(matches!(refusal, Refusal::PlaintextInSafeMode));
    assert_eq!(refusal.status(), 403);

    let (query, body) = send(&plain, Mode::Plain, &msg, NOW - 301);
    let refusal = plain
        .handle_message(&query, &body, NOW, &mut rng())
        .unwrap_err();
    assert!(
        matches!(
            refusal,
            Refusal::StaleTimestamp {
                skew_s: 301,
                window_s: 300
            }
        ),
        "{refusal:?}"
    );
    assert!(refusal.reason().contains("301s behind"));
    let (query, body) = send(&plain, Mode::Plain, &msg, NOW + 400);
    assert!(matches!(
        plain
            .handle_message(&query, &body, NOW, &mut rng())
            .unwrap_err(),
        Refusal::StaleTimestamp { skew_s: -400, .. }
    ));
    let no_window = account("plain", "timestamp_window_s = 0");
    let (query, body) = send(&no_window, Mode::Plain, &msg, 1);
    assert!(
        no_window
            .handle_message(&query, &body, NOW, &mut rng())
            .is_ok(),
        "window 0 turns it off"
    );

    let (mut query, body) = send(&plain, Mode::Plain, &msg, NOW);
    query.signature = Some("0".repeat(40));
    let refusal = plain
        .handle_message(&query, &body, NOW, &mut rng())
        .unwrap_err();
    assert!(matches!(
        refusal,
        Refusal::BadSignature {
            which: "signature",
            ..
        }
    ));
    assert_eq!(refusal.status(), 403);
    query.signature = None;
    assert_eq!(
        plain
            .handle_message(&query, &body, NOW, &mut rng())
            .unwrap_err()
            .status(),
        403
    );

    let (mut query, body) = send(&safe, Mode::Safe, &msg, NOW);
    query.msg_signature = Some("0".repeat(40));
    let refusal = safe
        .handle_message(&query, &body, NOW, &mut rng())
        .unwrap_err();
    assert!(matches!(
        refusal,
        Refusal::BadSignature {
            which: "msg_signature",
            ..
        }
    ));
    query.msg_signature = None;
    assert_eq!(
        safe.handle_message(&query, &body, NOW, &mut rng())
            .unwrap_err()
            .status(),
        403
    );

    // A body tampered after signing: msg_signature no longer matches.
    let (query, body) = send(&safe, Mode::Safe, &msg, NOW);
    let tampered = body.replacen("<Encrypt><![CDATA[", "<Encrypt><![CDATA[AAAA", 1);
    assert!(matches!(
        safe.handle_message(&query, &tampered, NOW, &mut rng())
            .unwrap_err(),
        Refusal::BadSignature { .. }
    ));

    let (query, _) = send(&plain, Mode::Plain, &msg, NOW);
    for bad in [
        "<xml><ToUserName>",
        "<!DOCTYPE x><xml/>",
        "<xml><MsgType>text</MsgType></xml>",
        "{}",
    ] {
        let refusal = plain
            .handle_message(&query, bad, NOW, &mut rng())
            .unwrap_err();
        assert_eq!(refusal.status(), 400, "{bad}: {}", refusal.reason());
    }
}

#[test]
fn keyless_account_refuses_encrypted_push() {
    let text = format!("[[account]]\nname = \"t\"\napp_id = \"{APP_ID}\"\ntoken = \"{TOKEN}\"\n");
    let keyless = Account::new(Config::parse(&text, "t").unwrap().accounts.remove(0));
    let (query, body) = send(
        &keyless,
        Mode::Safe,
        &build::text("gh", "oUser", NOW, "x", 1),
        NOW,
    );
    let refusal = keyless
        .handle_message(&query, &body, NOW, &mut rng())
        .unwrap_err();
    assert!(matches!(refusal, Refusal::EncryptedWithoutKey));
}

#[test]
fn wrong_app_id_is_a_decrypt_refusal() {
    let other = account("safe", "").config;
    let mut config = other.clone();
    config.app_id = "wx9999999999999999".into();
    let account = Account::new(config);
    let (query, body) = send(
        &account,
        Mode::Safe,
        &build::text("gh", "oUser", NOW, "x", 1),
        NOW,
    );
    let refusal = account
        .handle_message(&query, &body, NOW, &mut rng())
        .unwrap_err();
    // The log names the AppID found (it is shaped like one); the answer does not.
    assert!(
        refusal.reason().contains(APP_ID) && refusal.reason().contains("app_id"),
        "{}",
        refusal.reason()
    );
    assert_eq!(refusal.status(), 400);
    assert_eq!(refusal.answer(), DECRYPT_REFUSAL);
    assert_eq!(refusal.outcome(), Outcome::DecryptFailed);
}

/// Every way a signed ciphertext can fail after decryption gets one answer, and the
/// log sentence names the kind but quotes nothing that was decrypted.
#[test]
fn every_decryption_failure_gets_one_answer_and_logs_no_plaintext() {
    let safe = account("safe", "");
    let key = EncodingAesKey::parse(KEY).unwrap();
    let secret_text = "PLAINTEXT-MUST-NOT-LEAK";
    let message = build::text("gh", "oUser", NOW, secret_text, 1);
    let with = |crypt: &MsgCrypt, plain: &str| crypt.encrypt(plain, &[7; 16]);
    let good = with(&crypt(), &message);
    let mut shrunk = base64_decode(&good);
    // Block 0 XOR-ed: the length field (plaintext bytes 16..20) drops to 3.
    let len = message.len() as u32;
    for (i, b) in (len ^ 3).to_be_bytes().into_iter().enumerate() {
        shrunk[i] ^= b;
    }
    let mut bad_padding = base64_decode(&good);
    let last = bad_padding.len() - 1;
    bad_padding[last - 16] ^= 0x55;
    let cases = [
        ("length shrunk", base64_encode(&shrunk), "app_id"),
        ("padding", base64_encode(&bad_padding), "padding"),
        ("not base64", "!!!!".to_owned(), "ciphertext"),
        (
            "foreign AppID",
            with(&MsgCrypt::new(&key, "wx9999999999999999"), &message),
            "app_id",
        ),
        (
            "not a message",
            with(&crypt(), &format!("<xml><Content>{secret_text}</Content>")),
            "xml",
        ),
    ];
    for (name, encrypt, kind) in cases {
        let (query, body) = signed_envelope(&encrypt);
        let refusal = safe
            .handle_message(&query, &body, NOW, &mut rng())
            .unwrap_err();
        assert_eq!(refusal.answer(), DECRYPT_REFUSAL, "{name}");
        assert_eq!(refusal.status(), 400, "{name}");
        assert_eq!(refusal.outcome(), Outcome::DecryptFailed, "{name}");
        let reason = refusal.reason();
        assert!(reason.contains(&format!("({kind})")), "{name}: {reason}");
        for leak in [secret_text, "Content", "oUser", "<xml"] {
            assert!(!reason.contains(leak), "{name}: {reason}");
        }
    }
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A safe-mode push whose Encrypt is `encrypt`, correctly signed with the Token.
fn signed_envelope(encrypt: &str) -> (CallbackQuery, String) {
    let (timestamp, nonce) = (NOW.to_string(), "1234".to_owned());
    let signature = msg_signature(TOKEN, &timestamp, &nonce, encrypt).to_hex();
    let query = CallbackQuery {
        timestamp: Some(timestamp),
        nonce: Some(nonce),
        encrypt_type: Some("aes".into()),
        msg_signature: Some(signature),
        ..CallbackQuery::default()
    };
    (query, envelope::request_body("gh", encrypt))
}

#[test]
fn previous_key_still_decrypts_after_rotation() {
    let new_key = EncodingAesKey::from_bytes([9u8; 32]).to_console_string();
    let text = format!(
        "[[account]]\nname = \"t\"\napp_id = \"{APP_ID}\"\ntoken = \"{TOKEN}\"\nencoding_aes_key = \"{new_key}\"\nprevious_encoding_aes_key = \"{KEY}\"\n[[account.rule]]\nreply = {{ text = \"ok\" }}\n"
    );
    let account = Account::new(Config::parse(&text, "t").unwrap().accounts.remove(0));
    // Encrypted with the old key (KEY); the reply must be sealed with it too.
    let (query, body) = send(
        &account,
        Mode::Safe,
        &build::text("gh_acct", "oUser", NOW, "x", 1),
        NOW,
    );
    let handled = account
        .handle_message(&query, &body, NOW, &mut rng())
        .unwrap();
    check_reply(&handled.answer, true, "ok");
}

#[test]
fn retries_get_the_same_answer_without_rerunning_rules() {
    let account = account("compat", "");
    let msg = build::text("gh_acct", "oUser", NOW, "once", 77);
    let (query, body) = send(&account, Mode::Plain, &msg, NOW);
    let first = account
        .handle_message(&query, &body, NOW, &mut rng())
        .unwrap();
    assert_eq!(first.outcome, Outcome::Ok);
    // The retry arrives encrypted this time: same reply, sealed for this request.
    let (query, body) = send(&account, Mode::Safe, &msg, NOW + 5);
    let second = account
        .handle_message(&query, &body, NOW + 5, &mut rng())
        .unwrap();
    assert_eq!(second.outcome, Outcome::Duplicate);
    check_reply(&second.answer, true, "echo once");
    // Another message id is new.
    let (query, body) = send(
        &account,
        Mode::Plain,
        &build::text("gh_acct", "oUser", NOW, "once", 78),
        NOW,
    );
    assert_eq!(
        account
            .handle_message(&query, &body, NOW, &mut rng())
            .unwrap()
            .outcome,
        Outcome::Ok
    );
    // Dedup off: every retry runs the rules.
    let off = self::account("compat", "dedup = false");
    for _ in 0..2 {
        let (query, body) = send(&off, Mode::Plain, &msg, NOW);
        assert_eq!(
            off.handle_message(&query, &body, NOW, &mut rng())
                .unwrap()
                .outcome,
            Outcome::Ok
        );
    }
}

#[test]
fn events_dedup_on_sender_and_create_time() {
    let account = account("plain", "");
    let subscribe = build::event("gh_acct", "oUser", NOW, "subscribe", None);
    let (query, body) = send(&account, Mode::Plain, &subscribe, NOW);
    assert_eq!(
        account
            .handle_message(&query, &body, NOW, &mut rng())
            .unwrap()
            .outcome,
        Outcome::Ok
    );
    assert_eq!(
        account
            .handle_message(&query, &body, NOW, &mut rng())
            .unwrap()
            .outcome,
        Outcome::Duplicate
    );
    // A different event in the same second from the same user is not a retry.
    let location = build::event("gh_acct", "oUser", NOW, "LOCATION", None);
    let (query, body) = send(&account, Mode::Plain, &location, NOW);
    assert_eq!(
        account
            .handle_message(&query, &body, NOW, &mut rng())
            .unwrap()
            .outcome,
        Outcome::Ok
    );
}

#[test]
fn no_matching_rule_answers_success() {
    let account = account("safe", "");
    let (query, body) = send(
        &account,
        Mode::Safe,
        &build::event("gh_acct", "oUser", NOW, "VIEW", Some("https://x")),
        NOW,
    );
    let handled = account
        .handle_message(&query, &body, NOW, &mut rng())
        .unwrap();
    assert_eq!(
        handled.answer,
        Answer::Success,
        "success is sent as is, even in safe mode"
    );
}

#[test]
fn verify_url_echoes_exactly() {
    let account = account("safe", "");
    for echostr in ["5518803317220094471", "hello world", "0"] {
        let request = push::verification(TOKEN, &NOW.to_string(), "42", echostr);
        let mut query = query_of(&request);
        query.echostr = Some(echostr.to_owned());
        assert_eq!(account.verify_url(&query, NOW).unwrap(), echostr);
    }
    let mut query = query_of(&push::verification(
        "benchtoken123",
        &NOW.to_string(),
        "42",
        "e",
    ));
    query.echostr = Some("e".into());
    match account.verify_url(&query, NOW).unwrap_err() {
        Refusal::BadSignature { hint, .. } => assert_eq!(hint, MismatchHint::TokenCase),
        other => panic!("{other:?}"),
    }
    query = query_of(&push::verification(TOKEN, &NOW.to_string(), "42", "e"));
    query.echostr = None;
    assert!(matches!(
        account.verify_url(&query, NOW),
        Err(Refusal::MissingParameter("echostr"))
    ));
}

#[test]
fn msg_id_beyond_2_pow_53_is_kept_exactly() {
    let account = account("plain", "");
    let big: u64 = (1 << 53) + 1;
    let msg = build::text("gh_acct", "oUser", NOW, "x", big);
    let (query, body) = send(&account, Mode::Plain, &msg, NOW);
    let handled = account
        .handle_message(&query, &body, NOW, &mut rng())
        .unwrap();
    assert_eq!(handled.message.msg_id, Some(big));
    assert!(account
        .dedup()
        .unwrap()
        .get(&format!("m:{big}"), NOW)
        .is_some());
    assert!(account
        .dedup()
        .unwrap()
        .get(&format!("m:{}", big - 1), NOW)
        .is_none());
}
