//! The sql-server plugin and Always On availability groups, against the TDS stand-in: the
//! replica a backup runs on is the one the group's backup preference names (or any, when
//! the admin says so), and on a secondary replica only what SQL Server takes there is sent
//! (COPY_ONLY fulls, plain logs); the stand-in refuses anything else as SQL Server does.

use serde_json::json;

use crate::sql_server::{
    StandIn, add_instance, database, grant, plugin, prop, run, text as said, with_standin,
};
use crate::support::json_out;

#[test]
fn availability_group_databases_back_up_where_the_group_prefers_as_sql_server_allows() {
    let (cli, sql, dir, staging) = with_standin("sql02.test.lan");
    let server = sql.server();
    // this instance holds a secondary replica of `sales` (the one its group prefers for
    // backups) and the primary of `orders` (whose group prefers another replica)
    sql.edit("databases.json", |rows| {
        for r in rows.iter_mut().filter(|r| r["name"] == "sales") {
            r["group_database_id"] = json!("6c5e0b7a-5c64-4d0e-9a43-0d4f1d1b2a01");
            r["replica_id"] = json!("a0c3e9c2-1f4b-4c55-8d61-3b0c9d9e7f01");
            r["replica_role"] = json!("SECONDARY");
            r["replica_preferred"] = json!(true);
        }
        rows.push(json!({"name": "orders", "database_id": 8, "recovery_model_desc": "FULL", "state_desc": "ONLINE",
            "compatibility_level": 160, "is_encrypted": false, "group_database_id": "6c5e0b7a-5c64-4d0e-9a43-0d4f1d1b2a02",
            "create_date": "2026-01-05T09:00:00", "replica_id": "a0c3e9c2-1f4b-4c55-8d61-3b0c9d9e7f02",
            "replica_role": "PRIMARY", "replica_preferred": false}));
        rows.push(json!({"name": "stock", "database_id": 9, "recovery_model_desc": "FULL", "state_desc": "ONLINE",
            "compatibility_level": 160, "is_encrypted": false, "group_database_id": "6c5e0b7a-5c64-4d0e-9a43-0d4f1d1b2a03",
            "create_date": "2026-01-05T09:00:00", "replica_id": "a0c3e9c2-1f4b-4c55-8d61-3b0c9d9e7f03",
            "replica_role": "RESOLVING", "replica_preferred": true}));
    });

    // an instance added without saying where its password is: refused, nothing kept
    let o = run(
        &cli,
        &[
            "plugins",
            "sql-server",
            "add",
            &server,
            "--login",
            "rehydra",
        ],
    );
    assert!(
        !o.status.success() && said(&o).contains("say where the password is"),
        "{}",
        said(&o)
    );
    let listed = cli.ok(None, &["plugins", "sql-server", "list"]);
    assert!(!listed.contains(&server), "{listed}");
    add_instance(&cli, &server, &dir);
    grant(&cli, &[&server], &dir);
    let go = |args: &[&str]| plugin(&cli, args);

    // ---- discover: each database's role on this replica, and whether it is preferred
    let assets = json_out(&go(&["discover", "--set", &format!("servers={server}")]));
    let db = |name: &str| database(&assets, name);
    let role = |name: &str| {
        let d = db(name);
        (prop(&d, "replica"), prop(&d, "preferred-backup-replica"))
    };
    assert_eq!(
        role("sales"),
        (Some("secondary".into()), Some("true".into()))
    );
    assert_eq!(
        role("orders"),
        (Some("primary".into()), Some("false".into()))
    );
    assert_eq!(role("hr"), (None, None), "not in a group");
    assert_eq!(role("stock").0.as_deref(), Some("resolving"));

    let backup = |db: &str, extra: &[&str]| {
        let asset = format!("{server}/{db}");
        let mut a = vec!["backup", "--asset", &asset, "--set", &staging];
        a.extend(extra);
        go(&a)
    };
    let sent = || {
        sql.statements()
            .iter()
            .filter_map(|s| s["sql"].as_str().map(str::to_string))
            .filter(|s| s.starts_with("BACKUP"))
            .collect::<Vec<_>>()
    };

    // ---- stock: its group has not settled which replica is which; nothing is sent
    let o = backup("stock", &["--set", "replica=any"]);
    assert!(
        !o.status.success() && said(&o).contains("neither primary nor secondary"),
        "{}",
        said(&o)
    );

    // ---- orders: its group prefers another replica, so nothing is sent unless told
    let o = backup("orders", &[]);
    assert!(
        !o.status.success() && said(&o).contains("backup preference names another replica"),
        "{}",
        said(&o)
    );
    assert!(sent().is_empty(), "{:?}", sent());
    let o = backup("orders", &["--set", "replica=any"]);
    assert!(o.status.success(), "{}", said(&o));
    assert!(
        !sent()[0].contains("COPY_ONLY"),
        "the primary takes a plain full: {:?}",
        sent()
    );

    // ---- sales on its secondary: the full is COPY_ONLY (said), a differential and a
    // copy-only log are refused before anything is sent, a plain log is taken
    let o = backup("sales", &[]);
    assert!(
        o.status.success() && said(&o).contains("the full backup is taken COPY_ONLY"),
        "{}",
        said(&o)
    );
    assert!(sent()[1].contains("COPY_ONLY"), "{:?}", sent());
    for (extra, why) in [
        (
            &["--set", "level=diff"][..],
            "takes no differential backups",
        ),
        (
            &["--set", "level=log", "--set", "copy-only=true"][..],
            "never COPY_ONLY",
        ),
    ] {
        let o = backup("sales", extra);
        assert!(
            !o.status.success() && said(&o).contains(why),
            "{}",
            said(&o)
        );
    }
    assert_eq!(sent().len(), 2, "{:?}", sent());
    let o = backup("sales", &["--set", "level=log"]);
    assert!(o.status.success(), "{}", said(&o));
    let last = sent().pop().unwrap();
    assert!(
        last.starts_with("BACKUP LOG") && !last.contains("COPY_ONLY"),
        "{last}"
    );
    let sets = sql.table("backupset.json");
    let ours: Vec<_> = sets
        .iter()
        .filter(|s| s["database_name"] == "sales")
        .map(|s| {
            (
                s["type"].as_str().unwrap().to_string(),
                s["is_copy_only"] == true,
            )
        })
        .collect();
    assert_eq!(ours, [("D".to_string(), true), ("L".to_string(), false)]);
}

