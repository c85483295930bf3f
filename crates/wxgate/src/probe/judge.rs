//! Judging an answer the way WeChat would: the verification's echostr, and a push's
//! reply (status, envelope and MsgSignature, To/From, the reply's rules, time against
//! 5 s). Pure functions of the exchange.

use std::time::Duration;

use wxgate_proto::console::Mode;
use wxgate_proto::reply::{Reply, ReplyMessage};
use wxgate_proto::{envelope, Format, Message};

use super::{Check, Exchange, Status, Target, WECHAT_TIMEOUT};

/// Judges a verification GET's answer: status 200 and exactly the echostr.
pub fn judge_echo(exchange: &Exchange, echostr: &str) -> Check {
    let name = "URL verification (GET with a valid signature)";
    let Some(status) = exchange.status else {
        return Check::new(
            name,
            Status::Fail,
            exchange.error.clone().unwrap_or_default(),
        )
        .hint(exchange.no_answer_hint());
    };
    match status {
        200 => {}
        404 | 405 => {
            return Check::new(name, Status::Fail, format!("HTTP {status}"))
                .hint("the route is not mapped: check the path (trailing slash, proxy prefix) and that GET and POST both reach the handler")
        }
        401 | 403 => {
            let said = if exchange.body.trim().is_empty() { String::new() } else { format!(" (it said: {})", excerpt(exchange.body.trim(), REASON_BYTES)) };
            return Check::new(name, Status::Fail, format!("HTTP {status}: the server refused a correctly signed request{said}"))
                .hint("the server's Token differs from the one given here (case, whitespace), or it checks the wrong mode; compare with `wxgate sign verify --explain`")
        }
        500..=599 => {
            return Check::new(name, Status::Fail, format!("HTTP {status}"))
                .hint("the handler crashed: look at the server's log for this request")
        }
        other => return Check::new(name, Status::Fail, format!("HTTP {other}")).hint("WeChat accepts only 200 with the echostr as the body"),
    }
    let body = exchange.body.as_str();
    if body == echostr {
        return Check::new(
            name,
            Status::Pass,
            format!(
                "echoed exactly ({} bytes) in {} ms",
                body.len(),
                exchange.elapsed.as_millis()
            ),
        );
    }
    let hint = if body.trim_start_matches('\u{feff}') == echostr {
        "the body starts with a BOM: write the echostr bytes only"
    } else if body.trim_end() == echostr {
        "the body has a trailing newline or space: return echostr exactly (no println, no template newline)"
    } else if body.trim_matches('"') == echostr {
        "the echostr is wrapped in quotes: the framework serialised it as JSON; return it as text/plain"
    } else if body.contains(echostr) && body.trim_start().starts_with('{') {
        "the echostr is inside JSON: return the bare string as text/plain"
    } else if body.contains(echostr) && body.trim_start().starts_with('<') {
        "the echostr is inside HTML or XML: return the bare string as text/plain"
    } else {
        "the body is not the echostr: the handler did not verify, or another route answered"
    };
    Check::new(
        name,
        Status::Fail,
        format!(
            "body {:?} is not the echostr {echostr:?}",
            excerpt(body, 80)
        ),
    )
    .hint(hint)
}

/// The verdict on a push's answer.
#[derive(Debug)]
pub struct ReplyVerdict {
    /// One check per property.
    pub checks: Vec<Check>,
    /// The reply, when there was one and it parsed.
    pub reply: Option<ReplyMessage>,
    /// Whether the answer was `success` / empty (no reply).
    pub no_reply: bool,
}

/// Judges the answer to `sent` as WeChat would: status, format, encryption and
/// MsgSignature, To/From, CreateTime, reply rules, and time against 5 s.
pub fn judge_reply(
    target: &Target,
    sent: &Message,
    encrypted: bool,
    exchange: &Exchange,
    now: i64,
) -> ReplyVerdict {
    let mut checks = Vec::new();
    let Some(status) = exchange.status else {
        checks.push(
            Check::new(
                "answer",
                Status::Fail,
                exchange.error.clone().unwrap_or_default(),
            )
            .hint(exchange.no_answer_hint()),
        );
        return ReplyVerdict {
            checks,
            reply: None,
            no_reply: false,
        };
    };
    let (reply, no_reply) = judge_answer(
        target,
        sent,
        encrypted,
        (status, &exchange.body),
        now,
        &mut checks,
    );
    checks.push(latency_check(exchange.elapsed));
    ReplyVerdict {
        checks,
        reply,
        no_reply,
    }
}

