//! The HTTP surface: [`app`] builds the router, [`serve`] runs it on a bound listener
//! until a shutdown future resolves.
//!
//! Routes:
//! * `GET  /wx/{account}`: URL verification (echostr, verbatim, `text/plain`).
//! * `POST /wx/{account}`: message push; a reply (XML or JSON, as the push), an
//!   encrypted envelope or `success`.
//! * `GET  /healthz`: `ok`, or 503 with the reason while the database cannot commit or
//!   Redis cannot be reached.
//! * `GET  /metrics`: Prometheus text.
//!
//! Handlers are thin: they read the request, call [`crate::callback`], and map the
//! result to a response here, in one place.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

use rand::distributions::{Alphanumeric, DistString};
use secrecy::{ExposeSecret, SecretString};
use wxgate_client::{
    AccountSecrets, CenterConfig, Client, CredentialCenter, CredentialStore, MemoryStore,
};

use crate::callback::{Account, Answer, CallbackQuery, Decided, Refusal};
use crate::config::Config;
use crate::forward::{Forwarded, Forwarder};
use crate::log_limit::LogLimit;
use crate::metrics::{Method, Metrics, Outcome};
use crate::oauth::OAuthMemory;

mod body;
pub mod conn;

use body::read_body;

/// Everything the handlers share.
#[derive(Debug)]
pub struct AppState {
    accounts: HashMap<String, Arc<Account>>,
    /// Request counters and latency.
    pub metrics: Metrics,
    max_body_bytes: usize,
    center: Arc<CredentialCenter>,
    admin_token: SecretString,
    public_url: Option<String>,
    open_base: String,
    oauth_memory: OAuthMemory,
    forwarder: Option<Arc<Forwarder>>,
    shared: Option<crate::shared::SharedSeen>,
    limits: conn::Limits,
    log_limit: LogLimit,
    db: Option<Arc<crate::storage::Db>>,
}

/// The credential center a configuration describes, over `store`.
pub fn credential_center(
    config: &Config,
    store: Arc<dyn CredentialStore>,
) -> Arc<CredentialCenter> {
    let accounts = config
        .accounts
        .iter()
        .filter(|a| !a.app_secret.expose_secret().is_empty())
        .map(|a| AccountSecrets {
            name: a.name.clone(),
            app_id: a.app_id.clone(),
            secret: a.app_secret.clone(),
        })
        .collect();
    CredentialCenter::new(
        Client::new(&config.api_base),
        store,
        CenterConfig {
            endpoint: config.token_endpoint,
            daily_quota: config.daily_token_quota,
            ..CenterConfig::default()
        },
        accounts,
    )
}

impl AppState {
    /// Builds the state from a validated configuration, with credentials in memory and
    /// the configured admin token (or a random one).
    pub fn new(config: &Config) -> Self {
        let center = credential_center(config, Arc::new(MemoryStore::default()));
        let admin_token = config
            .admin_token
            .as_ref()
            .map(|t| t.expose_secret().to_owned())
            .unwrap_or_else(|| Alphanumeric.sample_string(&mut rand::rngs::OsRng, 32));
        AppState::with_center(config, center, admin_token)
    }

    /// Builds the state around an existing credential center.
    pub fn with_center(
        config: &Config,
        center: Arc<CredentialCenter>,
        admin_token: String,
    ) -> Self {
        let names = config.accounts.iter().map(|a| a.name.clone()).collect();
        AppState {
            accounts: config
                .accounts
                .iter()
                .map(|a| (a.name.clone(), Arc::new(Account::new(a.clone()))))
                .collect(),
            metrics: Metrics::new(names),
            max_body_bytes: config.max_body_bytes,
            center,
            admin_token: SecretString::from(admin_token),
            public_url: config.public_url.clone(),
            open_base: config.open_base.clone(),
            oauth_memory: OAuthMemory::for_config(config),
            forwarder: None,
            shared: None,
            limits: conn::Limits::from(&config.http),
            log_limit: LogLimit::new(config.accounts.len()),
            db: None,
        }
    }

