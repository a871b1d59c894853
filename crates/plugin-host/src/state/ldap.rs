//! The `ldap` capability: searches and writes on directories the admin configured and
//! granted (`ldap:<server>`), bound as the admin's account, never seen by the plugin.
//!
//! One connection per directory and call (paged-search cookies belong to a connection),
//! always TLS: LDAPS, or StartTLS before the bind, with the server's certificate checked
//! against the system's roots or the CA file configured for that directory. Answers are
//! hostile input: entries are decoded without panicking, a page is capped at
//! [`PAGE_BYTES_MAX`], referrals are dropped. Every write is audited and logged with the
//! DN it touched.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use ldap3::asn1::{PL, StructureTag};
use ldap3::controls::RawControl;
use ldap3::exop::WhoAmI;
use ldap3::{LdapConn, LdapConnSettings, LdapError, Mod, ResultEntry, Scope, StdStream};

use super::{Res, State, blocking, err, stop_err};
use crate::bindings::rehydra::plugin::ldap;
use crate::dto::ErrorCode;
use crate::policy::CapabilityKind;
use crate::{DirectoryAccess, DirectoryBind, LogLevel};

/// Largest page a plugin may ask for (Active Directory's default `MaxPageSize`).
const PAGE_SIZE_MAX: u32 = 1000;
/// Largest page returned, in bytes of values and names.
const PAGE_BYTES_MAX: usize = 64 << 20;
/// Time allowed to connect and for each operation.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(120);

const SHOW_DELETED: &str = "1.2.840.113556.1.4.417";
const SHOW_RECYCLED: &str = "1.2.840.113556.1.4.2064";
const SD_FLAGS: &str = "1.2.840.113556.1.4.801";
const TREE_DELETE: &str = "1.2.840.113556.1.4.805";
const PAGED_RESULTS: &str = "1.2.840.113556.1.4.319";

/// Open connections of one call, by directory.
#[derive(Default)]
pub(crate) struct Connections(HashMap<String, LdapConn>);

impl Drop for Connections {
    fn drop(&mut self) {
        // each connection owns a runtime, which may not be dropped inside another's context
        let conns = std::mem::take(&mut self.0);
        blocking(move || {
            for (_, mut c) in conns {
                let _ = c.unbind();
            }
        });
    }
}

fn ldap_err(what: &str, e: &LdapError) -> crate::bindings::wit::Error {
    let (code, detail) = match e {
        LdapError::LdapResult { result } => {
            let code = match result.rc {
                32 => ErrorCode::NotFound,
                50 => ErrorCode::Denied,
                // invalid credentials, unavailable, busy, unwilling to perform a bind
                49 | 51 | 52 => ErrorCode::Unavailable,
                // filter errors, bad DN syntax, constraint and schema violations, exists
                2 | 17 | 19 | 20 | 21 | 34 | 64 | 65 | 66 | 67 | 68 | 69 | 87 => {
                    ErrorCode::InvalidInput
                }
                _ => ErrorCode::Failed,
            };
            let text: String = result.text.chars().take(300).collect();
            (code, format!("LDAP result {} ({})", result.rc, text.trim()))
        }
        LdapError::Timeout { .. } => (
            ErrorCode::Unavailable,
            "the directory did not answer in time".into(),
        ),
        LdapError::Io { source } => (ErrorCode::Unavailable, format!("connection: {source}")),
        other => (ErrorCode::Failed, other.to_string()),
    };
    err(code, format!("{what}: {detail}"))
}

