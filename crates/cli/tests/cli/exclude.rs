//! Folder backups' exclusions through the CLI: names anywhere, paths from the folder,
//! exclude files, folders-only patterns, and patterns that leave out everything.

use super::basics::{Env, code};

#[test]
fn exclude_patterns_leave_out_names_anywhere_and_paths_from_the_folder() {
    let e = Env::new();
    let data = e.path("data");
    for (f, body) in [
        ("a.txt", "keep"),
        ("x.tmp", "drop"),
        ("sub/y.tmp", "drop"),
        ("sub/z.txt", "keep"),
        ("web/node_modules/lib/big.js", "drop"),
        ("logs/app.log", "drop"),
        ("logs/keep.txt", "keep"),
        ("other/logs/app.log", "keep: a path pattern is anchored"),
    ] {
        let p = data.join(f);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }
    std::fs::write(e.path("excludes"), "# build output\nlogs/*.log\n\n").unwrap();
    let d = data.to_str().unwrap();
    // a pattern that does not parse is named, and nothing is read
    let o = e.run(&["backup", d, "--exclude", "a["]);
    assert_eq!(code(&o), 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("exclude pattern `a[`"));
    let o = e.run(&["backup", "--stdin", "--exclude", "*.tmp"]);
    assert_eq!(code(&o), 2, "an exclude with no folder is bad input");
    let out = e.ok(&[
        "backup",
        d,
        "--exclude",
        "*.tmp",
        "--exclude",
        "node_modules",
        "--exclude-file",
        e.path("excludes").to_str().unwrap(),
    ]);
    assert!(out.contains("4 excluded"), "{out}");
    let target = e.path("restored");
    e.ok(&["restore", "latest", "--target", target.to_str().unwrap()]);
    let mut found: Vec<String> = Vec::new();
    let mut stack = vec![target.clone()];
    while let Some(dir) = stack.pop() {
        for ent in std::fs::read_dir(&dir).unwrap().flatten() {
            if ent.file_type().unwrap().is_dir() {
                stack.push(ent.path());
            } else {
                found.push(ent.file_name().to_string_lossy().into_owned());
            }
        }
    }
    found.sort();
    assert_eq!(
        found,
        ["a.txt", "app.log", "keep.txt", "z.txt"],
        "{found:?}"
    );
    // patterns that leave out everything: a warning and exit 3, not a quiet empty backup
    let o = e.run(&[
        "backup",
        d,
        "--exclude",
        "*/",
        "--exclude",
        "*.txt",
        "--exclude",
        "*.tmp",
    ]);
    assert_eq!(code(&o), 3, "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("every entry of"));
    // a trailing `/` is folders only: a file of that name stays
    std::fs::write(data.join("cache"), "a file named cache").unwrap();
    std::fs::create_dir_all(data.join("sub/cache")).unwrap();
    std::fs::write(data.join("sub/cache/c.bin"), "in a folder named cache").unwrap();
    let out = e.ok(&["--json", "backup", d, "--exclude", "cache/"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["restore_point"]["excluded"], 1, "{out}");
}
