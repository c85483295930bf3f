//! HTTPS on the listen address (`[tls]`): the certificate chain and its key from PEM
//! files, checked at start-up (readable, the key belongs to the certificate, within its
//! validity), and reloaded on SIGHUP or when the files change. A reload never drops a
//! connection: each handshake takes the pair that is current when it starts, and a pair
//! that fails the checks leaves the old one serving.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

pub use crate::config::TlsConfig as TlsFiles;

/// A certificate that expires sooner than this is announced with a warning.
const EXPIRY_WARNING: Duration = Duration::from_secs(14 * 86_400);

/// Why a certificate and key cannot serve.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate file is missing or is not PEM.
    #[error("cannot read the certificate {path}: {source}; [tls] cert must be the PEM file of the whole chain, leaf first (fullchain.pem)")]
    ReadCert {
        path: String,
        source: rustls::pki_types::pem::Error,
    },
    /// The certificate file holds no certificate.
    #[error("{path} holds no certificate; [tls] cert must be the PEM file of the whole chain, leaf first (fullchain.pem)")]
    NoCert { path: String },
    /// The key file is missing or is not a PEM private key.
    #[error("cannot read the private key {path}: {source}; [tls] key must be the PEM file of the certificate's private key (privkey.pem)")]
    ReadKey {
        path: String,
        source: rustls::pki_types::pem::Error,
    },
    /// The key cannot sign (an unsupported algorithm).
    #[error("the private key {path} cannot be used: {source}; use an RSA, ECDSA (P-256, P-384) or Ed25519 key")]
    BadKey { path: String, source: rustls::Error },
    /// The key is not the certificate's.
    #[error("the private key {key} does not belong to the certificate {cert}; configure the key that was issued with this certificate")]
    Mismatch { cert: String, key: String },
    /// The leaf certificate is not X.509 as expected.
    #[error("the certificate {path} cannot be parsed: {reason}")]
    Parse { path: String, reason: String },
    /// The leaf certificate has expired.
    #[error("the certificate {path} expired at {at}; renew it (e.g. `certbot renew`), then reload wxgate (SIGHUP) or let it notice the new files")]
    Expired { path: String, at: String },
    /// The leaf certificate is not valid yet.
    #[error("the certificate {path} is not valid before {at}; check this machine's clock")]
    NotYetValid { path: String, at: String },
}

/// A time as UTC text, for messages.
fn utc(seconds: i64) -> String {
    u64::try_from(seconds)
        .ok()
        .and_then(|s| SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(s)))
        .map_or_else(
            || format!("{seconds} (Unix seconds)"),
            |t| humantime::format_rfc3339_seconds(t).to_string(),
        )
}

/// Reads and checks a certificate chain and its key. Returns the pair and when the
/// leaf expires (Unix seconds).
///
/// # Errors
/// A [`TlsError`] naming the file and what to do.
pub fn load(files: &TlsFiles, now: SystemTime) -> Result<(Arc<CertifiedKey>, i64), TlsError> {
    let cert_path = files.cert.display().to_string();
    let key_path = files.key.display().to_string();
    let chain = CertificateDer::pem_file_iter(&files.cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|source| TlsError::ReadCert {
            path: cert_path.clone(),
            source,
        })?;
    let Some(leaf) = chain.first() else {
        return Err(TlsError::NoCert { path: cert_path });
    };
    let not_after = check_validity(leaf, &cert_path, now)?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|source| TlsError::ReadKey {
        path: key_path.clone(),
        source,
    })?;
    let provider = rustls::crypto::ring::default_provider();
    let signer = provider
        .key_provider
        .load_private_key(key)
        .map_err(|source| TlsError::BadKey {
            path: key_path.clone(),
            source,
        })?;
    let pair = CertifiedKey::new(chain, signer);
    match pair.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok((Arc::new(pair), not_after))
        }
        Err(_) => Err(TlsError::Mismatch {
            cert: cert_path,
            key: key_path,
        }),
    }
}

