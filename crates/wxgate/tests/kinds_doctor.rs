//! `doctor` for every kind of account, as the real binary: a config written by `init`
//! passes `check`, serves, and passes `doctor` for an Official Account, a mini-program
//! and a mini-game (JSON in each mode) and a WeCom application; `doctor` fails the right
//! check against a server with another Token, explains a WeCom server that verifies as
//! an Official Account, and never prints a secret.

mod common;

use std::path::PathBuf;

use axum::extract::Query;
use axum::routing::get;
use axum::Router;
use common::tools::*;
use common::{start_binary, KillOnDrop, APP_SECRET, KEY, TOKEN};
use serde_json::Value;

/// One case of the round trip: the flags of `init`, and what `doctor` must report.
struct Case {
    name: &'static str,
    init: &'static [&'static str],
    kind: &'static str,
    format: &'static str,
    mode: &'static str,
}

const CASES: [Case; 5] = [
    Case {
        name: "shop",
        init: &["--app-id", MINI_APP_ID],
        kind: "official_account",
        format: "xml",
        mode: "safe",
    },
    Case {
        name: "mini",
        init: &[
            "--kind",
            "miniprogram",
            "--format",
            "json",
            "--app-id",
            MINI_APP_ID,
        ],
        kind: "miniprogram",
        format: "json",
        mode: "safe",
    },
    Case {
        name: "mini-plain",
        init: &[
            "--kind",
            "miniprogram",
            "--format",
            "json",
            "--mode",
            "plain",
            "--app-id",
            MINI_APP_ID,
        ],
        kind: "miniprogram",
        format: "json",
        mode: "plain",
    },
    Case {
        name: "game",
        init: &[
            "--kind",
            "minigame",
            "--format",
            "json",
            "--mode",
            "compat",
            "--app-id",
            MINI_APP_ID,
        ],
        kind: "minigame",
        format: "json",
        mode: "compat",
    },
    Case {
        name: "corp",
        init: &[
            "--kind",
            "wecom",
            "--corp-id",
            CORP_ID,
            "--agent-id",
            "1000002",
        ],
        kind: "wecom",
        format: "xml",
        mode: "safe",
    },
];

/// init → check → serve → doctor, for one case; returns the doctor report and the
/// secrets it must not print.
fn round_trip(case: &Case) -> (Value, Vec<String>) {
    let dir = temp_dir(case.name);
    let mut args = vec!["init", "--name", case.name, "--json"];
    args.extend(case.init);
    let init = wxgate(&dir, &args);
    assert!(init.status.success(), "{}: {}", case.name, err(&init));
    let written = json(&init);
    assert_eq!(written["kind"], case.kind, "{written}");
    assert_eq!(written["data_format"], case.format, "{written}");
    assert_eq!(written["mode"], case.mode, "{written}");
    let mut secrets = vec![
        written["token"].as_str().unwrap().to_owned(),
        written["encoding_aes_key"].as_str().unwrap().to_owned(),
    ];
    if case.kind == "wecom" {
        // What the printed steps ask for: the application's Secret.
        let path = dir.join("wxgate.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("corp_secret = \"\""), "{text}");
        let filled = text.replace(
            "corp_secret = \"\"",
            &format!("corp_secret = \"{CORP_SECRET}\""),
        );
        std::fs::write(&path, filled).unwrap();
        secrets.push(CORP_SECRET.to_owned());
    }
    let check = wxgate(&dir, &["check"]);
    assert_eq!(
        check.status.code(),
        Some(0),
        "{}: init's config is clean: {}",
        case.name,
        out(&check)
    );

    let (_server, base) = start_binary(&dir);
    let url = format!("{base}/wx/{}", case.name);
    let doctor = wxgate(&dir, &["doctor", &url, "--json"]);
    let report = json(&doctor);
    assert_eq!(doctor.status.code(), Some(0), "{}: {report:#}", case.name);
    assert_eq!(report["kind"], case.kind);
    assert_eq!(report["format"], case.format);
    assert_eq!(report["mode"], case.mode);
    assert_eq!(find_check(&report, "URL verification")["status"], "pass");
    assert_eq!(find_check(&report, "forged signature")["status"], "pass");
    assert_eq!(find_check(&report, "stale timestamp")["status"], "pass");
    let human = wxgate(&dir, &["doctor", &url]);
    assert!(human.status.success(), "{}", out(&human));
    assert!(out(&human).contains(&format!(
        "({}, {}, {} mode)",
        case.kind, case.format, case.mode
    )));
    for output in [&doctor, &human] {
        let printed = format!("{}{}", out(output), err(output));
        for secret in &secrets {
            assert!(
                !printed.contains(secret.as_str()),
                "{}: doctor printed a secret: {printed}",
                case.name
            );
        }
    }
    (report, secrets)
}

