//! [`ComponentStore`]: what third-party platforms' notifies said, durable in the
//! process's database before WeChat gets `success`.
//!
//! * `component_tickets`: platform AppID → the latest `component_verify_ticket` and
//!   its CreateTime. An older push never replaces a newer ticket.
//! * `component_authorizers`: `{platform}:{authorizer}` → the authorizer's latest event
//!   (`authorized`, `updateauthorized` or `unauthorized`), with the authorization code
//!   of the first two. An older event never replaces a newer one.
//!
//! Every read and write runs on tokio's blocking pool (redb blocks), and every write is
//! an fsync'd commit.

use std::sync::Arc;

use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use wxgate_proto::component::{Info, Notify};

use crate::storage::{Db, StoreError};

const TICKETS: TableDefinition<&str, &[u8]> = TableDefinition::new("component_tickets");
const AUTHORIZERS: TableDefinition<&str, &[u8]> = TableDefinition::new("component_authorizers");

/// The latest ticket of a platform.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredTicket {
    /// The ticket.
    pub ticket: String,
    /// WeChat's CreateTime of its push.
    pub create_time: i64,
}

impl std::fmt::Debug for StoredTicket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredTicket")
            .field("ticket", &"[REDACTED]")
            .field("create_time", &self.create_time)
            .finish()
    }
}

/// An authorizer's latest event.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizerEvent {
    /// `authorized`, `updateauthorized` or `unauthorized`.
    pub info_type: String,
    /// WeChat's CreateTime of the notify.
    pub create_time: i64,
    /// The authorization code of `authorized` and `updateauthorized`.
    pub authorization_code: Option<String>,
    /// When that code expires (Unix seconds).
    pub code_expires_at: Option<i64>,
}

impl std::fmt::Debug for AuthorizerEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthorizerEvent")
            .field("info_type", &self.info_type)
            .field("create_time", &self.create_time)
            .field(
                "authorization_code",
                &self.authorization_code.as_ref().map(|_| "[REDACTED]"),
            )
            .field("code_expires_at", &self.code_expires_at)
            .finish()
    }
}

/// The durable record of platforms' notifies.
#[derive(Debug, Clone)]
pub struct ComponentStore {
    db: Arc<Db>,
}

impl ComponentStore {
    /// The store inside an opened database (its tables created).
    ///
    /// # Errors
    /// The tables cannot be created.
    pub fn new(db: Arc<Db>) -> Result<ComponentStore, StoreError> {
        db.write(|database| {
            let txn = database.begin_write()?;
            txn.open_table(TICKETS)?;
            txn.open_table(AUTHORIZERS)?;
            txn.commit()?;
            Ok(())
        })?;
        Ok(ComponentStore { db })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Db) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || work(&db))
            .await
            .unwrap_or_else(|join| {
                Err(StoreError::Reopening {
                    path: "wxgate.redb".into(),
                    reason: join.to_string(),
                })
            })
    }

    /// Records what `notify` says for the platform `component` (its AppID), durably,
    /// unless a newer record of the same thing is stored. Other InfoTypes are not kept.
    ///
    /// # Errors
    /// The database cannot be read or written.
    pub async fn record(&self, component: &str, notify: &Notify) -> Result<(), StoreError> {
        let (table, key, create_time, value) = match &notify.info {
            Info::VerifyTicket(ticket) => {
                let stored = StoredTicket {
                    ticket: ticket.clone(),
                    create_time: notify.create_time,
                };
                (
                    TICKETS,
                    component.to_owned(),
                    notify.create_time,
                    serde_json::to_vec(&stored)?,
                )
            }
            Info::Authorized(auth) | Info::UpdateAuthorized(auth) => {
                let event = AuthorizerEvent {
                    info_type: notify.info.info_type().to_owned(),
                    create_time: notify.create_time,
                    authorization_code: Some(auth.authorization_code.clone()),
                    code_expires_at: Some(auth.code_expires_at),
                };
                let key = format!("{component}:{}", auth.authorizer_app_id);
                (
                    AUTHORIZERS,
                    key,
                    notify.create_time,
                    serde_json::to_vec(&event)?,
                )
            }
            Info::Unauthorized { authorizer_app_id } => {
                let event = AuthorizerEvent {
                    info_type: "unauthorized".to_owned(),
                    create_time: notify.create_time,
                    authorization_code: None,
                    code_expires_at: None,
                };
                let key = format!("{component}:{authorizer_app_id}");
                (
                    AUTHORIZERS,
                    key,
                    notify.create_time,
                    serde_json::to_vec(&event)?,
                )
            }
            Info::Other(_) => return Ok(()),
        };
        self.blocking(move |db| write_latest(db, table, &key, create_time, &value))
            .await
    }

    /// The latest ticket stored for the platform `component` (its AppID).
    ///
    /// # Errors
    /// The database cannot be read.
    pub async fn ticket(&self, component: &str) -> Result<Option<StoredTicket>, StoreError> {
        let key = component.to_owned();
        self.blocking(move |db| read(db, TICKETS, &key)).await
    }

    /// The latest event stored for an authorizer of the platform `component`.
    ///
    /// # Errors
    /// The database cannot be read.
    pub async fn authorizer(
        &self,
        component: &str,
        authorizer: &str,
    ) -> Result<Option<AuthorizerEvent>, StoreError> {
        let key = format!("{component}:{authorizer}");
        self.blocking(move |db| read(db, AUTHORIZERS, &key)).await
    }
}

impl ComponentStore {
    /// Every authorizer of the platform `component` with its latest event, by AppID.
    ///
    /// # Errors
    /// The database cannot be read.
    pub async fn authorizers(
        &self,
        component: &str,
    ) -> Result<Vec<(String, AuthorizerEvent)>, StoreError> {
        let prefix = format!("{component}:");
        self.blocking(move |db| {
            db.with(|database| {
                let txn = database.begin_read()?;
                let table = txn.open_table(AUTHORIZERS)?;
                let mut out = Vec::new();
                for entry in table.range(prefix.as_str()..)? {
                    let (key, value) = entry?;
                    let Some(app_id) = key.value().strip_prefix(&prefix) else {
                        break;
                    };
                    out.push((app_id.to_owned(), serde_json::from_slice(value.value())?));
                }
                Ok(out)
            })
        })
        .await
    }
}

/// Both kinds of record carry `create_time`: a write only replaces an older one.
#[derive(Deserialize)]
struct Dated {
    create_time: i64,
}

fn write_latest(
    db: &Db,
    table: TableDefinition<&str, &[u8]>,
    key: &str,
    create_time: i64,
    value: &[u8],
) -> Result<(), StoreError> {
    db.write(|database| {
        let txn = database.begin_write()?;
        {
            let mut opened = txn.open_table(table)?;
            let newer = match opened.get(key)? {
                Some(stored) => serde_json::from_slice::<Dated>(stored.value())
                    .is_ok_and(|d| d.create_time > create_time),
                None => false,
            };
            if !newer {
                opened.insert(key, value)?;
            }
        }
        txn.commit()?;
        Ok(())
    })
}

fn read<T: for<'de> Deserialize<'de>>(
    db: &Db,
    table: TableDefinition<&str, &[u8]>,
    key: &str,
) -> Result<Option<T>, StoreError> {
    db.with(|database| {
        let txn = database.begin_read()?;
        let opened = txn.open_table(table)?;
        let Some(value) = opened.get(key)? else {
            return Ok(None);
        };
        Ok(Some(serde_json::from_slice(value.value())?))
    })
}