/// The checks of an answer that arrived: its status, its body, then the reply in it;
/// the reply, and whether the answer was `success` / empty.
fn judge_answer(
    target: &Target,
    sent: &Message,
    encrypted: bool,
    (status, body): (u16, &str),
    now: i64,
    checks: &mut Vec<Check>,
) -> (Option<ReplyMessage>, bool) {
    if status != 200 {
        let hint = if target.crypt.is_none() && (400..500).contains(&status) {
            "the push was sent unencrypted (no EncodingAESKey given): a server in safe mode (安全模式) refuses plaintext; pass --aes-key K --app-id A, or --config F --account NAME for the account's own secrets"
        } else {
            "WeChat treats any status but 200 as a failure and retries"
        };
        checks.push(
            Check::new(
                "answer",
                Status::Fail,
                format!("HTTP {status}: {}", excerpt(body.trim(), REASON_BYTES)),
            )
            .hint(hint),
        );
        return (None, false);
    }
    let body = body.trim();
    if body.is_empty() || body == "success" {
        checks.push(Check::new(
            "answer",
            Status::Pass,
            format!("{:?}: no reply is sent to the user", body),
        ));
        return (None, true);
    }
    let json = target.format == Format::Json;
    if let Some(check) = unusable_body(body, json) {
        checks.push(check);
        return (None, false);
    }
    let Some(reply_xml) = plain_reply(target, body, encrypted, checks) else {
        return (None, false);
    };
    let reply_name = if json { "reply JSON" } else { "reply XML" };
    let reply = match ReplyMessage::parse(&reply_xml) {
        Ok(reply) => reply,
        Err(err) => {
            let hint = if json {
                "WeChat rejects an invalid JSON reply: check the field names and that the body is one JSON object"
            } else {
                "WeChat rejects invalid reply XML: check the element names, CDATA and that ]]> is split"
            };
            checks.push(Check::new(reply_name, Status::Fail, err.to_string()).hint(hint));
            return (None, false);
        }
    };
    checks.push(Check::new(
        reply_name,
        Status::Pass,
        format!("MsgType {}", reply.reply.msg_type()),
    ));
    judge_reply_fields(&reply, sent, json, now, checks);
    (Some(reply), false)
}

/// The reply as plain text: the body itself, or the envelope opened (MsgSignature
/// verified); `None` when it cannot be opened.
fn plain_reply(
    target: &Target,
    body: &str,
    encrypted: bool,
    checks: &mut Vec<Check>,
) -> Option<String> {
    let is_envelope = if target.format == Format::Json {
        Format::Json.parse(body).is_ok_and(|root| {
            root.child("Encrypt").is_some() && root.child("MsgSignature").is_some()
        })
    } else {
        body.contains("<Encrypt>") && body.contains("<MsgSignature>")
    };
    Some(match (&target.crypt, is_envelope) {
        (Some(crypt), true) => match envelope::open_reply(crypt, &target.token, body) {
            Ok(opened) => {
                checks.push(Check::new("encryption", Status::Pass, "MsgSignature verifies and the reply decrypts with this account's key and AppID"));
                if opened.timestamp.len() != 10 {
                    checks.push(
                        Check::new("TimeStamp", Status::Warn, format!("TimeStamp {} is not 10-digit Unix seconds", opened.timestamp))
                            .hint("WeChat uses seconds; milliseconds still verify, but are not what WeChat sends"),
                    );
                }
                opened.xml
            }
            Err(err) => {
                checks.push(
                    Check::new("encryption", Status::Fail, err.to_string())
                        .hint("sign the reply with sha1(sort(token, TimeStamp, Nonce, Encrypt)) and encrypt with this account's EncodingAESKey and AppID"),
                );
                return None;
            }
        },
        (None, true) => {
            checks.push(Check::new(
                "encryption",
                Status::Skip,
                "encrypted reply, but no --aes-key/--app-id to open it",
            ));
            return None;
        }
        (_, false) if encrypted && target.mode == Mode::Safe => {
            checks.push(
                Check::new(
                    "encryption",
                    Status::Fail,
                    "plaintext reply to an encrypted (safe-mode) push",
                )
                .hint(
                    "in safe mode (安全模式) WeChat accepts only encrypted replies (or `success`)",
                ),
            );
            body.to_owned()
        }
        (_, false) if encrypted => {
            checks.push(Check::new("encryption", Status::Warn, "plaintext reply to an encrypted push").hint("accepted in compatible mode only; encrypt replies before switching to safe mode"));
            body.to_owned()
        }
        (_, false) => body.to_owned(),
    })
}

