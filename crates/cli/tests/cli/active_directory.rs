//! The `active-directory` plugin against a real Samba AD domain controller: objects made
//! over LDAP, backed up, deleted and changed, then restored (reanimated with their SIDs,
//! memberships linked again, attributes rolled back, an OU with what was in it), and the
//! changes between two backups, and between a backup and the live directory, named; a
//! second domain with the Recycle Bin on, where Samba cannot undelete; a third bound to
//! with Kerberos, no password kept.

use serde_json::Value;

use crate::support::samba::{BASE, Dc};
use crate::support::{Cli, json_out};

fn prop(a: &Value, n: &str) -> String {
    a["properties"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == n)
        .map(|p| p["value"].as_str().unwrap().to_string())
        .unwrap_or_else(|| panic!("no property {n}: {a}"))
}

/// The single value of `attr` in ldapsearch's LDIF (base64 kept as it is).
fn value(ldif: &str, attr: &str) -> Option<String> {
    ldif.lines().find_map(|l| {
        l.strip_prefix(&format!("{attr}: "))
            .or_else(|| l.strip_prefix(&format!("{attr}:: ")))
            .map(str::to_string)
    })
}

/// The grants the plugin asks for, on the test's DC.
fn grant(cli: &Cli) {
    cli.ok(
        None,
        &[
            "plugins",
            "grant",
            "active-directory",
            "engine",
            "ldap:127.0.0.1",
        ],
    );
}

fn estate(dc: &Dc) {
    dc.apply(&format!(
        "dn: OU=Staff,{BASE}
objectClass: organizationalUnit
ou: Staff
description: the staff

dn: CN=Alice Smith,OU=Staff,{BASE}
objectClass: user
sAMAccountName: alice
givenName: Alice
sn: Smith
title: Engineer
userAccountControl: 514

dn: CN=Carol King,OU=Staff,{BASE}
objectClass: user
sAMAccountName: carol
givenName: Carol
userAccountControl: 514

dn: CN=Bob Jones,CN=Users,{BASE}
objectClass: user
sAMAccountName: bob
givenName: Bob
title: Operator
userAccountControl: 514

dn: CN=Ops,CN=Users,{BASE}
objectClass: group
sAMAccountName: ops
member: CN=Alice Smith,OU=Staff,{BASE}
member: CN=Bob Jones,CN=Users,{BASE}

dn: CN=Domain Admins,CN=Users,{BASE}
changetype: modify
add: member
member: CN=Alice Smith,OU=Staff,{BASE}

dn: CN=All Staff,CN=Users,{BASE}
objectClass: group
sAMAccountName: all-staff
member: CN=Ops,CN=Users,{BASE}
member: CN=Carol King,OU=Staff,{BASE}

dn: CN={GPO},CN=Policies,CN=System,{BASE}
objectClass: groupPolicyContainer
displayName: Rehydra test GPO
gPCFileSysPath: \\\\test.lan\\sysvol\\test.lan\\Policies\\{GPO}
flags: 0
versionNumber: 1
"
    ));
    // its SYSVOL folder, as the Group Policy tools make it
    let folder = policies(dc).join(GPO);
    std::fs::create_dir_all(folder.join("Machine")).unwrap();
    std::fs::write(folder.join("GPT.INI"), GPT_INI).unwrap();
    std::fs::write(folder.join("Machine/Registry.pol"), b"PReg\x01\0\0\0").unwrap();
}

/// A GPO of the estate, and its `GPT.INI`.
const GPO: &str = "{D0C0FFEE-0000-4000-8000-000000000001}";
const GPT_INI: &str = "[General]\r\nVersion=1\r\ndisplayName=Rehydra test GPO\r\n";

/// The DC's SYSVOL `Policies` folder.
fn policies(dc: &Dc) -> std::path::PathBuf {
    dc.dir.path().join("state/sysvol/test.lan/Policies")
}

