//! The Open Platform third-party platform ("component", 开放平台 第三方平台): what
//! WeChat posts to its 授权事件接收URL, decrypted.
//!
//! The envelope is `<xml><AppId/><Encrypt/></xml>`, always encrypted with the
//! platform's key, and the trailer of the ciphertext is the platform's AppID. Inside:
//!
//! ```text
//! <xml><AppId/><CreateTime/><InfoType>component_verify_ticket</InfoType><ComponentVerifyTicket/></xml>
//! <xml><AppId/><CreateTime/><InfoType>authorized</InfoType><AuthorizerAppid/>
//!      <AuthorizationCode/><AuthorizationCodeExpiredTime/><PreAuthCode/></xml>
//! ```
//! (`updateauthorized` has the same fields; `unauthorized` only `AuthorizerAppid`.)
//! Other InfoTypes (fast registration, and so on) are kept as [`Info::Other`].

use crate::xml::{self, push_cdata, push_number, Element};
use crate::Error;

/// The longest value of any notify field: tickets and codes are about 100 bytes.
pub const MAX_FIELD_BYTES: usize = 512;

/// One decrypted notify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notify {
    /// The platform's AppID, as the notify names it.
    pub app_id: String,
    /// Unix seconds when WeChat made it.
    pub create_time: i64,
    /// What it says.
    pub info: Info,
}

/// What a notify says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Info {
    /// `component_verify_ticket`: the ticket that `api_component_token` needs (12 h).
    VerifyTicket(String),
    /// `authorized`: a merchant authorized the platform.
    Authorized(Authorization),
    /// `updateauthorized`: a merchant changed the authorization.
    UpdateAuthorized(Authorization),
    /// `unauthorized`: a merchant withdrew it.
    Unauthorized {
        /// The authorizer's AppID.
        authorizer_app_id: String,
    },
    /// Any other InfoType, by name.
    Other(String),
}

/// The fields of `authorized` and `updateauthorized`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// The authorizer's AppID.
    pub authorizer_app_id: String,
    /// The code `api_query_auth` exchanges for the authorizer's tokens.
    pub authorization_code: String,
    /// Unix seconds when the code expires.
    pub code_expires_at: i64,
}

impl std::fmt::Display for Info {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.info_type())
    }
}

impl Info {
    /// The InfoType as WeChat writes it.
    pub fn info_type(&self) -> &str {
        match self {
            Info::VerifyTicket(_) => "component_verify_ticket",
            Info::Authorized(_) => "authorized",
            Info::UpdateAuthorized(_) => "updateauthorized",
            Info::Unauthorized { .. } => "unauthorized",
            Info::Other(name) => name,
        }
    }
}

fn field<'a>(root: &'a Element, name: &'static str) -> Result<&'a str, Error> {
    let text = root
        .text_of(name)
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(Error::MissingField { field: name })?;
    if text.len() > MAX_FIELD_BYTES {
        return Err(Error::FieldTooLong {
            field: name.to_owned(),
            bytes: text.len(),
            max: MAX_FIELD_BYTES,
        });
    }
    Ok(text)
}

fn number(root: &Element, name: &'static str) -> Result<i64, Error> {
    let text = field(root, name)?;
    text.parse().map_err(|_| Error::BadNumber {
        field: name,
        value: crate::error::shorten(text),
    })
}

impl Notify {
    /// Parses a decrypted notify (XML, within [`xml::parse`]'s bounds).
    ///
    /// # Errors
    /// Malformed XML, a missing field, a field over [`MAX_FIELD_BYTES`], or a number
    /// that is not one.
    pub fn parse(text: &str) -> Result<Notify, Error> {
        let root = xml::parse(text)?;
        let app_id = field(&root, "AppId")?.to_owned();
        let create_time = number(&root, "CreateTime")?;
        let info_type = field(&root, "InfoType")?;
        let info = match info_type {
            "component_verify_ticket" => {
                Info::VerifyTicket(field(&root, "ComponentVerifyTicket")?.to_owned())
            }
            "authorized" => Info::Authorized(authorization(&root)?),
            "updateauthorized" => Info::UpdateAuthorized(authorization(&root)?),
            "unauthorized" => Info::Unauthorized {
                authorizer_app_id: field(&root, "AuthorizerAppid")?.to_owned(),
            },
            other => Info::Other(crate::error::shorten(other)),
        };
        Ok(Notify {
            app_id,
            create_time,
            info,
        })
    }

