//! Typed WeChat API calls. Every call goes to `api_base` (the real API, or the
//! emulator in tests) and turns a non-zero `errcode` into [`Error::Api`].

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::describe;
use crate::Error;

mod wxacode;

/// The official API host.
pub const DEFAULT_API_BASE: &str = "https://api.weixin.qq.com";

/// An HTTP client bound to one API base URL.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    api_base: String,
}

/// A fetched credential (access_token or ticket) and its lifetime.
#[derive(Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The token or ticket.
    pub value: String,
    /// Seconds it stays valid.
    pub expires_in: i64,
}

impl std::fmt::Debug for Fetched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetched")
            .field("value", &"[REDACTED]")
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// The answer of the OAuth code exchange.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct OAuthToken {
    /// The web access_token (not the global one).
    pub access_token: String,
    /// Seconds it stays valid.
    pub expires_in: i64,
    /// For `/sns/oauth2/refresh_token`.
    pub refresh_token: String,
    /// The user.
    pub openid: String,
    /// Granted scope.
    pub scope: String,
    /// Present when the app is bound to an Open Platform account.
    #[serde(default)]
    pub unionid: Option<String>,
}

impl std::fmt::Debug for OAuthToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthToken")
            .field("access_token", &"[REDACTED]")
            .field("expires_in", &self.expires_in)
            .field("refresh_token", &"[REDACTED]")
            .field("openid", &self.openid)
            .field("scope", &self.scope)
            .field("unionid", &self.unionid)
            .finish()
    }
}

/// A QR code ticket.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct QrTicket {
    /// The ticket (for showqrcode).
    pub ticket: String,
    /// Seconds until it expires (temporary codes).
    #[serde(default)]
    pub expire_seconds: Option<i64>,
    /// The URL the QR code encodes.
    pub url: String,
}

/// A QR code's scene value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scene {
    /// Integer scene (1..=100000 for permanent codes).
    Id(u32),
    /// String scene (1..=64 characters).
    Str(String),
}

/// A customer-service message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CustomMessage {
    /// Text.
    Text(String),
    /// An uploaded image.
    Image {
        /// Media id.
        media_id: String,
    },
    /// One article card.
    News {
        /// Title.
        title: String,
        /// Description.
        description: String,
        /// Link.
        url: String,
        /// Picture URL.
        picurl: String,
    },
    /// A link card: the mini-program customer-service form of an article.
    Link {
        /// Title.
        title: String,
        /// Description.
        description: String,
        /// Link.
        url: String,
        /// Thumbnail URL.
        thumb_url: String,
    },
    /// A mini-program card.
    MiniProgramPage {
        /// Title.
        title: String,
        /// Mini-program AppID.
        appid: String,
        /// Page path.
        pagepath: String,
        /// Thumbnail media id.
        thumb_media_id: String,
    },
}

impl CustomMessage {
    /// The JSON body for `touser`.
    pub fn to_json(&self, touser: &str) -> Value {
        match self {
            CustomMessage::Text(content) => {
                json!({ "touser": touser, "msgtype": "text", "text": { "content": content } })
            }
            CustomMessage::Image { media_id } => {
                json!({ "touser": touser, "msgtype": "image", "image": { "media_id": media_id } })
            }
            CustomMessage::News {
                title,
                description,
                url,
                picurl,
            } => json!({
                "touser": touser, "msgtype": "news",
                "news": { "articles": [{ "title": title, "description": description, "url": url, "picurl": picurl }] }
            }),
            CustomMessage::Link {
                title,
                description,
                url,
                thumb_url,
            } => json!({
                "touser": touser, "msgtype": "link",
                "link": { "title": title, "description": description, "url": url, "thumb_url": thumb_url }
            }),
            CustomMessage::MiniProgramPage {
                title,
                appid,
                pagepath,
                thumb_media_id,
            } => json!({
                "touser": touser, "msgtype": "miniprogrampage",
                "miniprogrampage": { "title": title, "appid": appid, "pagepath": pagepath, "thumb_media_id": thumb_media_id }
            }),
        }
    }
}

impl Client {
    /// A client for `api_base` (e.g. [`DEFAULT_API_BASE`], or the emulator's address).
    pub fn new(api_base: &str) -> Client {
        let http = crate::tls::http_client_builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("the TLS backend initialises");
        Client {
            http,
            api_base: api_base.trim_end_matches('/').to_owned(),
        }
    }

    /// The base URL.
    pub fn api_base(&self) -> &str {
        &self.api_base
    }

    async fn send(&self, path: &str, request: reqwest::RequestBuilder) -> Result<Value, Error> {
        let http_error = |e: reqwest::Error| Error::Http {
            path: path.to_owned(),
            reason: describe(e),
        };
        let response = request.send().await.map_err(http_error)?;
        let text = response.text().await.map_err(http_error)?;
        let value: Value = serde_json::from_str(&text).map_err(|e| Error::Decode {
            path: path.to_owned(),
            reason: format!(
                "not JSON ({e}): {}",
                text.chars().take(120).collect::<String>()
            ),
        })?;
        match value.get("errcode").and_then(Value::as_i64) {
            Some(0) | None => Ok(value),
            Some(errcode) => Err(Error::api(
                errcode,
                value["errmsg"].as_str().unwrap_or_default(),
            )),
        }
    }

