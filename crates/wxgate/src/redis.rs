//! Redis, for running several instances: the bounded link ([`link`]) and the shared
//! memory of answered pushes ([`seen`]). The credential store over Redis is in
//! `crate::credentials::redis`, the delivery queue in `crate::inbox::redis`.

pub mod link;
pub mod seen;

pub use link::{bounded, bounded_by, persistence_warning, shown_url, RedisLink, REDIS_DEADLINE};
pub use seen::{SharedSeen, SEEN_TTL_S};
