//! `init`, `check` and `doctor` for every kind of account, as the real binary: a config
//! written by `init` passes `check`, serves, and passes `doctor` for an Official Account,
//! a mini-program and a mini-game (XML and JSON, each mode) and a WeCom application;
//! `check` names each kind's mistakes with a fix; `doctor` fails the right check against
//! a server with another Token and never prints a secret.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use axum::extract::Query;
use axum::routing::get;
use axum::Router;
use common::*;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_wxgate");
const CORP_ID: &str = "ww3f2e1d0c9b8a7654";
const CORP_SECRET: &str = "CorpSecretForTheToolsTest0123456789abcdefg";
const MINI_APP_ID: &str = "wx5d3c9a1b2e4f6071";

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wxgate-kt-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn wxgate(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("wxgate runs")
}

fn out(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn err(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", out(output), err(output)))
}

#[track_caller]
fn find_check<'a>(report: &'a Value, name_part: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"].as_str().unwrap().contains(name_part))
        .unwrap_or_else(|| panic!("no check named like {name_part:?} in {report:#}"))
}

#[track_caller]
fn find_finding<'a>(report: &'a Value, key: &str, needle: &str) -> &'a Value {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["key"] == key && f["problem"].as_str().unwrap().contains(needle))
        .unwrap_or_else(|| panic!("no finding at {key} mentioning {needle:?} in {report:#}"))
}

/// `wxgate check --json` of `text` written as a file in `dir`.
fn check_text(dir: &Path, text: &str) -> (Option<i32>, Value) {
    std::fs::write(dir.join("check.toml"), text).unwrap();
    let output = wxgate(dir, &["check", "--config", "check.toml", "--json"]);
    (output.status.code(), json(&output))
}

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

#[test]
fn init_prints_each_kinds_console_steps_and_refuses_bad_combinations() {
    for (args, wants) in [
        (
            vec![],
            vec![
                "设置与开发 → 基本配置 → 服务器配置",
                "消息加解密方式",
                "Replace app_id",
            ],
        ),
        (
            vec!["--kind", "miniprogram", "--format", "json"],
            vec![
                "开发 → 开发管理 → 消息推送",
                "数据格式                        JSON",
                "消息加密方式",
            ],
        ),
        (
            vec!["--kind", "minigame"],
            vec![
                "开发 → 开发管理 → 消息推送",
                "数据格式                        XML",
            ],
        ),
        (
            vec!["--kind", "wecom"],
            vec![
                "应用管理 → 应用",
                "接收消息 → 设置API接收",
                "corp_id",
                "corp_secret",
                "保存",
            ],
        ),
    ] {
        let dir = temp_dir("init-steps");
        let mut all = vec!["init"];
        all.extend(&args);
        let output = wxgate(&dir, &all);
        assert!(output.status.success(), "{args:?}: {}", err(&output));
        let text = out(&output);
        for want in wants {
            assert!(text.contains(want), "{args:?}: {want:?} missing in\n{text}");
        }
    }
    let wecom_text = {
        let dir = temp_dir("init-wecom-file");
        assert!(wxgate(&dir, &["init", "--kind", "wecom"]).status.success());
        std::fs::read_to_string(dir.join("wxgate.toml")).unwrap()
    };
    assert!(wecom_text.contains("kind = \"wecom\"") && wecom_text.contains("mode = \"safe\""));
    assert!(
        !wecom_text.contains("app_id") && !wecom_text.contains("app_secret"),
        "{wecom_text}"
    );

    for (args, needle) in [
        (
            vec!["--kind", "wecom", "--format", "json"],
            "--format applies to mini-programs",
        ),
        (
            vec!["--kind", "official_account", "--format", "json"],
            "an Official Account always pushes XML",
        ),
        (vec!["--format", "xml"], "--kind miniprogram"),
        (
            vec!["--kind", "wecom", "--mode", "plain"],
            "always encrypts",
        ),
        (
            vec!["--kind", "wecom", "--app-id", MINI_APP_ID],
            "--corp-id",
        ),
        (
            vec!["--kind", "miniprogram", "--corp-id", CORP_ID],
            "--kind wecom",
        ),
        (vec!["--agent-id", "7"], "--kind wecom"),
        (vec!["--kind", "wecom", "--corp-id", "ww12"], "企业信息"),
        (vec!["--kind", "shop"], "official_account"),
    ] {
        let dir = temp_dir("init-bad");
        let mut all = vec!["init"];
        all.extend(&args);
        let output = wxgate(&dir, &all);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", out(&output));
        assert!(
            err(&output).contains(needle),
            "{args:?}: {needle:?} not in {}",
            err(&output)
        );
        assert!(
            !dir.join("wxgate.toml").exists(),
            "{args:?}: nothing written"
        );
    }
}

