//! The `sql` capability: T-SQL batches on SQL Server instances the admin configured and
//! granted (`sql:<server>`), signed in as the admin's login, never seen by the plugin.
//!
//! One connection per call, on a thread of its own ([`apart`]), TLS for the whole session
//! (`EncryptionLevel::Required`), the server's certificate checked against the system's
//! roots or the CA configured for that instance; signed in with a login and password or
//! as this process's account. Answers are hostile input: every value becomes text
//! without panicking, the whole answer is capped at [`ANSWER_BYTES_MAX`] (and what
//! arrives at [`WIRE_BYTES_MAX`] a connection and [`WIRE_BYTES_ALL_MAX`] for all open at
//! once, see `sql_wire.rs`), the batch at
//! the plugin's time limit and its own timeout, and the call's cancellation is checked
//! while it runs; a batch given up on is stopped on the server (an Attention). Every
//! batch is audited and its first line logged.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::time::Duration;

use futures_util::TryStreamExt as _;
use tiberius::{AuthMethod, Client, Config, EncryptionLevel, QueryItem, ToSql};
use tokio::net::TcpStream;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt as _};

use super::sql_values::text;
use super::sql_wire::{CUT_ALL, CUT_CONNECTION, Cut, Metered};
use super::{Res, State, blocking, err, sql_via, stop_err, tame};
use crate::bindings::rehydra::plugin::sql;
use crate::dto::ErrorCode;
use crate::limits::Budget;
use crate::policy::CapabilityKind;
use crate::{LogLevel, SqlAccess, SqlLogin};

/// Largest answer (values and column names) returned to a plugin.
const ANSWER_BYTES_MAX: usize = 64 << 20;
/// Most the instance may send on one connection (its sign-in and one batch's answer),
/// counted as it arrives, so that no value the driver holds whole grows past it: twice
/// the answer cap (text arrives as UTF-16, held as UTF-8; binary as bytes, held as hex),
/// and the sign-in, TDS's and TLS's framing.
const WIRE_BYTES_MAX: usize = 2 * ANSWER_BYTES_MAX + (8 << 20);
/// Most the connections open at once may have read together (each may take a few times
/// what it read to decode it), calls given up on and still ending among them; one that has
/// read no more than a sixteenth of [`WIRE_BYTES_MAX`] is not cut for it (`sql_wire.rs`).
const WIRE_BYTES_ALL_MAX: usize = 2 * WIRE_BYTES_MAX;
/// Longest batch and longest parameter a plugin may send.
const BATCH_BYTES_MAX: usize = 1 << 20;
/// Most parameters of one batch.
const PARAMS_MAX: usize = 256;
/// Most result sets of one answer.
const SETS_MAX: usize = 10_000;
/// What holding a result set, a row and a value costs beyond its text, counted against
/// [`ANSWER_BYTES_MAX`] (so empty strings and empty result sets are not free).
const SET_COST: usize = 64;
const ROW_COST: usize = 32;
const VALUE_COST: usize = 24;
/// Longest a batch may be given (a day: BACKUP of a large database).
const TIMEOUT_SECS_MAX: u32 = 86_400;
/// Time allowed to connect, secure the connection and sign in.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// What an error of a failed sign-in as this process's account says first (a plugin is
/// told no more: the rest names the account, its ticket cache or keytab).
const INTEGRATED_FAILED: &str = "the sign-in as the account Rehydra runs as failed";
/// What an error says first when the instance refused the sign-in (SQL Server names the
/// login in its words: a plugin is told no more than this).
const SIGN_IN_REFUSED: &str = "the instance refused the sign-in";
/// The same for a Windows account and its password signed in with by Kerberos (a host
/// that is not Windows; the plugin is not told the account either).
const PASSWORD_KERBEROS_FAILED: &str =
    "the Kerberos sign-in as the configured Windows account, with its password, failed";
/// Time allowed for the server to acknowledge that a batch stopped.
const ATTENTION_WAIT: Duration = Duration::from_secs(10);
/// SQL calls' threads running at once, those given up on and still ending included.
static THREADS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
const THREADS_MAX: usize = 16;

