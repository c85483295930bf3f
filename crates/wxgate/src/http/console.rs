//! The web console at `/console`: a sign-in form for the admin token, then one page
//! that watches recent callbacks, credentials, the inbox and the configuration, and
//! tries an account. Everything it needs is embedded in the binary.
//!
//! * It answers only peers on loopback unless `admin_token` is configured.
//! * The cookie holds a random session id (never the token): HttpOnly,
//!   SameSite=Strict, Path=/console, Secure over TLS.
//! * Every state-changing request needs the session's CSRF token (header
//!   `X-Csrf-Token`) and an `Origin` (or `Referer`) of this host.
//! * Every response carries a Content-Security-Policy that allows only this origin's
//!   script and style; the page writes pushed content as text, never as HTML.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use subtle::ConstantTimeEq;

use super::conn::Peer;
use crate::app::AppState;
use crate::console::session;

mod api;

/// The session cookie's name.
pub const COOKIE: &str = "wxgate_console";
/// The header that carries the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const PAGE: &str = include_str!("../../assets/console/index.html");
const SIGN_IN: &str = include_str!("../../assets/console/sign-in.html");
const SCRIPT: &str = include_str!("../../assets/console/console.js");
const STYLE: &str = include_str!("../../assets/console/console.css");

/// The console's routes, each behind the loopback rule and with the console's headers.
pub fn routes(state: Arc<AppState>) -> Router<Arc<AppState>> {
    let api = api::routes().route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        require_session,
    ));
    Router::new()
        .route("/console", get(page))
        .route("/console/", get(|| async { Redirect::to("/console") }))
        .route("/console/sign-in", get(sign_in_form).post(sign_in))
        .route("/console/sign-out", post(sign_out))
        .route("/console/console.js", get(script))
        .route("/console/console.css", get(style))
        .merge(api)
        .route_layer(axum::middleware::from_fn_with_state(state, gate))
}

/// The loopback rule, and the console's headers on every answer.
async fn gate(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let peer = request.extensions().get::<Peer>().copied();
    let local = peer.is_some_and(|p| p.addr.ip().is_loopback());
    let mut response = if state.console().token_configured || local {
        next.run(request).await
    } else {
        tracing::warn!(peer = ?peer.map(|p| p.addr), "refused the console to a peer off loopback: admin_token is not configured");
        (
            StatusCode::FORBIDDEN,
            "the console answers only on loopback (127.0.0.1, ::1) unless admin_token is set in the config\n",
        )
            .into_response()
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The session id in the request's cookie.
fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(COOKIE)?.strip_prefix('='))
        .filter(|id| id.len() == 64)
        .map(str::to_owned)
}

/// Whether the request's `Origin` (or, without one, its `Referer`) names this host.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let source = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| url::Url::parse(v).ok());
    source.is_some_and(|url| {
        let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
        url.host_str()
            .is_some_and(|h| format!("{h}{port}").eq_ignore_ascii_case(host))
    })
}

fn refusal(status: StatusCode, reason: &str) -> Response {
    (status, Json(json!({ "error": reason }))).into_response()
}

/// A signed-in session for `/console/api`; for a state-changing method also the
/// session's CSRF token and a same-origin `Origin`.
async fn require_session(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let now = Instant::now();
    let sessions = &state.console().sessions;
    let Some(id) = session_id(request.headers()).filter(|id| sessions.csrf(id, now).is_some())
    else {
        return refusal(
            StatusCode::UNAUTHORIZED,
            "not signed in, or the session ended: sign in at /console/sign-in",
        );
    };
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let given = request
            .headers()
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !same_origin(request.headers()) {
            return refusal(
                StatusCode::FORBIDDEN,
                "cross-origin request refused: Origin or Referer must be this host",
            );
        }
        if !sessions.check_csrf(&id, given, now) {
            return refusal(
                StatusCode::FORBIDDEN,
                "missing or wrong CSRF token: reload the console",
            );
        }
    }
    next.run(request).await
}

