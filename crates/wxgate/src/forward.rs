//! Forwarding messages to the owner's service, durably, inside WeChat's 5 seconds.
//!
//! ```text
//! push ─▶ inbox.accept (committed) ─▶ POST JSON to the service (HMAC-signed)
//!            │ answer with {"reply": …} within timeout_ms ─▶ passive reply to WeChat
//!            │ slower ─▶ `success` to WeChat now; the reply goes out later through
//!            │           the customer-service API
//!            └ down / 5xx ─▶ retried with exponential backoff and jitter by the worker,
//!                            until max_age_s, then dead-lettered
//! ```
//! The worker also resumes every pending delivery after a restart (or a kill -9): a
//! delivery may repeat, never vanish. A repeat carries the same delivery id.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use rand::Rng;
use secrecy::ExposeSecret;
use serde_json::{json, Map, Value};
use sha2::Sha256;
use wxgate_client::CredentialCenter;
use wxgate_proto::reply::{Article, Reply};
use wxgate_proto::xml::Element;
use wxgate_proto::Message;

use crate::config::{AccountKind, ForwardConfig};
use crate::inbox::{Accepted, DeliveryState, Inbox, Record};

/// `ToUserName` → `to_user_name`, `MsgID` → `msg_id`, `Location_X` → `location_x`.
pub fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev = i.checked_sub(1).map(|j| chars[j]);
            let next = chars.get(i + 1).copied();
            let boundary = match prev {
                Some(p) if p.is_ascii_lowercase() || p.is_ascii_digit() => true,
                Some(p) if p.is_ascii_uppercase() => next.is_some_and(|n| n.is_ascii_lowercase()),
                _ => false,
            };
            if boundary && !out.ends_with('_') {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn element_json(element: &Element) -> Value {
    if element.array {
        return Value::Array(element.children.iter().map(element_json).collect());
    }
    if element.children.is_empty() {
        return Value::String(element.text.clone());
    }
    let mut map = Map::new();
    for child in &element.children {
        let key = snake_case(&child.name);
        let value = element_json(child);
        match map.get_mut(&key) {
            Some(Value::Array(items)) => items.push(value),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, value]);
            }
            None => {
                map.insert(key, value);
            }
        }
    }
    Value::Object(map)
}

/// A message as the service receives it: every field of the XML, snake_case, with its
/// text exactly as WeChat sent it (numbers too, so a 64-bit `msg_id` stays exact).
/// A JSON push gives the same shape: its numbers, `true`, `false` and `null` become
/// text as written (`null` empty), its objects objects, and its arrays arrays (an
/// XML list, a repeated element, becomes an array from its second item on).
pub fn message_json(message: &Message) -> Value {
    element_json(&message.raw)
}

/// `sha256=` + hex HMAC-SHA256 of `timestamp + "." + body`.
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    let digest = mac.finalize().into_bytes();
    format!(
        "sha256={}",
        digest
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}

