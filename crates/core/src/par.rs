//! Parallel maps that skip the thread pool for one or two items (a small file's chunk or
//! two), where waking a pool thread costs more than the work itself.

use rayon::prelude::*;

/// At most this many items are mapped on the calling thread.
const SERIAL_MAX: usize = 2;

/// `f` over `items`, in order; in parallel unless there are few.
pub(crate) fn map<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync + Send) -> Vec<R> {
    if items.len() <= SERIAL_MAX {
        items.into_iter().map(f).collect()
    } else {
        items.into_par_iter().map(f).collect()
    }
}

/// `f` over `items` by reference, in order; in parallel unless there are few.
pub(crate) fn map_ref<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync + Send) -> Vec<R> {
    if items.len() <= SERIAL_MAX {
        items.iter().map(f).collect()
    } else {
        items.par_iter().map(f).collect()
    }
}
