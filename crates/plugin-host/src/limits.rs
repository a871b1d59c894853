//! What one plugin call may use: time (wall time, in the plugin's code, in WASI waits and
//! in host calls, bulk engine work excepted), memory, instances and tables, streams and
//! spooled bytes, and how much of it ends up in the audit log.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How much of one engine bulk call (ingest, restore-item, small item reads and writes)
/// counts against the time limit; the rest is excluded, because its length depends on the
/// data, not on the plugin, and the user can cancel it. A loop of short engine calls thus
/// counts in full, and a loop of long ones still costs this much per call.
pub(crate) const ENGINE_CALL_CHARGE: Duration = Duration::from_millis(50);

/// Core instances a call may create (a component instantiates several; Python ones ~20).
pub(crate) const MAX_INSTANCES: usize = 64;
/// Linear memories, all instances together.
pub(crate) const MAX_MEMORIES: usize = 32;
/// Tables, all instances together.
pub(crate) const MAX_TABLES: usize = 128;
/// Table elements, all tables together.
pub(crate) const MAX_TABLE_ELEMENTS: usize = 1_000_000;
/// Entries of the host's resource table (WASI handles, streams).
pub(crate) const MAX_RESOURCES: usize = 10_000;

/// Streams a call may open with `engine.open-stream`.
pub(crate) const MAX_STREAMS: u32 = 32;
/// Bytes a call may spool through pushed streams, all together.
pub(crate) const SPOOL_MAX: u64 = 512 << 20;

/// Denials recorded one by one per call; later ones are counted and summed up at the end.
pub(crate) const AUDIT_DENIALS_MAX: u32 = 100;
/// Allowed uses recorded one by one per call.
pub(crate) const AUDIT_ALLOWED_MAX: u32 = 1_000;
/// Longest target or detail kept in an audit event, in bytes.
pub(crate) const AUDIT_TEXT_MAX: usize = 1024;

/// Why a call was stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// Past its time limit.
    Timeout,
    /// The user cancelled.
    Cancelled,
}

/// The time budget of one call, shared by the store (host calls, epoch callback) and the
/// watchdog that races the call's future.
pub(crate) struct Budget {
    started: Instant,
    limit: Duration,
    excluded_nanos: AtomicU64,
    cancel: Arc<AtomicBool>,
    stopped: AtomicU8,
}

impl Budget {
    pub(crate) fn new(limit: Duration, cancel: Arc<AtomicBool>) -> Self {
        Self {
            started: Instant::now(),
            limit,
            excluded_nanos: AtomicU64::new(0),
            cancel,
            stopped: AtomicU8::new(0),
        }
    }

    /// Wall time since the start, less excluded engine work.
    pub(crate) fn used(&self) -> Duration {
        self.started.elapsed().saturating_sub(Duration::from_nanos(
            self.excluded_nanos.load(Ordering::Relaxed),
        ))
    }

    /// Time left before the limit.
    pub(crate) fn remaining(&self) -> Duration {
        self.limit.saturating_sub(self.used())
    }

    /// The limit.
    pub(crate) fn limit(&self) -> Duration {
        self.limit
    }

