//! Time as the stores keep it.

use chrono::{DateTime, SubsecRound, Utc};

/// The current time, truncated to whole microseconds.
///
/// PostgreSQL keeps microseconds, so every store works at that precision and a value reads
/// back exactly as it was written, whichever store holds it.
#[must_use]
pub fn now() -> DateTime<Utc> {
    truncate(Utc::now())
}

/// `t` truncated to whole microseconds.
#[must_use]
pub fn truncate(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}
