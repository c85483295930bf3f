//! One push, from its admitted query and its body to the answer. The HTTP handler and
//! the tests run these same steps:
//!
//! ```text
//! open (msg_signature, decrypt, parse) ─▶ decide (dedup, rules)
//!   ├ a reply or `success` ─▶ remembered across instances (Redis), when shared
//!   ├ a reply the account shows only through the customer-service API ─▶ the inbox,
//!   │   then sent there
//!   └ no rule matched, the account forwards ─▶ the inbox, then the service's reply
//! ─▶ seal (encrypted with the key that opened the push, in its format)
//! ```
//!
//! What comes before (the account, the query, `signature`, the body's size and time)
//! is the HTTP layer's; so is turning a [`PushError`] into a status.

use std::sync::Arc;

use rand::Rng;
use wxgate_proto::Message;

use crate::forward::{ForwardError, Forwarded, Forwarder};
use crate::gateway::account::{Account, Admitted, Answer, CallbackQuery, Decided, Opened, Refusal};
use crate::metrics::Outcome;
use crate::redis::SharedSeen;

/// What a push was answered, and the message (for the log line).
#[derive(Debug)]
pub struct Handled {
    /// The answer to send.
    pub answer: Answer,
    /// How it ended (ok, duplicate).
    pub outcome: Outcome,
    /// The message.
    pub message: Message,
}

/// Why a push got no answer but a refusal.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// A check failed before the message was trusted: a 4xx with the refusal's answer.
    #[error("{}", .0.reason())]
    Refused(Refusal),
    /// The message is for forwarding but could not be stored: not acknowledged, so
    /// WeChat retries it and nothing is lost.
    #[error("cannot store the message in the inbox: {0}; answered 503 so WeChat retries")]
    Unstored(#[source] ForwardError),
}

impl From<Refusal> for PushError {
    fn from(refusal: Refusal) -> Self {
        PushError::Refused(refusal)
    }
}

/// The parts of the server one push may need beyond its account.
#[derive(Debug, Clone, Copy, Default)]
pub struct Pipeline<'a> {
    /// The memory of answered pushes shared with other instances (Redis).
    pub shared: Option<&'a SharedSeen>,
    /// The forwarder, when an account forwards.
    pub forwarder: Option<&'a Arc<Forwarder>>,
}

impl Pipeline<'_> {
    /// Runs a push through every step. `rng` is called once, after the last wait, for
    /// the nonce and the random bytes of an encrypted answer.
    ///
    /// # Errors
    /// [`PushError::Refused`] for a check that fails, [`PushError::Unstored`] when a
    /// message for forwarding cannot be stored.
    pub async fn handle<R: Rng>(
        &self,
        account: &Account,
        admitted: Admitted,
        query: &CallbackQuery,
        body: &str,
        now: i64,
        rng: impl FnOnce() -> R,
    ) -> Result<Handled, PushError> {
        let opened = account.open_admitted(admitted, query, body)?;
        if let Some(note) = account.format_note(opened.format, now) {
            tracing::warn!(account = %account.config.name, "{note}");
        }
        let (plain, outcome) = self.decide(account, &opened, now).await?;
        let answer = account.seal(
            plain.as_deref(),
            opened.crypt,
            opened.format,
            now,
            &mut rng(),
        );
        Ok(Handled {
            answer,
            outcome,
            message: opened.message,
        })
    }

    /// The plain answer (`None`: `success`) and the outcome.
    async fn decide(
        &self,
        account: &Account,
        opened: &Opened<'_>,
        now: i64,
    ) -> Result<(Option<String>, Outcome), PushError> {
        let name = account.config.name.as_str();
        let shared = self.shared.filter(|_| account.config.dedup);
        let key = || opened.message.dedup_key();
        Ok(match account.decide(&opened.message, opened.format, now) {
            Decided::Answer { plain, outcome } => {
                let plain = plain.as_deref().map(str::to_owned);
                match shared {
                    Some(shared) if outcome == Outcome::Ok => {
                        shared.answer_once(name, &key(), plain).await
                    }
                    _ => (plain, outcome),
                }
            }
            // Stored with the message before WeChat is answered, so neither a restart
            // nor a WeChat retry loses or repeats it; the inbox recognises the retries.
            Decided::CustomerService(reply) => match self.forwarder {
                Some(forwarder) => {
                    let new = forwarder
                        .reply_through_api(name, &opened.message, &reply, now)
                        .await
                        .map_err(PushError::Unstored)?;
                    let outcome = if new { Outcome::Ok } else { Outcome::Duplicate };
                    (None, outcome)
                }
                None => {
                    tracing::error!(
                        account = name,
                        "a rule's {} reply needs the customer-service API, but no inbox is open to keep it",
                        reply.msg_type()
                    );
                    (None, Outcome::Ok)
                }
            },
            // The inbox recognises WeChat's retries itself (in Redis across instances),
            // so nothing is claimed before the message is stored: a request cancelled
            // in between must not turn the retry into a `success` for a lost message.
            Decided::Forward => self.forward(name, opened, now).await?,
        })
    }

    /// Commits a message to the inbox and waits for the service's reply within the
    /// account's timeout; returns the plain reply in the push's format (or `None` for
    /// `success`).
    async fn forward(
        &self,
        name: &str,
        opened: &Opened<'_>,
        now: i64,
    ) -> Result<(Option<String>, Outcome), PushError> {
        let (message, format) = (&opened.message, opened.format);
        let Some(forwarder) = self.forwarder else {
            return Err(PushError::Unstored(ForwardError::NotOpen));
        };
        let render =
            |reply: wxgate_proto::reply::Reply, at: i64| reply.render_for_in(format, message, at);
        match forwarder
            .forward(name, message, now)
            .await
            .map_err(PushError::Unstored)?
        {
            Forwarded::Duplicate(record) => {
                // A retry: the reply given the first time, if it was passive; never a
                // second delivery.
                let reply = match &record.reply_outcome {
                    Some(outcome) if outcome == "passive" => crate::forward::stored_reply(&record),
                    _ => None,
                };
                Ok((reply.map(|r| render(r, now)), Outcome::Duplicate))
            }
            Forwarded::New(reply) => Ok((
                reply.map(|r| render(r, wxgate_client::clock::now())),
                Outcome::Ok,
            )),
        }
    }
}

/// The pipeline with nothing but the account (no Redis, no forwarder), run to the end on a runtime of its own: what the protocol tests call.
#[cfg(test)]
pub(crate) trait RulesOnly {
    /// Runs a push through [`Pipeline::handle`] with [`Account::admit`] first.
    fn handle_message(
        &self,
        query: &CallbackQuery,
        body: &str,
        now: i64,
        rng: &mut rand::rngs::StdRng,
    ) -> Result<Handled, Refusal>;
}

#[cfg(test)]
impl RulesOnly for Account {
    fn handle_message(
        &self,
        query: &CallbackQuery,
        body: &str,
        now: i64,
        rng: &mut rand::rngs::StdRng,
    ) -> Result<Handled, Refusal> {
        let admitted = self.admit(query, now)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime");
        let handled =
            runtime.block_on(
                Pipeline::default().handle(self, admitted, query, body, now, || {
                    <rand::rngs::StdRng as rand::SeedableRng>::from_rng(rng)
                }),
            );
        handled.map_err(|error| match error {
            PushError::Refused(refusal) => refusal,
            PushError::Unstored(reason) => panic!("rules only, yet unstored: {reason}"),
        })
    }
}