/// Reads the service's `{"reply": {...}}`. `Ok(None)` is "no reply".
///
/// # Errors
/// A message saying what is wrong with the reply.
pub fn parse_reply(body: &str) -> Result<Option<Reply>, String> {
    let trimmed = body.trim();
    if trimmed.is_empty() || trimmed == "success" {
        return Ok(None);
    }
    let value: Value =
        serde_json::from_str(trimmed).map_err(|e| format!("the answer is not JSON ({e})"))?;
    let Some(reply) = value.get("reply").filter(|r| !r.is_null()) else {
        return Ok(None);
    };
    let text = |field: &str| reply[field].as_str().map(str::to_owned);
    let required = |field: &str| text(field).ok_or_else(|| format!("reply.{field} is missing"));
    let reply = match reply["type"].as_str().unwrap_or_default() {
        "text" => Reply::Text {
            content: required("content")?,
        },
        "image" => Reply::Image {
            media_id: required("media_id")?,
        },
        "voice" => Reply::Voice {
            media_id: required("media_id")?,
        },
        "video" => Reply::Video {
            media_id: required("media_id")?,
            title: text("title"),
            description: text("description"),
        },
        "music" => Reply::Music {
            title: text("title"),
            description: text("description"),
            music_url: text("music_url"),
            hq_music_url: text("hq_music_url"),
            thumb_media_id: required("thumb_media_id")?,
        },
        "news" => Reply::News {
            articles: reply["articles"]
                .as_array()
                .ok_or("reply.articles is missing")?
                .iter()
                .map(|a| Article {
                    title: a["title"].as_str().unwrap_or_default().to_owned(),
                    description: a["description"].as_str().unwrap_or_default().to_owned(),
                    pic_url: a["pic_url"].as_str().unwrap_or_default().to_owned(),
                    url: a["url"].as_str().unwrap_or_default().to_owned(),
                })
                .collect(),
        },
        "transfer_customer_service" => Reply::TransferCustomerService {
            kf_account: text("kf_account"),
        },
        other => return Err(format!("unknown reply.type {other:?}")),
    };
    reply.validate().map_err(|e| e.to_string())?;
    Ok(Some(reply))
}

/// How long [`Forwarder::shutdown`] waits for the deliveries in flight.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct ForwardStats {
    /// Successful deliveries.
    pub delivered: AtomicU64,
    /// Failed attempts that were scheduled again.
    pub retries: AtomicU64,
    /// Records given up on.
    pub dead_letters: AtomicU64,
    /// Replies sent through the customer-service API.
    pub late_replies: AtomicU64,
    /// Sum of successful delivery latencies, µs.
    pub latency_us_sum: AtomicU64,
}

/// The forwarding engine: the inbox, the HTTP client and the worker.
pub struct Forwarder {
    inbox: Inbox,
    http: reqwest::Client,
    center: Arc<CredentialCenter>,
    accounts: HashMap<String, ForwardConfig>,
    /// The kind of each account (whether its users see passive replies).
    kinds: HashMap<String, AccountKind>,
    in_flight: Mutex<HashSet<u64>>,
    /// Per account, `max_in_flight` permits for concurrent attempts.
    slots: HashMap<String, Arc<tokio::sync::Semaphore>>,
    worker: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Delivered records older than this are deleted (0: kept).
    keep_delivered_s: i64,
    /// Counters.
    pub stats: ForwardStats,
}

