//! The calls that take an access_token: QR codes, mini-program links, customer-service
//! and template messages, menus, user info, callback IPs.

use axum::extract::{Query, State};
use axum::http::Uri;
use axum::response::Response;
use serde_json::{json, Value};

use super::{get_with_token, respond, with_token, Params};
use crate::ids::random;
use crate::state::error;
use crate::Emulator;

pub(super) async fn qrcode_create(
    State(emu): State<Emulator>,
    uri: Uri,
    Query(q): Params,
    body: String,
) -> Response {
    with_token(&emu, &uri, &q, &body, |_, request| {
        let ticket = format!("gQ{}==", random(40));
        let mut answer =
            json!({ "ticket": ticket, "url": format!("http://weixin.qq.com/q/{}", random(22)) });
        if request["action_name"] == "QR_SCENE" || request["action_name"] == "QR_STR_SCENE" {
            answer["expire_seconds"] = request["expire_seconds"].clone();
        }
        answer
    })
}

pub(super) async fn custom_send(
    State(emu): State<Emulator>,
    uri: Uri,
    Query(q): Params,
    body: String,
) -> Response {
    let now = emu.now();
    let emu2 = emu.clone();
    with_token(&emu, &uri, &q, &body, move |_, request| {
        let touser = request["touser"].as_str().unwrap_or_default();
        let last = emu2.lock().interactions.get(touser).copied();
        match last {
            Some(at) if now - at <= 48 * 3600 => json!({ "errcode": 0, "errmsg": "ok" }),
            _ => error(
                45015,
                "response out of time limit or subscription is canceled",
            ),
        }
    })
}

pub(super) async fn custom_typing(
    State(emu): State<Emulator>,
    uri: Uri,
    Query(q): Params,
    body: String,
) -> Response {
    with_token(
        &emu,
        &uri,
        &q,
        &body,
        |_, _| json!({ "errcode": 0, "errmsg": "ok" }),
    )
}

pub(super) async fn template_send(
    State(emu): State<Emulator>,
    uri: Uri,
    Query(q): Params,
    body: String,
) -> Response {
    with_token(&emu, &uri, &q, &body, |_, request| {
        if request["template_id"]
            .as_str()
            .unwrap_or_default()
            .is_empty()
        {
            return error(40037, "invalid template_id");
        }
        json!({ "errcode": 0, "errmsg": "ok", "msgid": rand::random::<u32>() })
    })
}

pub(super) async fn menu_create(
    State(emu): State<Emulator>,
    uri: Uri,
    Query(q): Params,
    body: String,
) -> Response {
    let emu2 = emu.clone();
    with_token(&emu, &uri, &q, &body, move |app_id, request| {
        if !request["button"].is_array() {
            return error(40016, "invalid button size");
        }
        emu2.lock().menus.insert(app_id.to_owned(), request.clone());
        json!({ "errcode": 0, "errmsg": "ok" })
    })
}

pub(super) async fn menu_get(State(emu): State<Emulator>, uri: Uri, Query(q): Params) -> Response {
    let emu2 = emu.clone();
    get_with_token(&emu, &uri, &q, move |app_id| {
        match emu2.lock().menus.get(app_id) {
            Some(menu) => json!({ "menu": menu }),
            None => error(46003, "menu no exist"),
        }
    })
}

pub(super) async fn menu_delete(
    State(emu): State<Emulator>,
    uri: Uri,
    Query(q): Params,
) -> Response {
    let emu2 = emu.clone();
    get_with_token(&emu, &uri, &q, move |app_id| {
        emu2.lock().menus.remove(app_id);
        json!({ "errcode": 0, "errmsg": "ok" })
    })
}

pub(super) async fn user_info(State(emu): State<Emulator>, uri: Uri, Query(q): Params) -> Response {
    let openid = q.get("openid").cloned().unwrap_or_default();
    get_with_token(&emu, &uri, &q, move |_| {
        if openid.is_empty() {
            return error(40003, "invalid openid");
        }
        json!({
            "subscribe": 1, "openid": openid, "language": "zh_CN", "subscribe_time": 1700000000,
            "unionid": format!("u{openid}"), "remark": "", "groupid": 0, "tagid_list": [],
            "subscribe_scene": "ADD_SCENE_QR_CODE", "qr_scene": 0, "qr_scene_str": "",
        })
    })
}

pub(super) async fn callback_ip(
    State(emu): State<Emulator>,
    uri: Uri,
    Query(q): Params,
) -> Response {
    get_with_token(
        &emu,
        &uri,
        &q,
        |_| json!({ "ip_list": ["101.226.62.77", "101.226.62.78"] }),
    )
}

/// `POST /emu/interaction` `{"openid": "…"}`: the user wrote to the account now, which
/// opens their 48-hour customer-service window (WeChat opens it on every message; the
/// emulator hears of it this way, e.g. from `wxgate sim`). Not a WeChat route.
pub(super) async fn interaction(State(emu): State<Emulator>, body: String) -> Response {
    let request: Value = serde_json::from_str(&body).unwrap_or_default();
    let answer = match request["openid"]
        .as_str()
        .filter(|o| !o.is_empty() && o.len() <= 128)
    {
        Some(openid) => {
            emu.record_interaction(openid);
            json!({ "errcode": 0, "errmsg": "ok", "window_s": 48 * 3600 })
        }
        None => error(40003, "invalid openid: send {\"openid\": \"…\"}"),
    };
    respond(&emu, "POST", "/emu/interaction", "", &body, answer)
}