    /// Opens `data_dir/wxgate.redb` (and Redis, with `[storage] backend = "redis"`) and
    /// builds the full state: credentials, the inbox and the forwarder, the admin
    /// token. Spawns the credential refresher and the delivery worker.
    ///
    /// # Errors
    /// The database or Redis cannot be opened.
    pub async fn open(config: &Config, admin_token: String) -> Result<AppState, String> {
        let db = crate::storage::Db::open(&config.data_dir.join("wxgate.redb"))
            .map_err(|e| e.to_string())?;
        let (store, shared): (Arc<dyn CredentialStore>, _) = match &config.redis_url {
            Some(url) => {
                let redis = crate::redis_store::RedisStore::connect(url.expose_secret()).await?;
                let shared = crate::shared::SharedSeen::new(redis.link());
                (Arc::new(redis), Some(shared))
            }
            None => (
                Arc::new(crate::storage::RedbStore::new(db.clone()).map_err(|e| e.to_string())?),
                None,
            ),
        };
        let center = credential_center(config, store);
        center.spawn_refresher();
        let mut state = AppState::with_center(config, center.clone(), admin_token);
        state.shared = shared;
        state.db = Some(db.clone());
        let forwards: HashMap<String, crate::config::ForwardConfig> = config
            .accounts
            .iter()
            .filter_map(|a| a.forward.clone().map(|f| (a.name.clone(), f)))
            .collect();
        if !forwards.is_empty() {
            let inbox = crate::inbox::open(config, db, state.shared.as_ref()).await?;
            let kinds = config.accounts.iter().map(|a| (a.name.clone(), a.kind));
            let kinds = kinds.collect();
            let forwarder =
                Forwarder::new(inbox, center, forwards, kinds, config.keep_delivered_days);
            forwarder.spawn_worker();
            state.forwarder = Some(forwarder);
        }
        Ok(state)
    }

    /// Stops the delivery worker and commits the inbox durably (after the server has
    /// stopped), so a restart repeats no finished delivery.
    pub async fn shutdown(&self) {
        if let Some(forwarder) = &self.forwarder {
            forwarder.shutdown().await;
        }
    }

    /// The process's database, when it was opened.
    pub fn database(&self) -> Option<&Arc<crate::storage::Db>> {
        self.db.as_ref()
    }

    /// The state shared with other instances (Redis), when configured.
    pub fn shared(&self) -> Option<&crate::shared::SharedSeen> {
        self.shared.as_ref()
    }

    /// The forwarder, when an account forwards.
    pub fn forwarder(&self) -> Option<&Arc<Forwarder>> {
        self.forwarder.as_ref()
    }

    /// The credential center.
    pub fn center(&self) -> &CredentialCenter {
        &self.center
    }

    /// The bearer token of the admin API.
    pub fn admin_token(&self) -> &str {
        self.admin_token.expose_secret()
    }

    /// The public base URL, for OAuth callbacks.
    pub fn public_url(&self) -> Option<&str> {
        self.public_url.as_deref()
    }

    /// The base of WeChat's authorization pages.
    pub fn open_base(&self) -> &str {
        &self.open_base
    }

    /// Used OAuth states and exchanged codes.
    pub fn oauth_memory(&self) -> &OAuthMemory {
        &self.oauth_memory
    }

    /// The accounts, sorted by name.
    pub fn accounts(&self) -> Vec<&Arc<Account>> {
        let mut accounts: Vec<&Arc<Account>> = self.accounts.values().collect();
        accounts.sort_by(|a, b| a.config.name.cmp(&b.config.name));
        accounts
    }

    /// The account served at `/wx/{name}`.
    pub fn account(&self, name: &str) -> Option<&Arc<Account>> {
        self.accounts.get(name)
    }
}

/// Unix seconds now.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The router.
pub fn app(state: Arc<AppState>) -> Router {
    Router::new()
        .merge(crate::admin::routes(state.clone()))
        .route("/oauth/{name}/authorize", get(crate::oauth::authorize))
        .route("/oauth/{name}/callback", get(crate::oauth::callback))
        .route("/wx/{account}", get(verify).post(message))
        .route("/wx/{account}/", get(verify).post(message))
        .route("/healthz", get(crate::health::healthz))
        .route("/metrics", get(metrics))
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                "not found: WeChat callbacks are served at /wx/{account}\n",
            )
        })
        .with_state(state)
}

