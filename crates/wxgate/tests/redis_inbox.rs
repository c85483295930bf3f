//! The Redis inbox (records, and the delivery queue on a stream with a consumer group)
//! against the real redis-server that `scripts/test.sh` starts. Each queue here stands
//! for one wxgate instance.

mod common;

use std::time::Duration;

use common::{flush, now, redis_url};
use serde_json::json;
use wxgate::inbox::redis::RedisQueue;
use wxgate::inbox::{Accepted, DeliveryState, Record};
use wxgate::redis::RedisLink;

/// The local fallback inbox of these tests holds nothing.
fn nothing_local(_: &str, _: &str) -> Option<u64> {
    None
}

fn queue(url: &str, name: &str, reclaim_after: Duration) -> RedisQueue {
    RedisQueue::new(RedisLink::new(url).unwrap(), name.to_owned(), reclaim_after)
}

async fn accept(queue: &RedisQueue, key: &str) -> Accepted {
    queue
        .accept(&Record::new(
            0,
            "acct",
            key,
            json!({ "msg_id": key }),
            now(),
        ))
        .await
        .unwrap()
}

async fn new_record(queue: &RedisQueue, key: &str) -> Record {
    match accept(queue, key).await {
        Accepted::New(record) => record,
        Accepted::Duplicate(record) => panic!("{key} was already there: {record:?}"),
    }
}

