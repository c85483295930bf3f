//! The console's sessions: a random id in a cookie (never the admin token), kept
//! server-side with an expiry and a bound on their number, each with its own CSRF
//! token; and the limit on wrong admin tokens per peer.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::RngExt;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The most sessions kept; signing in beyond evicts the oldest.
pub const MAX_SESSIONS: usize = 32;
/// A session ends this long after its last use.
pub const IDLE: Duration = Duration::from_secs(3600);
/// A session ends this long after sign-in, however used.
pub const LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Wrong tokens a peer may give per [`WINDOW`] before it is refused until the window ends.
pub const WRONG_TOKENS: u32 = 5;
/// The window of [`WRONG_TOKENS`].
pub const WINDOW: Duration = Duration::from_secs(60);
const MAX_PEERS: usize = 4096;

struct Session {
    csrf: String,
    created: Instant,
    used: Instant,
}

/// The signed-in sessions, keyed by the SHA-256 of their id: the map's lookup never
/// compares a guessed id with a real one. `Debug` shows only how many there are.
#[derive(Default)]
pub struct Sessions {
    inner: Mutex<HashMap<[u8; 32], Session>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("len", &self.len())
            .finish()
    }
}

fn random_hex() -> String {
    hex::encode(rand::rng().random::<[u8; 32]>())
}

fn key(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

impl Sessions {
    /// Opens a session; returns its id (for the cookie).
    pub fn create(&self, now: Instant) -> String {
        let id = random_hex();
        let mut sessions = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        sessions.retain(|_, s| live(s, now));
        if sessions.len() >= MAX_SESSIONS {
            if let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, s)| s.created)
                .map(|(k, _)| *k)
            {
                sessions.remove(&oldest);
            }
        }
        sessions.insert(
            key(&id),
            Session {
                csrf: random_hex(),
                created: now,
                used: now,
            },
        );
        id
    }

    /// The CSRF token of the live session `id`, which counts as used now.
    pub fn csrf(&self, id: &str, now: Instant) -> Option<String> {
        let mut sessions = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let key = key(id);
        let session = sessions.get_mut(&key)?;
        if !live(session, now) {
            sessions.remove(&key);
            return None;
        }
        session.used = now;
        Some(session.csrf.clone())
    }

    /// Whether `given` is the CSRF token of the live session `id` (compared in
    /// constant time).
    pub fn check_csrf(&self, id: &str, given: &str, now: Instant) -> bool {
        self.csrf(id, now).is_some_and(|csrf| {
            given.len() == csrf.len() && bool::from(given.as_bytes().ct_eq(csrf.as_bytes()))
        })
    }

    /// Ends the session `id`.
    pub fn remove(&self, id: &str) {
        let mut sessions = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        sessions.remove(&key(id));
    }

    /// How many sessions are kept.
    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn live(session: &Session, now: Instant) -> bool {
    now.duration_since(session.used) < IDLE && now.duration_since(session.created) < LIFETIME
}

/// Wrong admin tokens per peer address, in fixed windows.
#[derive(Debug, Default)]
pub struct WrongTokens {
    inner: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl WrongTokens {
    /// `Some(seconds to wait)` when `peer` gave [`WRONG_TOKENS`] wrong tokens in this
    /// window (or too many peers are tracked to track one more).
    pub fn blocked(&self, peer: IpAddr, now: Instant) -> Option<u64> {
        let mut peers = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        match peers.get(&peer) {
            Some((start, count)) if now.duration_since(*start) < WINDOW => (*count >= WRONG_TOKENS)
                .then(|| (WINDOW - now.duration_since(*start)).as_secs().max(1)),
            _ => {
                if peers.len() >= MAX_PEERS {
                    peers.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
                }
                (peers.len() >= MAX_PEERS).then_some(WINDOW.as_secs())
            }
        }
    }

    /// Counts a wrong token from `peer`.
    pub fn count(&self, peer: IpAddr, now: Instant) {
        let mut peers = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let entry = peers.entry(peer).or_insert((now, 0));
        if now.duration_since(entry.0) >= WINDOW {
            *entry = (now, 0);
        }
        entry.1 += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_are_bounded_and_check_their_csrf_token() {
        let sessions = Sessions::default();
        let t0 = Instant::now();
        let id = sessions.create(t0);
        let csrf = sessions.csrf(&id, t0).unwrap();
        assert!(sessions.check_csrf(&id, &csrf, t0));
        assert!(!sessions.check_csrf(&id, &random_hex(), t0));
        assert!(!sessions.check_csrf(&random_hex(), &csrf, t0));
        assert!(sessions.csrf(&id, t0 + IDLE).is_none(), "idle too long");
        let id = sessions.create(t0);
        assert!(sessions.csrf(&id, t0 + IDLE / 2).is_some());
        for _ in 0..MAX_SESSIONS {
            sessions.create(t0 + Duration::from_secs(1));
        }
        assert_eq!(sessions.len(), MAX_SESSIONS);
        assert_eq!(
            format!("{sessions:?}"),
            "Sessions { len: 32 }",
            "no id, no CSRF token"
        );
        assert!(
            sessions.csrf(&id, t0 + Duration::from_secs(2)).is_none(),
            "the oldest went"
        );
    }

    #[test]
    fn wrong_tokens_block_a_peer_for_the_window() {
        let wrong = WrongTokens::default();
        let peer: IpAddr = "127.0.0.1".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..WRONG_TOKENS {
            assert_eq!(wrong.blocked(peer, t0), None);
            wrong.count(peer, t0);
        }
        assert_eq!(wrong.blocked(peer, t0), Some(60));
        assert_eq!(wrong.blocked("127.0.0.2".parse().unwrap(), t0), None);
        assert_eq!(wrong.blocked(peer, t0 + WINDOW), None);
    }
}
