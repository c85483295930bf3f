//! The connection layer: accepts TCP connections and serves HTTP/1.1 on them with
//! bounds that hold whatever the client does.
//!
//! * **Header deadline.** A connection must deliver its whole header block within
//!   `header_timeout` of being accepted (or, on a kept-alive connection, of the first
//!   byte of the next request). The deadline is not reset by each line that trickles in.
//! * **Body deadline.** A request body must arrive within `body_timeout` of its headers;
//!   after that, reading it fails and the handler answers 408.
//! * **Idle deadline.** A kept-alive connection with no request in progress is closed
//!   after `idle_timeout`.
//! * **Connection cap.** At most `max_connections` are open (lowered to fit the process's
//!   open-file limit). A new connection at the cap closes the oldest connection that has
//!   no request in progress, so slow or idle clients cannot lock legitimate ones out; the
//!   accept loop never stops serving.
//! * **Header size.** The read buffer is bounded, so a partial header costs at most
//!   [`MAX_HEADER_BYTES`] (plus the buffer's slack).
//! * **Shutdown.** Stops accepting, lets requests in progress finish, and closes whatever
//!   is left when `shutdown_grace` is over.
//!
//! A watchdog task enforces the deadlines: every connection records its phase and
//! since when, and the watchdog closes the ones over their deadline.

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::Router;
use http_body::Body as HttpBody;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::config::HttpConfig;

pub use wrap::{is_body_timeout, BodyTimeout};
use wrap::{ActiveGuard, DeadlineBody, Guarded, Receiving, Watched};

/// The largest header block accepted; a longer one is answered 431 and closed.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Read-buffer bound per connection (hyper's minimum is 8 KiB).
const MAX_BUF_BYTES: usize = 32 * 1024;
/// File descriptors kept free for everything that is not a client connection
/// (the database, Redis, outgoing deliveries and API calls, logs).
const RESERVED_FDS: u64 = 128;

/// The bounds of the connection layer (`[http]` in the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Deadline for a whole header block.
    pub header_timeout: Duration,
    /// Deadline for a request body, from the end of its headers.
    pub body_timeout: Duration,
    /// How long a kept-alive connection may wait for its next request.
    pub idle_timeout: Duration,
    /// Concurrent connections.
    pub max_connections: usize,
    /// How long shutdown waits for requests in progress.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits::from(&HttpConfig::default())
    }
}

impl From<&HttpConfig> for Limits {
    fn from(config: &HttpConfig) -> Self {
        Limits {
            header_timeout: Duration::from_secs(config.header_timeout_s),
            body_timeout: Duration::from_secs(config.body_timeout_s),
            idle_timeout: Duration::from_secs(config.idle_timeout_s),
            max_connections: usize::try_from(config.max_connections).unwrap_or(usize::MAX),
            shutdown_grace: Duration::from_secs(config.shutdown_grace_s),
        }
    }
}

/// Waiting for (or reading) a request's headers.
const HEADER: u8 = 0;
/// A request is being handled or its response written.
const ACTIVE: u8 = 1;
/// Kept alive, between requests.
const IDLE: u8 = 2;
/// A request's body is being received (its headers are in; the body deadline runs).
const BODY: u8 = 3;

/// One open connection, as the watchdog and the cap see it.
#[derive(Debug)]
struct Conn {
    phase: AtomicU8,
    /// Milliseconds since the server's epoch when the current phase began.
    since_ms: AtomicU64,
    close: Notify,
}

impl Conn {
    fn enter(&self, phase: u8, now_ms: u64) {
        self.since_ms.store(now_ms, Ordering::Relaxed);
        self.phase.store(phase, Ordering::Release);
    }
}

/// Every open connection, oldest first.
#[derive(Debug)]
struct Registry {
    epoch: Instant,
    conns: Mutex<BTreeMap<u64, Arc<Conn>>>,
}

impl Registry {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn len(&self) -> usize {
        self.conns.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Registers a connection; at `cap`, first closes the one that has been waiting
    /// longest (for its headers, its body, or its next request). Returns `None` when
    /// every connection has a request being handled.
    fn admit(&self, id: u64, cap: usize) -> Option<(Arc<Conn>, bool)> {
        let mut conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        let mut evicted = false;
        if conns.len() >= cap {
            if !Self::evict_longest_waiting(&mut conns) {
                return None;
            }
            evicted = true;
        }
        let conn = Arc::new(Conn {
            phase: AtomicU8::new(HEADER),
            since_ms: AtomicU64::new(self.now_ms()),
            close: Notify::new(),
        });
        conns.insert(id, conn.clone());
        Some((conn, evicted))
    }

