//! The plugin file: one WebAssembly component carrying two custom sections.
//!
//! - `rehydra-manifest`: the manifest (TOML), so code and manifest travel as one file;
//! - `rehydra-signature`: the *last* section, an ed25519 signature over every byte before
//!   it (so the manifest is covered too).
//!
//! Only the top level of the binary is walked (section id, LEB128 size); nothing inside
//! the component is interpreted here.

use std::path::Path;

use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::error::{PluginError, Result};

/// Custom section holding the manifest.
pub const MANIFEST_SECTION: &str = "rehydra-manifest";
/// Custom section holding the signature (must be last).
pub const SIGNATURE_SECTION: &str = "rehydra-signature";
const SIGNATURE_CONTEXT: &[u8] = b"rehydra-plugin-signature-v1\0";
const COMPONENT_HEADER: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];
const MODULE_HEADER: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];

/// A top-level section.
struct Section<'a> {
    /// Byte offset where the section (its id byte) starts.
    start: usize,
    /// Custom section name, if a custom section.
    name: Option<&'a str>,
    /// Payload after the name.
    data: &'a [u8],
}

fn leb_u32(b: &[u8], pos: &mut usize) -> Option<u32> {
    let mut v: u64 = 0;
    for shift in (0..35).step_by(7) {
        let byte = *b.get(*pos)?;
        *pos += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return u32::try_from(v).ok();
        }
    }
    None
}

fn leb_encode(mut v: usize, out: &mut Vec<u8>) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn sections<'a>(path: &Path, b: &'a [u8]) -> Result<Vec<Section<'a>>> {
    let bad = |reason: &str| PluginError::Malformed {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    if b.len() < 8 || b[..4] != COMPONENT_HEADER[..4] {
        return Err(bad("not a WebAssembly file (no \\0asm header)"));
    }
    if b[..8] == MODULE_HEADER {
        return Err(bad(
            "this is a core WebAssembly module, not a component; build with --target wasm32-wasip2 (or wrap it with `wasm-tools component new`)",
        ));
    }
    if b[..8] != COMPONENT_HEADER {
        return Err(bad(
            "unsupported WebAssembly version or layer (a component model binary is expected)",
        ));
    }
    let mut out = Vec::new();
    let mut pos = 8;
    while pos < b.len() {
        let start = pos;
        let id = b[pos];
        pos += 1;
        let size = leb_u32(b, &mut pos).ok_or_else(|| bad("truncated section header"))? as usize;
        let end = pos
            .checked_add(size)
            .filter(|e| *e <= b.len())
            .ok_or_else(|| bad("section runs past the end of the file (truncated?)"))?;
        let (name, data) = if id == 0 {
            let mut p = pos;
            let n = leb_u32(b, &mut p).ok_or_else(|| bad("bad custom section name"))? as usize;
            let name_end = p
                .checked_add(n)
                .filter(|e| *e <= end)
                .ok_or_else(|| bad("bad custom section name"))?;
            let name = std::str::from_utf8(&b[p..name_end])
                .map_err(|_| bad("custom section name is not UTF-8"))?;
            (Some(name), &b[name_end..end])
        } else {
            (None, &b[pos..end])
        };
        out.push(Section { start, name, data });
        pos = end;
    }
    Ok(out)
}

fn custom_section(name: &str, data: &[u8]) -> Vec<u8> {
    let mut payload = Vec::with_capacity(name.len() + data.len() + 5);
    leb_encode(name.len(), &mut payload);
    payload.extend_from_slice(name.as_bytes());
    payload.extend_from_slice(data);
    let mut out = vec![0u8];
    leb_encode(payload.len(), &mut out);
    out.extend_from_slice(&payload);
    out
}

/// The signature block stored in [`SIGNATURE_SECTION`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignatureBlock {
    /// Format version (1).
    pub version: u32,
    /// Signing public key, hex.
    pub key: String,
    /// Signature, hex.
    pub signature: String,
}

/// A parsed plugin file.
pub struct Package<'a> {
    /// The manifest text, if embedded.
    pub manifest: Option<&'a [u8]>,
    /// The signature block and the bytes it covers, if signed.
    pub signature: Option<(SignatureBlock, &'a [u8])>,
}

/// Parse a plugin file's top level.
///
/// # Errors
/// Not a component, truncated, or a signature section that is not last / not readable.
pub fn parse<'a>(path: &Path, bytes: &'a [u8]) -> Result<Package<'a>> {
    let secs = sections(path, bytes)?;
    let mut manifest = None;
    let mut signature = None;
    for (i, s) in secs.iter().enumerate() {
        match s.name {
            Some(MANIFEST_SECTION) => manifest = Some(s.data),
            Some(SIGNATURE_SECTION) => {
                if i + 1 != secs.len() {
                    return Err(PluginError::Malformed { path: path.to_path_buf(), reason: "the signature section is not the last section (bytes were appended after signing)".into() });
                }
                let block: SignatureBlock =
                    serde_json::from_slice(s.data).map_err(|e| PluginError::Malformed {
                        path: path.to_path_buf(),
                        reason: format!("unreadable signature section: {e}"),
                    })?;
                signature = Some((block, &bytes[..s.start]));
            }
            _ => {}
        }
    }
    Ok(Package {
        manifest,
        signature,
    })
}

