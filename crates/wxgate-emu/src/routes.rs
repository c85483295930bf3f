//! The router, and how every route records its call and answers.

use std::collections::HashMap;

use axum::extract::Query;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::Value;

use crate::state::error;
use crate::Emulator;

mod calls;
mod component;
pub(crate) mod links;
mod oauth;
mod tokens;
mod wecom;

use calls::*;
use component::*;
use links::*;
use oauth::*;
use tokens::*;
use wecom::*;

impl Emulator {
    /// The router (serve it with `into_make_service_with_connect_info::<SocketAddr>()`).
    pub fn router(&self) -> Router {
        Router::new()
            .route("/cgi-bin/token", get(classic_token))
            .route("/cgi-bin/stable_token", post(stable_token))
            .route("/cgi-bin/ticket/getticket", get(ticket))
            .route("/connect/oauth2/authorize", get(authorize))
            .route("/connect/qrconnect", get(authorize))
            .route("/sns/oauth2/access_token", get(oauth_exchange))
            .route("/sns/oauth2/refresh_token", get(oauth_refresh))
            .route("/sns/userinfo", get(userinfo))
            .route("/sns/auth", get(oauth_check))
            .route("/cgi-bin/qrcode/create", post(qrcode_create))
            .route("/wxa/generatescheme", post(generate_scheme))
            .route("/wxa/generate_urllink", post(generate_urllink))
            .route("/wxa/getwxacodeunlimit", post(get_wxacode_unlimit))
            .route("/cgi-bin/message/custom/send", post(custom_send))
            .route("/cgi-bin/message/custom/typing", post(custom_typing))
            .route("/cgi-bin/message/template/send", post(template_send))
            .route("/cgi-bin/menu/create", post(menu_create))
            .route("/cgi-bin/menu/get", get(menu_get))
            .route("/cgi-bin/menu/delete", get(menu_delete))
            .route("/cgi-bin/user/info", get(user_info))
            .route("/cgi-bin/getcallbackip", get(callback_ip))
            .route("/cgi-bin/gettoken", get(gettoken))
            .route("/cgi-bin/message/send", post(message_send))
            .route(
                "/cgi-bin/component/api_component_token",
                post(component_token),
            )
            .route(
                "/cgi-bin/component/api_start_push_ticket",
                post(start_push_ticket),
            )
            .route(
                "/cgi-bin/component/api_create_preauthcode",
                post(create_preauthcode),
            )
            .route("/cgi-bin/component/api_query_auth", post(query_auth))
            .route(
                "/cgi-bin/component/api_authorizer_token",
                post(authorizer_token),
            )
            .route("/emu/interaction", post(interaction))
            .fallback(|uri: Uri| async move {
                Json(error(
                    404,
                    &format!("emulator does not serve {}", uri.path()),
                ))
            })
            .with_state(self.clone())
    }
}

type Params = Query<HashMap<String, String>>;

/// Records and answers a GET at its own path.
fn respond_get(emu: &Emulator, uri: &Uri, answer: Value) -> Response {
    respond(
        emu,
        "GET",
        uri.path(),
        uri.query().unwrap_or_default(),
        "",
        answer,
    )
}

pub(super) fn respond(
    emu: &Emulator,
    method: &str,
    path: &str,
    query: &str,
    body: &str,
    answer: Value,
) -> Response {
    emu.record(method, path, query, body, &answer);
    Json(answer).into_response()
}

/// Runs `handler` for a POST with `access_token` and a JSON body.
fn with_token(
    emu: &Emulator,
    uri: &Uri,
    q: &HashMap<String, String>,
    body: &str,
    handler: impl FnOnce(&str, &Value) -> Value,
) -> Response {
    let answer = match emu.check_token(q.get("access_token")) {
        Err(err) => err,
        Ok(app_id) => {
            match serde_json::from_str::<Value>(if body.is_empty() { "{}" } else { body }) {
                Ok(request) => handler(&app_id, &request),
                Err(_) => error(47001, "data format error"),
            }
        }
    };
    respond(
        emu,
        "POST",
        uri.path(),
        uri.query().unwrap_or_default(),
        body,
        answer,
    )
}

/// Runs `handler` for a GET with `access_token`.
fn get_with_token(
    emu: &Emulator,
    uri: &Uri,
    q: &HashMap<String, String>,
    handler: impl FnOnce(&str) -> Value,
) -> Response {
    let answer = match emu.check_token(q.get("access_token")) {
        Err(err) => err,
        Ok(app_id) => handler(&app_id),
    };
    respond_get(emu, uri, answer)
}