async fn pending_count(url: &str) -> i64 {
    let client = redis::Client::open(url).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let summary: redis::Value = redis::cmd("XPENDING")
        .arg("wxgate:inbox:queue")
        .arg("wxgate")
        .query_async(&mut connection)
        .await
        .unwrap();
    match summary {
        redis::Value::Array(items) => redis::from_redis_value_ref(&items[0]).unwrap(),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn records_dedup_states_list_and_purge() {
    let url = redis_url(9);
    flush(&url).await;
    let a = queue(&url, "a", Duration::from_secs(30));
    let first = new_record(&a, "m:1").await;
    assert_eq!(first.id, 1);
    assert_eq!(first.message["msg_id"], "m:1");
    match accept(&a, "m:1").await {
        Accepted::Duplicate(record) => assert_eq!(record.id, 1, "a retry finds the record"),
        Accepted::New(record) => panic!("a retry became a new record {record:?}"),
    }
    let second = new_record(&a, "m:2").await;
    assert_eq!(second.id, 2);
    assert_eq!(pending_count(&url).await, 2, "both queued on a");

    let mut delivered = first.clone();
    delivered.state = DeliveryState::Delivered;
    delivered.attempts = 1;
    a.update(&delivered).await.unwrap();
    assert_eq!(pending_count(&url).await, 1, "a delivery leaves the queue");
    assert_eq!(a.counts().await.unwrap(), (1, 1, 0));
    let ids = |records: Vec<Record>| records.iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(ids(a.list(None, 10).await.unwrap()), vec![2, 1]);
    assert_eq!(
        ids(a.list(Some(DeliveryState::Delivered), 10).await.unwrap()),
        vec![1]
    );
    assert_eq!(a.get(1).await.unwrap().unwrap().attempts, 1);
    assert_eq!(
        ids(a.due(now() + 3600, 10).await.unwrap()),
        vec![2],
        "only the pending record is due"
    );

    // A failed attempt: pending again, due at its next attempt.
    let mut failed = second.clone();
    failed.attempts = 1;
    failed.next_attempt_at = now() + 100;
    a.update(&failed).await.unwrap();
    assert!(a.due(now(), 10).await.unwrap().is_empty());
    assert_eq!(ids(a.due(now() + 100, 10).await.unwrap()), vec![2]);

    assert_eq!(
        a.purge(now() + 1, &[DeliveryState::Delivered, DeliveryState::Dead])
            .await
            .unwrap(),
        1,
        "the delivered one"
    );
    assert_eq!(a.counts().await.unwrap(), (1, 0, 0));
    assert_eq!(a.get(1).await.unwrap(), None);
    assert_eq!(
        new_record(&a, "m:1").await.id,
        3,
        "a purged record's dedup key is gone too"
    );
}

#[tokio::test]
async fn a_silent_instance_s_deliveries_are_taken_over() {
    let url = redis_url(10);
    flush(&url).await;
    let reclaim = Duration::from_millis(1000);
    let a = queue(&url, "a", reclaim);
    let b = queue(&url, "b", reclaim);
    let kept = new_record(&a, "m:1").await;
    let retrying = new_record(&a, "m:2").await;
    let mut done = new_record(&a, "m:3").await;
    let mut later = retrying.clone();
    later.attempts = 1;
    later.next_attempt_at = now() - 1;
    a.update(&later).await.unwrap();
    done.state = DeliveryState::Delivered;
    a.update(&done).await.unwrap();

    // While a heartbeats, b takes nothing.
    let until = std::time::Instant::now() + Duration::from_millis(2200);
    while std::time::Instant::now() < until {
        a.maintain(&nothing_local).await.unwrap();
        assert_eq!(b.maintain(&nothing_local).await.unwrap(), 0, "a is alive");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(a.held(), 2);
    assert_eq!(b.held(), 0);

    // a falls silent: after reclaim_after, b holds both pending deliveries.
    tokio::time::sleep(reclaim + Duration::from_millis(500)).await;
    assert_eq!(b.maintain(&nothing_local).await.unwrap(), 2);
    assert_eq!(b.held(), 2);
    let due: Vec<u64> = b
        .due(now() + 3600, 10)
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert!(
        due.contains(&kept.id) && due.contains(&retrying.id),
        "{due:?}"
    );
    assert_eq!(
        b.due(now(), 10).await.unwrap().len(),
        2,
        "both due now: their next attempts come from the records"
    );
    assert_eq!(
        b.reclaimed.load(std::sync::atomic::Ordering::Relaxed),
        2,
        "the delivered record was never taken"
    );

    // a wakes up: it learns it no longer holds them and will not deliver them.
    tokio::time::sleep(Duration::from_millis(400)).await;
    a.maintain(&nothing_local).await.unwrap();
    assert_eq!(a.held(), 0);
    assert!(a.due(now() + 3600, 10).await.unwrap().is_empty());

    // b delivers one: it leaves the queue for good.
    let mut delivered = b.get(kept.id).await.unwrap().unwrap();
    delivered.state = DeliveryState::Delivered;
    b.update(&delivered).await.unwrap();
    assert_eq!(pending_count(&url).await, 1);
}

#[tokio::test]
async fn retry_requeues_a_dead_letter_and_refuses_what_another_instance_holds() {
    let url = redis_url(11);
    flush(&url).await;
    let a = queue(&url, "a", Duration::from_secs(30));
    let b = queue(&url, "b", Duration::from_secs(30));
    let mut dead = new_record(&a, "m:1").await;
    dead.state = DeliveryState::Dead;
    a.update(&dead).await.unwrap();
    assert_eq!(pending_count(&url).await, 0);

    let retried = b.retry(dead.id, now()).await.unwrap();
    assert_eq!(retried.state, DeliveryState::Pending);
    assert_eq!(b.held(), 1, "the instance that retries holds it");
    assert_eq!(pending_count(&url).await, 1);
    assert_eq!(b.due(now(), 10).await.unwrap().len(), 1);
    assert_eq!(b.counts().await.unwrap(), (1, 0, 0));

    let error = a.retry(dead.id, now()).await.unwrap_err().to_string();
    assert!(error.contains("another instance"), "{error}");
    assert!(a
        .retry(99, now())
        .await
        .unwrap_err()
        .to_string()
        .contains("no delivery 99"));
}

/// A Redis restarted without persistence loses the queue: the instance says so and
/// the next message recreates the stream and its group.
#[tokio::test]
async fn a_redis_that_lost_its_data_recreates_the_queue() {
    let url = redis_url(12);
    flush(&url).await;
    let a = queue(&url, "a", Duration::from_secs(30));
    new_record(&a, "m:1").await;
    flush(&url).await;
    assert!(
        a.due(now() + 3600, 10).await.unwrap().is_empty(),
        "the lost record is dropped, with an error in the log"
    );
    assert_eq!(a.held(), 0);
    a.maintain(&nothing_local).await.unwrap();
    let again = new_record(&a, "m:1").await;
    assert_eq!(again.id, 1);
    assert_eq!(pending_count(&url).await, 1);
}

/// An `accept` whose answer came after the caller gave up (so the caller stored the
/// message in its local fallback) leaves an entry this instance does not know: it is
/// closed as a duplicate when the fallback has the message, adopted otherwise.
#[tokio::test]
async fn entries_stored_after_the_caller_gave_up_are_adopted_or_closed() {
    let url = redis_url(15);
    flush(&url).await;
    let gave_up = queue(&url, "a", Duration::from_secs(30));
    let twice = new_record(&gave_up, "m:1").await;
    let once = new_record(&gave_up, "m:2").await;
    // The same consumer, without the memory of those two accepts.
    let a = queue(&url, "a", Duration::from_secs(30));
    let local = wxgate::inbox::FALLBACK_ID_BASE + 1;
    a.maintain(&|_: &str, key: &str| (key == "m:1").then_some(local))
        .await
        .unwrap();
    assert_eq!(a.held(), 1, "m:2 is adopted");
    assert_eq!(a.due(now() + 3600, 10).await.unwrap()[0].id, once.id);
    let closed = a.get(twice.id).await.unwrap().unwrap();
    assert_eq!(closed.state, DeliveryState::Delivered);
    assert_eq!(
        closed.reply_outcome,
        Some(format!("duplicate of delivery {local}"))
    );
    assert_eq!(pending_count(&url).await, 1, "its queue entry is gone");
}

/// The renewal pages through a consumer's entries: an instance that holds more than
/// one page (1000) keeps them all, and nothing is taken over while it is alive.
#[tokio::test]
async fn an_instance_holding_more_than_a_page_keeps_everything() {
    let url = redis_url(3);
    flush(&url).await;
    let reclaim = Duration::from_millis(1000);
    let a = queue(&url, "a", reclaim);
    let b = queue(&url, "b", reclaim);
    for i in 0..2100 {
        new_record(&a, &format!("m:{i}")).await;
    }
    let until = std::time::Instant::now() + Duration::from_millis(2500);
    while std::time::Instant::now() < until {
        a.maintain(&nothing_local).await.unwrap();
        assert_eq!(b.maintain(&nothing_local).await.unwrap(), 0, "a is alive");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(a.held(), 2100);
    assert_eq!(pending_count(&url).await, 2100);
}

/// The retention (`[inbox] keep_delivered_days`) deletes old delivered records only,
/// oldest first; dead letters and pending records stay.
#[tokio::test]
async fn retention_deletes_old_delivered_records_only() {
    let url = redis_url(4);
    flush(&url).await;
    let a = queue(&url, "a", Duration::from_secs(30));
    let day = 86_400;
    let mut records = Vec::new();
    for (key, age) in [("m:1", 10), ("m:2", 10), ("m:3", 10), ("m:4", 1)] {
        match a
            .accept(&Record::new(0, "acct", key, json!({}), now() - age * day))
            .await
            .unwrap()
        {
            Accepted::New(record) => records.push(record),
            Accepted::Duplicate(record) => panic!("{record:?}"),
        }
    }
    for (record, state) in records.iter_mut().zip([
        Some(DeliveryState::Delivered),
        Some(DeliveryState::Dead),
        None,
        Some(DeliveryState::Delivered),
    ]) {
        if let Some(state) = state {
            record.state = state;
            a.update(record).await.unwrap();
        }
    }
    assert_eq!(a.counts().await.unwrap(), (1, 2, 1));
    assert_eq!(
        a.purge(now() - 7 * day, &[DeliveryState::Delivered])
            .await
            .unwrap(),
        1
    );
    assert_eq!(a.counts().await.unwrap(), (1, 1, 1));
    assert_eq!(a.get(records[0].id).await.unwrap(), None);
    assert!(a.get(records[3].id).await.unwrap().is_some(), "recent");
}

/// Redis's answers are told apart by kind, not by their text: an option an older
/// Redis lacks (`ERR syntax error`, which the shared dedup falls back from) is a
/// refusal, a Redis that is not there is an outage.
#[tokio::test]
async fn a_refused_command_is_told_from_an_outage() {
    let link = RedisLink::new(&redis_url(2)).unwrap();
    let refused = link
        .query::<Option<String>>(redis::cmd("SET").arg("k").arg("v").arg("NOT-AN-OPTION"))
        .await
        .unwrap_err();
    assert!(refused.is_syntax_refusal(), "{refused}");
    assert!(!refused.is_unavailable(), "{refused}");
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let gone = RedisLink::new(&format!("redis://127.0.0.1:{port}/0")).unwrap();
    let down = gone.query::<String>(&redis::cmd("PING")).await.unwrap_err();
    assert!(down.is_unavailable(), "{down}");
    assert!(!down.is_syntax_refusal(), "{down}");
}
