//! Compliant jumps into a mini-program: `[[account.link]]` behind
//! `GET /go/{account}/{link}`.
//!
//! [`LinkService`] keeps one generated URL Link and one encrypted scheme per configured
//! link, as the credential center keeps a token: a cached read, one renewal at a time
//! per link and kind (a `tokio::Mutex` as the single-flight gate; visitors keep getting
//! the cached link while it still works), and the credential store for sharing: the
//! same `CredentialStore` as the tokens (redb, or Redis with its lease and fence), so N
//! instances and N visitors generate once. A link is renewed `renew_before_s` before
//! it expires. Each generation is counted per day ([`count`]); past `daily_cap` (or at
//! WeChat's 45009) a link with `plain_fallback` sends visitors to the plain scheme,
//! otherwise they get a clear error.
//!
//! `agent` sorts visitors by User-Agent, `page` writes the pages.

pub mod agent;
mod code;
pub mod count;
pub mod page;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde_json::json;
use sha2::{Digest, Sha256};
use wxgate_client::{Credential, CredentialCenter, CredentialStore, Fence};

pub use agent::{Answer, Visitor, MAX_AGENT_BYTES};

use crate::config::{query_char, AccountConfig, LinkConfig, LinksConfig, Prefer, QUERY_CHARS};
use count::Counter;

/// The longest `cq` a visitor may pass (WeChat's bound for the encrypted scheme).
pub const MAX_CQ: usize = 256;
/// How long a renewal may hold the shared store's lease.
const LEASE_TTL: Duration = Duration::from_secs(10);
/// How long a renewal waits for another instance's before it generates itself.
const FOREIGN_WAIT: Duration = Duration::from_secs(3);
/// How long a refused generation (a page that is not published, a wrong secret) is
/// answered from memory, so visitors of a broken link do not each call WeChat.
pub const REFUSAL_HOLD_S: i64 = 30;

/// Why a link has no answer.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// No such account or link.
    #[error("no link {link:?} on account {account:?}: links are the [[account.link]] of a mini-program account")]
    Unknown {
        /// The account asked for (bounded).
        account: String,
        /// The link asked for (bounded).
        link: String,
    },
    /// The request itself is wrong (a `cq` or User-Agent out of bounds).
    #[error("{0}")]
    BadInput(String),
    /// `links.daily_cap` is reached for the day.
    #[error("today's {cap} generated links of this mini-program are used up (links.daily_cap); the link works again after midnight (UTC+8), or raise the cap, or set plain_fallback = true on the link")]
    Capped {
        /// The cap.
        cap: u64,
    },
    /// WeChat refused with its daily quota (45009).
    #[error("WeChat's daily quota of generated links (500,000 a day for schemes and URL Links together, shared with the owner's other systems) is used up; set plain_fallback = true on the link to keep it working")]
    Quota,
    /// WeChat refused the generation, or could not be reached.
    #[error(transparent)]
    Api(#[from] wxgate_client::Error),
    /// The link has no mini-program code (`mini_program_code` is not set).
    #[error("link {0:?} shows no mini-program code; set mini_program_code = true on it")]
    NoCode(String),
    /// The same refusal within [`REFUSAL_HOLD_S`] of it: WeChat is not asked again.
    #[error("{reason} (WeChat is asked again {REFUSAL_HOLD_S} s after the refusal)")]
    Refused {
        /// The refusal, as first seen.
        reason: String,
    },
}

impl LinkError {
    /// Whether a plain scheme may stand in (a cap or quota, not a broken link).
    fn exhausted(&self) -> bool {
        matches!(self, LinkError::Capped { .. } | LinkError::Quota)
    }
}

/// The two generated kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `https://wxaurl.cn/…` (`generate_urllink`).
    UrlLink = 0,
    /// `weixin://dl/business/?t=…` (`generatescheme`).
    Scheme = 1,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::UrlLink => "urllink",
            Kind::Scheme => "scheme",
        }
    }
}

/// What a visitor is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A 302 here.
    Redirect(String),
    /// The page that tries `scheme`, then `link`.
    Mobile {
        /// A scheme (encrypted with the visitor's `cq`, or plain).
        scheme: String,
        /// The URL Link, when one could be had.
        link: Option<String>,
    },
    /// The page with the QR code of `target` and `target` as text.
    Desktop {
        /// The URL Link (or the plain scheme past the cap).
        target: String,
        /// A line under the code.
        note: String,
        /// The path of the mini-program code's image, when the link shows it.
        code: Option<String>,
    },
}