/// Serves `app(state)` on `listener` within the `[http]` bounds until `shutdown`
/// resolves, then drains requests in progress for at most `shutdown_grace_s`.
///
/// # Errors
/// I/O errors from the listener.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = state.limits;
    conn::serve(listener, app(state), limits, shutdown).await
}

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body.into(),
    )
        .into_response()
}

fn refuse(
    state: &AppState,
    account: &str,
    method: Method,
    refusal: Refusal,
    started: Instant,
) -> Response {
    let reason = refusal.reason();
    let slot = state.metrics.slot(account);
    if let Some(note) = state.log_limit.check(slot, refusal.outcome()) {
        tracing::warn!(account, method = ?method, outcome = refusal.outcome().as_str(), "refused: {reason}{note}");
    }
    state
        .metrics
        .record(slot, method, refusal.outcome(), started.elapsed());
    let status = StatusCode::from_u16(refusal.status()).unwrap_or(StatusCode::BAD_REQUEST);
    text(status, refusal.answer())
}

fn unknown_account(state: &AppState, name: &str, method: Method, started: Instant) -> Response {
    let slot = state.metrics.slot("");
    if let Some(note) = state.log_limit.check(slot, Outcome::UnknownAccount) {
        let mut known: Vec<&str> = state.accounts.keys().map(String::as_str).collect();
        known.sort_unstable();
        tracing::warn!(
            account = name,
            outcome = "unknown_account",
            "refused: no account named {name:?} (configured: {}); check the URL path in the console (服务器地址) against [[account]] name{note}",
            known.join(", ")
        );
    }
    state
        .metrics
        .record(slot, method, Outcome::UnknownAccount, started.elapsed());
    text(StatusCode::NOT_FOUND, format!("unknown account {name:?}"))
}

fn bad_query(
    state: &AppState,
    account: &str,
    method: Method,
    rejection: &QueryRejection,
    started: Instant,
) -> Response {
    let slot = state.metrics.slot(account);
    if let Some(note) = state.log_limit.check(slot, Outcome::BadRequest) {
        tracing::warn!(
            account,
            outcome = "bad_request",
            "refused: unreadable query string: {rejection}{note}"
        );
    }
    state
        .metrics
        .record(slot, method, Outcome::BadRequest, started.elapsed());
    text(
        StatusCode::BAD_REQUEST,
        format!("unreadable query string: {rejection}"),
    )
}

async fn verify(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    query: Result<Query<CallbackQuery>, QueryRejection>,
) -> Response {
    let started = Instant::now();
    let Some(account) = state.account(&name) else {
        return unknown_account(&state, &name, Method::Get, started);
    };
    let query = match query {
        Ok(Query(query)) => query,
        Err(rejection) => return bad_query(&state, &name, Method::Get, &rejection, started),
    };
    match account.verify_url(&query, now()) {
        Ok(echostr) => {
            tracing::debug!(account = %name, "URL verification passed");
            state.metrics.record(
                state.metrics.slot(&name),
                Method::Get,
                Outcome::Ok,
                started.elapsed(),
            );
            // The signature does not cover echostr: never let a browser sniff it as HTML.
            let mut response = text(StatusCode::OK, echostr);
            response.headers_mut().insert(
                header::X_CONTENT_TYPE_OPTIONS,
                header::HeaderValue::from_static("nosniff"),
            );
            response
        }
        Err(refusal) => refuse(&state, &name, Method::Get, refusal, started),
    }
}