/// `wasm` with its manifest replaced by `manifest` and any signature removed.
///
/// # Errors
/// `wasm` is not a component.
pub fn embed_manifest(path: &Path, wasm: &[u8], manifest: &[u8]) -> Result<Vec<u8>> {
    let secs = sections(path, wasm)?;
    let mut out = Vec::with_capacity(wasm.len() + manifest.len() + 32);
    out.extend_from_slice(&wasm[..8]);
    for (i, s) in secs.iter().enumerate() {
        if matches!(s.name, Some(MANIFEST_SECTION | SIGNATURE_SECTION)) {
            continue;
        }
        let end = secs.get(i + 1).map_or(wasm.len(), |n| n.start);
        out.extend_from_slice(&wasm[s.start..end]);
    }
    out.extend_from_slice(&custom_section(MANIFEST_SECTION, manifest));
    Ok(out)
}

/// Sign `wasm` (which must not be signed yet): append the signature section.
///
/// # Errors
/// Not a component, or already signed.
pub fn sign(path: &Path, wasm: &[u8], key: &SigningKey) -> Result<Vec<u8>> {
    if parse(path, wasm)?.signature.is_some() {
        return Err(PluginError::Invalid(format!(
            "{} is already signed",
            path.display()
        )));
    }
    let sig = key.sign(&signed_message(wasm));
    let block = SignatureBlock {
        version: 1,
        key: hex::encode(key.verifying_key().as_bytes()),
        signature: hex::encode(sig.to_bytes()),
    };
    let json = serde_json::to_vec(&block).map_err(|e| PluginError::Invalid(e.to_string()))?;
    let mut out = wasm.to_vec();
    out.extend_from_slice(&custom_section(SIGNATURE_SECTION, &json));
    Ok(out)
}

fn signed_message(covered: &[u8]) -> Vec<u8> {
    let mut m = SIGNATURE_CONTEXT.to_vec();
    m.extend_from_slice(blake3::hash(covered).as_bytes());
    m
}

/// Check `block` over `covered`; returns the verifying key on success.
/// (Also used by the fuzz target.)
pub fn verify(block: &SignatureBlock, covered: &[u8]) -> Option<VerifyingKey> {
    let key: [u8; 32] = hex::decode(&block.key).ok()?.try_into().ok()?;
    let sig: [u8; 64] = hex::decode(&block.signature).ok()?.try_into().ok()?;
    let key = VerifyingKey::from_bytes(&key).ok()?;
    key.verify(
        &signed_message(covered),
        &ed25519_dalek::Signature::from_bytes(&sig),
    )
    .ok()?;
    Some(key)
}

/// Create a new signing key at `path` (hex seed, mode 0600, never overwritten).
///
/// Keep publisher keys offline or in a secret store; this file form is meant for
/// development keys.
///
/// # Errors
/// `path` exists or cannot be written.
pub fn create_signing_key(path: &Path) -> Result<SigningKey> {
    use std::io::Write;
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .map_err(|e| PluginError::io(format!("creating {}", dir.display()), e))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .map_err(|e| PluginError::io(format!("writing {}", path.display()), e))?;
    tmp.write_all(hex::encode(key.to_bytes()).as_bytes())
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| PluginError::io(format!("writing {}", path.display()), e))?;
    tmp.persist_noclobber(path).map_err(|e| {
        PluginError::io(
            format!(
                "{} exists already (keys are never overwritten)",
                path.display()
            ),
            e.error,
        )
    })?;
    Ok(key)
}

/// Read a signing key written by [`create_signing_key`].
///
/// # Errors
/// Missing or malformed file.
pub fn load_signing_key(path: &Path) -> Result<SigningKey> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| PluginError::io(format!("reading signing key {}", path.display()), e))?;
    let seed: [u8; 32] = hex::decode(text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| {
            PluginError::Invalid(format!(
                "{} is not a signing key (64 hex digits expected)",
                path.display()
            ))
        })?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Embed `manifest` into the component `wasm` and sign it with `key` (if given).
///
/// # Errors
/// Invalid manifest, not a component.
pub fn pack(
    path: &Path,
    wasm: &[u8],
    manifest: &[u8],
    key: Option<&SigningKey>,
) -> Result<Vec<u8>> {
    crate::Manifest::parse(manifest).map_err(|reason| PluginError::Manifest {
        path: path.to_path_buf(),
        reason,
    })?;
    let out = embed_manifest(path, wasm, manifest)?;
    match key {
        Some(k) => sign(path, &out, k),
        None => Ok(out),
    }
}
