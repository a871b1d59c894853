//! The chain: sources tried in order, the first that gives a token kept, and every
//! failure's reason remembered for `status` (`azure_identity` 1.0 has no
//! `DefaultAzureCredential`).
//!
//! Once a source has worked it is the identity: later failures are reported, not papered
//! over by silently switching to another account. Until one works, each fetch walks the
//! whole chain again (the admin may have just run `az login`).

use std::sync::{Mutex, MutexGuard};

use azure_core::credentials::AccessToken;

use crate::error::IdentityError;
use crate::sources::Source;
use crate::status::{Attempt, SourceKind};

/// Sources in order, and what happened the last time they were tried.
pub(crate) struct Chain {
    sources: Vec<Source>,
    state: Mutex<State>,
}

#[derive(Default, Clone)]
struct State {
    /// Index of the source in use.
    chosen: Option<usize>,
    attempts: Vec<Attempt>,
}

impl Chain {
    pub(crate) fn new(sources: Vec<Source>) -> Self {
        Self {
            sources,
            state: Mutex::new(State::default()),
        }
    }

    /// A token for `scope` from the source in use, or from the first that works.
    pub(crate) async fn fetch(&self, scope: &str) -> Result<AccessToken, IdentityError> {
        let chosen = self.state().chosen;
        if let Some(index) = chosen {
            let result = self.try_source(index, scope).await;
            let mut state = self.state();
            if let Some(attempt) = state.attempts.get_mut(index) {
                attempt.failure = result.as_ref().err().cloned();
            }
            let source = &self.sources[index];
            return result.map_err(|reason| IdentityError::Source {
                kind: source.kind,
                reason,
            });
        }
        let mut attempts = Vec::with_capacity(self.sources.len());
        for (index, source) in self.sources.iter().enumerate() {
            match self.try_source(index, scope).await {
                Ok(token) => {
                    attempts.push(Attempt {
                        source: source.kind,
                        failure: None,
                    });
                    *self.state() = State {
                        chosen: Some(index),
                        attempts,
                    };
                    return Ok(token);
                }
                Err(reason) => attempts.push(Attempt {
                    source: source.kind,
                    failure: Some(reason),
                }),
            }
        }
        *self.state() = State {
            chosen: None,
            attempts: attempts.clone(),
        };
        Err(match <[Attempt; 1]>::try_from(attempts) {
            // one configured source: its own error
            Ok([Attempt { source, failure }]) => IdentityError::Source {
                kind: source,
                reason: failure.unwrap_or_default(),
            },
            Err(attempts) => IdentityError::NoIdentity { attempts },
        })
    }

    async fn try_source(&self, index: usize, scope: &str) -> Result<AccessToken, String> {
        let source = &self.sources[index];
        let credential = source.credential.as_ref().map_err(Clone::clone)?;
        credential
            .get_token(&[scope], None)
            .await
            .map_err(|e| crate::reason::plain(source.kind, &e))
    }

    /// The source in use and the attempts that chose it.
    pub(crate) fn report(&self) -> (Option<SourceKind>, Vec<Attempt>) {
        let state = self.state().clone();
        (state.chosen.map(|i| self.sources[i].kind), state.attempts)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
