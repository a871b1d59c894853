//! Host tests against the real fixture and example plugins (built by `cargo xtask plugins`).
//! Every failure mode must give its own error while the host keeps working.

mod hostile;
mod http;
mod objects;
mod ssh;
mod support;

use std::path::Path;
use std::sync::Arc;

use rehydra_plugin_host::*;
use support::*;

#[test]
fn signed_plugin_loads_and_answers() {
    let h = host(false);
    let p = fixture(&h);
    assert!(matches!(p.signer, Signer::Trusted { .. }));
    let info = h.describe(&p, Invocation::new(Grants::default())).unwrap();
    assert_eq!(info.id, "fixture");
    let assets = h
        .discover(
            &p,
            Invocation::new(Grants::default()),
            &props(&[("mode", "echo"), ("a", "b")]),
        )
        .unwrap();
    assert_eq!(assets.len(), 2);
    assert_eq!(assets[1].name, "b");
}

#[test]
fn trap_loop_and_memory_bomb_are_stopped_and_host_survives() {
    let h = host(false);
    let p = fixture(&h);
    let e = h
        .discover(
            &p,
            Invocation::new(Grants::default()),
            &props(&[("mode", "trap")]),
        )
        .unwrap_err();
    assert!(matches!(e, PluginError::Trap { .. }), "{e}");
    assert!(
        e.to_string().contains("asked to trap"),
        "panic message reaches the admin: {e}"
    );

    let t = std::time::Instant::now();
    let e = h
        .discover(
            &p,
            Invocation::new(Grants::default()),
            &props(&[("mode", "loop")]),
        )
        .unwrap_err();
    assert!(matches!(e, PluginError::Timeout { secs: 5, .. }), "{e}");
    assert!(t.elapsed().as_secs() < 30);

    let e = h
        .discover(
            &p,
            Invocation::new(Grants::default()),
            &props(&[("mode", "alloc")]),
        )
        .unwrap_err();
    assert!(matches!(e, PluginError::MemoryLimit { mib: 32, .. }), "{e}");

    // still serving
    assert_eq!(
        h.describe(&p, Invocation::new(Grants::default()))
            .unwrap()
            .id,
        "fixture"
    );
}

#[test]
fn capability_denials_are_errors_and_audited() {
    let dir = tempfile::tempdir().unwrap();
    let inside = dir.path().join("granted");
    std::fs::create_dir(&inside).unwrap();
    std::fs::write(inside.join("ok.txt"), "hello").unwrap();
    std::fs::write(dir.path().join("secret.txt"), "top secret").unwrap();
    let h = host(false);
    let p = fixture(&h);
    let g = || grants(&[&format!("files:{}", inside.display())]);

    let ok = h
        .discover(
            &p,
            Invocation::new(g()),
            &props(&[
                ("mode", "read"),
                ("path", inside.join("ok.txt").to_str().unwrap()),
            ]),
        )
        .unwrap();
    assert_eq!(ok[0].name, "hello");

    let audit = Arc::new(Audit::default());
    let mut inv = Invocation::new(g());
    inv.events = audit.clone();
    let outside = dir.path().join("secret.txt");
    let e = h
        .discover(
            &p,
            inv,
            &props(&[("mode", "read"), ("path", outside.to_str().unwrap())]),
        )
        .unwrap_err();
    assert!(
        matches!(
            e,
            PluginError::Failed {
                code: ErrorCode::Denied,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("outside the folders granted"), "{e}");
    let traversal = format!("{}/../secret.txt", inside.display());
    assert!(
        h.discover(
            &p,
            Invocation::new(g()),
            &props(&[("mode", "read"), ("path", &traversal)])
        )
        .is_err()
    );
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(&outside, inside.join("link")).unwrap();
        let e = h
            .discover(
                &p,
                Invocation::new(g()),
                &props(&[
                    ("mode", "read"),
                    ("path", inside.join("link").to_str().unwrap()),
                ]),
            )
            .unwrap_err();
        assert!(
            e.to_string().contains("outside"),
            "a symlink must not lead out of a root: {e}"
        );
    }
    // read grant does not allow writing
    let e = h
        .discover(
            &p,
            Invocation::new(g()),
            &props(&[
                ("mode", "write"),
                ("path", inside.join("new.txt").to_str().unwrap()),
            ]),
        )
        .unwrap_err();
    assert!(e.to_string().contains("files-write"), "{e}");
    assert!(!inside.join("new.txt").exists());
    // a read-only call (an assessment) may not write even where writing is granted
    let mut inv = Invocation::new(grants(&[&format!("files-write:{}", inside.display())]));
    inv.read_only = true;
    let e = h
        .discover(
            &p,
            inv,
            &props(&[
                ("mode", "write"),
                ("path", inside.join("new.txt").to_str().unwrap()),
            ]),
        )
        .unwrap_err();
    assert!(e.to_string().contains("this call only reads"), "{e}");
    assert!(!inside.join("new.txt").exists());

    let e = h
        .discover(
            &p,
            Invocation::new(g()),
            &props(&[("mode", "http"), ("url", "http://127.0.0.1:9/x")]),
        )
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("host `127.0.0.1` port 9 is not granted"),
        "{e}"
    );
    let e = h
        .discover(
            &p,
            Invocation::new(g()),
            &props(&[("mode", "command"), ("program", "id")]),
        )
        .unwrap_err();
    assert!(
        e.to_string().contains("`id` on `local` is not granted"),
        "{e}"
    );
    let e = h
        .discover(
            &p,
            Invocation::new(g()),
            &props(&[("mode", "ingest"), ("path", inside.to_str().unwrap())]),
        )
        .unwrap_err();
    assert!(
        e.to_string().contains("`engine` capability is not granted"),
        "{e}"
    );

    let events = audit.0.lock().unwrap();
    assert_eq!(events.len(), 1);
    assert!(
        !events[0].allowed
            && events[0].capability == "files"
            && events[0].target.ends_with("secret.txt")
    );
}