async fn message(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    query: Result<Query<CallbackQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let Some(account) = state.account(&name).cloned() else {
        return unknown_account(&state, &name, Method::Post, started);
    };
    let query = match query {
        Ok(Query(query)) => query,
        Err(rejection) => return bad_query(&state, &name, Method::Post, &rejection, started),
    };
    // `signature` covers only the query: check it before reading a byte of the body.
    let now = now();
    let admitted = match account.admit(&query, now) {
        Ok(admitted) => admitted,
        Err(refusal) => return refuse(&state, &name, Method::Post, refusal, started),
    };
    let bytes = match read_body(state.max_body_bytes, &headers, body).await {
        Ok(bytes) => bytes,
        Err(unread) => {
            let slot = state.metrics.slot(&name);
            if let Some(note) = state.log_limit.check(slot, unread.outcome()) {
                tracing::warn!(account = %name, outcome = unread.outcome().as_str(), "refused: {unread}{note}");
            }
            state
                .metrics
                .record(slot, Method::Post, unread.outcome(), started.elapsed());
            return text(unread.status(), format!("{unread}\n"));
        }
    };
    let Ok(body) = std::str::from_utf8(&bytes) else {
        let refusal = Refusal::Malformed(wxgate_proto::Error::MalformedXml {
            reason: "body is not UTF-8 (WeChat sends UTF-8)".into(),
        });
        return refuse(&state, &name, Method::Post, refusal, started);
    };
    let opened = match account.open_admitted(admitted, &query, body) {
        Ok(opened) => opened,
        Err(refusal) => return refuse(&state, &name, Method::Post, refusal, started),
    };
    if let Some(note) = account.format_note(opened.format, now) {
        tracing::warn!(account = %name, "{note}");
    }
    let shared = state.shared.as_ref().filter(|_| account.config.dedup);
    let key = || opened.message.dedup_key();
    let (plain, outcome) = match account.decide(&opened.message, opened.format, now) {
        Decided::Answer { plain, outcome } => {
            let plain = plain.as_deref().map(str::to_owned);
            match shared {
                Some(shared) if outcome == Outcome::Ok => {
                    shared.answer_once(&name, &key(), plain).await
                }
                _ => (plain, outcome),
            }
        }
        Decided::CustomerService(reply) => {
            let (_, outcome) = match shared {
                Some(shared) => shared.answer_once(&name, &key(), None).await,
                None => (None, Outcome::Ok),
            };
            let (kind, openid) = (account.config.kind, &opened.message.from_user_name);
            if outcome == Outcome::Ok {
                let center = state.center.clone();
                crate::customer_service::spawn_rule_reply(center, &name, kind, openid, reply);
            }
            (None, outcome)
        }
        // The inbox recognises WeChat's retries itself (in Redis across instances), so
        // nothing is claimed before the message is stored: a request cancelled in
        // between must not turn the retry into a `success` for a lost message.
        Decided::Forward => match forward(&state, &name, &opened, now).await {
            Ok(forwarded) => forwarded,
            Err(error) => {
                // Not stored, so not acknowledged: WeChat retries, nothing is lost.
                tracing::error!(account = %name, "cannot store the message in the inbox: {error}; answered 503 so WeChat retries");
                state.metrics.record(
                    state.metrics.slot(&name),
                    Method::Post,
                    Outcome::InternalError,
                    started.elapsed(),
                );
                return text(StatusCode::SERVICE_UNAVAILABLE, "inbox unavailable; retry");
            }
        },
    };
    tracing::debug!(account = %name, msg_type = %opened.message.msg_type, outcome = outcome.as_str(), "message handled");
    let mut rng = rand::thread_rng();
    let answer = account.seal(plain.as_deref(), opened.crypt, opened.format, now, &mut rng);
    state.metrics.record(
        state.metrics.slot(&name),
        Method::Post,
        outcome,
        started.elapsed(),
    );
    let content_type = answer.content_type();
    match answer {
        Answer::Success => text(StatusCode::OK, "success"),
        Answer::Xml(body) | Answer::Json(body) => {
            (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body).into_response()
        }
    }
}

