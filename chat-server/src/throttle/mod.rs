//! Slowing password guessing: a lock per username after failed logins in a row, and token
//! buckets per client address for failed logins and for registrations.
//!
//! Everything lives in this process's memory, in tables of fixed capacity; several servers
//! over one store each keep their own counts.

mod bucket;
mod client;
mod lockout;
mod table;

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::time::Duration;

use hyper::header::HeaderMap;
use tokio::time::Instant;

pub use bucket::Rate;

use bucket::Bucket;
use lockout::Lockout;
use table::Table;

/// The longest lock and the largest `Retry-After`, in seconds.
pub const MAX_RETRY_AFTER_SECS: u32 = 60;

/// How logins and registrations are throttled.
#[derive(Debug, Clone)]
pub struct ThrottleConfig {
    /// How long a username's first lock lasts. Default: 1 s.
    pub first_lock: Duration,
    /// The longest lock; each failure after a lock doubles the next up to this, itself at
    /// most 60 s. Default: 60 s.
    pub max_lock: Duration,
    /// Failed logins allowed per client address. Default: 100 a minute.
    pub failed_logins: Rate,
    /// Registrations allowed per client address. Default: 20 a minute.
    pub registrations: Rate,
    /// Whether loopback addresses are limited per address too. Default: no.
    pub limit_loopback: bool,
    /// Proxies whose `X-Forwarded-For` entry names the client. Default: none.
    pub trusted_proxies: Vec<IpAddr>,
    /// How many usernames, and how many addresses per kind of limit, are remembered; past
    /// it the least recently seen is forgotten. Default: 65 536.
    pub capacity: usize,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            first_lock: Duration::from_secs(1),
            max_lock: Duration::from_secs(u64::from(MAX_RETRY_AFTER_SECS)),
            failed_logins: Rate::per_minute(100),
            registrations: Rate::per_minute(20),
            limit_loopback: false,
            trusted_proxies: Vec::new(),
            capacity: 65_536,
        }
    }
}

/// Refused for now; retry after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limited(pub(crate) Duration);

impl Limited {
    /// The wait in whole seconds for `Retry-After`: rounded up, 1 to 60.
    pub(crate) fn retry_after_secs(self) -> u32 {
        let secs = self.0.as_secs() + u64::from(self.0.subsec_nanos() > 0);
        u32::try_from(secs)
            .unwrap_or(MAX_RETRY_AFTER_SECS)
            .clamp(1, MAX_RETRY_AFTER_SECS)
    }
}

/// How a username is remembered: itself, folded to lower case, when it is short enough to
/// have been registered; a keyed hash otherwise, so a megabyte of name costs eight bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum UserKey {
    Name(Box<str>),
    Digest(u64),
}

/// The longest username that can be registered, in bytes (64 ASCII characters).
const MAX_USERNAME_BYTES: usize = 64;

/// The counts of one server.
#[derive(Debug)]
pub struct Throttle {
    config: ThrottleConfig,
    users: Table<UserKey, Lockout>,
    failed_logins: Table<IpAddr, Bucket>,
    registrations: Table<IpAddr, Bucket>,
    /// Keyed per process, so nobody can choose long names that collide.
    hasher: RandomState,
}

impl Throttle {
    /// Empty counts under `config`.
    #[must_use]
    pub fn new(mut config: ThrottleConfig) -> Self {
        let cap = Duration::from_secs(u64::from(MAX_RETRY_AFTER_SECS));
        config.max_lock = config.max_lock.min(cap);
        config.first_lock = config.first_lock.min(config.max_lock);
        Self {
            users: Table::new(config.capacity),
            failed_logins: Table::new(config.capacity),
            registrations: Table::new(config.capacity),
            hasher: RandomState::new(),
            config,
        }
    }

    /// The client's address for a request from `peer`, by the trusted proxies.
    pub(crate) fn client(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        client::client_ip(peer, headers, &self.config.trusted_proxies)
    }

    /// The address to count against, if this one is limited at all.
    fn limited(&self, client: Option<IpAddr>) -> Option<IpAddr> {
        client.filter(|ip| self.config.limit_loopback || !ip.is_loopback())
    }

    fn user_key(&self, username: &str) -> UserKey {
        let folded = username.to_lowercase();
        if folded.len() <= MAX_USERNAME_BYTES {
            UserKey::Name(folded.into())
        } else {
            UserKey::Digest(self.hasher.hash_one(folded))
        }
    }

    /// Whether a login for `username` from `client` may check its password now.
    pub(crate) fn login_allowed(
        &self,
        client: Option<IpAddr>,
        username: &str,
    ) -> Result<(), Limited> {
        let now = Instant::now();
        if let Some(ip) = self.limited(client) {
            let rate = self.config.failed_logins;
            self.failed_logins
                .with_existing(&ip, |bucket| bucket.check(rate, now))
                .unwrap_or(Ok(()))
                .map_err(Limited)?;
        }
        self.users
            .with_existing(&self.user_key(username), |lockout| lockout.check(now))
            .unwrap_or(Ok(()))
            .map_err(Limited)
    }

    /// Counts a login whose password was checked and wrong.
    pub(crate) fn login_failed(&self, client: Option<IpAddr>, username: &str) {
        let now = Instant::now();
        let (first, max) = (self.config.first_lock, self.config.max_lock);
        self.users.with(self.user_key(username), |lockout| {
            lockout.fail(now, first, max)
        });
        if let Some(ip) = self.limited(client) {
            let rate = self.config.failed_logins;
            self.failed_logins
                .with(ip, |bucket| bucket.spend(rate, now));
        }
    }

    /// Clears the failures of `username` after a successful login.
    pub(crate) fn login_succeeded(&self, username: &str) {
        self.users.remove(&self.user_key(username));
    }

    /// Counts a registration attempt from `client`, or refuses it.
    pub(crate) fn register(&self, client: Option<IpAddr>) -> Result<(), Limited> {
        let Some(ip) = self.limited(client) else {
            return Ok(());
        };
        let (rate, now) = (self.config.registrations, Instant::now());
        self.registrations
            .with(ip, |bucket| bucket.take(rate, now))
            .map_err(Limited)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_whole_seconds_from_one_to_sixty() {
        assert_eq!(Limited(Duration::from_millis(1)).retry_after_secs(), 1);
        assert_eq!(Limited(Duration::from_millis(1001)).retry_after_secs(), 2);
        assert_eq!(Limited(Duration::from_secs(2)).retry_after_secs(), 2);
        assert_eq!(Limited(Duration::from_secs(3600)).retry_after_secs(), 60);
        assert_eq!(Limited(Duration::ZERO).retry_after_secs(), 1);
    }

    #[test]
    fn many_usernames_stay_within_the_capacity() {
        let throttle = Throttle::new(ThrottleConfig {
            capacity: 1000,
            ..ThrottleConfig::default()
        });
        let long = "x".repeat(100_000);
        for i in 0..20_000 {
            throttle.login_failed(None, &format!("user{i}"));
            throttle.login_failed(None, &format!("{long}{i}"));
        }
        assert_eq!(throttle.users.len(), 1000);
    }

    #[test]
    fn usernames_are_compared_ignoring_case() {
        let throttle = Throttle::new(ThrottleConfig::default());
        for name in ["Alice", "ALICE", "alice", "aLiCe", "alicE"] {
            throttle.login_failed(None, name);
        }
        assert!(throttle.login_allowed(None, "AlIcE").is_err());
        throttle.login_succeeded("ALICE");
        assert!(throttle.login_allowed(None, "alice").is_ok());
    }
}
