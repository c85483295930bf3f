//! A message in the inbox and where its delivery stands, as stored (JSON in redb and
//! in Redis alike).

use serde::{Deserialize, Serialize};

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    /// Not yet delivered; retried with backoff.
    Pending,
    /// The service answered 2xx.
    Delivered,
    /// Retried until `max_age_s` without success.
    Dead,
}

impl DeliveryState {
    /// Parses `pending`, `delivered` or `dead`.
    pub fn parse(text: &str) -> Option<DeliveryState> {
        match text {
            "pending" => Some(DeliveryState::Pending),
            "delivered" => Some(DeliveryState::Delivered),
            "dead" => Some(DeliveryState::Dead),
            _ => None,
        }
    }

    /// `pending`, `delivered` or `dead`, as [`DeliveryState::parse`] reads it.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Dead => "dead",
        }
    }
}

/// One accepted message and its delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The delivery id (also sent to the service).
    pub id: u64,
    /// Account name.
    pub account: String,
    /// Unix seconds when WeChat's push was accepted.
    pub received_at: i64,
    /// The key WeChat's retries share.
    pub dedup_key: String,
    /// The decrypted message as JSON (snake_case fields, string values).
    pub message: serde_json::Value,
    /// Delivery state.
    pub state: DeliveryState,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// Next attempt, Unix seconds (pending only).
    pub next_attempt_at: i64,
    /// The last failure.
    pub last_error: Option<String>,
    /// When the service answered 2xx.
    pub delivered_at: Option<i64>,
    /// The service's `reply`, when it gave one.
    pub service_reply: Option<serde_json::Value>,
    /// How that reply reached the user: `passive`, `late`, `customer_service`, or why
    /// it did not.
    pub reply_outcome: Option<String>,
    /// The reply in `service_reply` has yet to reach the user through the
    /// customer-service API (a rule's reply on a mini-program, or a service's reply
    /// that came too late to be passive). While it is set, an attempt sends that reply
    /// and never posts the message to the service again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reply_due: bool,
}

impl Record {
    /// A new pending record, due now. As the template of
    /// [`Inbox::accept`](crate::inbox::Inbox::accept), its `id` is ignored: the inbox
    /// numbers the record.
    pub fn new(
        id: u64,
        account: &str,
        dedup_key: &str,
        message: serde_json::Value,
        received_at: i64,
    ) -> Record {
        Record {
            id,
            account: account.to_owned(),
            received_at,
            dedup_key: dedup_key.to_owned(),
            message,
            state: DeliveryState::Pending,
            attempts: 0,
            next_attempt_at: received_at,
            last_error: None,
            delivered_at: None,
            service_reply: None,
            reply_outcome: None,
            reply_due: false,
        }
    }
}

/// What [`Inbox::accept`](crate::inbox::Inbox::accept) found.
#[derive(Debug, Clone)]
pub enum Accepted {
    /// A new message, committed as pending.
    New(Record),
    /// A retry of a message already in the inbox.
    Duplicate(Record),
}
