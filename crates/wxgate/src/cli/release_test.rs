//! `wxgate sim release-test`: the full-network release test's two cases, sent as
//! WeChat's test account sends them to a platform's 消息与事件接收URL, against any
//! server:
//! 1. the text `TESTCOMPONENT_MSG_TYPE_TEXT`, whose passive reply must be the text
//!    `TESTCOMPONENT_MSG_TYPE_TEXT_callback`;
//! 2. the text `QUERY_AUTH_CODE:$code`, which must be answered empty (`success`) in
//!    time; the server then sends `$code_from_api` through the customer-service API.
//!
//! The target is `--url` with `--token`, `--aes-key` and `--app-id` (the platform's
//! AppID, the trailer of every push), or a `[[component]]` of the config (`--account`
//! names it) at this machine's running server.

use std::time::Duration;

use secrecy::ExposeSecret;
use serde::Serialize;
use wxgate_proto::console::Mode;
use wxgate_proto::push::build;
use wxgate_proto::reply::Reply;
use wxgate_proto::{EncodingAesKey, Format, Message, MsgCrypt};

use super::probe::{self, judge_reply, Check, Target};
use super::serve::load_config;
use super::sim::SimArgs;
use crate::component::release::{QUERY_AUTH_CODE, RELEASE_TEST_APP_IDS, TEST_TEXT};

/// What the release test found.
#[derive(Debug, Serialize)]
pub(super) struct ReleaseReport {
    url: String,
    checks: Vec<Check>,
    ok: bool,
}

/// The platform's message URL for the test account `tester`, with its secrets.
fn target(args: &SimArgs, tester: &str) -> anyhow::Result<Target> {
    if let Some(url) = &args.url {
        let (Some(token), Some(key), Some(app_id)) = (&args.token, &args.aes_key, &args.app_id)
        else {
            anyhow::bail!("--url needs --token, --aes-key and --app-id (the platform's AppID): a platform's pushes are always encrypted");
        };
        return Ok(Target {
            url: url.clone(),
            token: token.clone(),
            mode: Mode::Safe,
            crypt: Some(MsgCrypt::new(&EncodingAesKey::parse(key)?, app_id)),
            format: Format::Xml,
            wecom: None,
        });
    }
    let (config, _) = load_config(args.config.as_deref())?;
    let component = match &args.account {
        Some(name) => config.components.iter().find(|c| &c.name == name),
        None => config.components.first(),
    }
    .ok_or_else(|| anyhow::anyhow!("no [[component]] in the config (name it with --account)"))?;
    let host = super::local_server(&config);
    Ok(Target {
        url: format!("http://{host}/open/{}/{tester}/callback", component.name),
        token: component.token.expose_secret().to_owned(),
        mode: Mode::Safe,
        crypt: Some(MsgCrypt::new(&component.aes_key, &component.app_id)),
        format: Format::Xml,
        wecom: None,
    })
}

/// Runs both cases. `code` is the authorization code of case 2.
pub(super) async fn run(args: &SimArgs, tester: &str, code: &str) -> anyhow::Result<ReleaseReport> {
    if !RELEASE_TEST_APP_IDS.contains(&tester) {
        anyhow::bail!(
            "{tester} is not one of WeChat's release-test accounts: {}",
            RELEASE_TEST_APP_IDS.join(", ")
        );
    }
    let target = target(args, tester)?;
    let client = wxgate_client::http_client_builder().build()?;
    let timeout = Duration::from_millis(args.timeout_ms);
    let mut checks = Vec::new();
    for (case, content) in [
        (1, TEST_TEXT.to_owned()),
        (2, format!("{QUERY_AUTH_CODE}{code}")),
    ] {
        let now = wxgate_client::clock::now();
        let msg_id = 7_000_000_000_000_000_000 + now as u64 * 10 + case;
        let xml = build::text(&args.to, &args.openid, now, &content, msg_id);
        let sent = Message::parse(&xml)?;
        let request = target.push(&xml, &args.to, &args.openid, now);
        let exchange = target
            .send(&client, &request.query, Some(request.body), timeout)
            .await;
        let verdict = judge_reply(&target, &sent, true, &exchange, now);
        let failed = verdict
            .checks
            .iter()
            .any(|c| c.status == probe::Status::Fail);
        checks.extend(
            verdict
                .checks
                .into_iter()
                .filter(|c| c.status == probe::Status::Fail),
        );
        let reply = verdict.reply.map(|r| r.reply);
        checks.push(case_check(
            case,
            code,
            reply.as_ref(),
            verdict.no_reply,
            failed,
        ));
    }
    let ok = checks.iter().all(|c| c.status != probe::Status::Fail);
    Ok(ReleaseReport {
        url: target.url,
        checks,
        ok,
    })
}

fn case_check(case: u64, code: &str, reply: Option<&Reply>, empty: bool, failed: bool) -> Check {
    let expected = format!("{TEST_TEXT}_callback");
    let (pass, detail) = match (case, reply) {
        (1, Some(Reply::Text { content })) if *content == expected && !failed => {
            (true, format!("answered the text {expected:?}"))
        }
        (1, other) => (false, format!("expected the text {expected:?}, got {other:?}")),
        (_, None) if empty && !failed => (
            true,
            format!("answered empty; the server now sends \"{code}_from_api\" through the customer-service API"),
        ),
        (_, other) => (false, format!("expected an empty answer (success), got {other:?}")),
    };
    let status = if pass {
        probe::Status::Pass
    } else {
        probe::Status::Fail
    };
    Check::new(format!("release case {case}"), status, detail)
}

impl ReleaseReport {
    /// Prints the report; whether every case passed.
    pub(super) fn print(&self, json: bool) -> anyhow::Result<bool> {
        if json {
            println!("{}", serde_json::to_string_pretty(self)?);
        } else {
            println!("→ POST {} (release test)", self.url);
            probe::print_checks(&self.checks);
        }
        Ok(self.ok)
    }
}
