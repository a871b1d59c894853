//! Progress reporting, injected by the caller. The engine never prints.

use std::sync::atomic::{AtomicBool, Ordering};

/// Receives progress of long work. All methods have no-op defaults.
pub trait Progress: Send + Sync {
    /// A phase starts, with its total in bytes (0 when unknown).
    fn start(&self, _phase: &str, _total: u64) {}
    /// `bytes` more are done.
    fn inc(&self, _bytes: u64) {}
    /// A free-form status line (current file…).
    fn message(&self, _msg: &str) {}
    /// The phase ended.
    fn finish(&self) {}
}

/// Reports nothing.
pub struct NoProgress;
impl Progress for NoProgress {}

/// A cancellation flag checked between batches of work (shared with whatever else must
/// stop with it, such as a plugin running on the job's behalf).
#[derive(Default)]
pub struct Cancel(std::sync::Arc<AtomicBool>);

impl Cancel {
    /// Ask the running operation to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// True once [`Cancel::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// The flag itself, for loops that poll it (the NBD server).
    pub fn flag(&self) -> &AtomicBool {
        &self.0
    }

    /// The flag, shared: setting this cancels too, and it sees [`Cancel::cancel`].
    pub fn shared(&self) -> std::sync::Arc<AtomicBool> {
        self.0.clone()
    }
}
