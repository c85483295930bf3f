//! The WeChat API client and the credential center.
//!
//! [`Client`] makes typed calls to `api_base` (the real API or the emulator) and turns
//! every non-zero `errcode` into an [`Error::Api`] with a hint; [`WeComClient`] does the
//! same for WeCom's `qyapi_base` (`gettoken`, `message/send`). [`CredentialCenter`]
//! holds every account's access_token and jsapi_ticket: lock-free reads, single-flight
//! refresh ahead of expiry, compare-and-expire on rejection, backoff, quota counting,
//! and pluggable storage ([`CredentialStore`]).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
pub mod clock;
pub mod component;
pub mod credential;
mod error;
pub mod tls;
pub mod wecom;

pub use api::{Client, CustomMessage, Fetched, OAuthToken, QrTicket, Scene, DEFAULT_API_BASE};
pub use component::AuthorizerTokens;
pub use credential::{
    AccountSecrets, CenterConfig, CenterStats, Credential, CredentialCenter, CredentialKind,
    CredentialStore, Fence, MemoryStore, StoreError, TokenEndpoint, TokenSource,
};
pub use error::{hint, redact_url, Error, SECRET_PARAMS};
pub use tls::{http_client, http_client_builder};
pub use wecom::{WeComClient, DEFAULT_QYAPI_BASE};
