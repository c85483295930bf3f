//! The delivery worker: every 200 ms it keeps the Redis queue's entries, attempts what
//! is due (including what a crash left pending), and hourly deletes old delivered
//! records; [`Forwarder::shutdown`] stops it and waits for the attempts in flight.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::error::ForwardError;
use super::Forwarder;
use crate::inbox::DeliveryState;

/// How long [`Forwarder::shutdown`] waits for the deliveries in flight.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

impl Forwarder {
    /// Attempts every due pending delivery that is not already in flight.
    pub async fn run_due(self: &Arc<Self>) {
        if let Err(err) = self.inbox.maintain().await {
            tracing::warn!("cannot keep or take over queued deliveries in Redis: {err}");
        }
        let now = wxgate_client::clock::now();
        let due = match self.inbox.due(now, 256).await {
            Ok(due) => due,
            Err(err) => {
                tracing::error!("cannot read the inbox: {err}");
                return;
            }
        };
        for record in due {
            // A request is storing this new message and starts its first attempt
            // itself, with WeChat waiting for the reply (see `claim`).
            if record.attempts == 0
                && self
                    .accepting
                    .is_claimed(&record.account, &record.dedup_key)
            {
                continue;
            }
            let fresh = self
                .in_flight
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(record.id);
            if !fresh {
                continue;
            }
            // `due` may have read the record before an attempt that just ended stored
            // its outcome. That attempt stored it before it left `in_flight`, so a read
            // after the claim sees it: attempt only what nobody attempted since.
            match self.inbox.get(record.id).await {
                Ok(Some(current))
                    if current.state == DeliveryState::Pending
                        && current.attempts == record.attempts =>
                {
                    tokio::spawn(Arc::clone(self).attempt_and_record(current, None));
                }
                _ => {
                    self.in_flight
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&record.id);
                }
            }
        }
    }

    /// Deletes delivered records older than `[inbox] keep_delivered_days`; returns
    /// how many.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn expire_delivered(&self) -> Result<usize, ForwardError> {
        if self.keep_delivered_s == 0 {
            return Ok(0);
        }
        let before = wxgate_client::clock::now() - self.keep_delivered_s;
        let purged = self
            .inbox
            .purge(before, &[DeliveryState::Delivered])
            .await?;
        if purged > 0 {
            tracing::info!(
                "deleted {purged} delivered inbox records older than {} days ([inbox] keep_delivered_days)",
                self.keep_delivered_s / 86_400
            );
        }
        Ok(purged)
    }

    /// Stops the worker, waits up to [`SHUTDOWN_GRACE`] for the attempts in flight, and
    /// commits the inbox durably: after a clean stop, no finished delivery repeats (one
    /// cut off by the grace may).
    pub async fn shutdown(&self) {
        if let Some(worker) = self.worker.lock().unwrap_or_else(|e| e.into_inner()).take() {
            worker.abort();
        }
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        let left = loop {
            let left = self
                .in_flight
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .len();
            if left == 0 || Instant::now() >= deadline {
                break left;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        if left > 0 {
            tracing::warn!("stopping with {left} deliveries in flight; they are attempted again after the restart");
        }
        if let Err(error) = self.inbox.flush().await {
            tracing::error!("cannot commit the inbox at shutdown ({error}); deliveries of the last {} ms may repeat after the restart", crate::inbox::GROUP_COMMIT_WINDOW.as_millis());
        }
    }

    /// Spawns the worker: every 200 ms, attempts what is due (including what a crash
    /// left pending); a minute after start-up and then hourly, deletes old delivered
    /// records. [`Forwarder::shutdown`] stops it.
    pub fn spawn_worker(self: &Arc<Self>) {
        let forwarder = Arc::clone(self);
        let worker = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(200));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut next_expiry = Instant::now() + Duration::from_secs(60);
            loop {
                tick.tick().await;
                forwarder.run_due().await;
                if Instant::now() >= next_expiry {
                    next_expiry = Instant::now() + Duration::from_secs(3600);
                    if let Err(err) = forwarder.expire_delivered().await {
                        tracing::warn!("cannot delete old delivered inbox records: {err}");
                    }
                }
            }
        });
        *self.worker.lock().unwrap_or_else(|e| e.into_inner()) = Some(worker);
    }
}
