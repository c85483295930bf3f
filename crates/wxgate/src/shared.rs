//! What several instances share besides credentials: the pushes they have already
//! answered, so a WeChat retry that lands on another instance is recognised, gets the
//! same reply, and is never forwarded twice.
//!
//! Keys: `wxgate:seen:{account}:{dedup_key}` → the plain reply XML ("" for `success`),
//! expiring after [`SEEN_TTL_S`]. Redis down: each call fails; the caller logs it and
//! falls back to its own memory (retries that cross instances may then run twice).

use redis::aio::ConnectionManager;

/// How long an answered push is remembered across instances (WeChat retries within
/// about 15 s; forwarded messages may take longer).
pub const SEEN_TTL_S: u64 = 300;

/// The shared memory of answered pushes.
#[derive(Clone)]
pub struct SharedSeen {
    connection: ConnectionManager,
}

impl std::fmt::Debug for SharedSeen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedSeen")
    }
}

fn key(account: &str, dedup_key: &str) -> String {
    format!("wxgate:seen:{account}:{dedup_key}")
}

impl SharedSeen {
    /// Shares the connection of the credential store.
    pub fn new(connection: ConnectionManager) -> SharedSeen {
        SharedSeen { connection }
    }

    /// The answer another instance gave this push (`Some("")` for `success`).
    ///
    /// # Errors
    /// Redis errors.
    pub async fn get(&self, account: &str, dedup_key: &str) -> Result<Option<String>, String> {
        self.get_raw(&key(account, dedup_key)).await
    }

    /// Claims a push for this instance; false when another instance has it.
    ///
    /// # Errors
    /// Redis errors.
    pub async fn claim(&self, account: &str, dedup_key: &str) -> Result<bool, String> {
        self.claim_raw(&key(account, dedup_key), "", SEEN_TTL_S)
            .await
    }

    /// Records the answer given to a push.
    ///
    /// # Errors
    /// Redis errors.
    pub async fn put(&self, account: &str, dedup_key: &str, answer: &str) -> Result<(), String> {
        self.put_raw(&key(account, dedup_key), answer, SEEN_TTL_S)
            .await
    }

    /// `GET key`.
    ///
    /// # Errors
    /// Redis errors.
    pub async fn get_raw(&self, key: &str) -> Result<Option<String>, String> {
        let mut connection = self.connection.clone();
        redis::cmd("GET")
            .arg(key)
            .query_async(&mut connection)
            .await
            .map_err(|e| format!("redis: {e}"))
    }

    /// `SET key value NX EX ttl`: true when this call set it.
    ///
    /// # Errors
    /// Redis errors.
    pub async fn claim_raw(&self, key: &str, value: &str, ttl_s: u64) -> Result<bool, String> {
        let mut connection = self.connection.clone();
        let set: Option<String> = redis::cmd("SET")
            .arg(key)
            .arg(value)
            .arg("NX")
            .arg("EX")
            .arg(ttl_s)
            .query_async(&mut connection)
            .await
            .map_err(|e| format!("redis: {e}"))?;
        Ok(set.is_some())
    }

    /// `SET key value EX ttl`.
    ///
    /// # Errors
    /// Redis errors.
    pub async fn put_raw(&self, key: &str, value: &str, ttl_s: u64) -> Result<(), String> {
        let mut connection = self.connection.clone();
        redis::cmd("SET")
            .arg(key)
            .arg(value)
            .arg("EX")
            .arg(ttl_s)
            .query_async(&mut connection)
            .await
            .map_err(|e| format!("redis: {e}"))
    }
}
