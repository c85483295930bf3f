//! Where the credential center keeps its tokens: [`redb`] in the embedded database
//! (one instance), [`redis`] in Redis (several instances, with a fenced refresh lease).

pub mod redb;
pub mod redis;
