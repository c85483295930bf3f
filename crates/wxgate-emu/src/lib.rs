//! An emulator of the WeChat API, for tests and local development.
//!
//! It serves the endpoints wxgate calls, the way WeChat behaves: tokens expire; a new
//! `/cgi-bin/token` call invalidates the previous token (40001 for its holder), while
//! `/cgi-bin/stable_token` returns the current one unless `force_refresh`; a wrong
//! secret gets 40125, an unknown AppID 40013; daily quotas give 45009; an optional IP
//! whitelist gives 40164; OAuth codes are single use (40163) and live 5 minutes; the
//! customer-service window is 48 hours (45015). Every call is recorded so tests can
//! assert on them. [`pusher`] plays WeChat's side of the callback.
//!
//! ```no_run
//! # async fn demo() {
//! use wxgate_emu::{Emulator, EmulatorConfig, App};
//! let emu = Emulator::new(EmulatorConfig::with_app(App::new("wx1234567890abcdef", "0123456789abcdef0123456789abcdef")));
//! let (addr, _task) = emu.spawn("127.0.0.1:0".parse().unwrap()).await.unwrap();
//! println!("api_base = http://{addr}");
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rand::distributions::{Alphanumeric, DistString};
use serde_json::{json, Value};

pub mod pusher;

/// One application known to the emulator.
#[derive(Debug, Clone)]
pub struct App {
    /// AppID.
    pub app_id: String,
    /// AppSecret.
    pub secret: String,
    /// Host allowed in OAuth redirect_uri (网页授权域名); `None` allows any.
    pub oauth_domain: Option<String>,
}

impl App {
    /// An app with any OAuth domain allowed.
    pub fn new(app_id: &str, secret: &str) -> App {
        App {
            app_id: app_id.to_owned(),
            secret: secret.to_owned(),
            oauth_domain: None,
        }
    }
}

/// How the emulator behaves.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Known apps.
    pub apps: Vec<App>,
    /// Lifetime of access tokens and tickets, seconds (WeChat: 7200).
    pub token_ttl_s: i64,
    /// How long a token replaced by a new `/cgi-bin/token` call stays valid (0: at once).
    pub classic_grace_s: i64,
    /// `/cgi-bin/token` calls allowed per app per day (WeChat: 2000).
    pub daily_token_quota: u32,
    /// Callers allowed to fetch tokens; `None` allows every caller.
    pub ip_whitelist: Option<Vec<IpAddr>>,
    /// The OpenID the OAuth consent page signs in as.
    pub oauth_openid: String,
}

impl EmulatorConfig {
    /// Defaults like WeChat's, with one app.
    pub fn with_app(app: App) -> EmulatorConfig {
        EmulatorConfig {
            apps: vec![app],
            token_ttl_s: 7200,
            classic_grace_s: 0,
            daily_token_quota: 2000,
            ip_whitelist: None,
            oauth_openid: "oEmulatorUser000000000000000".to_owned(),
        }
    }
}

/// A recorded API call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// HTTP method.
    pub method: String,
    /// Path, e.g. `/cgi-bin/stable_token`.
    pub path: String,
    /// Raw query string.
    pub query: String,
    /// Body (JSON text), empty for GET.
    pub body: String,
    /// The errcode answered (0 for success).
    pub errcode: i64,
}

#[derive(Debug, Clone)]
struct TokenInfo {
    app_id: String,
    expires_at: i64,
}

#[derive(Debug, Clone)]
struct OAuthCode {
    app_id: String,
    scope: String,
    created_at: i64,
    used: bool,
}

#[derive(Debug, Default)]
struct Inner {
    now_offset_s: i64,
    calls: Vec<Call>,
    /// Valid global access tokens.
    tokens: HashMap<String, TokenInfo>,
    /// Latest classic token per app.
    classic: HashMap<String, String>,
    /// Current stable token per app.
    stable: HashMap<String, String>,
    /// Token fetches per app (for the daily quota).
    fetches: HashMap<String, u32>,
    tickets: HashMap<String, (String, i64)>,
    codes: HashMap<String, OAuthCode>,
    oauth_tokens: HashMap<String, (String, String, i64)>,
    refresh_tokens: HashMap<String, (String, String)>,
    interactions: HashMap<String, i64>,
    menus: HashMap<String, Value>,
    invalid_tokens: HashSet<String>,
}

