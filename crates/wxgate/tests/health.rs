//! `/healthz` with the Redis backend reports whether Redis answers (the database's side
//! is in `tests/disk_full.rs`).

mod common;

use std::time::Duration;

use common::*;

async fn healthz(client: &reqwest::Client, base: &str) -> (u16, String) {
    let response = client.get(format!("{base}/healthz")).send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_reports_whether_redis_answers() {
    let (port, start_redis) = own_redis("healthz");
    let mut redis = start_redis();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let config = format!(
        "data_dir = \"data\"\nadmin_token = \"admin-token-0123456789\"\n\
         [storage]\nbackend = \"redis\"\nredis_url = \"redis://127.0.0.1:{port}/0\"\n\
         [[account]]\nname = \"a\"\napp_id = \"{APP_ID}\"\ntoken = \"{TOKEN}\"\n"
    );
    let (_child, base) = start_instance("healthz-redis", &config).await;
    let client = wxgate_client::http_client();
    assert_eq!(healthz(&client, &base).await, (200, "ok".to_owned()));
    let _ = redis.kill();
    let _ = redis.wait();
    let (status, reason) = healthz(&client, &base).await;
    println!("Redis stopped: /healthz {status}: {reason}");
    assert_eq!(status, 503);
    assert!(reason.contains("Redis does not answer"), "{reason}");
    let _redis = start_redis();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, reason) = healthz(&client, &base).await;
        if status == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "/healthz still {status} after Redis came back: {reason}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
