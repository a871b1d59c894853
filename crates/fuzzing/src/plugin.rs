//! Plugin files: untrusted downloads.

use rehydra_plugin_host::{Manifest, package};

/// Plugin files (untrusted downloads): the section walker, the embedded manifest and the signature block never panic, and a mutated file never passes signature verification unless its covered bytes are unchanged.
pub fn plugin_package(data: &[u8]) {
    // also try the input behind a component header, so the walker gets past the magic
    let mut framed = vec![0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];
    framed.extend_from_slice(data);
    for bytes in [data, &framed[..]] {
        let path = std::path::Path::new("fuzz.wasm");
        if let Ok(pkg) = package::parse(path, bytes) {
            if let Some(m) = pkg.manifest {
                let _ = Manifest::parse(m);
            }
            if let Some((block, covered)) = pkg.signature {
                let _ = package::verify(&block, covered);
            }
            let _ = package::embed_manifest(path, bytes, b"id='x'");
        }
    }
}
