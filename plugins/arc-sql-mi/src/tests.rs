//! The plugin's verbs under the SDK's mock host, against the official shapes: ARM's
//! examples, Kubernetes answers built after the CRDs, and a stand-in instance (see
//! `tests/support.rs`).

mod backup;
mod discover;
mod own_backups;
mod restore;
mod support;
