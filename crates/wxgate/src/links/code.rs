//! The mini-program code of a link (`getwxacodeunlimit`): its `scene` is the link's
//! name (at most 32 characters of WeChat's set, which the names' `[A-Za-z0-9_-]` is
//! within) and its page the link's path. A code never expires, so it is fetched once
//! per process, one fetch at a time; a refusal is answered from memory for
//! [`super::REFUSAL_HOLD_S`].

use std::sync::{Mutex, RwLock};

use bytes::Bytes;
use serde_json::json;

use super::{LinkError, LinkService, REFUSAL_HOLD_S};

/// A link's code, once fetched.
#[derive(Default)]
pub(super) struct CodeSlot {
    image: RwLock<Option<Bytes>>,
    gate: tokio::sync::Mutex<()>,
    refused: Mutex<Option<(i64, String)>>,
}

impl CodeSlot {
    fn read(&self) -> Option<Bytes> {
        self.image.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl LinkService {
    /// The image of the link's mini-program code (PNG or JPEG, as WeChat sends it).
    ///
    /// # Errors
    /// [`LinkError`]: unknown link, no code configured, WeChat's refusal.
    pub async fn code(&self, account: &str, link: &str) -> Result<Bytes, LinkError> {
        let entry = self.entry(account, link)?;
        if !entry.link.mini_program_code {
            return Err(LinkError::NoCode(entry.link.name.clone()));
        }
        let slot = &entry.code;
        if let Some(image) = slot.read() {
            return Ok(image);
        }
        let _gate = slot.gate.lock().await;
        if let Some(image) = slot.read() {
            return Ok(image);
        }
        let now = wxgate_client::clock::now();
        let refused = slot
            .refused
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some((_, reason)) = refused.filter(|(until, _)| *until > now) {
            return Err(LinkError::Refused { reason });
        }
        let l = &entry.link;
        let body = json!({ "scene": l.name, "page": l.path, "env_version": l.env_version, "check_path": true, "width": 430 });
        let client = self.center.client();
        let fetched = self
            .center
            .with_access_token(&entry.account, |token| {
                let body = body.clone();
                async move { client.get_wxacode_unlimit(&token, &body).await }
            })
            .await;
        match fetched {
            Ok(image) => {
                let image = Bytes::from(image);
                *slot.image.write().unwrap_or_else(|e| e.into_inner()) = Some(image.clone());
                Ok(image)
            }
            Err(error) => {
                let mut refused = slot.refused.lock().unwrap_or_else(|e| e.into_inner());
                *refused = Some((now + REFUSAL_HOLD_S, error.to_string()));
                Err(LinkError::Api(error))
            }
        }
    }
}
