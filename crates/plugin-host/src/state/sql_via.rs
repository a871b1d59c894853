//! The `sql` capability through a command target, where the admin prefers it (an
//! instance reachable only from its own machine, or signed in to as that machine's
//! account): the host runs each batch with PowerShell's SQL client
//! (`System.Data.SqlClient`) on the target, or on this machine's PowerShell 7, signed in
//! as the account the target's commands run as (integrated security, nothing secret
//! kept or sent), and reads the answer back.
//!
//! The batch and its parameters travel inside the script as base64 of JSON (nothing to
//! quote), and the answer comes back as one line, [`MARK`] and base64 of JSON, read as
//! hostile input: every value a string or null, as many as the columns, the whole
//! capped as the direct connection's is. Values are text as the direct connection gives
//! them (the script formats dates, numbers, GUIDs and binary the same way). A batch given
//! up on ends the command (and so, with SSH, the remote PowerShell and its connection:
//! SQL Server stops a batch whose connection closes).

use std::time::Duration;

use serde::Deserialize;

use super::commands::{run_command, run_remote};
use super::{Res, err};
use crate::bindings::rehydra::plugin::sql;
use crate::dto::ErrorCode;
use crate::limits::Budget;
use crate::{SqlAccess, SqlVia};

/// What starts the answer's line on standard output.
const MARK: &str = "REHYDRA-SQL ";
/// Longest batch and parameters through a command target, in all: the script goes on a
/// command line (`-EncodedCommand`, UTF-16 in base64), which Windows caps at 32,767
/// characters.
pub(super) const VIA_BYTES_MAX: usize = 6 << 10;
/// Time allowed beyond the batch's own for PowerShell to start and connect.
const START_ALLOWANCE: Duration = Duration::from_secs(60);

