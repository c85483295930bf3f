//! Shared helpers for the integration tests: an in-process server on 127.0.0.1:0 and a
//! client that signs and encrypts like WeChat.
#![allow(dead_code)]

pub mod hook;
pub mod links;
pub mod tools;
pub mod webdriver;

use std::sync::Arc;

use tokio::sync::oneshot;
use wxgate::app::AppState;
use wxgate::config::Config;
use wxgate::http;
use wxgate_proto::console::Mode;
use wxgate_proto::push::{self, PushParams};
use wxgate_proto::{EncodingAesKey, MsgCrypt};

pub const TOKEN: &str = "benchToken123";
pub const KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
pub const APP_ID: &str = "wx1234567890abcdef";
/// The AppSecret the emulator knows for APP_ID in tests that need one.
pub const APP_SECRET: &str = "0123456789abcdef0123456789abcdef";

/// A config with three accounts (one per mode), each an echo bot, plus `extra` at the
/// top level.
pub fn config_text(top: &str) -> String {
    let mut text = format!("{top}\n");
    for mode in ["plain", "compat", "safe"] {
        text.push_str(&format!(
            "[[account]]\nname = \"{mode}\"\napp_id = \"{APP_ID}\"\ntoken = \"{TOKEN}\"\nencoding_aes_key = \"{KEY}\"\nmode = \"{mode}\"\n\
             [[account.rule]]\nwhen = {{ msg_type = \"event\", event = \"subscribe\" }}\nreply = {{ text = \"welcome\" }}\n\
             [[account.rule]]\nwhen = {{ msg_type = \"text\" }}\nreply = {{ text = \"{{content}}\" }}\n"
        ));
    }
    text
}

/// One mini-program account per mode, named `mini-{mode}`, with JSON as its format:
/// the tempsession event is handed to customer service, a text gets a text rule.
pub fn mini_config_text(top: &str) -> String {
    let mut text = format!("{top}\n");
    for mode in ["plain", "compat", "safe"] {
        text.push_str(&format!(
            "[[account]]\nname = \"mini-{mode}\"\nkind = \"miniprogram\"\ndata_format = \"json\"\napp_id = \"{APP_ID}\"\napp_secret = \"{APP_SECRET}\"\ntoken = \"{TOKEN}\"\nencoding_aes_key = \"{KEY}\"\nmode = \"{mode}\"\n\
             [[account.rule]]\nwhen = {{ event = \"user_enter_tempsession\" }}\nreply = {{ transfer_customer_service = {{ kf_account = \"kf2001@gh_test\" }} }}\n\
             [[account.rule]]\nwhen = {{ msg_type = \"text\" }}\nreply = {{ text = \"echo {{content}}\" }}\n"
        ));
    }
    text
}

pub struct TestServer {
    pub base: String,
    pub state: Arc<AppState>,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    pub async fn start(config_text: &str) -> TestServer {
        let text = config_text.to_owned();
        TestServer::start_with(move |_| text).await
    }

    /// Starts a server whose config needs its own base URL (e.g. `public_url`).
    pub async fn start_with(make_config: impl FnOnce(&str) -> String) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let config = Config::parse(&make_config(&base), "test.toml").expect("test config is valid");
        let state = Arc::new(AppState::new(&config));
        TestServer::serve(listener, base, state)
    }

    /// Starts a server as `serve` builds it (the redb store, the inbox and the
    /// forwarder) in a fresh data directory named after `name`.
    pub async fn open(name: &str, config_text: &str) -> TestServer {
        let dir = std::env::temp_dir().join(format!("wxgate-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let text = format!("data_dir = \"{}\"\n{config_text}", dir.display());
        let config = Config::parse(&text, "test.toml").expect("test config is valid");
        let state = AppState::open(&config, "admin-token-0123456789".into())
            .await
            .expect("the state opens");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        TestServer::serve(listener, base, Arc::new(state))
    }

    /// Starts a server as `serve` builds it over the data directory `dir` (kept as it
    /// is: a restart finds what the last server stored), with a config that needs its
    /// own base URL.
    pub async fn open_in(
        dir: &std::path::Path,
        make_config: impl FnOnce(&str) -> String,
    ) -> TestServer {
        std::fs::create_dir_all(dir).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let text = format!("data_dir = \"{}\"\n{}", dir.display(), make_config(&base));
        let config = Config::parse(&text, "test.toml").expect("test config is valid");
        let state = AppState::open(&config, "admin-token-0123456789".into())
            .await
            .expect("the state opens");
        TestServer::serve(listener, base, Arc::new(state))
    }

    fn serve(listener: tokio::net::TcpListener, base: String, state: Arc<AppState>) -> TestServer {
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(http::serve(listener, state.clone(), async {
            let _ = rx.await;
        }));
        TestServer {
            base,
            state,
            shutdown: Some(tx),
            handle: Some(handle),
        }
    }

    pub async fn stop(mut self) {
        let _ = self.shutdown.take().unwrap().send(());
        self.handle.take().unwrap().await.unwrap().unwrap();
        self.state.shutdown().await;
    }
}

