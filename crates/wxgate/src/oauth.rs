//! OAuth2 web authorization (网页授权) done for the app:
//!
//! ```text
//! app ──▶ GET /oauth/{name}/authorize?redirect=APP_URL&scope=snsapi_base|snsapi_userinfo
//!     ◀── 302 WeChat authorize URL (redirect_uri = public_url/oauth/{name}/callback?to=APP_URL,
//!                                   state = expiry + nonce + HMAC, single use)
//! WeChat ─▶ GET /oauth/{name}/callback?to=APP_URL&code=…&state=…
//!     ◀── 302 APP_URL?wxgate_identity=TOKEN     (TOKEN: signed, expiring; see README)
//! ```
//!
//! This folder holds what the two routes (in `crate::http::oauth`) rely on. The
//! redirect target must be on the account's allow-list ([`redirect`]: parsed, never
//! compared as a string prefix). The redirect_uri is checked against the 网页授权域名
//! (host only) before WeChat sees it and is encoded once. Every callback checks the
//! state ([`token`]) before it redirects anywhere, and a state is accepted once until it
//! expires ([`memory`]). A code that arrives twice gets the first exchange's result
//! instead of WeChat's 40163.

pub mod memory;
pub mod redirect;
pub mod token;

pub use memory::{MemoryError, OAuthMemory};
pub use redirect::{AllowEntry, AllowEntryError, RedirectError};
pub use token::{sign_identity, sign_state, verify_identity, verify_state, StateError};
