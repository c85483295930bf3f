//! The HTTP stages of `wxgate doctor`, sent as WeChat sends them to the account's kind:
//! the verification GET (a WeCom application's with `msg_signature` over an encrypted
//! echostr), one signed with the wrong Token, pushes in the account's mode and format
//! judged by [`judge_reply`], and a stale timestamp.

use std::time::Duration;

use rand::RngExt;
use wxgate_proto::push::build;
use wxgate_proto::reply::{Reply, ReplyMessage};
use wxgate_proto::{Format, Message};

use crate::cli::probe::{judge_echo, judge_reply, Check, Exchange, Status, Target};
use crate::config::AccountKind;

/// The account's original id in the probes (a WeCom push goes to the CorpID).
const PROBE_TO: &str = "gh_wxgatedoctor";
/// The sender of the probes.
const PROBE_OPENID: &str = "oWxgateDoctorProbe0000000000";

/// The HTTP checks, sent as WeChat sends them.
pub(super) struct Probe<'a> {
    pub(super) target: &'a Target,
    pub(super) kind: AccountKind,
    pub(super) client: &'a reqwest::Client,
    pub(super) timeout: Duration,
    pub(super) now: i64,
}

fn random_echostr() -> String {
    rand::rng()
        .random_range(10u64.pow(17)..10u64.pow(18))
        .to_string()
}

impl Probe<'_> {
    /// Whom pushes are addressed to: the CorpID for WeCom, an original id otherwise.
    fn to(&self) -> &str {
        self.target
            .wecom
            .as_ref()
            .map_or(PROBE_TO, |wecom| wecom.corp_id.as_str())
    }

    /// URL verification, and a verification signed with the wrong Token; whether the
    /// right one passed.
    pub(super) async fn verification(&self, checks: &mut Vec<Check>) -> bool {
        let (target, client, timeout, now) = (self.target, self.client, self.timeout, self.now);
        let echostr = random_echostr();
        let query = target.verification_query(&target.token, now, &echostr);
        let exchange = target.send(client, &query, None, timeout).await;
        let mut echo = judge_echo(&exchange, &echostr);
        if target.wecom.is_some() {
            echo = wecom_echo(echo, &exchange, &query);
        }
        let verified = echo.status == Status::Pass;
        checks.push(echo);

        let forged_echo = random_echostr();
        let forged = target
            .send(
                client,
                &target.verification_query(&format!("{}x", target.token), now, &forged_echo),
                None,
                timeout,
            )
            .await;
        let name = "forged signature is refused";
        let (param, formula) = if target.wecom.is_some() {
            (
                "msg_signature",
                "sha1(sort(token, timestamp, nonce, echostr)) before decrypting",
            )
        } else {
            ("signature", "sha1(sort(token, timestamp, nonce))")
        };
        checks.push(match forged.status {
            Some(200) if forged.body.trim() == forged_echo => {
                Check::new(name, Status::Fail, "a GET signed with the wrong Token was echoed")
                    .hint(format!("the server does not check `{param}`: anyone can impersonate WeChat; verify {formula}"))
            }
            Some(status) => Check::new(name, Status::Pass, format!("HTTP {status}")),
            None => Check::new(name, Status::Warn, forged.error.unwrap_or_default()),
        });
        verified
    }

    /// The pushes of the account's kind: a text message, and for a mini-program or
    /// mini-game the event of a user entering the customer-service session.
    pub(super) async fn messages(&self, msg_id: u64, checks: &mut Vec<Check>) {
        let (to, openid, now) = (self.to(), PROBE_OPENID, self.now);
        let text = build::text(to, openid, now, "wxgate doctor probe", msg_id);
        self.push("message", &text, checks).await;
        if self.kind.has_data_format() {
            let event = build::event(to, openid, now, "user_enter_tempsession", None);
            self.push("event user_enter_tempsession", &event, checks)
                .await;
        }
    }

    /// One push, its answer judged as WeChat would; each check named after `label`.
    async fn push(&self, label: &str, xml: &str, checks: &mut Vec<Check>) {
        let (target, now) = (self.target, self.now);
        let sent = Message::parse(xml).expect("built message parses");
        let request = target.push(xml, self.to(), PROBE_OPENID, now);
        let exchange = target
            .send(
                self.client,
                &request.query,
                Some(request.body),
                self.timeout,
            )
            .await;
        let mut verdict = judge_reply(target, &sent, target.encrypts(), &exchange, now);
        // `judge_reply` warns for a JSON push; an XML mini-program shows no more.
        let shown =
            |reply: &ReplyMessage| matches!(reply.reply, Reply::TransferCustomerService { .. });
        if !self.kind.shows_passive_replies() && target.format == Format::Xml {
            if let Some(reply) = verdict.reply.as_ref().filter(|r| !shown(r)) {
                verdict.checks.push(
                    Check::new("passive reply", Status::Warn, format!("a {} reply to a {} push", reply.reply.msg_type(), self.kind.as_str()))
                        .hint("a mini-program shows no passive reply but transfer_customer_service (WeChat's docs): answer `success` and send it through the customer-service message API"),
                );
            }
        }
        for mut check in verdict.checks {
            if target.wecom.is_some() {
                check.detail = check.detail.replace("AppID", "CorpID");
            }
            check.name = format!("{label}: {}", check.name);
            checks.push(check);
        }
    }

    /// A message signed an hour ago should be refused.
    pub(super) async fn stale(&self, msg_id: u64, checks: &mut Vec<Check>) {
        let target = self.target;
        let stale = self.now - 3600;
        let xml = build::text(
            self.to(),
            PROBE_OPENID,
            stale,
            "wxgate doctor stale probe",
            msg_id,
        );
        let request = target.push(&xml, self.to(), PROBE_OPENID, stale);
        let exchange = target
            .send(
                self.client,
                &request.query,
                Some(request.body),
                self.timeout,
            )
            .await;
        let name = "stale timestamp (1 hour old) is refused";
        checks.push(match exchange.status {
            Some(200) => Check::new(name, Status::Warn, "a request signed an hour ago was accepted")
                .hint("replayed requests are accepted: reject timestamps more than a few minutes from the server clock"),
            Some(status) => Check::new(name, Status::Pass, format!("HTTP {status}")),
            None => Check::new(name, Status::Warn, exchange.error.unwrap_or_default()),
        });
    }
}

/// A WeCom application's verification: the same judgement, with WeCom's name and the
/// hints for the mistakes of a server that verifies as for an Official Account.
fn wecom_echo(mut check: Check, exchange: &Exchange, query: &str) -> Check {
    check.name = "URL verification (WeCom: msg_signature over the encrypted echostr)".into();
    match (check.status, exchange.status) {
        (Status::Pass, _) => {
            check.detail = format!(
                "answered the decrypted echostr in {} ms",
                exchange.elapsed.as_millis()
            );
        }
        (_, Some(200)) => {
            let encrypted = url::form_urlencoded::parse(query.as_bytes())
                .find(|(name, _)| name == "echostr")
                .map(|(_, value)| value.into_owned())
                .unwrap_or_default();
            if !encrypted.is_empty() && exchange.body.trim() == encrypted {
                check.detail = "the encrypted echostr came back as sent".into();
                check.hint = Some("WeCom expects the echostr decrypted (with the EncodingAESKey, CorpID as the trailer): the server verifies as for an Official Account".into());
            }
        }
        (_, Some(401 | 403)) => {
            check.hint = Some("the server's Token or EncodingAESKey differs from the account's (case, whitespace), or it checks `signature` instead of `msg_signature`; compare with `wxgate sign msg`".into());
        }
        _ => {}
    }
    check
}
