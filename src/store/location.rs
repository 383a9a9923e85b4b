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

    /// Whether other machines may share this journal (PostgreSQL).
    pub fn is_shared(&self) -> bool {
        matches!(self, Location::Postgres(_))
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
