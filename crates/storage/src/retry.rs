//! The one retry policy: temporary failures are tried again with capped, jittered
//! exponential backoff; permanent ones return at once.

use std::time::Duration;

use crate::{Backend, FileInfo, FileKind, Result, StorageError, StorageErrorKind};

/// How often and how long to try again.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all (1 = no retry).
    pub attempts: u32,
    /// Wait before the second attempt; doubled each time.
    pub base: Duration,
    /// Longest single wait.
    pub cap: Duration,
}

impl Default for RetryPolicy {
    /// Five attempts over about four seconds: enough for a throttled request or a
    /// connection reset, short enough that an unreachable store fails fast.
    fn default() -> Self {
        Self {
            attempts: 5,
            base: Duration::from_millis(250),
            cap: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `n + 1` (n ≥ 1): half fixed, half random ("equal jitter"),
    /// so clients throttled together do not retry together.
    fn wait(&self, n: u32) -> Duration {
        let full = self.base.saturating_mul(1 << (n - 1).min(16)).min(self.cap);
        let half = full / 2;
        half + half.mul_f64(rand::random::<f64>())
    }

    /// Run `op` until it succeeds, fails permanently, or the attempts are spent.
    ///
    /// # Errors
    /// The last failure, its message saying how many attempts were made.
    pub fn run<T>(&self, mut op: impl FnMut() -> Result<T>) -> Result<T> {
        let mut n = 1;
        loop {
            match op() {
                Err(e) if e.is_temporary() && n < self.attempts => {
                    std::thread::sleep(self.wait(n));
                    n += 1;
                }
                Err(e) if e.is_temporary() && n > 1 => {
                    let message = format!("{e} (tried {n} times)");
                    return Err(StorageError::new(e.kind(), message).with_source(e));
                }
                r => return r,
            }
        }
    }
}

/// A backend whose temporary failures are retried by [`RetryPolicy`].
pub struct Retrying<B> {
    inner: B,
    policy: RetryPolicy,
}

impl<B: Backend> Retrying<B> {
    /// Wrap `inner`.
    pub fn new(inner: B, policy: RetryPolicy) -> Self {
        Self { inner, policy }
    }

    /// The wrapped backend.
    pub fn inner(&self) -> &B {
        &self.inner
    }
}

impl<B: Backend> Backend for Retrying<B> {
    fn location(&self) -> String {
        self.inner.location()
    }

    /// A create whose answer was lost may have landed: when a retry finds the name taken,
    /// the file is read back and the create succeeds if it holds exactly `data`.
    fn create(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()> {
        let mut failed_before = false;
        self.policy.run(|| {
            let r = self.inner.create(kind, name, data);
            match r {
                Err(e) if e.kind() == StorageErrorKind::AlreadyExists && failed_before => {
                    match self.inner.read(kind, name) {
                        Ok(there) if there == data => Ok(()),
                        _ => Err(e),
                    }
                }
                Err(e) => {
                    failed_before |= e.is_temporary();
                    Err(e)
                }
                ok => ok,
            }
        })
    }

    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>> {
        self.policy.run(|| self.inner.read(kind, name))
    }

    fn read_range(&self, kind: FileKind, name: &str, offset: u64, len: u32) -> Result<Vec<u8>> {
        self.policy
            .run(|| self.inner.read_range(kind, name, offset, len))
    }

    fn size(&self, kind: FileKind, name: &str) -> Result<u64> {
        self.policy.run(|| self.inner.size(kind, name))
    }

    fn list(&self, kind: FileKind) -> Result<Vec<FileInfo>> {
        self.policy.run(|| self.inner.list(kind))
    }

    fn remove(&self, kind: FileKind, name: &str) -> Result<()> {
        self.policy.run(|| self.inner.remove(kind, name))
    }

    fn clean_leftovers(&self, age: Duration) -> Result<usize> {
        self.policy.run(|| self.inner.clean_leftovers(age))
    }
}
