//! `init` and `check` for every kind of account, as the real binary: `init` writes each
//! kind's account and prints its console steps, refuses the combinations that make no
//! sense, and `check` names each kind's mistakes with a fix.

mod common;

use common::tools::*;
use common::APP_SECRET;

#[test]
fn init_prints_each_kinds_console_steps() {
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
}

/// Flags that make no sense together: exit 2, a message that says what to pass
/// instead, and no file.
#[test]
fn init_refuses_combinations_that_make_no_sense() {
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

#[test]
fn check_warns_for_mini_program_rules_sent_through_the_customer_service_api() {
    let dir = temp_dir("check-mini");
    // A mini-program's text and news rules go through the customer-service API: a
    // warning per rule, and an error without app_secret.
    let (code, report) = check_text(
        &dir,
        &mini_account(&format!("app_secret = \"{APP_SECRET}\"")),
    );
    assert_eq!(code, Some(0), "warnings alone exit 0: {report:#}");
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
}

/// WeCom: each mistake is one finding, on its line, with its fix; none prints the Secret.
#[test]
fn check_names_each_wecom_mistake_with_a_fix() {
    let dir = temp_dir("check-wecom");
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
            // A Secret belongs to one application: without its AgentId, an error.
            good.replace("agent_id = 1000002\n", ""),
            "account[0].agent_id",
            "corp_secret needs agent_id",
            "error",
            "AgentId",
        ),
        (
            // Without a Secret the callbacks still work: a warning.
            good.replace("agent_id = 1000002\n", "")
                .replace(&format!("corp_secret = \"{CORP_SECRET}\""), ""),
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
        // An error exits 1; warnings alone exit 0.
        let errors = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["severity"] == "error");
        assert_eq!(code, Some(i32::from(errors)), "{key}: {report:#}");
        let finding = find_finding(&report, key, needle);
        assert_eq!(finding["severity"], severity, "{finding}");
        assert!(finding["line"].is_number(), "{finding}");
        assert!(finding["fix"].as_str().unwrap().contains(fix), "{finding}");
        assert!(
            !report.to_string().contains(CORP_SECRET),
            "check printed the Secret: {report}"
        );
    }
}

/// init's placeholder CorpID, missing AgentId and empty Secret are all named, as
/// warnings: the file serves as written.
#[test]
fn check_names_what_init_left_for_a_wecom_application() {
    let init_dir = temp_dir("check-init-wecom");
    assert!(wxgate(&init_dir, &["init", "--kind", "wecom"])
        .status
        .success());
    let output = wxgate(&init_dir, &["check", "--json"]);
    assert_eq!(output.status.code(), Some(0), "warnings alone");
    let strict = wxgate(&init_dir, &["check", "--strict"]);
    assert_eq!(strict.status.code(), Some(1));
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
