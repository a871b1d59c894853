//! The grant and path rules.

use super::*;

#[test]
fn grants_parse_and_check() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    std::fs::create_dir(root.join("in")).unwrap();
    std::fs::create_dir(root.join("out")).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(root.join("out"), root.join("in/escape")).unwrap();
    let g = Grants(vec![
        Grant::parse(&format!("files:{}", root.join("in").display())).unwrap(),
        Grant::parse("http:*.vault.azure.net").unwrap(),
        Grant::parse("command:qemu-img").unwrap(),
    ]);
    assert!(
        g.path(
            CapabilityKind::Files,
            root.join("in/new/file").to_str().unwrap()
        )
        .is_ok()
    );
    assert!(
        g.path(CapabilityKind::Files, root.join("out").to_str().unwrap())
            .is_err()
    );
    assert!(
        g.path(
            CapabilityKind::Files,
            root.join("in/../out").to_str().unwrap()
        )
        .is_err()
    );
    #[cfg(unix)]
    assert!(
        g.path(
            CapabilityKind::Files,
            root.join("in/escape/x").to_str().unwrap()
        )
        .is_err()
    );
    assert!(
        g.path(
            CapabilityKind::FilesWrite,
            root.join("in").to_str().unwrap()
        )
        .is_err()
    );
    let w = Grants(vec![
        Grant::parse(&format!("files-write:{}", root.join("out").display())).unwrap(),
    ]);
    assert!(
        w.path(CapabilityKind::Files, root.join("out/x").to_str().unwrap())
            .is_ok(),
        "write implies read"
    );
    assert!(g.host("kv1.vault.azure.net", 443, 443));
    assert!(!g.host("vault.azure.net.evil.com", 443, 443));
    assert!(
        !g.host("kv1.vault.azure.net", 8443, 443),
        "no port: the default only"
    );
    let arm = Grants(vec![
        Grant::parse("http:management.azure.com").unwrap(),
        Grant::parse("http:127.0.0.1:8080").unwrap(),
    ]);
    assert!(arm.host("management.azure.com", 443, 443));
    assert!(arm.host("management.azure.com", 80, 80));
    assert!(!arm.host("management.azure.com", 8443, 443));
    assert!(!arm.host("management.azure.com", 443, 80));
    assert!(arm.host("127.0.0.1", 8080, 80) && arm.host("127.0.0.1", 8080, 443));
    assert!(!arm.host("127.0.0.1", 80, 80));
    // long and deep paths are refused before anything is resolved
    let long = format!("{}/{}", root.display(), "x".repeat(PATH_MAX_BYTES));
    assert!(
        w.path(CapabilityKind::Files, &long)
            .unwrap_err()
            .contains("too long")
    );
    let deep = format!(
        "{}{}",
        root.join("out").display(),
        "/a".repeat(PATH_MAX_DEPTH)
    );
    assert!(
        w.path(CapabilityKind::Files, &deep)
            .unwrap_err()
            .contains("too deep")
    );
    assert!(
        Grants::default()
            .path(CapabilityKind::Files, "/etc/passwd")
            .unwrap_err()
            .contains("nothing is granted")
    );
    assert!(g.command("qemu-img", "local"));
    assert!(!g.command("qemu-img", "hv01"));
    // the grant on a cluster covers its nodes (which the host checks the cluster lists)
    let c = Grants(vec![Grant::parse("command:powershell@hci-a").unwrap()]);
    assert!(c.command("powershell", "hci-a") && c.command("powershell", "hci-a/HV02"));
    assert!(!c.command("powershell", "hci-b/HV02") && !c.command("pwsh", "hci-a/HV02"));
    assert!(!c.command("powershell", "hci-a.x/HV02") && !c.command("powershell", "hci/a"));
    assert!(Grant::parse("http:host:x").is_err() && Grant::parse("http:a:1:2").is_err());
    assert!(Grant::parse("files:relative").is_err());
    assert!(Grant::parse("root").is_err());
    assert!(Grant::parse("command:/bin/sh").is_err());
    assert_eq!(Grant::parse("engine").unwrap().spec(), "engine");
}

