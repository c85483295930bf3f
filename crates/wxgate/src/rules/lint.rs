//! What `check` says about an account's rules beyond their syntax: a value WeChat never
//! sends (with the likely meant one), a rule that an earlier one always answers first,
//! and messages that can never reach `[account.forward]` because a rule answers them
//! all.

use super::{Rule, When};

/// The `MsgType`s of the pushes WeChat documents, for Official Accounts, mini-programs
/// and WeCom applications (lower case).
const MSG_TYPES: [&str; 11] = [
    "text",
    "image",
    "voice",
    "video",
    "shortvideo",
    "location",
    "link",
    "event",
    "file",
    "miniprogrampage",
    "music",
];

/// The events a misspelling is checked against (lower case). WeChat adds events over
/// time, so an event not listed is only questioned when it is one letter or two away
/// from a listed one.
const EVENTS: [&str; 30] = [
    "subscribe",
    "unsubscribe",
    "scan",
    "location",
    "click",
    "view",
    "view_miniprogram",
    "scancode_push",
    "scancode_waitmsg",
    "pic_sysphoto",
    "pic_photo_or_album",
    "pic_weixin",
    "location_select",
    "templatesendjobfinish",
    "masssendjobfinish",
    "publishjobfinish",
    "user_enter_tempsession",
    "kf_create_session",
    "kf_close_session",
    "kf_switch_session",
    "subscribe_msg_popup_event",
    "subscribe_msg_change_event",
    "subscribe_msg_sent_event",
    "wxa_media_check",
    "enter_agent",
    "change_contact",
    "batch_job_result",
    "open_approval_change",
    "taskcard_click",
    "user_authorization_revoke",
];

/// One finding about rule `rule` (its index among the compiled rules).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleFinding {
    /// Index of the rule among the account's compiled rules.
    pub rule: usize,
    /// What is wrong.
    pub problem: String,
    /// What to do.
    pub fix: String,
}

/// Every finding about `rules`, in rule order; `forwards` says whether the account has
/// `[account.forward]`.
pub fn lint(rules: &[Rule], forwards: bool) -> Vec<RuleFinding> {
    let mut findings = Vec::new();
    for (index, rule) in rules.iter().enumerate() {
        findings.extend(unknown_values(index, &rule.when));
        if let Some(earlier) = rules[..index]
            .iter()
            .position(|before| covers(&before.when, &rule.when))
        {
            findings.push(RuleFinding {
                rule: index,
                problem: format!(
                    "never matches: rule[{earlier}] comes first and matches every message this one does (the first match wins)"
                ),
                fix: format!("move this rule above rule[{earlier}], or narrow rule[{earlier}]"),
            });
        }
    }
    if forwards {
        findings.extend(forward_unreachable(rules));
    }
    findings
}

/// `msg_type` and `event` values WeChat never sends.
fn unknown_values(index: usize, when: &When) -> Vec<RuleFinding> {
    let mut findings = Vec::new();
    if let Some(msg_type) = &when.msg_type {
        if !MSG_TYPES.contains(&msg_type.as_str()) {
            let hint = did_you_mean(msg_type, &MSG_TYPES)
                .map(|known| format!("did you mean msg_type = \"{known}\"?"))
                .unwrap_or_else(|| format!("use one of {}", MSG_TYPES.join(", ")));
            findings.push(RuleFinding {
                rule: index,
                problem: format!("msg_type = {msg_type:?} is not a MsgType WeChat sends, so this rule never matches"),
                fix: hint,
            });
        }
    }
    if let Some(event) = &when.event {
        if !EVENTS.contains(&event.as_str()) {
            if let Some(known) = did_you_mean(event, &EVENTS) {
                findings.push(RuleFinding {
                    rule: index,
                    problem: format!("event = {event:?} is not an event WeChat sends"),
                    fix: format!("did you mean event = \"{known}\"?"),
                });
            }
        }
        if when.msg_type.as_deref().is_some_and(|t| t != "event") {
            findings.push(RuleFinding {
                rule: index,
                problem: "an event rule with a msg_type other than \"event\" never matches".into(),
                fix: "drop msg_type, or set it to \"event\"".into(),
            });
        }
    }
    findings
}

/// The known value within two edits of `value`, the closest first.
pub(crate) fn did_you_mean<'a>(value: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (strsim::levenshtein(value, k), *k))
        .filter(|(distance, _)| *distance <= 2)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, k)| k)
}

