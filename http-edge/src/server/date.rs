//! The `Date` header value, formatted at most once per second.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use portcullis_engine::clock::SharedClock;

/// Caches the formatted date for the current second.
pub struct DateCache {
    clock: SharedClock,
    cached: Mutex<(u64, String)>,
}

impl DateCache {
    /// A cache reading `clock`.
    pub fn new(clock: SharedClock) -> DateCache {
        DateCache {
            clock,
            cached: Mutex::new((u64::MAX, String::new())),
        }
    }

    /// Calls `f` with the current date value.
    pub fn with<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        let secs = self.clock.now_secs();
        let mut c = self
            .cached
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if c.0 != secs {
            let t = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
            *c = (secs, httpdate::fmt_http_date(t));
        }
        f(&c.1)
    }
}