#[test]
fn init_check_serve_doctor_is_green_for_every_kind() {
    for case in &CASES {
        let (report, _) = round_trip(case);
        match case.kind {
            "miniprogram" | "minigame" => {
                // The JSON reply, judged as JSON: init's rule hands the user over.
                let reply = find_check(&report, "message: reply JSON");
                assert_eq!(reply["status"], "pass", "{report:#}");
                assert!(reply["detail"]
                    .as_str()
                    .unwrap()
                    .contains("transfer_customer_service"));
                let event = find_check(&report, "event user_enter_tempsession: reply JSON");
                assert_eq!(event["status"], "pass", "{report:#}");
                if case.mode != "plain" {
                    assert_eq!(
                        find_check(&report, "message: encryption")["status"],
                        "pass",
                        "{report:#}"
                    );
                }
            }
            "wecom" => {
                let verify = find_check(&report, "URL verification (WeCom");
                assert_eq!(verify["status"], "pass", "{report:#}");
                assert!(verify["detail"]
                    .as_str()
                    .unwrap()
                    .contains("decrypted echostr"));
                assert_eq!(find_check(&report, "message: encryption")["status"], "pass");
                assert_eq!(find_check(&report, "message: reply XML")["status"], "pass");
                assert_eq!(find_check(&report, "message: To/From")["status"], "pass");
            }
            _ => {
                assert_eq!(find_check(&report, "message: encryption")["status"], "pass");
                assert_eq!(find_check(&report, "message: To/From")["status"], "pass");
            }
        }
    }
}

/// A running wxgate with a JSON mini-program `mini` and a WeCom application `corp`, in
/// a fresh directory; the server, its base URL and the directory.
fn two_kinds_server(name: &str) -> (KillOnDrop, String, PathBuf) {
    let dir = temp_dir(name);
    // api_base on a closed port: the customer-service sends of the text rule fail at
    // once, on this machine.
    let config = format!(
        "api_base = \"http://127.0.0.1:9\"\n{}\n{}",
        mini_account(&format!("app_secret = \"{APP_SECRET}\"")),
        wecom_account(&format!(
            "corp_id = \"{CORP_ID}\"\nagent_id = 1000002\ncorp_secret = \"{CORP_SECRET}\""
        ))
    );
    std::fs::write(dir.join("wxgate.toml"), config).unwrap();
    let (server, base) = start_binary(&dir);
    (server, base, dir)
}

/// A server with another Token: the verification fails, with the hint that names the
/// Token, and no push is sent. The URLs are probed without a config: `--kind` and
/// `--format` say what they serve.
#[test]
fn doctor_against_another_token_fails_verification_with_a_hint() {
    let (_server, base, dir) = two_kinds_server("doctor-wrong");
    let mini = [
        "--kind",
        "miniprogram",
        "--format",
        "json",
        "--app-id",
        MINI_APP_ID,
        "--aes-key",
        FRESH_KEY,
    ];
    let corp = [
        "--kind",
        "wecom",
        "--corp-id",
        CORP_ID,
        "--agent-id",
        "1000002",
        "--aes-key",
        FRESH_KEY,
    ];
    for (account, flags, name, kind, format) in [
        (
            "mini",
            &mini[..],
            "URL verification (GET",
            "miniprogram",
            "json",
        ),
        ("corp", &corp[..], "URL verification (WeCom", "wecom", "xml"),
    ] {
        let url = format!("{base}/wx/{account}");
        // The right Token: green, and the report carries the kind.
        let mut args = vec!["doctor", &url, "--token", TOKEN, "--json"];
        args.extend(flags);
        let output = wxgate(&dir, &args);
        let report = json(&output);
        assert_eq!(output.status.code(), Some(0), "{report:#}");
        assert_eq!(find_check(&report, name)["status"], "pass");
        assert_eq!(report["kind"], kind);
        assert_eq!(report["format"], format);

        let mut args = vec!["doctor", &url, "--token", "AnotherToken42", "--json"];
        args.extend(flags);
        let output = wxgate(&dir, &args);
        let report = json(&output);
        assert_eq!(output.status.code(), Some(1), "{report:#}");
        let verification = find_check(&report, name);
        assert_eq!(verification["status"], "fail", "{report:#}");
        let detail = verification["detail"].as_str().unwrap();
        assert!(detail.contains("HTTP 403"), "{verification}");
        let hint = verification["hint"].as_str().unwrap();
        assert!(hint.contains("Token"), "{verification}");
        assert_eq!(find_check(&report, "message push")["status"], "skip");
        let printed = format!("{}{}", out(&output), err(&output));
        assert!(
            !printed.contains("AnotherToken42") && !printed.contains(FRESH_KEY),
            "{printed}"
        );
    }
}