impl std::fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarder")
            .field("accounts", &self.accounts.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// What [`Forwarder::forward`] did with a message.
#[derive(Debug)]
pub enum Forwarded {
    /// A new message, stored, delivered, with the service's reply if it came in time.
    New(Option<Reply>),
    /// A WeChat retry of a stored message: not delivered again.
    Duplicate(Record),
}

/// What the storing task of [`Forwarder::forward`] did: found a retry, or stored and
/// started a new delivery whose reply may come on the receiver within the duration.
enum Stored {
    Duplicate(Record),
    Started(tokio::sync::oneshot::Receiver<Option<Reply>>, Duration),
}

/// What one delivery attempt ended with.
enum Attempt {
    Delivered(Option<Reply>),
    Failed(String),
}

impl Forwarder {
    /// A forwarder for the accounts that have `[account.forward]`, with the kind of
    /// each (an account missing from `kinds` is an Official Account).
    pub fn new(
        inbox: Inbox,
        center: Arc<CredentialCenter>,
        accounts: HashMap<String, ForwardConfig>,
        kinds: HashMap<String, AccountKind>,
        keep_delivered_days: u64,
    ) -> Arc<Forwarder> {
        let slots = accounts
            .iter()
            .map(|(name, c)| {
                let permits = c.max_in_flight.max(1);
                (name.clone(), Arc::new(tokio::sync::Semaphore::new(permits)))
            })
            .collect();
        Arc::new(Forwarder {
            inbox,
            // A redirect is a failed attempt: following it would send the signed body
            // (or a GET) to an address the operator never configured.
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(Duration::from_secs(5))
                .build()
                .expect("TLS backend"),
            slots,
            center,
            accounts,
            kinds,
            in_flight: Mutex::new(HashSet::new()),
            worker: Mutex::new(None),
            keep_delivered_s: (keep_delivered_days * 86_400) as i64,
            stats: ForwardStats::default(),
        })
    }

    /// The inbox.
    pub fn inbox(&self) -> &Inbox {
        &self.inbox
    }

    /// Stores the message in the inbox (or finds it as a WeChat retry) and starts its
    /// delivery, then waits up to `timeout_ms` for the service's reply. A slower reply
    /// goes out later through the customer-service API.
    ///
    /// Storing and starting run in a task of their own: if WeChat hangs up (and the
    /// request is cancelled), the message is still stored and its delivery started.
    ///
    /// # Errors
    /// A storage error: the message must not be acknowledged.
    pub async fn forward(
        self: &Arc<Self>,
        account: &str,
        message: &Message,
        now: i64,
    ) -> Result<Forwarded, String> {
        let forwarder = Arc::clone(self);
        let account = account.to_owned();
        let (dedup_key, json) = (message.dedup_key(), message_json(message));
        let stored = tokio::spawn(async move {
            let accepted = forwarder
                .inbox
                .accept(&account, &dedup_key, json, now)
                .await?;
            Ok::<_, String>(match accepted {
                Accepted::Duplicate(record) => Stored::Duplicate(record),
                Accepted::New(record) => {
                    let (reply, timeout) = forwarder.start(record);
                    Stored::Started(reply, timeout)
                }
            })
        })
        .await
        .map_err(|e| format!("the inbox task failed: {e}"))??;
        Ok(match stored {
            Stored::Duplicate(record) => Forwarded::Duplicate(record),
            Stored::Started(reply, timeout) => match tokio::time::timeout(timeout, reply).await {
                Ok(Ok(reply)) => Forwarded::New(reply),
                _ => Forwarded::New(None),
            },
        })
    }

    /// Starts the first attempt of a new record; the receiver gets the service's reply
    /// if it comes within the account's `timeout_ms`.
    fn start(
        self: &Arc<Self>,
        record: Record,
    ) -> (tokio::sync::oneshot::Receiver<Option<Reply>>, Duration) {
        let timeout = self
            .accounts
            .get(&record.account)
            .map_or(4000, |c| c.timeout_ms);
        let (tx, rx) = tokio::sync::oneshot::channel::<Option<Reply>>();
        let forwarder = Arc::clone(self);
        let fresh = self
            .in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(record.id);
        // Unless the worker found the new record first: then its attempt is the only
        // one, and the reply (if any) goes out late.
        if fresh {
            tokio::spawn(async move {
                forwarder.attempt_and_record(record, Some(tx)).await;
            });
        }
        (rx, Duration::from_millis(timeout))
    }

    async fn attempt_and_record(
        self: Arc<Self>,
        mut record: Record,
        passive: Option<tokio::sync::oneshot::Sender<Option<Reply>>>,
    ) {
        let id = record.id;
        let outcome = self.attempt(&mut record).await;
        let now = crate::http::now();
        // True once the record's final form is stored.
        let mut stored = false;
        match outcome {
            Attempt::Delivered(reply) => {
                record.state = DeliveryState::Delivered;
                record.delivered_at = Some(now);
                record.last_error = None;
                self.stats.delivered.fetch_add(1, Ordering::Relaxed);
                if let Some(reply) = reply {
                    record.service_reply = Some(reply_json(&reply));
                    let undelivered = match passive {
                        // A mini-program shows none but transfer_customer_service:
                        // `success` now, the reply through the API.
                        Some(tx) if !self.shows(&record.account, &reply) => {
                            let _ = tx.send(None);
                            Some(reply)
                        }
                        Some(tx) => {
                            // Record the passive reply before handing it over, so a retry
                            // that arrives right after our answer finds it.
                            record.reply_outcome = Some("passive".to_owned());
                            match self.inbox.update(&record).await {
                                Ok(()) => stored = true,
                                Err(err) => tracing::error!(
                                    delivery_id = id,
                                    "cannot record the delivery state: {err}"
                                ),
                            }
                            tx.send(Some(reply)).err().flatten()
                        }
                        None => Some(reply),
                    };
                    if let Some(reply) = undelivered {
                        record.reply_outcome = Some(self.send_late(&record, &reply).await);
                        stored = false;
                    }
                } else if let Some(tx) = passive {
                    let _ = tx.send(None);
                }
            }
            Attempt::Failed(error) => {
                if let Some(tx) = passive {
                    let _ = tx.send(None);
                }
                let (max_age, max_backoff) = self
                    .accounts
                    .get(&record.account)
                    .map_or((86_400, 300), |c| {
                        (c.max_age_s as i64, c.max_backoff_s as i64)
                    });
                record.last_error = Some(error.clone());
                if now - record.received_at >= max_age {
                    record.state = DeliveryState::Dead;
                    self.stats.dead_letters.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(account = %record.account, delivery_id = id, attempts = record.attempts, "dead-lettered after {max_age}s of failed deliveries: {error}; see `wxgate inbox list --state dead`, retry with `wxgate inbox retry {id}`");
                } else {
                    let base = 1i64 << (record.attempts.saturating_sub(1)).min(8);
                    let delay =
                        (base as f64 * rand::thread_rng().gen_range(0.5..1.5)).ceil() as i64;
                    record.next_attempt_at = now + delay.clamp(1, max_backoff);
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(account = %record.account, delivery_id = id, attempt = record.attempts, "delivery failed: {error}; next attempt in {}s", record.next_attempt_at - now);
                }
            }
        }
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

    async fn attempt(&self, record: &mut Record) -> Attempt {
        let Some(config) = self.accounts.get(&record.account) else {
            return Attempt::Failed(format!(
                "account {} has no [account.forward] any more",
                record.account
            ));
        };
        record.attempts += 1;
        let body = json!({
            "delivery_id": record.id.to_string(),
            "account": record.account,
            "attempt": record.attempts,
            "received_at": record.received_at,
            "message": record.message,
        })
        .to_string();
        // At most `max_in_flight` attempts hold a socket to the service; the rest wait.
        let _slot = match self.slots.get(&record.account) {
            Some(slots) => slots.clone().acquire_owned().await.ok(),
            None => None,
        };
        let timestamp = crate::http::now();
        let started = Instant::now();
        let limit = Duration::from_millis(config.attempt_timeout_ms);
        let answered =
            tokio::time::timeout(limit, self.send(config, record, body, timestamp)).await;
        let text = match answered {
            Ok(Ok(text)) => text,
            Ok(Err(failure)) => return Attempt::Failed(failure),
            Err(_) => {
                return Attempt::Failed(format!(
                    "the service took longer than attempt_timeout_ms = {}",
                    config.attempt_timeout_ms
                ))
            }
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
    ) -> Result<String, String> {
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
        let mut response = sent.map_err(|err| {
            format!(
                "cannot reach {}: {}",
                config.url,
                crate::probe::error_chain(&err)
            )
        })?;
        let status = response.status();
        if status.is_redirection() {
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .unwrap_or("(none)");
            return Err(format!("the service answered HTTP {status} with Location: {location:?}; redirects are not followed: set [account.forward] url to the final address"));
        }
        if !status.is_success() {
            return Err(format!("the service answered HTTP {status}"));
        }
        let limit = config.max_reply_bytes;
        if response.content_length().is_some_and(|l| l > limit as u64) {
            return Err(format!(
                "the service's answer is over max_reply_bytes = {limit}"
            ));
        }
        let mut answer = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| {
            format!(
                "the service's answer broke off: {}",
                crate::probe::error_chain(&e)
            )
        })? {
            if answer.len() + chunk.len() > limit {
                return Err(format!(
                    "the service's answer is over max_reply_bytes = {limit}"
                ));
            }
            answer.extend_from_slice(&chunk);
        }
        Ok(String::from_utf8_lossy(&answer).into_owned())
    }

    /// Whether the account's users see `reply` as a passive reply.
    fn shows(&self, account: &str, reply: &Reply) -> bool {
        let kind = self.kinds.get(account).copied().unwrap_or_default();
        kind.shows_passive_replies() || matches!(reply, Reply::TransferCustomerService { .. })
    }

    /// Sends a reply through the customer-service message API: a reply that came
    /// after the passive window (`late`), or any reply but transfer_customer_service
    /// on a mini-program or mini-game (`customer_service`). Returns the outcome
    /// recorded with the delivery.
    async fn send_late(&self, record: &Record, reply: &Reply) -> String {
        let openid = record.message["from_user_name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let kind = self.kinds.get(&record.account).copied().unwrap_or_default();
        let (done, why) = if kind.shows_passive_replies() {
            ("late", "the reply came after the passive window")
        } else {
            (
                "customer_service",
                "a mini-program shows no passive reply but transfer_customer_service",
            )
        };
        let Some(message) = crate::customer_service::message_for(kind, reply) else {
            tracing::error!(account = %record.account, delivery_id = record.id, "{why}, and a {} reply cannot be sent through the customer-service API (text, image and news can)", reply.msg_type());
            return format!(
                "dropped: {} cannot be sent through the customer-service API",
                reply.msg_type()
            );
        };
        let center = &self.center;
        match crate::customer_service::send(center, &record.account, &openid, &message).await {
            Ok(()) => {
                self.stats.late_replies.fetch_add(1, Ordering::Relaxed);
                done.to_owned()
            }
            Err(err) => {
                tracing::error!(account = %record.account, delivery_id = record.id, "{why}; sending it through the customer-service API failed: {err}");
                format!("{done} reply failed: {err}")
            }
        }
    }

    /// Attempts every due pending delivery that is not already in flight.
    pub async fn run_due(self: &Arc<Self>) {
        if let Err(err) = self.inbox.maintain().await {
            tracing::warn!("cannot keep or take over queued deliveries in Redis: {err}");
        }
        let now = crate::http::now();
        let due = match self.inbox.due(now, 256).await {
            Ok(due) => due,
            Err(err) => {
                tracing::error!("cannot read the inbox: {err}");
                return;
            }
        };
        for record in due {
            let fresh = self
                .in_flight
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(record.id);
            if !fresh {
                continue;
            }
            // `due` may have read the record before an attempt that just ended stored
            // its outcome. That attempt stored it before it left `in_flight`, so a read
            // after the claim sees it: attempt only what nobody attempted since.
            match self.inbox.get(record.id).await {
                Ok(Some(current))
                    if current.state == DeliveryState::Pending
                        && current.attempts == record.attempts =>
                {
                    tokio::spawn(Arc::clone(self).attempt_and_record(current, None));
                }
                _ => {
                    self.in_flight
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&record.id);
                }
            }
        }
    }

    /// Marks a record pending again, due now (`wxgate inbox retry`).
    ///
    /// # Errors
    /// Unknown id, a delivery another instance holds, or a storage error.
    pub async fn retry(&self, id: u64) -> Result<Record, String> {
        self.inbox.retry(id, crate::http::now()).await
    }

    /// Deletes delivered records older than `[inbox] keep_delivered_days`; returns
    /// how many.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn expire_delivered(&self) -> Result<usize, String> {
        if self.keep_delivered_s == 0 {
            return Ok(0);
        }
        let before = crate::http::now() - self.keep_delivered_s;
        let purged = self
            .inbox
            .purge(before, &[DeliveryState::Delivered])
            .await?;
        if purged > 0 {
            tracing::info!(
                "deleted {purged} delivered inbox records older than {} days ([inbox] keep_delivered_days)",
                self.keep_delivered_s / 86_400
            );
        }
        Ok(purged)
    }

    /// Stops the worker, waits up to [`SHUTDOWN_GRACE`] for the attempts in flight, and
    /// commits the inbox durably: after a clean stop, no finished delivery repeats (one
    /// cut off by the grace may).
    pub async fn shutdown(&self) {
        if let Some(worker) = self.worker.lock().unwrap_or_else(|e| e.into_inner()).take() {
            worker.abort();
        }
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        let left = loop {
            let left = self
                .in_flight
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .len();
            if left == 0 || Instant::now() >= deadline {
                break left;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        if left > 0 {
            tracing::warn!("stopping with {left} deliveries in flight; they are attempted again after the restart");
        }
        if let Err(error) = self.inbox.flush().await {
            tracing::error!("cannot commit the inbox at shutdown ({error}); deliveries of the last {} ms may repeat after the restart", crate::inbox::GROUP_COMMIT_WINDOW.as_millis());
        }
    }

    /// Spawns the worker: every 200 ms, attempts what is due (including what a crash
    /// left pending); a minute after start-up and then hourly, deletes old delivered
    /// records. [`Forwarder::shutdown`] stops it.
    pub fn spawn_worker(self: &Arc<Self>) {
        let forwarder = Arc::clone(self);
        let worker = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(200));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut next_expiry = Instant::now() + Duration::from_secs(60);
            loop {
                tick.tick().await;
                forwarder.run_due().await;
                if Instant::now() >= next_expiry {
                    next_expiry = Instant::now() + Duration::from_secs(3600);
                    if let Err(err) = forwarder.expire_delivered().await {
                        tracing::warn!("cannot delete old delivered inbox records: {err}");
                    }
                }
            }
        });
        *self.worker.lock().unwrap_or_else(|e| e.into_inner()) = Some(worker);
    }
}

