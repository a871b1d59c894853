//! Bandwidth limits: uploads and downloads held to a rate in bytes per second, across
//! every thread using the backend (a token bucket holding one second's worth; a transfer
//! larger than what is left waits until its bytes would have passed at the rate).

use std::num::NonZeroU64;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::{Backend, FileInfo, FileKind, Result};

/// Rates in bytes per second; `None` is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bandwidth {
    /// What is written (create).
    pub upload: Option<NonZeroU64>,
    /// What is read (read, read_range).
    pub download: Option<NonZeroU64>,
}

impl Bandwidth {
    /// Whether either direction is limited.
    #[must_use]
    pub fn is_limited(&self) -> bool {
        self.upload.is_some() || self.download.is_some()
    }
}

/// A token bucket: `rate` bytes per second, at most one second's worth saved up.
struct Bucket {
    rate: f64,
    /// Bytes that may pass now (negative: owed), as of the instant.
    state: Mutex<(f64, Instant)>,
}

impl Bucket {
    fn new(rate: NonZeroU64, now: Instant) -> Self {
        let rate = rate.get() as f64;
        Self {
            rate,
            state: Mutex::new((rate, now)),
        }
    }

    /// Charge `n` bytes at `now`; returns how long the caller waits before they pass.
    fn charge(&self, n: usize, now: Instant) -> Duration {
        let mut s = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let earned = now.saturating_duration_since(s.1).as_secs_f64() * self.rate;
        s.0 = (s.0 + earned).min(self.rate) - n as f64;
        s.1 = s.1.max(now);
        if s.0 >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-s.0 / self.rate)
        }
    }

    fn pass(&self, n: usize) {
        let wait = self.charge(n, Instant::now());
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }
}

/// A backend whose transfers are held to a [`Bandwidth`].
pub struct Limited<B> {
    inner: B,
    upload: Option<Bucket>,
    download: Option<Bucket>,
}

impl<B: Backend> Limited<B> {
    /// Wrap `inner`.
    pub fn new(inner: B, limits: Bandwidth) -> Self {
        let now = Instant::now();
        Self {
            inner,
            upload: limits.upload.map(|r| Bucket::new(r, now)),
            download: limits.download.map(|r| Bucket::new(r, now)),
        }
    }

    fn downloaded(&self, r: Result<Vec<u8>>) -> Result<Vec<u8>> {
        if let (Ok(d), Some(b)) = (&r, &self.download) {
            b.pass(d.len());
        }
        r
    }
}

impl<B: Backend> Backend for Limited<B> {
    fn location(&self) -> String {
        self.inner.location()
    }

    fn create(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()> {
        if let Some(b) = &self.upload {
            b.pass(data.len());
        }
        self.inner.create(kind, name, data)
    }

    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>> {
        self.downloaded(self.inner.read(kind, name))
    }

    fn read_range(&self, kind: FileKind, name: &str, offset: u64, len: u32) -> Result<Vec<u8>> {
        self.downloaded(self.inner.read_range(kind, name, offset, len))
    }

    fn size(&self, kind: FileKind, name: &str) -> Result<u64> {
        self.inner.size(kind, name)
    }

    fn list(&self, kind: FileKind) -> Result<Vec<FileInfo>> {
        self.inner.list(kind)
    }

    fn remove(&self, kind: FileKind, name: &str) -> Result<()> {
        self.inner.remove(kind, name)
    }

    fn clean_leftovers(&self, age: Duration) -> Result<usize> {
        self.inner.clean_leftovers(age)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_passes_its_rate_and_a_second_saved_up() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let b = Bucket::new(NonZeroU64::new(1000).unwrap(), t0);
        // one second's worth passes at once, the next byte waits its millisecond
        assert_eq!(b.charge(1000, at(0)), Duration::ZERO);
        assert_eq!(b.charge(1, at(0)), Duration::from_millis(1));
        // 3000 bytes more at once: owed until they would have passed at the rate
        assert_eq!(b.charge(3000, at(0)), Duration::from_millis(3001));
        // half a second later half a second less to wait for the next byte
        assert_eq!(b.charge(0, at(500)), Duration::from_millis(2501));
        // idle for long: never more than one second saved up
        let b = Bucket::new(NonZeroU64::new(1000).unwrap(), t0);
        assert_eq!(b.charge(0, at(60_000)), Duration::ZERO);
        assert_eq!(b.charge(2000, at(60_000)), Duration::from_secs(1));
        // a clock read before the last one (another thread) does not go back in time
        assert_eq!(b.charge(0, at(59_000)), Duration::from_secs(1));
    }

    #[test]
    fn only_the_limited_direction_waits() {
        let dir = tempfile::tempdir().unwrap();
        let limits = Bandwidth {
            upload: None,
            download: NonZeroU64::new(100_000),
        };
        let local = crate::LocalBackend::new(dir.path());
        local.create_layout().unwrap();
        let b = Limited::new(local, limits);
        let data = vec![7u8; 150_000];
        b.create(FileKind::Pack, "aa00", &data).unwrap();
        assert!(b.upload.is_none(), "uploads are not limited");
        let start = Instant::now();
        assert_eq!(b.read(FileKind::Pack, "aa00").unwrap(), data);
        assert_eq!(
            b.read_range(FileKind::Pack, "aa00", 0, 50_000)
                .unwrap()
                .len(),
            50_000
        );
        // 200,000 bytes at 100,000 per second with one second saved up: at least 1 s
        assert!(
            start.elapsed() >= Duration::from_millis(950),
            "{:?}",
            start.elapsed()
        );
    }
}
