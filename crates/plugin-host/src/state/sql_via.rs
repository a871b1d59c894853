//! The `sql` capability through a command target, where the admin prefers it (an
//! instance on the target's own machine, or one that knows only the account commands run
//! as there): the host runs each batch with PowerShell's SQL client
//! (`System.Data.SqlClient`) on the target, or on this machine's PowerShell 7, signed in
//! as that account (integrated security, nothing secret kept or sent), and reads the
//! answer back.
//!
//! The command line holds only [`BOOTSTRAP`], which reads the script from standard input:
//! command lines are short on Windows (cmd.exe's 8,191 characters), and the script holds
//! the batch, its parameters and the connection string as base64 of their UTF-8, each
//! decoded by itself (nothing to quote, and no JSON reader turning a date-like text into
//! a date). The answer comes back as one line, [`MARK`] and base64 of JSON, read as
//! hostile input: every value a string or null, as many as the columns, the whole capped
//! as the direct connection's is. Dates, exact numbers, GUIDs, bits and binary are text
//! as the direct connection gives them; money and floating-point numbers may differ in
//! form. A batch given up on ends the command here; no Attention reaches the instance
//! this way, so a BACKUP or RESTORE may run on there (the direct connection stops it).

use std::time::Duration;

use serde::Deserialize;

use super::commands::{Given, OUTPUT_MAX, run_powershell};
use super::{Res, err, tame};
use crate::SqlVia;
use crate::bindings::rehydra::plugin::sql;
use crate::dto::ErrorCode;
use crate::limits::Budget;

/// What starts the answer's line on standard output.
const MARK: &str = "REHYDRA-SQL ";
/// Longest script sent (the batch and parameters in base64, and the script's own text).
const SCRIPT_MAX: usize = 16 << 20;
/// Time allowed beyond the batch's own for PowerShell to start and connect.
const START_ALLOWANCE: Duration = Duration::from_secs(60);
/// What the command line runs: the script on standard input.
const BOOTSTRAP: &str = "& ([scriptblock]::Create([Console]::In.ReadToEnd()))";
/// What `--via local` keeps of this process's environment for PowerShell's integrated
/// sign-in (Kerberos on Linux: the ticket cache, a client keytab, the configuration).
const KERBEROS_ENV: &[&str] = &["KRB5CCNAME", "KRB5_CLIENT_KTNAME", "KRB5_CONFIG"];

