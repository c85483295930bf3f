//! One delivery attempt and what is recorded after it: the signed POST to the service,
//! its reply (passive, or through the customer-service API), or the next attempt
//! with backoff and jitter, or the dead letter.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::RngExt;
use secrecy::ExposeSecret;
use tokio::sync::oneshot;
use wxgate_proto::reply::Reply;

use super::error::ForwardError;
use super::wire::{parse_reply, reply_json, signature};
use super::Forwarder;
use crate::config::ForwardConfig;
use crate::inbox::{DeliveryState, Record};

/// What one delivery attempt ended with.
enum Attempt {
    Delivered(Option<Reply>),
    Failed(ForwardError),
}

/// Where the first attempt hands the reply to the waiting request, if it still waits.
pub(super) type Passive = Option<oneshot::Sender<Option<Reply>>>;

impl Forwarder {
    /// Attempts a delivery and stores its outcome, then lets go of it (`in_flight`).
    pub(super) async fn attempt_and_record(self: Arc<Self>, mut record: Record, passive: Passive) {
        let id = record.id;
        let stored = if record.reply_due {
            // The service has answered already: only its reply is left to send.
            if let Some(tx) = passive {
                let _ = tx.send(None);
            }
            record.attempts += 1;
            self.send_due(&mut record, wxgate_client::clock::now())
                .await;
            false
        } else {
            self.deliver(&mut record, passive).await
        };
        if !stored {
            if let Err(err) = self.inbox.update(&record).await {
                tracing::error!(
                    delivery_id = id,
                    "cannot record the delivery state: {err}; it will be attempted again"
                );
            }
        }
        self.in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }

    /// One delivery to the service and what follows it. Returns whether the record's
    /// final form is already stored.
    async fn deliver(&self, record: &mut Record, passive: Passive) -> bool {
        let outcome = self.attempt(record).await;
        let now = wxgate_client::clock::now();
        match outcome {
            Attempt::Delivered(reply) => self.delivered(record, reply, passive, now).await,
            Attempt::Failed(error) => {
                if let Some(tx) = passive {
                    let _ = tx.send(None);
                }
                self.failed(record, &error, now);
                false
            }
        }
    }

    /// Marks a record delivered and hands its reply on: passively to the waiting
    /// request, or through the customer-service API. Returns whether the record's
    /// final form is already stored.
    async fn delivered(
        &self,
        record: &mut Record,
        reply: Option<Reply>,
        passive: Passive,
        now: i64,
    ) -> bool {
        record.state = DeliveryState::Delivered;
        record.delivered_at = Some(now);
        record.last_error = None;
        self.stats.delivered.fetch_add(1, Ordering::Relaxed);
        let Some(reply) = reply else {
            if let Some(tx) = passive {
                let _ = tx.send(None);
            }
            return false;
        };
        if replied(record) {
            // Delivered again (`inbox retry`, or resumed after a restart) after the user
            // already had this message's reply: the user gets no second one.
            tracing::info!(account = %record.account, delivery_id = record.id, "delivered again; its reply was sent before ({}), so this one is not sent", record.reply_outcome.as_deref().unwrap_or_default());
            if let Some(tx) = passive {
                let _ = tx.send(None);
            }
            return false;
        }
        record.service_reply = reply_json(&reply);
        let mut stored = false;
        let undelivered = match passive {
            // A mini-program shows none but transfer_customer_service: `success` now,
            // the reply through the API.
            Some(tx) if !self.shows(&record.account, &reply) => {
                let _ = tx.send(None);
                Some(reply)
            }
            // The request has given up waiting (past `timeout_ms`): no passive reply
            // is recorded, not even for a moment, since the user never sees it.
            Some(tx) if tx.is_closed() => Some(reply),
            Some(tx) => {
                // Record the passive reply before handing it over, so a retry that
                // arrives right after our answer finds it.
                record.reply_outcome = Some("passive".to_owned());
                match self.inbox.update(record).await {
                    Ok(()) => stored = true,
                    Err(err) => tracing::error!(
                        delivery_id = record.id,
                        "cannot record the delivery state: {err}"
                    ),
                }
                tx.send(Some(reply)).err().flatten()
            }
            None => Some(reply),
        };
        if undelivered.is_some() {
            // The request had gone before the passive hand-over (if one was tried): the
            // reply was not shown. Stored with the record: until it is sent, the record
            // is not delivered.
            record.reply_outcome = None;
            record.reply_due = true;
            self.send_due(record, now).await;
            stored = false;
        }
        stored
    }

