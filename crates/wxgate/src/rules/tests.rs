use super::*;

fn rules(toml_text: &str) -> Vec<Rule> {
    #[derive(Deserialize)]
    struct File {
        rule: Vec<RawRule>,
    }
    let file: File = toml::from_str(toml_text).unwrap();
    file.rule
        .into_iter()
        .map(|r| Rule::compile(r).unwrap())
        .collect()
}

fn text(content: &str) -> Message {
    Message::parse(&format!(
        "<xml><ToUserName>gh_a</ToUserName><FromUserName>oUser</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType><Content><![CDATA[{content}]]></Content><MsgId>9</MsgId></xml>"
    ))
    .unwrap()
}

fn event(name: &str, key: &str) -> Message {
    Message::parse(&format!(
        "<xml><ToUserName>gh_a</ToUserName><FromUserName>oUser</FromUserName><CreateTime>1</CreateTime><MsgType>event</MsgType><Event>{name}</Event><EventKey>{key}</EventKey></xml>"
    ))
    .unwrap()
}

fn text_reply(decision: Decision) -> String {
    match decision {
        Decision::Reply(Reply::Text { content }) => content,
        other => panic!("expected a text reply, got {other:?}"),
    }
}

const BOT: &str = r#"
[[rule]]
when = { msg_type = "event", event = "subscribe" }
reply = { text = "welcome {from}" }
[[rule]]
when = { msg_type = "event", event = "CLICK", event_key = "V1" }
reply = { text = "clicked {event_key}" }
[[rule]]
when = { msg_type = "event", event = "unsubscribe" }
reply = { success = true }
[[rule]]
when = { msg_type = "text", keyword = "help" }
reply = { text = "help text" }
[[rule]]
when = { contains = "price" }
reply = { news = [{ title = "Prices", url = "https://example.com/p" }] }
[[rule]]
when = { regex = "^\\d{6}$" }
reply = { text = "code {content}" }
[[rule]]
when = { msg_type = "text" }
reply = { text = "echo: {content} {{literal}}" }
"#;

#[test]
fn first_match_wins_in_order() {
    let bot = rules(BOT);
    assert_eq!(
        text_reply(decide(&bot, &event("subscribe", ""))),
        "welcome oUser"
    );
    assert_eq!(
        text_reply(decide(&bot, &event("CLICK", "V1"))),
        "clicked V1"
    );
    assert_eq!(decide(&bot, &event("CLICK", "V2")), Decision::NoMatch);
    assert_eq!(decide(&bot, &event("unsubscribe", "")), Decision::Success);
    assert_eq!(text_reply(decide(&bot, &text(" HELP "))), "help text");
    assert_eq!(
        text_reply(decide(&bot, &text("helpme"))),
        "echo: helpme {literal}"
    );
    assert!(matches!(
        decide(&bot, &text("what is the PRICE?")),
        Decision::Reply(Reply::News { .. })
    ));
    assert_eq!(text_reply(decide(&bot, &text("123456"))), "code 123456");
    assert_eq!(
        text_reply(decide(&bot, &text("1234567"))),
        "echo: 1234567 {literal}"
    );
}

#[test]
fn qr_scene_matches_event_key_with_and_without_prefix() {
    let bot = rules("[[rule]]\nwhen = { event = \"subscribe\", event_key = \"42\" }\nreply = { text = \"scene 42\" }\n");
    assert_eq!(
        text_reply(decide(&bot, &event("subscribe", "qrscene_42"))),
        "scene 42"
    );
    assert_eq!(
        decide(&bot, &event("subscribe", "qrscene_43")),
        Decision::NoMatch
    );
}

#[test]
fn echo_of_empty_content_sends_nothing() {
    let bot = rules("[[rule]]\nreply = { text = \"{content}\" }\n");
    assert_eq!(decide(&bot, &text("")), Decision::Success);
    assert_eq!(text_reply(decide(&bot, &text("x"))), "x");
}

#[test]
fn default_rule_without_when_matches_events_too() {
    let bot = rules("[[rule]]\nreply = { text = \"default\" }\n");
    assert_eq!(text_reply(decide(&bot, &event("LOCATION", ""))), "default");
}

#[test]
fn every_reply_kind_compiles() {
    let bot = rules(
        r#"
[[rule]]
reply = { image = "m1" }
[[rule]]
reply = { voice = "m2" }
[[rule]]
reply = { video = { media_id = "m3", title = "t" } }
[[rule]]
reply = { music = { thumb_media_id = "m4", music_url = "https://x/y.mp3" } }
[[rule]]
reply = { transfer_customer_service = {} }
[[rule]]
reply = { transfer_customer_service = { kf_account = "kf1@gh_a" } }
"#,
    );
    assert_eq!(bot.len(), 6);
}

#[test]
fn invalid_replies_are_refused() {
    #[derive(Deserialize)]
    struct File {
        rule: Vec<RawRule>,
    }
    let compile = |text: &str| {
        let file: File = toml::from_str(text).unwrap();
        Rule::compile(file.rule.into_iter().next().unwrap()).map_err(|e| e.to_string())
    };
    assert!(compile("[[rule]]\nreply = {}\n")
        .unwrap_err()
        .contains("exactly one"));
    assert!(compile("[[rule]]\nreply = { text = \"\" }\n")
        .unwrap_err()
        .contains("empty"));
    assert!(compile("[[rule]]\nreply = { image = \"\" }\n")
        .unwrap_err()
        .contains("media_id"));
    assert!(compile("[[rule]]\nreply = { news = [] }\n")
        .unwrap_err()
        .contains("without articles"));
    let nine = format!(
        "[[rule]]\nreply = {{ news = [{}] }}\n",
        ["{ title = \"t\" }"; 9].join(",")
    );
    assert!(compile(&nine).unwrap_err().contains("at most 8"));
}

#[test]
fn a_text_reply_uses_the_capture_groups_of_the_regex() {
    let bot = rules(
        r#"
[[rule]]
when = { regex = '^order (?P<id>\d+) (\w+)$' }
reply = { text = "order {id} ({2}), all: {0}" }

[[rule]]
when = { msg_type = "event", regex = '^scene_(\d+)$' }
reply = { text = "scene {1}" }
"#,
    );
    assert_eq!(
        text_reply(decide(&bot, &text("order 42 red"))),
        "order 42 (red), all: order 42 red"
    );
    assert_eq!(
        text_reply(decide(&bot, &event("SCAN", "scene_7"))),
        "scene 7"
    );
}

#[test]
fn an_unknown_capture_group_is_refused() {
    #[derive(Deserialize)]
    struct File {
        rule: Vec<RawRule>,
    }
    let compile = |text: &str| {
        let file: File = toml::from_str(text).unwrap();
        Rule::compile(file.rule.into_iter().next().unwrap()).map_err(|e| e.to_string())
    };
    let two = compile("[[rule]]\nwhen = { regex = '(a)(?P<b>b)' }\nreply = { text = \"{3}\" }\n")
        .unwrap_err();
    assert!(two.contains("capture group {3}"), "{two}");
    assert!(two.contains("{0} to {2}, {b}"), "{two}");
    let none = compile("[[rule]]\nreply = { text = \"{1}\" }\n").unwrap_err();
    assert!(none.contains("no when.regex"), "{none}");
    let named = compile("[[rule]]\nwhen = { regex = '(?P<id>a)' }\nreply = { text = \"{ids}\" }\n")
        .unwrap_err();
    assert!(named.contains("unknown placeholder {ids}"), "{named}");
}
