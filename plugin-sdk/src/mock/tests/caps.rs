//! Grants, paths, files, HTTP, commands, log and cancel.

use super::{s, tempdir};
use crate::mock::{MockHost, Verb, output, response};
use crate::prelude::*;
use crate::{commands, files, host, http};

fn get(url: &str, headers: &[(&str, &str)]) -> http::Request {
    http::Request {
        method: "GET".into(),
        url: url.into(),
        headers: headers
            .iter()
            .map(|(n, v)| ((*n).into(), (*v).into()))
            .collect(),
        body: vec![],
    }
}

#[test]
fn every_capability_is_denied_without_its_grant_naming_it() {
    let (_d, root) = tempdir();
    let file = root.join("f");
    std::fs::write(&file, b"x").unwrap();
    let mock = MockHost::new();
    let target = root.join("g");
    let written = target.clone();
    let e = super::backup(&mock, "a", move |_| {
        for (e, name) in [
            (
                crate::engine::put_document("d", b"x").unwrap_err(),
                "`engine`",
            ),
            (files::read_file(s(&file)).unwrap_err(), "`files`"),
            (
                files::write_file(s(&target), b"x", false).unwrap_err(),
                "`files-write`",
            ),
            (
                http::send(&get("https://example.com/x", &[])).unwrap_err(),
                "grant probe http:example.com",
            ),
            (
                commands::run("local", "qemu-img", &["info".into()]).unwrap_err(),
                "grant probe command:qemu-img@local",
            ),
        ] {
            assert_eq!(e.code, ErrorCode::Denied, "{e:?}");
            assert!(e.message.contains(name), "{name}: {}", e.message);
        }
        crate::engine::put_document("d", b"x")?;
        Ok(BackupReport::new("crash"))
    })
    .unwrap_err();
    assert!(e.message.contains("grant probe engine"), "{}", e.message);
    assert!(!written.exists());
    let audit = mock.audit();
    assert_eq!(audit.iter().filter(|a| !a.allowed).count(), 6, "{audit:?}");
    assert!(
        mock.last_point().is_none(),
        "a failed backup records nothing"
    );
}

#[test]
fn paths_must_stay_inside_the_granted_roots() {
    let (_d, root) = tempdir();
    for sub in ["in/sub", "out"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
    }
    std::fs::write(root.join("out/secret"), b"s").unwrap();
    std::fs::write(root.join("in/sub/ok"), b"ok").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(root.join("out"), root.join("in/escape")).unwrap();
    let mock = MockHost::new().grant_files(root.join("in"));
    let denied = |p: String| {
        let e = mock
            .run(Verb::Discover, || files::read_file(&p))
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::Denied, "{p}: {e:?}");
    };
    denied(format!("{}/in/../out/secret", root.display()));
    denied(format!("{}/out/secret", root.display()));
    denied("in/sub/ok".into());
    denied(format!("{}/in/new/../../out/secret2", root.display()));
    denied(format!("{}/in/{}", root.display(), "x".repeat(4100)));
    denied(format!("{}/in{}", root.display(), "/a".repeat(130)));
    #[cfg(unix)]
    denied(format!("{}/in/escape/secret", root.display()));
    // `..` that stays inside the root is resolved, as the host does
    let ok = format!("{}/in/sub/../sub/ok", root.display());
    assert_eq!(
        mock.run(Verb::Discover, || files::read_file(&ok)).unwrap(),
        b"ok"
    );
    let e = mock
        .run(Verb::Discover, || {
            files::stat(&format!("{}/in/none", root.display()))
        })
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::NotFound);
}

#[test]
fn files_read_limits_listing_and_write_rules() {
    let (_d, root) = tempdir();
    let mock = MockHost::new()
        .grant_files(root.join("ro"))
        .grant_files_write(root.join("rw"));
    std::fs::create_dir_all(root.join("ro")).unwrap();
    std::fs::create_dir_all(root.join("rw/b")).unwrap();
    std::fs::write(root.join("rw/a"), b"old").unwrap();
    let big = std::fs::File::create(root.join("ro/big")).unwrap();
    big.set_len((16 << 20) + 1).unwrap();
    let at = |p: &str| format!("{}/{p}", root.display());
    mock.run(Verb::Restore, || {
        let e = files::read_file(&at("ro/big")).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidInput, "{e:?}");
        // a write grant allows reading; entries are sorted, folders marked
        let names: Vec<_> = files::list_dir(&at("rw")).unwrap();
        assert_eq!(names.len(), 2);
        assert_eq!(
            (names[0].name.as_str(), names[0].kind),
            ("a", files::EntryKind::File)
        );
        assert_eq!(names[1].kind, files::EntryKind::Directory);
        // never overwrites without `overwrite`
        let e = files::write_file(&at("rw/a"), b"new", false).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidInput);
        assert_eq!(files::read_file(&at("rw/a")).unwrap(), b"old");
        files::write_file(&at("rw/a"), b"new", true).unwrap();
        assert_eq!(files::read_file(&at("rw/a")).unwrap(), b"new");
        files::write_file(&at("rw/c"), b"c", false).unwrap();
        // a missing folder is not created
        let e = files::write_file(&at("rw/none/x"), b"x", false).unwrap_err();
        assert_eq!(e.code, ErrorCode::NotFound, "{e:?}");
        // reading is not writing
        let e = files::write_file(&at("ro/x"), b"x", false).unwrap_err();
        assert_eq!(e.code, ErrorCode::Denied);
        assert!(e.message.contains("`files-write`"), "{}", e.message);
    });
    assert_eq!(std::fs::read(root.join("rw/c")).unwrap(), b"c");
    assert!(!root.join("ro/x").exists());
    // writes are audited
    assert!(
        mock.audit()
            .iter()
            .any(|a| a.allowed && a.capability == "files-write")
    );
}

