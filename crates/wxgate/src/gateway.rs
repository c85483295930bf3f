//! The gateway: what wxgate does with one callback, per account and without I/O of its
//! own. [`account`] checks the signature, opens the body (plain, compat or safe mode,
//! XML or JSON), runs the rules and seals the answer; [`dedup`] remembers the answers
//! given, so WeChat's retries get the same one; [`log_limit`] bounds how often a
//! refusal is logged.

pub mod account;
pub mod dedup;
pub mod log_limit;