#[test]
#[allow(clippy::too_many_lines)]
fn deleted_users_and_ous_come_back_with_their_sids_and_memberships() {
    let dc = Dc::start(false);
    estate(&dc);
    let cli = Cli::new(&["active-directory"]);
    cli.init_repo();
    // a wrong CA: the certificate is refused and nothing is kept
    let o = dc.configure(&cli, false);
    assert!(!o.status.success(), "the test CA is not a system root");
    let out = cli.ok(None, &["plugins", "directory", "list"]);
    assert!(!out.contains("127.0.0.1"), "{out}");
    let o = dc.configure(&cli, true);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && out.contains("bound to dc1.test.lan (DC=test,DC=lan)"),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let run = |args: &[&str]| {
        let mut a = vec!["--json", "plugins", "run", "active-directory"];
        a.extend(args);
        cli.run(None, &a)
    };
    // not granted yet: denied, and the audit log says so
    let o = run(&["discover", "--set", "directory=127.0.0.1"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("ldap:127.0.0.1"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    grant(&cli);

    // ---- discover and assess
    let assets = json_out(&run(&["discover", "--set", "directory=127.0.0.1"]));
    let a = &assets[0];
    assert_eq!(a["id"], "test.lan@127.0.0.1", "{a}");
    assert_eq!(prop(a, "recycle-bin"), "disabled");
    assert!(
        prop(a, "domain-controllers").contains("dc1.test.lan"),
        "{a}"
    );
    assert!(prop(a, "fsmo").contains("PDC emulator: DC1"), "{a}");
    assert_eq!(
        prop(a, "organizational-units"),
        "2",
        "Domain Controllers and Staff: {a}"
    );
    assert_eq!(prop(a, "tombstone-lifetime-days"), "180");
    let users: u32 = prop(a, "users").parse().unwrap();
    assert!(users >= 5, "Administrator, Guest, krbtgt and ours: {a}");
    let findings = json_out(&run(&["assess", "--set", "directory=127.0.0.1"])).to_string();
    assert!(
        findings.contains("ad.single-dc") && findings.contains("ad.recycle-bin-off"),
        "{findings}"
    );

    // ---- back up
    // the GPO folders of SYSVOL too
    let sysvol_dir = policies(&dc);
    let sysvol = format!("sysvol={}", sysvol_dir.display());
    cli.ok(
        None,
        &[
            "plugins",
            "grant",
            "active-directory",
            &format!("files:{}", sysvol_dir.display()),
            &format!("files-write:{}", sysvol_dir.display()),
        ],
    );
    let backup = || {
        let o = run(&["backup", "--asset", "test.lan@127.0.0.1", "--set", &sysvol]);
        let log = String::from_utf8_lossy(&o.stderr).into_owned();
        let v = json_out(&o);
        let id = v.get("restore_point").unwrap_or(&v)["id"]
            .as_str()
            .unwrap()
            .to_string();
        (id, log)
    };
    let (first, _) = backup();
    let alice_before = dc.search("(sAMAccountName=alice)", &["objectSid", "objectGUID"]);
    let sid = value(&alice_before, "objectSid").unwrap();

    // ---- someone deletes alice, demotes bob and takes him out of Ops
    let o = dc.ldap("ldapdelete", &[&format!("CN=Alice Smith,OU=Staff,{BASE}")]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    dc.apply(&format!(
        "dn: CN=Bob Jones,CN=Users,{BASE}\nchangetype: modify\nreplace: title\ntitle: Intern\n\ndn: CN=Ops,CN=Users,{BASE}\nchangetype: modify\ndelete: member\nmember: CN=Bob Jones,CN=Users,{BASE}\n"
    ));
    // the next backup names what changed since the first
    let (second, log) = backup();
    // alice gone; bob demoted; Ops lost bob (and alice), Domain Admins lost alice
    assert!(log.contains(": 0 added, 1 deleted, 3 changed"), "{log}");

    // ---- alice comes back: reanimated, same SID, attributes and membership back
    let restore = |snap: &str, extra: &[&str]| {
        let mut a = vec!["restore", snap, "--target", "-"];
        a.extend(extra);
        run(&a)
    };
    // ---- what changed between the two points, either way round: older to newer
    for (here, there) in [(&first, &second[..10]), (&second, &first[..])] {
        let diff = json_out(&restore(
            here,
            &["--set", &format!("compare={there}"), "--plan-only"],
        ))
        .to_string();
        for want in [
            "0 added, 1 deleted, 3 changed",
            "Deleted CN=Alice Smith,OU=Staff,DC=test,DC=lan",
            "in the older point, not in the newer",
            "Changed CN=Bob Jones,CN=Users,DC=test,DC=lan",
            "title: Operator → Intern",
            &format!("({}) to ", &first[..12]),
        ] {
            assert!(diff.contains(want), "{want}: {diff}");
        }
    }
    let latest = json_out(&restore(
        &first,
        &["--set", "compare=latest", "--plan-only"],
    ));
    assert!(
        latest.to_string().contains("1 deleted, 3 changed"),
        "{latest}"
    );
    // never the point itself, never a point of another asset, never a made-up one
    let folder = cli.dir.path().join("folder");
    std::fs::create_dir_all(&folder).unwrap();
    let other = json_out(&cli.run(None, &["--json", "backup", folder.to_str().unwrap()]));
    let other = other["restore_point"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(other.len(), 64, "a restore point of a folder");
    for (bad, says) in [
        (first.clone(), "names the restore point being compared"),
        (other.clone(), "has no restore point"),
        ("ffffffff".to_string(), "has no restore point"),
        ("ab".to_string(), "neither a restore point id"),
    ] {
        let o = restore(&first, &["--set", &format!("compare={bad}"), "--plan-only"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(says), "{bad}: {err}");
    }
    // ---- what changed in the live directory since the first point, value by value
    let diff = json_out(&restore(&first, &["--set", "compare=live", "--plan-only"])).to_string();
    for want in [
        "0 added, 1 deleted, 3 changed",
        "Deleted CN=Alice Smith,OU=Staff,DC=test,DC=lan",
        "Changed CN=Bob Jones,CN=Users,DC=test,DC=lan",
        "title: Operator → Intern",
    ] {
        assert!(diff.contains(want), "{want}: {diff}");
    }
    assert!(
        !restore(&first, &["--set", "compare=live"]).status.success(),
        "a comparison restores nothing"
    );
    // ---- the wizard's picker: the point's objects that hold "smith", each with its state
    let found = json_out(&restore(&first, &["--set", "find=smith", "--plan-only"])).to_string();
    assert!(
        found.contains("pick:CN=Alice Smith,OU=Staff,DC=test,DC=lan")
            && found.contains("(user, deleted in the directory)"),
        "{found}"
    );
    let o = restore(&first, &["--set", "find=smith"]);
    assert!(!o.status.success(), "a listing restores nothing");
    let plan = json_out(&restore(&first, &["--set", "object=alice", "--plan-only"])).to_string();
    assert!(
        plan.contains("Reanimate CN=Alice Smith,OU=Staff,DC=test,DC=lan"),
        "{plan}"
    );
    assert!(
        plan.contains(
            "Add CN=Alice Smith,OU=Staff,DC=test,DC=lan to CN=Ops,CN=Users,DC=test,DC=lan"
        ),
        "{plan}"
    );
    assert!(
        !dc.search("(sAMAccountName=alice)", &["cn"])
            .contains("dn: "),
        "a plan writes nothing"
    );
    json_out(&restore(&first, &["--set", "object=alice"]));
    let alice = dc.search(
        "(sAMAccountName=alice)",
        &["objectSid", "givenName", "title", "memberOf"],
    );
    assert_eq!(
        value(&alice, "objectSid").as_deref(),
        Some(sid.as_str()),
        "same SID: {alice}"
    );
    assert_eq!(
        value(&alice, "givenName").as_deref(),
        Some("Alice"),
        "{alice}"
    );
    assert_eq!(
        value(&alice, "title").as_deref(),
        Some("Engineer"),
        "{alice}"
    );
    assert!(
        alice.contains("memberOf: CN=Ops,CN=Users,DC=test,DC=lan"),
        "{alice}"
    );

    // ---- bob: title rolled back, shown old → new first; membership linked again
    let plan = json_out(&restore(
        &first,
        &[
            "--set",
            "object=bob",
            "--set",
            "attributes=title",
            "--plan-only",
        ],
    ))
    .to_string();
    assert!(plan.contains("title: Intern → Operator"), "{plan}");
    json_out(&restore(
        &first,
        &["--set", "object=bob", "--set", "attributes=title"],
    ));
    let bob = dc.search("(sAMAccountName=bob)", &["title", "memberOf"]);
    assert_eq!(value(&bob, "title").as_deref(), Some("Operator"), "{bob}");
    assert!(
        bob.contains("memberOf: CN=Ops,CN=Users,DC=test,DC=lan"),
        "{bob}"
    );

    // ---- someone opens Staff to everyone: its DACL rolled back, only when named
    let staff = format!("OU=Staff,{BASE}");
    let objectdn = format!("--objectdn={staff}");
    dc.dsacl(&["set", &objectdn, "--sddl=(A;CI;RPWP;;;S-1-1-0)"]);
    assert!(dc.dsacl(&["get", &objectdn]).contains("(A;CI;RPWP;;;WD)"));
    let object = format!("object={staff}");
    let plan = |attrs: &str| {
        let a = format!("attributes={attrs}");
        json_out(&restore(
            &first,
            &["--set", &object, "--set", &a, "--plan-only"],
        ))
        .to_string()
    };
    let all = plan("*");
    assert!(!all.contains("nTSecurityDescriptor"), "not with *: {all}");
    let sd = plan("nTSecurityDescriptor");
    assert!(
        sd.contains("nTSecurityDescriptor: DACL entries removed: (A;CI;RPWP;;;S-1-1-0)"),
        "{sd}"
    );
    json_out(&restore(
        &first,
        &["--set", &object, "--set", "attributes=nTSecurityDescriptor"],
    ));
    let acl = dc.dsacl(&["get", &objectdn]);
    assert!(!acl.contains(";;;WD)") && acl.contains("D:AI("), "{acl}");
    assert!(
        !plan("nTSecurityDescriptor").contains("DACL entries"),
        "as at the point"
    );

    // ---- the whole Staff OU deleted with its users: back with everything in it
    for dn in [
        format!("CN=Alice Smith,OU=Staff,{BASE}"),
        format!("CN=Carol King,OU=Staff,{BASE}"),
        format!("OU=Staff,{BASE}"),
    ] {
        let o = dc.ldap("ldapdelete", &[&dn]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    // as in the wizard: search, plan, run (the times are printed, for the note, not tested)
    let t = std::time::Instant::now();
    let found = json_out(&restore(&first, &["--set", "find=staff", "--plan-only"])).to_string();
    assert!(
        found.contains("pick:OU=Staff,DC=test,DC=lan")
            && found.contains("(organizationalUnit, deleted in the directory)"),
        "{found}"
    );
    let searched = t.elapsed();
    let ou = [
        "--set",
        "object=OU=Staff,DC=test,DC=lan",
        "--set",
        "subtree=true",
    ];
    let mut planning = ou.to_vec();
    planning.push("--plan-only");
    json_out(&restore(&first, &planning));
    let planned = t.elapsed();
    json_out(&restore(&first, &ou));
    eprintln!(
        "a deleted OU with its users: found after {searched:?}, planned after {planned:?}, restored after {:?}",
        t.elapsed()
    );
    let staff = dc.search(
        "(|(sAMAccountName=alice)(sAMAccountName=carol))",
        &["memberOf", "objectSid"],
    );
    assert!(
        staff.contains("CN=Alice Smith,OU=Staff") && staff.contains("CN=Carol King,OU=Staff"),
        "{staff}"
    );
    assert!(
        staff.contains(&sid),
        "alice keeps her SID through a second deletion: {staff}"
    );
    assert!(
        staff.contains("memberOf: CN=All Staff,CN=Users,DC=test,DC=lan"),
        "carol's group: {staff}"
    );

    // ---- a GPO deleted with its SYSVOL folder: both back, the folder as it was
    let gpo_dn = format!("CN={GPO},CN=Policies,CN=System,{BASE}");
    let o = dc.ldap("ldapdelete", &[&gpo_dn]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::remove_dir_all(sysvol_dir.join(GPO)).unwrap();
    let object = format!("object={gpo_dn}");
    let gpo = |extra: &[&str]| {
        let mut a = vec!["--set", object.as_str()];
        a.extend(extra);
        restore(&first, &a)
    };
    let plan = json_out(&gpo(&["--plan-only"])).to_string();
    assert!(
        plan.contains(&format!("Reanimate {gpo_dn}")) && plan.contains("name sysvol="),
        "without sysvol= the plan says the folder is in the point: {plan}"
    );
    let plan = json_out(&gpo(&["--set", &sysvol, "--plan-only"])).to_string();
    assert!(
        plan.contains(&format!("Put back the SYSVOL folder {GPO}")),
        "{plan}"
    );
    json_out(&gpo(&["--set", &sysvol]));
    assert_eq!(
        std::fs::read_to_string(sysvol_dir.join(GPO).join("GPT.INI")).unwrap(),
        GPT_INI
    );
    assert!(sysvol_dir.join(GPO).join("Machine/Registry.pol").is_file());
    assert!(dc.search(&format!("(cn={GPO})"), &["cn"]).contains("dn: "));
    // a folder that is there is never overwritten: the plan leaves it and says so
    std::fs::write(sysvol_dir.join(GPO).join("GPT.INI"), "changed since").unwrap();
    let plan = json_out(&gpo(&["--set", &sysvol, "--plan-only"])).to_string();
    assert!(
        plan.contains("left as it is") && !plan.contains("Put back the SYSVOL folder"),
        "{plan}"
    );

    // ---- verify reads every document back
    let v = json_out(&run(&["verify", &first]));
    assert_eq!(v["ok"], true, "{v}");
}

#[test]
fn samba_with_the_recycle_bin_on_is_refused_with_the_reason() {
    // a second domain, with the Recycle Bin enabled (locally, the only way Samba allows)
    let dc = Dc::start(true);
    estate(&dc);
    let cli = Cli::new(&["active-directory"]);
    cli.init_repo();
    assert!(dc.configure(&cli, true).status.success());
    grant(&cli);
    // Samba's default refuses a Kerberos bind over TLS without a SASL layer: said, with the fix
    let o = cli
        .cmd(None)
        .envs(dc.kerberos(true))
        .args(["plugins", "directory", "add", "dc1.test.lan", "--kerberos"])
        .args(["--address", "127.0.0.1:636", "--ca-file"])
        .arg(dc.ca())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success()
            && said.contains("ldap server require strong auth = allow_sasl_over_tls"),
        "{said}"
    );
    let run = |args: &[&str]| {
        let mut a = vec!["--json", "plugins", "run", "active-directory"];
        a.extend(args);
        cli.run(None, &a)
    };
    let assets = json_out(&run(&["discover", "--set", "directory=127.0.0.1"]));
    assert_eq!(prop(&assets[0], "recycle-bin"), "enabled", "{assets}");
    let findings = json_out(&run(&["assess", "--set", "directory=127.0.0.1"])).to_string();
    assert!(!findings.contains("ad.recycle-bin-off"), "{findings}");
    let v = json_out(&run(&["backup", "--asset", "test.lan@127.0.0.1"]));
    let point = v.get("restore_point").unwrap_or(&v)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let o = dc.ldap("ldapdelete", &[&format!("CN=Alice Smith,OU=Staff,{BASE}")]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // the deleted object keeps its attributes (the Recycle Bin), but Samba cannot undelete
    // it over LDAP: the plan says so and the restore writes nothing
    let restore = |extra: &[&str]| {
        let mut a = vec!["restore", &point, "--target", "-", "--set", "object=alice"];
        a.extend(extra);
        run(&a)
    };
    for extra in [&["--plan-only"][..], &[]] {
        let o = restore(extra);
        let said = String::from_utf8_lossy(&o.stderr);
        assert!(
            !o.status.success()
                && said.contains("Samba cannot undelete such an object")
                && said.contains("isRecycled"),
            "{said}"
        );
    }
    assert!(
        !dc.search("(sAMAccountName=alice)", &["cn"])
            .contains("dn: "),
        "nothing written"
    );
}

#[test]
fn kerberos_binds_as_the_ticket_holder_and_keeps_no_password() {
    // Windows DCs take a SASL bind over TLS without a SASL security layer (they refuse one
    // there); Samba does so only when told to
    let dc = Dc::start_with(
        false,
        &["ldap server require strong auth = allow_sasl_over_tls"],
    );
    estate(&dc);
    let cli = Cli::new(&["active-directory"]);
    cli.init_repo();
    let ca = dc.ca();
    let with = |ticket: bool, args: &[&str]| {
        let mut c = cli.cmd(None);
        c.envs(dc.kerberos(ticket)).args(args);
        c.output().unwrap()
    };
    let ca = ca.to_str().unwrap();
    fn add<'a>(name: &'a str, ca: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
        let mut a = vec![
            "plugins",
            "directory",
            "add",
            name,
            "--kerberos",
            "--address",
            "127.0.0.1:636",
            "--ca-file",
            ca,
        ];
        a.extend(extra);
        a
    }
    let said = |o: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    // no ticket: the bind fails with what to do, and nothing is kept
    let o = with(false, &add("dc1.test.lan", ca, &[]));
    assert!(
        !o.status.success() && said(&o).contains("needs a Kerberos ticket of the domain"),
        "{}",
        said(&o)
    );
    // an address is no Kerberos service name; a bind account or password is refused with it
    let o = with(true, &add("127.0.0.1", ca, &[]));
    assert!(
        !o.status.success() && said(&o).contains("needs the DC's full host name"),
        "{}",
        said(&o)
    );
    let o = with(true, &add("dc1.test.lan", ca, &["--password-env", "X"]));
    assert!(
        !o.status.success() && said(&o).contains("--password-env"),
        "{}",
        said(&o)
    );
    // a pinned principal is the only one used: the administrator's ticket is not bob's
    let o = with(true, &add("dc1.test.lan", ca, &["--bind", "bob@TEST.LAN"]));
    assert!(
        !o.status.success()
            && said(&o).contains("Kerberos as `bob@TEST.LAN`")
            && said(&o).contains("nothing was kept"),
        "{}",
        said(&o)
    );
    let out = cli.ok(None, &["plugins", "directory", "list"]);
    assert!(out.trim().is_empty(), "nothing kept: {out}");

    // with the administrator's ticket: bound as them (Samba has no "Who am I?" to say so)
    let o = with(true, &add("dc1.test.lan", ca, &[]));
    assert!(
        o.status.success()
            && said(&o).contains("bound to dc1.test.lan (DC=test,DC=lan) with Kerberos"),
        "{}",
        said(&o)
    );
    // pinned to the principal whose ticket it is
    let o = with(
        true,
        &add("dc1.test.lan", ca, &["--bind", "Administrator@TEST.LAN"]),
    );
    assert!(
        o.status.success()
            && said(&o).contains("as Administrator@TEST.LAN (configured) with Kerberos"),
        "{}",
        said(&o)
    );
    let listed = cli.ok(None, &["--json", "plugins", "directory", "list"]);
    assert!(
        listed.contains("\"kerberos\": true") && !listed.contains("password"),
        "{listed}"
    );
    // the service ticket the bind used is in the cache
    let klist = std::process::Command::new("klist")
        .envs(dc.kerberos(false).map(|(k, v)| (k, v)))
        .env("KRB5CCNAME", dc.dir.path().join("ccache"))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&klist.stdout).contains("ldap/dc1.test.lan@TEST.LAN"),
        "{}",
        said(&klist)
    );

    // the plugin reads and writes the directory through it: a deleted user comes back
    for g in ["engine", "ldap:dc1.test.lan"] {
        cli.ok(None, &["plugins", "grant", "active-directory", g]);
    }
    let run = |args: &[&str]| {
        let mut a = vec!["--json", "plugins", "run", "active-directory"];
        a.extend(args);
        with(true, &a)
    };
    let assets = json_out(&run(&["discover", "--set", "directory=dc1.test.lan"]));
    assert_eq!(assets[0]["id"], "test.lan@dc1.test.lan", "{assets}");
    let v = json_out(&run(&["backup", "--asset", "test.lan@dc1.test.lan"]));
    let point = v.get("restore_point").unwrap_or(&v)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let sid = value(
        &dc.search("(sAMAccountName=alice)", &["objectSid"]),
        "objectSid",
    );
    let o = dc.ldap("ldapdelete", &[&format!("CN=Alice Smith,OU=Staff,{BASE}")]);
    assert!(o.status.success(), "{}", said(&o));
    let o = run(&["restore", &point, "--target", "-", "--set", "object=alice"]);
    assert!(o.status.success(), "{}", said(&o));
    let back = dc.search("(sAMAccountName=alice)", &["objectSid"]);
    assert_eq!(
        value(&back, "objectSid"),
        sid,
        "reanimated with its SID: {back}"
    );
    // without a ticket the same job stops at the bind, saying why
    let o = with(
        false,
        &[
            "plugins",
            "run",
            "active-directory",
            "discover",
            "--set",
            "directory=dc1.test.lan",
        ],
    );
    assert!(
        !o.status.success() && said(&o).contains("needs a Kerberos ticket"),
        "{}",
        said(&o)
    );
}