#[test]
fn granted_command_runs_without_inherited_secrets() {
    let h = host(false);
    let p = fixture(&h);
    let out = h
        .discover(
            &p,
            Invocation::new(grants(&["command:env"])),
            &props(&[("mode", "command"), ("program", "env")]),
        )
        .unwrap();
    let kept = ["SystemRoot", "USERPROFILE", "SSH_AUTH_SOCK"];
    let seen: Vec<&str> = out[0]
        .name
        .lines()
        .filter_map(|l| l.split('=').next())
        .collect();
    let mut vars: Vec<&str> = seen.iter().copied().filter(|v| !kept.contains(v)).collect();
    vars.sort_unstable();
    assert_eq!(
        vars,
        ["LANG", "PATH"],
        "the environment (passwords, tokens) is not inherited"
    );
    for k in kept {
        assert_eq!(
            seen.contains(&k),
            std::env::var_os(k).is_some(),
            "{k} (Windows start-up, the user's profile, the SSH agent) is passed on as it is"
        );
    }
    let e = h
        .discover(
            &p,
            Invocation::new(grants(&["command:env@hv01"])),
            &props(&[("mode", "command"), ("program", "env"), ("target", "hv01")]),
        )
        .unwrap_err();
    assert!(
        matches!(
            e,
            PluginError::Failed {
                code: ErrorCode::NotFound,
                ..
            }
        ) && e.to_string().contains("target `hv01` is not configured"),
        "{e}"
    );
}

fn tamper(src: &Path, dst: &Path, f: impl FnOnce(&mut Vec<u8>)) {
    let mut b = std::fs::read(src).unwrap();
    f(&mut b);
    std::fs::write(dst, b).unwrap();
}

#[test]
fn signatures_publishers_and_malformed_files() {
    let dir = tempfile::tempdir().unwrap();
    let src = built().join("fixture.wasm");
    let h = host(false);

    // one flipped byte in the code
    let bad = dir.path().join("tampered.wasm");
    tamper(&src, &bad, |b| b[200] ^= 1);
    assert!(matches!(
        h.load(&bad, &[dev_key()]),
        Err(PluginError::BadSignature { .. })
    ));
    // tampered is refused in developer mode too
    assert!(matches!(
        host(true).load(&bad, &[]),
        Err(PluginError::BadSignature { .. })
    ));

    // valid signature, key not trusted
    let e = h.load(&src, &[]).err().unwrap();
    assert!(matches!(e, PluginError::UnknownPublisher { .. }), "{e}");
    assert!(e.to_string().contains("rehydra plugins trust rehydra-dev"));
    // right key, other publisher name
    let other = TrustedKey {
        publisher: "someone-else".into(),
        ..dev_key()
    };
    assert!(matches!(
        h.load(&src, &[other]),
        Err(PluginError::UnknownPublisher { .. })
    ));

    // unsigned: refused unless developer mode
    let wasm = std::fs::read(&src).unwrap();
    let pkg = package::parse(&src, &wasm).unwrap();
    let (_, covered) = pkg.signature.unwrap();
    let unsigned = dir.path().join("unsigned.wasm");
    std::fs::write(&unsigned, covered).unwrap();
    assert!(matches!(
        h.load(&unsigned, &[dev_key()]),
        Err(PluginError::Unsigned { .. })
    ));
    assert!(matches!(
        host(true).load(&unsigned, &[]).unwrap().signer,
        Signer::Unsigned
    ));

    // bytes appended after the signature
    let appended = dir.path().join("appended.wasm");
    tamper(&src, &appended, |b| {
        b.extend_from_slice(&[0, 3, 1, b'x', 0])
    });
    assert!(matches!(
        h.load(&appended, &[dev_key()]),
        Err(PluginError::Malformed { .. })
    ));

    // malformed: garbage, truncated, a core module
    for (name, bytes) in [
        ("garbage.wasm", b"not wasm at all".to_vec()),
        ("truncated.wasm", wasm[..wasm.len() / 2].to_vec()),
        ("module.wasm", vec![0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]),
    ] {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        let e = h.load(&p, &[dev_key()]).err().unwrap();
        assert!(matches!(e, PluginError::Malformed { .. }), "{name}: {e}");
    }
}