fn mini_account(extra: &str) -> String {
    format!(
        "[[account]]\nname = \"mini\"\nkind = \"miniprogram\"\ndata_format = \"json\"\napp_id = \"{MINI_APP_ID}\"\n\
         token = \"{TOKEN}\"\nencoding_aes_key = \"Nq8bOmP1aZ3gq09gUI4Shh6wnqoquXgcF5bcUfKohjI\"\n{extra}\n\
         [[account.rule]]\nwhen = {{ msg_type = \"text\" }}\nreply = {{ text = \"hi\" }}\n\
         [[account.rule]]\nwhen = {{ msg_type = \"image\" }}\nreply = {{ transfer_customer_service = {{}} }}\n\
         [[account.rule]]\nwhen = {{ msg_type = \"event\" }}\nreply = {{ news = [{{ title = \"t\", url = \"https://example.com\" }}] }}\n"
    )
}

fn wecom_account(lines: &str) -> String {
    format!(
        "[[account]]\nname = \"corp\"\nkind = \"wecom\"\ntoken = \"{TOKEN}\"\nencoding_aes_key = \"Nq8bOmP1aZ3gq09gUI4Shh6wnqoquXgcF5bcUfKohjI\"\n{lines}\n"
    )
}

#[test]
fn check_names_each_kinds_mistakes_with_a_fix() {
    let dir = temp_dir("check-kinds");
    // A mini-program's text and news rules go through the customer-service API: a
    // warning per rule, and an error without app_secret.
    let (code, report) = check_text(
        &dir,
        &mini_account(&format!("app_secret = \"{APP_SECRET}\"")),
    );
    assert_eq!(code, Some(1), "warnings are findings: {report:#}");
    for rule in ["account[0].rule[0]", "account[0].rule[2]"] {
        let warning = find_finding(&report, rule, "customer-service message API");
        assert_eq!(warning["severity"], "warning");
        assert!(
            warning["problem"].as_str().unwrap().contains("`success`"),
            "{warning}"
        );
        assert!(!warning["fix"].as_str().unwrap().is_empty());
    }
    assert!(
        !report["findings"].to_string().contains("rule[1]"),
        "transfer_customer_service is a passive reply a mini-program shows: {report:#}"
    );
    let (code, report) = check_text(&dir, &mini_account(""));
    assert_eq!(code, Some(1));
    let missing = find_finding(&report, "account[0].app_secret", "rule[0], rule[2]");
    assert_eq!(missing["severity"], "error");
    assert!(
        missing["fix"].as_str().unwrap().contains("set app_secret"),
        "{missing}"
    );

    // WeCom: each mistake, one finding with its fix.
    let good =
        format!("corp_id = \"{CORP_ID}\"\nagent_id = 1000002\ncorp_secret = \"{CORP_SECRET}\"");
    let (code, report) = check_text(&dir, &wecom_account(&good));
    assert_eq!(code, Some(0), "{report:#}");
    for (lines, key, needle, severity, fix) in [
        (
            good.replace(CORP_ID, "ww3F2E1D0C9B8A7654"),
            "account[0].corp_id",
            "uppercase",
            "error",
            "企业信息",
        ),
        (
            good.replace(CORP_ID, "wy3f2e1d0c9b8a7654"),
            "account[0].corp_id",
            "16 hex",
            "error",
            "企业信息",
        ),
        (
            good.replace(CORP_ID, "ww0000000000000000"),
            "account[0].corp_id",
            "placeholder",
            "warning",
            "企业信息",
        ),
        (
            good.replace("agent_id = 1000002\n", ""),
            "account[0].agent_id",
            "missing",
            "warning",
            "AgentId",
        ),
        (
            format!("{good}\nmode = \"compat\""),
            "account[0].mode",
            "always encrypts",
            "error",
            "safe",
        ),
        (
            good.replace(CORP_SECRET, ""),
            "account[0].corp_secret",
            "empty",
            "warning",
            "Secret",
        ),
        (
            good.replace(&format!("corp_secret = \"{CORP_SECRET}\""), ""),
            "account[0].corp_secret",
            "gettoken",
            "warning",
            "Secret",
        ),
        (
            format!("{good}\napp_id = \"{MINI_APP_ID}\""),
            "account[0].app_id",
            "no app_id",
            "error",
            "corp_id",
        ),
    ] {
        let (code, report) = check_text(&dir, &wecom_account(&lines));
        assert_eq!(code, Some(1), "{key}: {report:#}");
        let finding = find_finding(&report, key, needle);
        assert_eq!(finding["severity"], severity, "{finding}");
        assert!(finding["line"].is_number(), "{finding}");
        assert!(finding["fix"].as_str().unwrap().contains(fix), "{finding}");
        assert!(
            !report.to_string().contains(CORP_SECRET),
            "check printed the Secret: {report}"
        );
    }

    // init's placeholder CorpID, missing AgentId and empty Secret are all named.
    let init_dir = temp_dir("check-init-wecom");
    assert!(wxgate(&init_dir, &["init", "--kind", "wecom"])
        .status
        .success());
    let output = wxgate(&init_dir, &["check", "--json"]);
    assert_eq!(output.status.code(), Some(1));
    let report = json(&output);
    assert_eq!(
        find_finding(&report, "account[0].corp_id", "placeholder")["severity"],
        "warning"
    );
    find_finding(&report, "account[0].agent_id", "missing");
    find_finding(&report, "account[0].corp_secret", "empty");
    assert!(
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["severity"] == "warning"),
        "init's WeCom config serves as written: {report:#}"
    );
    let human = out(&wxgate(&init_dir, &["check"]));
    assert!(human.contains("fix: replace it with the CorpID"), "{human}");
}

