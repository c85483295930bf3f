//! The full-network release test (全网发布): before a platform may be released,
//! WeChat's own test accounts authorize it and send it two cases, which wxgate answers
//! itself, so a platform passes without code of its own:
//! * the text `TESTCOMPONENT_MSG_TYPE_TEXT`: a passive text
//!   `TESTCOMPONENT_MSG_TYPE_TEXT_callback`;
//! * the text `QUERY_AUTH_CODE:$code`: an empty answer (`success`) at once, then the
//!   code exchanged (`api_query_auth`) and the text `$code_from_api` sent to the
//!   sender through the customer-service API with the authorizer's token.
//!
//! Only the test accounts get this: anyone else typing these strings gets the rules
//! and the forward as usual.

use wxgate_proto::Message;

/// WeChat's release-test accounts (全网发布检测说明, 自动化测试的专用测试号): five
/// Official Accounts, then five mini-programs, by AppID; their usernames in the
/// comments.
pub const RELEASE_TEST_APP_IDS: [&str; 10] = [
    "wx570bc396a51b8ff8", // gh_3c884a361561, Official Account, group 1
    "wx9252c5e0bb1836fc", // gh_c0f28a78b318, Official Account, group 2
    "wx8e1097c5bc82cde9", // gh_3f222ed8d140, Official Account, group 3
    "wx14550af28c71a144", // gh_26128078e9ab, Official Account, group 4
    "wxa35b9c23cfe664eb", // gh_2b3713f184a6, Official Account, group 5
    "wxd101a85aa106f53e", // gh_8dad206e9538, mini-program, group 1
    "wxc39235c15087f6f3", // gh_905ae9d01059, mini-program, group 2
    "wx7720d01d4b2a4500", // gh_393666f1fdf4, mini-program, group 3
    "wx05d483572dcd5d8b", // gh_39abb5d4e1b7, mini-program, group 4
    "wx5910277cae6fd970", // gh_7818dcb60240, mini-program, group 5
];

/// The text the first case sends, and the prefix of the second.
pub const TEST_TEXT: &str = "TESTCOMPONENT_MSG_TYPE_TEXT";
/// The prefix of the second case's text.
pub const QUERY_AUTH_CODE: &str = "QUERY_AUTH_CODE:";

/// What a release-test account's message asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseCase {
    /// Answer this text passively.
    Reply(String),
    /// Answer `success`, exchange this code, and send `{code}_from_api`.
    QueryAuthCode(String),
}

/// Whether `app_id` is one of WeChat's release-test accounts.
pub fn is_release_test_account(app_id: &str) -> bool {
    RELEASE_TEST_APP_IDS.contains(&app_id)
}

/// The case a message of the authorizer `app_id` is, if it is one: only for a
/// release-test account.
pub fn release_case(app_id: &str, message: &Message) -> Option<ReleaseCase> {
    if !is_release_test_account(app_id) {
        return None;
    }
    let content = message.content()?;
    if content == TEST_TEXT {
        return Some(ReleaseCase::Reply(format!("{TEST_TEXT}_callback")));
    }
    let code = content.strip_prefix(QUERY_AUTH_CODE)?.trim();
    (!code.is_empty() && code.len() <= 512).then(|| ReleaseCase::QueryAuthCode(code.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(content: &str) -> Message {
        let xml = wxgate_proto::push::build::text("gh_3c884a361561", "oTest", 1, content, 1);
        Message::parse(&xml).unwrap()
    }

    #[test]
    fn only_the_test_accounts_get_the_cases() {
        let tester = RELEASE_TEST_APP_IDS[0];
        assert_eq!(
            release_case(tester, &text(TEST_TEXT)),
            Some(ReleaseCase::Reply(
                "TESTCOMPONENT_MSG_TYPE_TEXT_callback".into()
            ))
        );
        assert_eq!(
            release_case(tester, &text("QUERY_AUTH_CODE:queryauthcode@@@x")),
            Some(ReleaseCase::QueryAuthCode("queryauthcode@@@x".into()))
        );
        assert_eq!(release_case(tester, &text("QUERY_AUTH_CODE:")), None);
        assert_eq!(release_case(tester, &text("hello")), None);
        assert_eq!(release_case("wxa0a0a0a0a0a0a0a0", &text(TEST_TEXT)), None);
        assert_eq!(RELEASE_TEST_APP_IDS.len(), 10);
    }
}
