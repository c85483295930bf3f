//! The database handle and the redb credential store.

use super::*;
use crate::credentials::redb::RedbStore;
use wxgate_client::Credential;

fn temp_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wxgate-redb-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("wxgate.redb")
}

#[test]
fn credentials_survive_reopening() {
    let path = temp_path("reopen");
    let credential = Credential {
        value: "tok".into(),
        expires_at: 100,
        fetched_at: 1,
        refresh_token: None,
    };
    {
        let store = RedbStore::new(Db::open(&path).unwrap()).unwrap();
        assert_eq!(store.read("k").unwrap(), None);
        store.write("k", &credential).unwrap();
    }
    let store = RedbStore::new(Db::open(&path).unwrap()).unwrap();
    assert_eq!(store.read("k").unwrap(), Some(credential));
}

#[test]
fn a_second_open_of_the_same_file_says_what_to_check() {
    let path = temp_path("twice");
    let _first = Db::open(&path).unwrap();
    let error = Db::open(&path).unwrap_err().to_string();
    assert!(error.contains("another wxgate"), "{error}");
}

/// A recovery reopens the file and commits a probe; the holders keep working through
/// the same `Db`, on the new handle.
#[test]
fn a_recovery_switches_every_holder_to_the_new_handle() {
    let path = temp_path("recover");
    let db = Db::open(&path).unwrap();
    let store = RedbStore::new(db.clone()).unwrap();
    let credential = Credential {
        value: "before".into(),
        expires_at: 100,
        fetched_at: 1,
        refresh_token: None,
    };
    store.write("k", &credential).unwrap();
    db.fail(&StoreError::Redb(redb::Error::PreviousIo));
    assert!(db.failure().unwrap().contains("Previous I/O error"));
    db.recover();
    assert_eq!(db.failure(), None, "the probe committed");
    assert_eq!(store.read("k").unwrap(), Some(credential));
    let after = Credential {
        value: "after".into(),
        expires_at: 200,
        fetched_at: 2,
        refresh_token: None,
    };
    store.write("k", &after).unwrap();
    assert_eq!(store.read("k").unwrap(), Some(after));
}
