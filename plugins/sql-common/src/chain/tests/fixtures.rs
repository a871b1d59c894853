//! dbatools' recorded backup histories (see SOURCES.md beside them).

use super::super::*;

/// This package's folder as cargo gives it when it runs the test (a binary built from
/// another checkout sharing the build folder would otherwise read that checkout's files).
fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(
        || std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")),
        std::path::PathBuf::from,
    )
}

// ---- a tiny exact JSON reader: numbers stay text, so 23-digit LSNs survive ----

#[derive(Debug, Clone)]
enum J {
    Obj(Vec<(String, J)>),
    Arr(Vec<J>),
    Str(String),
    Num(String),
    Lit(&'static str),
}

struct Reader<'a> {
    s: &'a str,
    i: usize,
}

impl Reader<'_> {
    fn peek(&mut self) -> Option<u8> {
        while matches!(
            self.s.as_bytes().get(self.i),
            Some(b' ' | b'\t' | b'\r' | b'\n')
        ) {
            self.i += 1;
        }
        self.s.as_bytes().get(self.i).copied()
    }
    fn bump(&mut self) -> u8 {
        let c = self.peek().expect("unexpected end of JSON");
        self.i += 1;
        c
    }
    fn value(&mut self) -> J {
        match self.peek().expect("JSON value") {
            b'{' => {
                self.i += 1;
                let mut members = Vec::new();
                if self.peek() == Some(b'}') {
                    self.i += 1;
                    return J::Obj(members);
                }
                loop {
                    let J::Str(key) = self.value() else {
                        panic!("key at {}", self.i)
                    };
                    assert_eq!(self.bump(), b':');
                    members.push((key, self.value()));
                    match self.bump() {
                        b',' => {}
                        b'}' => return J::Obj(members),
                        c => panic!("unexpected {:?} at {}", c as char, self.i),
                    }
                }
            }
            b'[' => {
                self.i += 1;
                let mut items = Vec::new();
                if self.peek() == Some(b']') {
                    self.i += 1;
                    return J::Arr(items);
                }
                loop {
                    items.push(self.value());
                    match self.bump() {
                        b',' => {}
                        b']' => return J::Arr(items),
                        c => panic!("unexpected {:?} at {}", c as char, self.i),
                    }
                }
            }
            b'"' => J::Str(self.string()),
            b'-' | b'0'..=b'9' => {
                let start = self.i;
                while matches!(
                    self.s.as_bytes().get(self.i),
                    Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                ) {
                    self.i += 1;
                }
                J::Num(self.s[start..self.i].to_string())
            }
            _ => {
                let lit = ["true", "false", "null"]
                    .into_iter()
                    .find(|l| self.s[self.i..].starts_with(l));
                let lit = lit.unwrap_or_else(|| panic!("bad JSON at {}", self.i));
                self.i += lit.len();
                J::Lit(lit)
            }
        }
    }
    fn hex4(&mut self) -> u32 {
        let v = u32::from_str_radix(&self.s[self.i..self.i + 4], 16).expect("\\u escape");
        self.i += 4;
        v
    }
    fn string(&mut self) -> String {
        self.i += 1;
        let mut out = String::new();
        loop {
            let c = self.s[self.i..]
                .chars()
                .next()
                .expect("unterminated string");
            self.i += c.len_utf8();
            match c {
                '"' => return out,
                '\\' => {
                    let e = self.s.as_bytes()[self.i];
                    self.i += 1;
                    out.push(match e {
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let mut v = self.hex4();
                            if (0xD800..0xDC00).contains(&v) && self.s[self.i..].starts_with("\\u")
                            {
                                self.i += 2;
                                v = 0x10000 + ((v - 0xD800) << 10) + (self.hex4() - 0xDC00);
                            }
                            char::from_u32(v).expect("escaped char")
                        }
                        other => other as char,
                    });
                }
                c => out.push(c),
            }
        }
    }
}

fn parse_json(text: &str) -> J {
    let mut r = Reader { s: text, i: 0 };
    let v = r.value();
    assert_eq!(r.peek(), None, "trailing JSON");
    v
}

