//! The HTTP surface: [`app`] builds the router, [`serve`] runs it on a bound listener
//! until a shutdown future resolves.
//!
//! Routes:
//! * `GET  /wx/{account}`: URL verification (echostr, verbatim, `text/plain`).
//! * `POST /wx/{account}`: message push; a reply (XML or JSON, as the push), an
//!   encrypted envelope or `success`.
//! * `POST /open/{name}/notify`: a third-party platform's 授权事件接收URL; `success`
//!   once the ticket or the authorization event is stored.
//! * `GET  /open/{name}/authorize`, `/open/{name}/authorized`: a platform's
//!   authorization page and WeChat's return from it.
//! * `GET|POST /open/{name}/{appid}/callback`: an authorizer's messages (消息与事件接收URL).
//! * `GET  /healthz`: `ok`, or 503 with the reason while the database cannot commit or
//!   Redis cannot be reached.
//! * `GET  /metrics`: Prometheus text.
//! * `GET  /go/{account}/{link}`: a visitor sent into a mini-program page (302, or a
//!   page that tries the scheme, or a page with the QR code); `…/qr.svg` the code;
//!   `POST /api/accounts/{name}/links/{link}` (admin) the current link.
//! * `/console`: the web console ([`console`]), behind a sign-in with the admin token.
//! * any other path: a `[[verify_file]]` at exactly that path (`text/plain`, byte for
//!   byte), else 404.
//!
//! Handlers are thin: they read the request, call [`crate::gateway`], and map the
//! result to a response.

use std::future::Future;
use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;

use crate::app::AppState;

pub mod admin;
mod body;
mod callback;
pub mod conn;
pub mod console;
pub mod error;
mod go;
pub mod health;
mod metrics;
pub mod oauth;
mod open;
mod open_admin;
mod open_authorize;
mod open_messages;
mod verify;

use callback::{message, verify};

/// The router.
pub fn app(state: Arc<AppState>) -> Router {
    Router::new()
        .merge(crate::http::admin::routes(state.clone()))
        .merge(open_admin::routes(state.clone()))
        .merge(go::routes(state.clone()))
        .merge(console::routes(state.clone()))
        .route(
            "/oauth/{name}/authorize",
            get(crate::http::oauth::authorize),
        )
        .route("/oauth/{name}/callback", get(crate::http::oauth::callback))
        .route("/open/{name}/notify", post(open::notify))
        .route("/open/{name}/authorize", get(open_authorize::authorize))
        .route(
            "/open/{name}/{appid}/callback",
            get(open_messages::verify).post(open_messages::message),
        )
        .route("/open/{name}/authorized", get(open_authorize::authorized))
        .route("/wx/{account}", get(verify).post(message))
        .route("/wx/{account}/", get(verify).post(message))
        .route("/healthz", get(crate::http::health::healthz))
        .route("/metrics", get(metrics::metrics))
        .fallback(verify::fallback)
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
    serve_with(listener, state, None, shutdown).await
}

/// [`serve`], over TLS with `tls` (HTTPS only on this listener) when given.
///
/// # Errors
/// I/O errors from the listener.
pub async fn serve_with(
    listener: TcpListener,
    state: Arc<AppState>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = conn::Limits::from(&state.http);
    conn::serve(listener, app(state), limits, tls, shutdown).await
}