fn controls(c: ldap::Controls) -> Vec<RawControl> {
    let raw = |oid: &str, val: Option<Vec<u8>>| RawControl {
        ctype: oid.to_string(),
        crit: true,
        val,
    };
    let mut out = Vec::new();
    if c.contains(ldap::Controls::SHOW_DELETED) {
        out.push(raw(SHOW_DELETED, None));
    }
    if c.contains(ldap::Controls::SHOW_RECYCLED) {
        out.push(raw(SHOW_RECYCLED, None));
    }
    if c.contains(ldap::Controls::SECURITY_DESCRIPTOR) {
        // SEQUENCE { INTEGER 7 }: owner, group, DACL
        out.push(raw(SD_FLAGS, Some(vec![0x30, 0x03, 0x02, 0x01, 0x07])));
    }
    if c.contains(ldap::Controls::TREE_DELETE) {
        out.push(raw(TREE_DELETE, None));
    }
    out
}

/// The paged-results request control: SEQUENCE { INTEGER size, OCTET STRING cookie }.
fn paged_request(size: u32, cookie: &[u8]) -> RawControl {
    let mut body = ber(0x02, &int_bytes(size));
    body.extend(ber(0x04, cookie));
    RawControl {
        ctype: PAGED_RESULTS.into(),
        crit: true,
        val: Some(ber(0x30, &body)),
    }
}

fn int_bytes(n: u32) -> Vec<u8> {
    let mut b: Vec<u8> = n
        .to_be_bytes()
        .into_iter()
        .skip_while(|&x| x == 0)
        .collect();
    if b.first().is_none_or(|&x| x & 0x80 != 0) {
        b.insert(0, 0);
    }
    b
}

fn ber(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let l: Vec<u8> = (len as u64)
            .to_be_bytes()
            .into_iter()
            .skip_while(|&x| x == 0)
            .collect();
        out.push(0x80 | l.len() as u8);
        out.extend(l);
    }
    out.extend_from_slice(content);
    out
}

/// The cookie of a paged-results response control, without trusting its shape.
fn paged_cookie(val: &[u8]) -> Option<Vec<u8>> {
    let (_, tag) = ldap3::asn1::parse_tag(val).ok()?;
    let PL::C(parts) = tag.payload else {
        return None;
    };
    match parts.get(1)?.payload {
        PL::P(ref cookie) => Some(cookie.clone()),
        PL::C(_) => None,
    }
}

/// An entry decoded without trusting its shape (ldap3's own decoder panics on bad data).
fn entry(re: ResultEntry) -> Option<ldap::Entry> {
    let tag: StructureTag = re.0;
    if tag.id != 4 {
        return None;
    }
    let PL::C(mut parts) = tag.payload else {
        return None;
    };
    if parts.len() != 2 {
        return None;
    }
    let attrs = parts.pop()?;
    let PL::P(dn) = parts.pop()?.payload else {
        return None;
    };
    let PL::C(attrs) = attrs.payload else {
        return None;
    };
    let mut out = Vec::with_capacity(attrs.len());
    for a in attrs {
        let PL::C(mut av) = a.payload else {
            return None;
        };
        if av.len() != 2 {
            return None;
        }
        let PL::C(vals) = av.pop()?.payload else {
            return None;
        };
        let PL::P(name) = av.pop()?.payload else {
            return None;
        };
        let mut values = Vec::with_capacity(vals.len());
        for v in vals {
            let PL::P(v) = v.payload else { return None };
            values.push(v);
        }
        out.push(ldap::Attribute {
            name: String::from_utf8(name).ok()?,
            values,
        });
    }
    Some(ldap::Entry {
        dn: String::from_utf8(dn).ok()?,
        attributes: out,
    })
}

fn size(e: &ldap::Entry) -> usize {
    e.dn.len()
        + e.attributes
            .iter()
            .map(|a| a.name.len() + a.values.iter().map(Vec::len).sum::<usize>())
            .sum::<usize>()
}