#[test]
fn one_asset_follows_the_replica_its_group_prefers_for_backups_through_a_failover() {
    let (cli, a, dir, staging) = with_standin("sql01.test.lan");
    // the group's second replica: another instance with its own msdb
    let b = StandIn::start(&dir.join("b"), &dir.join("tls"));
    let (sa, sb) = (
        a.server(),
        format!("localhost:{}", b.server().rsplit(':').next().unwrap()),
    );
    let in_group = |role: &'static str, preferred: bool| {
        move |rows: &mut Vec<serde_json::Value>| {
            for r in rows.iter_mut().filter(|r| r["name"] == "sales") {
                r["group_database_id"] = json!("6c5e0b7a-5c64-4d0e-9a43-0d4f1d1b2a01");
                r["replica_id"] = json!("a0c3e9c2-1f4b-4c55-8d61-3b0c9d9e7f01");
                r["replica_role"] = json!(role);
                r["replica_preferred"] = json!(preferred);
            }
        }
    };
    a.edit("databases.json", in_group("PRIMARY", true));
    b.edit("databases.json", in_group("SECONDARY", false));
    for s in [&sa, &sb] {
        add_instance(&cli, s, &dir);
    }
    grant(&cli, &[&sa, &sb], &dir);
    let asset = format!("{sa}/sales");
    let follow = format!("replicas={sb}");
    let backup_of = |asset: &str, level: &str, extra: &[&str]| {
        let l = format!("level={level}");
        let mut args = vec!["backup", "--asset", asset, "--set", &l, "--set", &staging];
        args.extend(extra);
        plugin(&cli, &args)
    };
    let backup = |level: &str, extra: &[&str]| backup_of(&asset, level, extra);
    let backups_on = |s: &StandIn| {
        s.statements()
            .iter()
            .filter(|q| q["sql"].as_str().is_some_and(|q| q.starts_with("BACKUP")))
            .count()
    };

    // ---- the asset's own instance is the preferred one: the backups run there
    for level in ["full", "log"] {
        let o = backup(level, &["--set", &follow]);
        assert!(o.status.success(), "{}", said(&o));
    }
    assert_eq!((backups_on(&a), backups_on(&b)), (2, 0));

    // ---- a database of the same name in another group is not a replica of this one,
    // whatever it says of itself
    a.edit("databases.json", in_group("PRIMARY", false));
    b.edit("databases.json", |rows| {
        in_group("SECONDARY", true)(rows);
        for r in rows.iter_mut().filter(|r| r["name"] == "sales") {
            r["group_database_id"] = json!("0d1e2f3a-0000-4000-8000-00000000beef");
        }
    });
    let o = backup("log", &["--set", &follow]);
    assert!(
        !o.status.success()
            && said(&o).contains("is not known to be in the same availability group"),
        "{}",
        said(&o)
    );
    assert_eq!(backups_on(&b), 0);

    // ---- the group now prefers its secondary for backups: the log runs there while the
    // asset's own instance is up. (One log chain runs through a group: the second stand-in
    // reads its database's LSNs from its msdb, so it is given the rows of the first's.)
    let rows = a.table("backupset.json");
    b.edit("backupset.json", |r| {
        r.extend(rows.into_iter().filter(|x| x["database_name"] == "sales"))
    });
    b.edit("databases.json", in_group("SECONDARY", true));
    let o = backup("log", &["--set", &follow]);
    let runs_there =
        format!("{sb} is the replica `sales`'s availability group prefers for backups now");
    assert!(
        o.status.success() && said(&o).contains(&runs_there),
        "{}",
        said(&o)
    );
    assert_eq!((backups_on(&a), backups_on(&b)), (2, 1));

    // ---- a failover: the first instance is gone, the second is primary and preferred;
    // its msdb holds what it took, the group's id comes from the chain
    drop(a);
    b.edit("databases.json", in_group("PRIMARY", true));
    let o = backup("log", &[]);
    assert!(
        !o.status.success() && said(&o).contains(&format!("connecting to SQL Server `{sa}`")),
        "without replicas= the backup needs its own instance: {}",
        said(&o)
    );
    let o = backup("log", &["--set", &follow]);
    assert!(
        o.status.success() && said(&o).contains(&runs_there),
        "{}",
        said(&o)
    );
    assert_eq!(backups_on(&b), 2, "the log was taken on the second replica");
    let points: serde_json::Value =
        serde_json::from_str(&cli.ok(None, &["--json", "snapshots", "--asset", &asset])).unwrap();
    let newest = points
        .as_array()
        .unwrap()
        .iter()
        .max_by_key(|p| p["time"].as_str().unwrap().to_string())
        .unwrap()
        .to_string();
    assert_eq!(
        newest.matches("backups/sales_").count(),
        4,
        "one chain, this asset's: {newest}"
    );
    assert!(
        !said(&o).contains("broken") && !said(&o).contains("outside Rehydra"),
        "the chain runs on unbroken, all of it Rehydra's: {}",
        said(&o)
    );

    // ---- a restore after the failover: the asset's instance is gone. Without server= or
    // replicas= the plan is blocked on it; with replicas= it goes to the replica that holds
    // the database in the chain's group, the primary now, and says so
    let point = json_out(&o)["restore_point"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let restore = |extra: &[&str]| {
        let mut args = vec!["restore", &point, "--target", "-", "--set", &staging];
        args.extend(extra);
        plugin(&cli, &args)
    };
    let copy = ["--set", "database=sales_copy"];
    let o = restore(&[&copy[..], &["--plan-only"]].concat());
    assert!(
        !o.status.success()
            && said(&o).contains(&format!("the target instance {sa} cannot be read")),
        "{}",
        said(&o)
    );
    // the replica holds the group's live `sales`: never restored over by default
    let o = restore(&["--set", &follow, "--plan-only"]);
    assert!(
        !o.status.success() && said(&o).contains("holds the availability group's live `sales`"),
        "{}",
        said(&o)
    );
    let o = restore(&[
        "--set",
        &follow,
        "--set",
        "database=sales_copy",
        "--set",
        "replace=true",
        "--plan-only",
    ]);
    assert!(said(&o).contains("without replace="), "{}", said(&o));
    let plan = json_out(&restore(
        &[&copy[..], &["--set", &follow, "--plan-only"]].concat(),
    ));
    let target = plan["plan"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "target")
        .unwrap_or_else(|| panic!("{plan:#}"))["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        target.starts_with(&format!(
            "{sb}, which holds `sales` in the same availability group as its primary now: the asset's instance {sa} cannot be used"
        )),
        "{target}"
    );
    let o = restore(&[&copy[..], &["--set", &follow]].concat());
    assert!(
        o.status.success() && said(&o).contains(&format!("restoring on {sb}, which holds")),
        "{}",
        said(&o)
    );
    assert!(
        b.table("databases.json")
            .iter()
            .any(|d| d["name"] == "sales_copy"),
        "restored on the second replica"
    );
    // verify reads the backups there too
    let o = plugin(
        &cli,
        &["verify", &point, "--set", &staging, "--set", &follow],
    );
    assert!(
        o.status.success() && said(&o).contains(&format!("the backups are read on {sb}")),
        "{}",
        said(&o)
    );

    // ---- the second replica's database as an asset of its own too: its full starts its
    // own chain, then this asset's next log is refused (the two would cut each other's logs)
    let own = format!("{sb}/sales");
    let o = backup_of(&own, "full", &[]);
    assert!(o.status.success(), "{}", said(&o));
    // most of its pages are the first full's (the stand-in's fulls share 90% of their
    // blocks, as a database's do from one week to the next): the job says how much
    let there = said(&o)
        .split("% deduplicated)")
        .next()
        .and_then(|s| s.rsplit('(').next())
        .and_then(|n| n.parse::<u32>().ok());
    assert!(there.is_some_and(|p| p >= 50), "{}", said(&o));
    let o = backup("log", &["--set", &follow]);
    assert!(
        !o.status.success()
            && said(&o).contains(&format!("is also backed up as another asset ({own}")),
        "{}",
        said(&o)
    );
    assert_eq!(backups_on(&b), 3, "the full of the second asset, no log");

    // ---- no replica is preferred now: refused, saying what each one answered
    b.edit("databases.json", in_group("PRIMARY", false));
    let o = backup("log", &["--set", &follow]);
    assert!(
        !o.status.success()
            && said(&o).contains("is its preferred backup replica now")
            && said(&o).contains(&sb),
        "{}",
        said(&o)
    );
}
