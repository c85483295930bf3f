//! Replies that reach the user through the customer-service API, kept in the inbox
//! until they are sent: a rule's reply on a mini-program or mini-game (which shows no
//! passive reply but `transfer_customer_service`), and a service's reply that came
//! after the passive window or that the account cannot show passively.
//!
//! ```text
//! rule reply on a mini-program ─▶ inbox.accept (reply_due) ─▶ `success` to WeChat
//! service reply, too late      ─▶ record.reply_due           ─┘
//!                       attempt: customer-service API ─▶ sent: delivered (`late`, `customer_service`)
//!                                                     ├▶ can never be sent: dead, with the reason
//!                                                     └▶ otherwise: the next attempt, with backoff
//! ```
//! A reply is stored before WeChat is answered, so a restart sends it rather than
//! losing it; a failure is a pending or dead record, never a delivered one.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use wxgate_proto::reply::Reply;
use wxgate_proto::Message;

use super::error::ForwardError;
use super::wire::{message_json, reply_json, stored_reply};
use super::Forwarder;
use crate::customer_service::{self, SendError};
use crate::inbox::{Accepted, DeliveryState, Record};

/// WeChat's answers that no retry of the same call can mend: the 48-hour window has
/// closed or the user left (45015, 43004), the reply quota for this message is spent
/// (45047), the user is unknown to this account (40003; WeCom: 81013), the API is not
/// granted (48001).
const NEVER_MENDED: [i64; 6] = [45015, 43004, 45047, 40003, 81013, 48001];

/// What a customer-service send ended with.
enum Sent {
    /// Sent; the outcome recorded (`late`, `customer_service`).
    Done(&'static str),
    /// A retry cannot help; the reason.
    Never(String),
    /// It may succeed later.
    Again(SendError),
}

impl Forwarder {
    /// Stores a rule's reply for the customer-service API with its message, then sends
    /// it in a task of its own. Returns whether the message was new (`false`: a WeChat
    /// retry of a stored one, whose reply is not sent twice).
    ///
    /// # Errors
    /// A storage error: WeChat must not be acknowledged, so that it retries.
    pub async fn reply_through_api(
        self: &Arc<Self>,
        account: &str,
        message: &Message,
        reply: &Reply,
        now: i64,
    ) -> Result<bool, ForwardError> {
        let mut template =
            Record::new(0, account, &message.dedup_key(), message_json(message), now);
        template.service_reply = reply_json(reply);
        template.reply_due = true;
        let forwarder = Arc::clone(self);
        // Stored and started in a task of its own: a request WeChat abandons cannot
        // cancel the send of a stored reply.
        tokio::spawn(async move {
            // Held until the send is in `in_flight` (see `claim`).
            let _claim = forwarder
                .accepting
                .claim(&template.account, &template.dedup_key);
            let accepted = forwarder.inbox.accept(template).await?;
            Ok(match accepted {
                Accepted::Duplicate(_) => false,
                Accepted::New(record) => {
                    forwarder.start_due(record);
                    true
                }
            })
        })
        .await?
    }

    /// Starts the send of a new record's due reply, unless the worker has it already.
    fn start_due(self: &Arc<Self>, record: Record) {
        let fresh = self
            .in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(record.id);
        if fresh {
            tokio::spawn(Arc::clone(self).attempt_and_record(record, None));
        }
    }

    /// Sends the record's due reply and records how it went in `record`: delivered
    /// when sent; dead when it can never be sent; otherwise due again after a backoff.
    pub(super) async fn send_due(&self, record: &mut Record, now: i64) {
        let late = self.shows_passive(&record.account);
        match self.send_reply(record, late).await {
            Sent::Done(outcome) => {
                record.state = DeliveryState::Delivered;
                record.delivered_at.get_or_insert(now);
                record.reply_due = false;
                record.reply_outcome = Some(outcome.to_owned());
                record.last_error = None;
                self.stats.late_replies.fetch_add(1, Ordering::Relaxed);
            }
            Sent::Never(reason) => {
                self.stats.reply_failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(account = %record.account, delivery_id = record.id, "the reply cannot reach the user through the customer-service API: {reason}; the record is dead (`wxgate inbox retry {}` sends it again)", record.id);
                record.state = DeliveryState::Dead;
                record.last_error = Some(reason);
                self.stats.dead_letters.fetch_add(1, Ordering::Relaxed);
            }
            Sent::Again(error) => {
                self.stats.reply_failures.fetch_add(1, Ordering::Relaxed);
                // Not delivered while its reply is not (the service's delivery may
                // have marked it so a moment ago).
                record.state = DeliveryState::Pending;
                self.failed(record, &ForwardError::ReplyNotSent(error), now);
            }
        }
    }

    /// One send of the record's stored reply.
    async fn send_reply(&self, record: &Record, late: bool) -> Sent {
        let done = if late { "late" } else { "customer_service" };
        let Some(reply) = stored_reply(record) else {
            return Sent::Never("the stored reply is not one wxgate reads".to_owned());
        };
        let kind = (self.routes().kinds.get(&record.account).copied()).unwrap_or_default();
        let Some(message) = customer_service::message_for(kind, &reply) else {
            return Sent::Never(format!(
                "a {} reply cannot be sent through the customer-service API (text, image and news can)",
                reply.msg_type()
            ));
        };
        let openid = record.message["from_user_name"]
            .as_str()
            .unwrap_or_default();
        match customer_service::send(&self.center, &record.account, openid, &message).await {
            Ok(()) => Sent::Done(done),
            Err(SendError::NoAppSecret) => Sent::Never(SendError::NoAppSecret.to_string()),
            Err(SendError::Api(error)) if never_mended(&error) => {
                Sent::Never(format!("{error}; no retry mends this"))
            }
            Err(error) => Sent::Again(error),
        }
    }

    /// Whether the account's users see passive replies (so a reply through the API is
    /// a late one).
    pub(super) fn shows_passive(&self, account: &str) -> bool {
        let kind = (self.routes().kinds.get(account).copied()).unwrap_or_default();
        kind.shows_passive_replies()
    }
}

/// Whether WeChat's answer is one of [`NEVER_MENDED`].
fn never_mended(error: &wxgate_client::Error) -> bool {
    matches!(error, wxgate_client::Error::Api { errcode, .. } if NEVER_MENDED.contains(errcode))
}