/// Escapes text for HTML.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

fn sign_in_page(status: StatusCode, message: &str) -> Response {
    let class = if message.is_empty() { "" } else { "error" };
    let body = SIGN_IN
        .replace("{{class}}", class)
        .replace("{{message}}", &escape(message));
    html(status, body)
}

async fn sign_in_form() -> Response {
    sign_in_page(StatusCode::OK, "")
}

async fn page(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let csrf =
        session_id(&headers).and_then(|id| state.console().sessions.csrf(&id, Instant::now()));
    match csrf {
        Some(csrf) => html(StatusCode::OK, PAGE.replace("{{csrf}}", &escape(&csrf))),
        None => Redirect::to("/console/sign-in").into_response(),
    }
}

async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
        .into_response()
}

async fn style() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE).into_response()
}

/// Checks the admin token of the form (in constant time, at most
/// [`session::WRONG_TOKENS`] wrong ones per peer a minute) and opens a session.
async fn sign_in(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let peer = request.extensions().get::<Peer>().copied();
    let headers = request.headers().clone();
    if !same_origin(&headers) {
        return sign_in_page(
            StatusCode::FORBIDDEN,
            "cross-origin sign-in refused: open the console at this host and sign in there",
        );
    }
    let Ok(body) = axum::body::to_bytes(request.into_body(), 4096).await else {
        return sign_in_page(StatusCode::BAD_REQUEST, "the form is too large");
    };
    let token = url::form_urlencoded::parse(&body)
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let console = state.console();
    let now = Instant::now();
    let ip = peer.map_or(std::net::Ipv4Addr::UNSPECIFIED.into(), |p| p.addr.ip());
    if let Some(wait) = console.wrong_tokens.blocked(ip, now) {
        return sign_in_page(
            StatusCode::TOO_MANY_REQUESTS,
            &format!("too many wrong admin tokens from {ip}: wait {wait} s and try again"),
        );
    }
    let expected = state.admin_token().as_bytes();
    if token.len() != expected.len() || !bool::from(token.as_bytes().ct_eq(expected)) {
        console.wrong_tokens.count(ip, now);
        tracing::warn!(peer = %ip, "refused a console sign-in: wrong admin token");
        return sign_in_page(StatusCode::UNAUTHORIZED, "wrong admin token: give admin_token from the config (or data_dir/admin_token when it is generated)");
    }
    let id = console.sessions.create(now);
    let secure = if peer.is_some_and(|p| p.tls) {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/console; Max-Age={}{secure}",
        session::LIFETIME.as_secs()
    );
    tracing::info!(peer = %ip, "console sign-in");
    let mut response = Redirect::to("/console").into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// Ends the session (CSRF-checked like every state change).
async fn sign_out(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let console = state.console();
    let Some(id) = session_id(&headers) else {
        return Redirect::to("/console/sign-in").into_response();
    };
    let given = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !same_origin(&headers) || !console.sessions.check_csrf(&id, given, Instant::now()) {
        return refusal(
            StatusCode::FORBIDDEN,
            "missing or wrong CSRF token, or cross-origin request",
        );
    }
    console.sessions.remove(&id);
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "wxgate_console=; HttpOnly; SameSite=Strict; Path=/console; Max-Age=0",
        ),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_and_cookies_are_read_strictly() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(!same_origin(&headers), "neither Origin nor Referer");
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(same_origin(&headers));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8081"),
        );
        assert!(!same_origin(&headers));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(!same_origin(&headers));
        headers.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(!same_origin(&headers));
        let id = "a".repeat(64);
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("x=1; {COOKIE}={id}")).unwrap(),
        );
        assert_eq!(session_id(&headers), Some(id));
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("wxgate_console=short"),
        );
        assert_eq!(session_id(&headers), None);
        assert_eq!(escape("<script>&\"'"), "&lt;script&gt;&amp;&quot;&#39;");
    }
}