/// The leaf's validity against `now`; returns its end (Unix seconds).
fn check_validity(leaf: &CertificateDer<'_>, path: &str, now: SystemTime) -> Result<i64, TlsError> {
    let (_, parsed) =
        x509_parser::parse_x509_certificate(leaf.as_ref()).map_err(|e| TlsError::Parse {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    let validity = parsed.validity();
    let now = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let (start, end) = (
        validity.not_before.timestamp(),
        validity.not_after.timestamp(),
    );
    if now > end {
        return Err(TlsError::Expired {
            path: path.to_owned(),
            at: utc(end),
        });
    }
    if now < start {
        return Err(TlsError::NotYetValid {
            path: path.to_owned(),
            at: utc(start),
        });
    }
    Ok(end)
}

/// What a file looked like when last read: its modification time and length.
type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// The pair every handshake uses, swapped by [`CertStore::reload`].
pub struct CertStore {
    files: TlsFiles,
    current: RwLock<Arc<CertifiedKey>>,
    /// The files' stamps at the last read, for [`CertStore::watch`].
    seen: Mutex<(Stamp, Stamp)>,
}

impl std::fmt::Debug for CertStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertStore")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl CertStore {
    /// Reads and checks the pair.
    ///
    /// # Errors
    /// A [`TlsError`]: `serve` does not start.
    pub fn open(files: TlsFiles) -> Result<Arc<CertStore>, TlsError> {
        let seen = (stamp(&files.cert), stamp(&files.key));
        let (pair, not_after) = load(&files, SystemTime::now())?;
        announce(&files, not_after, "serving");
        Ok(Arc::new(CertStore {
            files,
            current: RwLock::new(pair),
            seen: Mutex::new(seen),
        }))
    }

    /// Reads the files again; a pair that passes the checks serves the next handshakes.
    /// `why` goes to the log line.
    ///
    /// # Errors
    /// A [`TlsError`]: the pair in use stays.
    pub fn reload(&self, why: &str) -> Result<(), TlsError> {
        *self.seen.lock().unwrap_or_else(PoisonError::into_inner) =
            (stamp(&self.files.cert), stamp(&self.files.key));
        let (pair, not_after) = load(&self.files, SystemTime::now())?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = pair;
        announce(&self.files, not_after, &format!("reloaded ({why})"));
        Ok(())
    }

    /// Reloads (logging the outcome) when either file has changed since the last read.
    /// Returns whether it tried.
    pub fn reload_if_changed(&self) -> bool {
        let now = (stamp(&self.files.cert), stamp(&self.files.key));
        if *self.seen.lock().unwrap_or_else(PoisonError::into_inner) == now {
            return false;
        }
        if let Err(error) = self.reload("the files changed") {
            tracing::error!("the TLS files changed but cannot serve: {error}; the previous certificate stays in use");
        }
        true
    }

    /// Checks the files for changes every `every` until the task is aborted.
    pub fn watch(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let store = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let store = Arc::clone(&store);
                let _ = tokio::task::spawn_blocking(move || store.reload_if_changed()).await;
            }
        })
    }

    /// The acceptor of the listen address: TLS 1.2 and 1.3 on the ring provider,
    /// HTTP/1.1, with this store's current pair.
    ///
    /// # Panics
    /// Never: the ring provider supports the default protocol versions.
    pub fn acceptor(self: &Arc<Self>) -> tokio_rustls::TlsAcceptor {
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("ring supports TLS 1.2 and 1.3")
        .with_no_client_auth()
        .with_cert_resolver(Arc::clone(self) as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(
            &self.current.read().unwrap_or_else(PoisonError::into_inner),
        ))
    }
}

/// Logs the pair in use and warns when it expires soon.
fn announce(files: &TlsFiles, not_after: i64, what: &str) {
    let left = not_after.saturating_sub(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
    );
    if left < EXPIRY_WARNING.as_secs() as i64 {
        tracing::warn!(
            "TLS certificate {} expires at {} (in {} days): renew it",
            files.cert.display(),
            utc(not_after),
            left / 86_400
        );
    } else {
        tracing::info!(
            "TLS {what}: {} (expires at {})",
            files.cert.display(),
            utc(not_after)
        );
    }
}
