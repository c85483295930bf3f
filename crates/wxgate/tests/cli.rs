//! The setup commands, run as the real binary: init, check, sign, url and sim (doctor
//! has `tests/doctor.rs`).

mod common;

use std::path::Path;
use std::sync::Arc;

use common::tools::{json, out, temp_dir, wxgate, wxgate_args, wxgate_async};
use common::*;

// ---------------------------------------------------------------- init

#[test]
fn init_writes_random_secrets_and_never_overwrites_without_force() {
    let dir = temp_dir("init");
    let output = wxgate(
        &dir,
        &[
            "init",
            "--app-id",
            "wx1234567890abcdef",
            "--name",
            "shop",
            "--json",
        ],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let first = json(&output);
    let token = first["token"].as_str().unwrap();
    let key = first["encoding_aes_key"].as_str().unwrap();
    assert_eq!(token.len(), 32);
    assert!(token.chars().all(|c| c.is_ascii_alphanumeric()));
    assert_eq!(key.len(), 43);
    assert!(wxgate_proto::EncodingAesKey::parse(key).is_ok());
    assert_eq!(first["url"], "https://YOUR.DOMAIN/wx/shop");
    let written = std::fs::read_to_string(dir.join("wxgate.toml")).unwrap();
    assert!(written.contains(token) && written.contains(key));
    let config = wxgate::config::Config::load(&dir.join("wxgate.toml")).unwrap();
    assert_eq!(config.accounts[0].name, "shop");

    let again = wxgate(&dir, &["init"]);
    assert_eq!(again.status.code(), Some(1), "refuses to overwrite");
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    assert_eq!(
        std::fs::read_to_string(dir.join("wxgate.toml")).unwrap(),
        written,
        "file untouched"
    );

    let forced = wxgate(&dir, &["init", "--force", "--json"]);
    assert!(forced.status.success());
    assert_ne!(json(&forced)["token"], first["token"], "a new random Token");

    let human = wxgate(&temp_dir("init-human"), &["init"]);
    let text = out(&human);
    assert!(
        text.contains("令牌(Token)")
            && text.contains("消息加解密密钥(EncodingAESKey)")
            && text.contains("安全模式"),
        "{text}"
    );
}

// ---------------------------------------------------------------- check

#[test]
fn check_reports_every_problem_with_file_line_and_fix() {
    let dir = temp_dir("check");
    std::fs::write(
        dir.join("bad.toml"),
        "[[account]]\nname = \"a\"\napp_id = \"WX1234\"\ntoken = \"to ken\"\nencoding_aes_key = \"short\"\nmode = \"safe\"\n\
         [[account]]\nname = \"a\"\napp_id = \"wx1234567890abcdef\"\ntoken = \"yourToken\"\n",
    )
    .unwrap();
    let output = wxgate(&dir, &["check", "--config", "bad.toml"]);
    assert_eq!(output.status.code(), Some(1));
    let text = out(&output);
    for needle in [
        "bad.toml:3: account[0].app_id",
        "bad.toml:4: account[0].token",
        "bad.toml:5: account[0].encoding_aes_key",
        "bad.toml:8: account[1].name",
        "bad.toml:10: account[1].token",
        "fix:",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    let report = json(&wxgate(&dir, &["check", "--config", "bad.toml", "--json"]));
    assert_eq!(report["ok"], false);
    assert!(
        report["findings"].as_array().unwrap().len() >= 6,
        "{report}"
    );

    std::fs::write(
        dir.join("good.toml"),
        "[[account]]\nname = \"a\"\napp_id = \"wx5f3c8a9b1d2e4f60\"\ntoken = \"Zeta9Token\"\nencoding_aes_key = \"Qm9yaXNUaGVCcmF2ZUFuZFRoZUtleU1ha2VyMjAyNXg\"\n",
    )
    .unwrap();
    let good = wxgate(&dir, &["check", "--config", "good.toml"]);
    assert!(good.status.success(), "{}", out(&good));
    assert!(out(&good).contains("no problems"));

    let syntax = dir.join("syntax.toml");
    std::fs::write(&syntax, "[[account]\n").unwrap();
    assert_eq!(
        wxgate(&dir, &["check", "--config", "syntax.toml"])
            .status
            .code(),
        Some(1)
    );
    assert_eq!(
        wxgate(&dir, &["check", "--config", "missing.toml"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        wxgate(
            &dir,
            &[
                "check",
                "--config",
                "good.toml",
                "--url",
                "https://x.com/wx"
            ]
        )
        .status
        .code(),
        Some(2)
    );
    assert_eq!(
        wxgate(&dir, &["check", "--no-such-flag"]).status.code(),
        Some(2)
    );
}

#[test]
fn check_values_passing_and_failing() {
    let dir = temp_dir("check-values");
    // (args, exit code, needle in output): warnings alone exit 0 (1 with --strict).
    let cases: &[(&[&str], i32, &str)] = &[
        (
            &["--url", "https://wx.example.com/wx/shop"],
            0,
            "no problems",
        ),
        (&["--url", "http://wx.example.com/wx"], 0, "no problems"),
        (
            &["--url", "wx.example.com/wx"],
            1,
            "does not start with http",
        ),
        (&["--url", "https://wx.example.com/wx#top"], 1, "'#'"),
        (&["--url", "https://wx.example.com/wx%20a"], 1, "'%'"),
        (
            &["--url", "https://wx.example.com/wx?a=1"],
            1,
            "query string",
        ),
        (&["--url", "https://wx.example.com:8443/wx"], 1, "port 8443"),
        (&["--url", "http://localhost/wx"], 0, "this machine"),
        (&["--url", "http://192.168.1.5/wx"], 0, "private"),
        (
            &["--url", "http://169.254.1.1/wx"],
            0,
            "private, loopback or link-local",
        ),
        (&["--url", "http://8.8.8.8/wx"], 0, "bare IP"),
        (&["--token", "Abc123"], 0, "no problems"),
        (&["--token", "ab"], 1, "3 to 32"),
        (&["--token", &"a".repeat(33)], 1, "3 to 32"),
        (&["--token", "my-token"], 1, "letters and digits"),
        (&["--token", "MyToken "], 1, "whitespace"),
        (
            &["--aes-key", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"],
            0,
            "no problems",
        ),
        (
            &["--aes-key", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEF"],
            1,
            "42 characters",
        ),
        (
            &["--aes-key", "abcdefghijklmnopqrstuvwxyz0123456789ABCDE+G"],
            1,
            "not a letter or digit",
        ),
        (&["--app-id", "wx1234567890abcdef"], 0, "no problems"),
        (&["--app-id", "wx1234567890ABCDEF"], 1, "uppercase"),
        (&["--app-id", "gh_1234567890ab"], 1, "16 hex digits"),
    ];
    for (args, code, needle) in cases {
        let mut full = vec!["check"];
        full.extend_from_slice(args);
        let output = wxgate(&dir, &full);
        let text = out(&output);
        assert_eq!(output.status.code(), Some(*code), "{args:?}: {text}");
        assert!(
            text.contains(needle),
            "{args:?}: expected {needle:?} in {text}"
        );
        if text.contains("! warning") && text.contains("0 error(s)") {
            assert_eq!(*code, 0, "{args:?}: warnings only");
            full.push("--strict");
            let strict = wxgate(&dir, &full);
            assert_eq!(strict.status.code(), Some(1), "{args:?} --strict");
        }
    }
}

// ---------------------------------------------------------------- sign and url

#[test]
fn sign_matches_the_vectors_and_explains_with_secrets_masked() {
    let dir = temp_dir("sign");
    let output = wxgate(
        &dir,
        &[
            "sign",
            "verify",
            "--token",
            "Zeta9Token",
            "--timestamp",
            "1712345678",
            "--nonce",
            "880417233",
            "--explain",
        ],
    );
    let text = out(&output);
    assert!(
        text.contains("a79da134419b0cf099b71f4dc6280e376e86e615"),
        "{text}"
    );
    assert!(
        text.contains("sha1 of: 1712345678880417233Ze******en"),
        "{text}"
    );
    assert!(!text.contains("Zeta9Token"), "the Token is masked: {text}");

    let output = wxgate(
        &dir,
        &[
            "sign",
            "msg",
            "--token",
            "aardvarkTok",
            "--timestamp",
            "1700000001",
            "--nonce",
            "Bq7xLm2",
            "--encrypt",
            "AAAA+///BBBB/+++CCCC==",
            "--json",
        ],
    );
    assert_eq!(
        json(&output)["signature"],
        "1252e5824980932e24f8fbecf3d7969367834e49"
    );

    let output = wxgate(
        &dir,
        &[
            "sign",
            "jssdk",
            "--ticket",
            "kgt8ON7yVITDhtdwci0qeT1kX0mCx0zAqN6w-sI3W7Jp2Fb4Lw9yR5sV8cP1aD3eG",
            "--noncestr",
            "n0nce",
            "--timestamp",
            "1718020002",
            "--url",
            "https://h5.example.org/app/?tab=cart#/checkout?step=2",
            "--explain",
            "--json",
        ],
    );
    let value = json(&output);
    assert_eq!(
        value["signature"],
        "9351c2bb980e3fd98417913f384a81263a1dd5c7"
    );
    assert!(value["hashed"]
        .as_str()
        .unwrap()
        .ends_with("&url=https://h5.example.org/app/?tab=cart"));
    assert!(
        !value["hashed"]
            .as_str()
            .unwrap()
            .contains("kgt8ON7yVITDhtdwci0q"),
        "ticket masked"
    );
    assert!(value["warnings"][0].as_str().unwrap().contains("fragment"));

    let output = wxgate(
        &dir,
        &[
            "sign",
            "jssdk",
            "--ticket",
            "t",
            "--noncestr",
            "n",
            "--timestamp",
            "1",
            "--url",
            "https%3A%2F%2Fexample.com%2F",
        ],
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("percent-encoded"));
}

#[test]
fn url_builds_wechat_urls_and_validates_inputs() {
    let dir = temp_dir("url");
    let output = wxgate(
        &dir,
        &[
            "url",
            "oauth",
            "--app-id",
            "wx5f3c8a9b1d2e4f60",
            "--redirect-uri",
            "https://m.example.net/oauth/cb?next=/orders/42&lang=zh_CN",
            "--scope",
            "snsapi_base",
            "--state",
            "St8te01",
        ],
    );
    assert_eq!(
        out(&output).trim(),
        "https://open.weixin.qq.com/connect/oauth2/authorize?appid=wx5f3c8a9b1d2e4f60&redirect_uri=https%3A%2F%2Fm.example.net%2Foauth%2Fcb%3Fnext%3D%2Forders%2F42%26lang%3Dzh_CN&response_type=code&scope=snsapi_base&state=St8te01#wechat_redirect"
    );
    let output = wxgate(
        &dir,
        &[
            "url",
            "qrconnect",
            "--app-id",
            "wx0a1b2c3d4e5f6071",
            "--redirect-uri",
            "https://www.example.net/login/wechat/callback?src=pc&r=%2Fhome",
            "--state",
            "Login2025",
        ],
    );
    assert!(out(&output).contains("redirect_uri=https%3A%2F%2Fwww.example.net%2Flogin%2Fwechat%2Fcallback%3Fsrc%3Dpc%26r%3D%252Fhome"));
    let random_state = out(&wxgate(
        &dir,
        &[
            "url",
            "oauth",
            "--app-id",
            "wx5f3c8a9b1d2e4f60",
            "--redirect-uri",
            "https://a.b/c",
            "--scope",
            "snsapi_userinfo",
        ],
    ));
    assert!(random_state.contains("&state=") && random_state.trim().ends_with("#wechat_redirect"));

    let output = wxgate(
        &dir,
        &[
            "url",
            "scheme",
            "--app-id",
            "wx1234567890abcdef",
            "--path",
            "pages/index/index",
            "--query",
            "a=1&b=2",
            "--env-version",
            "trial",
        ],
    );
    assert_eq!(out(&output).trim(), "weixin://dl/business/?appid=wx1234567890abcdef&path=pages/index/index&query=a%3D1%26b%3D2&env_version=trial");
    let output = wxgate(&dir, &["url", "showqrcode", "--ticket", "gQH4+8/=="]);
    assert_eq!(
        out(&output).trim(),
        "https://mp.weixin.qq.com/cgi-bin/showqrcode?ticket=gQH4%2B8%2F%3D%3D"
    );

    // (args, needle in stderr): every rule has a failing case.
    let failures: &[(&[&str], &str)] = &[
        (
            &[
                "oauth",
                "--app-id",
                "wx5f3c8a9b1d2e4f60",
                "--redirect-uri",
                "/relative",
                "--scope",
                "snsapi_base",
            ],
            "absolute",
        ),
        (
            &[
                "oauth",
                "--app-id",
                "wx5f3c8a9b1d2e4f60",
                "--redirect-uri",
                "https://a.b/c#x",
                "--scope",
                "snsapi_base",
            ],
            "'#'",
        ),
        (
            &[
                "oauth",
                "--app-id",
                "wx5f3c8a9b1d2e4f60",
                "--redirect-uri",
                "https://a.b/c",
                "--scope",
                "snsapi_base",
                "--state",
                "a-b",
            ],
            "letters and digits",
        ),
        (
            &[
                "qrconnect",
                "--app-id",
                "wx0a1b2c3d4e5f6071",
                "--redirect-uri",
                "https://a.b/c",
                "--state",
                &"s".repeat(129),
            ],
            "128",
        ),
        (
            &[
                "scheme",
                "--app-id",
                "wx1234567890abcdef",
                "--path",
                "/pages/index",
            ],
            "must not start with '/'",
        ),
        (
            &[
                "scheme",
                "--app-id",
                "wx1234567890abcdef",
                "--path",
                "pages/index?a=1",
            ],
            "query",
        ),
        (
            &[
                "scheme",
                "--app-id",
                "wx1234567890abcdef",
                "--path",
                "pages/index",
                "--query",
                &"q".repeat(513),
            ],
            "512",
        ),
    ];
    for (args, needle) in failures {
        let mut full = vec!["url"];
        full.extend_from_slice(args);
        let output = wxgate(&dir, &full);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
    assert_eq!(
        wxgate(
            &dir,
            &[
                "url",
                "oauth",
                "--app-id",
                "x",
                "--redirect-uri",
                "https://a",
                "--scope",
                "snsapi_login"
            ]
        )
        .status
        .code(),
        Some(2)
    );
}

#[test]
fn every_command_has_help_with_an_example() {
    let dir = temp_dir("help");
    // Every command and subcommand clap knows, from the help texts themselves.
    let mut pending: Vec<Vec<String>> = subcommands(&dir, &[])
        .into_iter()
        .map(|name| vec![name])
        .collect();
    let mut seen = 0;
    while let Some(path) = pending.pop() {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let output = wxgate(&dir, &args);
        assert!(output.status.success(), "{path:?}");
        let text = out(&output);
        assert!(
            text.contains("Example"),
            "{path:?} --help has no example:\n{text}"
        );
        seen += 1;
        let parent: Vec<&str> = path.iter().map(String::as_str).collect();
        for sub in subcommands(&dir, &parent) {
            let mut child = path.clone();
            child.push(sub);
            pending.push(child);
        }
    }
    assert!(seen >= 25, "only {seen} commands found");
}

/// The subcommands a `--help` lists under `Commands:` (without `help`).
fn subcommands(dir: &Path, path: &[&str]) -> Vec<String> {
    let mut args = path.to_vec();
    args.push("--help");
    let text = out(&wxgate(dir, &args));
    text.lines()
        .skip_while(|line| !line.starts_with("Commands:"))
        .skip(1)
        .take_while(|line| line.starts_with("  "))
        .filter(|line| !line.starts_with("   "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

// ---------------------------------------------------------------- sim

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_talks_to_wxgate_in_each_mode() {
    let server = TestServer::start(&config_text("")).await;
    for (account, extra) in [
        ("plain", vec![]),
        ("compat", vec!["--mode", "compat"]),
        ("safe", vec![]),
    ] {
        let url = format!("{}/wx/{account}", server.base);
        let mut args: Vec<String> = ["sim", "--url", &url, "--token", TOKEN, "--json"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        if account != "plain" {
            args.extend(
                ["--aes-key", KEY, "--app-id", APP_ID]
                    .iter()
                    .map(|s| s.to_string()),
            );
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        args.extend(["text", "你好 sim"].iter().map(|s| s.to_string()));
        let output = wxgate_async(args).await;
        let report = json(&output);
        assert_eq!(output.status.code(), Some(0), "{account}: {report:#}");
        assert_eq!(report["reply"], "text \"你好 sim\"", "{account}");
        if account != "plain" {
            assert!(
                report["checks"]
                    .to_string()
                    .contains("MsgSignature verifies"),
                "{report}"
            );
        }
    }
    // An event with no matching rule: success is a valid answer.
    let url = format!("{}/wx/safe", server.base);
    let output = wxgate_args(&[
        "sim",
        "--url",
        &url,
        "--token",
        TOKEN,
        "--aes-key",
        KEY,
        "--app-id",
        APP_ID,
        "event",
        "click",
        "MENU_1",
    ])
    .await;
    assert!(output.status.success(), "{}", out(&output));
    assert!(out(&output).contains("(none: success)"));
    // The subscribe rule.
    let output = wxgate_args(&[
        "sim",
        "--url",
        &url,
        "--token",
        TOKEN,
        "--aes-key",
        KEY,
        "--app-id",
        APP_ID,
        "event",
        "subscribe",
    ])
    .await;
    assert!(
        out(&output).contains("reply: text \"welcome\""),
        "{}",
        out(&output)
    );
    // URL verification.
    let output = wxgate_args(&["sim", "--url", &url, "--token", TOKEN, "verify"]).await;
    assert!(output.status.success(), "{}", out(&output));
    // A wrong Token: refused, exit 1, with the status shown.
    let output = wxgate_args(&[
        "sim",
        "--url",
        &url,
        "--token",
        "WrongToken1",
        "--aes-key",
        KEY,
        "--app-id",
        APP_ID,
        "text",
        "x",
    ])
    .await;
    assert_eq!(output.status.code(), Some(1));
    assert!(out(&output).contains("HTTP 403"), "{}", out(&output));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_uses_the_config_account() {
    let dir = temp_dir("sim-config");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let text = config_text(&format!("listen = \"{addr}\""));
    std::fs::write(dir.join("wxgate.toml"), &text).unwrap();
    let config = wxgate::config::Config::parse(&text, "t").unwrap();
    let state = Arc::new(wxgate::app::AppState::new(&config));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(wxgate::http::serve(listener, state, async {
        let _ = rx.await;
    }));
    let config_path = dir.join("wxgate.toml").display().to_string();
    let output = wxgate_args(&[
        "sim",
        "--config",
        &config_path,
        "--account",
        "safe",
        "location",
        "23.1",
        "-113.2",
    ])
    .await;
    assert!(output.status.success(), "{}", out(&output));
    assert!(out(&output).contains("(safe mode)"), "{}", out(&output));
    let _ = tx.send(());
    handle.await.unwrap().unwrap();
}

/// `sim` speaks WeCom to a WeCom account from the config: the encrypted echostr, and a
/// push with the CorpID and AgentID whose encrypted reply it opens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_speaks_wecom_to_a_wecom_account() {
    let dir = temp_dir("sim-wecom");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let text = format!(
        "listen = \"{addr}\"\n[[account]]\nname = \"corp\"\nkind = \"wecom\"\ncorp_id = \"ww3f2e1d0c9b8a7654\"\nagent_id = 1000002\n\
         token = \"{TOKEN}\"\nencoding_aes_key = \"{KEY}\"\n\
         [[account.rule]]\nwhen = {{ msg_type = \"text\" }}\nreply = {{ text = \"echo {{content}}\" }}\n"
    );
    std::fs::write(dir.join("wxgate.toml"), &text).unwrap();
    let config = wxgate::config::Config::parse(&text, "t").unwrap();
    let state = Arc::new(wxgate::app::AppState::new(&config));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(wxgate::http::serve(listener, state, async {
        let _ = rx.await;
    }));
    let config_path = dir.join("wxgate.toml").display().to_string();
    let verify = wxgate_args(&["sim", "--config", &config_path, "verify"]).await;
    assert!(verify.status.success(), "{}", out(&verify));
    let text_push = wxgate_args(&["sim", "--config", &config_path, "text", "hello corp"]).await;
    let out = out(&text_push);
    assert!(text_push.status.success(), "{out}");
    assert!(out.contains("echo hello corp"), "{out}");
    assert!(out.contains("encryption"), "the reply was opened: {out}");
    let _ = tx.send(());
    handle.await.unwrap().unwrap();
}

/// Regression: clap joined the lines of every command's "Examples:" block into one
/// line. Each example now stands on its own line.
#[test]
fn help_examples_stand_on_their_own_lines() {
    for command in [
        "serve", "init", "check", "sign", "url", "sim", "doctor", "emulate", "inbox", "status",
        "health", "reload",
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_wxgate"))
            .args([command, "--help"])
            .output()
            .unwrap();
        let help = String::from_utf8(output.stdout).unwrap();
        let examples: Vec<&str> = help
            .lines()
            .skip_while(|l| !l.starts_with("Example"))
            .skip(1)
            .take_while(|l| !l.trim().is_empty())
            .collect();
        assert!(!examples.is_empty(), "{command}: no examples in\n{help}");
        for line in examples {
            assert!(
                line.starts_with("  wxgate ") && line.matches(" wxgate ").count() == 1,
                "{command}: {line:?}"
            );
        }
    }
}