/// Connect over TLS and bind as the configured account.
///
/// The socket is ours, connected to the configured address; TLS checks the certificate
/// against the address, or with Kerberos against the directory's name (the DC's host
/// name, which its service principal carries). A watchdog shuts the socket down if the
/// handshake and bind have not finished within [`OPERATION_TIMEOUT`]: ldap3 times only
/// the first request of a bind, and a GSSAPI bind makes three.
fn connect(server: &str, access: &DirectoryAccess) -> Res<LdapConn> {
    let what = format!("connecting to directory `{server}`");
    let socket = open_socket(&access.address).map_err(|e| {
        err(
            ErrorCode::Unavailable,
            format!("{what} at {}: {e}", access.address),
        )
    })?;
    let watchdog = watchdog(&socket, OPERATION_TIMEOUT)
        .map_err(|e| err(ErrorCode::Failed, format!("{what}: {e}")))?;
    let settings = LdapConnSettings::new()
        .set_conn_timeout(OPERATION_TIMEOUT)
        .set_starttls(access.starttls)
        .set_std_stream(StdStream::Tcp(socket))
        .set_config(tls_config(server, access.ca_pem.as_deref())?);
    let host = match &access.bind {
        DirectoryBind::Kerberos { host, .. } => host.clone(),
        DirectoryBind::Password { .. } => access.address.clone(),
    };
    let url = format!(
        "{}://{host}",
        if access.starttls { "ldap" } else { "ldaps" },
    );
    let mut conn = LdapConn::with_settings(settings, &url).map_err(|e| ldap_err(&what, &e))?;
    match &access.bind {
        DirectoryBind::Password { account, password } => conn
            .with_timeout(OPERATION_TIMEOUT)
            .simple_bind(account, password)
            .and_then(ldap3::LdapResult::success)
            .map_err(|e| {
                ldap_err(
                    &format!("binding to directory `{server}` as the configured account"),
                    &e,
                )
            })?,
        DirectoryBind::Kerberos { host, principal } => {
            // ldap3 indexes GSSAPI answers without checking their length: a panic there
            // is a failed bind, not a dead job
            let bound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                kerberos_bind(&mut conn, host, principal.as_deref())
            }))
            .unwrap_or_else(|_| {
                Err(LdapError::GssapiOperationError(
                    "the directory's answer to the bind could not be read".into(),
                ))
            });
            bound
                .and_then(ldap3::LdapResult::success)
                .map_err(|e| kerberos_err(server, host, principal.as_deref(), &e))?
        }
    };
    drop(watchdog);
    Ok(conn)
}

/// A TCP connection to `address` (`host:port`), trying each address it resolves to.
fn open_socket(address: &str) -> std::io::Result<std::net::TcpStream> {
    use std::net::ToSocketAddrs as _;
    let mut last = None;
    for a in address.to_socket_addrs()? {
        match std::net::TcpStream::connect_timeout(&a, OPERATION_TIMEOUT) {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("the name resolves to no address")))
}

/// Shuts `socket` down once `limit` has passed, unless the returned sender is dropped
/// first.
fn watchdog(
    socket: &std::net::TcpStream,
    limit: Duration,
) -> std::io::Result<std::sync::mpsc::Sender<()>> {
    let socket = socket.try_clone()?;
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    std::thread::Builder::new()
        .name("ldap-bind-watchdog".into())
        .spawn(move || {
            if rx.recv_timeout(limit) == Err(std::sync::mpsc::RecvTimeoutError::Timeout) {
                let _ = socket.shutdown(std::net::Shutdown::Both);
            }
        })?;
    Ok(tx)
}

/// SASL GSSAPI as this process's default Kerberos identity, or only as `principal`
/// when one is configured (its credentials must be in the cache; no other is used).
fn kerberos_bind(
    conn: &mut LdapConn,
    host: &str,
    principal: Option<&str>,
) -> ldap3::result::Result<ldap3::LdapResult> {
    let Some(principal) = principal else {
        return conn.sasl_gssapi_bind(host);
    };
    use cross_krb5::K5Cred as _;
    let cred =
        cross_krb5::Cred::client_acquire(cross_krb5::InitiateFlags::empty(), Some(principal))
            .map_err(|e| LdapError::GssapiOperationError(format!("{e:#}")))?;
    conn.sasl_gssapi_cred_bind(cred, host)
}