/// The account by name from the config, and flags that contradict each other or the
/// config: usage errors that say what to do.
#[test]
fn doctor_reads_the_account_from_the_config_and_refuses_contradicting_flags() {
    let (_server, base, dir) = two_kinds_server("doctor-config");
    let (mini_url, corp_url) = (format!("{base}/wx/mini"), format!("{base}/wx/corp"));
    let output = wxgate(&dir, &["doctor", &corp_url, "--account", "corp", "--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", out(&output));
    assert_eq!(json(&output)["kind"], "wecom");
    let printed = format!("{}{}", out(&output), err(&output));
    for secret in [TOKEN, FRESH_KEY, CORP_SECRET] {
        assert!(
            !printed.contains(secret),
            "doctor printed a secret: {printed}"
        );
    }

    let wecom = ["--token", TOKEN, "--kind", "wecom", "--aes-key", FRESH_KEY];
    for (url, args, needle) in [
        (
            &mini_url,
            vec!["--token", TOKEN, "--format", "json"],
            "--kind miniprogram",
        ),
        (&corp_url, wecom.to_vec(), "--corp-id"),
        (
            &corp_url,
            [&wecom[..], &["--corp-id", CORP_ID, "--mode", "compat"]].concat(),
            "always encrypts",
        ),
        (
            &mini_url,
            vec!["--token", TOKEN, "--corp-id", CORP_ID],
            "--kind wecom",
        ),
        (
            &mini_url,
            vec!["--kind", "miniprogram"],
            "the account in the config says it",
        ),
        (&mini_url, vec!["--account", "nope"], "no account named"),
        (
            &mini_url,
            vec!["--token", TOKEN, "--account", "mini"],
            "drop --config and --account",
        ),
    ] {
        let mut all = vec!["doctor", url.as_str()];
        all.extend(&args);
        let output = wxgate(&dir, &all);
        let said = err(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", out(&output));
        assert!(said.contains(needle), "{args:?}: {needle:?} not in {said}");
        assert!(!said.contains(FRESH_KEY) && !said.contains(TOKEN), "{said}");
    }
}

/// A server that verifies a WeCom URL as an Official Account's (it echoes the encrypted
/// echostr): doctor says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_explains_an_echoed_encrypted_echostr() {
    let router = Router::new().route(
        "/wx",
        get(
            |Query(q): Query<std::collections::HashMap<String, String>>| async move {
                q.get("echostr").cloned().unwrap_or_default()
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let url = format!("http://{addr}/wx");
    let output = tokio::task::spawn_blocking(move || {
        let dir = temp_dir("doctor-echo");
        wxgate(
            &dir,
            &[
                "doctor",
                &url,
                "--token",
                TOKEN,
                "--kind",
                "wecom",
                "--corp-id",
                CORP_ID,
                "--aes-key",
                KEY,
                "--json",
            ],
        )
    })
    .await
    .unwrap();
    let report = json(&output);
    assert_eq!(output.status.code(), Some(1), "{report:#}");
    let verification = find_check(&report, "URL verification (WeCom");
    assert_eq!(verification["status"], "fail");
    assert!(
        verification["detail"]
            .as_str()
            .unwrap()
            .contains("encrypted echostr came back"),
        "{verification}"
    );
    assert!(
        verification["hint"].as_str().unwrap().contains("decrypted"),
        "{verification}"
    );
}

/// A server that answers a mini-program's XML push with a passive text: doctor warns
/// that the user would not see it (the JSON judgement already does for JSON).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_warns_about_a_passive_text_reply_to_an_xml_mini_program() {
    let router = Router::new().route(
        "/wx",
        get(
            |Query(q): Query<std::collections::HashMap<String, String>>| async move {
                q.get("echostr").cloned().unwrap_or_default()
            },
        )
        .post(|body: String| async move {
            let message = wxgate_proto::Message::parse(&body).unwrap();
            let reply = wxgate_proto::Reply::Text {
                content: "hi".into(),
            };
            reply.render_for(&message, wxgate_client::clock::now())
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let url = format!("http://{addr}/wx");
    let run = |kind: &'static str| {
        let url = url.clone();
        tokio::task::spawn_blocking(move || {
            let dir = temp_dir(&format!("doctor-passive-{kind}"));
            json(&wxgate(
                &dir,
                &["doctor", &url, "--token", TOKEN, "--kind", kind, "--json"],
            ))
        })
    };
    let report = run("miniprogram").await.unwrap();
    let warning = find_check(&report, "message: passive reply");
    assert_eq!(warning["status"], "warn", "{report:#}");
    assert!(warning["hint"]
        .as_str()
        .unwrap()
        .contains("customer-service"));
    let report = run("official_account").await.unwrap();
    assert!(
        !report["checks"].to_string().contains("passive reply"),
        "an Official Account shows it: {report:#}"
    );
}
