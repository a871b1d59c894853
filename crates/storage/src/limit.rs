//! Bandwidth limits: uploads and downloads held to a rate in bytes per second, across
//! every thread using the backend (a token bucket holding one second's worth; a transfer
//! larger than what is left waits until its bytes would have passed at the rate). A
//! thread working for one job among several sharing the backend says which cancel flag
//! it answers to ([`heed_cancel`]): its wait then ends as soon as that job is cancelled.

use std::cell::RefCell;
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::{Backend, FileInfo, FileKind, Result, StorageError, StorageErrorKind};

/// How often a wait for the limit looks at the cancel flag.
const CANCEL_CHECK: Duration = Duration::from_millis(100);

thread_local! {
    /// The cancel flags of the work this thread does.
    static CANCEL: RefCell<Vec<Arc<AtomicBool>>> = const { RefCell::new(Vec::new()) };
}

/// While the returned guard lives, transfers this thread makes through a [`Limited`]
/// backend fail as [`StorageErrorKind::Cancelled`] once `flag` (or another flag it heeds)
/// is set, instead of waiting for their turn at the limit (up to a pack's time: 16 s for
/// 16 MiB at 1 MiB/s). The job's own cancel flag, on the threads that store or fetch for
/// it; on a pooled thread, for as long as the work for the job takes.
pub fn heed_cancel(flag: Arc<AtomicBool>) -> Heeding {
    CANCEL.with(|c| c.borrow_mut().push(flag.clone()));
    Heeding {
        flag,
        _thread: std::marker::PhantomData,
    }
}

/// A flag heeded on this thread ([`heed_cancel`]) until this is dropped.
#[must_use = "the flag is heeded only while this lives"]
pub struct Heeding {
    flag: Arc<AtomicBool>,
    /// Bound to the thread it was made on.
    _thread: std::marker::PhantomData<*const ()>,
}

impl Drop for Heeding {
    fn drop(&mut self) {
        CANCEL.with(|c| {
            let mut flags = c.borrow_mut();
            if let Some(i) = flags.iter().rposition(|f| Arc::ptr_eq(f, &self.flag)) {
                flags.remove(i);
            }
        });
    }
}

fn cancelled_error() -> StorageError {
    StorageError::new(
        StorageErrorKind::Cancelled,
        "cancelled while the transfer waited for the bandwidth limit",
    )
}

fn cancelled() -> bool {
    CANCEL.with(|c| c.borrow().iter().any(|f| f.load(Ordering::Relaxed)))
}

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

    /// Wait until `n` more bytes may pass, unless this thread's job is cancelled first;
    /// with `before`, the bytes have not gone yet, and what they still owe the bucket then
    /// goes back to it (other jobs do not wait for bytes never sent).
    fn pass(&self, n: usize, before: bool) -> Result<()> {
        if cancelled() {
            return Err(cancelled_error());
        }
        let until = Instant::now() + self.charge(n, Instant::now());
        loop {
            let now = Instant::now();
            if now >= until {
                return Ok(());
            }
            if cancelled() {
                if before {
                    self.refund((until - now).as_secs_f64() * self.rate);
                }
                return Err(cancelled_error());
            }
            std::thread::sleep((until - now).min(CANCEL_CHECK));
        }
    }

    /// Give back `bytes` charged for a transfer that did not happen.
    fn refund(&self, bytes: f64) {
        let mut s = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        s.0 = (s.0 + bytes).min(self.rate);
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
            b.pass(d.len(), false)?;
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
            b.pass(data.len(), true)?;
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
    fn a_wait_ends_when_the_job_of_its_thread_is_cancelled() {
        let dir = tempfile::tempdir().unwrap();
        let local = crate::LocalBackend::new(dir.path());
        local.create_layout().unwrap();
        let limits = Bandwidth {
            upload: NonZeroU64::new(100_000),
            download: None,
        };
        let b = Arc::new(Limited::new(local, limits));
        let job = |flag: Arc<AtomicBool>, name: &'static str, bytes: usize| {
            let b = b.clone();
            std::thread::spawn(move || {
                let _heeding = heed_cancel(flag);
                let start = Instant::now();
                (
                    b.create(FileKind::Pack, name, &vec![1; bytes]),
                    start.elapsed(),
                )
            })
        };
        // 600,000 bytes at 100,000 a second, one second saved up: a 5 s wait, cancelled
        // after 0.3 s
        let flag = Arc::new(AtomicBool::new(false));
        let cancelled_one = job(flag.clone(), "aa01", 600_000);
        std::thread::sleep(Duration::from_millis(300));
        flag.store(true, Ordering::Relaxed);
        let (r, took) = cancelled_one.join().unwrap();
        assert_eq!(r.unwrap_err().kind(), StorageErrorKind::Cancelled);
        assert!(took < Duration::from_millis(1500), "{took:?}");
        assert!(b.size(FileKind::Pack, "aa01").is_err(), "nothing stored");
        // another job's thread is not stopped by it, and does not wait for the bytes that
        // were never sent: 210,000 bytes take about 2.1 s, not 6.8 s
        let (r, took) = job(Arc::new(AtomicBool::new(false)), "aa02", 210_000)
            .join()
            .unwrap();
        r.unwrap();
        assert!(took < Duration::from_secs(4), "{took:?}");
        // a flag is heeded only while its guard lives
        let b2 = b.clone();
        std::thread::spawn(move || {
            {
                let _heeding = heed_cancel(Arc::new(AtomicBool::new(true)));
                let e = b2.create(FileKind::Pack, "aa03", &[1; 10]).unwrap_err();
                assert_eq!(e.kind(), StorageErrorKind::Cancelled);
            }
            b2.create(FileKind::Pack, "aa03", &[1; 10]).unwrap();
        })
        .join()
        .unwrap();
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
