//! The WeChat callback protocol of Official Accounts, mini-programs and mini-games,
//! without I/O.
//!
//! This crate owns what WeChat's callback protocol *is*: the SHA1 signatures
//! ([`signature`]), safe-mode encryption ([`crypto`], [`envelope`]), the inbound message
//! and event model ([`message`]) in XML or JSON ([`format`], [`json`]), passive replies
//! ([`reply`]), the admin console's format rules ([`console`]) and the URLs WeChat wants
//! built exactly ([`urls`]).
//!
//! It never does I/O: no sockets, no files, no async, no clock and no randomness. A
//! timestamp, a nonce or the 16 random bytes of an encryption are always arguments, so
//! every function here is deterministic and testable from vectors. The `wxgate` binary
//! and the other crates supply them.
//!
//! ```
//! use wxgate_proto::signature::url_signature;
//! let sig = url_signature("Zeta9Token", "1712345678", "880417233");
//! assert!(sig.matches_hex("a79da134419b0cf099b71f4dc6280e376e86e615"));
//! ```
#![forbid(unsafe_code)]
#![deny(unused_must_use)]
#![warn(missing_docs)]

pub mod component;
pub mod console;
pub mod crypto;
pub mod envelope;
mod error;
pub mod format;
pub mod json;
pub mod limits;
pub mod message;
pub mod push;
pub mod reply;
pub mod signature;
pub mod urls;
pub mod xml;

pub use crypto::{EncodingAesKey, MsgCrypt};
pub use error::Error;
pub use format::Format;
pub use message::Message;
pub use reply::Reply;
