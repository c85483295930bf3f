//! What several instances share besides credentials and the inbox: the pushes they
//! have answered from the rules, so a WeChat retry that lands on another instance is
//! recognised and gets the same reply. (Forwarded pushes are recognised by the Redis
//! inbox itself.)
//!
//! Keys: `wxgate:seen:{account}:{dedup_key}` → the plain reply XML ("" for `success`),
//! expiring after [`SEEN_TTL_S`]. Redis down: each call fails; the caller logs it and
//! falls back to its own memory (retries that cross instances may then run twice).

use super::error::RedisError;
use super::link::RedisLink;

/// How long an answered push is remembered across instances (WeChat retries within
/// about 15 s; forwarded messages may take longer).
pub const SEEN_TTL_S: u64 = 300;

/// The shared memory of answered pushes.
#[derive(Clone)]
pub struct SharedSeen {
    link: RedisLink,
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
    /// Shares the link of the credential store.
    pub fn new(link: RedisLink) -> SharedSeen {
        SharedSeen { link }
    }

    /// The link, for the inbox's queue.
    pub fn link(&self) -> RedisLink {
        self.link.clone()
    }

    /// Checks that Redis answers.
    ///
    /// # Errors
    /// Redis errors.
    pub async fn ping(&self) -> Result<(), RedisError> {
        let _: String = self.link.query(&redis::cmd("PING")).await?;
        Ok(())
    }

    /// Redis's `appendonly` and `appendfsync` settings, when `CONFIG GET` is allowed
    /// (managed Redis services often rename or forbid it).
    ///
    /// # Errors
    /// Redis errors, or CONFIG refused.
    pub async fn persistence(&self) -> Result<(String, String), RedisError> {
        let get = |name: &'static str| async move {
            let pair: Vec<String> = self
                .link
                .query(redis::cmd("CONFIG").arg("GET").arg(name))
                .await?;
            pair.get(1)
                .cloned()
                .ok_or_else(|| RedisError::NoValue(format!("CONFIG GET {name}")))
        };
        Ok((get("appendonly").await?, get("appendfsync").await?))
    }

    /// A push answered from the rules, with other instances: a retry that another
    /// instance already answered gets that answer (and counts as a duplicate);
    /// otherwise this answer is recorded for the others, in the same round trip. When
    /// Redis cannot be reached, this instance's own memory answers alone.
    pub async fn answer_once(
        &self,
        name: &str,
        dedup_key: &str,
        plain: Option<String>,
    ) -> (Option<String>, crate::metrics::Outcome) {
        use crate::metrics::Outcome;
        let answer = plain.as_deref().unwrap_or_default();
        match self.first_answer(name, dedup_key, answer).await {
            Ok(Some(earlier)) => ((!earlier.is_empty()).then_some(earlier), Outcome::Duplicate),
            Ok(None) => (plain, Outcome::Ok),
            Err(error) => {
                tracing::warn!(account = %name, "shared dedup unavailable ({error}); this instance's own memory is used");
                (plain, Outcome::Ok)
            }
        }
    }

    /// Records `answer` for a push unless another instance answered it first, in one
    /// round trip (`SET NX GET`, Redis 7). Returns that earlier answer, or `None` when
    /// this one was recorded. Older Redis: `GET`, then `SET NX`.
    ///
    /// # Errors
    /// Redis errors.
    pub async fn first_answer(
        &self,
        account: &str,
        dedup_key: &str,
        answer: &str,
    ) -> Result<Option<String>, RedisError> {
        let key = key(account, dedup_key);
        let earlier: Result<Option<String>, RedisError> = self
            .link
            .query(
                redis::cmd("SET")
                    .arg(&key)
                    .arg(answer)
                    .arg("NX")
                    .arg("GET")
                    .arg("EX")
                    .arg(SEEN_TTL_S),
            )
            .await;
        match earlier {
            // Redis before 7.0 refuses NX with GET. (The tests run Redis 7, so this
            // branch is not exercised by them.)
            Err(error) if error.is_syntax_refusal() => {
                if let Some(earlier) = self.get_raw(&key).await? {
                    return Ok(Some(earlier));
                }
                self.claim_raw(&key, answer, SEEN_TTL_S).await?;
                Ok(None)
            }
            other => other,
        }
    }

    /// `GET key`.
    ///
    /// # Errors
    /// Redis errors.
    pub async fn get_raw(&self, key: &str) -> Result<Option<String>, RedisError> {
        self.link.query(redis::cmd("GET").arg(key)).await
    }

    /// `SET key value NX EX ttl`: true when this call set it.
    ///
    /// # Errors
    /// Redis errors.
    pub async fn claim_raw(&self, key: &str, value: &str, ttl_s: u64) -> Result<bool, RedisError> {
        let set: Option<String> = self
            .link
            .query(
                redis::cmd("SET")
                    .arg(key)
                    .arg(value)
                    .arg("NX")
                    .arg("EX")
                    .arg(ttl_s),
            )
            .await?;
        Ok(set.is_some())
    }

    /// `SET key value EX ttl`.
    ///
    /// # Errors
    /// Redis errors.
    pub async fn put_raw(&self, key: &str, value: &str, ttl_s: u64) -> Result<(), RedisError> {
        self.link
            .query(redis::cmd("SET").arg(key).arg(value).arg("EX").arg(ttl_s))
            .await
    }
}
