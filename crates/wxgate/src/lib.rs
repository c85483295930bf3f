//! The `wxgate` binary's library. `main.rs` only parses arguments and maps errors to
//! exit codes; integration tests build the same app in-process from here.
//!
//! One folder per capability; each imports only those listed after it:
//!
//! * [`cli`]: the subcommands, and [`cli::probe`] that `sim` and `doctor` share.
//! * [`http`]: the routes (callbacks, admin API, OAuth, health, metrics) and the
//!   connection layer.
//! * [`app`]: the composition root, [`app::AppState`].
//! * [`pipeline`]: one push from its body to its answer (the handler's and the tests').
//! * [`links`]: the jumps into a mini-program behind `/go/{account}/{link}`.
//! * [`forward`]: delivery of messages to the owner's service.
//! * [`inbox`]: the durable record of forwarded messages (redb, or a Redis queue).
//! * [`customer_service`]: replies sent through WeChat's customer-service API.
//! * [`gateway`]: one callback's protocol: verify, open, rules, dedup, seal.
//! * [`oauth`]: OAuth states, identity tokens and the redirect allow-list.
//! * [`credentials`]: the credential center's stores (redb, Redis).
//! * [`redis`]: the bounded Redis link and the shared memory of answered pushes.
//! * [`storage`]: the embedded redb database and private files.
//! * [`config`]: the configuration file, read and checked.
//! * [`rules`], [`metrics`], [`text`]: what a rule matches and replies, the counters,
//!   text shown to people.
#![forbid(unsafe_code)]

pub mod app;
pub mod cli;
pub mod component;
pub mod config;
pub mod console;
pub mod credentials;
pub mod customer_service;
pub mod forward;
pub mod gateway;
pub mod http;
pub mod inbox;
pub mod links;
pub mod metrics;
pub mod oauth;
pub mod pipeline;
pub mod probe;
pub mod redis;
pub mod rules;
pub mod storage;
pub mod text;
pub mod tls;
