//! Tokens cached per scope: refreshed five minutes before they expire, one fetch at a
//! time per scope (callers for the same scope wait for the fetch in flight and share its
//! token; other scopes are not held up).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::error::IdentityError;
use crate::token::Token;

/// Refresh this long before a token expires.
pub(crate) const REFRESH_BEFORE: Duration = Duration::from_secs(5 * 60);
/// When a refresh fails, a cached token with at least this much life left is still used.
const STILL_USABLE: Duration = Duration::from_secs(30);

/// One slot per scope; a slot's lock is held for the whole fetch (single flight).
#[derive(Default)]
pub(crate) struct Cache {
    slots: Mutex<HashMap<String, Arc<Mutex<Option<Token>>>>>,
}

impl Cache {
    /// The cached token for `scope`, or a fresh one from `fetch`.
    pub(crate) fn get(
        &self,
        scope: &str,
        fetch: impl FnOnce() -> Result<Token, IdentityError>,
    ) -> Result<Token, IdentityError> {
        let slot = lock(&self.slots)
            .entry(scope.to_owned())
            .or_default()
            .clone();
        let mut held = lock(&slot);
        if let Some(token) = held.as_ref().filter(|t| t.valid_for(REFRESH_BEFORE)) {
            return Ok(token.clone());
        }
        match fetch() {
            Ok(token) => {
                *held = Some(token.clone());
                Ok(token)
            }
            // a failed early refresh: the old token still works for a while
            Err(e) => match held.as_ref().filter(|t| t.valid_for(STILL_USABLE)) {
                Some(token) => Ok(token.clone()),
                None => Err(e),
            },
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::SystemTime;

    fn token(lifetime: Duration) -> Token {
        Token::new("t".into(), SystemTime::now() + lifetime)
    }

    #[test]
    fn fresh_tokens_are_reused_and_near_expiry_ones_refetched() {
        let cache = Cache::default();
        let fetches = AtomicUsize::new(0);
        let fetches = &fetches;
        let fetch = |lifetime| {
            move || {
                fetches.fetch_add(1, Ordering::SeqCst);
                Ok(token(lifetime))
            }
        };
        cache.get("a", fetch(Duration::from_secs(3600))).unwrap();
        cache.get("a", fetch(Duration::from_secs(3600))).unwrap();
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        cache.get("b", fetch(Duration::from_secs(120))).unwrap();
        cache.get("b", fetch(Duration::from_secs(120))).unwrap();
        assert_eq!(fetches.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn a_failed_refresh_keeps_a_still_valid_token() {
        let cache = Cache::default();
        cache
            .get("a", || Ok(token(Duration::from_secs(120))))
            .unwrap();
        let kept = cache.get("a", || Err(IdentityError::Runtime("down".into())));
        assert!(kept.is_ok());
        cache
            .get("b", || Ok(token(Duration::from_secs(10))))
            .unwrap();
        assert!(
            cache
                .get("b", || Err(IdentityError::Runtime("down".into())))
                .is_err()
        );
    }
}
