//! Rehydra's backup engine.
//!
//! The engine owns the repository format (v1, see `docs/repository-format.md`): chunking,
//! content-addressed deduplication, compression, encryption, packs, index files, restore
//! points, and the operations on them (backup, restore, check, forget, prune). It is
//! synchronous; CPU work runs on the rayon pool and callers bring their own runtime.
//!
//! ```no_run
//! use std::sync::Arc;
//! use rehydra_core::{backend::LocalBackend, Repository, InitOptions, OpenOptions};
//! let backend = Arc::new(LocalBackend::new("/tmp/repo"));
//! backend.create_layout()?;
//! let repo = Repository::init(backend, b"secret", InitOptions::default(), OpenOptions::default())?;
//! # Ok::<(), rehydra_core::Error>(())
//! ```

pub mod archiver;
/// Where repositories live (the `rehydra-storage` crate: the contract, local, object stores).
pub use rehydra_storage as backend;
pub mod check;
pub mod chunker;
pub mod config;
pub mod contentmap;
pub mod copy;
pub mod crypto;
mod error;
mod fetch;
mod id;
pub mod index;
pub mod keys;
pub mod lock;
pub mod manifest;
pub mod pack;
mod par;
pub mod progress;
pub mod prune;
mod repository;
pub mod restorer;
pub mod retention;
pub mod vdisk;
pub mod writer;

pub use error::{Error, ErrorKind, Hint, Result};
pub use id::Id;
pub use rehydra_disk as disk;
pub use repository::{InitOptions, KeyInfo, OpenOptions, Repository};
