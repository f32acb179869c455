//! The injectable clock: production reads the system time, tests move time by
//! hand so that expiry is covered without sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use time::OffsetDateTime;

/// Milliseconds since the Unix epoch, UTC: how times are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Millis(pub i64);

impl Millis {
    pub const SECOND: i64 = 1_000;
    pub const MINUTE: i64 = 60 * Self::SECOND;

    pub fn plus_millis(self, ms: i64) -> Self {
        Millis(self.0.saturating_add(ms))
    }

    /// RFC 3339 with millisecond precision, e.g. `2026-11-24T21:00:00.000Z`.
    pub fn to_rfc3339(self) -> String {
        let nanos = i128::from(self.0) * 1_000_000;
        let dt = OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
        dt.format(&fmt).unwrap_or_default()
    }
}

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Millis;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Millis {
        let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
        Millis(i64::try_from(nanos / 1_000_000).unwrap_or(i64::MAX))
    }
}

/// Sandbox: the system clock plus an offset that partners move forward
/// (`POST /dev/clock/advance`) to see expiry without waiting 15 minutes.
/// Per process; never used in production.
#[derive(Debug, Default)]
pub struct SandboxClock {
    offset_ms: AtomicI64,
}

impl SandboxClock {
    pub fn advance_millis(&self, ms: i64) {
        self.offset_ms.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for SandboxClock {
    fn now(&self) -> Millis {
        SystemClock.now().plus_millis(self.offset_ms.load(Ordering::SeqCst))
    }
}

/// A clock that only moves when told to. Cheap to clone; clones share time.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn starting_at(at: Millis) -> Self {
        ManualClock(Arc::new(AtomicI64::new(at.0)))
    }

    pub fn advance_millis(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Millis {
        Millis(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_utc_with_milliseconds() {
        assert_eq!(Millis(1_700_000_000_123).to_rfc3339(), "2023-11-14T22:13:20.123Z");
    }

    #[test]
    fn a_sandbox_clock_runs_with_the_system_clock_plus_what_it_was_advanced() {
        let clock = SandboxClock::default();
        let before = SystemClock.now();
        clock.advance_millis(900_000);
        let now = clock.now();
        assert!(now.0 >= before.0 + 900_000 && now.0 < SystemClock.now().0 + 900_000 + 1_000, "{now:?}");
    }

    #[test]
    fn a_manual_clock_moves_only_when_advanced_and_clones_share_time() {
        let clock = ManualClock::starting_at(Millis(1_000));
        let other = clock.clone();
        assert_eq!(clock.now(), Millis(1_000));
        other.advance_millis(500);
        assert_eq!(clock.now(), Millis(1_500));
    }
}