/// The JSON form of a reply, as stored with the record.
pub fn reply_json(reply: &Reply) -> Value {
    match reply {
        Reply::Text { content } => json!({ "type": "text", "content": content }),
        Reply::Image { media_id } => json!({ "type": "image", "media_id": media_id }),
        Reply::Voice { media_id } => json!({ "type": "voice", "media_id": media_id }),
        Reply::Video {
            media_id,
            title,
            description,
        } => {
            json!({ "type": "video", "media_id": media_id, "title": title, "description": description })
        }
        Reply::Music {
            title,
            description,
            music_url,
            hq_music_url,
            thumb_media_id,
        } => json!({
            "type": "music", "title": title, "description": description, "music_url": music_url,
            "hq_music_url": hq_music_url, "thumb_media_id": thumb_media_id,
        }),
        Reply::News { articles } => json!({
            "type": "news",
            "articles": articles.iter().map(|a| json!({ "title": a.title, "description": a.description, "pic_url": a.pic_url, "url": a.url })).collect::<Vec<_>>(),
        }),
        Reply::TransferCustomerService { kf_account } => {
            json!({ "type": "transfer_customer_service", "kf_account": kf_account })
        }
        other => json!({ "type": other.msg_type() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_of_wechat_names() {
        for (xml, snake) in [
            ("ToUserName", "to_user_name"),
            ("MsgId", "msg_id"),
            ("MsgID", "msg_id"),
            ("Location_X", "location_x"),
            ("HQMusicUrl", "hq_music_url"),
            ("EventKey", "event_key"),
            ("CreateTime", "create_time"),
            ("item", "item"),
        ] {
            assert_eq!(snake_case(xml), snake, "{xml}");
        }
    }

    #[test]
    fn message_json_keeps_every_field_as_text() {
        let message = Message::parse("<xml><ToUserName>gh</ToUserName><FromUserName>o</FromUserName><CreateTime>1</CreateTime><MsgType>event</MsgType><Event>pic_weixin</Event><SendPicsInfo><Count>2</Count><PicList><item><PicMd5Sum>a</PicMd5Sum></item><item><PicMd5Sum>b</PicMd5Sum></item></PicList></SendPicsInfo><MsgId>18446744073709551615</MsgId></xml>").unwrap();
        let json = message_json(&message);
        assert_eq!(json["to_user_name"], "gh");
        assert_eq!(
            json["msg_id"], "18446744073709551615",
            "64-bit ids stay exact"
        );
        assert_eq!(
            json["send_pics_info"]["pic_list"]["item"][1]["pic_md5_sum"],
            "b"
        );
    }

    #[test]
    fn a_json_push_is_forwarded_as_its_xml_twin() {
        let xml = "<xml><ToUserName><![CDATA[gh]]></ToUserName><FromUserName><![CDATA[o]]></FromUserName><CreateTime>1714112445</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hi]]></Content><MsgId>18446744073709551615</MsgId></xml>";
        let json = r#"{"ToUserName":"gh","FromUserName":"o","CreateTime":1714112445,"MsgType":"text","Content":"hi","MsgId":18446744073709551615}"#;
        let from_xml = message_json(&Message::parse(xml).unwrap());
        let from_json = message_json(&Message::parse_json(json).unwrap());
        assert_eq!(from_json, from_xml);
        assert_eq!(from_json["msg_id"], "18446744073709551615");
        assert_eq!(from_json["create_time"], "1714112445");
        // Nested objects and arrays are kept, as objects and arrays.
        let event = r#"{"ToUserName":"gh","FromUserName":"o","CreateTime":1,"MsgType":"event","Event":"subscribe_msg_popup_event","List":[{"TemplateId":"t1","SubscribeStatusString":"accept","PopupScene":0}],"Result":{"Suggest":"pass","Label":100},"Detail":[],"Flag":true,"Gone":null}"#;
        let value = message_json(&Message::parse_json(event).unwrap());
        assert_eq!(
            value["list"],
            json!([{ "template_id": "t1", "subscribe_status_string": "accept", "popup_scene": "0" }])
        );
        assert_eq!(
            value["result"],
            json!({ "suggest": "pass", "label": "100" })
        );
        assert_eq!(value["detail"], json!([]));
        assert_eq!(
            (value["flag"].clone(), value["gone"].clone()),
            (json!("true"), json!(""))
        );
    }

    #[test]
    fn replies_from_the_service() {
        assert_eq!(parse_reply("").unwrap(), None);
        assert_eq!(parse_reply("{}").unwrap(), None);
        assert_eq!(parse_reply("{\"reply\": null}").unwrap(), None);
        assert_eq!(
            parse_reply("{\"reply\":{\"type\":\"text\",\"content\":\"hi\"}}").unwrap(),
            Some(Reply::Text {
                content: "hi".into()
            })
        );
        let news = parse_reply(
            "{\"reply\":{\"type\":\"news\",\"articles\":[{\"title\":\"t\",\"url\":\"u\"}]}}",
        )
        .unwrap()
        .unwrap();
        assert_eq!(reply_json(&news)["articles"][0]["title"], "t");
        assert!(parse_reply("<html>").unwrap_err().contains("not JSON"));
        assert!(parse_reply("{\"reply\":{\"type\":\"sticker\"}}")
            .unwrap_err()
            .contains("sticker"));
        assert!(parse_reply("{\"reply\":{\"type\":\"text\",\"content\":\"\"}}").is_err());
        for kind in [
            "image",
            "voice",
            "video",
            "music",
            "transfer_customer_service",
        ] {
            let body = format!(
                "{{\"reply\":{{\"type\":\"{kind}\",\"media_id\":\"m\",\"thumb_media_id\":\"t\"}}}}"
            );
            assert!(parse_reply(&body).unwrap().is_some(), "{kind}");
        }
    }

    #[test]
    fn signature_is_hmac_of_timestamp_dot_body() {
        assert_eq!(
            signature("key", 1, "{}"),
            "sha256=".to_owned()
                + &{
                    let mut mac = Hmac::<Sha256>::new_from_slice(b"key").unwrap();
                    mac.update(b"1.{}");
                    mac.finalize()
                        .into_bytes()
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect::<String>()
                }
        );
    }
}