/// UTF-16LE with BOM (decoded by hand) or UTF-8 with or without BOM.
fn read_fixture(name: &str) -> String {
    let bytes = std::fs::read(
        manifest_dir()
            .join("../../tests/fixtures/sql-server")
            .join(name),
    )
    .expect("fixture");
    if let Some(rest) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        let units: Vec<u16> = rest
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        String::from_utf16(&units).expect("UTF-16")
    } else {
        String::from_utf8(
            bytes
                .strip_prefix(&[0xEF, 0xBB, 0xBF])
                .unwrap_or(&bytes)
                .to_vec(),
        )
        .expect("UTF-8")
    }
}

type Row = Vec<(String, J)>;

/// A field by name, whatever its case (FirstLSN / FirstLsn / firstlsn).
fn field<'a>(row: &'a Row, names: &[&str]) -> Option<&'a J> {
    let found = names
        .iter()
        .find_map(|n| row.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)));
    found
        .map(|(_, v)| v)
        .filter(|v| !matches!(v, J::Lit("null")))
}

fn text(row: &Row, names: &[&str]) -> Option<String> {
    match field(row, names)? {
        J::Str(s) | J::Num(s) => Some(s.clone()),
        other => panic!("{names:?} is not text: {other:?}"),
    }
}

fn lsn(row: &Row, name: &str) -> Option<Lsn> {
    text(row, &[name]).map(|s| {
        s.parse()
            .unwrap_or_else(|_| panic!("{name} {s} is not an exact integer"))
    })
}

/// `/Date(1493883737000)/` to Unix milliseconds.
fn date(row: &Row, names: &[&str]) -> i64 {
    let s = text(row, names).expect("date");
    let inner = s
        .strip_prefix("/Date(")
        .and_then(|r| r.strip_suffix(")/"))
        .expect("/Date()/");
    let end = inner
        .char_indices()
        .skip(1)
        .find(|(_, c)| !c.is_ascii_digit())
        .map_or(inner.len(), |(i, _)| i);
    inner[..end].parse().expect("date digits")
}

fn load_rows(name: &str) -> (Vec<Backup>, Vec<Row>) {
    let rows = match parse_json(&read_fixture(name)) {
        J::Arr(items) => items,
        single => vec![single],
    };
    let rows: Vec<Row> = rows
        .into_iter()
        .map(|r| if let J::Obj(m) = r { m } else { panic!("row") })
        .collect();
    let backups = rows
        .iter()
        .map(|r| {
            let kind = match text(r, &["BackupTypeDescription", "Type"])
                .expect("type")
                .as_str()
            {
                "Database" | "Full" => Kind::Full,
                "Database Differential" | "Differential" => Kind::Diff,
                "Transaction Log" | "Log" => Kind::Log,
                other => panic!("backup type {other}"),
            };
            let lower = |names: &[&str]| text(r, names).map(|s| s.to_ascii_lowercase());
            Backup {
                id: text(r, &["BackupSetGUID", "BackupSetId"]).expect("id"),
                kind,
                first_lsn: lsn(r, "FirstLSN").expect("FirstLSN"),
                last_lsn: lsn(r, "LastLSN").expect("LastLSN"),
                checkpoint_lsn: lsn(r, "CheckpointLSN").expect("CheckpointLSN"),
                database_backup_lsn: lsn(r, "DatabaseBackupLSN").unwrap_or(0),
                differential_base_lsn: lsn(r, "DifferentialBaseLSN"),
                fork: lower(&["RecoveryForkID", "LastRecoveryForkID"]),
                first_fork: lower(&["FirstRecoveryForkID"]),
                start: date(r, &["BackupStartDate", "Start"]),
                finish: date(r, &["BackupFinishDate", "End"]),
                copy_only: matches!(field(r, &["IsCopyOnly"]), Some(J::Lit("true"))),
                ours: true,
            }
        })
        .collect();
    (backups, rows)
}

fn load(name: &str) -> Vec<Backup> {
    load_rows(name).0
}

/// The first 8 characters of each step's id.
fn ids<'a>(h: &'a [Backup], steps: &[usize]) -> Vec<&'a str> {
    steps.iter().map(|&i| &h[i].id[..8]).collect()
}

fn find(h: &[Backup], prefix: &str) -> usize {
    h.iter()
        .position(|b| b.id.starts_with(prefix))
        .expect("backup in fixture")
}

// ---- fixtures ----