/// A failed Kerberos bind, with what to do: most often there is no ticket, or the
/// directory's name is not the host name in its service principal.
fn kerberos_err(
    server: &str,
    host: &str,
    principal: Option<&str>,
    e: &LdapError,
) -> crate::bindings::wit::Error {
    let who = principal.map_or_else(
        || "this process's account".to_string(),
        |p| format!("`{p}`"),
    );
    let what =
        format!("binding to directory `{server}` with Kerberos as {who} to service ldap/{host}");
    match e {
        LdapError::GssapiOperationError(m) => {
            let detail: String = m.chars().filter(|c| !c.is_control()).take(400).collect();
            err(
                ErrorCode::Unavailable,
                format!(
                    "{what}: {detail}; this process needs a Kerberos ticket of the domain for {who} (on Linux `kinit <account>`, with KRB5CCNAME where the job runs; on Windows the signed-in account, or the service's: LocalSystem binds as the computer account), and the directory's name must be the DC's host name in that realm"
                ),
            )
        }
        LdapError::LdapResult { result } if result.rc == 8 => {
            let mut e = ldap_err(&what, e);
            e.message.push_str(
                "; over TLS Rehydra adds no SASL layer (as Windows DCs require): a Samba DC needs `ldap server require strong auth = allow_sasl_over_tls` in its smb.conf",
            );
            e
        }
        // SEC_E_BAD_BINDINGS: the DC enforces channel binding and found none it accepts
        LdapError::LdapResult { result } if result.rc == 49 && result.text.contains("80090346") => {
            let mut e = ldap_err(&what, e);
            e.message.push_str(
                "; the DC wants the TLS channel binding, which Rehydra sends only for certificates signed with RSA (PKCS #1) or with ECDSA and SHA-2: have the DC's certificate signed that way",
            );
            e
        }
        other => ldap_err(&what, other),
    }
}

/// Our own TLS configuration, always (ring, safe protocol versions, no client auth): the
/// directory's CA file when the admin gave one, else the system's roots.
fn tls_config(server: &str, pem: Option<&[u8]>) -> Res<Arc<rustls::ClientConfig>> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let bad = |m: String| err(ErrorCode::Unavailable, m);
    let mut roots = rustls::RootCertStore::empty();
    let Some(pem) = pem else {
        let found = rustls_native_certs::load_native_certs();
        let (added, _) = roots.add_parsable_certificates(found.certs);
        if added == 0 {
            return Err(bad(format!(
                "no system root certificate can be read to verify directory `{server}`; give it a CA file (--ca-file)"
            )));
        }
        return finish_tls(roots);
    };
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| {
            bad(format!(
                "the CA file of directory `{server}` is not PEM: {e}"
            ))
        })?;
        roots
            .add(cert)
            .map_err(|e| bad(format!("the CA file of directory `{server}`: {e}")))?;
    }
    if roots.is_empty() {
        return Err(bad(format!(
            "the CA file of directory `{server}` holds no certificate"
        )));
    }
    finish_tls(roots)
}

fn finish_tls(roots: rustls::RootCertStore) -> Res<Arc<rustls::ClientConfig>> {
    let bad = |m: String| err(ErrorCode::Unavailable, m);
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| bad(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

/// What checking a directory found: who it is and whom it took the host for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryFound {
    /// The DC's DNS host name (root DSE `dnsHostName`).
    pub host: String,
    /// Its default naming context.
    pub naming_context: String,
    /// The identity the directory bound (RFC 4532 "Who am I?", e.g. `u:CONTOSO\svc`);
    /// where it does not say (Samba), the configured account marked `(configured)`, or
    /// empty with Kerberos and no principal configured.
    pub account: String,
    /// Bound with Kerberos.
    pub kerberos: bool,
}

impl std::fmt::Display for DirectoryFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "bound to {} ({})", self.host, self.naming_context)?;
        if !self.account.is_empty() {
            write!(f, " as {}", self.account)?;
        }
        if self.kerberos {
            write!(f, " with Kerberos")?;
        }
        Ok(())
    }
}