/// Commits a message to the inbox and waits for the service's reply within the
/// account's timeout; returns the plain reply in the push's format (or `None` for
/// `success`).
async fn forward(
    state: &AppState,
    name: &str,
    opened: &crate::callback::Opened<'_>,
    now: i64,
) -> Result<(Option<String>, Outcome), String> {
    let (message, format) = (&opened.message, opened.format);
    let Some(forwarder) = state.forwarder.as_ref() else {
        return Err("forwarding is configured but no inbox is open".to_owned());
    };
    match forwarder.forward(name, message, now).await? {
        Forwarded::Duplicate(record) => {
            // A retry: the reply given the first time, if it was passive; never a second delivery.
            let reply = match (&record.reply_outcome, &record.service_reply) {
                (Some(outcome), Some(reply)) if outcome == "passive" => {
                    crate::forward::parse_reply(&serde_json::json!({ "reply": reply }).to_string())
                        .ok()
                        .flatten()
                }
                _ => None,
            };
            Ok((
                reply.map(|r| r.render_for_in(format, message, now)),
                Outcome::Duplicate,
            ))
        }
        Forwarded::New(reply) => Ok((
            reply.map(|r| r.render_for_in(format, message, crate::http::now())),
            Outcome::Ok,
        )),
    }
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    use std::fmt::Write;
    let mut extra = crate::dedup::gauges(state.accounts().into_iter().filter_map(|account| {
        account
            .dedup()
            .map(|dedup| (account.config.name.as_str(), dedup))
    }));
    let stats = state.center.stats();
    let _ = write!(
        extra,
        "# HELP wxgate_credential_fetches_total Credentials fetched from WeChat.\n# TYPE wxgate_credential_fetches_total counter\nwxgate_credential_fetches_total {}\n\
         # HELP wxgate_credential_failures_total Credential refreshes that failed.\n# TYPE wxgate_credential_failures_total counter\nwxgate_credential_failures_total {}\n\
         # HELP wxgate_credential_foreign_refreshes_total Tokens rejected although wxgate had not replaced them (another system refreshes the AppID).\n# TYPE wxgate_credential_foreign_refreshes_total counter\nwxgate_credential_foreign_refreshes_total {}\n\
         # HELP wxgate_credential_store_failures_total Credential store reads or writes that failed.\n# TYPE wxgate_credential_store_failures_total counter\nwxgate_credential_store_failures_total {}\n",
        stats.fetches, stats.failures, stats.foreign_refreshes, stats.store_failures
    );
    if let Some(forwarder) = &state.forwarder {
        use std::sync::atomic::Ordering::Relaxed;
        if let Ok((pending, delivered, dead)) = forwarder.inbox().counts().await {
            let _ = write!(
                extra,
                "# HELP wxgate_inbox_records Inbox records by delivery state (pending is the queue depth).\n# TYPE wxgate_inbox_records gauge\n\
                 wxgate_inbox_records{{state=\"pending\"}} {pending}\nwxgate_inbox_records{{state=\"delivered\"}} {delivered}\nwxgate_inbox_records{{state=\"dead\"}} {dead}\n"
            );
        }
        if let Some(queue) = forwarder.inbox().queue() {
            let (reclaimed, held) = (queue.reclaimed.load(Relaxed), queue.held());
            let _ = write!(
                extra,
                "# HELP wxgate_queue_reclaimed_total Deliveries taken over from instances that stopped answering (Redis queue).\n# TYPE wxgate_queue_reclaimed_total counter\nwxgate_queue_reclaimed_total {reclaimed}\n\
                 # HELP wxgate_queue_held Deliveries this instance holds in the Redis queue.\n# TYPE wxgate_queue_held gauge\nwxgate_queue_held {held}\n"
            );
        }
        let stats = &forwarder.stats;
        let delivered = stats.delivered.load(Relaxed);
        let _ = write!(
            extra,
            "# HELP wxgate_forward_deliveries_total Deliveries the service answered 2xx.\n# TYPE wxgate_forward_deliveries_total counter\nwxgate_forward_deliveries_total {delivered}\n\
             # HELP wxgate_forward_retries_total Failed delivery attempts scheduled again.\n# TYPE wxgate_forward_retries_total counter\nwxgate_forward_retries_total {}\n\
             # HELP wxgate_forward_dead_letters_total Deliveries given up after max_age_s.\n# TYPE wxgate_forward_dead_letters_total counter\nwxgate_forward_dead_letters_total {}\n\
             # HELP wxgate_forward_late_replies_total Replies sent through the customer-service API.\n# TYPE wxgate_forward_late_replies_total counter\nwxgate_forward_late_replies_total {}\n\
             # HELP wxgate_forward_delivery_seconds Time for the service to answer successful deliveries.\n# TYPE wxgate_forward_delivery_seconds summary\n\
             wxgate_forward_delivery_seconds_sum {}\nwxgate_forward_delivery_seconds_count {delivered}\n",
            stats.retries.load(Relaxed),
            stats.dead_letters.load(Relaxed),
            stats.late_replies.load(Relaxed),
            stats.latency_us_sum.load(Relaxed) as f64 / 1e6,
        );
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(&extra),
    )
        .into_response()
}
