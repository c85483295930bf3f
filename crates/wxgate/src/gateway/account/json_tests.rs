//! The callback protocol with JSON pushes and mini-program accounts, without HTTP.

use super::*;
use crate::config::Config;
use crate::pipeline::RulesOnly;
use rand::rngs::StdRng;
use rand::SeedableRng;
use wxgate_proto::push::{self, build, PushParams};
use wxgate_proto::reply::ReplyMessage;
use wxgate_proto::EncodingAesKey;

const TOKEN: &str = "miniToken123";
const KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const APP_ID: &str = "wx5d3c9a1b2e4f6071";
const NOW: i64 = 1_800_000_000;
const SECRET: &str = "0123456789abcdef0123456789abcdef";

/// A mini-program: a text message gets a text rule (sent through the API), the
/// tempsession event a transfer to customer service.
fn mini(mode: &str, extra: &str) -> Account {
    let text = format!(
        "[[account]]\nname = \"m\"\nkind = \"miniprogram\"\ndata_format = \"json\"\napp_id = \"{APP_ID}\"\napp_secret = \"{SECRET}\"\ntoken = \"{TOKEN}\"\nencoding_aes_key = \"{KEY}\"\nmode = \"{mode}\"\n{extra}\n\
         [[account.rule]]\nwhen = {{ event = \"user_enter_tempsession\" }}\nreply = {{ transfer_customer_service = {{}} }}\n\
         [[account.rule]]\nwhen = {{ msg_type = \"text\" }}\nreply = {{ text = \"echo {{content}}\" }}\n"
    );
    Account::new(Config::parse(&text, "t").unwrap().accounts.remove(0))
}

fn crypt() -> MsgCrypt {
    MsgCrypt::new(&EncodingAesKey::parse(KEY).unwrap(), APP_ID)
}

fn query_of(request: &push::PushRequest) -> CallbackQuery {
    let uri: axum::http::Uri = format!("/wx/m?{}", request.query).parse().unwrap();
    axum::extract::Query::<CallbackQuery>::try_from_uri(&uri)
        .unwrap()
        .0
}

fn send_as(mode: Mode, format: Format, message: &str) -> (CallbackQuery, String) {
    let crypt = crypt();
    let ts = NOW.to_string();
    let request = push::message_as(
        &PushParams {
            token: TOKEN,
            mode,
            crypt: Some(&crypt),
            timestamp: &ts,
            nonce: "4242",
            random: &[9u8; 16],
            openid: "oMini",
        },
        format,
        message,
        "gh_mini",
    );
    (query_of(&request), request.body)
}

fn tempsession() -> String {
    build::json(&build::event(
        "gh_mini",
        "oMini",
        NOW,
        "user_enter_tempsession",
        None,
    ))
}

fn rng() -> StdRng {
    StdRng::seed_from_u64(11)
}

#[test]
fn json_pushes_get_json_answers_in_every_mode() {
    for (account_mode, request_mode, encrypted) in [
        ("plain", Mode::Plain, false),
        ("compat", Mode::Compat, true),
        ("safe", Mode::Safe, true),
    ] {
        let account = mini(account_mode, "dedup = false");
        let (query, body) = send_as(request_mode, Format::Json, &tempsession());
        assert!(body.trim_start().starts_with('{'), "{body}");
        let handled = account
            .handle_message(&query, &body, NOW, &mut rng())
            .unwrap_or_else(|r| panic!("{account_mode}: {}", r.reason()));
        let Answer::Json(answer) = &handled.answer else {
            panic!(
                "{account_mode}: a JSON push gets a JSON answer, got {:?}",
                handled.answer
            )
        };
        assert_eq!(
            handled.answer.content_type(),
            "application/json; charset=utf-8"
        );
        let plain = if encrypted {
            let opened = envelope::open_reply(&crypt(), TOKEN, answer).unwrap();
            assert_eq!(opened.format, Format::Json);
            let envelope: serde_json::Value = serde_json::from_str(answer).unwrap();
            assert!(envelope["TimeStamp"].is_i64(), "{answer}");
            opened.xml
        } else {
            answer.clone()
        };
        let reply = ReplyMessage::parse(&plain).unwrap();
        assert_eq!(
            reply.reply,
            Reply::TransferCustomerService { kf_account: None }
        );
        assert_eq!(
            (reply.to_user_name.as_str(), reply.from_user_name.as_str()),
            ("oMini", "gh_mini")
        );
        assert!(plain.starts_with("{\"ToUserName\":\"oMini\""), "{plain}");
    }
}

#[test]
fn xml_pushes_to_a_json_account_are_read_and_answered_as_xml() {
    let account = mini("safe", "");
    let xml = build::event("gh_mini", "oMini", NOW, "user_enter_tempsession", None);
    let (query, body) = send_as(Mode::Safe, Format::Xml, &xml);
    let handled = account
        .handle_message(&query, &body, NOW, &mut rng())
        .unwrap();
    let Answer::Xml(answer) = &handled.answer else {
        panic!("{:?}", handled.answer)
    };
    let opened = envelope::open_reply(&crypt(), TOKEN, answer).unwrap();
    assert_eq!(opened.format, Format::Xml);
    assert!(opened.xml.starts_with("<xml>"));
    // The pipeline noted (and logged) the mismatch; not again for ten minutes; a
    // match never.
    assert_eq!(account.format_note(Format::Xml, NOW + 599), None);
    assert!(account
        .format_note(Format::Xml, NOW + 600)
        .unwrap()
        .contains("data_format = \"json\""));
    assert_eq!(account.format_note(Format::Json, NOW + 5000), None);
}

