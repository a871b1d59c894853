//! The `host` imports: log lines and progress are collected for the test, `cancelled`
//! reads the flag the test sets.

use super::state::with;
use crate::host::Level;

/// Longest log or progress message kept, in characters.
const MESSAGE_MAX: usize = 4096;

/// Write to the job log (the test reads it with [`super::MockHost::logs`]). Dropped once
/// the call is cancelled, as the host does.
pub fn log(level: Level, message: &str) {
    with(|s| {
        if !s.cancelled {
            let msg = message.chars().take(MESSAGE_MAX).collect();
            s.record.logs.push((level, msg));
        }
    });
}

/// Report progress of the current verb (see [`super::MockHost::progress`]).
pub fn progress(done: u64, total: u64, message: &str) {
    with(|s| {
        if !s.cancelled {
            let msg = message.chars().take(MESSAGE_MAX).collect();
            s.record.progress.push((done, total, msg));
        }
    });
}

/// True once the test cancelled the call ([`super::MockHost::cancel`]).
pub fn cancelled() -> bool {
    with(|s| s.cancelled)
}