/// The script run on the target, after the lines [`script`] puts first (`$cs`,
/// `$batch`, `$params`, `$timeout`). Arrays are made with `::new` and filled by index
/// (`New-Object`'s output is wrapped, and a function's `$null` would vanish from a
/// pipeline); Windows PowerShell 5.1's extra `Count` on arrays is removed before
/// anything is turned into JSON; every value is formatted with the invariant culture.
const SCRIPT: &str = r#"$ErrorActionPreference = 'Stop'
if ($PSVersionTable.PSVersion.Major -lt 6) { Remove-TypeData System.Array -ErrorAction SilentlyContinue }
$inv = [Globalization.CultureInfo]::InvariantCulture
function Say($o) {
  $j = ConvertTo-Json -InputObject $o -Depth 8 -Compress
  [Console]::Out.WriteLine('REHYDRA-SQL ' + [Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes($j)))
}
function Frac($n, $esc) { if ($n -gt 0) { $esc + ('f' * $n) } else { '' } }
function Text($r, $i, $scale) {
  if ($r.IsDBNull($i)) { return $null }
  $t = $r.GetDataTypeName($i).ToLowerInvariant()
  $v = $r.GetValue($i)
  switch -regex ($t) {
    '^bit$' { if ($v) { return '1' } else { return '0' } }
    '^uniqueidentifier$' { return $v.ToString('D') }
    'binary$|^image$|^timestamp$|^rowversion$' { return [BitConverter]::ToString($v).Replace('-', '').ToLowerInvariant() }
    '^(decimal|numeric)$' { return $r.GetSqlDecimal($i).ToString() }
    '^datetime$' { return $v.ToString('yyyy-MM-ddTHH:mm:ss.fff', $inv) }
    '^smalldatetime$' { return $v.ToString('yyyy-MM-ddTHH:mm:ss', $inv) }
    '^date$' { return $v.ToString('yyyy-MM-dd', $inv) }
    '^datetime2$' { return $v.ToString('yyyy-MM-ddTHH:mm:ss' + (Frac $scale '.'), $inv) }
    '^datetimeoffset$' { return $v.ToString('yyyy-MM-ddTHH:mm:ss' + (Frac $scale '.') + 'zzz', $inv) }
    '^time$' { return $v.ToString('hh\:mm\:ss' + (Frac $scale '\.'), $inv) }
    default { if ($v -is [IFormattable]) { return $v.ToString($null, $inv) } else { return [string]$v } }
  }
}
$stage = 'open'
try {
  $c = [System.Data.SqlClient.SqlConnection]::new($cs)
  $c.Open()
  $stage = 'run'
  $cmd = $c.CreateCommand()
  $cmd.CommandText = $batch
  $cmd.CommandTimeout = $timeout
  for ($n = 0; $n -lt $params.Count; $n++) {
    $p = $cmd.Parameters.Add('@P' + ($n + 1), [Data.SqlDbType]::NVarChar, -1)
    $p.Value = $params[$n]
  }
  $r = $cmd.ExecuteReader()
  $sets = [System.Collections.ArrayList]::new()
  do {
    if ($r.FieldCount -gt 0) {
      $w = $r.FieldCount
      $schema = $r.GetSchemaTable()
      $cols = [object[]]::new($w)
      $scales = [int[]]::new($w)
      for ($i = 0; $i -lt $w; $i++) {
        $cols[$i] = $r.GetName($i)
        $s = $schema.Rows[$i]['NumericScale']
        if ($s -is [DBNull] -or $s -gt 7) { $scales[$i] = 7 } else { $scales[$i] = [int]$s }
      }
      $rows = [System.Collections.ArrayList]::new()
      while ($r.Read()) {
        $row = [object[]]::new($w)
        for ($i = 0; $i -lt $w; $i++) { $row[$i] = Text $r $i $scales[$i] }
        [void]$rows.Add($row)
      }
      [void]$sets.Add(@{ columns = $cols; rows = $rows })
    }
  } while ($r.NextResult())
  $r.Close()
  $c.Close()
  Say @{ sets = $sets }
} catch {
  $e = $_.Exception
  while ($e.InnerException -and -not ($e -is [System.Data.SqlClient.SqlException])) { $e = $e.InnerException }
  $num = 0
  $class = 0
  if ($e -is [System.Data.SqlClient.SqlException]) { $num = $e.Number; $class = [int]$e.Class }
  $lost = ($stage -eq 'open') -or ($c -eq $null) -or ($c.State -ne 'Open')
  Say @{ error = @{ number = $num; class = $class; message = $e.Message; open = $lost } }
}
"#;

