//! A forwarding target for tests: it checks nothing, answers every delivery with a text
//! reply (or 503 while it is down), and logs each delivery it answered 2xx, with when.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};

/// One delivery the hook answered 2xx.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// `delivery_id`.
    pub id: String,
    /// `X-Wxgate-Attempt`.
    pub attempt: u32,
    /// The message's `msg_id`.
    pub msg_id: String,
    /// When the hook answered.
    pub at: Instant,
}

/// A running hook.
#[derive(Clone)]
pub struct Hook {
    /// Where wxgate posts.
    pub url: String,
    /// Answers 503 while false.
    pub up: Arc<AtomicBool>,
    /// Waits this long before answering, ms.
    pub delay_ms: Arc<AtomicU64>,
    /// Every 2xx answer, in order.
    pub log: Arc<Mutex<Vec<Delivery>>>,
}

impl Hook {
    /// Starts a hook on 127.0.0.1.
    pub async fn start() -> Hook {
        let hook = Hook {
            url: String::new(),
            up: Arc::new(AtomicBool::new(true)),
            delay_ms: Arc::new(AtomicU64::new(0)),
            log: Arc::new(Mutex::new(Vec::new())),
        };
        let state = hook.clone();
        let handler = move |headers: HeaderMap, body: String| {
            let state = state.clone();
            async move {
                let delay = state.delay_ms.load(Ordering::Relaxed);
                if delay > 0 {
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                }
                if !state.up.load(Ordering::Relaxed) {
                    return (StatusCode::SERVICE_UNAVAILABLE, String::new());
                }
                let request: serde_json::Value = serde_json::from_str(&body).unwrap();
                let attempt = headers["x-wxgate-attempt"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                state.log.lock().unwrap().push(Delivery {
                    id: request["delivery_id"].as_str().unwrap().to_owned(),
                    attempt,
                    msg_id: request["message"]["msg_id"]
                        .as_str()
                        .unwrap_or("")
                        .to_owned(),
                    at: Instant::now(),
                });
                let content = request["message"]["content"].as_str().unwrap_or("");
                let reply = serde_json::json!({ "reply": { "type": "text", "content": format!("svc: {content}") } });
                (StatusCode::OK, reply.to_string())
            }
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(
                listener,
                axum::Router::new().route("/hook", axum::routing::post(handler)),
            )
            .await
            .unwrap()
        });
        Hook { url, ..hook }
    }

    /// The msg_ids delivered at least once.
    pub fn delivered_msg_ids(&self) -> std::collections::HashSet<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .map(|d| d.msg_id.clone())
            .collect()
    }

    /// Delivery id → how many times it was answered 2xx, for those answered more than once.
    pub fn repeats(&self) -> HashMap<String, usize> {
        let mut counts: HashMap<String, usize> = HashMap::new();
        for delivery in self.log.lock().unwrap().iter() {
            *counts.entry(delivery.id.clone()).or_default() += 1;
        }
        counts.retain(|_, n| *n > 1);
        counts
    }

    /// When a delivery id was first answered 2xx.
    pub fn first_answer(&self, id: &str) -> Option<Instant> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .find(|d| d.id == id)
            .map(|d| d.at)
    }
}