/// One of [`THREADS`], for as long as this lives.
struct Running;

impl Running {
    fn count() -> Self {
        THREADS.fetch_add(1, Ordering::SeqCst);
        Self
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        THREADS.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A signed-in connection, and whether it was cut for sending more than
/// [`WIRE_BYTES_MAX`] (or [`WIRE_BYTES_ALL_MAX`] with the others).
struct Conn {
    client: Client<Compat<Metered>>,
    cut: Cut,
}

/// What the error of a call on a connection says: the cut itself when too much arrived
/// (the driver names only a broken connection), else [`sql_err`].
fn conn_err(cut: &Cut, what: &str, e: &tiberius::error::Error) -> crate::bindings::wit::Error {
    let why = match cut.load(Ordering::SeqCst) {
        CUT_CONNECTION => format!(
            "the instance sent more than {} MiB on one connection (values, messages or row counts), more than the host takes; ask for less, e.g. fewer rows, columns or messages (SET NOCOUNT ON)",
            WIRE_BYTES_MAX >> 20
        ),
        CUT_ALL => format!(
            "the SQL connections open at once received more than {} MiB together, more than the host takes; try again when fewer jobs talk to SQL Server",
            WIRE_BYTES_ALL_MAX >> 20
        ),
        _ => return sql_err(what, e),
    };
    err(ErrorCode::Failed, format!("{what}: {why}"))
}

/// The error of a failed SQL call, in the words an admin or a DBA reads.
fn sql_err(what: &str, e: &tiberius::error::Error) -> crate::bindings::wit::Error {
    use tiberius::error::Error as E;
    let (code, detail) = match e {
        E::Server(t) => {
            let text: String = t.message().chars().take(500).collect();
            let code = match t.code() {
                // login failed, cannot open the database the login asks for
                18456 | 18452 | 4060 => ErrorCode::Unavailable,
                _ => ErrorCode::InvalidInput,
            };
            // a Windows sign-in the domain refused (a wrong password among the causes):
            // SQL Server's words name only a domain
            let fix = if t.code() == 18452 {
                " (check the Windows account and its password, and that the instance's domain trusts the account's)"
            } else {
                ""
            };
            (
                code,
                format!("SQL Server error {}: {}{fix}", t.code(), text.trim()),
            )
        }
        E::Io { message, .. } => (ErrorCode::Unavailable, format!("connection: {message}")),
        E::Tls(m) => (
            ErrorCode::Unavailable,
            format!("TLS: {m} (is the instance's certificate trusted? give its CA with --ca-file)"),
        ),
        other => (ErrorCode::Failed, other.to_string()),
    };
    err(code, format!("{what}: {detail}"))
}

/// `host` and `port` of `host[:port]` (default 1433).
fn host_port<'a>(server: &str, at: &'a str) -> Res<(&'a str, u16)> {
    match at.rsplit_once(':') {
        Some((h, p)) => Ok((
            h,
            p.parse::<u16>().map_err(|_| {
                err(
                    ErrorCode::Unavailable,
                    format!("SQL Server `{server}`: the port of `{at}` is not a number"),
                )
            })?,
        )),
        None => Ok((at, 1433)),
    }
}

/// Whether `login` signs in by Kerberos here: as this process's account, or (on a host
/// that is not Windows) as a Windows account with its password.
fn by_kerberos(login: &SqlLogin) -> bool {
    matches!(login, SqlLogin::Integrated(_))
        || (cfg!(unix) && matches!(login, SqlLogin::Windows(_)))
}

/// `host:port` of the instance as TLS and Kerberos know it. Signed in by Kerberos, the
/// instance is who its name says: the service principal (`MSSQLSvc/<host>:<port>`) and
/// the certificate are the name's, and the address is only where the connection goes
/// (`connect`).
fn known_as<'a>(server: &'a str, access: &'a SqlAccess) -> &'a str {
    if by_kerberos(&access.login) {
        server
    } else {
        &access.address
    }
}

/// The driver's configuration for `server`, known as `host:port` (see [`known_as`]).
fn config((host, port): (&str, u16), access: &SqlAccess) -> Config {
    let mut c = Config::new();
    c.host(host);
    c.port(port);
    c.application_name("Rehydra");
    c.database("master");
    // the whole session, not only the login packet; never a plain-text connection
    c.encryption(EncryptionLevel::Required);
    if let Some(pem) = &access.ca_pem {
        c.trust_cert_ca_bundle(pem.clone());
    }
    let password: &str = &access.password;
    c.authentication(match &access.login {
        SqlLogin::Sql(user) => AuthMethod::sql_server(user, password),
        #[cfg(windows)]
        SqlLogin::Windows(user) => AuthMethod::windows(user, password),
        // by Kerberos, with the ticket the password got made this thread's (`connect`)
        #[cfg(not(windows))]
        SqlLogin::Windows(_) => AuthMethod::Integrated,
        SqlLogin::Integrated(_) => AuthMethod::Integrated,
        SqlLogin::Entra => AuthMethod::aad_token(password),
    });
    c
}

/// What to do about a Kerberos sign-in to the instance with service principal `spn`
/// that failed with `gss` (MIT's words), as this process's account or (`password`) as
/// a configured Windows account.
#[cfg(unix)]
fn kerberos_fix(gss: &str, spn: &str, password: bool) -> String {
    if gss.contains("Server not found") {
        format!(
            "the domain has no service principal {spn}: register it on the account SQL Server runs as (setspn -S {spn} <account>), or name the instance as its principal does (it is looked up in krb5.conf's default_realm: an instance of another realm needs that realm as the default)"
        )
    } else if password {
        if gss.contains("not found in Kerberos database") {
            "the domain has no such account: it is looked up in krb5.conf's default_realm (DOMAIN\\user), or in DOMAIN when that is the realm's full name (contoso.local\\user)".into()
        } else if gss.contains("Cannot contact any KDC") || gss.contains("Cannot find KDC") {
            "no KDC of the account's domain answered: krb5.conf must name it (or let DNS find it)"
                .into()
        } else {
            "check the account's password (a wrong one is refused by the KDC as above), and that it is neither locked out nor expired".into()
        }
    } else {
        "the account Rehydra runs as needs a ticket of the instance's domain: kinit, or for a service a client keytab named by KRB5_CLIENT_KTNAME".into()
    }
}

/// Connect, secure the session and sign in.
async fn connect(server: &str, access: &SqlAccess) -> Res<Conn> {
    let (host, port) = host_port(server, known_as(server, access))?;
    let cfg = config((host, port), access);
    let what = format!("connecting to SQL Server `{server}`");
    #[cfg(unix)]
    let spn = format!("MSSQLSvc/{host}:{port}");
    #[cfg(unix)]
    let (password, failed) = match &access.login {
        SqlLogin::Windows(_) => (true, PASSWORD_KERBEROS_FAILED),
        _ => (false, INTEGRATED_FAILED),
    };
    let attempt = async {
        // a Windows account's password gets it a ticket, this thread's for the sign-in
        #[cfg(unix)]
        let _tickets = match &access.login {
            SqlLogin::Windows(user) => {
                use super::sql_password_kerberos::{SignInError, sign_in};
                Some(sign_in(user, &access.password).map_err(|e| {
                    let said = match e {
                        SignInError::Login(m) => m,
                        SignInError::Kerberos(m) => {
                            format!("(Kerberos): {m}; {}", kerberos_fix(&m, &spn, true))
                        }
                    };
                    err(ErrorCode::Unavailable, format!("{what}: {failed} {said}"))
                })?)
            }
            _ => None,
        };
        let tcp = TcpStream::connect(access.address.as_str())
            .await
            .map_err(|e| err(ErrorCode::Unavailable, format!("{what}: {e}")))?;
        tcp.set_nodelay(true).ok();
        let (wire, cut) = Metered::new(tcp, WIRE_BYTES_MAX, WIRE_BYTES_ALL_MAX);
        let client = Client::connect(cfg, wire.compat_write())
            .await
            .map_err(|e| match e {
                #[cfg(unix)]
                tiberius::error::Error::Gssapi(m) => err(
                    ErrorCode::Unavailable,
                    format!(
                        "{what}: {failed} (Kerberos): {m}; {}",
                        kerberos_fix(&m, &spn, password)
                    ),
                ),
                // SQL Server's words name the login: said as refused, which hides them
                // from a plugin (`query`)
                tiberius::error::Error::Server(t) if matches!(t.code(), 18456 | 18452) => {
                    let refused = format!("{what}: {SIGN_IN_REFUSED}");
                    conn_err(&cut, &refused, &tiberius::error::Error::Server(t))
                }
                e => conn_err(&cut, &what, &e),
            })?;
        let mut conn = Conn { client, cut };
        match &access.login {
            SqlLogin::Integrated(Some(only)) => {
                let fix = if cfg!(windows) {
                    "run Rehydra as that account"
                } else {
                    "run it with that account's ticket: kinit, or for a service a client keytab named by KRB5_CLIENT_KTNAME"
                };
                only_as(&mut conn, &what, (only, false), (INTEGRATED_FAILED, fix)).await?;
            }
            // the ticket the password got, this thread's, is the one the driver used
            #[cfg(unix)]
            SqlLogin::Windows(user) => {
                let fix = "the account's ticket is of krb5.conf's default realm, whose NetBIOS name DOMAIN must be; or name the realm in full (contoso.local\\user)";
                only_as(
                    &mut conn,
                    &what,
                    (user, true),
                    (PASSWORD_KERBEROS_FAILED, fix),
                )
                .await?;
            }
            _ => {}
        }
        Ok(conn)
    };
    tokio::time::timeout(CONNECT_TIMEOUT, attempt)
        .await
        .map_err(|_| err(ErrorCode::Unavailable, format!("{what}: no answer in 30 s")))?
}

/// Refuse a connection the instance signed in as another login than `only` (its
/// `SUSER_SNAME()`, compared without case as Windows does), before anything is sent.
async fn only_as(
    conn: &mut Conn,
    what: &str,
    (only, realm_named): (&str, bool),
    (failed, fix): (&str, &str),
) -> Res<()> {
    let sets = run(conn, "SELECT SUSER_SNAME() AS login", &[]).await?;
    let login = sets
        .first()
        .and_then(|s| s.rows.first())
        .and_then(|r| r.first().cloned().flatten())
        .unwrap_or_default();
    if same_login(&login, only, realm_named) {
        return Ok(());
    }
    Err(err(
        ErrorCode::Unavailable,
        format!(
            "{what}: {failed}: the instance signed Rehydra in as `{login}`, but it is to sign in only as `{only}`; {fix}, or configure the instance again"
        ),
    ))
}

/// Whether the instance's `login` (`SUSER_SNAME()`: NETBIOS\user) is `expected`
/// (DOMAIN\user), without case as Windows compares. With `realm_named`, a DOMAIN with a
/// dot is a realm's name, the one the ticket was got in, not the NetBIOS one: only the
/// user is compared then.
fn same_login(login: &str, expected: &str, realm_named: bool) -> bool {
    let split = |l: &str| {
        l.split_once('\\')
            .map(|(d, u)| (d.to_uppercase(), u.to_uppercase()))
    };
    match (split(login), split(expected)) {
        (Some((d, u)), Some((ed, eu))) => u == eu && (d == ed || realm_named && ed.contains('.')),
        _ => false,
    }
}

/// Every result set of `batch`, within the answer cap.
async fn run(conn: &mut Conn, batch: &str, params: &[String]) -> Res<Vec<sql::ResultSet>> {
    let what = "running the batch";
    let Conn { client, cut } = conn;
    let mut stream = if params.is_empty() {
        client.simple_query(batch).await
    } else {
        let p: Vec<&dyn ToSql> = params.iter().map(|v| v as &dyn ToSql).collect();
        client.query(batch, &p).await
    }
    .map_err(|e| conn_err(cut, what, &e))?;
    let mut sets: Vec<sql::ResultSet> = Vec::new();
    let mut size = 0usize;
    let over = || {
        err(
            ErrorCode::Failed,
            "the answer is over 64 MiB (or 10,000 result sets); ask for fewer rows or columns",
        )
    };
    while let Some(item) = stream
        .try_next()
        .await
        .map_err(|e| conn_err(cut, what, &e))?
    {
        match item {
            QueryItem::Metadata(m) => {
                let columns: Vec<String> =
                    m.columns().iter().map(|c| c.name().to_string()).collect();
                // what a result set, a row and a value cost to hold, not only their text
                size += SET_COST + columns.iter().map(|c| c.len() + VALUE_COST).sum::<usize>();
                if size > ANSWER_BYTES_MAX || sets.len() >= SETS_MAX {
                    return Err(over());
                }
                sets.push(sql::ResultSet {
                    columns,
                    rows: Vec::new(),
                });
            }
            QueryItem::Row(row) => {
                let values: Vec<Option<String>> = row.into_iter().map(text).collect();
                size += ROW_COST
                    + values
                        .iter()
                        .map(|v| VALUE_COST + v.as_ref().map_or(0, String::len))
                        .sum::<usize>();
                if size > ANSWER_BYTES_MAX {
                    return Err(over());
                }
                match sets.last_mut() {
                    Some(s) => s.rows.push(values),
                    None => {
                        return Err(err(
                            ErrorCode::Failed,
                            "the server sent a row before its columns",
                        ));
                    }
                }
            }
        }
    }
    Ok(sets)
}

/// Run `work` on a thread and runtime of its own and wait for its answer within the
/// call's budget and `limit`. A Kerberos sign-in blocks its thread while MIT's library
/// asks the KDC (27 s when the KDC is silent), and a blocked thread stops a runtime's
/// clock, so the waiting is done here, on a thread nothing blocks. When the call is
/// cancelled or out of time, `work` is told through the flag it is given (it then stops
/// its batch on the server); once `connected` is set it has [`ATTENTION_WAIT`] to end,
/// before that it is left to end by itself.
fn apart<T, F>(
    budget: &Budget,
    limit: Duration,
    connected: &Arc<AtomicBool>,
    work: impl FnOnce(Arc<AtomicBool>) -> F + Send + 'static,
) -> Res<T>
where
    F: Future<Output = Res<T>>,
    T: Send + 'static,
{
    let failed = |e: String| err(ErrorCode::Failed, format!("starting the SQL client: {e}"));
    // threads given up on end by themselves (a silent KDC holds one 27 s): a plugin
    // calling again and again must not pile them up
    let running = Running::count();
    if THREADS.load(Ordering::SeqCst) > THREADS_MAX {
        return Err(err(
            ErrorCode::Unavailable,
            format!(
                "{THREADS_MAX} SQL calls are still ending (an instance or KDC that does not answer); try again later"
            ),
        ));
    }
    let given_up = Arc::new(AtomicBool::new(false));
    let (tx, rx) = std::sync::mpsc::channel();
    let told = given_up.clone();
    let spawned = std::thread::Builder::new()
        .name("rehydra-sql".into())
        .spawn(move || {
            let _running = running;
            let out = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| failed(e.to_string()))
                .and_then(|rt| rt.block_on(work(told)));
            let _ = tx.send(out);
        });
    if let Err(e) = spawned {
        return Err(failed(e.to_string()));
    }
    let started = std::time::Instant::now();
    let stopped = loop {
        match rx.recv_timeout(Duration::from_millis(250)) {
            Ok(out) => return out,
            Err(RecvTimeoutError::Disconnected) => {
                return Err(failed("it stopped without an answer".into()));
            }
            Err(RecvTimeoutError::Timeout) => {}
        }
        if let Err(stop) = budget.check() {
            break stop_err(stop, budget).into();
        }
        if started.elapsed() >= limit {
            break err(
                ErrorCode::Failed,
                format!("the batch did not finish within its {} s", limit.as_secs()),
            );
        }
    };
    given_up.store(true, Ordering::SeqCst);
    if connected.load(Ordering::SeqCst) {
        // an answer that came meanwhile is the truth (a BACKUP that finished is in msdb)
        if let Ok(Ok(done)) = rx.recv_timeout(ATTENTION_WAIT) {
            return Ok(done);
        }
    }
    Err(stopped)
}

