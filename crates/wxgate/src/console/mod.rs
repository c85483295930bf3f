//! The web console's state (served at `/console` by [`crate::http::console`]): the
//! ring of recent callbacks, the signed-in sessions, the count of wrong admin tokens
//! and the configuration summary. It holds no secret but the admin token's check,
//! which stays in [`crate::app::AppState`].

pub mod ring;
pub mod session;
pub mod summary;

use crate::config::Config;

/// Everything the console keeps.
#[derive(Debug)]
pub struct Console {
    /// The recent callbacks.
    pub recent: ring::Recent,
    /// The signed-in sessions.
    pub sessions: session::Sessions,
    /// Wrong admin tokens per peer.
    pub wrong_tokens: session::WrongTokens,
    /// Whether `admin_token` is in the config: else the console answers loopback only
    /// (`admin_token` changes only with a restart).
    pub token_configured: bool,
}

impl Console {
    /// The console of `config`.
    pub fn new(config: &Config) -> Self {
        Console {
            recent: ring::Recent::default(),
            sessions: session::Sessions::default(),
            wrong_tokens: session::WrongTokens::default(),
            token_configured: config.admin_token.is_some(),
        }
    }
}
