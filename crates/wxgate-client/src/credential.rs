//! The credential center (中控服务器): one holder of every account's access_token and
//! jsapi_ticket.
//!
//! * Reads are lock-free (`ArcSwap`); a valid credential never waits on a refresh.
//! * Refresh is single-flight: one refresh in flight per account and credential, however
//!   many callers; waiting callers get its result.
//! * [`CredentialCenter::spawn_refresher`] refreshes ahead of expiry in the background
//!   (at min(300 s, a quarter of the lifetime) before it).
//! * A rejected token (40001/40014/42001) is expired only if it is still the current one
//!   (compare-and-expire), then the call is retried once. A rejection of a token that
//!   wxgate did not replace and that had not expired means another system is refreshing
//!   this AppID: it is logged and counted.
//! * Failed refreshes back off exponentially (1 s … 60 s). A fetched credential is used
//!   even when storing it fails. Fetches are counted per day against the quota.
//! * A WeCom application ([`TokenSource::WeCom`]) gets its token from `gettoken` on
//!   `qyapi_base`, with the same gate, refresh, backoff, quota and store; asking for
//!   its jsapi_ticket is [`crate::Error::NotForWeCom`].
//! * A third-party platform ([`TokenSource::Component`]) gets its
//!   `component_access_token` from `api_component_token` with the latest
//!   `component_verify_ticket` WeChat pushed (`ticket`: kept in the store, the latest
//!   by CreateTime; `api_start_push_ticket` when none is stored), with the same gate,
//!   refresh ahead, compare-and-expire, backoff, quota and store.
//! * Storage is behind [`CredentialStore`]: in memory here, redb and Redis elsewhere.
//!   Its `try_lock` returns a [`Fence`], so a distributed store can make one instance
//!   refresh while the others wait and then read the result.
//!
//! Its parts: `store` (the store trait, the lease's fence, the in-memory store),
//! `config` (accounts and settings), `center` (the center and its lookups), `refresh`
//! (the single-flight refresh, stage by stage), `stats` (counters and the daily quota),
//! `ticket` (a third-party platform's verify ticket).

mod authorizer;
mod center;
mod config;
mod refresh;
mod stats;
mod store;
mod ticket;

use serde::{Deserialize, Serialize};

pub use authorizer::authorizer_name;
pub use center::CredentialCenter;
pub use config::{AccountSecrets, CenterConfig, TokenEndpoint, TokenSource};
pub use stats::CenterStats;
pub use store::{CredentialStore, Fence, LocalLease, MemoryStore, StoreError, StoreFuture};
pub use ticket::{TicketAsk, TicketOffer, ASK_AGAIN_AFTER_S, TICKET_TTL_S};

/// Which credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CredentialKind {
    /// The global access_token.
    AccessToken,
    /// The JS-SDK jsapi_ticket.
    JsapiTicket,
}

impl CredentialKind {
    /// `access_token` or `jsapi_ticket`.
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::AccessToken => "access_token",
            CredentialKind::JsapiTicket => "jsapi_ticket",
        }
    }

    fn index(self) -> usize {
        match self {
            CredentialKind::AccessToken => 0,
            CredentialKind::JsapiTicket => 1,
        }
    }
}

/// A credential with its validity. Serialised by stores.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    /// The token or ticket.
    pub value: String,
    /// Unix seconds after which WeChat rejects it.
    pub expires_at: i64,
    /// Unix seconds when it was fetched.
    pub fetched_at: i64,
    /// An authorizer's `authorizer_refresh_token`, stored in the same write as the
    /// access token it came with (absent for every other credential).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("value", &"[REDACTED]")
            .field("expires_at", &self.expires_at)
            .field("fetched_at", &self.fetched_at)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[REDACTED]"),
            )
            .finish()
    }
}

impl Credential {
    /// Seconds before expiry at which it is refreshed: min(300, a quarter of its life).
    pub fn refresh_margin(&self) -> i64 {
        ((self.expires_at - self.fetched_at) / 4).clamp(0, 300)
    }

    /// Whether it can still be handed out at `now`.
    pub fn is_valid(&self, now: i64) -> bool {
        self.expires_at > now
    }

    /// Whether the refresher should replace it at `now`.
    pub fn is_due(&self, now: i64) -> bool {
        self.expires_at - now <= self.refresh_margin()
    }
}