/// Whether every message `later` matches is also matched by `earlier`: each condition
/// `earlier` has, `later` has too, equal or narrower.
fn covers(earlier: &When, later: &When) -> bool {
    let same = |a: &Option<String>, b: &Option<String>| a.is_none() || a == b;
    let regex_same = match (&earlier.regex, &later.regex) {
        (None, _) => true,
        (Some(a), Some(b)) => a.as_str() == b.as_str(),
        (Some(_), None) => false,
    };
    // `contains = "x"` also holds for a keyword or a `contains` that includes "x".
    let contains_covers = match &earlier.contains {
        None => true,
        Some(needle) => [&later.contains, &later.keyword]
            .into_iter()
            .flatten()
            .any(|text| text.contains(needle.as_str())),
    };
    same(&earlier.msg_type, &later.msg_type)
        && same(&earlier.keyword, &later.keyword)
        && contains_covers
        && regex_same
        && same(&earlier.event, &later.event)
        && same(&earlier.event_key, &later.event_key)
}

/// A rule that answers every message (or every message of a type) leaves nothing of
/// it for the service.
fn forward_unreachable(rules: &[Rule]) -> Option<RuleFinding> {
    rules.iter().enumerate().find_map(|(index, rule)| {
        let w = &rule.when;
        let narrowed = w.keyword.is_some()
            || w.contains.is_some()
            || w.regex.is_some()
            || w.event.is_some()
            || w.event_key.is_some();
        if narrowed {
            return None;
        }
        let what = match &w.msg_type {
            None => "no message".to_owned(),
            Some(msg_type) => format!("no {msg_type} message"),
        };
        Some(RuleFinding {
            rule: index,
            problem: format!(
                "[account.forward] gets {what}: this rule answers all of them before forwarding is tried (rules first, then forward)"
            ),
            fix: "remove or narrow this rule (e.g. with keyword) so the service gets those messages".into(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::RawRule;

    fn rules(toml_rules: &str) -> Vec<Rule> {
        #[derive(serde::Deserialize)]
        struct File {
            rule: Vec<RawRule>,
        }
        let file: File = toml::from_str(toml_rules).unwrap();
        file.rule
            .into_iter()
            .map(|r| Rule::compile(r).unwrap())
            .collect()
    }

    #[test]
    fn a_narrower_rule_after_a_general_one_is_shadowed() {
        let found = lint(
            &rules(
                "[[rule]]\nwhen = { msg_type = \"event\", event = \"subscribe\" }\nreply = { text = \"hi\" }\n\
                 [[rule]]\nwhen = { msg_type = \"event\", event = \"subscribe\", event_key = \"spring\" }\nreply = { text = \"spring\" }\n\
                 [[rule]]\nwhen = { contains = \"help\" }\nreply = { text = \"h\" }\n\
                 [[rule]]\nwhen = { msg_type = \"text\", keyword = \"need help\" }\nreply = { text = \"k\" }\n\
                 [[rule]]\nwhen = { msg_type = \"text\", keyword = \"price\" }\nreply = { text = \"p\" }\n",
            ),
            false,
        );
        let shadowed: Vec<usize> = found.iter().map(|f| f.rule).collect();
        assert_eq!(shadowed, [1, 3], "{found:#?}");
        assert!(
            found[0].problem.contains("rule[0] comes first"),
            "{found:#?}"
        );
        assert!(
            found[1].problem.contains("rule[2] comes first"),
            "{found:#?}"
        );
    }

    #[test]
    fn misspelt_values_get_a_did_you_mean() {
        let found = lint(
            &rules(
                "[[rule]]\nwhen = { msg_type = \"txt\" }\nreply = { text = \"a\" }\n\
                 [[rule]]\nwhen = { event = \"subscibe\" }\nreply = { text = \"b\" }\n\
                 [[rule]]\nwhen = { event = \"some_future_event\" }\nreply = { text = \"c\" }\n\
                 [[rule]]\nwhen = { msg_type = \"text\", event = \"click\" }\nreply = { text = \"d\" }\n",
            ),
            false,
        );
        assert_eq!(found.len(), 3, "{found:#?}");
        assert_eq!(found[0].fix, "did you mean msg_type = \"text\"?");
        assert_eq!(found[1].fix, "did you mean event = \"subscribe\"?");
        assert_eq!(found[2].rule, 3);
    }

    #[test]
    fn a_rule_for_all_text_leaves_the_service_no_text() {
        let echo = rules(
            "[[rule]]\nwhen = { msg_type = \"event\", event = \"subscribe\" }\nreply = { text = \"welcome\" }\n\
             [[rule]]\nwhen = { msg_type = \"text\" }\nreply = { text = \"{content}\" }\n",
        );
        let found = lint(&echo, true);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].rule, 1);
        assert!(found[0].problem.contains("no text message"), "{found:#?}");
        assert!(
            lint(&echo, false).is_empty(),
            "without forward, nothing to say"
        );
        let keyword = rules("[[rule]]\nwhen = { keyword = \"help\" }\nreply = { text = \"h\" }\n");
        assert!(lint(&keyword, true).is_empty());
    }
}