    /// Closes the connection that has waited longest (not one being handled); returns
    /// whether there was one.
    fn evict_longest_waiting(conns: &mut BTreeMap<u64, Arc<Conn>>) -> bool {
        let victim = conns
            .iter()
            .filter(|(_, c)| c.phase.load(Ordering::Acquire) != ACTIVE)
            .min_by_key(|(_, c)| c.since_ms.load(Ordering::Relaxed))
            .map(|(&id, _)| id);
        match victim.and_then(|id| conns.remove(&id)) {
            Some(conn) => {
                conn.close.notify_one();
                true
            }
            None => false,
        }
    }

    /// Out of file descriptors below the cap: frees one the same way.
    fn make_room(&self) -> bool {
        let mut conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        Self::evict_longest_waiting(&mut conns)
    }

    fn remove(&self, id: u64) {
        self.conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }

    /// Closes the connections over their deadline; returns how many.
    fn sweep(&self, limits: &Limits) -> usize {
        let now = self.now_ms();
        let header = limits.header_timeout.as_millis() as u64;
        let idle = limits.idle_timeout.as_millis() as u64;
        let mut conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        let before = conns.len();
        conns.retain(|_, conn| {
            let age = now.saturating_sub(conn.since_ms.load(Ordering::Relaxed));
            let over = match conn.phase.load(Ordering::Acquire) {
                HEADER => age > header,
                IDLE => age > idle,
                _ => false,
            };
            if over {
                conn.close.notify_one();
            }
            !over
        });
        before - conns.len()
    }

    fn close_all(&self) {
        let mut conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        for conn in conns.values() {
            conn.close.notify_one();
        }
        conns.clear();
    }
}

/// The open-file limit of this process (soft), from `/proc/self/limits`.
fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// `max_connections`, lowered to what the open-file limit allows.
pub fn effective_cap(max_connections: usize) -> usize {
    match open_file_limit() {
        Some(files) => {
            let fit = files.saturating_sub(RESERVED_FDS).max(16) as usize;
            if fit < max_connections {
                tracing::warn!(
                    "max_connections = {max_connections} lowered to {fit}: the open-file limit is {files} (raise it with `ulimit -n` or LimitNOFILE= in the systemd unit)"
                );
            }
            max_connections.min(fit)
        }
        None => max_connections,
    }
}

/// Who sent a request, in its extensions: the peer's address and whether the
/// connection is TLS (the console's loopback rule and its cookie's `Secure`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    /// The TCP peer (a proxy in front is the peer).
    pub addr: std::net::SocketAddr,
    /// The request came over TLS on this listener.
    pub tls: bool,
}

/// Serves `router` on `listener` within `limits` until `shutdown` resolves, then
/// drains for at most `limits.shutdown_grace`.
///
/// # Errors
/// Never in practice: accept errors are logged and retried.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let cap = effective_cap(limits.max_connections);
    let registry = Arc::new(Registry {
        epoch: Instant::now(),
        conns: Mutex::new(BTreeMap::new()),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let watchdog = tokio::spawn(watchdog(registry.clone(), limits));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .max_buf_size(MAX_BUF_BYTES)
        .max_header_size(MAX_HEADER_BYTES)
        .max_headers(64);
    let builder = Arc::new(builder);
    tokio::pin!(shutdown);
    let mut next_id = 0u64;
    let mut refused = Throttle::default();
    loop {
        let (stream, addr) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, addr)) => (stream, addr),
                Err(error) => {
                    // Out of file descriptors (EMFILE, ENFILE): close the connection
                    // that has waited longest, so the next accept can succeed.
                    let freed = matches!(error.raw_os_error(), Some(23 | 24)) && registry.make_room();
                    if refused.ready() {
                        tracing::warn!("cannot accept a connection: {error}; {} (raise the open-file limit or lower max_connections)", if freed { "closed the connection that waited longest" } else { "retrying" });
                    }
                    tokio::time::sleep(Duration::from_millis(if freed { 1 } else { 10 })).await;
                    continue;
                }
            },
        };
        next_id += 1;
        let Some((conn, evicted)) = registry.admit(next_id, cap) else {
            if refused.ready() {
                tracing::warn!("{cap} connections, all with a request in progress: closed a new connection (max_connections)");
            }
            continue;
        };
        if evicted && refused.ready() {
            tracing::warn!("{cap} connections open (max_connections): closing the oldest idle or slow ones to accept new ones");
        }
        let _ = stream.set_nodelay(true);
        let served = Served {
            id: next_id,
            conn,
            registry: registry.clone(),
            router: router.clone(),
            builder: builder.clone(),
            limits,
            stop: stop_rx.clone(),
            peer: Peer {
                addr,
                tls: tls.is_some(),
            },
        };
        tokio::spawn(connection(stream, tls.clone(), served));
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let deadline = Instant::now() + limits.shutdown_grace;
    while registry.len() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let left = registry.len();
    if left > 0 {
        tracing::warn!(
            "closing {left} connection(s) still open after shutdown_grace_s = {}",
            limits.shutdown_grace.as_secs()
        );
    }
    registry.close_all();
    watchdog.abort();
    Ok(())
}

