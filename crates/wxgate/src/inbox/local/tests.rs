//! The redb inbox: states, indexes, purge and retention.

use std::sync::Arc;

use serde_json::json;

use super::tables::{DEAD, DUE, META};
use super::*;
use crate::inbox::{Accepted, DeliveryState, Record};

fn temp_db(name: &str) -> (std::path::PathBuf, Arc<Db>) {
    let dir = std::env::temp_dir().join(format!("wxgate-inbox-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("wxgate.redb");
    let db = Db::open(&path).unwrap();
    (path, db)
}

async fn stored(inbox: &LocalInbox, key: &str, received_at: i64) -> Record {
    match inbox
        .accept(Record::new(
            0,
            "acct",
            key,
            json!({ "msg_id": key }),
            received_at,
        ))
        .await
        .unwrap()
    {
        Accepted::New(record) => record,
        Accepted::Duplicate(record) => panic!("{key} already stored: {record:?}"),
    }
}

async fn finish(inbox: &LocalInbox, mut record: Record, state: DeliveryState) {
    record.state = state;
    inbox.update(&record).await.unwrap();
}

const DAY: i64 = 86_400;
const NOW: i64 = 1_790_000_000;

#[tokio::test]
async fn states_are_counted_and_listed_from_their_indexes() {
    let (_, db) = temp_db("states");
    let inbox = LocalInbox::new(db, 0).unwrap();
    let delivered = stored(&inbox, "m:1", NOW).await;
    let dead = stored(&inbox, "m:2", NOW).await;
    let pending = stored(&inbox, "m:3", NOW).await;
    finish(&inbox, delivered.clone(), DeliveryState::Delivered).await;
    finish(&inbox, dead.clone(), DeliveryState::Dead).await;
    assert_eq!(inbox.counts().await.unwrap(), (1, 1, 1));
    let ids = |records: Vec<Record>| records.iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(
        ids(inbox.list(Some(DeliveryState::Dead), 10).await.unwrap()),
        vec![dead.id]
    );
    assert_eq!(
        ids(inbox.list(Some(DeliveryState::Pending), 10).await.unwrap()),
        vec![pending.id]
    );
    assert_eq!(
        ids(inbox
            .list(Some(DeliveryState::Delivered), 10)
            .await
            .unwrap()),
        vec![delivered.id]
    );
    assert_eq!(
        ids(inbox.list(None, 2).await.unwrap()),
        vec![pending.id, dead.id]
    );
    // A dead letter retried and delivered leaves the dead index.
    finish(&inbox, dead, DeliveryState::Delivered).await;
    assert_eq!(inbox.counts().await.unwrap(), (1, 2, 0));
    assert!(inbox
        .list(Some(DeliveryState::Dead), 10)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn purge_takes_only_the_asked_states_and_never_pending() {
    let (_, db) = temp_db("purge");
    let inbox = LocalInbox::new(db, 0).unwrap();
    let old_delivered = stored(&inbox, "m:1", NOW - 10 * DAY).await;
    let old_dead = stored(&inbox, "m:2", NOW - 10 * DAY).await;
    stored(&inbox, "m:3", NOW - 10 * DAY).await; // still pending
    let new_delivered = stored(&inbox, "m:4", NOW).await;
    finish(&inbox, old_delivered, DeliveryState::Delivered).await;
    finish(&inbox, old_dead, DeliveryState::Dead).await;
    finish(&inbox, new_delivered, DeliveryState::Delivered).await;

    // The retention: delivered records older than 7 days.
    assert_eq!(
        inbox
            .purge(NOW - 7 * DAY, &[DeliveryState::Delivered])
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        inbox.counts().await.unwrap(),
        (1, 1, 1),
        "dead and pending stay"
    );
    // `wxgate inbox purge`: delivered and dead.
    assert_eq!(
        inbox
            .purge(NOW + 1, &[DeliveryState::Delivered, DeliveryState::Dead])
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        inbox.counts().await.unwrap(),
        (1, 0, 0),
        "pending is never purged"
    );
    // A purged record's dedup key is gone: the same key is a new message again.
    assert!(matches!(
        inbox
            .accept(Record::new(0, "acct", "m:1", json!({}), NOW))
            .await
            .unwrap(),
        Accepted::New(_)
    ));
}

/// An inbox written before the dead index existed gets the index when it is opened.
#[tokio::test]
async fn the_dead_index_is_built_for_an_older_inbox() {
    let (path, db) = temp_db("migrate");
    {
        let inbox = LocalInbox::new(db.clone(), 0).unwrap();
        let dead = stored(&inbox, "m:1", NOW).await;
        stored(&inbox, "m:2", NOW).await;
        finish(&inbox, dead, DeliveryState::Dead).await;
        // Make it look like an older inbox: no dead or due index, no markers.
        db.write(|database| {
            let txn = database.begin_write()?;
            txn.delete_table(DEAD)?;
            txn.delete_table(DUE)?;
            let mut meta = txn.open_table(META)?;
            meta.remove("dead_index")?;
            meta.remove("due_index")?;
            drop(meta);
            txn.commit()?;
            Ok(())
        })
        .unwrap();
    }
    drop(db);
    // The committer thread of the first inbox still holds the database; wait for it
    // to let go by opening a fresh handle on the same file.
    let db = loop {
        match Db::open(&path) {
            Ok(db) => break db,
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
        }
    };
    let inbox = LocalInbox::new(db, 0).unwrap();
    assert_eq!(inbox.counts().await.unwrap(), (1, 0, 1));
    let due: Vec<u64> = inbox
        .due(NOW, 10)
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(
        due,
        vec![2],
        "the pending record is due again from the rebuilt index"
    );
}
