//! The operators' door on Windows: a named pipe, local clients only, whose security
//! descriptor lets SYSTEM and Administrators in fully and the operators' group read and
//! write; the pipe's client token names who connected. The service makes the pipe's first
//! instance (`FILE_FLAG_FIRST_PIPE_INSTANCE`), so it fails to start its door, saying so,
//! when someone made a pipe of that name first.

// Win32's pipe and security calls have no safe wrapper that sets a pipe's security
// descriptor: each unsafe block says why it holds.
#![allow(unsafe_code)]

use std::ffi::OsStr;
use std::fs::File;
use std::os::windows::ffi::OsStrExt as _;
use std::os::windows::fs::OpenOptionsExt as _;
use std::os::windows::io::{FromRawHandle as _, OwnedHandle};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use windows_sys::Win32::Foundation::{
    ERROR_BROKEN_PIPE, ERROR_IO_PENDING, ERROR_PIPE_BUSY, ERROR_PIPE_CONNECTED, GetLastError,
    HANDLE, HLOCAL, INVALID_HANDLE_VALUE, LocalFree, WAIT_OBJECT_0,
};
use windows_sys::Win32::Security::Authentication::Identity::{GetUserNameExW, NameSamCompatible};
use windows_sys::Win32::Security::Authorization::{
    ConvertSidToStringSidW, ConvertStringSecurityDescriptorToSecurityDescriptorW, SDDL_REVISION_1,
};
use windows_sys::Win32::Security::{
    LookupAccountNameW, PSECURITY_DESCRIPTOR, RevertToSelf, SECURITY_ATTRIBUTES, SID_NAME_USE,
    SidTypeAlias, SidTypeGroup, SidTypeWellKnownGroup,
};
use windows_sys::Win32::Storage::FileSystem::{
    FILE_FLAG_FIRST_PIPE_INSTANCE, FILE_FLAG_OVERLAPPED, PIPE_ACCESS_DUPLEX, ReadFile, WriteFile,
};
use windows_sys::Win32::System::IO::{CancelIoEx, GetOverlappedResult, OVERLAPPED};
use windows_sys::Win32::System::Pipes::{
    ConnectNamedPipe, CreateNamedPipeW, DisconnectNamedPipe, GetNamedPipeServerProcessId,
    ImpersonateNamedPipeClient, PIPE_READMODE_BYTE, PIPE_REJECT_REMOTE_CLIENTS, PIPE_TYPE_BYTE,
    PIPE_UNLIMITED_INSTANCES, PIPE_WAIT, WaitNamedPipeW,
};
use windows_sys::Win32::System::Threading::{
    CreateEventW, INFINITE, ResetEvent, WaitForSingleObject,
};

use super::{ASKED_BY_OPERATOR, Deadline, Slot, converse};
use crate::error::{ApiError, Code, Result};

/// The pipe unless `REHYDRA_SERVICE_SOCKET` says otherwise.
pub(super) const DEFAULT: &str = r"\\.\pipe\rehydra-operators";
/// The Windows service whose process alone may serve the pipe (`rehydra service install`).
const SERVICE: &str = "Rehydra";
/// `SECURITY_IDENTIFICATION`: the service may learn who connects, never act as them.
const IDENTIFY_ONLY: u32 = 1 << 16;

fn wide(s: &OsStr) -> Vec<u16> {
    s.encode_wide().chain(Some(0)).collect()
}

fn last_error(what: &str) -> ApiError {
    ApiError::new(
        Code::Io,
        format!("{what}: {}", std::io::Error::last_os_error()),
    )
}

/// The open door; its next pipe instance waits for an operator in [`Door::serve`].
#[derive(Debug)]
pub struct Door {
    path: PathBuf,
    sddl: Vec<u16>,
    first: Option<OwnedHandle>,
}

