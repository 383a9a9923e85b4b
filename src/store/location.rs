//! Where the journal lives: a SQLite file (the embedded default) or a PostgreSQL database
//! named by a `postgres://` URL, shared by every machine that reaches it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::StoreError;
use super::postgres::Target;

/// A journal's place.
#[derive(Clone, Debug)]
pub enum Location {
    /// A SQLite file on this machine.
    Sqlite(PathBuf),
    /// A PostgreSQL database.
    Postgres(Arc<Target>),
}

impl Location {
    /// `--journal`/`GLIDEPATH_JOURNAL`: a `postgres://` or `postgresql://` URL, else a file.
    pub fn parse(arg: &Path) -> Result<Location, StoreError> {
        match arg.to_str() {
            Some(s) if s.starts_with("postgres://") || s.starts_with("postgresql://") => {
                Ok(Location::Postgres(Arc::new(Target::parse(s)?)))
            }
            _ => Ok(Location::Sqlite(arg.to_owned())),
        }
    }

    /// How the journal is named to a person: the file, or the URL without its password.
    pub fn display(&self) -> String {
        match self {
            Location::Sqlite(p) => p.display().to_string(),
            Location::Postgres(t) => t.shown().to_owned(),
        }
    }

    /// A file kept beside the journal (sandbox kubeconfigs, the demo's files): next to the
    /// SQLite file, or in `$GLIDEPATH_HOME` (the user's data directory) for PostgreSQL.
    pub fn with_file_name(&self, name: impl AsRef<std::ffi::OsStr>) -> PathBuf {
        match self {
            Location::Sqlite(p) => p.with_file_name(name),
            Location::Postgres(_) => super::default_path().with_file_name(name),
        }
    }

    /// A file beside the journal that belongs to this process, `PREFIX-PID.EXT` (two
    /// processes never share one). The files of processes that have ended without removing
    /// theirs (killed, say) go first: a demo's holds a ServiceAccount token.
    pub fn process_file(&self, prefix: &str, ext: &str) -> PathBuf {
        let own = std::process::id();
        let path = self.with_file_name(format!("{prefix}-{own}.{ext}"));
        if let Some(dir) = path.parent() {
            remove_orphans(dir, prefix, ext, own);
        }
        path
    }

    /// Whether other machines may share this journal (PostgreSQL).
    pub fn is_shared(&self) -> bool {
        matches!(self, Location::Postgres(_))
    }
}

/// Removes each `PREFIX-PID.EXT` in `dir` whose process (on this machine) has ended.
fn remove_orphans(dir: &Path, prefix: &str, ext: &str, own: u32) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let pid = name
            .to_str()
            .and_then(|n| n.strip_prefix(prefix)?.strip_prefix('-'))
            .and_then(|n| n.strip_suffix(ext)?.strip_suffix('.'))
            .filter(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|pid| pid.parse::<u32>().ok());
        if let Some(pid) = pid
            && pid != own
            && !super::driver::process_alive(pid)
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// What names a journal: a file path (SQLite) or a [`Location`].
pub trait AsLocation {
    /// The journal's place.
    fn to_location(&self) -> Location;
}

impl AsLocation for Path {
    fn to_location(&self) -> Location {
        Location::Sqlite(self.to_owned())
    }
}

impl AsLocation for PathBuf {
    fn to_location(&self) -> Location {
        Location::Sqlite(self.clone())
    }
}

impl AsLocation for Location {
    fn to_location(&self) -> Location {
        self.clone()
    }
}

impl From<PathBuf> for Location {
    fn from(p: PathBuf) -> Location {
        Location::Sqlite(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_file_names_this_process_and_removes_those_of_ended_processes() {
        let dir = tempfile::tempdir().unwrap();
        let at = Location::Sqlite(dir.path().join("journal.db"));
        // A child that has ended (and been waited for) left its file behind.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let ended = child.id();
        child.wait().unwrap();
        let keep = [
            "demo-1.kubeconfig".to_owned(), // pid 1 runs
            "demo-x1.kubeconfig".to_owned(),
            "demo-.kubeconfig".to_owned(),
            format!("demo-{ended}.yaml"),
            format!("sandbox-run-{ended}.kubeconfig"),
            "other.kubeconfig".to_owned(),
        ];
        for name in keep.iter().chain([&format!("demo-{ended}.kubeconfig")]) {
            std::fs::write(dir.path().join(name), "x").unwrap();
        }
        let own = at.process_file("demo", "kubeconfig");
        assert_eq!(
            own,
            dir.path()
                .join(format!("demo-{}.kubeconfig", std::process::id()))
        );
        assert!(!dir.path().join(format!("demo-{ended}.kubeconfig")).exists());
        for name in &keep {
            assert!(dir.path().join(name).exists(), "{name} was removed");
        }
    }
}
