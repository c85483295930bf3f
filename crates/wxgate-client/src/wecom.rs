//! WeCom (企业微信) calls on `qyapi_base`: an application's access_token
//! (`/cgi-bin/gettoken`) and its application messages (`/cgi-bin/message/send`).
//!
//! The answers have WeChat's shape (`errcode`, `errmsg`), so [`WeComClient`] is a
//! [`Client`] bound to `qyapi_base` whose errors carry WeCom's hints instead: the same
//! code means something else there (40001 is a wrong Secret on `gettoken`, not a token
//! another system replaced).

use serde_json::{json, Value};

use crate::api::{Client, CustomMessage, Fetched};
use crate::Error;

/// The public WeCom API host.
pub const DEFAULT_QYAPI_BASE: &str = "https://qyapi.weixin.qq.com";

/// An HTTP client bound to one WeCom API base URL.
#[derive(Debug, Clone)]
pub struct WeComClient {
    inner: Client,
}

impl WeComClient {
    /// A client for `qyapi_base` (e.g. [`DEFAULT_QYAPI_BASE`], or the emulator's address).
    pub fn new(qyapi_base: &str) -> WeComClient {
        WeComClient {
            inner: Client::new(qyapi_base),
        }
    }

    /// The base URL.
    pub fn qyapi_base(&self) -> &str {
        self.inner.api_base()
    }

    /// `GET /cgi-bin/gettoken?corpid&corpsecret`: the application's access_token.
    ///
    /// # Errors
    /// [`Error::Http`], [`Error::Decode`], or [`Error::Api`] with WeCom's hint (40013 a
    /// wrong CorpID, 40001 a wrong Secret).
    pub async fn gettoken(&self, corp_id: &str, corp_secret: &str) -> Result<Fetched, Error> {
        let path = "/cgi-bin/gettoken";
        let value = self
            .inner
            .get(path, &[("corpid", corp_id), ("corpsecret", corp_secret)])
            .await
            .map_err(wecom_error)?;
        let token = value["access_token"]
            .as_str()
            .ok_or_else(|| Error::Decode {
                path: path.to_owned(),
                reason: "no access_token in the answer".to_owned(),
            })?;
        Ok(Fetched {
            value: token.to_owned(),
            expires_in: value["expires_in"].as_i64().unwrap_or(7200),
        })
    }

    /// `POST /cgi-bin/message/send`: `message` to the member `touser` (a UserID) from
    /// the application `agent_id`.
    ///
    /// # Errors
    /// [`Error::WeComMessage`] for a message WeCom's API has no form for;
    /// [`Error::RecipientRefused`] when WeCom accepted the call but not the user;
    /// otherwise as [`WeComClient::gettoken`] (60020: the caller's IP is not among
    /// the application's trusted IPs).
    pub async fn message_send(
        &self,
        access_token: &str,
        agent_id: u64,
        touser: &str,
        message: &CustomMessage,
    ) -> Result<(), Error> {
        let body = message_json(agent_id, touser, message)?;
        let answer = self
            .inner
            .post(
                "/cgi-bin/message/send",
                &[("access_token", access_token)],
                &body,
            )
            .await
            .map_err(wecom_error)?;
        // errcode 0 with `invaliduser`: the call was fine, the user is not reachable.
        match answer["invaliduser"].as_str() {
            Some(invalid) if !invalid.is_empty() => Err(Error::RecipientRefused {
                touser: invalid.to_owned(),
            }),
            _ => Ok(()),
        }
    }
}