    /// The notify as WeChat writes it (the emulator and the tests send it).
    pub fn to_xml(&self) -> String {
        let mut out = String::from("<xml>");
        push_cdata(&mut out, "AppId", &self.app_id);
        push_number(&mut out, "CreateTime", self.create_time);
        push_cdata(&mut out, "InfoType", self.info.info_type());
        match &self.info {
            Info::VerifyTicket(ticket) => push_cdata(&mut out, "ComponentVerifyTicket", ticket),
            Info::Authorized(auth) | Info::UpdateAuthorized(auth) => {
                push_cdata(&mut out, "AuthorizerAppid", &auth.authorizer_app_id);
                push_cdata(&mut out, "AuthorizationCode", &auth.authorization_code);
                push_number(
                    &mut out,
                    "AuthorizationCodeExpiredTime",
                    auth.code_expires_at,
                );
            }
            Info::Unauthorized { authorizer_app_id } => {
                push_cdata(&mut out, "AuthorizerAppid", authorizer_app_id);
            }
            Info::Other(_) => {}
        }
        out.push_str("</xml>");
        out
    }
}

fn authorization(root: &Element) -> Result<Authorization, Error> {
    Ok(Authorization {
        authorizer_app_id: field(root, "AuthorizerAppid")?.to_owned(),
        authorization_code: field(root, "AuthorizationCode")?.to_owned(),
        code_expires_at: number(root, "AuthorizationCodeExpiredTime")?,
    })
}

/// The encrypted POST body of a notify: `<xml><AppId/><Encrypt/></xml>`.
pub fn notify_body(component_app_id: &str, encrypt: &str) -> String {
    let mut out = String::with_capacity(encrypt.len() + 96);
    out.push_str("<xml>");
    push_cdata(&mut out, "AppId", component_app_id);
    push_cdata(&mut out, "Encrypt", encrypt);
    out.push_str("</xml>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_and_an_authorization_round_trip() {
        for info in [
            Info::VerifyTicket("ticket@@@abc".into()),
            Info::Authorized(Authorization {
                authorizer_app_id: "wx0123456789abcdef".into(),
                authorization_code: "queryauthcode@@@x".into(),
                code_expires_at: 1_700_003_600,
            }),
            Info::Unauthorized {
                authorizer_app_id: "wx0123456789abcdef".into(),
            },
        ] {
            let notify = Notify {
                app_id: "wx134c8103faa5a59e".into(),
                create_time: 1_700_000_000,
                info,
            };
            assert_eq!(Notify::parse(&notify.to_xml()).unwrap(), notify);
        }
    }

    #[test]
    fn a_missing_ticket_an_oversized_field_and_a_bad_time_are_refused() {
        let head = "<xml><AppId>wx134c8103faa5a59e</AppId>";
        let missing = format!(
            "{head}<CreateTime>1</CreateTime><InfoType>component_verify_ticket</InfoType></xml>"
        );
        assert_eq!(
            Notify::parse(&missing),
            Err(Error::MissingField {
                field: "ComponentVerifyTicket"
            })
        );
        let long = "a".repeat(MAX_FIELD_BYTES + 1);
        let oversized = format!("{head}<CreateTime>1</CreateTime><InfoType>component_verify_ticket</InfoType><ComponentVerifyTicket>{long}</ComponentVerifyTicket></xml>");
        assert!(matches!(
            Notify::parse(&oversized),
            Err(Error::FieldTooLong { .. })
        ));
        let time = format!("{head}<CreateTime>soon</CreateTime><InfoType>x</InfoType></xml>");
        assert!(matches!(Notify::parse(&time), Err(Error::BadNumber { .. })));
        let other = format!(
            "{head}<CreateTime>1</CreateTime><InfoType>notify_third_fasteregister</InfoType></xml>"
        );
        assert_eq!(
            Notify::parse(&other).unwrap().info,
            Info::Other("notify_third_fasteregister".into())
        );
    }
}
