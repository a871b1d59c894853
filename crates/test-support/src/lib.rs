//! Helpers the test binaries share (dev-dependency only): external commands that must
//! succeed (qemu-img, mkfs, …), and the plugins `cargo xtask plugins` built, with the
//! development key that signed them, and an OpenSSH server on loopback ([`sshd`]).

use std::path::{Path, PathBuf};
use std::process::Command;

pub mod sshd;

/// Run a command that must succeed; returns its standard output. A command that cannot
/// start names `scripts/setup.sh`, which installs every tool the tests use.
///
/// # Panics
/// When the command cannot start or fails (its output in the message).
pub fn run(cmd: &mut Command) -> Vec<u8> {
    let o = cmd.output().unwrap_or_else(|e| {
        panic!("{cmd:?}: {e} (scripts/setup.sh installs the tools the tests use)")
    });
    assert!(
        o.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o.stdout
}

/// As [`run`], the output as text.
///
/// # Panics
/// As [`run`].
pub fn run_text(cmd: &mut Command) -> String {
    String::from_utf8_lossy(&run(cmd)).into_owned()
}

/// The workspace's root folder: the nearest folder holding `Cargo.lock` above the package
/// cargo runs the test of (found at run time: a test binary built from another checkout
/// that shares the build folder would otherwise read that checkout's files).
pub fn workspace() -> PathBuf {
    let start = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    start
        .ancestors()
        .find(|d| d.join("Cargo.lock").is_file())
        .map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."),
            Path::to_path_buf,
        )
}

/// The folder of built plugins: `REHYDRA_TEST_PLUGINS`, else `plugins` in the cargo
/// target folder.
///
/// # Panics
/// When the plugins were not built (`cargo xtask plugins`).
pub fn built_plugins() -> PathBuf {
    let dir = std::env::var_os("REHYDRA_TEST_PLUGINS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR")
                .map_or_else(|| workspace().join("target"), PathBuf::from)
                .join("plugins")
        });
    assert!(
        dir.join("fixture.wasm").exists() && dir.join("hyperv-vm.wasm").exists(),
        "plugins not built in {}: run `cargo xtask plugins` first",
        dir.display()
    );
    dir
}

/// The development publisher key (hex) that signed the built plugins, as `rehydra
/// plugins trust rehydra-dev KEY` takes it.
///
/// # Panics
/// When the plugins were not built.
pub fn dev_key() -> String {
    let file = built_plugins().join("../rehydra-dev/publisher.pub");
    std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
        .trim()
        .to_string()
}
