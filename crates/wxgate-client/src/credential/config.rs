//! What the credential center is given: the accounts' secrets and its settings.

use std::time::Duration;

use secrecy::SecretString;

/// How access tokens are fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenEndpoint {
    /// `/cgi-bin/stable_token` (default): does not invalidate other holders' tokens.
    Stable,
    /// `/cgi-bin/token`: every fetch invalidates the previous token.
    Classic,
}

/// One account's API credentials.
#[derive(Debug, Clone)]
pub struct AccountSecrets {
    /// The name used by callers.
    pub name: String,
    /// AppID.
    pub app_id: String,
    /// AppSecret (never logged; `Debug` prints a placeholder).
    pub secret: SecretString,
}

/// Settings of the center.
#[derive(Debug, Clone)]
pub struct CenterConfig {
    /// How to fetch access tokens.
    pub endpoint: TokenEndpoint,
    /// Token fetches allowed per day; a warning is logged at 80 %.
    pub daily_quota: u32,
    /// How often the refresher looks for credentials due for refresh.
    pub refresh_tick: Duration,
}

impl Default for CenterConfig {
    fn default() -> Self {
        CenterConfig {
            endpoint: TokenEndpoint::Stable,
            daily_quota: 2000,
            refresh_tick: Duration::from_secs(1),
        }
    }
}
