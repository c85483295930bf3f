//! A third-party platform's `component_verify_ticket`: WeChat pushes one every 10
//! minutes (valid 12 hours) and `api_component_token` needs the latest. It lives in the
//! credential store (the embedded database, or Redis shared by the instances) under
//! [`AccountSecrets::ticket_key`](super::AccountSecrets::ticket_key), so every instance
//! fetches the component token with the ticket any of them received.
//!
//! * [`CredentialCenter::offer_verify_ticket`] keeps the latest ticket by WeChat's
//!   CreateTime: an older push (a replay, or one delayed past a newer one) never
//!   replaces a newer ticket, and the same push twice is not written twice.
//! * [`CredentialCenter::ask_for_ticket`] calls `api_start_push_ticket` when no valid
//!   ticket is stored, at most once per [`ASK_AGAIN_AFTER_S`] across the instances:
//!   under the store's lease for the `ticket_asked` key, which records the call.

use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret;

use super::center::AccountState;
use super::stats::Counters;
use super::{Credential, CredentialCenter, TokenSource};
use crate::api::Fetched;
use crate::Error;

/// How long a pushed ticket is valid (WeChat: 12 hours).
pub const TICKET_TTL_S: i64 = 12 * 3600;
/// How long after `api_start_push_ticket` no instance asks again (WeChat pushes
/// within seconds; its regular pushes come every 10 minutes).
pub const ASK_AGAIN_AFTER_S: i64 = 600;
const ASK_LEASE: Duration = Duration::from_secs(15);

/// What [`CredentialCenter::offer_verify_ticket`] did with a pushed ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketOffer {
    /// Stored: it is the latest.
    Stored,
    /// The stored ticket is this one already (WeChat repeated the push).
    Repeated,
    /// A newer ticket is stored: this one was kept out.
    Older,
}

/// What [`CredentialCenter::ask_for_ticket`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketAsk {
    /// A valid ticket is stored: nothing to ask.
    Held,
    /// This instance called `api_start_push_ticket`.
    Asked,
    /// An instance asked within [`ASK_AGAIN_AFTER_S`], or holds the lease to ask now.
    AskedElsewhere,
}

impl CredentialCenter {
    pub(super) fn component(&self, account: &str) -> Result<Arc<AccountState>, Error> {
        let state = self.account(account)?;
        match state.secrets.source {
            TokenSource::Component => Ok(state),
            _ => Err(Error::UnknownAccount(account.to_owned())),
        }
    }

    /// Stores a pushed `component_verify_ticket` made by WeChat at `create_time`,
    /// unless a newer one is stored. Returns once the write is done (durable in the
    /// embedded database).
    ///
    /// # Errors
    /// [`Error::UnknownAccount`] for an account that is not a third-party platform;
    /// [`Error::Store`] when the store cannot be read or written.
    pub async fn offer_verify_ticket(
        &self,
        account: &str,
        ticket: &str,
        create_time: i64,
    ) -> Result<TicketOffer, Error> {
        let state = self.component(account)?;
        let key = state.secrets.ticket_key();
        let stored = self.store.load(&key).await.map_err(Error::Store)?;
        if let Some(stored) = stored {
            if stored.value == ticket {
                return Ok(TicketOffer::Repeated);
            }
            if stored.fetched_at >= create_time {
                return Ok(TicketOffer::Older);
            }
        }
        let credential = Credential {
            value: ticket.to_owned(),
            expires_at: create_time + TICKET_TTL_S,
            fetched_at: create_time,
            refresh_token: None,
        };
        self.store
            .save(&key, &credential, None)
            .await
            .map_err(Error::Store)?;
        Ok(TicketOffer::Stored)
    }

    /// The stored ticket, while valid.
    ///
    /// # Errors
    /// [`Error::NoVerifyTicket`] when none is stored or it expired; [`Error::Store`].
    pub async fn verify_ticket(&self, account: &str) -> Result<Credential, Error> {
        let state = self.component(account)?;
        let stored = (self.store.load(&state.secrets.ticket_key()).await).map_err(Error::Store)?;
        match stored {
            Some(ticket) if ticket.is_valid(self.now()) => Ok(ticket),
            other => Err(Error::NoVerifyTicket {
                account: account.to_owned(),
                expired: other.is_some(),
            }),
        }
    }

    /// Asks WeChat to push a ticket now (`api_start_push_ticket`) when no valid one is
    /// stored and no instance asked within [`ASK_AGAIN_AFTER_S`].
    ///
    /// # Errors
    /// WeChat's refusal, or [`Error::Store`].
    pub async fn ask_for_ticket(&self, account: &str) -> Result<TicketAsk, Error> {
        match self.verify_ticket(account).await {
            Ok(_) => return Ok(TicketAsk::Held),
            Err(Error::NoVerifyTicket { .. }) => {}
            Err(other) => return Err(other),
        }
        let state = self.component(account)?;
        let key = state.secrets.ticket_asked_key();
        let Some(fence) = self
            .store
            .try_lock(&key, ASK_LEASE)
            .await
            .map_err(Error::Store)?
        else {
            return Ok(TicketAsk::AskedElsewhere);
        };
        let result = self.ask_under_lease(account, &state, &key, fence).await;
        let _ = self.store.unlock(&key, fence).await;
        result
    }

    async fn ask_under_lease(
        &self,
        account: &str,
        state: &AccountState,
        key: &str,
        fence: super::Fence,
    ) -> Result<TicketAsk, Error> {
        let now = self.now();
        // Read again under the lease: another instance may have asked, or a ticket
        // may have come, since the first read.
        let asked = self.store.load(key).await.map_err(Error::Store)?;
        if asked.is_some_and(|a| a.is_valid(now)) {
            return Ok(TicketAsk::AskedElsewhere);
        }
        if self.verify_ticket(account).await.is_ok() {
            return Ok(TicketAsk::Held);
        }
        let secrets = &state.secrets;
        self.client
            .start_push_ticket(&secrets.app_id, secrets.secret.expose_secret())
            .await?;
        Counters::bump(&self.counters.ticket_asks);
        tracing::info!(
            account,
            "no valid component_verify_ticket is stored: asked WeChat to push one (api_start_push_ticket)"
        );
        let marker = Credential {
            value: "asked".to_owned(),
            expires_at: now + ASK_AGAIN_AFTER_S,
            fetched_at: now,
            refresh_token: None,
        };
        if let Err(err) = self.store.save(key, &marker, Some(fence)).await {
            tracing::warn!(account, "could not record the ticket request: {err}");
        }
        Ok(TicketAsk::Asked)
    }

    /// A new `component_access_token`, with the stored ticket.
    pub(super) async fn fetch_component_token(
        &self,
        state: &AccountState,
    ) -> Result<Fetched, Error> {
        let ticket = self.verify_ticket(&state.secrets.name).await?;
        let secrets = &state.secrets;
        self.client
            .component_token(
                &secrets.app_id,
                secrets.secret.expose_secret(),
                &ticket.value,
            )
            .await
    }
}
