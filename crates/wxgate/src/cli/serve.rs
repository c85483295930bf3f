//! `wxgate serve`: run the gateway.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use secrecy::ExposeSecret;
use wxgate_proto::signature::url_signature;

use crate::app::{AppState, ConfigSource, ReloadError};
use crate::config::Config;
use crate::http;
use crate::tls::CertStore;

/// Run the callback gateway.
///
/// Without --config, reads ./wxgate.toml; without that file, starts the embedded demo
/// account and prints how to reach it.
///
/// Examples:
///   wxgate serve --config /etc/wxgate.toml
///   wxgate serve --listen 127.0.0.1:17080 --json
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct ServeArgs {
    /// Configuration file (default: ./wxgate.toml, else the embedded demo).
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Listen address, overriding `listen` from the file (e.g. 0.0.0.0:80).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Worker threads of the async runtime (default: one per CPU core).
    #[arg(long, env = "WXGATE_THREADS")]
    pub threads: Option<usize>,
    /// Instead of the text banner, print one JSON line once listening
    /// (`{"event":"listening","url":…,"accounts":[…]}`) and one when stopped.
    #[arg(long)]
    pub json: bool,
}

/// Loads the configuration `serve` would use: the named file, ./wxgate.toml, or the demo.
///
/// # Errors
/// The file's validation error.
pub fn load_config(path: Option<&Path>) -> anyhow::Result<(Config, bool)> {
    match path {
        Some(path) => Ok((Config::load(path)?, false)),
        None if Path::new("wxgate.toml").exists() => {
            Ok((Config::load(Path::new("wxgate.toml"))?, false))
        }
        None => Ok((Config::demo()?, true)),
    }
}

/// Runs `wxgate serve`.
///
/// # Errors
/// Configuration, data directory and bind errors.
pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    init_tracing();
    let (mut config, demo) = load_config(args.config.as_deref())?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    prepare_data_dir(&config.data_dir)?;
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = args.threads.filter(|&n| n > 0) {
        builder.worker_threads(threads);
    }
    let runtime = builder
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let shutdown = shutdown_signal()?;
        // A certificate that cannot serve stops the start, before the port is taken.
        let tls = match &config.tls {
            Some(files) => Some(CertStore::open(files.clone())?),
            None => None,
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        // Before the address is printed: a SIGHUP right after must find its handler.
        let hangup = hangup_signal()?;
        let listener = bind(&config).await?;
        let local = listener.local_addr()?;
        let json = args.json;
        if demo && !json {
            print_demo_banner(&config, local);
        }
        if !json {
            print_accounts(&config, scheme, local);
        }
        let admin_token = admin_token(&config, !json)?;
        let mut state = AppState::open(&config, admin_token)
            .await
            .map_err(anyhow::Error::msg)?;
        if !demo {
            let path = (args.config.clone()).unwrap_or_else(|| PathBuf::from("wxgate.toml"));
            state.set_source(ConfigSource {
                path,
                listen: args.listen,
            });
        }
        let state = Arc::new(state);
        let _reloads = reload_on_signal_and_change(hangup, tls.as_ref(), &state);
        // Removed again when serving ends (on an error too); a kill -9 leaves it,
        // and the next start writes it anew.
        let _addr_file = crate::storage::files::ServeAddr::write(&config.data_dir, local)
            .with_context(|| {
                format!(
                    "cannot write {}",
                    config
                        .data_dir
                        .join(crate::storage::files::SERVE_ADDR_FILE)
                        .display()
                )
            })?;
        print_listening(&config, scheme, local, json, demo);
        http::serve_with(listener, state.clone(), tls.map(|t| t.acceptor()), shutdown).await?;
        state.shutdown().await;
        // stdout may be closed by now (a supervisor that stopped reading): not a panic.
        let stopped = if json {
            r#"{"event":"stopped"}"#
        } else {
            "wxgate stopped"
        };
        let _ = writeln!(std::io::stdout(), "{stopped}");
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Binds the listen address; a public address needs `admin_token` (the rule of the
/// config file, applied to the address actually bound, `--listen` included: a
/// generated token would be unknown to the operator).
async fn bind(config: &Config) -> anyhow::Result<tokio::net::TcpListener> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}: is another process using the port?",
                config.listen
            )
        })?;
    let local = listener.local_addr()?;
    if !local.ip().is_loopback() {
        if config.admin_token.is_none() {
            anyhow::bail!("listening on {local} is reachable from other machines, so the admin API (/api, access tokens) needs admin_token = \"<random string>\" in the config file; or listen on 127.0.0.1");
        }
        tracing::warn!("listening on {local}, reachable from other machines");
    }
    Ok(listener)
}