/// The script run on the target; `@PAYLOAD@` becomes base64 of the JSON of
/// [`Payload`]. Rows are built in arrays by index (a function's `$null` would vanish
/// from a pipeline), and every value is formatted with the invariant culture.
const SCRIPT: &str = r#"$ErrorActionPreference = 'Stop'
$q = [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String('@PAYLOAD@')) | ConvertFrom-Json
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
    '^(decimal|numeric|money|smallmoney)$' { return $r.GetSqlValue($i).ToString() }
    '^datetime$' { return $v.ToString('yyyy-MM-ddTHH:mm:ss.fff', $inv) }
    '^smalldatetime$' { return $v.ToString('yyyy-MM-ddTHH:mm:ss', $inv) }
    '^date$' { return $v.ToString('yyyy-MM-dd', $inv) }
    '^datetime2$' { return $v.ToString('yyyy-MM-ddTHH:mm:ss' + (Frac $scale '.'), $inv) }
    '^datetimeoffset$' { return $v.ToString('yyyy-MM-ddTHH:mm:ss' + (Frac $scale '.') + 'zzz', $inv) }
    '^time$' { return $v.ToString('hh\:mm\:ss' + (Frac $scale '\.'), $inv) }
    default { if ($v -is [IFormattable]) { return $v.ToString($null, $inv) } else { return [string]$v } }
  }
}
try {
  $c = New-Object System.Data.SqlClient.SqlConnection $q.c
  $c.Open()
  $cmd = $c.CreateCommand()
  $cmd.CommandText = $q.b
  $cmd.CommandTimeout = [int]$q.t
  for ($n = 0; $n -lt @($q.p).Count; $n++) {
    $p = $cmd.Parameters.Add('@P' + ($n + 1), [Data.SqlDbType]::NVarChar, -1)
    $p.Value = [string]@($q.p)[$n]
  }
  $r = $cmd.ExecuteReader()
  $sets = New-Object System.Collections.ArrayList
  do {
    if ($r.FieldCount -gt 0) {
      $w = $r.FieldCount
      $schema = $r.GetSchemaTable()
      $cols = New-Object object[] $w
      $scales = New-Object int[] $w
      for ($i = 0; $i -lt $w; $i++) {
        $cols[$i] = $r.GetName($i)
        $s = $schema.Rows[$i]['NumericScale']
        if ($s -is [DBNull] -or $s -gt 7) { $scales[$i] = 7 } else { $scales[$i] = [int]$s }
      }
      $rows = New-Object System.Collections.ArrayList
      while ($r.Read()) {
        $row = New-Object object[] $w
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
  if ($e -is [System.Data.SqlClient.SqlException]) { $num = $e.Number }
  Say @{ error = @{ number = $num; message = $e.Message } }
}
"#;

/// What the script is given: the connection string, the batch, its parameters, its
/// timeout in seconds.
#[derive(serde::Serialize)]
struct Payload<'a> {
    c: String,
    b: &'a str,
    p: &'a [String],
    t: u32,
}

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
}

/// The connection string for `host:port`: integrated security, TLS with the certificate
/// checked (by the target's own trust), database `master`. The address is checked here
/// too (a grant's syntax already allows no `;`), so nothing can be added to the string.
fn connection_string(address: &str) -> Option<String> {
    let (host, port) = address.rsplit_once(':').unwrap_or((address, "1433"));
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

/// The script that runs `batch` with `params` on the instance at `address`.
fn script(address: &str, batch: &str, params: &[String], timeout_secs: u32) -> Option<String> {
    use base64::Engine as _;
    let payload = Payload {
        c: connection_string(address)?,
        b: batch,
        p: params,
        t: timeout_secs,
    };
    let json = serde_json::to_vec(&payload).ok()?;
    let b64 = base64::engine::general_purpose::STANDARD.encode(json);
    Some(SCRIPT.replace("@PAYLOAD@", &b64))
}

/// The result sets of a script's standard output, or why it is not an answer.
fn answer(
    stdout: &[u8],
    answer_max: usize,
) -> Result<Result<Vec<sql::ResultSet>, SqlError>, String> {
    use base64::Engine as _;
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

/// Where `via` runs, for messages.
fn place(via: &SqlVia) -> String {
    match via {
        SqlVia::Local => "this machine's PowerShell 7 (pwsh)".into(),
        SqlVia::Target(t) => format!("command target `{}` ({})", t.name, t.ssh),
    }
}

/// Run `batch` on `server` through `via`, within the call's budget and `limit`.
pub(super) fn batch_via(
    budget: &Budget,
    limit: Duration,
    server: &str,
    access: &SqlAccess,
    via: &SqlVia,
    batch: &str,
    params: &[String],
    answer_max: usize,
) -> Res<Vec<sql::ResultSet>> {
    let what = format!("SQL Server `{server}` through {}", place(via));
    if batch.len() + params.iter().map(String::len).sum::<usize>() > VIA_BYTES_MAX {
        return Err(err(
            ErrorCode::InvalidInput,
            format!(
                "{what}: a batch and its parameters are at most {VIA_BYTES_MAX} bytes through a command target (its command line is capped)"
            ),
        ));
    }
    let secs = u32::try_from(limit.as_secs()).unwrap_or(u32::MAX).max(1);
    let Some(script) = script(&access.address, batch, params, secs) else {
        return Err(err(
            ErrorCode::InvalidInput,
            format!("{what}: `{}` is not host:port", access.address),
        ));
    };
    let limit = limit + START_ALLOWANCE;
    let out = match via {
        SqlVia::Local => run_command(
            "pwsh",
            &[
                "-NoProfile".into(),
                "-NonInteractive".into(),
                "-Command".into(),
                script,
            ],
            budget,
            Some(limit),
        )
        .map_err(|e| {
            if e.code == crate::bindings::wit::ErrorCode::NotFound {
                err(
                    ErrorCode::Unavailable,
                    format!("{what}: PowerShell 7 (pwsh) is not installed on this machine"),
                )
            } else {
                e
            }
        })?,
        SqlVia::Target(t) => run_remote(t, &t.powershell_line(&script), budget, Some(limit))?,
    };
    match answer(&out.stdout, answer_max) {
        Ok(Ok(sets)) => Ok(sets),
        Ok(Err(e)) => {
            let text: String = e
                .message
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .take(500)
                .collect();
            let code = match e.number {
                // login failed, cannot open the database the login asks for
                18456 | 18452 | 4060 => ErrorCode::Unavailable,
                0 => ErrorCode::Unavailable,
                _ => ErrorCode::InvalidInput,
            };
            let said = if e.number == 0 {
                format!("{what}: {}", text.trim())
            } else {
                format!("{what}: SQL Server error {}: {}", e.number, text.trim())
            };
            Err(err(code, said))
        }
        Err(why) => {
            let stderr: String = String::from_utf8_lossy(&out.stderr)
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .take(300)
                .collect();
            Err(err(
                ErrorCode::Unavailable,
                format!(
                    "{what}: PowerShell exited {} and {why}{}",
                    out.status,
                    if stderr.trim().is_empty() {
                        String::new()
                    } else {
                        format!(": {}", stderr.trim())
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
    access: &SqlAccess,
    via: &SqlVia,
) -> Result<super::SqlSignedIn, String> {
    let ask = |batch: &str| -> Result<Vec<Option<String>>, String> {
        let sets = batch_via(
            budget,
            Duration::from_secs(60),
            server,
            access,
            via,
            batch,
            &[],
            1 << 20,
        )
        // (the caller names the instance)
        .map_err(|e| {
            e.message
                .strip_prefix(&format!("SQL Server `{server}` "))
                .unwrap_or(&e.message)
                .to_string()
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
        )
        .unwrap()
        .unwrap_or_else(|_| panic!("an error"));
        assert_eq!(ok[0].columns, ["name", "lsn"]);
        assert_eq!(ok[0].rows[1], [None, Some("1".to_string())]);
        let e = answer(
            &line(r#"{"error":{"number":18456,"message":"Login failed"}}"#),
            1 << 20,
        )
        .unwrap()
        .err()
        .unwrap();
        assert_eq!(e.number, 18456);
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
            let e = answer(&out, 1 << 20)
                .err()
                .unwrap_or_else(|| panic!("{says}: taken"));
            assert!(e.contains(says), "{e}");
        }
        let big = format!(
            r#"{{"sets":[{{"columns":["a"],"rows":[["{}"]]}}]}}"#,
            "x".repeat(2000)
        );
        assert!(
            answer(&line(&big), 1000)
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
    }
}
