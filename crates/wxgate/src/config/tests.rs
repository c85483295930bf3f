use super::*;

const KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";

fn minimal(extra: &str) -> String {
    format!(
        "[[account]]\nname = \"a\"\napp_id = \"wx1234567890abcdef\"\ntoken = \"tok123\"\n{extra}"
    )
}

#[track_caller]
fn check_error(text: &str, line: Option<usize>, key: &str, needle: &str) {
    let err = Config::parse(text, "wxgate.toml").expect_err("config must be refused");
    assert_eq!(err.key, key, "{err}");
    assert_eq!(err.line, line, "{err}");
    assert!(
        err.to_string().contains(needle),
        "{err} should mention {needle:?}"
    );
    assert!(err.to_string().starts_with("wxgate.toml"), "{err}");
}

#[test]
fn defaults() {
    let config = Config::parse(&minimal(""), "t").unwrap();
    assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(config.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
    let account = &config.accounts[0];
    assert_eq!(account.mode, Mode::Plain);
    assert_eq!(account.timestamp_window_s, 300);
    assert!(account.dedup);
    let with_key = Config::parse(&minimal(&format!("encoding_aes_key = \"{KEY}\"")), "t").unwrap();
    assert_eq!(
        with_key.accounts[0].mode,
        Mode::Safe,
        "a key without a mode means safe"
    );
}

#[test]
fn demo_config_is_valid() {
    let config = Config::demo().unwrap();
    assert_eq!(config.accounts[0].name, "demo");
    assert_eq!(config.accounts[0].mode, Mode::Compat);
    assert!(config.accounts[0].rules.len() >= 3);
}

#[test]
fn example_config_is_valid() {
    let text = include_str!("../../../../wxgate.example.toml");
    let config = Config::parse(text, "wxgate.example.toml").unwrap();
    assert!(
        config.accounts.len() >= 2,
        "the example shows several accounts"
    );
}

#[test]
fn errors_name_file_line_and_key() {
    check_error(
        &minimal("token = \"x\""),
        Some(5),
        "(syntax)",
        "duplicate key",
    );
    check_error(
        "[[account]]\nname = \"a\"\napp_id = \"wx1234567890abcdef\"\ntoken = \"ab\"\n",
        Some(4),
        "account[0].token",
        "2 characters",
    );
    check_error(
        "[[account]]\nname = \"a\"\napp_id = \"wx1234567890abcdef\"\ntoken = \"abc def\"\n",
        Some(4),
        "account[0].token",
        "' '",
    );
    check_error(
        "[[account]]\nname = \"a\"\napp_id = \"WX1234567890ABCDEF\"\ntoken = \"abc\"\n",
        Some(3),
        "account[0].app_id",
        "lowercase",
    );
    check_error(
        &minimal("encoding_aes_key = \"short\""),
        Some(5),
        "account[0].encoding_aes_key",
        "43",
    );
    check_error(
        &minimal("mode = \"safe\""),
        Some(5),
        "account[0].mode",
        "needs an EncodingAESKey",
    );
    check_error(
        &minimal("mode = \"secure\""),
        Some(5),
        "account[0].mode",
        "plain",
    );
    check_error(
        &minimal("mode = \"Safe\""),
        Some(5),
        "account[0].mode",
        "did you mean \"safe\"?",
    );
    check_error(
        &minimal("tokn = \"x\""),
        Some(5),
        "account[0].tokn",
        "unknown key `tokn`; did you mean `token`?",
    );
    check_error(
        "listen = \"localhost\"\n",
        Some(1),
        "listen",
        "address:port",
    );
    check_error("", None, "account", "no [[account]]");
    let twice = format!("{}\n{}", minimal(""), minimal(""));
    check_error(&twice, Some(7), "account[1].name", "used twice");
    check_error(
        &minimal("[[account.rule]]\nwhen = { regex = \"(\" }\nreply = { text = \"x\" }"),
        Some(5),
        "account[0].rule[0]",
        "not a valid regex",
    );
    check_error(
        &minimal("[[account.rule]]\nreply = { text = \"{nme}\" }"),
        Some(5),
        "account[0].rule[0]",
        "unknown placeholder",
    );
    check_error(
        &minimal("[[account.rule]]\nwhen = { regex = \"(a)\" }\nreply = { text = \"{2}\" }"),
        Some(5),
        "account[0].rule[0]",
        "capture group {2}",
    );
    check_error(
        &minimal("[[account.rule]]\nreply = { text = \"a\", image = \"m\" }"),
        Some(5),
        "account[0].rule[0]",
        "exactly one",
    );
    check_error(
        "[[account]]\nname = \"a/b\"\napp_id = \"wx1234567890abcdef\"\ntoken = \"abc\"\n",
        Some(2),
        "account[0].name",
        "callback path",
    );
}

#[test]
fn config_errors_never_print_secrets() {
    let secret_key = "SECRETsecretSECRETsecretSECRETsecretSECRETs";
    let text = format!(
        "[[account]]\nname = \"a\"\napp_id = \"wx1234567890abcdef\"\napp_secret = \"topsecretvalue\"\ntoken = \"t\"\nencoding_aes_key = \"{secret_key}\"\n"
    );
    let err = Config::parse(&text, "f").unwrap_err().to_string();
    assert!(
        !err.contains("topsecretvalue") && !err.contains(secret_key),
        "{err}"
    );
}

#[test]
fn inbox_retention() {
    assert_eq!(
        Config::parse(&minimal(""), "t")
            .unwrap()
            .keep_delivered_days,
        7
    );
    let forever = format!("[inbox]\nkeep_delivered_days = 0\n{}", minimal(""));
    assert_eq!(Config::parse(&forever, "t").unwrap().keep_delivered_days, 0);
    check_error(
        &format!("[inbox]\nkeep_delivered_days = 4000\n{}", minimal("")),
        Some(2),
        "inbox.keep_delivered_days",
        "at most 3650",
    );
}

#[test]
fn http_bounds_have_defaults_and_ranges() {
    let config = Config::parse(&minimal(""), "t").unwrap();
    assert_eq!(config.http, HttpConfig::default());
    let text = format!(
        "[http]\nheader_timeout_s = 3\nidle_timeout_s = 5\nmax_connections = 100\nshutdown_grace_s = 0\n{}",
        minimal("")
    );
    let config = Config::parse(&text, "t").unwrap();
    assert_eq!(config.http.header_timeout_s, 3);
    assert_eq!(config.http.body_timeout_s, 10);
    assert_eq!(config.http.idle_timeout_s, 5);
    assert_eq!(config.http.max_connections, 100);
    assert_eq!(config.http.shutdown_grace_s, 0);
    check_error(
        &format!("[http]\nheader_timeout_s = 0\n{}", minimal("")),
        Some(2),
        "http.header_timeout_s",
        "between 1 and 300",
    );
    check_error(
        &format!("[http]\nmax_connections = 2\n{}", minimal("")),
        Some(2),
        "http.max_connections",
        "between 16",
    );
}

#[test]
fn forward_bounds_have_defaults_and_ranges() {
    let forward =
        "[account.forward]\nurl = \"http://127.0.0.1:9/x\"\nsecret = \"0123456789abcdef0\"\n";
    let config = Config::parse(&minimal(forward), "t").unwrap();
    let f = config.accounts[0].forward.as_ref().unwrap();
    assert_eq!(
        (f.max_reply_bytes, f.attempt_timeout_ms, f.max_in_flight),
        (65536, 30_000, 32)
    );
    check_error(
        &minimal(&format!("{forward}max_in_flight = 0\n")),
        Some(8),
        "account[0].forward.max_in_flight",
        "max_in_flight must be between 1 and 10000",
    );
}

#[test]
fn forward_backoff_limit() {
    let forward = |extra: &str| {
        minimal(&format!(
            "[account.forward]\nurl = \"http://127.0.0.1:9000/hook\"\nsecret = \"forward-secret-0123456789\"\n{extra}"
        ))
    };
    let backoff = |text: &str| {
        Config::parse(text, "t").unwrap().accounts[0]
            .forward
            .as_ref()
            .unwrap()
            .max_backoff_s
    };
    assert_eq!(backoff(&forward("")), 300);
    assert_eq!(backoff(&forward("max_backoff_s = 1")), 1);
    check_error(
        &forward("max_backoff_s = 0"),
        Some(8),
        "account[0].forward.max_backoff_s",
        "between 1 and 3600",
    );
}

/// The example's placeholders for admin_token, signing_key and the forward secret are
/// warned about where they stand (`serve` runs with them, so `check` must say so).
#[test]
fn published_placeholder_secrets_are_warned() {
    let text = include_str!("../../../../wxgate.example.toml");
    let (config, findings) = check(text, "wxgate.example.toml").unwrap();
    assert!(config.is_some());
    let warned = |key_end: &str| {
        findings.iter().any(|f| {
            f.severity == Severity::Warning
                && f.key.ends_with(key_end)
                && f.problem.contains("placeholder")
                && f.line.is_some()
        })
    };
    assert!(warned("admin_token"), "{findings:#?}");
    assert!(warned("oauth.signing_key"), "{findings:#?}");
    assert!(warned("forward.secret"), "{findings:#?}");
    // A random value is not warned about.
    let own = minimal(
        "[account.forward]\nurl = \"http://127.0.0.1:9000/hook\"\nsecret = \"k3J9sQ2mX8vL5pR1\"\n",
    );
    let (_, findings) = check(&format!("admin_token = \"Zq7Wm2Kx9Lp4Rt8V\"\n{own}"), "t").unwrap();
    assert!(
        !findings
            .iter()
            .any(|f| f.problem.contains("placeholder") && !f.key.ends_with("app_id")),
        "{findings:#?}"
    );
}

fn env(name: &str) -> Result<String, std::env::VarError> {
    match name {
        "WX_TOKEN" => Ok("tokenfromenv".into()),
        "WX_ADMIN" => Ok("admin-token-from-the-environment".into()),
        _ => Err(std::env::VarError::NotPresent),
    }
}

#[test]
fn values_come_from_the_environment() {
    let text = "admin_token = \"${WX_ADMIN}\"\n[[account]]\nname = \"a\"\napp_id = \"wx1234567890abcdef\"\ntoken = \"${WX_TOKEN}\"\n[[account.rule]]\nwhen = { keyword = \"$${x}\" }\nreply = { text = \"$${{literal}}\" }\n";
    let (config, findings) = check_with(text, "t", &env).unwrap();
    assert!(
        findings.iter().all(|f| f.severity == Severity::Warning),
        "{findings:?}"
    );
    let config = config.unwrap();
    use secrecy::ExposeSecret as _;
    assert_eq!(config.accounts[0].token.expose_secret(), "tokenfromenv");
    assert_eq!(
        config.admin_token.unwrap().expose_secret(),
        "admin-token-from-the-environment"
    );
    let message = wxgate_proto::Message::parse(
        "<xml><ToUserName>gh_a</ToUserName><FromUserName>oUser</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType><Content>${x}</Content><MsgId>9</MsgId></xml>",
    )
    .unwrap();
    assert_eq!(
        crate::rules::decide(&config.accounts[0].rules, &message),
        crate::rules::Decision::Reply(wxgate_proto::Reply::Text {
            content: "${literal}".into()
        })
    );
}

#[test]
fn a_variable_from_the_environment_is_checked_like_a_written_value() {
    let text = minimal("").replace("tok123", "${WX_ADMIN}");
    let (_, findings) = check_with(&text, "t", &env).unwrap();
    let finding = findings
        .iter()
        .find(|f| f.key == "account[0].token")
        .unwrap();
    assert_eq!(finding.line, Some(4), "the line of the ${{VAR}}");
}

#[test]
fn a_missing_variable_names_the_line_and_the_key_only() {
    let text = minimal(
        "[account.forward]\nurl = \"http://127.0.0.1:9/\"\nsecret = \"${WX_FORWARD_SECRET}\"\n",
    );
    let error = check_with(&text, "wxgate.toml", &env).unwrap_err();
    assert_eq!(error.line, Some(7), "{error}");
    assert_eq!(error.key, "account[0].forward.secret", "{error}");
    let shown = error.to_string();
    assert!(shown.contains("WX_FORWARD_SECRET is not set"), "{shown}");
    assert!(!shown.contains("tok123"), "other values stay out: {shown}");
    let partial = minimal("app_secret = \"pre${WX_TOKEN}\"");
    let error = check_with(&partial, "t", &env).unwrap_err();
    assert_eq!(
        (error.line, error.key.as_str()),
        (Some(5), "account[0].app_secret")
    );
}
