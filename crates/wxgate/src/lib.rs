//! The `wxgate` binary's library: configuration, the callback gateway and its HTTP
//! surface, and the command line. `main.rs` only parses arguments and maps errors to
//! exit codes; integration tests build the same app in-process from here.
#![forbid(unsafe_code)]

pub mod admin;
pub mod callback;
pub mod cli;
pub mod config;
pub mod customer_service;
pub mod dedup;
pub mod files;
pub mod forward;
pub mod health;
pub mod http;
pub mod inbox;
pub mod log_limit;
pub mod metrics;
pub mod oauth;
pub mod probe;
pub mod redis_inbox;
pub mod redis_store;
pub mod rules;
pub mod shared;
pub mod storage;