/// The fixture component (unsigned) with every contract version rewritten from the
/// current `0.1.5` to `to` (same length): interface names and the manifest's `contract`.
fn fixture_built_for(to: &str) -> Vec<u8> {
    let src = built().join("fixture.wasm");
    let wasm = std::fs::read(&src).unwrap();
    let (_, covered) = package::parse(&src, &wasm).unwrap().signature.unwrap();
    let mut b = covered.to_vec();
    let (from, at_ver) = (b"rehydra:plugin/".as_slice(), b"@0.1.5".as_slice());
    let mut i = 0;
    while i + from.len() < b.len() {
        if b[i..].starts_with(from)
            && let Some(at) = b[i..(i + 64).min(b.len())]
                .windows(at_ver.len())
                .position(|w| w == at_ver)
        {
            b[i + at + 1..i + at + 6].copy_from_slice(to.as_bytes());
        }
        i += 1;
    }
    // the manifest section, and the copy `describe_from_manifest!` compiled in
    let key = b"contract = \"0.1.5\"".as_slice();
    let found: Vec<usize> = (0..b.len().saturating_sub(key.len()))
        .filter(|&at| b[at..].starts_with(key))
        .collect();
    for at in found {
        b[at + 12..at + 17].copy_from_slice(to.as_bytes());
    }
    b
}

#[test]
fn contract_version_mismatch_is_named() {
    let dir = tempfile::tempdir().unwrap();
    // the same component built against "rehydra:plugin@0.9.0"
    let p = dir.path().join("future.wasm");
    std::fs::write(&p, fixture_built_for("0.9.0")).unwrap();
    let e = host(true).load(&p, &[]).err().unwrap();
    assert!(matches!(e, PluginError::ContractMismatch { .. }), "{e}");
    assert!(
        e.to_string().contains("0.9.0") && e.to_string().contains("0.1.5"),
        "{e}"
    );
}

#[test]
fn plugins_built_for_the_earlier_contract_still_run() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("old.wasm");
    let old = fixture_built_for("0.1.0");
    assert!(
        !old.windows(6).any(|w| w == b"@0.1.5"),
        "every interface name was rewritten"
    );
    std::fs::write(&p, &old).unwrap();
    let h = host(true);
    let loaded = h.load(&p, &[]).unwrap();
    assert_eq!(loaded.manifest.contract, "0.1.0");
    assert_eq!(
        h.describe(&loaded, Invocation::new(Grants::default()))
            .unwrap()
            .id,
        "fixture"
    );
}

#[test]
fn compiled_components_are_cached() {
    let cache = tempfile::tempdir().unwrap();
    let cfg = HostConfig {
        cache_dir: Some(cache.path().join("c")),
        ..HostConfig::default()
    };
    let h = PluginHost::new(cfg.clone()).unwrap();
    let cold = h
        .load(&built().join("example-files.wasm"), &[dev_key()])
        .unwrap();
    assert!(!cold.load.cached);
    let h2 = PluginHost::new(cfg).unwrap();
    let warm = h2
        .load(&built().join("example-files.wasm"), &[dev_key()])
        .unwrap();
    assert!(warm.load.cached);
    assert_eq!(
        h2.describe(&warm, Invocation::new(Grants::default()))
            .unwrap()
            .id,
        "example-files"
    );
    // a damaged cache file is replaced, never trusted
    for e in std::fs::read_dir(cache.path().join("c")).unwrap() {
        std::fs::write(e.unwrap().path(), b"junk").unwrap();
    }
    let again = h2
        .load(&built().join("example-files.wasm"), &[dev_key()])
        .unwrap();
    assert!(!again.load.cached);
    assert_eq!(
        h2.describe(&again, Invocation::new(Grants::default()))
            .unwrap()
            .id,
        "example-files"
    );
}

