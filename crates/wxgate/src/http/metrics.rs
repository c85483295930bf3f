//! `GET /metrics`: the request counters with the dedup, credential, inbox and
//! forwarding figures, as Prometheus text.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::app::AppState;

pub async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    use std::fmt::Write;
    let accounts = state.accounts();
    let mut extra = crate::gateway::dedup::gauges(accounts.iter().filter_map(|account| {
        account
            .dedup()
            .map(|dedup| (account.config.name.as_str(), dedup))
    }));
    let stats = state.center.stats();
    let _ = write!(
        extra,
        "# HELP wxgate_credential_fetches_total Credentials fetched from WeChat.\n# TYPE wxgate_credential_fetches_total counter\nwxgate_credential_fetches_total {}\n\
         # HELP wxgate_credential_failures_total Credential refreshes that failed.\n# TYPE wxgate_credential_failures_total counter\nwxgate_credential_failures_total {}\n\
         # HELP wxgate_credential_foreign_refreshes_total Tokens rejected although wxgate had not replaced them (another system refreshes the AppID).\n# TYPE wxgate_credential_foreign_refreshes_total counter\nwxgate_credential_foreign_refreshes_total {}\n\
         # HELP wxgate_credential_store_failures_total Credential store reads or writes that failed.\n# TYPE wxgate_credential_store_failures_total counter\nwxgate_credential_store_failures_total {}\n",
        stats.fetches, stats.failures, stats.foreign_refreshes, stats.store_failures
    );
    if let Some(forwarder) = &state.forwarder {
        use std::sync::atomic::Ordering::Relaxed;
        if let Ok((pending, delivered, dead)) = forwarder.inbox().counts().await {
            let _ = write!(
                extra,
                "# HELP wxgate_inbox_records Inbox records by delivery state (pending is the queue depth).\n# TYPE wxgate_inbox_records gauge\n\
                 wxgate_inbox_records{{state=\"pending\"}} {pending}\nwxgate_inbox_records{{state=\"delivered\"}} {delivered}\nwxgate_inbox_records{{state=\"dead\"}} {dead}\n"
            );
        }
        if let Some(queue) = forwarder.inbox().queue() {
            let (reclaimed, held) = (queue.reclaimed.load(Relaxed), queue.held());
            let _ = write!(
                extra,
                "# HELP wxgate_queue_reclaimed_total Deliveries taken over from instances that stopped answering (Redis queue).\n# TYPE wxgate_queue_reclaimed_total counter\nwxgate_queue_reclaimed_total {reclaimed}\n\
                 # HELP wxgate_queue_held Deliveries this instance holds in the Redis queue.\n# TYPE wxgate_queue_held gauge\nwxgate_queue_held {held}\n"
            );
        }
        let stats = &forwarder.stats;
        let delivered = stats.delivered.load(Relaxed);
        let _ = write!(
            extra,
            "# HELP wxgate_forward_deliveries_total Deliveries the service answered 2xx.\n# TYPE wxgate_forward_deliveries_total counter\nwxgate_forward_deliveries_total {delivered}\n\
             # HELP wxgate_forward_retries_total Failed delivery attempts scheduled again.\n# TYPE wxgate_forward_retries_total counter\nwxgate_forward_retries_total {}\n\
             # HELP wxgate_forward_dead_letters_total Deliveries given up after max_age_s.\n# TYPE wxgate_forward_dead_letters_total counter\nwxgate_forward_dead_letters_total {}\n\
             # HELP wxgate_forward_late_replies_total Replies sent through the customer-service API.\n# TYPE wxgate_forward_late_replies_total counter\nwxgate_forward_late_replies_total {}\n\
             # HELP wxgate_forward_reply_failures_total Attempts to send a reply through the customer-service API that failed (the record stays pending, or is dead when no retry can mend it).\n# TYPE wxgate_forward_reply_failures_total counter\nwxgate_forward_reply_failures_total {}\n\
             # HELP wxgate_forward_delivery_seconds Time for the service to answer successful deliveries.\n# TYPE wxgate_forward_delivery_seconds summary\n\
             wxgate_forward_delivery_seconds_sum {}\nwxgate_forward_delivery_seconds_count {delivered}\n",
            stats.retries.load(Relaxed),
            stats.dead_letters.load(Relaxed),
            stats.late_replies.load(Relaxed),
            stats.reply_failures.load(Relaxed),
            stats.latency_us_sum.load(Relaxed) as f64 / 1e6,
        );
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(&extra),
    )
        .into_response()
}