    /// GET `path?query`.
    ///
    /// # Errors
    /// [`Error::Http`], [`Error::Decode`], [`Error::Api`].
    pub async fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, Error> {
        let request = self
            .http
            .get(format!("{}{path}", self.api_base))
            .query(query);
        self.send(path, request).await
    }

    /// POST JSON to `path?query`, as raw UTF-8 (never `\uXXXX` escapes, which WeChat
    /// refuses with 40033).
    ///
    /// # Errors
    /// [`Error::Http`], [`Error::Decode`], [`Error::Api`].
    pub async fn post(
        &self,
        path: &str,
        query: &[(&str, &str)],
        body: &Value,
    ) -> Result<Value, Error> {
        let request = self
            .http
            .post(format!("{}{path}", self.api_base))
            .query(query)
            .header("Content-Type", "application/json; charset=utf-8")
            .body(serde_json::to_string(body).expect("JSON values serialise"));
        self.send(path, request).await
    }

    fn decode<T: for<'de> Deserialize<'de>>(path: &str, value: Value) -> Result<T, Error> {
        serde_json::from_value(value).map_err(|e| Error::Decode {
            path: path.to_owned(),
            reason: e.to_string(),
        })
    }

    fn fetched(path: &str, value: &Value, field: &str) -> Result<Fetched, Error> {
        let missing = || Error::Decode {
            path: path.to_owned(),
            reason: format!("no {field} in the answer"),
        };
        Ok(Fetched {
            value: value[field].as_str().ok_or_else(missing)?.to_owned(),
            expires_in: value["expires_in"].as_i64().unwrap_or(7200),
        })
    }

    /// `POST /cgi-bin/stable_token`: the current token (a new one with `force_refresh`).
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn stable_token(
        &self,
        app_id: &str,
        secret: &str,
        force_refresh: bool,
    ) -> Result<Fetched, Error> {
        let body = json!({ "grant_type": "client_credential", "appid": app_id, "secret": secret, "force_refresh": force_refresh });
        let value = self.post("/cgi-bin/stable_token", &[], &body).await?;
        Self::fetched("/cgi-bin/stable_token", &value, "access_token")
    }