#[test]
fn concurrency_is_bounded() {
    let h = Arc::new(
        PluginHost::new(HostConfig {
            max_concurrency: 2,
            ..HostConfig::default()
        })
        .unwrap(),
    );
    let p = Arc::new(fixture(&h));
    let threads: Vec<_> = (0..6)
        .map(|_| {
            let (h, p) = (h.clone(), p.clone());
            std::thread::spawn(move || {
                h.discover(
                    &p,
                    Invocation::new(grants(&["command:sleep"])),
                    &props(&[("mode", "command"), ("program", "sleep"), ("args", "0.2")]),
                )
                .unwrap()
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(h.peak_concurrency(), 2);
}

#[test]
fn http_to_granted_host_gets_credentials_the_plugin_never_sees() {
    let h = host(false);
    let p = fixture(&h);
    let (url, srv) = server();
    // a grant without a port is for the default port only: this server needs its port
    let port = url.split(':').nth(2).unwrap().split('/').next().unwrap();
    let granted = format!("http:127.0.0.1:{port}");
    let mut inv = Invocation::new(grants(&[&granted]));
    inv.credentials = Arc::new(Token);
    let a = h
        .discover(&p, inv, &props(&[("mode", "http"), ("url", &url)]))
        .unwrap();
    srv.join().unwrap();
    assert_eq!(a[0].name, "authenticated", "the host injected the token");
    let seen = format!("{:?}", a[0].properties);
    assert!(seen.contains("42") && seen.contains("200"), "{seen}");
    assert!(
        !seen.to_ascii_lowercase().contains("session=abc"),
        "cookies are hidden from the plugin: {seen}"
    );
    assert!(!seen.contains("s3cret"));

    // a plugin may not bring its own credentials
    let mut inv = Invocation::new(grants(&[&granted]));
    inv.credentials = Arc::new(Token);
    let e = h
        .discover(
            &p,
            inv,
            &props(&[("mode", "http"), ("url", &url), ("header", "Authorization")]),
        )
        .unwrap_err();
    assert!(
        matches!(
            e,
            PluginError::Failed {
                code: ErrorCode::Denied,
                ..
            }
        ),
        "{e}"
    );
    // unreachable endpoint: a clear error, not a hang
    let e = h
        .discover(
            &p,
            Invocation::new(grants(&["http:127.0.0.1:9"])),
            &props(&[("mode", "http"), ("url", "http://127.0.0.1:9/")]),
        )
        .unwrap_err();
    assert!(
        matches!(
            e,
            PluginError::Failed {
                code: ErrorCode::Unavailable,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn python_plugin_answers_describe_and_discover() {
    // built by `cargo xtask plugins` with componentize-py: same contract, another language
    let file = built().join("hello-python.wasm");
    assert!(
        file.exists(),
        "hello-python.wasm not built: install componentize-py (scripts/setup.sh) and run `cargo xtask plugins`"
    );
    let h = PluginHost::new(HostConfig {
        cache_dir: Some(built().join("../plugin-cache")),
        ..HostConfig::default()
    })
    .unwrap();
    let p = h.load(&file, &[dev_key()]).unwrap();
    eprintln!(
        "hello-python: {} KiB, load {:.0} ms (cached: {})",
        std::fs::metadata(&file).unwrap().len() / 1024,
        p.load.millis,
        p.load.cached
    );
    let info = h.describe(&p, Invocation::new(Grants::default())).unwrap();
    assert_eq!(
        (info.id.as_str(), info.workloads.as_slice()),
        ("hello-python", ["files".to_string()].as_slice())
    );

    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("vm-configs")).unwrap();
    std::fs::write(dir.path().join("file.txt"), b"x").unwrap();
    let root = dir.path().to_str().unwrap();
    let e = h
        .discover(
            &p,
            Invocation::new(Grants::default()),
            &props(&[("root", root)]),
        )
        .unwrap_err();
    assert!(
        matches!(
            e,
            PluginError::Failed {
                code: ErrorCode::Denied,
                ..
            }
        ),
        "{e}"
    );
    let assets = h
        .discover(
            &p,
            Invocation::new(grants(&[&format!("files:{root}")])),
            &props(&[("root", root)]),
        )
        .unwrap();
    assert_eq!(assets.len(), 1);
    assert_eq!(assets[0].name, "vm-configs");
    let e = h
        .discover(&p, Invocation::new(Grants::default()), &[])
        .unwrap_err();
    assert!(
        matches!(
            e,
            PluginError::Failed {
                code: ErrorCode::InvalidInput,
                ..
            }
        ),
        "{e}"
    );
}