#[test]
fn fixtures_keep_lsns_and_dates_exact() {
    let h = load("dbatools-broken_chain.json");
    assert_eq!(h[0].first_lsn, 17_126_658_000_000_314_200_037);
    assert!(h[0].first_lsn > Lsn::from(u64::MAX));
    assert_eq!(h[3].checkpoint_lsn, 17_126_657_000_008_405_600_001);
    assert_eq!(
        h[0].differential_base_lsn,
        Some(17_126_658_000_000_314_600_038)
    );
    assert_eq!(h[1].differential_base_lsn, None);
    assert_eq!(
        (h[0].start, h[0].finish),
        (1_500_224_400_000, 1_500_224_500_000)
    );
    assert_eq!(
        h[0].fork.as_deref(),
        Some("3b085538-ee7b-46ac-9b63-1916d40a59cf")
    );
    assert_eq!(load("dbatools-EmptyTLogData.json").len(), 34);
    assert_eq!(load("dbatools-AgDiffRestore.json")[1].kind, Kind::Diff);
}

/// dbatools' own test of this file: its last log is empty (FirstLSN ==
/// LastLSN == the previous LastLSN) and the chain is NOT broken: restoring to
/// 2017-07-16 17:51:30 takes the full and two logs.
#[test]
fn broken_chain_fixture_only_ends_with_an_empty_log() {
    let h = load("dbatools-broken_chain.json");
    assert_eq!(problems(&h), vec![]);
    let p = plan(&h, Some(1_500_227_490_000), false).expect("reachable");
    assert_eq!(ids(&h, &p.steps), ["8ccfd67c", "b756c794", "8a14e614"]);
    assert_eq!(p.stop_at, Some(1_500_227_490_000));
    // To its end: the empty log proves nothing changed, so no STOPAT and no empty-log restore.
    let end = h[find(&h, "b102f57c")].finish;
    let p = plan(&h, None, false).expect("reachable");
    assert_eq!(
        (ids(&h, &p.steps), p.stop_at, p.reaches),
        (vec!["8ccfd67c", "b756c794", "8a14e614"], None, end)
    );
    assert_eq!(plan(&h, Some(end), false), Ok(p));
    assert_eq!(restorable_window(&h, false), Some((1_500_224_500_000, end)));
}

/// The same history with its middle log lost: now there is a gap.
#[test]
fn broken_chain_without_its_middle_log_reports_the_gap() {
    let mut h = load("dbatools-broken_chain.json");
    h.remove(find(&h, "8a14e614"));
    let found = problems(&h);
    assert_eq!(found.len(), 1, "{found:?}");
    let Problem::LogGap {
        before,
        after,
        from,
        to,
    } = &found[0]
    else {
        panic!("{found:?}")
    };
    assert_eq!((&before.id[..8], &after.id[..8]), ("b756c794", "b102f57c"));
    assert_eq!(
        (*from, *to),
        (
            17_126_658_000_000_314_600_037,
            17_126_658_000_000_315_600_037
        )
    );
    let text = found[0].describe();
    for needle in [
        &before.id,
        &after.id,
        "2017-07-16 17:43:20 UTC",
        "2017-07-16 18:16:40 UTC",
        "full backup",
    ] {
        assert!(text.contains(needle), "{needle} missing in: {text}");
    }
    let end = h[find(&h, "b102f57c")].finish;
    let err = plan(&h, Some(end), false).expect_err("past the gap");
    assert!(
        matches!(&err, Unreachable::TooLate { latest, .. } if latest.id.starts_with("b756c794")),
        "{err:?}"
    );
    assert_eq!(err.closest(), (Some(1_500_227_000_000), None));
    assert!(
        err.describe().contains("2017-07-16 17:43:20 UTC"),
        "{}",
        err.describe()
    );
    let p = plan(&h, None, false).expect("up to the gap");
    assert_eq!(ids(&h, &p.steps), ["8ccfd67c", "b756c794"]);
}

const DIFF_RESTORE_END: [&str; 7] = [
    "cbe03448", "5d078de5", "e3e4198c", "b845d9c8", "6b18433c", "29685266", "c29236ca",
];

#[test]
fn diff_restore_to_the_end_uses_full_diff_and_later_logs() {
    let h = load("dbatools-DiffRestore.json");
    assert_eq!(problems(&h), vec![]);
    let p = plan(&h, None, false).expect("reachable");
    // Two of these logs finished in the same second: the order comes from the LSNs.
    assert_eq!(
        (ids(&h, &p.steps), p.stop_at, p.reaches),
        (DIFF_RESTORE_END.to_vec(), None, 1_493_884_788_000)
    );
}

