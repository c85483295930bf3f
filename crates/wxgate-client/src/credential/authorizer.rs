//! Third-party platforms' authorizers: the merchants' accounts that authorized a
//! platform. The center learns them at run time, unlike configured accounts: from an
//! `authorized` or `updateauthorized` notify ([`CredentialCenter::authorize`]), or from
//! the store after a restart or on another instance ([`CredentialCenter::hold_authorizer`]).
//!
//! An authorizer's access token is refreshed like every other credential (single
//! flight, refresh ahead, compare-and-expire, the store's lease), with two differences:
//! * the refresh presents the authorizer's refresh token, and whatever refresh token
//!   WeChat returns (the same or a new one) is stored in the same write as the access
//!   token (`Credential::refresh_token`);
//! * no refresh runs without the lease of a shared store: when another instance holds
//!   it past the wait, or the store cannot grant it, the refresh is refused
//!   ([`crate::Error::RefreshHeldElsewhere`], [`crate::Error::SharedStoreUnavailable`]).
//!
//! Its name in the center is `{platform}/{authorizer AppID}`.

use std::sync::Arc;

use secrecy::SecretString;

use super::center::{AccountState, Platform};
use super::{AccountSecrets, Credential, CredentialCenter, CredentialKind, TokenSource};
use crate::component::AuthorizerTokens;
use crate::Error;

/// The center's name of an authorizer of the platform `platform` (its name in the
/// center): `{platform}/{authorizer_app_id}`.
pub fn authorizer_name(platform: &str, authorizer_app_id: &str) -> String {
    format!("{platform}/{authorizer_app_id}")
}

impl CredentialCenter {
    /// The authorizer of `platform` with this AppID, held from now on (its credentials
    /// are read from the store on first use).
    ///
    /// # Errors
    /// [`Error::UnknownAccount`] when `platform` is not a third-party platform, or the
    /// AppID is not one (`wx` + 16 hex digits).
    pub fn hold_authorizer(&self, platform: &str, app_id: &str) -> Result<String, Error> {
        let component = self.component(platform)?;
        if !crate_looks_like_app_id(app_id) {
            return Err(Error::UnknownAccount(authorizer_name(platform, app_id)));
        }
        let name = authorizer_name(platform, app_id);
        let mut held = self.authorizers.write().unwrap_or_else(|e| e.into_inner());
        held.entry(name.clone()).or_insert_with(|| {
            let secrets = AccountSecrets {
                name: name.clone(),
                app_id: app_id.to_owned(),
                secret: SecretString::from(String::new()),
                source: TokenSource::Authorizer,
            };
            let platform = Platform {
                name: platform.to_owned(),
                app_id: component.secrets.app_id.clone(),
            };
            Arc::new(AccountState::new(secrets, Some(platform)))
        });
        Ok(name)
    }

    /// The authorizers of `platform` this center holds, by AppID.
    pub fn authorizers(&self, platform: &str) -> Vec<String> {
        let prefix = format!("{platform}/");
        let held = self.authorizers.read().unwrap_or_else(|e| e.into_inner());
        let mut ids: Vec<String> = (held.keys())
            .filter_map(|name| name.strip_prefix(&prefix).map(str::to_owned))
            .collect();
        ids.sort();
        ids
    }

    /// Exchanges an authorization code (`api_query_auth`, with the platform's token)
    /// and stores the authorizer's tokens, the refresh token with the access token in
    /// one write. Returns the authorizer's AppID once stored. A new authorization
    /// replaces the refresh token of the previous one.
    ///
    /// # Errors
    /// WeChat's refusal, the platform's token's, or [`Error::Store`]: the code is then
    /// not to be trusted as exchanged (WeChat pushes the notify again).
    pub async fn authorize(&self, platform: &str, code: &str) -> Result<String, Error> {
        let component = self.component(platform)?;
        let component_app_id = component.secrets.app_id.clone();
        let tokens = self
            .with_access_token(platform, |token| {
                let (client, app_id) = (&self.client, &component_app_id);
                async move { client.query_auth(&token, app_id, code).await }
            })
            .await?;
        let name = self.hold_authorizer(platform, &tokens.authorizer_app_id)?;
        let state = self.account(&name)?;
        let now = self.now();
        let credential = Credential {
            value: tokens.access.value.clone(),
            expires_at: now + tokens.access.expires_in,
            fetched_at: now,
            refresh_token: Some(tokens.refresh_token.clone()),
        };
        let key = state.store_key(CredentialKind::AccessToken);
        // Under the slot's gate: no refresh of this authorizer runs while it is stored.
        let _gate = state.slot(CredentialKind::AccessToken).gate.lock().await;
        self.store
            .save(&key, &credential, None)
            .await
            .map_err(Error::Store)?;
        *state
            .refresh_token
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some((tokens.refresh_token, now));
        state
            .slot(CredentialKind::AccessToken)
            .current
            .store(Some(Arc::new(credential)));
        Ok(tokens.authorizer_app_id)
    }

    /// Forgets an authorizer that withdrew its authorization: its credentials are
    /// replaced in the store by an expired entry without a refresh token, and it is no
    /// longer held.
    ///
    /// # Errors
    /// [`Error::Store`].
    pub async fn release_authorizer(&self, platform: &str, app_id: &str) -> Result<(), Error> {
        let name = self.hold_authorizer(platform, app_id)?;
        let state = self.account(&name)?;
        let _gate = state.slot(CredentialKind::AccessToken).gate.lock().await;
        let tombstone = Credential {
            value: String::new(),
            expires_at: 0,
            fetched_at: self.now(),
            refresh_token: None,
        };
        for kind in [CredentialKind::AccessToken, CredentialKind::JsapiTicket] {
            let key = state.store_key(kind);
            self.store
                .save(&key, &tombstone, None)
                .await
                .map_err(Error::Store)?;
            state.slot(kind).current.store(None);
        }
        *state
            .refresh_token
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = None;
        (self.authorizers.write().unwrap_or_else(|e| e.into_inner())).remove(&name);
        Ok(())
    }

    /// A new authorizer access token (`api_authorizer_token`) with the newest refresh
    /// token known: the store's (another instance, or this one before a restart) or
    /// the one in memory (a store write that failed), whichever was fetched later.
    pub(super) async fn fetch_authorizer_token(
        &self,
        state: &AccountState,
    ) -> Result<AuthorizerTokens, Error> {
        let platform = state
            .platform
            .clone()
            .expect("an authorizer has a platform");
        let key = state.store_key(CredentialKind::AccessToken);
        let stored = self.store.load(&key).await.map_err(Error::Store)?;
        let stored = stored.and_then(|c| c.refresh_token.map(|t| (t, c.fetched_at)));
        let kept = state
            .refresh_token
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let newest = match (stored, kept) {
            (Some(s), Some(k)) => Some(if k.1 > s.1 { k } else { s }),
            (s, k) => s.or(k),
        };
        let Some((refresh_token, _)) = newest else {
            return Err(Error::NotAuthorized {
                account: state.secrets.name.clone(),
            });
        };
        let authorizer = state.secrets.app_id.clone();
        self.with_access_token(&platform.name, |token| {
            let (client, platform, authorizer, refresh) =
                (&self.client, &platform.app_id, &authorizer, &refresh_token);
            async move {
                client
                    .authorizer_token(&token, platform, authorizer, refresh)
                    .await
            }
        })
        .await
    }
}

/// `wx` and 16 lowercase hex digits.
fn crate_looks_like_app_id(app_id: &str) -> bool {
    app_id.len() == 18
        && app_id.starts_with("wx")
        && app_id[2..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}