    /// `GET /cgi-bin/token`: a new token, invalidating the previous one.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn classic_token(&self, app_id: &str, secret: &str) -> Result<Fetched, Error> {
        let value = self
            .get(
                "/cgi-bin/token",
                &[
                    ("grant_type", "client_credential"),
                    ("appid", app_id),
                    ("secret", secret),
                ],
            )
            .await?;
        Self::fetched("/cgi-bin/token", &value, "access_token")
    }

    /// `GET /cgi-bin/ticket/getticket?type=jsapi`.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn jsapi_ticket(&self, access_token: &str) -> Result<Fetched, Error> {
        let value = self
            .get(
                "/cgi-bin/ticket/getticket",
                &[("access_token", access_token), ("type", "jsapi")],
            )
            .await?;
        Self::fetched("/cgi-bin/ticket/getticket", &value, "ticket")
    }

    /// `GET /sns/oauth2/access_token`: exchanges an OAuth code (once; a second exchange
    /// gets 40163).
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn oauth_exchange(
        &self,
        app_id: &str,
        secret: &str,
        code: &str,
    ) -> Result<OAuthToken, Error> {
        let path = "/sns/oauth2/access_token";
        let value = self
            .get(
                path,
                &[
                    ("appid", app_id),
                    ("secret", secret),
                    ("code", code),
                    ("grant_type", "authorization_code"),
                ],
            )
            .await?;
        Self::decode(path, value)
    }

    /// `GET /sns/oauth2/refresh_token`.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn oauth_refresh(
        &self,
        app_id: &str,
        refresh_token: &str,
    ) -> Result<OAuthToken, Error> {
        let path = "/sns/oauth2/refresh_token";
        let value = self
            .get(
                path,
                &[
                    ("appid", app_id),
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh_token),
                ],
            )
            .await?;
        Self::decode(path, value)
    }

    /// `GET /sns/userinfo` (needs `snsapi_userinfo`).
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn oauth_userinfo(&self, oauth_token: &str, openid: &str) -> Result<Value, Error> {
        self.get(
            "/sns/userinfo",
            &[
                ("access_token", oauth_token),
                ("openid", openid),
                ("lang", "zh_CN"),
            ],
        )
        .await
    }

    /// `GET /sns/auth`: whether a web access_token is still valid.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn oauth_check(&self, oauth_token: &str, openid: &str) -> Result<(), Error> {
        self.get(
            "/sns/auth",
            &[("access_token", oauth_token), ("openid", openid)],
        )
        .await
        .map(drop)
    }

    /// `POST /cgi-bin/qrcode/create`: temporary (with `expire_seconds`) or permanent.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn qrcode_create(
        &self,
        access_token: &str,
        scene: &Scene,
        expire_seconds: Option<u32>,
    ) -> Result<QrTicket, Error> {
        let (action, scene_json) = match (scene, expire_seconds.is_some()) {
            (Scene::Id(id), true) => ("QR_SCENE", json!({ "scene_id": id })),
            (Scene::Id(id), false) => ("QR_LIMIT_SCENE", json!({ "scene_id": id })),
            (Scene::Str(s), true) => ("QR_STR_SCENE", json!({ "scene_str": s })),
            (Scene::Str(s), false) => ("QR_LIMIT_STR_SCENE", json!({ "scene_str": s })),
        };
        let mut body = json!({ "action_name": action, "action_info": { "scene": scene_json } });
        if let Some(seconds) = expire_seconds {
            body["expire_seconds"] = json!(seconds);
        }
        let path = "/cgi-bin/qrcode/create";
        Self::decode(
            path,
            self.post(path, &[("access_token", access_token)], &body)
                .await?,
        )
    }

    /// `POST /wxa/generatescheme`; returns the `openlink`.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn generate_scheme(&self, access_token: &str, body: &Value) -> Result<String, Error> {
        let value = self
            .post(
                "/wxa/generatescheme",
                &[("access_token", access_token)],
                body,
            )
            .await?;
        Ok(Self::fetched("/wxa/generatescheme", &value, "openlink")?.value)
    }

    /// `POST /wxa/generate_urllink`; returns the `url_link`.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn generate_urllink(
        &self,
        access_token: &str,
        body: &Value,
    ) -> Result<String, Error> {
        let value = self
            .post(
                "/wxa/generate_urllink",
                &[("access_token", access_token)],
                body,
            )
            .await?;
        Ok(Self::fetched("/wxa/generate_urllink", &value, "url_link")?.value)
    }

    /// `POST /cgi-bin/message/custom/send`.
    ///
    /// # Errors
    /// As [`Client::get`]; 45015 outside the 48-hour window.
    pub async fn custom_send(
        &self,
        access_token: &str,
        touser: &str,
        message: &CustomMessage,
    ) -> Result<(), Error> {
        self.post(
            "/cgi-bin/message/custom/send",
            &[("access_token", access_token)],
            &message.to_json(touser),
        )
        .await
        .map(drop)
    }

    /// `POST /cgi-bin/message/custom/typing`.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn custom_typing(
        &self,
        access_token: &str,
        touser: &str,
        typing: bool,
    ) -> Result<(), Error> {
        let body =
            json!({ "touser": touser, "command": if typing { "Typing" } else { "CancelTyping" } });
        self.post(
            "/cgi-bin/message/custom/typing",
            &[("access_token", access_token)],
            &body,
        )
        .await
        .map(drop)
    }

    /// `POST /cgi-bin/message/template/send`; returns the `msgid`.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn template_send(&self, access_token: &str, body: &Value) -> Result<i64, Error> {
        let value = self
            .post(
                "/cgi-bin/message/template/send",
                &[("access_token", access_token)],
                body,
            )
            .await?;
        Ok(value["msgid"].as_i64().unwrap_or_default())
    }

    /// `POST /cgi-bin/menu/create`.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn menu_create(&self, access_token: &str, menu: &Value) -> Result<(), Error> {
        self.post(
            "/cgi-bin/menu/create",
            &[("access_token", access_token)],
            menu,
        )
        .await
        .map(drop)
    }

    /// `GET /cgi-bin/menu/get`.
    ///
    /// # Errors
    /// As [`Client::get`]; 46003 when there is no menu.
    pub async fn menu_get(&self, access_token: &str) -> Result<Value, Error> {
        self.get("/cgi-bin/menu/get", &[("access_token", access_token)])
            .await
    }

    /// `GET /cgi-bin/menu/delete`.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn menu_delete(&self, access_token: &str) -> Result<(), Error> {
        self.get("/cgi-bin/menu/delete", &[("access_token", access_token)])
            .await
            .map(drop)
    }

    /// `GET /cgi-bin/user/info`.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn user_info(&self, access_token: &str, openid: &str) -> Result<Value, Error> {
        self.get(
            "/cgi-bin/user/info",
            &[
                ("access_token", access_token),
                ("openid", openid),
                ("lang", "zh_CN"),
            ],
        )
        .await
    }

    /// `GET /cgi-bin/getcallbackip`: WeChat's callback egress IPs, for the firewall.
    ///
    /// # Errors
    /// As [`Client::get`].
    pub async fn callback_ips(&self, access_token: &str) -> Result<Vec<String>, Error> {
        let value = self
            .get("/cgi-bin/getcallbackip", &[("access_token", access_token)])
            .await?;
        Ok(value["ip_list"]
            .as_array()
            .map(|ips| {
                ips.iter()
                    .filter_map(|ip| ip.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default())
    }
}
