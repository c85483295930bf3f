//! The inbox tables in redb, what keeps their indexes in step, and the reads and the
//! purge over them. Everything here blocks on the database: callers run it on the
//! committer thread or through `spawn_blocking`.

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

use crate::inbox::record::{DeliveryState, Record};
use crate::storage::StoreError;

/// id → record (JSON).
pub(super) const RECORDS: TableDefinition<u64, &[u8]> = TableDefinition::new("inbox");
/// `account:dedup_key` → id.
pub(super) const DEDUP: TableDefinition<&str, u64> = TableDefinition::new("inbox_dedup");
/// id → next attempt (Unix seconds), for pending records only.
pub(super) const PENDING: TableDefinition<u64, i64> = TableDefinition::new("inbox_pending");
/// (next attempt, id) → (), for pending records only: the due ones are read from the
/// front, without walking every pending record.
pub(super) const DUE: TableDefinition<(i64, u64), ()> = TableDefinition::new("inbox_due");
/// id → (), for dead letters only: counting and listing them reads no records.
pub(super) const DEAD: TableDefinition<u64, ()> = TableDefinition::new("inbox_dead");
/// `next_id` → the next id; `dead_index` → 1 once DEAD covers every record;
/// `due_index` → 1 once DUE covers every pending record.
pub(super) const META: TableDefinition<&str, u64> = TableDefinition::new("inbox_meta");

/// The dedup table's key of a message.
pub(super) fn dedup_key(account: &str, dedup_key: &str) -> String {
    format!("{account}:{dedup_key}")
}

/// The tables a record's state touches.
pub(super) struct Tables<'t> {
    pub(super) records: redb::Table<'t, u64, &'static [u8]>,
    pending: redb::Table<'t, u64, i64>,
    due: redb::Table<'t, (i64, u64), ()>,
    dead: redb::Table<'t, u64, ()>,
}

impl<'t> Tables<'t> {
    pub(super) fn open(txn: &'t redb::WriteTransaction) -> Result<Tables<'t>, StoreError> {
        Ok(Tables {
            records: txn.open_table(RECORDS)?,
            pending: txn.open_table(PENDING)?,
            due: txn.open_table(DUE)?,
            dead: txn.open_table(DEAD)?,
        })
    }

    /// Writes a record and keeps the pending, due and dead indexes in step.
    pub(super) fn write(&mut self, record: &Record) -> Result<(), StoreError> {
        if record.state == DeliveryState::Dead {
            self.dead.insert(record.id, ())?;
        } else {
            self.dead.remove(record.id)?;
        }
        self.records
            .insert(record.id, serde_json::to_vec(record)?.as_slice())?;
        let was_due = self.pending.remove(record.id)?.map(|at| at.value());
        if let Some(at) = was_due {
            self.due.remove((at, record.id))?;
        }
        if record.state == DeliveryState::Pending {
            self.pending.insert(record.id, record.next_attempt_at)?;
            self.due.insert((record.next_attempt_at, record.id), ())?;
        }
        Ok(())
    }
}

/// Creates the tables and builds the indexes an older inbox lacks.
pub(super) fn prepare(database: &Database) -> Result<(), StoreError> {
    let txn = database.begin_write()?;
    txn.open_table(RECORDS)?;
    txn.open_table(DEDUP)?;
    {
        let mut meta = txn.open_table(META)?;
        if meta.get("dead_index")?.is_none() {
            let records = txn.open_table(RECORDS)?;
            let mut dead = txn.open_table(DEAD)?;
            for entry in records.iter()? {
                let (id, bytes) = entry?;
                if serde_json::from_slice::<Record>(bytes.value())
                    .is_ok_and(|r| r.state == DeliveryState::Dead)
                {
                    dead.insert(id.value(), ())?;
                }
            }
            meta.insert("dead_index", 1)?;
        }
        if meta.get("due_index")?.is_none() {
            let pending = txn.open_table(PENDING)?;
            let mut due = txn.open_table(DUE)?;
            for entry in pending.iter()? {
                let (id, at) = entry?;
                due.insert((at.value(), id.value()), ())?;
            }
            meta.insert("due_index", 1)?;
        }
    }
    txn.commit()?;
    Ok(())
}

/// The `limit` highest ids of an index table, highest first.
fn newest_ids<V: redb::Value + 'static>(
    index: &redb::ReadOnlyTable<u64, V>,
    limit: usize,
) -> Result<Vec<u64>, StoreError> {
    let mut ids = Vec::new();
    for entry in index.iter()?.rev().take(limit) {
        ids.push(entry?.0.value());
    }
    Ok(ids)
}