#[test]
fn mini_program_text_replies_go_through_the_api_once() {
    let account = mini("safe", "");
    let message = build::json(&build::text(
        "gh_mini",
        "oMini",
        NOW,
        "hi",
        9_007_199_254_740_993,
    ));
    let (query, body) = send_as(Mode::Safe, Format::Json, &message);
    let opened = account.open(&query, &body, NOW).unwrap();
    assert_eq!(
        opened.message.msg_id,
        Some(9_007_199_254_740_993),
        "2^53 + 1 exact"
    );
    match account.decide(&opened.message, opened.format, NOW) {
        Decided::CustomerService(reply) => assert_eq!(
            reply,
            Reply::Text {
                content: "echo hi".into()
            }
        ),
        other => panic!("expected the API, got {other:?}"),
    }
    // WeChat's retry: `success` from the dedup cache, nothing sent again.
    match account.decide(&opened.message, opened.format, NOW + 5) {
        Decided::Answer { plain, outcome } => {
            assert_eq!(plain, None);
            assert_eq!(outcome, Outcome::Duplicate);
        }
        other => panic!("expected the remembered success, got {other:?}"),
    }
    let handled = account
        .handle_message(&query, &body, NOW + 6, &mut rng())
        .unwrap();
    assert_eq!(handled.answer, Answer::Success);
    // An Official Account shows the same reply passively.
    let official = Account::new(
        Config::parse(
            &format!("[[account]]\nname = \"o\"\napp_id = \"{APP_ID}\"\ntoken = \"{TOKEN}\"\n[[account.rule]]\nreply = {{ text = \"x\" }}\n"),
            "t",
        )
        .unwrap()
        .accounts
        .remove(0),
    );
    assert!(matches!(
        official.decide(&opened.message, Format::Json, NOW),
        Decided::Answer { plain: Some(_), .. }
    ));
}

#[test]
fn json_refusals() {
    let account = mini("safe", "");
    let (query, body) = send_as(Mode::Safe, Format::Json, &tempsession());
    // A forged msg_signature over a JSON envelope.
    let mut forged = query.clone();
    forged.msg_signature = Some("0".repeat(40));
    let refusal = account
        .handle_message(&forged, &body, NOW, &mut rng())
        .unwrap_err();
    assert_eq!(refusal.status(), 403);
    assert!(
        refusal.reason().contains("msg_signature"),
        "{}",
        refusal.reason()
    );
    // Another Encrypt under the same signature.
    let other = body.replace("\"Encrypt\":\"", "\"Encrypt\":\"AAAA");
    let refusal = account
        .handle_message(&query, &other, NOW, &mut rng())
        .unwrap_err();
    assert_eq!(refusal.status(), 403);
    // Plain JSON to a safe-mode account.
    let (plain_query, plain_body) = send_as(Mode::Plain, Format::Json, &tempsession());
    assert_eq!(
        account
            .handle_message(&plain_query, &plain_body, NOW, &mut rng())
            .unwrap_err()
            .status(),
        403
    );

    let plain = mini("plain", "");
    let head = r#"{"ToUserName":"gh_mini","FromUserName":"oMini","CreateTime":1800000000,"MsgType":"text""#;
    for (body, needle) in [
        (
            format!("{head},\"Content\":\"{}\"}}", "x".repeat(64 * 1024 + 1)),
            "Content",
        ),
        (format!("{head},\"MsgId\":1,\"MsgId\":2}}"), "MsgId"),
        (format!("{head},\"MsgID\":1,\"msg_id\":2}}"), "msg_id"),
        (format!("{head},\"MsgId\":123456789012345678901}}"), "MsgId"),
        (format!("{head},\"MsgId\":[1,2]}}"), "MsgId"),
        (format!("{head},\"Content\":{{\"a\":1}}}}"), "Content"),
        (
            format!("{head},\"X\":{}1{}}}", "[".repeat(40), "]".repeat(40)),
            "deeper",
        ),
        (
            format!("{head},\"X\":{}1{}}}", "[".repeat(5000), "]".repeat(5000)),
            "deeper",
        ),
        (head.to_owned(), "EOF"),
        ("[1,2]".to_owned(), "neither XML"),
        ("hello".to_owned(), "neither XML"),
    ] {
        let (query, _) = send_as(Mode::Plain, Format::Json, &body);
        let refusal = plain
            .handle_message(&query, &body, NOW, &mut rng())
            .unwrap_err();
        assert_eq!(refusal.status(), 400, "{needle}: {}", refusal.reason());
        assert!(
            refusal.reason().contains(needle),
            "{needle}: {}",
            refusal.reason()
        );
        assert!(refusal.reason().len() < 400, "{}", refusal.reason());
    }
}