#[test]
fn http_checks_hosts_ports_and_headers_and_retries_like_the_host() {
    let mock = MockHost::new()
        .grant("http:management.azure.com")
        .grant("http:127.0.0.1:8080")
        .http_answer(
            "GET",
            "https://management.azure.com/a",
            response(503, "busy"),
        )
        .http_answer("GET", "https://management.azure.com/a", response(200, "ok"))
        .http_answer(
            "POST",
            "https://management.azure.com/p",
            response(503, "busy"),
        )
        .on_http(|req| {
            let mut r = response(201, req.url.clone());
            r.headers.push(("Set-Cookie".into(), "s=1".into()));
            r.headers.push(("etag".into(), "e".into()));
            Ok(r)
        });
    mock.run(Verb::Backup, || {
        // a retryable status is retried (GET); the plugin sees the final answer
        let r = http::send(&get("https://management.azure.com/a", &[])).unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"ok"[..]));
        // the last answer stays
        let r = http::send(&get("https://management.azure.com/a", &[])).unwrap();
        assert_eq!(r.status, 200);
        // a POST without Repeatability-Request-ID is not retried
        let mut post = get("https://management.azure.com/p", &[]);
        post.method = "POST".into();
        assert_eq!(http::send(&post).unwrap().status, 503);
        // the closure answers the rest; set-cookie is hidden
        let r = http::send(&get("http://127.0.0.1:8080/x?y", &[])).unwrap();
        assert_eq!(r.status, 201);
        assert_eq!(r.headers, vec![("etag".to_string(), "e".to_string())]);
        for (url, headers) in [
            ("https://management.azure.com:8443/x", vec![]),
            ("https://evil.example/x", vec![]),
            ("http://127.0.0.1/x", vec![]),
            (
                "https://management.azure.com/x",
                vec![("Authorization", "Bearer x")],
            ),
            ("https://management.azure.com/x", vec![(" cookie", "a=b")]),
            ("https://management.azure.com/x", vec![("Host", "other")]),
        ] {
            let e = http::send(&get(url, &headers)).unwrap_err();
            assert_eq!(e.code, ErrorCode::Denied, "{url} {headers:?}");
        }
        for url in ["ftp://management.azure.com/x", "management.azure.com/x"] {
            let e = http::send(&get(url, &[])).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidInput, "{url}");
        }
        let e = http::send(&get("https://management.azure.com/x", &[("bad name", "v")]));
        assert_eq!(e.unwrap_err().code, ErrorCode::InvalidInput);
    });
    assert!(
        mock.logs()
            .iter()
            .any(|(l, m)| *l == host::Level::Warn && m.contains("HTTP 503; try 2 of 5"))
    );
    assert_eq!(
        mock.http_requests().len(),
        4,
        "denied requests are not sent"
    );
}

#[test]
fn nothing_answers_an_unregistered_request() {
    let mock = MockHost::new().grant("http:*.vault.azure.net");
    let e = mock
        .run(Verb::Backup, || {
            http::send(&get("https://kv1.vault.azure.net/k", &[]))
        })
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::Unavailable, "{e:?}");
}

