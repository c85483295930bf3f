//! Replies that reach the user through the customer-service message API
//! (`/cgi-bin/message/custom/send`) instead of the passive answer: an Official
//! Account's reply that came after WeChat's 5 seconds, and every reply but
//! `transfer_customer_service` on a mini-program or mini-game, which shows no other
//! passive reply (WeChat's docs). A WeCom application's reply goes through WeCom's
//! `message/send` instead (`send_with` picks the API by the account's kind).
//!
//! Here: which message the API can carry for a reply, and one send. When and how
//! often a send is tried, and where the reply waits meanwhile (the inbox), is the
//! forwarder's (`forward/reply.rs`).

use wxgate_client::{CredentialCenter, CustomMessage, TokenSource};
use wxgate_proto::reply::Reply;

use crate::config::AccountKind;

/// Why a customer-service message was not sent.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Without an AppSecret there is no access token to call the API with.
    #[error("the account has no app_secret (corp_secret and agent_id for a WeCom application), so the message API cannot be called; set it")]
    NoAppSecret,
    /// The access token or the API call failed.
    #[error(transparent)]
    Api(#[from] wxgate_client::Error),
}

/// The customer-service message for `reply` on this kind of account, when the API can
/// carry it: text and image on every kind; the first article of a news reply as a news
/// card (Official Account) or a link card (mini-program, mini-game); nothing else.
pub fn message_for(kind: AccountKind, reply: &Reply) -> Option<CustomMessage> {
    match reply {
        Reply::Text { content } => Some(CustomMessage::Text(content.clone())),
        Reply::Image { media_id } => Some(CustomMessage::Image {
            media_id: media_id.clone(),
        }),
        Reply::News { articles } => articles.first().map(|a| match kind {
            AccountKind::OfficialAccount | AccountKind::WeCom => CustomMessage::News {
                title: a.title.clone(),
                description: a.description.clone(),
                url: a.url.clone(),
                picurl: a.pic_url.clone(),
            },
            AccountKind::MiniProgram | AccountKind::MiniGame => CustomMessage::Link {
                title: a.title.clone(),
                description: a.description.clone(),
                url: a.url.clone(),
                thumb_url: a.pic_url.clone(),
            },
        }),
        _ => None,
    }
}

/// Sends `message` to `openid` with the account's access token (retried once on a
/// token WeChat no longer accepts).
///
/// # Errors
/// The account has no `app_secret`, or the API call failed; the message says which.
pub async fn send(
    center: &CredentialCenter,
    account: &str,
    openid: &str,
    message: &CustomMessage,
) -> Result<(), SendError> {
    // A configured account with its AppSecret, or an authorizer the center holds.
    if center.token_source(account).is_none() {
        return Err(SendError::NoAppSecret);
    }
    center
        .with_access_token(account, |token| async move {
            send_with(center, account, &token, openid, message).await
        })
        .await?;
    Ok(())
}

/// One send with `token`, through the API the account's kind has: WeCom's
/// `message/send` (to a member's UserID, from the application's AgentID) for a WeCom
/// application, the customer-service API (`message/custom/send`) for every other kind.
async fn send_with(
    center: &CredentialCenter,
    account: &str,
    token: &str,
    touser: &str,
    message: &CustomMessage,
) -> Result<(), wxgate_client::Error> {
    match center.token_source(account) {
        Some(TokenSource::WeCom { agent_id }) => {
            (center.wecom())
                .message_send(token, agent_id, touser, message)
                .await
        }
        _ => center.client().custom_send(token, touser, message).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wxgate_proto::reply::Article;

    #[test]
    fn messages_by_kind() {
        let text = Reply::Text {
            content: "hi".into(),
        };
        let news = Reply::News {
            articles: vec![Article {
                title: "t".into(),
                description: "d".into(),
                pic_url: "p".into(),
                url: "u".into(),
            }],
        };
        for kind in [
            AccountKind::OfficialAccount,
            AccountKind::MiniProgram,
            AccountKind::MiniGame,
        ] {
            assert_eq!(
                message_for(kind, &text),
                Some(CustomMessage::Text("hi".into()))
            );
            assert_eq!(
                message_for(
                    kind,
                    &Reply::Voice {
                        media_id: "m".into()
                    }
                ),
                None
            );
        }
        assert!(matches!(
            message_for(AccountKind::OfficialAccount, &news),
            Some(CustomMessage::News { picurl, .. }) if picurl == "p"
        ));
        let link = message_for(AccountKind::MiniProgram, &news).unwrap();
        assert_eq!(
            link.to_json("o")["link"],
            serde_json::json!({ "title": "t", "description": "d", "url": "u", "thumb_url": "p" })
        );
    }
}