/// Run `batch` on a new connection within the call's budget and `limit`. A batch stopped
/// before its answer (cancelled, out of time) is stopped on the server too: an Attention
/// (MS-TDS 2.2.1.7), its acknowledgement awaited for [`ATTENTION_WAIT`]; without it a
/// BACKUP or RESTORE would run on after the connection closed.
fn batch_on(
    budget: &Budget,
    limit: Duration,
    server: &str,
    access: &SqlAccess,
    batch: &str,
    params: &[String],
) -> Res<Vec<sql::ResultSet>> {
    let (server, access, batch, params) = (
        server.to_string(),
        access.clone(),
        batch.to_string(),
        params.to_vec(),
    );
    let connected = Arc::new(AtomicBool::new(false));
    let signed_in = connected.clone();
    apart(budget, limit, &connected, move |given_up| async move {
        let mut conn = connect(&server, &access).await?;
        // given up on while signing in: the batch is not sent at all
        signed_in.store(true, Ordering::SeqCst);
        if given_up.load(Ordering::SeqCst) {
            let _ = conn.client.close().await;
            return Err(err(ErrorCode::Failed, "given up before it was sent"));
        }
        let gave_up = async {
            while !given_up.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        let answered = tokio::select! {
            biased;
            () = gave_up => None,
            sets = run(&mut conn, &batch, &params) => Some(sets),
        };
        match answered {
            Some(sets) => {
                let _ = conn.client.close().await;
                sets
            }
            None => {
                let _ = tokio::time::timeout(ATTENTION_WAIT, conn.client.cancel_query()).await;
                Err(err(ErrorCode::Failed, "stopped"))
            }
        }
    })
}

/// What signing in to an instance found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlSignedIn {
    /// Its name (`@@SERVERNAME`).
    pub server: String,
    /// Its version (`SERVERPROPERTY('ProductVersion')`).
    pub version: String,
    /// The login it took the host for (`SUSER_SNAME()`, e.g. `CONTOSO\svc-rehydra`):
    /// with an integrated sign-in, whichever account's ticket or token was used.
    pub login: String,
}