/// The string SID of local or domain group `group`.
fn group_sid(group: &str) -> Result<String> {
    let name = wide(OsStr::new(group));
    let (mut sid, mut sid_len) = (vec![0u8; 256], 256u32);
    let (mut domain, mut domain_len) = (vec![0u16; 256], 256u32);
    let mut kind: SID_NAME_USE = 0;
    // SAFETY: every buffer is as long as its length says; the name ends with a NUL
    let found = unsafe {
        LookupAccountNameW(
            std::ptr::null(),
            name.as_ptr(),
            sid.as_mut_ptr().cast(),
            &mut sid_len,
            domain.as_mut_ptr(),
            &mut domain_len,
            &mut kind,
        )
    };
    if found == 0 {
        let e = std::io::Error::last_os_error();
        // ERROR_NONE_MAPPED: no such account; anything else (a domain controller out of
        // reach) may pass
        if e.raw_os_error() != Some(1332) {
            return Err(ApiError::new(
                Code::Io,
                format!("--operators {group}: looking the group up: {e}"),
            ));
        }
        return Err(ApiError::new(
            Code::InvalidInput,
            format!(
                "--operators {group}: Windows knows no such account ({e}); name a local or domain group, e.g. \"Backup Operators\""
            ),
        ));
    }
    if ![SidTypeGroup, SidTypeAlias, SidTypeWellKnownGroup].contains(&kind) {
        return Err(ApiError::new(
            Code::InvalidInput,
            format!("--operators {group}: that is not a group; name the group operators are in"),
        ));
    }
    let mut text = std::ptr::null_mut();
    // SAFETY: `sid` holds the SID LookupAccountNameW wrote; `text` is freed below
    if unsafe { ConvertSidToStringSidW(sid.as_mut_ptr().cast(), &mut text) } == 0 {
        return Err(last_error("ConvertSidToStringSidW"));
    }
    // SAFETY: a NUL-terminated string Windows allocated
    let s = unsafe {
        let len = (0..).take_while(|&i| *text.add(i) != 0).count();
        let s = String::from_utf16_lossy(std::slice::from_raw_parts(text, len));
        LocalFree(text as HLOCAL);
        s
    };
    Ok(s)
}

impl Door {
    /// Open the door at [`super::endpoint`] for the members of `group`.
    ///
    /// # Errors
    /// No such group; a pipe of that name exists already (another service, or someone
    /// squatting its name).
    pub fn open(group: &str) -> Result<Self> {
        let sid = group_sid(group)?;
        // protected (no inherited entries): SYSTEM and Administrators all, operators read
        // and write but never FILE_CREATE_PIPE_INSTANCE (the bit of FILE_APPEND_DATA, in
        // GENERIC_WRITE), which would let them serve instances of the pipe themselves:
        // 0x12019b is FILE_GENERIC_READ | FILE_GENERIC_WRITE without it
        let sddl = wide(OsStr::new(&format!(
            "D:P(A;;GA;;;SY)(A;;GA;;;BA)(A;;0x12019b;;;{sid})"
        )));
        let path = super::endpoint();
        let mut door = Self {
            path,
            sddl,
            first: None,
        };
        door.first = Some(door.instance(true)?);
        Ok(door)
    }