pub fn crypt() -> MsgCrypt {
    MsgCrypt::new(&EncodingAesKey::parse(KEY).unwrap(), APP_ID)
}

pub fn now() -> i64 {
    wxgate_client::clock::now()
}

/// A push as WeChat sends it, signed now.
pub fn push_request(mode: Mode, xml: &str, timestamp: i64) -> push::PushRequest {
    let crypt = crypt();
    let ts = timestamp.to_string();
    push::message(
        &PushParams {
            token: TOKEN,
            mode,
            crypt: Some(&crypt),
            timestamp: &ts,
            nonce: "271828",
            random: &rand_bytes(),
            openid: "oUser",
        },
        xml,
        "gh_test",
    )
}

fn rand_bytes() -> [u8; 16] {
    let mut bytes = [0u8; 16];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(37).wrapping_add(11);
    }
    bytes
}

pub async fn post(
    client: &reqwest::Client,
    url: &str,
    body: impl Into<reqwest::Body>,
) -> (u16, String) {
    let response = client
        .post(url)
        .header("Content-Type", "text/xml")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

pub async fn get(client: &reqwest::Client, url: &str) -> (u16, String, String) {
    let response = client.get(url).send().await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, response.text().await.unwrap())
}

/// A child process that is killed when dropped, so a failing test leaves no server
/// behind. Derefs to the `Child`.
pub struct KillOnDrop(pub std::process::Child);

impl std::ops::Deref for KillOnDrop {
    type Target = std::process::Child;
    fn deref(&self) -> &std::process::Child {
        &self.0
    }
}