/// What the script answers.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Answer {
    #[serde(default)]
    sets: Option<Vec<Set>>,
    #[serde(default)]
    error: Option<SqlError>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Set {
    columns: Vec<String>,
    rows: Vec<Vec<Option<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SqlError {
    number: i64,
    message: String,
    /// Its severity (20 and above: the connection is gone).
    #[serde(default)]
    class: i64,
    /// Whether it failed while connecting and signing in, or with the connection lost.
    #[serde(default)]
    open: bool,
}

/// The connection string for `host[:port]`: integrated security, TLS with the
/// certificate checked (by the target's own trust, against that name), database
/// `master`. Checked here too (a grant's syntax already allows no `;`), so nothing can be
/// added to the string.
fn connection_string(name: &str) -> Option<String> {
    let (host, port) = name.rsplit_once(':').unwrap_or((name, "1433"));
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    let port: u16 = port.parse().ok()?;
    host_ok.then(|| {
        format!(
            "Server=tcp:{host},{port};Database=master;Integrated Security=SSPI;Encrypt=True;TrustServerCertificate=False;Application Name=Rehydra;Connect Timeout=30"
        )
    })
}

/// A PowerShell expression of `text`: its UTF-8 in base64, decoded there.
fn decoded(text: &str) -> String {
    use base64::Engine as _;
    format!(
        "[Text.Encoding]::UTF8.GetString([Convert]::FromBase64String('{}'))",
        base64::engine::general_purpose::STANDARD.encode(text)
    )
}

/// The script that runs `batch` with `params` on the instance `name`.
fn script(name: &str, batch: &str, params: &[String], timeout_secs: u32) -> Option<String> {
    let params: Vec<String> = params.iter().map(|p| format!("({})", decoded(p))).collect();
    Some(format!(
        "$cs = {}\n$batch = {}\n$params = [string[]]@({})\n$timeout = {timeout_secs}\n{SCRIPT}",
        decoded(&connection_string(name)?),
        decoded(batch),
        params.join(", ")
    ))
}

/// The result sets of a script's standard output, or why it is not an answer.
fn answer(
    stdout: &[u8],
    answer_max: usize,
    sets_max: usize,
) -> Result<Result<Vec<sql::ResultSet>, SqlError>, String> {
    use base64::Engine as _;
    if stdout.len() as u64 >= OUTPUT_MAX {
        return Err(format!(
            "its answer is larger than the {} MiB a command may print",
            OUTPUT_MAX >> 20
        ));
    }
    let text = String::from_utf8_lossy(stdout);
    let line = text
        .lines()
        .find_map(|l| l.trim_end_matches('\r').strip_prefix(MARK))
        .ok_or("it printed no answer")?;
    let json = base64::engine::general_purpose::STANDARD
        .decode(line.trim())
        .map_err(|e| format!("its answer is not base64 ({e})"))?;
    let a: Answer =
        serde_json::from_slice(&json).map_err(|e| format!("its answer is not one ({e})"))?;
    match (a.sets, a.error) {
        (Some(_), Some(_)) | (None, None) => {
            Err("its answer is neither result sets nor an error".into())
        }
        (None, Some(e)) => Ok(Err(e)),
        (Some(sets), None) => {
            if sets.len() >= sets_max {
                return Err(format!("its answer has {sets_max} result sets or more"));
            }
            let mut size = 0usize;
            let mut out = Vec::with_capacity(sets.len());
            for s in sets {
                let width = s.columns.len();
                if s.rows.iter().any(|r| r.len() != width) {
                    return Err(format!(
                        "a row of its answer does not have the {width} values its columns say"
                    ));
                }
                size += 64
                    + s.columns.iter().map(|c| c.len() + 24).sum::<usize>()
                    + s.rows
                        .iter()
                        .flatten()
                        .map(|v| 24 + v.as_ref().map_or(0, String::len))
                        .sum::<usize>()
                    + 32 * s.rows.len();
                if size > answer_max {
                    return Err(format!("its answer is larger than {answer_max} bytes"));
                }
                out.push(sql::ResultSet {
                    columns: s.columns,
                    rows: s.rows,
                });
            }
            Ok(Ok(out))
        }
    }
}

/// Where `via` runs, as a plugin may be told (the target's name, never its account or
/// host).
fn place(via: &SqlVia) -> String {
    match via {
        SqlVia::Local => "this machine's PowerShell 7 (pwsh)".into(),
        SqlVia::Target(t) => format!("command target `{}`", t.name),
    }
}

/// Run `batch` on `server` through `via`, within the call's budget and `limit`; what
/// PowerShell printed on its error stream goes to `log` (the job log), not to the plugin.
#[allow(clippy::too_many_arguments)]
pub(super) fn batch_via(
    budget: &Budget,
    limit: Duration,
    server: &str,
    via: &SqlVia,
    batch: &str,
    params: &[String],
    (answer_max, sets_max): (usize, usize),
    log: &dyn Fn(&str),
) -> Res<Vec<sql::ResultSet>> {
    let what = format!("SQL Server `{server}` through {}", place(via));
    let secs = u32::try_from(limit.as_secs()).unwrap_or(u32::MAX).max(1);
    let Some(script) = script(server, batch, params, secs) else {
        return Err(err(
            ErrorCode::InvalidInput,
            format!("{what}: `{server}` is not host[:port]"),
        ));
    };
    if script.len() > SCRIPT_MAX {
        return Err(err(
            ErrorCode::InvalidInput,
            format!(
                "{what}: a batch and its parameters are at most {} MiB in all through a command target",
                SCRIPT_MAX >> 20
            ),
        ));
    }
    let limit = limit + START_ALLOWANCE;
    let (remote, env) = match via {
        SqlVia::Local => (None, KERBEROS_ENV),
        SqlVia::Target(t) => (Some(t), &[][..]),
    };
    let given = Given {
        stdin: Some(script.as_bytes()),
        env,
    };
    let out = run_powershell(remote, BOOTSTRAP, budget, Some(limit), given).map_err(|e| {
        if budget.stopped().is_some() || e.message.contains("timed out after") {
            return e;
        }
        if remote.is_none() {
            // (not installed here: unsupported for a plugin's own PowerShell, unavailable
            // for an instance)
            return if e.code == crate::bindings::wit::ErrorCode::Unsupported {
                err(ErrorCode::Unavailable, format!("{what}: {}", e.message))
            } else {
                e
            };
        }
        // ssh's account, host and message are the admin's (the job log)
        log(&format!("host: {what}: {}", e.message));
        err(
            ErrorCode::Unavailable,
            format!("{what}: the command target could not be reached (the job log says why)"),
        )
    })?;
    match answer(&out.stdout, answer_max, sets_max) {
        Ok(Ok(sets)) => Ok(sets),
        Ok(Err(e)) => {
            let text = tame(&e.message, 500);
            let text = text.trim();
            // not signed in (the instance unreachable, the login refused): unavailable, as
            // the direct connection says, so a plugin may ask another replica
            let code = match e.number {
                _ if e.open || e.class >= 20 => ErrorCode::Unavailable,
                18456 | 18452 | 4060 => ErrorCode::Unavailable,
                // the batch's own timeout (the client's)
                -2 => ErrorCode::Failed,
                _ => ErrorCode::InvalidInput,
            };
            Err(err(
                code,
                if e.number == 0 {
                    format!("{what}: {text}")
                } else {
                    format!("{what}: SQL Server error {}: {text}", e.number)
                },
            ))
        }
        Err(why) => {
            let stderr = tame(&String::from_utf8_lossy(&out.stderr), 2000);
            let stderr = stderr.trim();
            if !stderr.is_empty() {
                log(&format!("host: {what}: PowerShell said: {stderr}"));
            }
            Err(err(
                ErrorCode::Unavailable,
                format!(
                    "{what}: PowerShell exited {} and {why}{}",
                    out.status,
                    if stderr.is_empty() {
                        ""
                    } else {
                        " (the job log has what it said)"
                    }
                ),
            ))
        }
    }
}

/// [`super::check_sql_server`] through `via`: the instance's name and version, and the
/// login it took the target's account for (the direct connection's two batches).
pub(super) fn check_via(
    budget: &Budget,
    server: &str,
    via: &SqlVia,
) -> Result<super::SqlSignedIn, String> {
    let said = std::cell::RefCell::new(String::new());
    let ask = |batch: &str| -> Result<Vec<Option<String>>, String> {
        let sets = batch_via(
            budget,
            Duration::from_secs(60),
            server,
            via,
            batch,
            &[],
            (1 << 20, 16),
            &|m| said.borrow_mut().push_str(m),
        )
        // (the caller names the instance; the admin asking sees what PowerShell said)
        .map_err(|e| {
            let m = e
                .message
                .strip_prefix(&format!("SQL Server `{server}` "))
                .unwrap_or(&e.message);
            match said.borrow().as_str() {
                "" => m.to_string(),
                s => format!("{m}: {s}"),
            }
        })?;
        sets.into_iter()
            .next()
            .and_then(|s| s.rows.into_iter().next())
            .ok_or_else(|| "the instance answered with no row".to_string())
    };
    let about = ask(
        "SELECT CAST(@@SERVERNAME AS nvarchar(256)) AS name, CAST(SERVERPROPERTY('ProductVersion') AS nvarchar(128)) AS version",
    )?;
    let login = ask("SELECT SUSER_SNAME() AS login")?;
    let cell = |r: &[Option<String>], i: usize| r.get(i).cloned().flatten().unwrap_or_default();
    Ok(super::SqlSignedIn {
        server: cell(&about, 0),
        version: cell(&about, 1),
        login: cell(&login, 0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    fn line(json: &str) -> Vec<u8> {
        format!(
            "noise before\r\n{MARK}{}\r\n",
            base64::engine::general_purpose::STANDARD.encode(json)
        )
        .into_bytes()
    }

    #[test]
    fn answers_are_read_as_hostile_input() {
        let ok = answer(
            &line(r#"{"sets":[{"columns":["name","lsn"],"rows":[["sales","34000000006900179"],[null,"1"]]}]}"#),
            1 << 20,
            10,
        )
        .unwrap()
        .unwrap_or_else(|_| panic!("an error"));
        assert_eq!(ok[0].columns, ["name", "lsn"]);
        assert_eq!(ok[0].rows[1], [None, Some("1".to_string())]);
        let e = answer(
            &line(r#"{"error":{"number":18456,"message":"Login failed","open":true}}"#),
            1 << 20,
            10,
        )
        .unwrap()
        .err()
        .unwrap();
        assert_eq!(e.number, 18456);
        assert!(e.open);
        // more result sets than the direct connection takes
        let many = format!(
            r#"{{"sets":[{}]}}"#,
            [r#"{"columns":[],"rows":[]}"#; 10].join(",")
        );
        assert!(
            answer(&line(&many), 1 << 20, 10)
                .err()
                .unwrap()
                .contains("10 result sets or more")
        );
        for (out, says) in [
            (b"no mark at all".to_vec(), "no answer"),
            (format!("{MARK}!!!").into_bytes(), "not base64"),
            (
                line(r#"{"sets":[{"columns":["a"],"rows":[["x","y"]]}]}"#),
                "1 values",
            ),
            (
                line(r#"{"sets":[{"columns":["a"],"rows":[[1]]}]}"#),
                "not one",
            ),
            (
                line(r#"{"sets":[],"error":{"number":1,"message":"x"}}"#),
                "neither",
            ),
            (line(r#"{}"#), "neither"),
            (line(r#"{"sets":[],"more":1}"#), "not one"),
        ] {
            let e = answer(&out, 1 << 20, 10)
                .err()
                .unwrap_or_else(|| panic!("{says}: taken"));
            assert!(e.contains(says), "{e}");
        }
        let big = format!(
            r#"{{"sets":[{{"columns":["a"],"rows":[["{}"]]}}]}}"#,
            "x".repeat(2000)
        );
        assert!(
            answer(&line(&big), 1000, 10)
                .err()
                .unwrap()
                .contains("larger than")
        );
    }

    #[test]
    fn nothing_can_be_added_to_the_connection_string() {
        assert_eq!(
            connection_string("sql01.contoso.local:1444").unwrap(),
            "Server=tcp:sql01.contoso.local,1444;Database=master;Integrated Security=SSPI;Encrypt=True;TrustServerCertificate=False;Application Name=Rehydra;Connect Timeout=30"
        );
        assert!(
            connection_string("sql01")
                .unwrap()
                .contains("tcp:sql01,1433;")
        );
        for bad in ["a;Password=x:1", "a b:1", "a:port", ":1", "a:99999"] {
            assert!(connection_string(bad).is_none(), "{bad}");
        }
        // the batch and parameters reach the script only as base64
        let s = script(
            "sql01:1433",
            "SELECT 1 -- ' \" `$(x)",
            &["'; DROP".into()],
            30,
        )
        .unwrap();
        assert!(!s.contains("DROP") && !s.contains("SELECT 1"));
        assert!(
            s.starts_with("$cs = [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String('")
        );
        // the command line holds the bootstrap alone, and the script is ASCII (a console's
        // code page cannot change it)
        assert!(BOOTSTRAP.len() < 100 && s.is_ascii());
        let one = script("sql01", "SELECT @P1", &["x".into()], 30).unwrap();
        assert!(
            one.contains("$params = [string[]]@(([Text.Encoding]::UTF8.GetString([Convert]::FromBase64String('eA=='))))\n"),
            "{one}"
        );
        let none = script("sql01", "SELECT 1", &[], 30).unwrap();
        assert!(none.contains("$params = [string[]]@()\n"), "{none}");
    }
}
