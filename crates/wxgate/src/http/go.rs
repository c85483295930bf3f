//! `GET /go/{account}/{link}`: a visitor sent into a mini-program page, the way that
//! works where the visitor is ([`crate::links`]); `GET /go/{account}/{link}/qr.svg`:
//! the QR code of the current URL Link; `POST /api/accounts/{name}/links/{link}` (admin):
//! the current URL Link, the code's URL and the expiry, for apps with their own page.
//!
//! Every input is hostile: the names are looked up, never echoed unbounded; `cq` is
//! checked before anything is generated; a User-Agent over 1 KiB is refused; every page
//! escapes what it prints.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::error::{error_page, html, HttpError};
use crate::app::AppState;
use crate::links::{page, Kind, LinkError, LinkService, Target, Visitor, MAX_AGENT_BYTES};

/// The routes, the admin one behind the bearer check.
pub fn routes(state: Arc<AppState>) -> Router<Arc<AppState>> {
    let admin = Router::new()
        .route("/api/accounts/{name}/links/{link}", post(admin_link))
        .route_layer(axum::middleware::from_fn_with_state(
            state,
            super::admin::require_admin,
        ));
    Router::new()
        .route("/go/{account}/{link}", get(go))
        .route("/go/{account}/{link}/qr.svg", get(qr))
        .route("/go/{account}/{link}/code.png", get(code))
        .merge(admin)
}

#[derive(Deserialize)]
struct GoQuery {
    cq: Option<String>,
}

fn service(state: &AppState, account: &str, link: &str) -> Result<Arc<LinkService>, HttpError> {
    let unknown = || LinkError::Unknown {
        account: account.chars().take(64).collect(),
        link: link.chars().take(64).collect(),
    };
    let service = state.links().ok_or_else(unknown)?;
    service.exists(account, link)?;
    Ok(service.clone())
}

/// The visitor's class, or 400 for a User-Agent past the bound.
fn visitor(headers: &HeaderMap) -> Result<Visitor, HttpError> {
    let agent = headers.get(header::USER_AGENT);
    if agent.is_some_and(|a| a.len() > MAX_AGENT_BYTES) {
        let reason = format!("the User-Agent is longer than {MAX_AGENT_BYTES} bytes");
        return Err(LinkError::BadInput(reason).into());
    }
    Ok(Visitor::classify(agent.and_then(|a| a.to_str().ok())))
}

async fn go(
    State(state): State<Arc<AppState>>,
    Path((account, link)): Path<(String, String)>,
    Query(query): Query<GoQuery>,
    headers: HeaderMap,
) -> Response {
    match answer(&state, &account, &link, query.cq.as_deref(), &headers).await {
        Ok(response) => response,
        Err(error) => error_page(error),
    }
}

async fn answer(
    state: &AppState,
    account: &str,
    link: &str,
    cq: Option<&str>,
    headers: &HeaderMap,
) -> Result<Response, HttpError> {
    let visitor = visitor(headers)?;
    let service = service(state, account, link)?;
    let target = service.resolve(account, link, visitor, cq).await?;
    Ok(match target {
        Target::Redirect(url) => (
            StatusCode::FOUND,
            [
                (header::LOCATION, url.as_str()),
                (header::CACHE_CONTROL, "no-store"),
            ],
        )
            .into_response(),
        Target::Mobile { scheme, link: url } => {
            html(StatusCode::OK, page::mobile(link, &scheme, url.as_deref()))
        }
        Target::Desktop { target, note, code } => {
            match page::desktop(link, &target, &note, code.as_deref()) {
                Ok(body) => html(StatusCode::OK, body),
                Err(error) => {
                    return Err(HttpError::Internal(format!(
                        "cannot draw the QR code: {error}"
                    )))
                }
            }
        }
    })
}

async fn qr(
    State(state): State<Arc<AppState>>,
    Path((account, link)): Path<(String, String)>,
) -> Response {
    let svg = async {
        let service = service(&state, &account, &link)?;
        let current = service.current(&account, &link, Kind::UrlLink).await?;
        page::qr_svg(&current.value)
            .map_err(|error| HttpError::Internal(format!("cannot draw the QR code: {error}")))
    };
    match svg.await {
        Ok(svg) => (
            [
                (header::CONTENT_TYPE, "image/svg+xml"),
                (header::CACHE_CONTROL, "no-store"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            svg,
        )
            .into_response(),
        Err(error) => error.into_response(),
    }
}

async fn code(
    State(state): State<Arc<AppState>>,
    Path((account, link)): Path<(String, String)>,
) -> Response {
    let image = async {
        let service = service(&state, &account, &link)?;
        Ok::<_, HttpError>(service.code(&account, &link).await?)
    };
    match image.await {
        Ok(image) => {
            let kind = if image.starts_with(b"\x89PNG") {
                "image/png"
            } else {
                "image/jpeg"
            };
            (
                [
                    (header::CONTENT_TYPE, kind),
                    (header::CACHE_CONTROL, "public, max-age=86400"),
                    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                ],
                image,
            )
                .into_response()
        }
        Err(error) => error.into_response(),
    }
}

async fn admin_link(
    State(state): State<Arc<AppState>>,
    Path((name, link)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, HttpError> {
    let service = service(&state, &name, &link)?;
    let current = service.current(&name, &link, Kind::UrlLink).await?;
    let base = state.public_url().unwrap_or_default();
    Ok(Json(json!({
        "account": name,
        "link": link,
        "url_link": current.value,
        "expires_at": current.expires_at,
        "page_url": format!("{base}/go/{name}/{link}"),
        "code_image_url": format!("{base}/go/{name}/{link}/qr.svg"),
        "mini_program_code_url": service
            .shows_code(&name, &link)
            .then(|| format!("{base}/go/{name}/{link}/code.png")),
        "generated_today": service.count_today(&name, &link).await?,
    })))
}
