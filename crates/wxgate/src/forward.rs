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
//!
//! [`Forwarder`] stores and starts here; `deliver` holds one attempt and what is
//! recorded after it, `worker` the retries, retention and shutdown, `wire` the JSON of
//! a message, the signature and the service's reply ([`ServiceReply`]).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use wxgate_client::CredentialCenter;
use wxgate_proto::reply::Reply;
use wxgate_proto::Message;

use crate::config::{AccountKind, ForwardConfig};
use crate::inbox::{Accepted, Inbox, InboxError, Record};

mod claim;
mod deliver;
mod error;
mod reply;
mod wire;
mod worker;

pub use error::ForwardError;
pub use wire::{
    message_json, parse_reply, reply_json, signature, snake_case, stored_reply, ReplyError,
    ServiceArticle, ServiceReply,
};
pub use worker::SHUTDOWN_GRACE;

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
    /// Sends through the customer-service API that failed (each attempt).
    pub reply_failures: AtomicU64,
    /// Sum of successful delivery latencies, µs.
    pub latency_us_sum: AtomicU64,
}

/// The forwarding engine: the inbox, the HTTP client and the worker.
pub struct Forwarder {
    inbox: Inbox,
    http: reqwest::Client,
    center: Arc<CredentialCenter>,
    /// Where each account's messages go; swapped by [`Forwarder::set_routes`].
    routes: RwLock<Arc<Routes>>,
    in_flight: Mutex<HashSet<u64>>,
    /// New messages being stored by requests, which the worker leaves to them.
    accepting: Arc<claim::Accepting>,
    worker: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Delivered records older than this are deleted (0: kept).
    keep_delivered_s: i64,
    /// Counters.
    pub stats: ForwardStats,
}

impl std::fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarder")
            .field(
                "accounts",
                &self.routes().accounts.keys().collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// The accounts' forwarding settings, as one configuration states them.
#[derive(Debug, Default)]
pub(crate) struct Routes {
    /// `[account.forward]` of each forwarding account.
    accounts: HashMap<String, ForwardConfig>,
    /// The kind of each account (whether its users see passive replies).
    kinds: HashMap<String, AccountKind>,
    /// Per account, `max_in_flight` permits for concurrent attempts.
    slots: HashMap<String, Arc<tokio::sync::Semaphore>>,
}

impl Routes {
    /// The forward of `account`; an authorizer of a third-party platform
    /// (`open/{name}/{appid}`) has its platform's (`open/{name}`).
    pub(crate) fn config_of(&self, account: &str) -> Option<&ForwardConfig> {
        self.accounts
            .get(account)
            .or_else(|| self.accounts.get(authorizer_platform(account)?))
    }

    /// The permits of `account`'s attempts (an authorizer shares its platform's).
    fn slots_of(&self, account: &str) -> Option<&Arc<tokio::sync::Semaphore>> {
        self.slots
            .get(account)
            .or_else(|| self.slots.get(authorizer_platform(account)?))
    }

    fn new(accounts: HashMap<String, ForwardConfig>, kinds: HashMap<String, AccountKind>) -> Self {
        let slots = accounts
            .iter()
            .map(|(name, c)| {
                let permits = c.max_in_flight.max(1);
                (name.clone(), Arc::new(tokio::sync::Semaphore::new(permits)))
            })
            .collect();
        Routes {
            accounts,
            kinds,
            slots,
        }
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
        Arc::new(Forwarder {
            inbox,
            // A redirect is a failed attempt: following it would send the signed body
            // (or a GET) to an address the operator never configured.
            http: wxgate_client::http_client_builder()
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(Duration::from_secs(5))
                .build()
                .expect("TLS backend"),
            center,
            routes: RwLock::new(Arc::new(Routes::new(accounts, kinds))),
            in_flight: Mutex::new(HashSet::new()),
            accepting: Arc::default(),
            worker: Mutex::new(None),
            keep_delivered_s: (keep_delivered_days * 86_400) as i64,
            stats: ForwardStats::default(),
        })
    }

    /// The forwarding settings in force.
    pub(crate) fn routes(&self) -> Arc<Routes> {
        Arc::clone(&self.routes.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Applies a reloaded configuration's forwarding settings. An account the new
    /// configuration no longer forwards (removed, renamed, or without
    /// `[account.forward]`) keeps its old settings, so that what its inbox holds is
    /// still delivered; new pushes for it are not forwarded. An account whose
    /// `max_in_flight` is unchanged keeps its permits.
    pub fn set_routes(
        &self,
        accounts: HashMap<String, ForwardConfig>,
        kinds: HashMap<String, AccountKind>,
    ) {
        let mut routes = self.routes.write().unwrap_or_else(PoisonError::into_inner);
        let mut next = Routes::new(accounts, kinds);
        for (name, config) in &routes.accounts {
            next.accounts
                .entry(name.clone())
                .or_insert_with(|| config.clone());
            if let Some(kind) = routes.kinds.get(name) {
                next.kinds.entry(name.clone()).or_insert(*kind);
            }
        }
        for (name, slots) in &routes.slots {
            let same = (routes.accounts.get(name).map(|c| c.max_in_flight))
                == next.accounts.get(name).map(|c| c.max_in_flight);
            if same {
                next.slots.insert(name.clone(), Arc::clone(slots));
            }
        }
        *routes = Arc::new(next);
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
    ) -> Result<Forwarded, ForwardError> {
        let forwarder = Arc::clone(self);
        let account = account.to_owned();
        let (dedup_key, json) = (message.dedup_key(), message_json(message));
        let stored = tokio::spawn(async move {
            // Held until the first attempt is in `in_flight` (see `claim`).
            let _claim = forwarder.accepting.claim(&account, &dedup_key);
            let accepted = forwarder
                .inbox
                .accept(Record::new(0, &account, &dedup_key, json, now))
                .await?;
            Ok::<_, ForwardError>(match accepted {
                Accepted::Duplicate(record) => Stored::Duplicate(record),
                Accepted::New(record) => {
                    let (reply, timeout) = forwarder.start(record);
                    Stored::Started(reply, timeout)
                }
            })
        })
        .await??;
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
            .routes()
            .config_of(&record.account)
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

    /// Marks a record pending again, due now (`wxgate inbox retry`).
    ///
    /// # Errors
    /// Unknown id, a delivery another instance holds, or a storage error.
    pub async fn retry(&self, id: u64) -> Result<Record, InboxError> {
        self.inbox.retry(id, wxgate_client::clock::now()).await
    }
}

/// The platform of an authorizer's name, `open/{name}` of `open/{name}/{appid}`.
pub(crate) fn authorizer_platform(account: &str) -> Option<&str> {
    let rest = account.strip_prefix("open/")?;
    let (name, _) = rest.split_once('/')?;
    Some(&account[..5 + name.len()])
}
