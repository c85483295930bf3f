//! What the emulator remembers of third-party platforms, and what it does as WeChat
//! for them: issues and pushes `component_verify_ticket`s to the platform's notify URL
//! (on demand, after `api_start_push_ticket`, or at an interval), and plays the merchant
//! who authorizes the platform.

use std::collections::HashMap;
use std::time::Duration;

use rand::Rng;
use wxgate_proto::component::{Authorization, Info, Notify};
use wxgate_proto::{push, EncodingAesKey, MsgCrypt};

use crate::ids::random;
use crate::Emulator;

/// How long a pushed ticket is valid (WeChat: 12 hours).
pub(crate) const TICKET_TTL_S: i64 = 12 * 3600;
/// How long an authorization code is valid (WeChat: 1 hour).
const AUTH_CODE_TTL_S: i64 = 3600;

/// An authorization code handed out when a merchant authorizes a platform.
#[derive(Debug, Clone)]
pub(crate) struct AuthCode {
    pub(crate) component: String,
    pub(crate) authorizer: String,
    pub(crate) expires_at: i64,
    pub(crate) used: bool,
}

/// Third-party platforms' state, inside the emulator's one lock.
#[derive(Debug, Default)]
pub(crate) struct ComponentState {
    /// Tickets issued per platform, each with its expiry.
    pub(crate) tickets: HashMap<String, HashMap<String, i64>>,
    /// Valid component tokens: the platform and the expiry.
    pub(crate) tokens: HashMap<String, (String, i64)>,
    /// Where each platform's notifies go (授权事件接收URL).
    pub(crate) notify_urls: HashMap<String, String>,
    /// Platforms that asked for a ticket push before their notify URL was known: the
    /// push goes out when it is set (as WeChat's goes to the URL set in the console).
    pub(crate) pending_pushes: std::collections::HashSet<String>,
    pub(crate) auth_codes: HashMap<String, AuthCode>,
    /// The valid refresh token per (platform, authorizer).
    pub(crate) refresh: HashMap<(String, String), String>,
    /// How many times each refresh token was presented to `api_authorizer_token`.
    pub(crate) refresh_uses: HashMap<String, u32>,
    /// `api_authorizer_token` requests received and not yet looked at (the delay).
    pub(crate) refreshes_waiting: u32,
}

/// What a notify push got back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyOutcome {
    /// The HTTP status, `None` when the request failed.
    pub status: Option<u16>,
    /// The body.
    pub body: String,
}

impl Emulator {
    /// Where `component`'s notifies go (its 授权事件接收URL).
    pub fn set_notify_url(&self, component: &str, url: &str) {
        let pending = {
            let mut inner = self.lock();
            (inner.component.notify_urls).insert(component.to_owned(), url.to_owned());
            inner.component.pending_pushes.remove(component)
        };
        if pending {
            self.push_ticket_soon(component);
        }
    }

    /// Pushes a ticket 50 ms from now, as WeChat does after `api_start_push_ticket`;
    /// without a notify URL yet, once it is set.
    pub(crate) fn push_ticket_soon(&self, component: &str) {
        let known = {
            let mut inner = self.lock();
            let known = inner.component.notify_urls.contains_key(component);
            if !known {
                inner.component.pending_pushes.insert(component.to_owned());
            }
            known
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if known {
            let (emu, component) = (self.clone(), component.to_owned());
            runtime.spawn(async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let _ = emu.push_ticket(&component).await;
            });
        }
    }

    /// Issues a new `component_verify_ticket` (valid 12 hours) without pushing it.
    pub fn issue_ticket(&self, component: &str) -> String {
        let ticket = format!("ticket@@@{}", random(86));
        let expires_at = self.now() + TICKET_TTL_S;
        let mut inner = self.lock();
        let tickets = inner
            .component
            .tickets
            .entry(component.to_owned())
            .or_default();
        tickets.insert(ticket.clone(), expires_at);
        ticket
    }

    /// Issues a ticket and pushes it to the platform's notify URL; `None` without a URL
    /// or for an unknown platform.
    pub async fn push_ticket(&self, component: &str) -> Option<NotifyOutcome> {
        let ticket = self.issue_ticket(component);
        self.push_notify(component, Info::VerifyTicket(ticket))
            .await
    }

