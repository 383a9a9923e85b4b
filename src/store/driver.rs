//! Who drives a run, and whether that driver is still there.
//!
//! A driver is a process on a machine: the journal records its pid, host and user when it
//! creates or takes over a run. On the same machine the pid answers whether it lives (as
//! before). From another machine the pid says nothing, so a driver on a shared journal
//! also beats a heartbeat into its run every [`HEARTBEAT_EVERY`]; one silent for
//! [`STALE_AFTER`] is taken for dead.

use std::time::Duration;

use super::{RunRecord, now_ms};

/// How often a driver on a shared journal says it is alive.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);

/// How long a driver on another machine may be silent before it is taken for dead.
pub const STALE_AFTER: Duration = Duration::from_secs(30);

/// This process as a driver.
#[derive(Clone, Debug, PartialEq)]
pub struct Driver {
    /// The process id.
    pub pid: u32,
    /// The machine's host name.
    pub host: String,
    /// The OS user.
    pub user: String,
}

impl Driver {
    /// This process.
    pub fn me() -> Driver {
        Driver {
            pid: std::process::id(),
            host: this_host(),
            user: this_user(),
        }
    }
}

/// The OS user running this process: `$USER` or `$LOGNAME` (what a login shell sets), else
/// the account of the effective uid (a container or a service has no login shell), else
/// `uid N`.
pub fn this_user() -> String {
    if let Some(name) = ["USER", "LOGNAME"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|n| !n.trim().is_empty())
    {
        return name;
    }
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    account_name(uid).unwrap_or_else(|| format!("uid {uid}"))
}

/// The account name of `uid` in the password database.
fn account_name(uid: libc::uid_t) -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 4096];
    // SAFETY: an all-zero passwd is a valid value for getpwuid_r to overwrite.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call and `buf` is as long as said; the strings
    // it fills point into `buf`, read before `buf` is dropped.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut found) };
    if rc != 0 || found.is_null() || pwd.pw_name.is_null() {
        return None;
    }
    // SAFETY: getpwuid_r succeeded, so pw_name is a NUL-terminated string inside `buf`.
    let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
    Some(name.to_string_lossy().into_owned()).filter(|n| !n.is_empty())
}

/// The host name, as `whoami` names it.
pub fn this_host() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Whether a process with this id exists on this machine and has not ended (a zombie has
/// ended: it only waits for its parent to read its exit status).
pub fn process_alive(pid: u32) -> bool {
    let Ok(id) = i32::try_from(pid) else {
        return false;
    };
    // SAFETY: kill(2) with signal 0 only checks whether the process exists.
    if unsafe { libc::kill(id, 0) } != 0 {
        return false;
    }
    !zombie(pid)
}

/// `/proc/PID/stat` names the process state after the command's closing parenthesis.
fn zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let (_, rest) = stat.rsplit_once(')')?;
            rest.split_whitespace().next().map(|state| state == "Z")
        })
        .unwrap_or(false)
}

impl RunRecord {
    /// Whether the run is unfinished and its driver alive, as far as this machine can tell:
    /// on this host by its pid, elsewhere by its heartbeat.
    pub fn driver_alive(&self) -> bool {
        if self.finished_ms.is_some() || self.exit_code.is_some() {
            return false;
        }
        let Some(pid) = self.pid else {
            return false;
        };
        match &self.host {
            Some(host) if *host != this_host() => self
                .heartbeat_ms
                .is_some_and(|h| now_ms().saturating_sub(h) < STALE_AFTER.as_millis() as i64),
            _ => pid == std::process::id() || process_alive(pid),
        }
    }

    /// Who drives (or drove) the run and from where: `process 4242 of ann@ci-7`.
    pub fn driver(&self) -> String {
        RunRecord::driver_of(self.pid, self.user.clone(), self.host.clone())
    }

    /// A driver as [`RunRecord::driver`] names it.
    pub fn driver_of(pid: Option<u32>, user: Option<String>, host: Option<String>) -> String {
        let pid = pid.map_or_else(|| "no process".into(), |p| format!("process {p}"));
        match (user, host) {
            (Some(u), Some(h)) => format!("{pid} of {u}@{h}"),
            (None, Some(h)) => format!("{pid} on {h}"),
            _ => pid,
        }
    }
}