/// One line per account: its URL, mode, rules and forward.
fn print_accounts(config: &Config, scheme: &str, local: SocketAddr) {
    for account in &config.accounts {
        let forward = account.forward.as_ref().map_or_else(
            || "none".to_owned(),
            |f| crate::text::url_without_query(&f.url),
        );
        println!(
            "account {:<12} {scheme}://{local}/wx/{}  mode={} rules={} forward={forward}",
            account.name,
            account.name,
            account.mode.as_str(),
            account.rules.len()
        );
    }
}

/// The line (or JSON object) that says `serve` listens.
fn print_listening(config: &Config, scheme: &str, local: SocketAddr, json: bool, demo: bool) {
    if json {
        let accounts: Vec<_> = config
            .accounts
            .iter()
            .map(|a| serde_json::json!({ "name": a.name, "url": format!("{scheme}://{local}/wx/{}", a.name), "mode": a.mode.as_str() }))
            .collect();
        println!(
            "{}",
            serde_json::json!({ "event": "listening", "url": format!("{scheme}://{local}"), "demo": demo, "accounts": accounts })
        );
    } else {
        println!("web console     {scheme}://{local}/console (sign in with the admin API token)");
        println!("wxgate listening on {scheme}://{local} (Ctrl-C to stop)");
    }
}

/// The admin API's bearer token: `admin_token` from the config, or one generated once
/// and kept in `data_dir/admin_token` (readable by the owner only).
fn admin_token(config: &Config, say: bool) -> anyhow::Result<String> {
    if let Some(token) = &config.admin_token {
        return Ok(token.expose_secret().to_owned());
    }
    let path = config.data_dir.join("admin_token");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let existing = existing.trim().to_owned();
        if existing.len() >= 16 {
            crate::storage::files::warn_if_open(&path, "the admin API token");
            say.then(|| {
                println!(
                    "admin API token: in {} (set admin_token in the config to choose one)",
                    path.display()
                )
            });
            return Ok(existing);
        }
    }
    use rand::distr::{Alphanumeric, SampleString};
    let token = Alphanumeric.sample_string(&mut rand::rand_core::UnwrapErr(rand::rngs::SysRng), 40);
    crate::storage::files::write_private(&path, token.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    if say {
        println!(
            "admin API token: generated into {} (set admin_token in the config to choose one)",
            path.display()
        );
    }
    Ok(token)
}

/// Logs to stderr: colour only on a terminal and without `NO_COLOR`; one JSON object a
/// line with `WXGATE_LOG_FORMAT=json`; timestamps in UTC (`…Z`).
fn init_tracing() {
    use std::io::IsTerminal as _;
    let filter = tracing_subscriber::EnvFilter::try_from_env("WXGATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("wxgate=info"));
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_timer(tracing_subscriber::fmt::time::SystemTime);
    let _ = match std::env::var("WXGATE_LOG_FORMAT").as_deref() {
        Ok("json") => builder.json().with_ansi(false).try_init(),
        _ => builder.with_ansi(colour).try_init(),
    };
}

/// Creates the data directory (0700) and its database file (0600) when missing,
/// proves it is writable, and warns when an existing one is open to other users.
///
/// # Errors
/// Says which directory and why.
pub fn prepare_data_dir(dir: &Path) -> anyhow::Result<()> {
    let created = crate::storage::files::create_private_dir(dir).with_context(|| {
        format!(
            "data_dir {} cannot be created; set data_dir to a writable directory",
            dir.display()
        )
    })?;
    let probe = dir.join(".wxgate-write-test");
    std::fs::write(&probe, b"ok").with_context(|| {
        format!(
            "data_dir {} is not writable; fix its permissions or set data_dir elsewhere",
            dir.display()
        )
    })?;
    let _ = std::fs::remove_file(probe);
    if !created {
        crate::storage::files::warn_if_open(dir, "data_dir: access tokens and the inbox");
    }
    let database = dir.join(crate::storage::files::DATABASE_FILE);
    if !crate::storage::files::create_private_file(&database)
        .with_context(|| format!("cannot create {}", database.display()))?
    {
        crate::storage::files::warn_if_open(&database, "access tokens and the inbox");
    }
    Ok(())
}

/// How often the TLS files are checked for a change.
const TLS_WATCH: std::time::Duration = std::time::Duration::from_secs(2);

/// SIGHUP, registered at once: a signal that arrives before its handler runs is kept,
/// never left to the default action (which would end the process).
#[cfg(unix)]
type Hangup = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangup = Option<()>;

fn hangup_signal() -> std::io::Result<Hangup> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Some(signal(SignalKind::hangup())?))
    }
    #[cfg(not(unix))]
    {
        Ok(None)
    }
}