/// The body of `/cgi-bin/message/send` for `message`: text, image and news have the
/// customer-service API's form plus `agentid`; link and mini-program cards have none.
///
/// # Errors
/// [`Error::WeComMessage`] for a link or mini-program card.
pub fn message_json(agent_id: u64, touser: &str, message: &CustomMessage) -> Result<Value, Error> {
    let msgtype = match message {
        CustomMessage::Text(_) | CustomMessage::Image { .. } | CustomMessage::News { .. } => None,
        CustomMessage::Link { .. } => Some("link"),
        CustomMessage::MiniProgramPage { .. } => Some("miniprogrampage"),
    };
    if let Some(msgtype) = msgtype {
        return Err(Error::WeComMessage { msgtype });
    }
    let mut body = message.to_json(touser);
    body["agentid"] = json!(agent_id);
    Ok(body)
}

/// A WeCom answer's error, with WeCom's hint for its code.
fn wecom_error(error: Error) -> Error {
    match error {
        Error::Api {
            errcode, errmsg, ..
        } => Error::Api {
            hint: wecom_hint(errcode, &errmsg),
            errcode,
            errmsg,
        },
        other => other,
    }
}

/// What usually causes a WeCom error code, and the fix.
pub fn wecom_hint(errcode: i64, errmsg: &str) -> Option<String> {
    let text = match errcode {
        -1 => "WeCom is busy: retry with backoff",
        40001 => "WeCom refused the corp_secret: copy the application's Secret again from 应用管理 → 应用 → (the application) → Secret (每个应用的 Secret 不同; the contacts Secret does not fetch an application's token)",
        40013 => "invalid CorpID: check corp_id (我的企业 → 企业信息 → 企业ID)",
        40014 => "invalid access_token: malformed, or for another application; it is fetched again and the call retried",
        42001 => "the access_token expired: it is fetched again and the call retried",
        40056 | 301002 => "invalid agentid: check agent_id (应用管理 → 应用 → AgentId) against the Secret's application",
        81013 | 40003 => "unknown user: touser must be a member's UserID inside the application's visible range (可见范围)",
        60011 => "no privilege: the user or department is outside the application's visible range (可见范围)",
        45009 => "the API frequency limit is reached: look for a refresh storm (several token holders)",
        48002 => "this API is not allowed for the application: check its permissions in the admin console",
        60020 => {
            let ip = errmsg
                .split("from ip: ")
                .nth(1)
                .and_then(|rest| rest.split([' ', ',']).next())
                .unwrap_or("this server's egress IP");
            return Some(format!(
                "add {ip} to the application's trusted IPs (企业可信IP, 应用管理 → 应用 → (the application) → 企业可信IP); it is the address WeCom saw"
            ));
        }
        _ => return None,
    };
    Some(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_bodies_carry_the_agent_id() {
        let text = message_json(1000002, "zhangsan", &CustomMessage::Text("hi".into())).unwrap();
        assert_eq!(
            text,
            json!({ "touser": "zhangsan", "msgtype": "text", "agentid": 1000002, "text": { "content": "hi" } })
        );
        let image = message_json(
            7,
            "u",
            &CustomMessage::Image {
                media_id: "m1".into(),
            },
        )
        .unwrap();
        assert_eq!(image["image"]["media_id"], "m1");
        assert_eq!(image["agentid"], 7);
        let card = CustomMessage::Link {
            title: "t".into(),
            description: "d".into(),
            url: "u".into(),
            thumb_url: "p".into(),
        };
        let error = message_json(7, "u", &card).unwrap_err().to_string();
        assert!(error.contains("link"), "{error}");
    }

    #[test]
    fn hints_name_the_fix() {
        let hint = wecom_hint(60020, "not allow to access from your ip, hint: [1], from ip: 203.0.113.9, more info at https://open.work.weixin.qq.com/devtool/query?e=60020").unwrap();
        assert!(
            hint.contains("203.0.113.9") && hint.contains("企业可信IP"),
            "{hint}"
        );
        assert!(wecom_hint(40001, "invalid secret")
            .unwrap()
            .contains("corp_secret"));
        assert!(wecom_hint(40013, "invalid corpid")
            .unwrap()
            .contains("corp_id"));
        assert_eq!(wecom_hint(12345, ""), None);
    }
}
