//! The body of every fuzz target, as a function of the input bytes. `fuzz/` runs them
//! under libFuzzer (`scripts/fuzz.sh`, coverage-guided, as long as you like); the test
//! suite runs them over seeds made by the real writers and tools and thousands of
//! mutations of those seeds (`tests/corpus.rs`), so every parser of untrusted bytes is
//! exercised on every run of the tests without a second, instrumented build.
//!
//! Each function panics when the code under test breaks its promise (a panic, a read
//! outside the disk, a file created outside a restore target), and returns otherwise.

mod arc_sql_mi;
mod disk;
mod format;
mod kubernetes;
// the arc-sql-mi plugin's readers, compiled from its source at this crate's root as the
// kubernetes plugin's are
#[path = "../../../plugins/arc-sql-mi/src/arm.rs"]
#[allow(dead_code, clippy::all, clippy::pedantic)]
mod arm;
#[path = "../../../plugins/arc-sql-mi/src/instance.rs"]
#[allow(dead_code, clippy::all, clippy::pedantic)]
mod instance;
#[path = "../../../plugins/arc-sql-mi/src/kube.rs"]
#[allow(dead_code, clippy::all, clippy::pedantic)]
mod kube;
#[path = "../../../plugins/arc-sql-mi/src/names.rs"]
#[allow(dead_code, unused_imports, clippy::all, clippy::pedantic)]
mod names;
// the kubernetes plugin's readers, compiled from its source at this crate's root (its
// modules name each other as `crate::…`); they depend on the SDK, as sql-common does
#[path = "../../../plugins/kubernetes/src/api.rs"]
#[allow(dead_code, clippy::all, clippy::pedantic)]
mod api;
#[path = "../../../plugins/kubernetes/src/index.rs"]
#[allow(dead_code, clippy::all, clippy::pedantic)]
mod index;
mod ldif;
#[path = "../../../plugins/kubernetes/src/objects.rs"]
#[allow(dead_code, clippy::all, clippy::pedantic)]
mod objects;
mod plugin;
mod restore_map;
mod security_descriptor;
mod sql_chain;
#[path = "../../../plugins/kubernetes/src/tarball.rs"]
#[allow(dead_code, clippy::all, clippy::pedantic)]
mod tarball;

pub use arc_sql_mi::arc_sql_mi;
pub use disk::{partitions, qcow2, vhd, vhdx};
pub use format::{config, content_map, index_file, manifest, pack_header};
pub use kubernetes::{kube_index, velero_tarball};
pub use ldif::ldif;
pub use plugin::plugin_package;
pub use restore_map::restore_map;
pub use security_descriptor::security_descriptor;
pub use sql_chain::sql_chain;

/// A target's body.
pub type Body = fn(&[u8]);

/// Every target by name, as `fuzz/` names its binaries.
pub const TARGETS: &[(&str, Body)] = &[
    ("arc_sql_mi", arc_sql_mi),
    ("config", config),
    ("content_map", content_map),
    ("index_file", index_file),
    ("kube_index", kube_index),
    ("ldif", ldif),
    ("manifest", manifest),
    ("pack_header", pack_header),
    ("partitions", partitions),
    ("plugin_package", plugin_package),
    ("qcow2", qcow2),
    ("restore_map", restore_map),
    ("security_descriptor", security_descriptor),
    ("sql_chain", sql_chain),
    ("vhd", vhd),
    ("velero_tarball", velero_tarball),
    ("vhdx", vhdx),
];