#[test]
fn commands_need_their_grant_on_their_target() {
    let mock = MockHost::new()
        .grant("command:qemu-img")
        .grant("command:powershell@hv01")
        .grant("command:powershell@hv02")
        .target("hv01")
        .on_command("qemu-img", |c| Ok(output(0, c.args.join(","))))
        .on_command("powershell", |c| {
            Ok(output(3, c.script.clone().unwrap_or_default()))
        });
    mock.run(Verb::Discover, || {
        let o = commands::run("local", "qemu-img", &["info".into(), "a b".into()]).unwrap();
        assert_eq!(o.stdout, b"info,a b");
        let o = commands::powershell("hv01", "Get-VM").unwrap();
        assert_eq!((o.status, o.stdout.as_slice()), (3, &b"Get-VM"[..]));
        // granted elsewhere only
        let e = commands::run("hv01", "qemu-img", &[]).unwrap_err();
        assert_eq!(e.code, ErrorCode::Denied);
        let e = commands::powershell("local", "x").unwrap_err();
        assert_eq!(e.code, ErrorCode::Denied);
        // granted, but no such target configured
        let e = commands::powershell("hv02", "x").unwrap_err();
        assert_eq!(e.code, ErrorCode::NotFound, "{e:?}");
    });
    let ran = mock.commands();
    assert_eq!(ran.len(), 2);
    assert_eq!(ran[1].target, "hv01");
    // a program the test did not stand in for does not exist
    let mock = MockHost::new().grant("command:qemu-img");
    let e = mock.run(Verb::Discover, || commands::run("local", "qemu-img", &[]));
    assert_eq!(e.unwrap_err().code, ErrorCode::NotFound);
}

#[test]
fn logs_progress_and_cancel() {
    let (_d, root) = tempdir();
    let mock = MockHost::new().grant("engine").grant_files(&root);
    mock.run(Verb::Backup, || {
        host::info("starting");
        host::progress(1, 2, &"x".repeat(5000));
        assert!(!host::cancelled());
    });
    assert_eq!(
        mock.logs(),
        vec![(host::Level::Info, "starting".to_string())]
    );
    assert_eq!(mock.progress()[0].2.len(), 4096);
    // every call refuses once the user cancelled, and log lines are dropped
    mock.set_cancelled(true);
    mock.run(Verb::Backup, || {
        assert!(host::cancelled());
        host::info("late");
        let e = files::stat(s(&root)).unwrap_err();
        assert_eq!(e.code, ErrorCode::Cancelled);
        let e = crate::engine::put_document("d", b"x").unwrap_err();
        assert_eq!(e.code, ErrorCode::Cancelled);
    });
    assert!(mock.logs().is_empty());
    // a closure may cancel the call in the middle (a handle on the same host)
    let handle = mock.clone();
    handle.set_cancelled(false);
    let mock = mock.grant("command:sleep").on_command("sleep", move |_| {
        handle.set_cancelled(true);
        Ok(output(0, ""))
    });
    mock.run(Verb::Backup, || {
        commands::run("local", "sleep", &[]).unwrap();
        assert!(host::cancelled());
    });
}

#[test]
fn malformed_grants_are_refused() {
    for spec in [
        "root",
        "files:relative",
        "engine:x",
        "command:/bin/sh",
        "http:a:b",
        "files:",
    ] {
        let r = std::panic::catch_unwind(|| MockHost::new().grant(spec));
        assert!(r.is_err(), "{spec}");
    }
}

#[test]
fn a_test_bucket_is_read_as_the_host_reads_object_storage() {
    let (_d, root) = tempdir();
    std::fs::create_dir_all(root.join("aks/backups/b1")).unwrap();
    std::fs::write(root.join("aks/backups/b1/velero-backup.json"), b"{}").unwrap();
    std::fs::write(root.join("secret.json"), b"s").unwrap();
    let mock = MockHost::new()
        .bucket("s3://velero", &root)
        .grant("files:s3://velero/aks")
        .grant_files_write(&root);
    let read = |p: &str| mock.run(Verb::Discover, || files::read_file(p));
    assert_eq!(
        read("s3://velero/aks/backups/b1/velero-backup.json").unwrap(),
        b"{}"
    );
    let names: Vec<String> = mock
        .run(Verb::Discover, || {
            files::list_dir("s3://velero/aks/backups")
        })
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, ["b1"]);
    for p in [
        "s3://velero/secret.json",
        "s3://velero/aks/../secret.json",
        "azure://velero/aks/backups/b1/velero-backup.json",
    ] {
        assert_eq!(read(p).unwrap_err().code, ErrorCode::Denied, "{p}");
    }
    // never written, whatever the folder's grants
    let e = mock
        .run(Verb::Discover, || {
            files::write_file("s3://velero/aks/new", b"x", false)
        })
        .unwrap_err();
    assert!(
        e.code == ErrorCode::Denied && e.message.contains("read-only"),
        "{e:?}"
    );
    // a bucket the test did not give
    let other = MockHost::new().grant("files:s3://elsewhere");
    let e = other
        .run(Verb::Discover, || files::read_file("s3://elsewhere/k"))
        .unwrap_err();
    assert!(e.message.contains("MockHost::bucket"), "{e:?}");
}
