//! `cargo xtask plugins`: build every plugin under `plugins/` to a WebAssembly component,
//! embed its manifest and sign it with the development key.
//!
//! Output: `<target>/plugins/<id>.wasm`, the key in `<target>/rehydra-dev/signing.key`
//! (created on first use) and its public half in `<target>/rehydra-dev/publisher.pub`.
//! Rust plugins are built with cargo (`--target wasm32-wasip2 --profile plugin`); a
//! plugin folder with an `app.py` is built with `componentize-py` (from `$COMPONENTIZE_PY`
//! or `PATH`).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use rehydra_plugin_host::package;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("plugins") => plugins(args.get(1).map(String::as_str)),
        _ => {
            eprintln!(
                "usage: cargo xtask plugins [<name>]\n\nBuilds every plugin under plugins/ (or just <name>) to <target>/plugins/<id>.wasm, signed with the development key."
            );
            std::process::exit(2);
        }
    }
}

/// The workspace being built: found from the current folder at run time (cargo runs the
/// alias there), not baked in at compile time — two clones sharing one target folder
/// share this binary too.
fn root() -> PathBuf {
    let start = std::env::current_dir().unwrap_or_default();
    start
        .ancestors()
        .find(|d| {
            d.join("plugins").is_dir() && d.join("xtask").is_dir() && d.join("Cargo.toml").is_file()
        })
        .map(Path::to_path_buf)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default()
        })
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from)
}

fn plugins(only: Option<&str>) -> Result<()> {
    let root = root();
    let target = target_dir();
    let key_path = target.join("rehydra-dev/signing.key");
    let key = if key_path.exists() {
        package::load_signing_key(&key_path)?
    } else {
        package::create_signing_key(&key_path)?
    };
    let public = hex::encode(key.verifying_key().as_bytes());
    std::fs::write(
        target.join("rehydra-dev/publisher.pub"),
        format!("{public}\n"),
    )?;
    let out_dir = target.join("plugins");
    std::fs::create_dir_all(&out_dir)?;

    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root.join("plugins"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("rehydra-plugin.toml").exists())
        .filter(|p| only.is_none_or(|o| p.file_name().is_some_and(|n| n == o)))
        .collect();
    dirs.sort();
    if dirs.is_empty() {
        bail!("no plugin folder (with a rehydra-plugin.toml) matched");
    }
    let rust: Vec<String> = dirs
        .iter()
        .filter(|d| d.join("Cargo.toml").exists())
        .map(|d| crate_name(d))
        .collect::<Result<_>>()?;
    if !rust.is_empty() {
        let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cmd.current_dir(&root).args([
            "build",
            "--quiet",
            "--target",
            "wasm32-wasip2",
            "--profile",
            "plugin",
        ]);
        for r in &rust {
            cmd.args(["-p", r]);
        }
        let st = cmd.status().context("running cargo")?;
        if !st.success() {
            bail!(
                "building the Rust plugins failed (is the wasm32-wasip2 target installed? rustup target add wasm32-wasip2)"
            );
        }
    }
    for d in &dirs {
        let manifest = std::fs::read(d.join("rehydra-plugin.toml"))?;
        let wasm_path = if d.join("Cargo.toml").exists() {
            target
                .join("wasm32-wasip2/plugin")
                .join(format!("{}.wasm", crate_name(d)?.replace('-', "_")))
        } else if d.join("app.py").exists() {
            componentize_py(&root, d, &target)?
        } else {
            bail!("{}: neither Cargo.toml nor app.py", d.display());
        };
        let wasm = std::fs::read(&wasm_path)
            .with_context(|| format!("reading {}", wasm_path.display()))?;
        let signed = package::pack(&wasm_path, &wasm, &manifest, Some(&key))?;
        let id = rehydra_plugin_host::Manifest::parse(&manifest)
            .map_err(anyhow::Error::msg)?
            .id;
        let out = out_dir.join(format!("{id}.wasm"));
        let tmp = out.with_extension("wasm.tmp");
        std::fs::write(&tmp, &signed)?;
        std::fs::rename(&tmp, &out)?;
        println!(
            "{}",
            serde_json::json!({"plugin": id, "file": out, "bytes": signed.len()})
        );
    }
    println!(
        "{}",
        serde_json::json!({"publisher": "rehydra-dev", "key": public, "key_file": key_path})
    );
    Ok(())
}

fn crate_name(dir: &Path) -> Result<String> {
    let text = std::fs::read_to_string(dir.join("Cargo.toml"))?;
    text.lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("name")
                .and_then(|r| r.trim().strip_prefix('='))
                .map(|v| v.trim().trim_matches('"').to_string())
        })
        .with_context(|| format!("{}: no package name", dir.display()))
}

fn componentize_py(root: &Path, dir: &Path, target: &Path) -> Result<PathBuf> {
    let tool = std::env::var("COMPONENTIZE_PY").unwrap_or_else(|_| "componentize-py".into());
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let out = target.join("wasm-py").join(format!("{name}.wasm"));
    std::fs::create_dir_all(out.parent().unwrap_or(target))?;
    let st = Command::new(&tool)
        .args(["-d"])
        .arg(root.join("plugin-sdk/wit"))
        .args(["-w", "plugin", "componentize", "app", "-p"])
        .arg(dir)
        .arg("-o")
        .arg(&out)
        .status()
        .with_context(|| format!("running {tool} (install it with: pip install componentize-py, or run scripts/setup.sh)"))?;
    if !st.success() {
        bail!("componentize-py failed for {}", dir.display());
    }
    Ok(out)
}