#[derive(Default)]
struct Slot {
    cached: RwLock<Option<Credential>>,
    gate: tokio::sync::Mutex<()>,
    /// The last refusal and until when it stands.
    refused: std::sync::Mutex<Option<(i64, String)>>,
}

impl Slot {
    fn read(&self) -> Option<Credential> {
        self.cached
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn put(&self, credential: &Credential) {
        *self.cached.write().unwrap_or_else(|e| e.into_inner()) = Some(credential.clone());
    }
}

struct Entry {
    account: String,
    app_id: String,
    link: LinkConfig,
    slots: [Slot; 2],
    code: code::CodeSlot,
}

impl Entry {
    /// The store key: the link's settings are hashed in, so a changed page or query is
    /// never answered with a link generated for the old one.
    fn key(&self, kind: Kind) -> String {
        let l = &self.link;
        let settings = format!("{}\n{}\n{}", l.path, l.query, l.env_version);
        let digest = hex::encode(&Sha256::digest(settings.as_bytes())[..6]);
        format!(
            "wxgate:link:{}:{}:{}:{digest}",
            self.app_id,
            l.name,
            kind.as_str()
        )
    }

    fn plain_scheme(&self) -> Option<String> {
        let l = &self.link;
        let env = wxgate_proto::urls::EnvVersion::parse(&l.env_version);
        wxgate_proto::urls::scheme_url(&self.app_id, &l.path, Some(&l.query), env).ok()
    }
}

/// The link service.
pub struct LinkService {
    entries: HashMap<(String, String), Arc<Entry>>,
    center: Arc<CredentialCenter>,
    store: Arc<dyn CredentialStore>,
    counter: Counter,
    config: LinksConfig,
    /// The day (UTC+8) on which WeChat answered 45009, per AppID: no more calls that day.
    exhausted: std::sync::Mutex<HashMap<String, i64>>,
}

impl std::fmt::Debug for LinkService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkService")
            .field("links", &self.entries.len())
            .field("config", &self.config)
            .finish()
    }
}