    /// Where it is.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn instance(&self, first: bool) -> Result<OwnedHandle> {
        let mut sd: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
        // SAFETY: a NUL-terminated SDDL string; `sd` is freed below
        if unsafe {
            ConvertStringSecurityDescriptorToSecurityDescriptorW(
                self.sddl.as_ptr(),
                SDDL_REVISION_1,
                &mut sd,
                std::ptr::null_mut(),
            )
        } == 0
        {
            return Err(last_error("the pipe's security descriptor"));
        }
        let sa = SECURITY_ATTRIBUTES {
            nLength: u32::try_from(std::mem::size_of::<SECURITY_ATTRIBUTES>()).unwrap_or(0),
            lpSecurityDescriptor: sd,
            bInheritHandle: 0,
        };
        let name = wide(self.path.as_os_str());
        // overlapped: every read and write of a connection waits only until its deadline
        let flags = PIPE_ACCESS_DUPLEX
            | FILE_FLAG_OVERLAPPED
            | if first {
                FILE_FLAG_FIRST_PIPE_INSTANCE
            } else {
                0
            };
        // SAFETY: a NUL-terminated name and a security descriptor alive for the call
        let h = unsafe {
            let h = CreateNamedPipeW(
                name.as_ptr(),
                flags,
                PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS,
                PIPE_UNLIMITED_INSTANCES,
                65536,
                65536,
                0,
                &sa,
            );
            LocalFree(sd as HLOCAL);
            h
        };
        if h == INVALID_HANDLE_VALUE {
            let e = std::io::Error::last_os_error();
            return Err(ApiError::new(
                if first { Code::Locked } else { Code::Io },
                format!(
                    "{}: {e}{}",
                    self.path.display(),
                    if first {
                        " (another Rehydra service has this pipe, or a program took its name first: stop it, then start the service)"
                    } else {
                        ""
                    }
                ),
            ));
        }
        // SAFETY: a pipe handle just made, owned from now on
        Ok(unsafe { OwnedHandle::from_raw_handle(h) })
    }

    /// Answer each connection with `handle` (given the asker's name) on a thread of its
    /// own, up to eight at once (past that one is disconnected unread), for as long as
    /// the process runs; a connection's reads and writes have 10 s in all, so clients
    /// that connect and say nothing cannot hold the eight. The next instance of the pipe
    /// is made before a connected one is handed over, so the service always holds one
    /// and nobody can make the name theirs.
    pub fn serve<F>(&mut self, handle: F)
    where
        F: Fn(&super::Ask, &str) -> Result<serde_json::Value> + Send + Sync + 'static,
    {
        let Some(first) = self.first.take() else {
            return;
        };
        let door = Self {
            path: self.path.clone(),
            sddl: self.sddl.clone(),
            first: None,
        };
        let handle = Arc::new(handle);
        let busy = Arc::new(AtomicUsize::new(0));
        std::thread::spawn(move || {
            let mut pipe = first;
            let event = match Event::new() {
                Ok(e) => e,
                Err(e) => {
                    tracing::error!("the operators' pipe: {}", e.message);
                    return;
                }
            };
            loop {
                let raw = std::os::windows::io::AsRawHandle::as_raw_handle(&pipe);
                if !event.connect(raw) {
                    // (the same failure again and again must not spin the thread)
                    tracing::warn!(
                        "the operators' pipe: waiting for a client failed: {}",
                        std::io::Error::last_os_error()
                    );
                    std::thread::sleep(std::time::Duration::from_millis(100));
                    // SAFETY: as above; the instance is kept for the next client
                    unsafe { DisconnectNamedPipe(raw) };
                    continue;
                }
                let next = loop {
                    match door.instance(false) {
                        Ok(p) => break p,
                        Err(e) => {
                            tracing::error!("the operators' pipe: {}", e.message);
                            std::thread::sleep(std::time::Duration::from_secs(5));
                        }
                    }
                };
                let connected = std::mem::replace(&mut pipe, next);
                let Some(slot) = Slot::take(&busy) else {
                    // closed unread: nothing of it may hold this thread
                    continue;
                };
                let handle = Arc::clone(&handle);
                std::thread::spawn(move || {
                    let _slot = slot;
                    hang_up(File::from(connected), &*handle);
                });
            }
        });
    }
}

/// Answer one connection, wait for the client to read it (it closes its end), disconnect;
/// all within its [`Deadline`]s.
fn hang_up(pipe: File, handle: &dyn Fn(&super::Ask, &str) -> Result<serde_json::Value>) {
    let raw = std::os::windows::io::AsRawHandle::as_raw_handle(&pipe);
    let event = match Event::new() {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!("an operator's connection: {}", e.message);
            return;
        }
    };
    let timed = Timed {
        pipe: raw,
        event: &event,
        deadline: Deadline::asking(),
    };
    match converse(timed, &|_| asker(raw), handle) {
        Err(e) => tracing::warn!("an operator's connection: {e}"),
        Ok(()) => {
            // answered: the client closing its end, within another 10 s (not
            // FlushFileBuffers, which waits as long as the client does not read)
            let mut rest = Timed {
                pipe: raw,
                event: &event,
                deadline: Deadline::answered(),
            };
            let mut sink = [0u8; 256];
            while matches!(std::io::Read::read(&mut rest, &mut sink), Ok(n) if n > 0) {}
        }
    }
    // SAFETY: the pipe handle `pipe` owns
    unsafe { DisconnectNamedPipe(raw) };
}