impl std::ops::DerefMut for KillOnDrop {
    fn deref_mut(&mut self) -> &mut std::process::Child {
        &mut self.0
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the real binary (`wxgate serve --listen 127.0.0.1:0`) in `dir`, which holds a
/// wxgate.toml, and returns it with its base URL once it listens. Blocking: call it
/// from `spawn_blocking` in async tests.
pub fn start_binary(dir: &std::path::Path) -> (KillOnDrop, String) {
    spawn_binary(dir, &[], std::process::Stdio::null(), "wxgate=info")
}

/// [`start_binary`] under a command prefix, e.g. `["prlimit", "--nofile=1024:1024"]`.
/// The child's process id is wxgate's (the prefix must exec it).
pub fn start_binary_with(dir: &std::path::Path, prefix: &[String]) -> (KillOnDrop, String) {
    spawn_binary(dir, prefix, std::process::Stdio::null(), "wxgate=info")
}

/// [`start_binary`] with its log (stderr, at debug level) written to `log`.
pub fn start_binary_logged(dir: &std::path::Path, log: &std::path::Path) -> (KillOnDrop, String) {
    let file = std::fs::File::create(log).expect("the log file can be created");
    spawn_binary(dir, &[], file.into(), "wxgate=debug")
}

fn spawn_binary(
    dir: &std::path::Path,
    prefix: &[String],
    stderr: std::process::Stdio,
    level: &str,
) -> (KillOnDrop, String) {
    let mut command = match prefix.split_first() {
        Some((program, args)) => {
            let mut command = std::process::Command::new(program);
            command.args(args).arg(env!("CARGO_BIN_EXE_wxgate"));
            command
        }
        None => std::process::Command::new(env!("CARGO_BIN_EXE_wxgate")),
    };
    command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(dir)
        .env("WXGATE_LOG", level)
        .stderr(stderr);
    let (child, base, _) = run_until_listening(command);
    (child, base)
}

/// Spawns `command` (a `wxgate serve`) with stdout piped and reads it until the
/// `wxgate listening on` line; returns the process, its base URL and the lines printed
/// before. Stdout is drained afterwards, so the process can print at shutdown instead
/// of dying of a closed pipe.
pub fn run_until_listening(
    mut command: std::process::Command,
) -> (KillOnDrop, String, Vec<String>) {
    use std::io::BufRead;
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("wxgate starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = std::io::BufReader::new(stdout)
        .lines()
        .map_while(Result::ok);
    let mut printed = Vec::new();
    let base = loop {
        let line = lines.next().expect("wxgate prints its address");
        if let Some(rest) = line.strip_prefix("wxgate listening on ") {
            break rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned();
        }
        printed.push(line);
    };
    std::thread::spawn(move || lines.for_each(drop));
    (KillOnDrop(child), base, printed)
}

/// The value of the counter or gauge `name` in `{base}/metrics`.
pub async fn metric(client: &reqwest::Client, base: &str, name: &str) -> u64 {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics:\n{text}"))
}

/// Writes `config` as wxgate.toml into a fresh temporary directory named after `name`
/// and starts the real binary there (see [`start_binary`]).
pub async fn start_instance(name: &str, config: &str) -> (KillOnDrop, String) {
    let dir = std::env::temp_dir().join(format!("wxgate-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("wxgate.toml"), config).unwrap();
    tokio::task::spawn_blocking(move || start_binary(&dir))
        .await
        .unwrap()
}

/// Pushes `xml` to `{base}/wx/{account}` as WeChat would in `mode`; returns the status
/// and the body.
pub async fn push(
    client: &reqwest::Client,
    base: &str,
    account: &str,
    mode: Mode,
    xml: &str,
    timestamp: i64,
) -> (u16, String) {
    let request = push_request(mode, xml, timestamp);
    post(
        client,
        &format!("{base}/wx/{account}?{}", request.query),
        request.body,
    )
    .await
}

/// Polls `pending` every 100 ms until it returns `None`; panics with its last reason
/// after `timeout`.
pub async fn wait_until(timeout: std::time::Duration, mut pending: impl FnMut() -> Option<String>) {
    let deadline = std::time::Instant::now() + timeout;
    while let Some(reason) = pending() {
        assert!(std::time::Instant::now() < deadline, "{reason}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Database `db` of the test redis-server (scripts/test.sh starts it and sets
/// WXGATE_TEST_REDIS). Each test file uses its own database numbers.
pub fn redis_url(db: u32) -> String {
    let base = std::env::var("WXGATE_TEST_REDIS").expect(
        "WXGATE_TEST_REDIS is unset: run `bash scripts/test.sh`, which starts redis-server",
    );
    format!("{}/{db}", base.trim_end_matches('/'))
}

/// Empties a Redis database.
pub async fn flush(url: &str) {
    let client = redis::Client::open(url).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("FLUSHDB")
        .query_async(&mut connection)
        .await
        .unwrap();
}

/// A redis-server of a test's own on a free port, so the test can stop and restart
/// it: returns the port and a function that starts it. Persistent the way the README
/// asks for with the Redis backend (the queue lives there): an append-only file,
/// synced on every write.
pub fn own_redis(name: &str) -> (u16, impl Fn() -> KillOnDrop) {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let dir = std::env::temp_dir().join(format!("wxgate-redis-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let start = move || {
        std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--dir",
                dir.to_str().unwrap(),
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .map(KillOnDrop)
            .expect("redis-server is installed (scripts/test.sh installs it)")
    };
    (port, start)
}

/// Serves `service` on 127.0.0.1 and returns the URL of its `/hook`.
pub async fn serve_hook(service: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, service).await.unwrap() });
    hook
}

/// The resident memory of process `pid`, KiB (`None` once it has gone).
pub fn rss_kb(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}