/// Connect to and bind to `server` as configured, and read its root DSE and whom it bound
/// us as, for the admin to see that the configuration works. Nothing is written.
///
/// # Errors
/// Cannot connect, the certificate is not trusted, the bind is refused; in words.
pub fn check_directory(server: &str, access: &DirectoryAccess) -> Result<DirectoryFound, String> {
    let mut conn = blocking(|| connect(server, access)).map_err(|e| e.message)?;
    let found = blocking(|| {
        conn.with_timeout(OPERATION_TIMEOUT).search(
            "",
            Scope::Base,
            "(objectClass=*)",
            vec!["dnsHostName", "defaultNamingContext"],
        )
    })
    .and_then(ldap3::SearchResult::success)
    .map_err(|e| ldap_err("reading the root DSE", &e).message);
    // the answer is the directory's: lossy, and no longer than a name can be
    // the directory's words: lossy, no control characters, no longer than a name can be
    let said: Option<String> = blocking(|| conn.with_timeout(OPERATION_TIMEOUT).extended(WhoAmI))
        .ok()
        .filter(|r| r.1.rc == 0)
        .and_then(|r| r.0.val)
        .map(|v| {
            String::from_utf8_lossy(&v)
                .chars()
                .filter(|c| !c.is_control())
                .take(512)
                .collect()
        })
        .filter(|v: &String| !v.is_empty());
    let (account, kerberos) = match (&access.bind, said) {
        (DirectoryBind::Password { .. }, Some(s)) => (s, false),
        (DirectoryBind::Password { account, .. }, None) => {
            (format!("{account} (configured)"), false)
        }
        (DirectoryBind::Kerberos { principal, .. }, s) => (
            s.or_else(|| principal.as_ref().map(|p| format!("{p} (configured)")))
                .unwrap_or_default(),
            true,
        ),
    };
    // the connection owns a runtime: unbind and drop it outside any async context
    blocking(move || {
        let _ = conn.unbind();
        drop(conn);
    });
    let e = found?
        .0
        .into_iter()
        .find_map(entry)
        .ok_or("the directory sent no root DSE")?;
    let value = |n: &str| {
        e.attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(n))
            .and_then(|a| a.values.first())
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default()
    };
    Ok(DirectoryFound {
        host: value("dnsHostName"),
        naming_context: value("defaultNamingContext"),
        account,
        kerberos,
    })
}

impl State {
    /// Check the grant, then the open connection to `server` (opened and bound on first use).
    fn directory(&mut self, server: &str, what: &str, write: bool) -> Res<&mut LdapConn> {
        self.enter()?;
        let server = server.to_ascii_lowercase();
        let allowed = if self.grants.directory(&server) {
            Ok(())
        } else {
            Err(format!(
                "directory `{server}` is not granted (rehydra plugins grant {} ldap:{server})",
                self.plugin
            ))
        };
        self.check(CapabilityKind::Ldap, &server, allowed)?;
        // writes are audited one by one; reads once, when the connection opens
        let opening = !self.ldap.0.contains_key(&server);
        if write || opening {
            self.audit(CapabilityKind::Ldap, &server, true, what);
        }
        if opening {
            let directories = self.directories.clone();
            let access = blocking(|| directories.directory(&server))
                .map_err(|e| {
                    // where the secret is kept is the admin's business, not the plugin's
                    self.events.log(&self.plugin, LogLevel::Error, &format!("host: ldap {server}: {e}"));
                    err(
                        ErrorCode::Unavailable,
                        format!("directory `{server}` cannot be used: its configured password or CA file cannot be read (the job log says why)"),
                    )
                })?
                .ok_or_else(|| {
                    err(
                        ErrorCode::Unavailable,
                        format!("directory `{server}` is not configured (rehydra plugins directory add {server} --bind <account> --password-file <file>)"),
                    )
                })?;
            let conn = blocking(|| connect(&server, &access))?;
            self.ldap.0.insert(server.clone(), conn);
        }
        Ok(self.ldap.0.get_mut(&server).expect("inserted above"))
    }