/// Closes connections over their deadlines, a few times per shortest deadline.
async fn watchdog(registry: Arc<Registry>, limits: Limits) {
    let shortest = limits.header_timeout.min(limits.idle_timeout);
    let every = (shortest / 4).clamp(Duration::from_millis(50), Duration::from_millis(500));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let closed = registry.sweep(&limits);
        if closed > 0 {
            tracing::debug!("closed {closed} connection(s) over their header or idle deadline");
        }
    }
}

/// One accepted connection and what serving it needs.
struct Served {
    id: u64,
    conn: Arc<Conn>,
    registry: Arc<Registry>,
    router: Router,
    builder: Arc<hyper::server::conn::http1::Builder>,
    limits: Limits,
    stop: watch::Receiver<bool>,
    peer: Peer,
}

/// Serves one connection: plain, or after a TLS handshake, which must end within the
/// header deadline (the watchdog closes a connection still in its header phase).
async fn connection(stream: TcpStream, tls: Option<TlsAcceptor>, served: Served) {
    let watched = Watched {
        inner: stream,
        conn: served.conn.clone(),
        registry: served.registry.clone(),
    };
    let Some(acceptor) = tls else {
        return serve_connection(TokioIo::new(watched), served).await;
    };
    tokio::select! {
        handshake = acceptor.accept(watched) => match handshake {
            Ok(stream) => serve_connection(TokioIo::new(stream), served).await,
            Err(error) => {
                tracing::debug!("TLS handshake failed: {error}");
                served.registry.remove(served.id);
            }
        },
        () = served.conn.close.notified() => served.registry.remove(served.id),
    }
}

/// Serves HTTP/1.1 on `io` until the client or the server ends it.
async fn serve_connection<I>(io: I, served: Served)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let Served {
        id,
        conn,
        registry,
        router,
        builder,
        limits,
        mut stop,
        peer,
    } = served;
    let service = {
        let conn = conn.clone();
        let registry = registry.clone();
        hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let phase = if request.body().is_end_stream() {
                ACTIVE
            } else {
                BODY
            };
            conn.enter(phase, registry.now_ms());
            let guard = ActiveGuard {
                conn: conn.clone(),
                registry: registry.clone(),
            };
            let deadline = tokio::time::Instant::now() + limits.body_timeout;
            let received = Receiving {
                conn: conn.clone(),
                registry: registry.clone(),
            };
            let mut request =
                request.map(|body| Body::new(DeadlineBody::new(body, deadline, received)));
            request.extensions_mut().insert(peer);
            let router = router.clone();
            async move {
                let response = router.oneshot(request).await?;
                Ok::<_, std::convert::Infallible>(response.map(|body| {
                    Body::new(Guarded {
                        body,
                        _guard: guard,
                    })
                }))
            }
        })
    };
    let served = builder.serve_connection(io, service);
    tokio::pin!(served);
    let mut stopping = *stop.borrow();
    if stopping {
        served.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            result = served.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!("connection ended: {error}");
                }
                break;
            }
            () = conn.close.notified() => break,
            changed = stop.changed(), if !stopping => {
                stopping = true;
                if changed.is_ok() {
                    served.as_mut().graceful_shutdown();
                }
            }
        }
    }
    registry.remove(id);
}

/// At most one warning a second for the accept loop's troubles.
#[derive(Default)]
struct Throttle {
    last: Option<Instant>,
}

impl Throttle {
    fn ready(&mut self) -> bool {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
        {
            return false;
        }
        self.last = Some(now);
        true
    }
}

#[cfg(test)]
mod tests;
mod wrap;
