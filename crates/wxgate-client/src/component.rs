//! The Open Platform third-party platform's API (开放平台 第三方平台, "component"):
//! its own token from the pushed `component_verify_ticket`, the push of a ticket on
//! demand, pre-authorization codes, and the authorizers' tokens. Every call goes to
//! `api_base`, like the rest of [`Client`].

use serde_json::{json, Value};

use crate::api::{Client, Fetched};
use crate::Error;

/// What `api_query_auth` and `api_authorizer_token` hand out for one authorizer.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthorizerTokens {
    /// The authorizer's AppID.
    pub authorizer_app_id: String,
    /// Its `authorizer_access_token` and lifetime.
    pub access: Fetched,
    /// The `authorizer_refresh_token` to use next: the same one or a new one. Losing it
    /// makes the merchant authorize again.
    pub refresh_token: String,
}

impl std::fmt::Debug for AuthorizerTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthorizerTokens")
            .field("authorizer_app_id", &self.authorizer_app_id)
            .field("access", &self.access)
            .field("refresh_token", &"[REDACTED]")
            .finish()
    }
}

fn text<'a>(path: &str, value: &'a Value, field: &str) -> Result<&'a str, Error> {
    value[field].as_str().ok_or_else(|| Error::Decode {
        path: path.to_owned(),
        reason: format!("no {field} in the answer"),
    })
}

impl Client {
    /// `POST /cgi-bin/component/api_component_token`: the platform's
    /// `component_access_token` (2 h), from the latest `component_verify_ticket`.
    ///
    /// # Errors
    /// As [`Client::get`]; 61005 (ticket expired) and 61006 (ticket invalid) mean a
    /// newer ticket is needed.
    pub async fn component_token(
        &self,
        component_app_id: &str,
        secret: &str,
        verify_ticket: &str,
    ) -> Result<Fetched, Error> {
        let path = "/cgi-bin/component/api_component_token";
        let body = json!({
            "component_appid": component_app_id,
            "component_appsecret": secret,
            "component_verify_ticket": verify_ticket,
        });
        let value = self.post(path, &[], &body).await?;
        Ok(Fetched {
            value: text(path, &value, "component_access_token")?.to_owned(),
            expires_in: value["expires_in"].as_i64().unwrap_or(7200),
        })
    }

    /// `POST /cgi-bin/component/api_start_push_ticket`: asks WeChat to push a
    /// `component_verify_ticket` now (a fresh start has none).
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn start_push_ticket(
        &self,
        component_app_id: &str,
        secret: &str,
    ) -> Result<(), Error> {
        let body = json!({ "component_appid": component_app_id, "component_secret": secret });
        self.post("/cgi-bin/component/api_start_push_ticket", &[], &body)
            .await
            .map(drop)
    }

    /// `POST /cgi-bin/component/api_create_preauthcode`: a pre-authorization code for
    /// the authorization page (30 minutes).
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn create_preauthcode(
        &self,
        component_token: &str,
        component_app_id: &str,
    ) -> Result<Fetched, Error> {
        let path = "/cgi-bin/component/api_create_preauthcode";
        let body = json!({ "component_appid": component_app_id });
        let value = self
            .post(path, &[("component_access_token", component_token)], &body)
            .await?;
        Ok(Fetched {
            value: text(path, &value, "pre_auth_code")?.to_owned(),
            expires_in: value["expires_in"].as_i64().unwrap_or(1800),
        })
    }

    /// `POST /cgi-bin/component/api_query_auth`: exchanges an authorization code for
    /// the authorizer's tokens.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn query_auth(
        &self,
        component_token: &str,
        component_app_id: &str,
        authorization_code: &str,
    ) -> Result<AuthorizerTokens, Error> {
        let path = "/cgi-bin/component/api_query_auth";
        let body = json!({
            "component_appid": component_app_id,
            "authorization_code": authorization_code,
        });
        let value = self
            .post(path, &[("component_access_token", component_token)], &body)
            .await?;
        let info = &value["authorization_info"];
        Ok(AuthorizerTokens {
            authorizer_app_id: text(path, info, "authorizer_appid")?.to_owned(),
            access: Fetched {
                value: text(path, info, "authorizer_access_token")?.to_owned(),
                expires_in: info["expires_in"].as_i64().unwrap_or(7200),
            },
            refresh_token: text(path, info, "authorizer_refresh_token")?.to_owned(),
        })
    }

    /// `POST /cgi-bin/component/api_authorizer_token`: a new authorizer access token
    /// from its refresh token, and the refresh token to use next.
    ///
    /// # Errors
    /// As [`Client::get`]; 61023 means the refresh token is no longer valid.
    pub async fn authorizer_token(
        &self,
        component_token: &str,
        component_app_id: &str,
        authorizer_app_id: &str,
        refresh_token: &str,
    ) -> Result<AuthorizerTokens, Error> {
        let path = "/cgi-bin/component/api_authorizer_token";
        let body = json!({
            "component_appid": component_app_id,
            "authorizer_appid": authorizer_app_id,
            "authorizer_refresh_token": refresh_token,
        });
        let value = self
            .post(path, &[("component_access_token", component_token)], &body)
            .await?;
        Ok(AuthorizerTokens {
            authorizer_app_id: authorizer_app_id.to_owned(),
            access: Fetched {
                value: text(path, &value, "authorizer_access_token")?.to_owned(),
                expires_in: value["expires_in"].as_i64().unwrap_or(7200),
            },
            refresh_token: text(path, &value, "authorizer_refresh_token")?.to_owned(),
        })
    }
}
