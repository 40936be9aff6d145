//! The connection cap, and what each connection is doing, so that the cap can be kept
//! without letting idle or half-open sockets hold it.
//!
//! A connection is *busy* while one of its requests is being handled (from its complete head
//! to its response) and *idle* otherwise, including before its first request. When the cap
//! is reached, the connection idle the longest is closed to admit the new one; a new one
//! waits only when every connection is busy, which each request's own timeout bounds.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// The open connections, up to a cap.
pub(super) struct Connections {
    cap: usize,
    /// The time `idle_since` counts from.
    epoch: Instant,
    open: Mutex<Open>,
    /// Signalled when a connection closes or becomes idle: the moments a waiting new
    /// connection may be admitted.
    changed: Arc<Notify>,
}

#[derive(Default)]
struct Open {
    next_id: u64,
    by_id: HashMap<u64, Arc<Activity>>,
}

/// What one connection is doing.
pub(super) struct Activity {
    accepted: Instant,
    epoch: Instant,
    /// Requests being handled now.
    in_flight: AtomicUsize,
    /// Whether a request head has been complete on this connection.
    served: AtomicBool,
    /// When the last request ended, in microseconds since `epoch`.
    idle_since_us: AtomicU64,
    /// Signalled when the connection is chosen to make room for a new one.
    evicted: Notify,
    changed: Arc<Notify>,
}

/// A connection's place among the open ones; dropping it gives the place back.
pub(super) struct Slot {
    id: u64,
    activity: Arc<Activity>,
    connections: Arc<Connections>,
    /// Counts the connection in `/metrics` until it closes (also after an eviction, until
    /// its task has ended).
    _gauge: crate::metrics::ConnectionGauge,
}

/// Held while a request is handled: the connection is busy.
pub(super) struct Busy(Arc<Activity>);

/// When a connection must have done something by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Deadline {
    /// Its first request head must be complete by then.
    FirstRequest(Instant),
    /// It is idle, and closes then unless a request comes.
    Idle(Instant),
    /// A request is being handled, under its own timeout.
    None,
}

impl Connections {
    /// Room for `cap` connections (at least one).
    pub(super) fn new(cap: usize) -> Arc<Self> {
        Arc::new(Self {
            cap: cap.max(1),
            epoch: Instant::now(),
            open: Mutex::new(Open::default()),
            changed: Arc::new(Notify::new()),
        })
    }

    /// A slot for a connection accepted now. Past the cap, closes the connection idle the
    /// longest to make room; when every connection is busy, waits until one is not.
    pub(super) async fn admit(self: &Arc<Self>) -> Slot {
        loop {
            // Registered before looking, so a change between the look and the wait is seen.
            let changed = self.changed.notified();
            if let Some(slot) = self.try_admit() {
                return slot;
            }
            changed.await;
        }
    }

    fn try_admit(self: &Arc<Self>) -> Option<Slot> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if open.by_id.len() >= self.cap {
            let (&id, _) = open
                .by_id
                .iter()
                .filter(|(_, a)| a.in_flight.load(Ordering::Acquire) == 0)
                .min_by_key(|(_, a)| a.idle_since_us.load(Ordering::Acquire))?;
            if let Some(longest_idle) = open.by_id.remove(&id) {
                longest_idle.evicted.notify_one();
            }
        }
        let id = open.next_id;
        open.next_id += 1;
        let now = Instant::now();
        let activity = Arc::new(Activity {
            accepted: now,
            epoch: self.epoch,
            in_flight: AtomicUsize::new(0),
            served: AtomicBool::new(false),
            idle_since_us: AtomicU64::new(micros(now - self.epoch)),
            evicted: Notify::new(),
            changed: Arc::clone(&self.changed),
        });
        open.by_id.insert(id, Arc::clone(&activity));
        Some(Slot {
            id,
            activity,
            connections: Arc::clone(self),
            _gauge: crate::metrics::connection_opened(),
        })
    }

    /// Waits until every connection has closed.
    pub(super) async fn closed(&self) {
        loop {
            let changed = self.changed.notified();
            if self
                .open
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .by_id
                .is_empty()
            {
                return;
            }
            changed.await;
        }
    }
}

impl Slot {
    /// What the connection is doing.
    pub(super) fn activity(&self) -> &Arc<Activity> {
        &self.activity
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.connections
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .by_id
            .remove(&self.id);
        self.connections.changed.notify_one();
    }
}

impl Activity {
    /// Marks a request as being handled until the answer is dropped.
    pub(super) fn busy(self: &Arc<Self>) -> Busy {
        self.served.store(true, Ordering::Release);
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        Busy(Arc::clone(self))
    }

    /// Resolves when the connection is chosen to make room for a new one.
    pub(super) async fn evicted(&self) {
        self.evicted.notified().await;
    }

    /// By when the connection must do something, given how long a new connection may take
    /// to send its first request and how long a connection may stay idle.
    pub(super) fn deadline(&self, first_request: Duration, idle: Duration) -> Deadline {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            Deadline::None
        } else if !self.served.load(Ordering::Acquire) {
            Deadline::FirstRequest(self.accepted + first_request)
        } else {
            let idle_since = Duration::from_micros(self.idle_since_us.load(Ordering::Acquire));
            Deadline::Idle(self.epoch + idle_since + idle)
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let activity = &self.0;
        // The time is set before the count drops, so whoever sees the connection idle also
        // sees when it became so.
        activity
            .idle_since_us
            .store(micros(Instant::now() - activity.epoch), Ordering::Release);
        if activity.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            activity.changed.notify_one();
        }
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn past_the_cap_the_longest_idle_makes_room() {
        let connections = Connections::new(2);
        let oldest = connections.admit().await;
        let newer = connections.admit().await;
        let busy = newer.activity().busy();
        let third = connections.admit().await;
        // The oldest idle one was told to go; the busy one was not.
        tokio::time::timeout(Duration::from_millis(100), oldest.activity().evicted())
            .await
            .expect("the longest-idle connection is evicted");
        assert_eq!(
            newer.activity().deadline(Duration::ZERO, Duration::ZERO),
            Deadline::None
        );
        drop(oldest);

        // Now both are busy: a fourth waits until one of them is idle.
        let _also_busy = third.activity().busy();
        let waiting = tokio::spawn({
            let connections = Arc::clone(&connections);
            async move { connections.admit().await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !waiting.is_finished(),
            "admitted while every connection was busy"
        );
        drop(busy);
        let fourth = tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .expect("admitted once a connection was idle")
            .unwrap();
        tokio::time::timeout(Duration::from_millis(100), newer.activity().evicted())
            .await
            .expect("the newly idle connection made room");
        drop((newer, third, fourth));
        connections.closed().await;
    }

    #[tokio::test]
    async fn deadlines_follow_what_the_connection_does() {
        let connections = Connections::new(1);
        let slot = connections.admit().await;
        let (first, idle) = (Duration::from_secs(10), Duration::from_secs(60));
        let Deadline::FirstRequest(at) = slot.activity().deadline(first, idle) else {
            panic!("a new connection owes its first request");
        };
        assert!(at > Instant::now() + Duration::from_secs(9));
        let busy = slot.activity().busy();
        assert_eq!(slot.activity().deadline(first, idle), Deadline::None);
        drop(busy);
        let Deadline::Idle(at) = slot.activity().deadline(first, idle) else {
            panic!("a connection that was served is idle between requests");
        };
        assert!(at > Instant::now() + Duration::from_secs(59));
    }
}