/// Connect to and sign in to `server` as configured, and read its name and version and
/// whom it signed in, for the admin to see that the configuration works. Nothing is
/// written.
///
/// # Errors
/// Cannot connect, the certificate is not trusted, the login is refused; in words.
pub fn check_sql_server(server: &str, access: &SqlAccess) -> Result<SqlSignedIn, String> {
    let budget = Budget::new(Duration::from_secs(60), Default::default());
    if let Some(via) = &access.via {
        return sql_via::check_via(&budget, server, via);
    }
    let cell = |sets: Vec<sql::ResultSet>, i: usize| {
        let row = sets
            .into_iter()
            .next()
            .and_then(|s| s.rows.into_iter().next());
        row.ok_or("the instance answered with no row")
            .map(|r| r.get(i).cloned().flatten().unwrap_or_default())
    };
    let (server, access) = (server.to_string(), access.clone());
    let connected = Arc::new(AtomicBool::new(false));
    let (about, login) = apart(&budget, Duration::from_secs(60), &connected, |_| async move {
        let mut conn = connect(&server, &access).await?;
        let about = run(
            &mut conn,
            "SELECT CAST(@@SERVERNAME AS nvarchar(256)) AS name, CAST(SERVERPROPERTY('ProductVersion') AS nvarchar(128)) AS version",
            &[],
        )
        .await?;
        let login = run(&mut conn, "SELECT SUSER_SNAME() AS login", &[]).await?;
        let _ = conn.client.close().await;
        Ok((about, login))
    })
    .map_err(|e| e.message)?;
    Ok(SqlSignedIn {
        server: cell(about.clone(), 0)?,
        version: cell(about, 1)?,
        login: cell(login, 0)?,
    })
}