/// A manual-reset event for one thread's overlapped calls, one at a time.
struct Event(OwnedHandle);

impl Event {
    fn new() -> Result<Self> {
        // SAFETY: no name, no security attributes: a private event
        let h = unsafe { CreateEventW(std::ptr::null(), 1, 0, std::ptr::null()) };
        if h.is_null() {
            return Err(last_error("an event for the operators' pipe"));
        }
        // SAFETY: a handle just made, owned from now on
        Ok(Self(unsafe { OwnedHandle::from_raw_handle(h) }))
    }

    fn raw(&self) -> HANDLE {
        std::os::windows::io::AsRawHandle::as_raw_handle(&self.0)
    }

    /// Wait for a client on pipe instance `pipe`, as long as it takes.
    fn connect(&self, pipe: HANDLE) -> bool {
        // SAFETY: `ov` outlives the call and its completion, which is waited for here
        unsafe {
            let mut cell: OVERLAPPED = std::mem::zeroed();
            let ov: *mut OVERLAPPED = &raw mut cell;
            (*ov).hEvent = self.raw();
            ResetEvent((*ov).hEvent);
            if ConnectNamedPipe(pipe, ov) != 0 {
                return true;
            }
            match GetLastError() {
                ERROR_PIPE_CONNECTED => true,
                ERROR_IO_PENDING => {
                    let mut n = 0u32;
                    GetOverlappedResult(pipe, ov, &mut n, 1) != 0
                }
                _ => false,
            }
        }
    }
}

/// A connection's overlapped reads and writes, each given what is left of its
/// [`Deadline`]: one not done by then is cancelled and fails as timed out.
struct Timed<'a> {
    pipe: HANDLE,
    event: &'a Event,
    deadline: Deadline,
}

impl Timed<'_> {
    /// Start one overlapped call with `start` and wait for it `left` at most.
    fn io(
        &self,
        left: std::time::Duration,
        start: impl FnOnce(*mut OVERLAPPED) -> i32,
    ) -> std::io::Result<usize> {
        let millis = u32::try_from(left.as_millis()).unwrap_or(INFINITE - 1);
        // SAFETY: `ov` lives until the call has completed: waited for below, and after a
        // cancel too
        unsafe {
            // (only through this pointer while the system may write to it)
            let mut cell: OVERLAPPED = std::mem::zeroed();
            let ov: *mut OVERLAPPED = &raw mut cell;
            (*ov).hEvent = self.event.raw();
            ResetEvent((*ov).hEvent);
            if start(ov) == 0 {
                let e = GetLastError();
                if e != ERROR_IO_PENDING {
                    return Err(std::io::Error::from_raw_os_error(e as i32));
                }
                if WaitForSingleObject(self.event.raw(), millis) != WAIT_OBJECT_0 {
                    CancelIoEx(self.pipe, ov);
                    let mut n = 0u32;
                    GetOverlappedResult(self.pipe, ov, &mut n, 1);
                    return Err(std::io::ErrorKind::TimedOut.into());
                }
            }
            let mut n = 0u32;
            if GetOverlappedResult(self.pipe, ov, &mut n, 0) == 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(n as usize)
        }
    }
}

impl std::io::Read for Timed<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let len = u32::try_from(buf.len()).unwrap_or(u32::MAX);
        let ptr = buf.as_mut_ptr();
        let read = self.io(self.deadline.read()?, |ov| {
            // SAFETY: `buf` outlives the call, which `io` waits for
            unsafe { ReadFile(self.pipe, ptr, len, std::ptr::null_mut(), ov) }
        });
        match read {
            // the client closed its end: the end of what it says
            Err(e) if e.raw_os_error() == Some(ERROR_BROKEN_PIPE as i32) => Ok(0),
            r => r,
        }
    }
}

