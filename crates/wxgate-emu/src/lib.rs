//! An emulator of the WeChat API, for tests and local development.
//!
//! It serves the endpoints wxgate calls, the way WeChat behaves: tokens expire; a new
//! `/cgi-bin/token` call invalidates the previous token (40001 for its holder), while
//! `/cgi-bin/stable_token` returns the current one unless `force_refresh`; a wrong
//! secret gets 40125, an unknown AppID 40013; daily quotas give 45009; an optional IP
//! whitelist gives 40164; OAuth codes are single use (40163) and live 5 minutes; the
//! customer-service window is 48 hours (45015). WeCom applications ([`WeComApp`]) get
//! `/cgi-bin/gettoken` (40013 an unknown CorpID, 40001 a wrong Secret) and
//! `/cgi-bin/message/send` (42001 expired, 40014 invalid or revoked, 60020 a caller
//! outside the trusted IPs, 81013 a user outside the visible range). Every call is
//! recorded so tests can assert on them. [`pusher`] plays WeChat's side of the
//! callback, and WeCom's.
//!
//! Its parts: `config` (apps and behaviour), `state` (what the emulator remembers and
//! records), `routes` (the router and the answer helpers) with `routes::tokens`
//! (access tokens and tickets), `routes::oauth` (web authorization) and `routes::calls`
//! (the calls that take an access_token), `routes::links` (schemes, URL Links and
//! mini-program codes, with the daily quota), `routes::wecom` (WeCom's token and
//! application messages), `routes::component` and `component` (third-party
//! platforms: their routes, and their tickets and authorizations), and [`pusher`].
//!
//! ```no_run
//! # async fn demo() {
//! use wxgate_emu::{Emulator, EmulatorConfig, App};
//! let emu = Emulator::new(EmulatorConfig::with_app(App::new("wx1234567890abcdef", "0123456789abcdef0123456789abcdef")));
//! let (addr, _task) = emu.spawn("127.0.0.1:0".parse().unwrap()).await.unwrap();
//! println!("api_base = http://{addr}");
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

mod component;
mod config;
mod ids;
pub mod pusher;
mod routes;
mod state;

pub use component::NotifyOutcome;
pub use config::{App, Component, EmulatorConfig, WeComApp};
pub use routes::links::GeneratedLink;
use state::Inner;
pub use state::{Call, WeComSent};

/// The emulator: cheap to clone, shared with its server.
#[derive(Debug, Clone)]
pub struct Emulator {
    config: Arc<EmulatorConfig>,
    inner: Arc<Mutex<Inner>>,
}

pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Emulator {
    /// An emulator with this behaviour.
    pub fn new(config: EmulatorConfig) -> Emulator {
        Emulator {
            config: Arc::new(config),
            inner: Arc::new(Mutex::new(Inner::default())),
        }
    }

    /// The emulator's clock: real time plus the offset set by [`Emulator::advance`].
    pub fn now(&self) -> i64 {
        unix_now() + self.lock().now_offset_s
    }

    /// Moves the emulator's clock forward (tokens and codes expire).
    pub fn advance(&self, seconds: i64) {
        self.lock().now_offset_s += seconds;
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// How many calls reached `path`.
    pub fn count(&self, path: &str) -> usize {
        self.lock().calls.iter().filter(|c| c.path == path).count()
    }

    /// Forgets the recorded calls.
    pub fn clear_calls(&self) {
        self.lock().calls.clear();
    }

    /// Invalidates every token of `app_id`, as when another system force-refreshes it.
    pub fn refresh_elsewhere(&self, app_id: &str) {
        let mut inner = self.lock();
        let stale: Vec<String> = inner
            .tokens
            .iter()
            .filter(|(_, t)| t.app_id == app_id)
            .map(|(k, _)| k.clone())
            .collect();
        for token in stale {
            inner.tokens.remove(&token);
            inner.invalid_tokens.insert(token);
        }
        inner.stable.remove(app_id);
        inner.classic.remove(app_id);
    }

    /// Revokes every token of a WeCom application (WeCom may revoke one early): 40014.
    pub fn revoke_wecom_tokens(&self, corp_id: &str, agent_id: u64) {
        let mut inner = self.lock();
        let revoked: Vec<String> = (inner.wecom_tokens.iter())
            .filter(|(_, t)| t.corp_id == corp_id && t.agent_id == agent_id)
            .map(|(k, _)| k.clone())
            .collect();
        for token in revoked {
            inner.wecom_tokens.remove(&token);
        }
        inner.wecom_current.remove(&(corp_id.to_owned(), agent_id));
    }

    /// The messages WeCom's `message/send` accepted so far.
    pub fn wecom_sent(&self) -> Vec<WeComSent> {
        self.lock().wecom_sent.clone()
    }

    /// Records that `openid` interacted now (opens the 48-hour customer-service window).
    pub fn record_interaction(&self, openid: &str) {
        let now = self.now();
        self.lock().interactions.insert(openid.to_owned(), now);
    }

    /// Serves the emulator on `addr` (port 0 picks one) until the task is dropped.
    ///
    /// # Errors
    /// Bind errors.
    pub async fn spawn(
        &self,
        addr: SocketAddr,
    ) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let router = self.router();
        let task = tokio::spawn(async move {
            let _ = axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await;
        });
        Ok((local, task))
    }
}