impl sql::Host for State {
    fn query(
        &mut self,
        server: String,
        batch: String,
        params: Vec<String>,
        timeout_secs: u32,
    ) -> Res<Vec<sql::ResultSet>> {
        self.enter()?;
        if !(1..=TIMEOUT_SECS_MAX).contains(&timeout_secs) {
            return Err(err(
                ErrorCode::InvalidInput,
                format!("timeout-secs is 1 to {TIMEOUT_SECS_MAX}, not {timeout_secs}"),
            ));
        }
        if batch.trim().is_empty()
            || batch.len() > BATCH_BYTES_MAX
            || params.len() > PARAMS_MAX
            || params.iter().any(|p| p.len() > BATCH_BYTES_MAX)
        {
            return Err(err(
                ErrorCode::InvalidInput,
                format!(
                    "a batch is 1 byte to 1 MiB with at most {PARAMS_MAX} parameters of at most 1 MiB"
                ),
            ));
        }
        let server = server.to_ascii_lowercase();
        let allowed = if self.grants.sql_server(&server) {
            Ok(())
        } else {
            Err(format!(
                "SQL Server `{server}` is not granted (rehydra plugins grant {} sql:{server})",
                self.plugin
            ))
        };
        self.check(CapabilityKind::Sql, &server, allowed)?;
        let first_line = batch
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or_default();
        let first_line = tame(first_line, 300);
        // the first line alone may be a comment hiding what follows: the whole batch is
        // named by its size and BLAKE3 digest too
        let digest = blake3::hash(batch.as_bytes()).to_hex();
        self.audit(
            CapabilityKind::Sql,
            &server,
            true,
            &format!(
                "{first_line} ({} bytes, blake3 {})",
                batch.len(),
                &digest[..16]
            ),
        );
        let servers = self.sql_servers.clone();
        let access = blocking(|| servers.sql_server(&server))
            .map_err(|e| {
                // where the secret is kept is the admin's business, not the plugin's
                self.events.log(&self.plugin, LogLevel::Error, &format!("host: sql {server}: {e}"));
                err(
                    ErrorCode::Unavailable,
                    format!("SQL Server `{server}` cannot be used: its configured password, CA file or Azure sign-in cannot be had (the job log says why)"),
                )
            })?
            .ok_or_else(|| {
                err(
                    ErrorCode::Unavailable,
                    format!("SQL Server `{server}` is not configured (rehydra plugins sql-server add {server} --login <login> --password-file <file>)"),
                )
            })?;
        let limit = Duration::from_secs(u64::from(timeout_secs));
        let budget = self.budget.clone();
        let out = match &access.via {
            Some(via) => {
                let (events, plugin) = (self.events.clone(), self.plugin.clone());
                let log = move |m: &str| events.log(&plugin, LogLevel::Error, m);
                let caps = (ANSWER_BYTES_MAX, SETS_MAX);
                sql_via::batch_via(&budget, limit, &server, via, &batch, &params, caps, &log)
            }
            None => batch_on(&budget, limit, &server, &access, &batch, &params),
        }
        .map_err(|e| {
            let Some(failed) = [INTEGRATED_FAILED, PASSWORD_KERBEROS_FAILED, SIGN_IN_REFUSED]
                .into_iter()
                .find(|f| e.message.contains(f))
            else {
                return e;
            };
            // which login, account, ticket cache or keytab was used is the admin's business
            self.events.log(
                &self.plugin,
                LogLevel::Error,
                &format!("host: sql {server}: {}", e.message),
            );
            err(
                ErrorCode::Unavailable,
                format!("SQL Server `{server}`: {failed} (the job log says why)"),
            )
        });
        let outcome = match &out {
            Ok(sets) => format!("{} result set(s)", sets.len()),
            Err(e) => format!("failed: {}", e.message),
        };
        let line = tame(
            &format!("host: sql {server}: {first_line}: {outcome}"),
            super::LOG_MESSAGE_MAX,
        );
        self.events.log(&self.plugin, LogLevel::Debug, &line);
        out
    }
}

#[cfg(test)]
#[path = "sql_tests.rs"]
mod tests;