impl std::io::Write for Timed<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let left = self.deadline.write()?;
        let len = u32::try_from(buf.len()).unwrap_or(u32::MAX);
        let ptr = buf.as_ptr();
        self.io(left, |ov| {
            // SAFETY: `buf` outlives the call, which `io` waits for
            unsafe { WriteFile(self.pipe, ptr, len, std::ptr::null_mut(), ov) }
        })
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Who connected, as the pipe's client token says: `operator DOMAIN\name on HOST`;
/// `None` when it does not say (an anonymous client, a name too long).
fn asker(pipe: std::os::windows::io::RawHandle) -> Option<String> {
    let host = crate::service::requests::this_host();
    let mut name = vec![0u16; 1024];
    let mut len = 1024u32;
    // SAFETY: identifies as the client for the one call, then reverts; the buffer is
    // as long as `len` says
    let got = unsafe {
        if ImpersonateNamedPipeClient(pipe) == 0 {
            false
        } else {
            let got = GetUserNameExW(NameSamCompatible, name.as_mut_ptr(), &mut len);
            if RevertToSelf() == 0 {
                // this thread would go on as the client: never
                std::process::abort();
            }
            got
        }
    };
    // (`len` is without the NUL when it succeeds)
    if !got || len == 0 {
        return None;
    }
    let n = String::from_utf16_lossy(&name[..(len as usize).min(name.len())]);
    Some(format!("{ASKED_BY_OPERATOR}{n} on {host}"))
}

/// Connect to the door at `path` (waiting up to 5 s while every instance is busy), as a
/// client the service may identify but never act as; says why not with the fix.
pub(super) fn connect(path: &Path) -> Result<File> {
    let name = wide(path.as_os_str());
    for _ in 0..2 {
        match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .security_qos_flags(IDENTIFY_ONLY)
            .open(path)
        {
            Ok(f) => return served_by_the_service(path, f),
            Err(e) if e.raw_os_error() == Some(ERROR_PIPE_BUSY as i32) => {
                // SAFETY: a NUL-terminated pipe name
                unsafe { WaitNamedPipeW(name.as_ptr(), 5000) };
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ApiError::new(
                    Code::InvalidInput,
                    format!(
                        "no Rehydra service answers operators at {}: it is not running, or was installed without --operators GROUP",
                        path.display()
                    ),
                ));
            }
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                return Err(ApiError::new(
                    Code::InvalidInput,
                    format!(
                        "you may not use {}: only the group the service was installed with (--operators) operates it; ask an administrator to add you (then sign in again)",
                        path.display()
                    ),
                ));
            }
            Err(e) => return Err(ApiError::new(Code::Io, format!("{}: {e}", path.display()))),
        }
    }
    Err(ApiError::new(
        Code::Locked,
        format!(
            "{}: the service answers other operators now: try again in a moment",
            path.display()
        ),
    ))
}

/// The pipe `f` is served by the Rehydra Windows service's process, as the service
/// control manager names it (which any user may ask): not by a program that took the
/// pipe's name while the service was down.
fn served_by_the_service(path: &Path, f: File) -> Result<File> {
    use windows_service::service::ServiceAccess;
    use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};
    let mut server = 0u32;
    let raw = std::os::windows::io::AsRawHandle::as_raw_handle(&f);
    // SAFETY: a pipe handle `f` owns, and a u32 to write to
    if unsafe { GetNamedPipeServerProcessId(raw, &mut server) } == 0 {
        return Err(last_error(&format!(
            "{}: its server's process",
            path.display()
        )));
    }
    let service = ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT)
        .and_then(|m| m.open_service(SERVICE, ServiceAccess::QUERY_STATUS))
        .and_then(|s| s.query_status())
        .ok()
        .and_then(|st| st.process_id);
    if service != Some(server) {
        return Err(ApiError::new(
            Code::InvalidInput,
            format!(
                "{} is served by process {server}, not by the Windows service {SERVICE}{}: it is not the machine's Rehydra service; tell an administrator",
                path.display(),
                service.map_or_else(
                    || " (which is not running)".into(),
                    |p| format!(" (process {p})")
                )
            ),
        ));
    }
    Ok(f)
}
