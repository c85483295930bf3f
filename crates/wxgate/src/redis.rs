//! Redis, for running several instances: the bounded link ([`link`]) and the shared
//! memory of answered pushes ([`seen`]); [`RedisError`] tells an outage (no answer in
//! time, no connection) from a refusal. The credential store over Redis is in
//! `crate::credentials::redis`, the delivery queue in `crate::inbox::redis`.

mod error;
pub mod link;
pub mod seen;

pub use error::RedisError;
pub use link::{bounded, bounded_by, persistence_warning, shown_url, RedisLink, REDIS_DEADLINE};
pub use seen::{SharedSeen, SEEN_TTL_S};