    /// Take `d` of engine bulk work off the clock, except [`ENGINE_CALL_CHARGE`].
    pub(crate) fn exclude_engine_work(&self, d: Duration) {
        let off = d.saturating_sub(ENGINE_CALL_CHARGE);
        self.excluded_nanos.fetch_add(
            u64::try_from(off.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// `Err` (and remembered) once the call is cancelled or past its limit.
    pub(crate) fn check(&self) -> Result<(), Stop> {
        if let Some(s) = self.stopped() {
            return Err(s);
        }
        let stop = if self.cancel.load(Ordering::Relaxed) {
            Stop::Cancelled
        } else if self.used() > self.limit {
            Stop::Timeout
        } else {
            return Ok(());
        };
        let code = match stop {
            Stop::Timeout => 1,
            Stop::Cancelled => 2,
        };
        let _ = self
            .stopped
            .compare_exchange(0, code, Ordering::Relaxed, Ordering::Relaxed);
        Err(self.stopped().unwrap_or(stop))
    }

    /// Why the call was stopped, if it was.
    pub(crate) fn stopped(&self) -> Option<Stop> {
        match self.stopped.load(Ordering::Relaxed) {
            1 => Some(Stop::Timeout),
            2 => Some(Stop::Cancelled),
            _ => None,
        }
    }
}

/// Memory, instance and table limits of one store, in total across all its instances.
pub(crate) struct Limiter {
    pub(crate) max_bytes: usize,
    memory_bytes: usize,
    table_elements: usize,
    /// The memory limit was hit (the call ends with `MemoryLimit`).
    pub(crate) hit: bool,
}

impl Limiter {
    pub(crate) fn new(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            memory_bytes: 0,
            table_elements: 0,
            hit: false,
        }
    }
}

/// Account one memory or table growing from `current` to `desired` in `total`; false (and
/// `total` unchanged) when that would pass `max`.
fn grow(total: &mut usize, current: usize, desired: usize, max: usize) -> bool {
    let next = total.saturating_sub(current).saturating_add(desired);
    if next > max {
        return false;
    }
    *total = next;
    true
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let ok = grow(&mut self.memory_bytes, current, desired, self.max_bytes);
        self.hit |= !ok;
        Ok(ok)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(grow(
            &mut self.table_elements,
            current,
            desired,
            MAX_TABLE_ELEMENTS,
        ))
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

/// Decides which audit events of one call are recorded one by one; the rest are counted
/// per (capability, allowed) and summed up in one event each at the end of the call.
#[derive(Default)]
pub(crate) struct AuditGate {
    denied: u32,
    allowed: u32,
    suppressed: BTreeMap<(&'static str, bool), u64>,
}

impl AuditGate {
    /// True if this event is to be recorded; false if it was only counted.
    pub(crate) fn admit(&mut self, capability: &'static str, allowed: bool) -> bool {
        let (n, max) = if allowed {
            (&mut self.allowed, AUDIT_ALLOWED_MAX)
        } else {
            (&mut self.denied, AUDIT_DENIALS_MAX)
        };
        if *n < max {
            *n += 1;
            return true;
        }
        *self.suppressed.entry((capability, allowed)).or_insert(0) += 1;
        false
    }

    /// One `(capability, allowed, detail)` summary per kind of suppressed event.
    pub(crate) fn summaries(&self) -> Vec<(&'static str, bool, String)> {
        self.suppressed
            .iter()
            .map(|(&(cap, allowed), n)| {
                let (what, max) = if allowed {
                    ("allowed uses", AUDIT_ALLOWED_MAX)
                } else {
                    ("denials", AUDIT_DENIALS_MAX)
                };
                (
                    cap,
                    allowed,
                    format!(
                        "{n} further {what} of `{cap}` in this call were not recorded one by one (at most {max} are)"
                    ),
                )
            })
            .collect()
    }
}

/// `s` cut to at most [`AUDIT_TEXT_MAX`] bytes (on a character boundary), marked if cut.
pub(crate) fn clip(s: &str) -> String {
    if s.len() <= AUDIT_TEXT_MAX {
        return s.to_string();
    }
    let mut end = AUDIT_TEXT_MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &s[..end], s.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::ResourceLimiter;

    #[test]
    fn memory_and_tables_are_limited_in_total() {
        let mut l = Limiter::new(64 << 20);
        // two memories of 40 MiB each: the second one does not fit
        assert!(l.memory_growing(0, 40 << 20, None).unwrap());
        assert!(!l.memory_growing(0, 40 << 20, None).unwrap());
        assert!(l.hit);
        // growing the first one within the total is fine
        assert!(l.memory_growing(40 << 20, 60 << 20, None).unwrap());
        assert!(!l.memory_growing(0, 8 << 20, None).unwrap());
        let mut l = Limiter::new(64 << 20);
        assert!(l.table_growing(0, 600_000, None).unwrap());
        assert!(!l.table_growing(0, 600_000, None).unwrap());
        assert!(l.instances() <= 64 && l.memories() <= 32 && l.tables() <= 128);
    }

    #[test]
    fn audit_is_capped_and_summed_up() {
        let mut g = AuditGate::default();
        let recorded = (0..1000).filter(|_| g.admit("files", false)).count();
        assert_eq!(recorded, AUDIT_DENIALS_MAX as usize);
        assert!(g.admit("http", true), "allowed uses have their own cap");
        let s = g.summaries();
        assert_eq!(s.len(), 1);
        assert!(
            s[0].2.starts_with("900 further denials of `files`"),
            "{}",
            s[0].2
        );
        assert!(clip(&"é".repeat(2000)).len() < AUDIT_TEXT_MAX + 32);
    }

    #[test]
    fn budget_counts_wall_time_less_engine_work() {
        let cancel = Arc::new(AtomicBool::new(false));
        let b = Budget::new(Duration::from_millis(200), cancel.clone());
        std::thread::sleep(Duration::from_millis(100));
        b.exclude_engine_work(Duration::from_millis(90));
        assert!(b.used() >= Duration::from_millis(60) && b.check().is_ok());
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(b.check(), Err(Stop::Timeout));
        let b = Budget::new(Duration::from_secs(60), cancel.clone());
        cancel.store(true, Ordering::Relaxed);
        assert_eq!(b.check(), Err(Stop::Cancelled));
        cancel.store(false, Ordering::Relaxed);
        assert_eq!(b.check(), Err(Stop::Cancelled), "a stop is final");
    }
}