    /// Run a write and record it in the job log.
    fn write(
        &mut self,
        server: &str,
        what: String,
        f: impl FnOnce(&mut LdapConn) -> Result<ldap3::LdapResult, LdapError>,
    ) -> Res<()> {
        self.enter()?;
        self.writable(CapabilityKind::Ldap, &server.to_ascii_lowercase(), &what)?;
        let conn = self.directory(server, &what, true)?;
        let out = blocking(|| {
            f(conn.with_timeout(OPERATION_TIMEOUT)).and_then(ldap3::LdapResult::success)
        });
        let outcome = match &out {
            Ok(_) => "done".to_string(),
            Err(e) => format!("failed: {e}"),
        };
        let line = super::tame(
            &format!("host: ldap {server}: {what}: {outcome}"),
            super::LOG_MESSAGE_MAX,
        );
        self.events.log(&self.plugin, LogLevel::Info, &line);
        out.map(|_| ()).map_err(|e| ldap_err(&what, &e))
    }
}

fn values(v: Vec<Vec<u8>>) -> HashSet<Vec<u8>> {
    v.into_iter().collect()
}

impl ldap::Host for State {
    fn search(
        &mut self,
        directory: String,
        query: ldap::Query,
        page_size: u32,
        cookie: Vec<u8>,
    ) -> Res<ldap::Page> {
        if !(1..=PAGE_SIZE_MAX).contains(&page_size) {
            return Err(err(
                ErrorCode::InvalidInput,
                format!("a page holds 1 to {PAGE_SIZE_MAX} entries, not {page_size}"),
            ));
        }
        let what = format!("search {}", query.base);
        let budget = self.budget.clone();
        let conn = self.directory(&directory, &what, false)?;
        let scope = match query.scope {
            ldap::Scope::Base => Scope::Base,
            ldap::Scope::OneLevel => Scope::OneLevel,
            ldap::Scope::Subtree => Scope::Subtree,
        };
        let mut ctrls = controls(query.controls);
        ctrls.push(paged_request(page_size, &cookie));
        let attrs: Vec<&str> = if query.attributes.is_empty() {
            vec!["*"]
        } else {
            query.attributes.iter().map(String::as_str).collect()
        };
        // entries are read one by one as they arrive, so a page is measured before it is
        // held whole, and the time limit and cancellation are checked between entries
        let (page, res) = blocking(|| -> Res<(Vec<ldap::Entry>, ldap3::LdapResult)> {
            let mut stream = conn
                .with_timeout(OPERATION_TIMEOUT)
                .with_controls(ctrls)
                .streaming_search(&query.base, scope, &query.filter, attrs)
                .map_err(|e| ldap_err(&what, &e))?;
            let mut page = Vec::new();
            let mut bytes = 0;
            let refused = loop {
                if let Err(stop) = budget.check() {
                    break stop_err(stop, &budget).into();
                }
                let re = match stream.next() {
                    Ok(Some(re)) => re,
                    Ok(None) => {
                        let res = stream.result().success().map_err(|e| ldap_err(&what, &e))?;
                        return Ok((page, res));
                    }
                    Err(e) => return Err(ldap_err(&what, &e)),
                };
                if re.is_ref() || re.is_intermediate() {
                    continue;
                }
                let Some(e) = entry(re) else {
                    break err(
                        ErrorCode::Failed,
                        format!("{what}: the directory sent a malformed entry"),
                    );
                };
                bytes += size(&e);
                if bytes > PAGE_BYTES_MAX || page.len() >= PAGE_SIZE_MAX as usize {
                    break err(
                        ErrorCode::InvalidInput,
                        format!(
                            "{what}: a page is over {} MiB or {PAGE_SIZE_MAX} entries; ask for smaller pages",
                            PAGE_BYTES_MAX >> 20
                        ),
                    );
                }
                page.push(e);
            };
            // the rest of the answer is not waited for
            let id = stream.last_id();
            drop(stream);
            let _ = conn.abandon(id);
            Err(refused)
        })?;
        let next = res
            .ctrls
            .iter()
            .find(|c| c.1.ctype == PAGED_RESULTS)
            .and_then(|c| c.1.val.as_deref())
            .map(paged_cookie);
        let cookie = match next {
            Some(Some(c)) => c,
            Some(None) => {
                return Err(err(
                    ErrorCode::Failed,
                    format!("{what}: the directory sent a malformed paging control"),
                ));
            }
            // a server that ignores paging sent everything at once
            None => Vec::new(),
        };
        Ok(ldap::Page {
            entries: page,
            cookie,
        })
    }