/// A server with another Token: the verification fails, with the hint that names the
/// Token, and no push is sent; for a URL without a config, `--kind` and `--format` say
/// what it serves.
#[test]
fn doctor_against_another_token_fails_verification_with_a_hint() {
    let dir = temp_dir("doctor-wrong");
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
    let (_server, base) = start_binary(&dir);
    let key = "Nq8bOmP1aZ3gq09gUI4Shh6wnqoquXgcF5bcUfKohjI";
    let mini_url = format!("{base}/wx/mini");
    let corp_url = format!("{base}/wx/corp");
    let mini = [
        "--kind",
        "miniprogram",
        "--format",
        "json",
        "--app-id",
        MINI_APP_ID,
        "--aes-key",
        key,
    ];
    let corp = [
        "--kind",
        "wecom",
        "--corp-id",
        CORP_ID,
        "--agent-id",
        "1000002",
        "--aes-key",
        key,
    ];
    for (url, flags, name) in [
        (&mini_url, &mini[..], "URL verification (GET"),
        (&corp_url, &corp[..], "URL verification (WeCom"),
    ] {
        // The right Token: green, and the report carries the kind.
        let mut args = vec!["doctor", url.as_str(), "--token", TOKEN, "--json"];
        args.extend(flags);
        let output = wxgate(&dir, &args);
        let report = json(&output);
        assert_eq!(output.status.code(), Some(0), "{report:#}");
        assert_eq!(find_check(&report, name)["status"], "pass");

        let mut args = vec![
            "doctor",
            url.as_str(),
            "--token",
            "AnotherToken42",
            "--json",
        ];
        args.extend(flags);
        let output = wxgate(&dir, &args);
        let report = json(&output);
        assert_eq!(output.status.code(), Some(1), "{report:#}");
        let verification = find_check(&report, name);
        assert_eq!(verification["status"], "fail", "{report:#}");
        assert!(
            verification["detail"]
                .as_str()
                .unwrap()
                .contains("HTTP 403"),
            "{verification}"
        );
        assert!(
            verification["hint"].as_str().unwrap().contains("Token"),
            "{verification}"
        );
        assert_eq!(find_check(&report, "message push")["status"], "skip");
        let printed = format!("{}{}", out(&output), err(&output));
        assert!(
            !printed.contains("AnotherToken42") && !printed.contains(key),
            "{printed}"
        );
    }
    let report = json(&wxgate(
        &dir,
        &[
            "doctor",
            &mini_url,
            "--token",
            TOKEN,
            "--json",
            "--kind",
            "miniprogram",
            "--format",
            "json",
            "--app-id",
            MINI_APP_ID,
            "--aes-key",
            key,
        ],
    ));
    assert_eq!(report["format"], "json");
    assert_eq!(report["kind"], "miniprogram");

    // The account from the config by name, without a URL's flags.
    let output = wxgate(&dir, &["doctor", &corp_url, "--account", "corp", "--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", out(&output));
    let printed = format!("{}{}", out(&output), err(&output));
    for secret in [TOKEN, key, CORP_SECRET] {
        assert!(
            !printed.contains(secret),
            "doctor printed a secret: {printed}"
        );
    }

    // Flags that contradict each other, or the config: usage errors that say what to do.
    for (args, needle) in [
        (
            vec!["doctor", &mini_url, "--token", TOKEN, "--format", "json"],
            "--kind miniprogram",
        ),
        (
            vec![
                "doctor",
                &corp_url,
                "--token",
                TOKEN,
                "--kind",
                "wecom",
                "--aes-key",
                key,
            ],
            "--corp-id",
        ),
        (
            vec![
                "doctor",
                &corp_url,
                "--token",
                TOKEN,
                "--kind",
                "wecom",
                "--corp-id",
                CORP_ID,
                "--aes-key",
                key,
                "--mode",
                "compat",
            ],
            "always encrypts",
        ),
        (
            vec!["doctor", &mini_url, "--token", TOKEN, "--corp-id", CORP_ID],
            "--kind wecom",
        ),
        (
            vec!["doctor", &mini_url, "--kind", "miniprogram"],
            "the account in the config says it",
        ),
        (
            vec!["doctor", &mini_url, "--account", "nope"],
            "no account named",
        ),
        (
            vec!["doctor", &mini_url, "--token", TOKEN, "--account", "mini"],
            "drop --config and --account",
        ),
    ] {
        let output = wxgate(&dir, &args);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", out(&output));
        assert!(
            err(&output).contains(needle),
            "{args:?}: {needle:?} not in {}",
            err(&output)
        );
        assert!(!err(&output).contains(key), "{}", err(&output));
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