fn read_record(
    records: &redb::ReadOnlyTable<u64, &[u8]>,
    id: u64,
) -> Result<Option<Record>, StoreError> {
    match records.get(id)? {
        Some(bytes) => Ok(Some(serde_json::from_slice(bytes.value())?)),
        None => Ok(None),
    }
}

/// One record.
pub(super) fn get(database: &Database, id: u64) -> Result<Option<Record>, StoreError> {
    let txn = database.begin_read()?;
    read_record(&txn.open_table(RECORDS)?, id)
}

/// Pending records whose next attempt is due, earliest first, at most `limit`.
pub(super) fn due(database: &Database, now: i64, limit: usize) -> Result<Vec<Record>, StoreError> {
    let txn = database.begin_read()?;
    let due = txn.open_table(DUE)?;
    let records = txn.open_table(RECORDS)?;
    let mut out = Vec::new();
    for entry in due.range(..=(now, u64::MAX))?.take(limit) {
        let id = entry?.0.value().1;
        out.extend(read_record(&records, id)?);
    }
    Ok(out)
}

/// Records, newest first, filtered by state, at most `limit`.
pub(super) fn list(
    database: &Database,
    state: Option<DeliveryState>,
    limit: usize,
) -> Result<Vec<Record>, StoreError> {
    let txn = database.begin_read()?;
    let records = txn.open_table(RECORDS)?;
    // Pending records and dead letters have indexes; delivered ones are most of the
    // inbox, so the newest are found by walking back from the end.
    let indexed = match state {
        Some(DeliveryState::Pending) => Some(newest_ids(&txn.open_table(PENDING)?, limit)?),
        Some(DeliveryState::Dead) => Some(newest_ids(&txn.open_table(DEAD)?, limit)?),
        _ => None,
    };
    let mut out = Vec::new();
    if let Some(ids) = indexed {
        for id in ids {
            out.extend(read_record(&records, id)?);
        }
        return Ok(out);
    }
    for entry in records.iter()?.rev() {
        let (_, bytes) = entry?;
        let record: Record = serde_json::from_slice(bytes.value())?;
        if state.is_none_or(|s| s == record.state) {
            out.push(record);
            if out.len() >= limit {
                break;
            }
        }
    }
    Ok(out)
}

/// The id of the record with this dedup key, if there is one.
pub(super) fn find(database: &Database, key: &str) -> Result<Option<u64>, StoreError> {
    let txn = database.begin_read()?;
    let dedup = txn.open_table(DEDUP)?;
    let id = dedup.get(key)?.map(|id| id.value());
    Ok(id)
}

/// How many pending records have an id of at most `id`.
pub(super) fn pending_up_to(database: &Database, id: u64) -> Result<usize, StoreError> {
    let txn = database.begin_read()?;
    let pending = txn.open_table(PENDING)?;
    let count = pending.range(..=id)?.count();
    Ok(count)
}

/// How many records are pending, delivered and dead.
pub(super) fn counts(database: &Database) -> Result<(u64, u64, u64), StoreError> {
    let txn = database.begin_read()?;
    let total = txn.open_table(RECORDS)?.len()?;
    let pending = txn.open_table(PENDING)?.len()?;
    let dead = txn.open_table(DEAD)?.len()?;
    Ok((pending, total - pending - dead, dead))
}

/// Deletes the records in `states` (never pending ones) received before `before`, in
/// one durable transaction. Returns how many were deleted.
pub(super) fn purge(
    database: &Database,
    before: i64,
    states: &[DeliveryState],
) -> Result<usize, StoreError> {
    let txn = database.begin_write()?;
    let removed = purge_in(&txn, before, states)?;
    txn.commit()?;
    Ok(removed)
}

fn purge_in(
    txn: &redb::WriteTransaction,
    before: i64,
    states: &[DeliveryState],
) -> Result<usize, StoreError> {
    let mut records = txn.open_table(RECORDS)?;
    let mut dedup = txn.open_table(DEDUP)?;
    let mut dead = txn.open_table(DEAD)?;
    let mut doomed = Vec::new();
    for entry in records.iter()? {
        let (id, bytes) = entry?;
        let record: Record = serde_json::from_slice(bytes.value())?;
        // Ids follow arrival; a minute of slack covers acceptances that committed
        // slightly out of order.
        if record.received_at >= before.saturating_add(60) {
            break;
        }
        if record.state != DeliveryState::Pending
            && states.contains(&record.state)
            && record.received_at < before
        {
            doomed.push((id.value(), dedup_key(&record.account, &record.dedup_key)));
        }
    }
    for (id, key) in &doomed {
        records.remove(id)?;
        dedup.remove(key.as_str())?;
        dead.remove(id)?;
    }
    Ok(doomed.len())
}
