//! On-disk cache of compiled components.
//!
//! Loading precompiled code is `unsafe` in wasmtime: a tampered file is arbitrary native
//! code. The cache therefore only uses files in a folder owned by the current user that
//! nobody else can write, written by us (0600) through a temporary name and a rename.
//! The name binds the plugin's bytes (BLAKE3) and the engine's compatibility hash
//! (wasmtime version and settings), and wasmtime checks that header again on load; a
//! file that fails to load is replaced.
#![allow(unsafe_code)]

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

/// Compile `bytes` or load them from `dir`; returns the component and whether it came
/// from the cache.
pub(crate) fn load(
    engine: &Engine,
    dir: Option<&Path>,
    bytes: &[u8],
) -> wasmtime::Result<(Component, bool)> {
    let Some(dir) = dir else {
        return Ok((Component::from_binary(engine, bytes)?, false));
    };
    let path = entry(engine, dir, bytes);
    if safe_to_load(dir, &path) {
        // Read into memory rather than mapping the file: a file truncated under a
        // mapping would crash the process (SIGBUS).
        if let Ok(bytes) = std::fs::read(&path) {
            // SAFETY: the file was written by this user into a folder only this user can
            // write (checked just above), under a name that binds the source bytes and the
            // engine configuration; wasmtime re-checks the compatibility header.
            match unsafe { Component::deserialize(engine, &bytes) } {
                Ok(c) => return Ok((c, true)),
                Err(_) => {
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
    }
    let compiled = engine.precompile_component(bytes)?;
    let _ = store(dir, &path, &compiled);
    // SAFETY: `compiled` was produced by this engine a moment ago and never left memory.
    let c = unsafe { Component::deserialize(engine, &compiled)? };
    Ok((c, false))
}

fn entry(engine: &Engine, dir: &Path, bytes: &[u8]) -> PathBuf {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    let src = blake3::hash(bytes).to_hex();
    dir.join(format!("{}-{:016x}.cwasm", &src[..32], h.finish()))
}

#[cfg(unix)]
fn owned_private(p: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    std::fs::symlink_metadata(p)
        .is_ok_and(|m| m.uid() == me && m.mode() & 0o022 == 0 && !m.file_type().is_symlink())
}

#[cfg(not(unix))]
fn owned_private(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| !m.file_type().is_symlink())
}

fn safe_to_load(dir: &Path, path: &Path) -> bool {
    owned_private(dir) && owned_private(path)
}

fn store(dir: &Path, path: &Path, data: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?; // created 0600
    tmp.write_all(data)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