/// `text` cut to `max` characters, for an error that names what was asked for.
fn bounded(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// A visitor's `cq`, checked: at most [`MAX_CQ`] characters of WeChat's set.
///
/// # Errors
/// [`LinkError::BadInput`] naming the bound.
pub fn check_cq(cq: &str) -> Result<(), LinkError> {
    if cq.chars().count() > MAX_CQ || !cq.chars().all(query_char) {
        return Err(LinkError::BadInput(format!(
            "cq has at most {MAX_CQ} characters of letters, digits and {} (encode the rest)",
            QUERY_CHARS
        )));
    }
    Ok(())
}

impl LinkService {
    /// The links of `accounts`, generated through `center` and shared through `store`
    /// (the credential center's), counted in `counter`.
    pub fn new(
        accounts: &[AccountConfig],
        config: LinksConfig,
        center: Arc<CredentialCenter>,
        store: Arc<dyn CredentialStore>,
        counter: Counter,
    ) -> LinkService {
        let entries = accounts
            .iter()
            .flat_map(|account| {
                account.links.iter().map(|link| {
                    let entry = Entry {
                        account: account.name.clone(),
                        app_id: account.app_id.clone(),
                        link: link.clone(),
                        slots: Default::default(),
                        code: Default::default(),
                    };
                    ((account.name.clone(), link.name.clone()), Arc::new(entry))
                })
            })
            .collect();
        LinkService {
            entries,
            center,
            store,
            counter,
            config,
            exhausted: std::sync::Mutex::new(HashMap::new()),
        }
    }

    fn entry(&self, account: &str, link: &str) -> Result<Arc<Entry>, LinkError> {
        self.entries
            .get(&(account.to_owned(), link.to_owned()))
            .cloned()
            .ok_or_else(|| LinkError::Unknown {
                account: bounded(account, 64),
                link: bounded(link, 64),
            })
    }

    /// Whether the link shows its mini-program code.
    pub fn shows_code(&self, account: &str, link: &str) -> bool {
        self.entry(account, link)
            .is_ok_and(|entry| entry.link.mini_program_code)
    }

    /// Whether the link is configured.
    ///
    /// # Errors
    /// [`LinkError::Unknown`].
    pub fn exists(&self, account: &str, link: &str) -> Result<(), LinkError> {
        self.entry(account, link).map(|_| ())
    }

    fn fresh(&self, credential: &Credential, now: i64) -> bool {
        credential.expires_at - i64::try_from(self.config.renew_before_s).unwrap_or(0) > now
    }

    /// The current link of this kind: cached, or renewed once for every visitor and
    /// instance.
    ///
    /// # Errors
    /// [`LinkError`]: unknown, capped, WeChat's quota or another refusal.
    pub async fn current(
        &self,
        account: &str,
        link: &str,
        kind: Kind,
    ) -> Result<Credential, LinkError> {
        let entry = self.entry(account, link)?;
        let slot = &entry.slots[kind as usize];
        let now = wxgate_client::clock::now();
        let cached = slot.read();
        if let Some(cached) = cached.as_ref().filter(|c| self.fresh(c, now)) {
            return Ok(cached.clone());
        }
        // One renewal at a time; while it runs, a link that still works is handed out.
        let _gate = match (slot.gate.try_lock(), cached) {
            (Ok(gate), _) => gate,
            (Err(_), Some(cached)) if cached.expires_at > now + 60 => return Ok(cached),
            (Err(_), _) => slot.gate.lock().await,
        };
        if let Some(cached) = slot.read().filter(|c| self.fresh(c, now)) {
            return Ok(cached);
        }
        let refused = slot
            .refused
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some((_, reason)) = refused.filter(|(until, _)| *until > now) {
            return Err(LinkError::Refused { reason });
        }
        let key = entry.key(kind);
        if let Some(stored) = self.stored(&key, now).await {
            slot.put(&stored);
            return Ok(stored);
        }
        let lease = self.lease(&key, now).await;
        let lease = match lease {
            Err(stored) => {
                slot.put(&stored);
                return Ok(stored);
            }
            Ok(lease) => lease,
        };
        // Whoever takes the lease reads the store again: a renewal that ended between
        // the read above and the lease is not repeated.
        let again = match lease {
            Some(_) => self.stored(&key, now).await,
            None => None,
        };
        let result = match again {
            Some(stored) => Ok(stored),
            None => self.generate(&entry, kind, now).await,
        };
        if let Err(LinkError::Api(error)) = &result {
            let mut refused = slot.refused.lock().unwrap_or_else(|e| e.into_inner());
            *refused = Some((now + REFUSAL_HOLD_S, error.to_string()));
        }
        if let Ok(generated) = &result {
            slot.put(generated);
            if let Err(error) = self.store.save(&key, generated, lease).await {
                tracing::warn!("links: the generated {} of {}/{} is not stored ({error}); other instances generate their own", kind.as_str(), entry.account, entry.link.name);
            }
        }
        if let Some(fence) = lease {
            if let Err(error) = self.store.unlock(&key, fence).await {
                tracing::warn!("links: cannot release the lease of {key}: {error}");
            }
        }
        result
    }

    async fn stored(&self, key: &str, now: i64) -> Option<Credential> {
        match self.store.load(key).await {
            Ok(stored) => stored.filter(|c| self.fresh(c, now)),
            Err(error) => {
                tracing::warn!("links: cannot read {key} from the store: {error}");
                None
            }
        }
    }

    /// The store's lease (`Ok(Some)`), none to be had (`Ok(None)`: the store failed, or
    /// another instance held it past the wait), or the link another instance stored
    /// meanwhile (`Err`).
    async fn lease(&self, key: &str, now: i64) -> Result<Option<Fence>, Credential> {
        let started = tokio::time::Instant::now();
        loop {
            match self.store.try_lock(key, LEASE_TTL).await {
                Ok(Some(fence)) => return Ok(Some(fence)),
                Ok(None) if started.elapsed() < FOREIGN_WAIT => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    if let Some(stored) = self.stored(key, now).await {
                        return Err(stored);
                    }
                }
                Ok(None) => return Ok(None),
                Err(error) => {
                    tracing::warn!("links: no lease for {key} ({error}); generating without it");
                    return Ok(None);
                }
            }
        }
    }

    async fn generate(&self, entry: &Entry, kind: Kind, now: i64) -> Result<Credential, LinkError> {
        let today = count::day(now);
        let exhausted = || self.exhausted.lock().unwrap_or_else(|e| e.into_inner());
        if exhausted().get(&entry.app_id) == Some(&today) {
            return Err(LinkError::Quota);
        }
        let count = self.counter.add(&entry.app_id, today).await;
        let cap = self.config.daily_cap;
        if count > cap {
            if count == cap + 1 {
                tracing::warn!("links: {} reached links.daily_cap ({cap}) for today; links fall back or answer an error until midnight (UTC+8)", entry.account);
            }
            return Err(LinkError::Capped { cap });
        }
        if count == cap.saturating_mul(4).div_ceil(5) {
            tracing::warn!(
                "links: {} generated {count} links today, 80 % of links.daily_cap ({cap})",
                entry.account
            );
        }
        let expires_at = now + i64::try_from(self.config.ttl_s).unwrap_or(2_592_000);
        let l = &entry.link;
        let target = json!({ "path": l.path, "query": l.query, "env_version": l.env_version });
        let body = match kind {
            Kind::UrlLink => {
                let mut body = target;
                body["expire_type"] = json!(0);
                body["expire_time"] = json!(expires_at);
                body
            }
            Kind::Scheme => {
                json!({ "jump_wxa": target, "is_expire": true, "expire_type": 0, "expire_time": expires_at })
            }
        };
        let client = self.center.client();
        let value = self
            .center
            .with_access_token(&entry.account, |token| {
                let body = body.clone();
                async move {
                    match kind {
                        Kind::UrlLink => client.generate_urllink(&token, &body).await,
                        Kind::Scheme => client.generate_scheme(&token, &body).await,
                    }
                }
            })
            .await
            .map_err(|error| match error.errcode() {
                Some(45009) => {
                    tracing::warn!("links: WeChat's daily quota of generated links is used up for {} (45009); no more generations today", entry.account);
                    exhausted().insert(entry.app_id.clone(), today);
                    LinkError::Quota
                }
                _ => LinkError::Api(error),
            })?;
        tracing::info!(
            "links: generated the {} of {}/{} (today: {count})",
            kind.as_str(),
            entry.account,
            l.name
        );
        Ok(Credential {
            value,
            expires_at,
            fetched_at: now,
            refresh_token: None,
        })
    }

    /// The answer for a visitor of class `visitor` with an optional `cq`.
    ///
    /// # Errors
    /// [`LinkError`]: a bad `cq`, an unknown link, or no link to be had and no plain
    /// fallback.
    pub async fn resolve(
        &self,
        account: &str,
        link: &str,
        visitor: Visitor,
        cq: Option<&str>,
    ) -> Result<Target, LinkError> {
        if let Some(cq) = cq {
            check_cq(cq)?;
        }
        let entry = self.entry(account, link)?;
        let url_link = || self.current(account, link, Kind::UrlLink);
        let plain = |error: LinkError| match entry.plain_scheme() {
            Some(scheme) if error.exhausted() && entry.link.plain_fallback => Ok(scheme),
            _ => Err(error),
        };
        let code = (entry.link.mini_program_code)
            .then(|| format!("/go/{}/{}/code.png", entry.account, entry.link.name));
        match (visitor.answer(), entry.link.prefer) {
            (Answer::Desktop, _) => match url_link().await {
                Ok(link) => Ok(Target::Desktop {
                    target: link.value,
                    note: String::new(),
                    code,
                }),
                Err(error) => Ok(Target::Desktop {
                    target: plain(error)?,
                    note: "Scan it with the phone's camera, or open it on the phone.".into(),
                    code,
                }),
            },
            (Answer::RedirectToLink, _) | (Answer::Mobile, Prefer::UrlLink) => {
                match url_link().await {
                    Ok(link) => Ok(Target::Redirect(link.value)),
                    Err(error) => Ok(Target::Mobile {
                        scheme: plain(error)?,
                        link: None,
                    }),
                }
            }
            (Answer::Mobile, Prefer::Scheme) => {
                let scheme = match self.current(account, link, Kind::Scheme).await {
                    Ok(scheme) => with_cq(&scheme.value, cq),
                    Err(error) => plain(error)?,
                };
                let link = url_link().await.ok().map(|l| l.value);
                Ok(Target::Mobile { scheme, link })
            }
            (Answer::Mobile, Prefer::PlainScheme) => {
                let scheme = entry.plain_scheme().ok_or_else(|| {
                    LinkError::BadInput("the link's page cannot be a plain scheme".into())
                })?;
                let link = url_link().await.ok().map(|l| l.value);
                Ok(Target::Mobile { scheme, link })
            }
        }
    }

    /// The day's count of generations for an account's mini-program.
    pub async fn count_today(&self, account: &str, link: &str) -> Result<u64, LinkError> {
        let entry = self.entry(account, link)?;
        let day = count::day(wxgate_client::clock::now());
        Ok(self.counter.get(&entry.app_id, day).await)
    }
}

/// `scheme` with the visitor's `cq` (checked by [`check_cq`]) appended, encoded.
pub fn with_cq(scheme: &str, cq: Option<&str>) -> String {
    match cq.filter(|cq| !cq.is_empty()) {
        Some(cq) => {
            let encoded: String = url::form_urlencoded::byte_serialize(cq.as_bytes()).collect();
            format!("{scheme}&cq={encoded}")
        }
        None => scheme.to_owned(),
    }
}