    /// Schedules the next attempt with exponential backoff and jitter, or dead-letters
    /// the record after `max_age_s`.
    pub(super) fn failed(&self, record: &mut Record, error: &ForwardError, now: i64) {
        let id = record.id;
        let (max_age, max_backoff) = self
            .routes()
            .config_of(&record.account)
            .map_or((86_400, 300), |c| {
                (c.max_age_s as i64, c.max_backoff_s as i64)
            });
        record.last_error = Some(error.to_string());
        if now - record.received_at >= max_age {
            record.state = DeliveryState::Dead;
            self.stats.dead_letters.fetch_add(1, Ordering::Relaxed);
            tracing::error!(account = %record.account, delivery_id = id, attempts = record.attempts, "dead-lettered after {max_age}s of failed deliveries: {error}; see `wxgate inbox list --state dead`, retry with `wxgate inbox retry {id}`");
        } else {
            let base = 1i64 << (record.attempts.saturating_sub(1)).min(8);
            let delay = (base as f64 * rand::rng().random_range(0.5..1.5)).ceil() as i64;
            record.next_attempt_at = now + delay.clamp(1, max_backoff);
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(account = %record.account, delivery_id = id, attempt = record.attempts, "delivery failed: {error}; next attempt in {}s", record.next_attempt_at - now);
        }
    }

    async fn attempt(&self, record: &mut Record) -> Attempt {
        let routes = self.routes();
        let Some(config) = routes.config_of(&record.account) else {
            return Attempt::Failed(ForwardError::NotForwarded(record.account.clone()));
        };
        record.attempts += 1;
        let mut body = serde_json::json!({
            "delivery_id": record.id.to_string(),
            "account": record.account,
            "attempt": record.attempts,
            "received_at": record.received_at,
            "message": record.message,
        });
        // An authorizer's message names its platform and the authorizer's AppID.
        if let Some(platform) = super::authorizer_platform(&record.account) {
            body["component"] = platform.trim_start_matches("open/").into();
            body["authorizer"] = record.account[platform.len() + 1..].into();
        }
        let body = body.to_string();
        // At most `max_in_flight` attempts hold a socket to the service; the rest wait.
        let _slot = match routes.slots_of(&record.account) {
            Some(slots) => slots.clone().acquire_owned().await.ok(),
            None => None,
        };
        let timestamp = wxgate_client::clock::now();
        let started = Instant::now();
        let limit = Duration::from_millis(config.attempt_timeout_ms);
        let answered =
            tokio::time::timeout(limit, self.send(config, record, body, timestamp)).await;
        let text = match answered {
            Ok(Ok(text)) => text,
            Ok(Err(failure)) => return Attempt::Failed(failure),
            Err(_) => return Attempt::Failed(ForwardError::Timeout(config.attempt_timeout_ms)),
        };
        self.stats
            .latency_us_sum
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        match parse_reply(&text) {
            Ok(reply) => Attempt::Delivered(reply),
            Err(problem) => {
                tracing::error!(account = %record.account, delivery_id = record.id, "the service's answer is unusable ({problem}): WeChat got `success`; answer {{\"reply\": {{\"type\": \"text\", \"content\": \"…\"}}}} or an empty body");
                Attempt::Delivered(None)
            }
        }
    }

    /// One POST of a delivery; the service's answer, read up to `max_reply_bytes`.
    /// A 3xx is a failure that names the Location: redirects are never followed.
    async fn send(
        &self,
        config: &ForwardConfig,
        record: &Record,
        body: String,
        timestamp: i64,
    ) -> Result<String, ForwardError> {
        let sent = self
            .http
            .post(&config.url)
            .header("Content-Type", "application/json")
            .header("X-Wxgate-Delivery", record.id.to_string())
            .header("X-Wxgate-Attempt", record.attempts.to_string())
            .header("X-Wxgate-Timestamp", timestamp.to_string())
            .header(
                "X-Wxgate-Signature",
                signature(config.secret.expose_secret(), timestamp, &body),
            )
            .body(body)
            .send()
            .await;
        let response = sent.map_err(|cause| ForwardError::Unreachable {
            url: config.url.clone(),
            cause,
        })?;
        let status = response.status();
        if status.is_redirection() {
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .unwrap_or("(none)");
            return Err(ForwardError::Redirect {
                status,
                location: location.to_owned(),
            });
        }
        if !status.is_success() {
            return Err(ForwardError::Status(status));
        }
        read_answer(response, config.max_reply_bytes).await
    }

    /// Whether the account's users see `reply` as a passive reply.
    fn shows(&self, account: &str, reply: &Reply) -> bool {
        self.shows_passive(account) || matches!(reply, Reply::TransferCustomerService { .. })
    }
}

/// Whether the user already had the record's reply: passively, or through the
/// customer-service API.
fn replied(record: &Record) -> bool {
    matches!(
        record.reply_outcome.as_deref(),
        Some("passive" | "late" | "customer_service")
    )
}

/// Reads an answer up to `limit` bytes, refusing it as soon as it is longer.
async fn read_answer(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<String, ForwardError> {
    if response.content_length().is_some_and(|l| l > limit as u64) {
        return Err(ForwardError::TooLarge(limit));
    }
    let mut answer = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(ForwardError::BrokeOff)? {
        if answer.len() + chunk.len() > limit {
            return Err(ForwardError::TooLarge(limit));
        }
        answer.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&answer).into_owned())
}
