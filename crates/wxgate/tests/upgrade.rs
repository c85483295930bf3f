//! A data_dir written by wxgate 0.1 on redb 2 (`tests/data/redb2/wxgate.redb`, see the
//! README there) opens with this version: the file is upgraded in place, a copy of the
//! original is kept, and the inbox and the credentials read back as they were.

use std::sync::Arc;

use wxgate::credentials::redb::RedbStore;
use wxgate::inbox::{Accepted, DeliveryState, LocalInbox};
use wxgate::storage::Db;
use wxgate_client::CredentialStore;

const NOW: i64 = 1_790_000_000;

fn copy_fixture(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("wxgate-upgrade-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/redb2/wxgate.redb");
    std::fs::copy(fixture, dir.join("wxgate.redb")).unwrap();
    dir
}

async fn check(db: Arc<Db>) {
    let store = RedbStore::new(db.clone()).unwrap();
    for (kind, value) in [
        ("access_token", "ACCESS_TOKEN_FROM_REDB2"),
        ("jsapi_ticket", "JSAPI_TICKET_FROM_REDB2"),
    ] {
        let credential = store
            .load(&format!("wxgate:cred:wx1234567890abcdef:{kind}"))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("the {kind} survives the upgrade"));
        assert_eq!(credential.value, value);
        assert_eq!(credential.expires_at, 4_102_444_800);
    }
    let inbox = LocalInbox::new(db, 0).unwrap();
    assert_eq!(
        inbox.counts().await.unwrap(),
        (3, 2, 1),
        "pending, delivered, dead"
    );
    let passive = inbox.get(2).await.unwrap().unwrap();
    assert_eq!(passive.state, DeliveryState::Delivered);
    assert_eq!(passive.reply_outcome.as_deref(), Some("passive"));
    assert_eq!(passive.service_reply.unwrap()["content"], "svc: message 2");
    let dead = inbox.get(3).await.unwrap().unwrap();
    assert_eq!(dead.state, DeliveryState::Dead);
    assert_eq!(dead.attempts, 9);
    // Pending records are due again, from the index built on the first open.
    let due: Vec<u64> = inbox
        .due(NOW + 3600, 10)
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(due, vec![5, 6, 4], "due in order of their next attempt");
    assert_eq!(
        inbox.due(NOW + 10, 10).await.unwrap().len(),
        2,
        "4 waits for its retry"
    );
    // WeChat's retry of an old message is still recognised; a new one gets the next id.
    assert!(matches!(
        inbox.accept(wxgate::inbox::Record::new(0, "fwd", "oUser:900002", serde_json::json!({}), NOW)).await.unwrap(),
        Accepted::Duplicate(record) if record.id == 2
    ));
    assert!(matches!(
        inbox.accept(wxgate::inbox::Record::new(0, "fwd", "oUser:900007", serde_json::json!({}), NOW)).await.unwrap(),
        Accepted::New(record) if record.id == 7
    ));
}

#[tokio::test]
async fn a_redb2_data_dir_opens_with_its_inbox_and_credentials() {
    let dir = copy_fixture("open");
    let path = dir.join("wxgate.redb");
    let original = std::fs::read(&path).unwrap();
    check(Db::open(&path).unwrap()).await;
    assert_eq!(
        std::fs::read(dir.join("wxgate.redb.redb2")).unwrap(),
        original,
        "the original is kept beside the upgraded file"
    );
}

/// A second start finds the upgraded file and opens it as it is; the kept copy is not
/// overwritten by the upgraded file.
#[tokio::test]
async fn an_upgraded_data_dir_opens_again() {
    let dir = copy_fixture("again");
    let path = dir.join("wxgate.redb");
    let original = std::fs::read(&path).unwrap();
    {
        let db = Db::open(&path).unwrap();
        let store = RedbStore::new(db).unwrap();
        drop(store);
    }
    // The recovery thread may hold the first handle for a moment.
    let mut opened = Db::open(&path);
    for _ in 0..50 {
        if opened.is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        opened = Db::open(&path);
    }
    let db = opened.unwrap();
    check(db).await;
    assert_eq!(
        std::fs::read(dir.join("wxgate.redb.redb2")).unwrap(),
        original
    );
}
