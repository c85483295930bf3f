//! Errors become HTTP answers here, in one place. Each route names what went wrong as
//! an [`HttpError`] (or hands over a capability's error, which converts into one); this
//! module picks the status and writes the body: JSON for the admin API, plain text for
//! the pages a browser or WeChat reads ([`Plain`]).
//!
//! The rule for the status: the request is wrong → 4xx that says what to change; a
//! store or WeChat is unreachable for now → 503 with the reason (retrying helps);
//! WeChat answered with an error → 502 with its errcode and hint.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use wxgate_client::Error as ClientError;

use crate::component::NotifyError;
use crate::gateway::account::Refusal;
use crate::inbox::InboxError;
use crate::links::LinkError;

/// A plain-text answer (callbacks and browser pages).
pub fn text(status: StatusCode, body: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body.into(),
    )
        .into_response()
}

/// The answer to a URL verification: the echostr as text. The signature does not cover
/// echostr, so a browser must never sniff it as HTML.
pub fn echo(echostr: String) -> Response {
    let mut response = text(StatusCode::OK, echostr);
    response.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    response
}

/// The headers of every HTML page wxgate serves: no script or image from anywhere
/// but the page itself, no framing, no caching, no referrer.
pub const PAGE_POLICY: &str = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// An HTML page (written with every value escaped) with [`PAGE_POLICY`].
pub fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, PAGE_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
        .into_response()
}

/// An error as an HTML page, for a visitor's browser (`/go/…`).
pub fn error_page(error: HttpError) -> Response {
    let status = error.status();
    if status.is_server_error() {
        tracing::warn!("link page failed: {error}");
    }
    let title = match status {
        StatusCode::NOT_FOUND => "Link not found",
        StatusCode::BAD_REQUEST => "Bad link request",
        _ => "The link cannot open right now",
    };
    html(status, crate::links::page::error(title, &error.to_string()))
}

/// A request that got no result.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// A missing or wrong admin token.
    #[error("missing or wrong admin token: send `Authorization: Bearer <admin_token>` (admin_token in wxgate.toml, or the file named at start-up)")]
    Unauthorized,
    /// The request itself is wrong; the text says what to change.
    #[error("{0}")]
    BadRequest(String),
    /// What the request names does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A store this answer needs cannot be reached now (Redis, the database).
    #[error("{0}")]
    Unavailable(String),
    /// WeChat answered, but not with what was asked for.
    #[error("{0}")]
    Upstream(String),
    /// wxgate could not build the answer.
    #[error("{0}")]
    Internal(String),
    /// From the API client or the credential center.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// From the inbox (the database or the Redis queue).
    #[error(transparent)]
    Inbox(#[from] InboxError),
    /// From the link service (`/go/…`).
    #[error(transparent)]
    Link(#[from] LinkError),
    /// A reload that changed nothing.
    #[error(transparent)]
    Reload(#[from] crate::app::ReloadError),
}

impl HttpError {
    /// The status of the answer.
    pub fn status(&self) -> StatusCode {
        match self {
            HttpError::Unauthorized => StatusCode::UNAUTHORIZED,
            HttpError::BadRequest(_) => StatusCode::BAD_REQUEST,
            HttpError::NotFound(_) => StatusCode::NOT_FOUND,
            HttpError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            HttpError::Upstream(_) => StatusCode::BAD_GATEWAY,
            HttpError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            HttpError::Client(error) => match error {
                ClientError::UnknownAccount(_) => StatusCode::NOT_FOUND,
                ClientError::NotAuthorized { .. } => StatusCode::NOT_FOUND,
                ClientError::NotForWeCom { .. }
                | ClientError::NotForComponent { .. }
                | ClientError::WeComMessage { .. } => StatusCode::BAD_REQUEST,
                ClientError::Backoff { .. }
                | ClientError::SharedStoreUnavailable { .. }
                | ClientError::RefreshHeldElsewhere { .. }
                | ClientError::NoVerifyTicket { .. }
                | ClientError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::BAD_GATEWAY,
            },
            HttpError::Inbox(error) if error.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
            HttpError::Inbox(error) if error.is_not_found() => StatusCode::NOT_FOUND,
            HttpError::Inbox(error) if error.is_held_elsewhere() => StatusCode::CONFLICT,
            HttpError::Inbox(_) => StatusCode::INTERNAL_SERVER_ERROR,
            HttpError::Link(error) => match error {
                LinkError::Unknown { .. } | LinkError::NoCode(_) => StatusCode::NOT_FOUND,
                LinkError::BadInput(_) => StatusCode::BAD_REQUEST,
                LinkError::Capped { .. } | LinkError::Quota => StatusCode::SERVICE_UNAVAILABLE,
                LinkError::Api(error) => client_status(error),
                LinkError::Refused { .. } => StatusCode::BAD_GATEWAY,
            },
            HttpError::Reload(crate::app::ReloadError::NoFile) => StatusCode::CONFLICT,
            HttpError::Reload(crate::app::ReloadError::Invalid(_)) => StatusCode::BAD_REQUEST,
        }
    }
}

/// The status of a failed WeChat call or credential.
fn client_status(error: &ClientError) -> StatusCode {
    match error {
        ClientError::UnknownAccount(_) => StatusCode::NOT_FOUND,
        ClientError::NotForWeCom { .. } | ClientError::WeComMessage { .. } => {
            StatusCode::BAD_REQUEST
        }
        ClientError::Backoff { .. } | ClientError::SharedStoreUnavailable { .. } => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        _ => StatusCode::BAD_GATEWAY,
    }
}

/// The admin API's form: `{"error": …}`, with WeChat's errcode, errmsg and hint when
/// WeChat refused the call.
impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut body = json!({ "error": self.to_string() });
        if let HttpError::Client(ClientError::Api {
            errcode,
            errmsg,
            hint,
        }) = &self
        {
            body["errcode"] = json!(errcode);
            body["errmsg"] = json!(errmsg);
            body["hint"] = json!(hint);
        }
        if status == StatusCode::BAD_GATEWAY {
            tracing::warn!("admin API call failed: {self}");
        }
        (status, Json(body)).into_response()
    }
}

/// The same error as plain text, for a page a browser shows (OAuth sign-in).
#[derive(Debug)]
pub struct Plain(pub HttpError);

impl IntoResponse for Plain {
    fn into_response(self) -> Response {
        text(self.0.status(), self.0.to_string())
    }
}

/// A refused callback: its status and its answer, which never holds a decrypted byte.
pub fn refusal(refusal: &Refusal) -> Response {
    let status = StatusCode::from_u16(refusal.status()).unwrap_or(StatusCode::BAD_REQUEST);
    text(status, refusal.answer())
}

/// The answer to a third-party platform's notify that was not stored: the refusal's
/// own answer; 403 for a notify that names another platform; 503 when a store failed
/// (WeChat pushes again).
pub fn notify_error(error: &NotifyError) -> Response {
    match error {
        NotifyError::Refused(refusal) => self::refusal(refusal),
        NotifyError::OtherComponent { .. } => text(
            StatusCode::FORBIDDEN,
            "this notify names another third-party platform",
        ),
        NotifyError::Store(_) | NotifyError::Center(_) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "the notify could not be stored; retry",
        ),
    }
}