/// The emulator: cheap to clone, shared with its server.
#[derive(Debug, Clone)]
pub struct Emulator {
    config: Arc<EmulatorConfig>,
    inner: Arc<Mutex<Inner>>,
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn random(n: usize) -> String {
    Alphanumeric.sample_string(&mut rand::thread_rng(), n)
}

fn rid() -> String {
    format!("rid: {}-{}-{}", random(8), random(8), random(8)).to_ascii_lowercase()
}

fn error(errcode: i64, errmsg: &str) -> Value {
    json!({ "errcode": errcode, "errmsg": format!("{errmsg} {}", rid()) })
}

impl Emulator {
    /// An emulator with this behaviour.
    pub fn new(config: EmulatorConfig) -> Emulator {
        Emulator {
            config: Arc::new(config),
            inner: Arc::new(Mutex::new(Inner::default())),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The emulator's clock: real time plus the offset set by [`Emulator::advance`].
    pub fn now(&self) -> i64 {
        unix_now() + self.lock().now_offset_s
    }

    /// Moves the emulator's clock forward (tokens and codes expire).
    pub fn advance(&self, seconds: i64) {
        self.lock().now_offset_s += seconds;
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// How many calls reached `path`.
    pub fn count(&self, path: &str) -> usize {
        self.lock().calls.iter().filter(|c| c.path == path).count()
    }

    /// Forgets the recorded calls.
    pub fn clear_calls(&self) {
        self.lock().calls.clear();
    }

    /// Invalidates every token of `app_id`, as when another system force-refreshes it.
    pub fn refresh_elsewhere(&self, app_id: &str) {
        let mut inner = self.lock();
        let stale: Vec<String> = inner
            .tokens
            .iter()
            .filter(|(_, t)| t.app_id == app_id)
            .map(|(k, _)| k.clone())
            .collect();
        for token in stale {
            inner.tokens.remove(&token);
            inner.invalid_tokens.insert(token);
        }
        inner.stable.remove(app_id);
        inner.classic.remove(app_id);
    }

    /// Records that `openid` interacted now (opens the 48-hour customer-service window).
    pub fn record_interaction(&self, openid: &str) {
        let now = self.now();
        self.lock().interactions.insert(openid.to_owned(), now);
    }

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
            .route("/cgi-bin/message/custom/send", post(custom_send))
            .route("/cgi-bin/message/custom/typing", post(custom_typing))
            .route("/cgi-bin/message/template/send", post(template_send))
            .route("/cgi-bin/menu/create", post(menu_create))
            .route("/cgi-bin/menu/get", get(menu_get))
            .route("/cgi-bin/menu/delete", get(menu_delete))
            .route("/cgi-bin/user/info", get(user_info))
            .route("/cgi-bin/getcallbackip", get(callback_ip))
            .fallback(|uri: Uri| async move {
                Json(error(
                    404,
                    &format!("emulator does not serve {}", uri.path()),
                ))
            })
            .with_state(self.clone())
    }

    /// Serves the emulator on `addr` (port 0 picks one) until the task is dropped.
    ///
    /// # Errors
    /// Bind errors.
    pub async fn spawn(
        &self,
        addr: SocketAddr,
    ) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let router = self.router();
        let task = tokio::spawn(async move {
            let _ = axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await;
        });
        Ok((local, task))
    }

    fn record(&self, method: &str, path: &str, query: &str, body: &str, answer: &Value) {
        let errcode = answer.get("errcode").and_then(Value::as_i64).unwrap_or(0);
        self.lock().calls.push(Call {
            method: method.to_owned(),
            path: path.to_owned(),
            query: query.to_owned(),
            body: body.to_owned(),
            errcode,
        });
    }

    fn app(&self, app_id: &str) -> Option<&App> {
        self.config.apps.iter().find(|a| a.app_id == app_id)
    }

    /// Checks AppID, secret, whitelist and quota for a token fetch.
    fn admit_fetch(&self, app_id: &str, secret: &str, peer: IpAddr) -> Result<(), Value> {
        if let Some(list) = &self.config.ip_whitelist {
            if !list.contains(&peer) {
                return Err(error(
                    40164,
                    &format!("invalid ip {peer} ipv6 ::ffff:{peer}, not in whitelist"),
                ));
            }
        }
        let Some(app) = self.app(app_id) else {
            return Err(error(40013, "invalid appid"));
        };
        if app.secret != secret {
            return Err(error(
                40125,
                "invalid appsecret, view more at http://t.cn/RAEkdVq",
            ));
        }
        let mut inner = self.lock();
        let count = inner.fetches.entry(app_id.to_owned()).or_default();
        if *count >= self.config.daily_token_quota {
            return Err(error(45009, "reach max api daily quota limit"));
        }
        *count += 1;
        Ok(())
    }

    fn issue_token(&self, app_id: &str) -> (String, i64) {
        let token = format!("EMU_{}", random(100));
        let expires_at = self.now() + self.config.token_ttl_s;
        self.lock().tokens.insert(
            token.clone(),
            TokenInfo {
                app_id: app_id.to_owned(),
                expires_at,
            },
        );
        (token, expires_at)
    }

    /// Resolves an `access_token` query parameter to its AppID, or WeChat's error.
    fn check_token(&self, token: Option<&String>) -> Result<String, Value> {
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return Err(error(41001, "access_token missing"));
        };
        let now = self.now();
        let inner = self.lock();
        match inner.tokens.get(token) {
            Some(info) if info.expires_at > now => Ok(info.app_id.clone()),
            Some(_) => Err(error(42001, "access_token expired")),
            None if inner.invalid_tokens.contains(token) => Err(error(
                40001,
                "invalid credential, access_token is invalid or not latest",
            )),
            None => Err(error(40014, "invalid access_token")),
        }
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

fn respond(
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

async fn classic_token(
    State(emu): State<Emulator>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    Query(q): Params,
) -> Response {
    let query = uri.query().unwrap_or_default();
    let answer = (|| {
        if q.get("grant_type").map(String::as_str) != Some("client_credential") {
            return error(40002, "invalid grant_type");
        }
        let app_id = q.get("appid").cloned().unwrap_or_default();
        if let Err(err) = emu.admit_fetch(
            &app_id,
            q.get("secret").map(String::as_str).unwrap_or(""),
            peer.ip(),
        ) {
            return err;
        }
        let (token, _) = emu.issue_token(&app_id);
        // A new classic token replaces the previous one (after the grace period).
        let grace = emu.config.classic_grace_s;
        let now = emu.now();
        let mut inner = emu.lock();
        if let Some(previous) = inner.classic.insert(app_id, token.clone()) {
            if grace <= 0 {
                inner.tokens.remove(&previous);
                inner.invalid_tokens.insert(previous);
            } else if let Some(info) = inner.tokens.get_mut(&previous) {
                info.expires_at = info.expires_at.min(now + grace);
            }
        }
        json!({ "access_token": token, "expires_in": emu.config.token_ttl_s })
    })();
    respond(&emu, "GET", "/cgi-bin/token", query, "", answer)
}

async fn stable_token(
    State(emu): State<Emulator>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: String,
) -> Response {
    let answer = (|| {
        let Ok(request) = serde_json::from_str::<Value>(&body) else {
            return error(47001, "data format error");
        };
        if request["grant_type"] != "client_credential" {
            return error(40002, "invalid grant_type");
        }
        let app_id = request["appid"].as_str().unwrap_or_default().to_owned();
        let force = request["force_refresh"].as_bool().unwrap_or(false);
        if let Err(err) = emu.admit_fetch(
            &app_id,
            request["secret"].as_str().unwrap_or_default(),
            peer.ip(),
        ) {
            return err;
        }
        let now = emu.now();
        if !force {
            let inner = emu.lock();
            if let Some(current) = inner.stable.get(&app_id) {
                // WeChat renews the stable token itself shortly before expiry (the old one
                // stays valid until it expires).
                let renew_window = (emu.config.token_ttl_s / 4).min(300);
                if let Some(info) = inner
                    .tokens
                    .get(current)
                    .filter(|i| i.expires_at - now > renew_window)
                {
                    return json!({ "access_token": current, "expires_in": info.expires_at - now });
                }
            }
        }
        let (token, _) = emu.issue_token(&app_id);
        let mut inner = emu.lock();
        if let Some(previous) = inner.stable.insert(app_id, token.clone()) {
            if force {
                inner.tokens.remove(&previous);
                inner.invalid_tokens.insert(previous);
            }
        }
        json!({ "access_token": token, "expires_in": emu.config.token_ttl_s })
    })();
    respond(&emu, "POST", "/cgi-bin/stable_token", "", &body, answer)
}

async fn ticket(State(emu): State<Emulator>, uri: Uri, Query(q): Params) -> Response {
    let answer = match emu.check_token(q.get("access_token")) {
        Err(err) => err,
        Ok(app_id) => {
            let now = emu.now();
            let mut inner = emu.lock();
            let entry = inner
                .tickets
                .entry(app_id)
                .or_insert_with(|| (String::new(), 0));
            if entry.1 <= now {
                *entry = (
                    format!("TICKET_{}", random(60)),
                    now + emu.config.token_ttl_s,
                );
            }
            json!({ "errcode": 0, "errmsg": "ok", "ticket": entry.0, "expires_in": entry.1 - now })
        }
    };
    respond_get(&emu, &uri, answer)
}

/// The consent page: signs in as `oauth_openid` and redirects at once with a code.
async fn authorize(State(emu): State<Emulator>, uri: Uri, Query(q): Params) -> Response {
    let query = uri.query().unwrap_or_default().to_owned();
    let app_id = q.get("appid").cloned().unwrap_or_default();
    let redirect = q.get("redirect_uri").cloned().unwrap_or_default();
    let scope = q.get("scope").cloned().unwrap_or_default();
    let state = q.get("state").cloned().unwrap_or_default();
    let refuse = |code: i64, message: &str| {
        let answer = error(code, message);
        emu.record("GET", uri.path(), &query, "", &answer);
        (StatusCode::BAD_REQUEST, format!("{code} {message}")).into_response()
    };
    let Some(app) = emu.app(&app_id) else {
        return refuse(10012, "appid invalid");
    };
    if redirect.is_empty() {
        return refuse(10011, "redirect_uri empty");
    }
    if scope.is_empty() {
        return refuse(10010, "scope empty");
    }
    let host = url::Url::parse(&redirect)
        .ok()
        .and_then(|url| url.host_str().map(str::to_owned))
        .unwrap_or_default();
    if let Some(domain) = &app.oauth_domain {
        if &host != domain {
            return refuse(10003, "redirect_uri 参数错误");
        }
    }
    let code = random(32);
    let now = emu.now();
    emu.lock().codes.insert(
        code.clone(),
        OAuthCode {
            app_id,
            scope,
            created_at: now,
            used: false,
        },
    );
    emu.record("GET", uri.path(), &query, "", &json!({ "errcode": 0 }));
    let separator = if redirect.contains('?') { '&' } else { '?' };
    let location = format!("{redirect}{separator}code={code}&state={state}");
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

async fn oauth_exchange(State(emu): State<Emulator>, uri: Uri, Query(q): Params) -> Response {
    let answer = (|| {
        let app_id = q.get("appid").cloned().unwrap_or_default();
        let Some(app) = emu.app(&app_id) else {
            return error(40013, "invalid appid");
        };
        if q.get("secret") != Some(&app.secret) {
            return error(40125, "invalid appsecret");
        }
        let code = q.get("code").cloned().unwrap_or_default();
        let now = emu.now();
        let mut inner = emu.lock();
        let Some(entry) = inner.codes.get_mut(&code) else {
            return error(40029, "invalid code");
        };
        if entry.app_id != app_id {
            return error(40029, "invalid code");
        }
        if entry.used {
            return error(40163, "code been used");
        }
        if now - entry.created_at > 300 {
            return error(40029, "invalid code, code expired");
        }
        entry.used = true;
        let scope = entry.scope.clone();
        let openid = emu.config.oauth_openid.clone();
        let token = format!("OAUTH_{}", random(60));
        let refresh = format!("REFRESH_{}", random(60));
        inner
            .oauth_tokens
            .insert(token.clone(), (openid.clone(), scope.clone(), now + 7200));
        inner
            .refresh_tokens
            .insert(refresh.clone(), (openid.clone(), scope.clone()));
        json!({
            "access_token": token, "expires_in": 7200, "refresh_token": refresh,
            "openid": openid, "scope": scope, "unionid": format!("u{openid}"),
        })
    })();
    respond_get(&emu, &uri, answer)
}

async fn oauth_refresh(State(emu): State<Emulator>, uri: Uri, Query(q): Params) -> Response {
    let answer = {
        let mut inner = emu.lock();
        match q
            .get("refresh_token")
            .and_then(|r| inner.refresh_tokens.get(r).cloned())
        {
            None => error(40030, "invalid refresh_token"),
            Some((openid, scope)) => {
                let token = format!("OAUTH_{}", random(60));
                let expires = unix_now() + inner.now_offset_s + 7200;
                inner
                    .oauth_tokens
                    .insert(token.clone(), (openid.clone(), scope.clone(), expires));
                json!({ "access_token": token, "expires_in": 7200, "refresh_token": q["refresh_token"], "openid": openid, "scope": scope })
            }
        }
    };
    respond_get(&emu, &uri, answer)
}

fn oauth_user(emu: &Emulator, q: &HashMap<String, String>) -> Result<(String, String), Value> {
    let now = emu.now();
    let inner = emu.lock();
    match q
        .get("access_token")
        .and_then(|t| inner.oauth_tokens.get(t))
    {
        None => Err(error(40001, "invalid credential")),
        Some((_, _, expires)) if *expires <= now => Err(error(42001, "access_token expired")),
        Some((openid, _, _)) if q.get("openid") != Some(openid) => {
            Err(error(40003, "invalid openid"))
        }
        Some((openid, scope, _)) => Ok((openid.clone(), scope.clone())),
    }
}

async fn userinfo(State(emu): State<Emulator>, uri: Uri, Query(q): Params) -> Response {
    let answer = match oauth_user(&emu, &q) {
        Err(err) => err,
        Ok((_, scope)) if scope == "snsapi_base" => error(48001, "api unauthorized"),
        Ok((openid, _)) => json!({
            "openid": openid, "nickname": "Emulated User", "sex": 0, "province": "", "city": "",
            "country": "", "headimgurl": "", "privilege": [], "unionid": format!("u{openid}"),
        }),
    };
    respond_get(&emu, &uri, answer)
}

async fn oauth_check(State(emu): State<Emulator>, uri: Uri, Query(q): Params) -> Response {
    let answer = match oauth_user(&emu, &q) {
        Err(err) => err,
        Ok(_) => json!({ "errcode": 0, "errmsg": "ok" }),
    };
    respond_get(&emu, &uri, answer)
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

async fn qrcode_create(
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

async fn generate_scheme(
    State(emu): State<Emulator>,
    uri: Uri,
    Query(q): Params,
    body: String,
) -> Response {
    with_token(&emu, &uri, &q, &body, |_, request| {
        if request["jump_wxa"]["path"]
            .as_str()
            .is_some_and(|p| p.contains('?'))
        {
            return error(40165, "invalid weapp pagepath");
        }
        json!({ "errcode": 0, "errmsg": "ok", "openlink": format!("weixin://dl/business/?t={}", random(12)) })
    })
}

async fn generate_urllink(
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
        |_, _| json!({ "errcode": 0, "errmsg": "ok", "url_link": format!("https://wxaurl.cn/{}", random(12)) }),
    )
}

async fn custom_send(
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

async fn custom_typing(
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

async fn template_send(
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

async fn menu_create(
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

async fn menu_get(State(emu): State<Emulator>, uri: Uri, Query(q): Params) -> Response {
    let emu2 = emu.clone();
    get_with_token(&emu, &uri, &q, move |app_id| {
        match emu2.lock().menus.get(app_id) {
            Some(menu) => json!({ "menu": menu }),
            None => error(46003, "menu no exist"),
        }
    })
}

async fn menu_delete(State(emu): State<Emulator>, uri: Uri, Query(q): Params) -> Response {
    let emu2 = emu.clone();
    get_with_token(&emu, &uri, &q, move |app_id| {
        emu2.lock().menus.remove(app_id);
        json!({ "errcode": 0, "errmsg": "ok" })
    })
}

async fn user_info(State(emu): State<Emulator>, uri: Uri, Query(q): Params) -> Response {
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

async fn callback_ip(State(emu): State<Emulator>, uri: Uri, Query(q): Params) -> Response {
    get_with_token(
        &emu,
        &uri,
        &q,
        |_| json!({ "ip_list": ["101.226.62.77", "101.226.62.78"] }),
    )
}