#[test]
fn directory_grants_name_one_server() {
    let g = Grants(vec![Grant::parse("ldap:DC1.Contoso.local").unwrap()]);
    assert_eq!(g.0[0].spec(), "ldap:dc1.contoso.local");
    assert!(g.directory("dc1.contoso.local"));
    assert!(g.directory("DC1.CONTOSO.LOCAL"));
    assert!(!g.directory("dc2.contoso.local"));
    assert!(Grant::parse("ldap:127.0.0.1:3269").is_ok());
    for bad in ["ldap:", "ldap:dc1/x", "ldap:dc1:port", "ldap:dc 1"] {
        assert!(Grant::parse(bad).is_err(), "{bad}");
    }
    assert!(
        Grant::parse("ldaps:dc1")
            .unwrap_err()
            .0
            .contains("ldap:<server>")
    );
}

#[test]
fn sql_grants_name_one_instance_and_not_a_directory() {
    let g = Grants(vec![Grant::parse("sql:SQL01.Contoso.local:1433").unwrap()]);
    assert_eq!(g.0[0].spec(), "sql:sql01.contoso.local:1433");
    assert!(g.sql_server("sql01.contoso.local:1433"));
    assert!(!g.sql_server("sql01.contoso.local"));
    // one kind does not grant the other
    assert!(!g.directory("sql01.contoso.local:1433"));
    let l = Grants(vec![Grant::parse("ldap:dc1").unwrap()]);
    assert!(!l.sql_server("dc1"));
    for bad in ["sql:", "sql:a\\inst", "sql:a:port", "sql:a b"] {
        let e = Grant::parse(bad).unwrap_err().0;
        assert!(
            bad == "sql:" || e.contains("SQL Server instance"),
            "{bad}: {e}"
        );
    }
}

#[test]
fn object_storage_folders_are_granted_for_reading_only() {
    let g = Grant::parse("files:AZ://velero/aks/").unwrap();
    assert_eq!(g.spec(), "files:azure://velero/aks", "kept normalised");
    let e = Grant::parse("files-write:s3://velero/aks").unwrap_err();
    assert!(e.0.contains("read-only"), "{e}");
    let e = Grant::parse("files:s3://velero/a/../b").unwrap_err();
    assert!(e.0.contains("`..`"), "{e}");
    let g = Grants(vec![
        g,
        Grant::parse("files:s3://velero-s3/aks/backups").unwrap(),
        Grant::parse("files-write:/srv/restore").unwrap(),
    ]);
    assert_eq!(
        g.read_roots(),
        vec![PathBuf::from("/srv/restore")],
        "the engine never opens a bucket as a folder"
    );
    assert_eq!(
        g.object("azure://velero/aks/backups/b1/velero-backup.json")
            .unwrap()
            .key,
        "aks/backups/b1/velero-backup.json"
    );
    assert!(g.object("s3://velero-s3/aks/backups").is_ok());
    for outside in [
        "s3://velero/aks/x",
        "s3://velero-s3/aks/backupsx/y",
        "s3://velero-s3/aks",
        "azure://velero/other",
        "s3://velero-s3/aks/backups/../../secrets",
    ] {
        assert!(g.object(outside).is_err(), "{outside}");
    }
    // a bucket path is never a folder on this machine, whatever the grants
    assert!(
        g.path(CapabilityKind::Files, "azure://velero/aks/b1")
            .is_err()
    );
    let nothing = Grants(vec![Grant::parse("files:/srv").unwrap()]);
    let e = nothing.object("s3://velero-s3/aks/backups/b1").unwrap_err();
    assert!(
        e.contains("files:s3://velero-s3/aks/backups)"),
        "its folder: {e}"
    );
}
