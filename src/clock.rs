//! The service's idea of "now". Every rule that depends on time (sessions, sign-in lockout,
//! outbox leases and retries, the embargo and the release schedule) asks a [`Clock`], so tests
//! move time forward instead of sleeping through it.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime, Timelike, Utc};

/// The system clock, plus an offset that only tests change. Cheap to clone; clones share the
/// offset.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_micros: Arc<AtomicI64>,
}

impl Clock {
    pub fn system() -> Self {
        Self::default()
    }

    /// Now, to the microsecond both backends keep.
    pub fn now(&self) -> DateTime<Utc> {
        let now =
            Utc::now() + chrono::Duration::microseconds(self.offset_micros.load(Ordering::SeqCst));
        now.with_nanosecond(now.nanosecond() / 1_000 * 1_000)
            .unwrap_or(now)
    }

    /// Now as the database stores it: UTC without a zone.
    pub fn now_naive(&self) -> NaiveDateTime {
        self.now().naive_utc()
    }

    /// Moves this clock (and every clone of it) forward.
    pub fn advance(&self, by: chrono::Duration) {
        let micros = by.num_microseconds().unwrap_or(i64::MAX);
        self.offset_micros.fetch_add(micros, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_time_they_are_moved_to() {
        let clock = Clock::system();
        let other = clock.clone();
        let before = other.now();
        clock.advance(chrono::Duration::days(3));
        let moved = other.now() - before;
        assert!(moved >= chrono::Duration::days(3), "{moved}");
        assert!(moved < chrono::Duration::days(3) + chrono::Duration::minutes(1));
    }
}