    /// Pushes a ticket every `interval` (WeChat: 10 minutes) until the task is dropped.
    pub fn spawn_ticket_pusher(
        &self,
        component: &str,
        interval: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let (emu, component) = (self.clone(), component.to_owned());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            loop {
                tick.tick().await;
                let _ = emu.push_ticket(&component).await;
            }
        })
    }

    /// Plays a merchant who authorizes `component` on the authorization page: returns
    /// the authorization code (1 hour, single use) that the `authorized` notify and the
    /// redirect carry.
    pub fn authorize(&self, component: &str, authorizer: &str) -> String {
        let code = format!("queryauthcode@@@{}", random(64));
        let expires_at = self.now() + AUTH_CODE_TTL_S;
        self.lock().component.auth_codes.insert(
            code.clone(),
            AuthCode {
                component: component.to_owned(),
                authorizer: authorizer.to_owned(),
                expires_at,
                used: false,
            },
        );
        code
    }

    /// Authorizes as [`Emulator::authorize`] and pushes the `authorized` notify.
    pub async fn push_authorized(
        &self,
        component: &str,
        authorizer: &str,
    ) -> Option<NotifyOutcome> {
        let code = self.authorize(component, authorizer);
        let info = Info::Authorized(Authorization {
            authorizer_app_id: authorizer.to_owned(),
            authorization_code: code,
            code_expires_at: self.now() + AUTH_CODE_TTL_S,
        });
        self.push_notify(component, info).await
    }

    /// Withdraws an authorization: the refresh token stops working, and the
    /// `unauthorized` notify is pushed.
    pub async fn push_unauthorized(
        &self,
        component: &str,
        authorizer: &str,
    ) -> Option<NotifyOutcome> {
        let key = (component.to_owned(), authorizer.to_owned());
        self.lock().component.refresh.remove(&key);
        let info = Info::Unauthorized {
            authorizer_app_id: authorizer.to_owned(),
        };
        self.push_notify(component, info).await
    }

    /// The refresh token `api_authorizer_token` accepts now for an authorizer.
    pub fn current_refresh_token(&self, component: &str, authorizer: &str) -> Option<String> {
        let key = (component.to_owned(), authorizer.to_owned());
        self.lock().component.refresh.get(&key).cloned()
    }

    /// `api_authorizer_token` requests received and still in their delay.
    pub fn refreshes_waiting(&self) -> u32 {
        self.lock().component.refreshes_waiting
    }

    /// How many times each refresh token was presented to `api_authorizer_token` (a
    /// request dropped in its delay presented nothing).
    pub fn refresh_token_uses(&self) -> HashMap<String, u32> {
        self.lock().component.refresh_uses.clone()
    }

    /// Encrypts and signs `info` as WeChat does and posts it to the notify URL.
    pub async fn push_notify(&self, component: &str, info: Info) -> Option<NotifyOutcome> {
        let config = self.component_config(component)?.clone();
        let url = self.lock().component.notify_urls.get(component).cloned()?;
        let crypt = MsgCrypt::new(
            &EncodingAesKey::parse(&config.encoding_aes_key).ok()?,
            component,
        );
        let notify = Notify {
            app_id: component.to_owned(),
            create_time: self.now(),
            info,
        };
        let mut random16 = [0u8; 16];
        rand::rng().fill_bytes(&mut random16);
        let nonce = random(9);
        let timestamp = self.now().to_string();
        let request = push::component_notify(
            &config.token,
            &crypt,
            &timestamp,
            &nonce,
            &random16,
            &notify.to_xml(),
        );
        let sent = crate::pusher::http_client()
            .post(format!("{url}?{}", request.query))
            .header("Content-Type", "text/xml")
            .body(request.body)
            .timeout(Duration::from_secs(5))
            .send()
            .await;
        Some(match sent {
            Ok(response) => NotifyOutcome {
                status: Some(response.status().as_u16()),
                body: response.text().await.unwrap_or_default(),
            },
            Err(err) => NotifyOutcome {
                status: None,
                body: err.to_string(),
            },
        })
    }
}