    fn add(&mut self, directory: String, dn: String, attributes: Vec<ldap::Attribute>) -> Res<()> {
        let attrs: Vec<(Vec<u8>, HashSet<Vec<u8>>)> = attributes
            .into_iter()
            .map(|a| (a.name.into_bytes(), values(a.values)))
            .collect();
        self.write(&directory, format!("add {dn}"), |c| c.add(&dn, attrs))
    }

    fn modify(
        &mut self,
        directory: String,
        dn: String,
        changes: Vec<ldap::Change>,
        controls_: ldap::Controls,
    ) -> Res<()> {
        let names: Vec<String> = changes.iter().map(|c| c.attribute.clone()).collect();
        let mods: Vec<Mod<Vec<u8>>> = changes
            .into_iter()
            .map(|c| {
                let (a, v) = (c.attribute.into_bytes(), values(c.values));
                match c.op {
                    ldap::ChangeOp::Add => Mod::Add(a, v),
                    ldap::ChangeOp::Delete => Mod::Delete(a, v),
                    ldap::ChangeOp::Replace => Mod::Replace(a, v),
                }
            })
            .collect();
        let ctrls = controls(controls_);
        self.write(
            &directory,
            format!("modify {dn} ({})", names.join(", ")),
            |c| c.with_controls(ctrls).modify(&dn, mods),
        )
    }

    fn delete(&mut self, directory: String, dn: String, controls_: ldap::Controls) -> Res<()> {
        let ctrls = controls(controls_);
        self.write(&directory, format!("delete {dn}"), |c| {
            c.with_controls(ctrls).delete(&dn)
        })
    }

    fn rename(
        &mut self,
        directory: String,
        dn: String,
        new_rdn: String,
        new_parent: Option<String>,
    ) -> Res<()> {
        let what = match &new_parent {
            Some(p) => format!("rename {dn} to {new_rdn} under {p}"),
            None => format!("rename {dn} to {new_rdn}"),
        };
        self.write(&directory, what, |c| {
            c.modifydn(&dn, &new_rdn, true, new_parent.as_deref())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paged_control_round_trips() {
        let c = paged_request(500, b"abc");
        let v = c.val.unwrap();
        assert_eq!(paged_cookie(&v), Some(b"abc".to_vec()));
        assert_eq!(
            paged_cookie(&paged_request(1000, b"").val.unwrap()),
            Some(vec![])
        );
        assert_eq!(int_bytes(128), vec![0, 128]);
        assert_eq!(int_bytes(1000), vec![3, 232]);
    }

    #[test]
    fn malformed_paging_controls_are_refused_not_panicked_on() {
        for bad in [
            &b""[..],
            &[0x30],
            &[0x30, 0x05, 0x02],
            &[0x04, 0x01, 0x00],
            &[0x30, 0x03, 0x02, 0x01, 0x05],
        ] {
            assert_eq!(paged_cookie(bad), None, "{bad:?}");
        }
    }
}