/// On SIGHUP, reloads the configuration file (when there is one) and the TLS pair;
/// the TLS files are also watched for changes (every [`TLS_WATCH`]). The tasks end
/// when the returned guard is dropped.
fn reload_on_signal_and_change(
    hangup: Hangup,
    tls: Option<&Arc<CertStore>>,
    state: &Arc<AppState>,
) -> AbortOnDrop {
    let mut tasks: Vec<_> = tls.iter().map(|store| store.watch(TLS_WATCH)).collect();
    #[cfg(unix)]
    if let Some(mut hangup) = hangup {
        let (tls, state) = (tls.cloned(), Arc::clone(state));
        tasks.push(tokio::spawn(async move {
            while hangup.recv().await.is_some() {
                let (tls, state) = (tls.clone(), Arc::clone(&state));
                let _ =
                    tokio::task::spawn_blocking(move || on_hangup(&state, tls.as_deref())).await;
            }
        }));
    }
    #[cfg(not(unix))]
    let _ = (hangup, state);
    AbortOnDrop(tasks)
}

/// What SIGHUP does: the configuration, then the TLS pair; each failure is logged and
/// leaves what runs as it is.
fn on_hangup(state: &AppState, tls: Option<&CertStore>) {
    match state.reload_from_file() {
        Ok(_) => {}
        Err(ReloadError::NoFile) => {
            tracing::info!("SIGHUP: the embedded demo has no configuration file to reload");
        }
        Err(error) => tracing::error!("SIGHUP: {error}"),
    }
    if let Some(store) = tls {
        if let Err(error) = store.reload("SIGHUP") {
            tracing::error!("SIGHUP: the TLS files cannot serve: {error}; the previous certificate stays in use");
        }
    }
}

/// Background tasks that end with `serve`.
struct AbortOnDrop(Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// Registers SIGTERM and SIGINT handlers now (so a signal that arrives right after
/// start-up is not lost to the default action) and resolves when one arrives.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut terminate = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = terminate.recv() => {},
                _ = interrupt.recv() => {},
            }
            tracing::info!("shutting down: finishing in-flight requests");
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("shutting down: finishing in-flight requests");
        })
    }
}

fn print_demo_banner(config: &Config, local: SocketAddr) {
    let account = &config.accounts[0];
    let timestamp = wxgate_client::clock::now().to_string();
    let nonce = "20261126";
    let signature = url_signature(account.token.expose_secret(), &timestamp, nonce);
    let base = format!("http://{local}/wx/{}", account.name);
    let plain = format!(
        "<xml><ToUserName><![CDATA[gh_demo]]></ToUserName><FromUserName><![CDATA[oDemoUser]]></FromUserName><CreateTime>{timestamp}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hello wxgate]]></Content><MsgId>{timestamp}</MsgId></xml>"
    );
    println!(
        "\nNo wxgate.toml here: running the embedded demo account (its secrets are public; `wxgate init` makes real ones).\n\
         \n  Callback URL    {base}\n  Token           {}\n  EncodingAESKey  {}\n  AppID           {}\n  Mode            {}\n\
         \nVerify it as WeChat does (URL verification, prints hello-wxgate):\n  curl '{base}?signature={signature}&timestamp={timestamp}&nonce={nonce}&echostr=hello-wxgate'\n\
         \nSend a text message (plaintext push; the reply echoes it):\n  curl -d '{plain}' '{base}?signature={signature}&timestamp={timestamp}&nonce={nonce}'\n\
         (A MsgId is answered once: sent again, even with a changed text, it gets the first answer, as WeChat's retries do. Change the MsgId to try a new message.)\n",
        account.token.expose_secret(),
        account.aes_key.as_ref().map(|k| k.to_console_string()).unwrap_or_default(),
        account.app_id,
        account.mode.as_str(),
    );
}