/// What WeChat checks in a parsed reply: shown at all (mini-programs), To/From,
/// CreateTime, and the rules of its type.
fn judge_reply_fields(
    reply: &ReplyMessage,
    sent: &Message,
    json: bool,
    now: i64,
    checks: &mut Vec<Check>,
) {
    if json && !matches!(reply.reply, Reply::TransferCustomerService { .. }) {
        checks.push(
            Check::new("passive reply", Status::Warn, format!("a {} reply to a mini-program push", reply.reply.msg_type()))
                .hint("a mini-program shows no passive reply but transfer_customer_service (WeChat's docs): answer `success` and send it through the customer-service message API"),
        );
    }
    if reply.to_user_name == sent.from_user_name && reply.from_user_name == sent.to_user_name {
        checks.push(Check::new(
            "To/From",
            Status::Pass,
            "ToUserName is the user, FromUserName the account",
        ));
    } else {
        checks.push(
            Check::new(
                "To/From",
                Status::Fail,
                format!("ToUserName {:?}, FromUserName {:?}", reply.to_user_name, reply.from_user_name),
            )
            .hint("swap them: the reply goes to the incoming FromUserName, from the incoming ToUserName"),
        );
    }
    if (reply.create_time - now).abs() > 300 {
        checks.push(
            Check::new(
                "CreateTime",
                Status::Warn,
                format!("{} is more than 5 minutes from now", reply.create_time),
            )
            .hint("CreateTime is the current Unix time in seconds"),
        );
    }
    if let Err(err) = reply.reply.validate() {
        checks.push(Check::new("reply rules", Status::Fail, err.to_string()));
    }
}

/// Why a 200 body cannot be a reply to this push: an HTML page, or a body in the other
/// format than the push's.
fn unusable_body(body: &str, json: bool) -> Option<Check> {
    let lower = body.to_ascii_lowercase();
    if lower.contains("<html") || lower.starts_with("<!doctype html") {
        return Some(
            Check::new("answer", Status::Fail, "the body is an HTML page")
                .hint("an error page reached WeChat (framework exception, CSRF middleware?): answer `success` on errors"),
        );
    }
    if !json && (body.starts_with('{') || body.starts_with('[')) {
        return Some(
            Check::new("answer", Status::Fail, "the body is JSON")
                .hint("WeChat expects reply XML or `success`; a JSON body shows the user 「该公众号暂时无法提供服务」"),
        );
    }
    if json && !body.starts_with('{') {
        return Some(
            Check::new(
                "answer",
                Status::Fail,
                "a JSON push was not answered with JSON",
            )
            .hint("with 数据格式 JSON, WeChat expects a JSON reply or `success`"),
        );
    }
    None
}

fn latency_check(elapsed: Duration) -> Check {
    let ms = elapsed.as_millis();
    if elapsed >= WECHAT_TIMEOUT {
        Check::new("time", Status::Fail, format!("{ms} ms, over WeChat's 5 s"))
            .hint("WeChat gives up after 5 s: answer `success` at once and send the reply later through the customer-service API")
    } else if elapsed >= Duration::from_secs(4) {
        Check::new(
            "time",
            Status::Warn,
            format!("{ms} ms, close to WeChat's 5 s limit"),
        )
        .hint("any slowdown will make WeChat retry")
    } else {
        Check::new("time", Status::Pass, format!("{ms} ms (limit 5000 ms)"))
    }
}

/// How much of a server's reason is shown: enough for any reason a person wrote, while
/// an HTML error page does not flood the terminal.
const REASON_BYTES: usize = 1000;

/// `text` whole when it fits in `max` bytes; otherwise its whole sentences (or lines)
/// that fit, and how many bytes were left out. A reason is never cut mid-sentence unless
/// its first sentence alone is longer than `max`.
pub(crate) fn excerpt(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut fit = max;
    while !text.is_char_boundary(fit) {
        fit -= 1;
    }
    let head = &text[..fit];
    let sentence_end = [". ", "。", "! ", "? ", "！", "？", "\n"]
        .into_iter()
        .filter_map(|end| head.rfind(end).map(|i| i + end.trim_end().len()))
        .max()
        .filter(|&end| end > 0);
    let kept = sentence_end.unwrap_or(fit);
    format!(
        "{} […{} more bytes]",
        text[..kept].trim_end(),
        text.len() - kept
    )
}

#[cfg(test)]
mod tests {
    use super::excerpt;

    #[test]
    fn excerpts_keep_whole_sentences_and_count_the_rest() {
        assert_eq!(excerpt("short. reason", 100), "short. reason");
        let text = "First sentence. Second one is longer than the bound";
        assert_eq!(excerpt(text, 30), "First sentence. […36 more bytes]");
        assert_eq!(
            excerpt("安全模式。请加密消息", 20),
            "安全模式。 […15 more bytes]"
        );
        assert_eq!(excerpt("nosentenceatall", 4), "nose […11 more bytes]");
    }
}