#[test]
fn diff_restore_to_moments_around_the_diff() {
    let h = load("dbatools-DiffRestore.json");
    let diff_finish = h[find(&h, "5d078de5")].finish;
    // Before the diff: full and logs, STOPAT in the third log.
    let t = diff_finish - 88_000;
    let p = plan(&h, Some(t), false).expect("reachable");
    assert_eq!(
        (ids(&h, &p.steps), p.stop_at),
        (
            vec!["cbe03448", "1326b0cb", "acf4a999", "b989fb98"],
            Some(t)
        )
    );
    // At the diff's finish: full and diff alone.
    let p = plan(&h, Some(diff_finish), false).expect("reachable");
    assert_eq!(
        (ids(&h, &p.steps), p.stop_at),
        (vec!["cbe03448", "5d078de5"], None)
    );
    // Just after it: the log that contains the diff's last LSN, with STOPAT.
    let p = plan(&h, Some(diff_finish + 1), false).expect("reachable");
    assert_eq!(
        (ids(&h, &p.steps), p.stop_at),
        (
            vec!["cbe03448", "5d078de5", "e3e4198c"],
            Some(diff_finish + 1)
        )
    );
    // Before the full: nothing.
    let err = plan(&h, Some(h[0].finish - 1), false).expect_err("before the full");
    assert!(matches!(err, Unreachable::TooEarly { .. }), "{err:?}");
    // dbatools' "Missing Diff Restore": without the diff, the full and all 8 logs.
    let no_diff: Vec<Backup> = h.iter().filter(|b| b.kind != Kind::Diff).cloned().collect();
    assert_eq!(
        plan(&no_diff, None, false).expect("reachable").steps.len(),
        9
    );
}

#[test]
fn full_inside_a_log_range_plans() {
    let h = load("dbatools-TLogBWFirstLastLsn.json");
    assert_eq!(problems(&h), vec![]);
    let p = plan(&h, None, false).expect("reachable");
    // Not the log ending at the full's checkpoint (14975000000265600001): it ends before the full.
    assert_eq!(
        (ids(&h, &p.steps), p.stop_at, p.reaches),
        (
            vec!["b7e35ab2", "2b49fa55", "0aa9d443"],
            None,
            1_493_233_313_000
        )
    );
}

#[test]
fn empty_logs_are_skipped_not_gaps() {
    let h = load("dbatools-EmptyTLogData.json");
    assert_eq!(problems(&h), vec![]);
    let last_empty = 1_493_381_701_000;
    let p = plan(&h, None, false).expect("reachable");
    assert_eq!(
        (ids(&h, &p.steps), p.stop_at, p.reaches),
        (vec!["f3907981", "b5ca8726"], None, last_empty)
    );
    assert_eq!(
        restorable_window(&h, false),
        Some((1_493_233_263_000, last_empty))
    );
    assert_eq!(
        restorable_ranges(&h, false),
        vec![(1_493_233_263_000, last_empty)]
    );
    // In the idle day after the first log: that log restored whole, nothing empty restored.
    let p = plan(&h, Some(1_493_300_000_000), false).expect("idle moment");
    assert_eq!(
        (ids(&h, &p.steps), p.stop_at),
        (vec!["b7e35ab2", "294f1724"], None)
    );
    let p = plan(&h, Some(1_493_234_000_000), false).expect("inside the first log");
    assert_eq!(
        (ids(&h, &p.steps), p.stop_at),
        (vec!["b7e35ab2", "294f1724"], Some(1_493_234_000_000))
    );
    assert!(p.steps.iter().all(|&i| !h[i].is_empty_log()));
}

#[test]
fn availability_group_diff_restore_plans_with_its_diff() {
    let (h, rows) = load_rows("dbatools-AgDiffRestore.json");
    let p = plan(&h, None, false).expect("reachable");
    assert_eq!(ids(&h, &p.steps), DIFF_RESTORE_END);
    let server = |i: usize| text(&rows[i], &["ServerName"]).expect("server");
    let on = |name: &str| p.steps.iter().filter(|&&i| server(i) == name).count();
    assert_eq!((on("Server1"), on("Server2")), (2, 5));
}
