//! The wire format: message JSON, the signature, the service's replies.

use serde_json::json;

use super::*;

#[test]
fn snake_case_of_wechat_names() {
    for (xml, snake) in [
        ("ToUserName", "to_user_name"),
        ("MsgId", "msg_id"),
        ("MsgID", "msg_id"),
        ("Location_X", "location_x"),
        ("HQMusicUrl", "hq_music_url"),
        ("EventKey", "event_key"),
        ("CreateTime", "create_time"),
        ("item", "item"),
    ] {
        assert_eq!(snake_case(xml), snake, "{xml}");
    }
}

#[test]
fn message_json_keeps_every_field_as_text() {
    let message = Message::parse("<xml><ToUserName>gh</ToUserName><FromUserName>o</FromUserName><CreateTime>1</CreateTime><MsgType>event</MsgType><Event>pic_weixin</Event><SendPicsInfo><Count>2</Count><PicList><item><PicMd5Sum>a</PicMd5Sum></item><item><PicMd5Sum>b</PicMd5Sum></item></PicList></SendPicsInfo><MsgId>18446744073709551615</MsgId></xml>").unwrap();
    let json = message_json(&message);
    assert_eq!(json["to_user_name"], "gh");
    assert_eq!(
        json["msg_id"], "18446744073709551615",
        "64-bit ids stay exact"
    );
    assert_eq!(
        json["send_pics_info"]["pic_list"]["item"][1]["pic_md5_sum"],
        "b"
    );
}

#[test]
fn a_json_push_is_forwarded_as_its_xml_twin() {
    let xml = "<xml><ToUserName><![CDATA[gh]]></ToUserName><FromUserName><![CDATA[o]]></FromUserName><CreateTime>1714112445</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hi]]></Content><MsgId>18446744073709551615</MsgId></xml>";
    let json = r#"{"ToUserName":"gh","FromUserName":"o","CreateTime":1714112445,"MsgType":"text","Content":"hi","MsgId":18446744073709551615}"#;
    let from_xml = message_json(&Message::parse(xml).unwrap());
    let from_json = message_json(&Message::parse_json(json).unwrap());
    assert_eq!(from_json, from_xml);
    assert_eq!(from_json["msg_id"], "18446744073709551615");
    assert_eq!(from_json["create_time"], "1714112445");
    // Nested objects and arrays are kept, as objects and arrays.
    let event = r#"{"ToUserName":"gh","FromUserName":"o","CreateTime":1,"MsgType":"event","Event":"subscribe_msg_popup_event","List":[{"TemplateId":"t1","SubscribeStatusString":"accept","PopupScene":0}],"Result":{"Suggest":"pass","Label":100},"Detail":[],"Flag":true,"Gone":null}"#;
    let value = message_json(&Message::parse_json(event).unwrap());
    assert_eq!(
        value["list"],
        json!([{ "template_id": "t1", "subscribe_status_string": "accept", "popup_scene": "0" }])
    );
    assert_eq!(
        value["result"],
        json!({ "suggest": "pass", "label": "100" })
    );
    assert_eq!(value["detail"], json!([]));
    assert_eq!(
        (value["flag"].clone(), value["gone"].clone()),
        (json!("true"), json!(""))
    );
}

#[test]
fn replies_from_the_service() {
    assert_eq!(parse_reply("").unwrap(), None);
    assert_eq!(parse_reply("{}").unwrap(), None);
    assert_eq!(parse_reply("{\"reply\": null}").unwrap(), None);
    assert_eq!(
        parse_reply("{\"reply\":{\"type\":\"text\",\"content\":\"hi\"}}").unwrap(),
        Some(Reply::Text {
            content: "hi".into()
        })
    );
    let news = parse_reply(
        "{\"reply\":{\"type\":\"news\",\"articles\":[{\"title\":\"t\",\"url\":\"u\"}]}}",
    )
    .unwrap()
    .unwrap();
    assert_eq!(reply_json(&news).unwrap()["articles"][0]["title"], "t");
    assert!(parse_reply("<html>")
        .unwrap_err()
        .to_string()
        .contains("not JSON"));
    assert!(parse_reply("{\"reply\":{\"type\":\"sticker\"}}")
        .unwrap_err()
        .to_string()
        .contains("sticker"));
    assert!(parse_reply("{\"reply\":{\"type\":\"text\",\"content\":\"\"}}").is_err());
    for kind in [
        "image",
        "voice",
        "video",
        "music",
        "transfer_customer_service",
    ] {
        let body = format!(
            "{{\"reply\":{{\"type\":\"{kind}\",\"media_id\":\"m\",\"thumb_media_id\":\"t\"}}}}"
        );
        assert!(parse_reply(&body).unwrap().is_some(), "{kind}");
    }
}

#[test]
fn signature_is_hmac_of_timestamp_dot_body() {
    // Python: hmac.new(b"key", b"1.{}", hashlib.sha256).hexdigest()
    assert_eq!(
        signature("key", 1, "{}"),
        "sha256=1ba6b8171186efc613e8bcc0cbdab2748f24984d7c5a84faa2637afa0e40d224"
    );
    assert_eq!(
        signature("secret", 1714112445, "{\"a\":1}"),
        "sha256=511a6f8e2e72c0b57152ab62755c21bf25e852360ce8b777a5e22caec9507ddf"
    );
}

/// The stored form is the service's form: what a record holds reads back as the same
/// reply, and records written before the typed form (absent fields, nulls) still do.
#[test]
fn the_stored_reply_reads_back() {
    let mut record = Record::new(1, "acct", "o:1", json!({}), 0);
    assert_eq!(stored_reply(&record), None, "no reply stored");
    let replies = [
        Reply::Text {
            content: "hi".into(),
        },
        Reply::Video {
            media_id: "m".into(),
            title: None,
            description: Some("d".into()),
        },
        Reply::Music {
            title: Some("t".into()),
            description: None,
            music_url: None,
            hq_music_url: Some("h".into()),
            thumb_media_id: "th".into(),
        },
        Reply::News {
            articles: vec![Article {
                title: "t".into(),
                description: String::new(),
                pic_url: "p".into(),
                url: "u".into(),
            }],
        },
        Reply::TransferCustomerService { kf_account: None },
    ];
    for reply in replies {
        record.service_reply = reply_json(&reply);
        assert_eq!(stored_reply(&record), Some(reply.clone()), "{reply:?}");
        let answer = json!({ "reply": record.service_reply }).to_string();
        assert_eq!(parse_reply(&answer).unwrap(), Some(reply));
    }
    assert_eq!(
        reply_json(&Reply::Video {
            media_id: "m".into(),
            title: None,
            description: None
        }),
        Some(json!({ "type": "video", "media_id": "m", "title": null, "description": null })),
        "the form records have always had"
    );
    for (stored, reply) in [
        (
            json!({ "type": "text", "content": "svc: message 2" }),
            Some(Reply::Text {
                content: "svc: message 2".into(),
            }),
        ),
        (
            json!({ "type": "news", "articles": [{ "title": "t", "url": null }] }),
            Some(Reply::News {
                articles: vec![Article {
                    title: "t".into(),
                    ..Article::default()
                }],
            }),
        ),
        (json!({ "type": "sticker" }), None),
        (json!("text"), None),
    ] {
        record.service_reply = Some(stored.clone());
        assert_eq!(stored_reply(&record), reply, "{stored}");
    }
}
