//! Reading files people hand to glidepath, with limits no input can get past.
//!
//! Every file glidepath reads (pipelines, SLO files, themes, config, contracts, request lists,
//! manifests, policies, JSON state) is read here: only regular files (a device such as
//! `/dev/zero`, a FIFO or a socket could stream forever or block), at most [`MAX_FILE_BYTES`],
//! as UTF-8 with a leading byte-order mark dropped. The YAML reader (`crate::yaml`) applies
//! the rest of [`Limits`] while it parses.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

/// The largest file glidepath reads: 8 MiB.
pub const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;

/// What a YAML or JSON document may cost to read, whatever it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Lists and mappings inside each other, counted from the document's root.
    pub depth: usize,
    /// Nodes (scalars, lists, mappings) in one file, counting the copies aliases make.
    pub nodes: usize,
    /// Alias uses (`*name`) in one file.
    pub aliases: usize,
    /// Nodes that alias uses may copy in total.
    pub alias_nodes: usize,
    /// Bytes of scalar text in one file, counting the copies aliases make.
    pub text_bytes: usize,
    /// How long parsing one file may take.
    pub time: Duration,
}

impl Limits {
    /// The limits every file is read with (README, "Input limits").
    pub const DEFAULT: Limits = Limits {
        depth: 128,
        nodes: 1_000_000,
        aliases: 10_000,
        alias_nodes: 100_000,
        text_bytes: 32 * 1024 * 1024,
        time: Duration::from_secs(5),
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// Why a file could not be read. Its text says what was wrong and what to do, but not
/// which file: the caller names it.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The operating system refused (missing file, no permission...).
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A device, FIFO, socket or directory where a file was expected.
    #[error(
        "it is {kind}, not a regular file; glidepath reads input only from regular files, so save the content to a file and name that"
    )]
    NotAFile {
        /// What it is instead.
        kind: &'static str,
    },
    /// Larger than [`MAX_FILE_BYTES`].
    #[error(
        "it is larger than the {} MiB limit on input files; split it into smaller files",
        MAX_FILE_BYTES / (1024 * 1024)
    )]
    TooLarge,
    /// Not UTF-8 text.
    #[error("it is not UTF-8 text (invalid byte at offset {offset}); save it as UTF-8")]
    NotText {
        /// Where the first invalid byte is.
        offset: usize,
    },
}

impl From<ReadError> for std::io::Error {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Io(io) => io,
            other => std::io::Error::new(std::io::ErrorKind::InvalidData, other),
        }
    }
}

/// Reads a whole file as text, within the limits above; a leading UTF-8 BOM is dropped.
pub fn read_text(path: &Path) -> Result<String, ReadError> {
    read_text_limited(path, MAX_FILE_BYTES)
}

/// [`read_text`] with another size limit (tests use a small one).
pub fn read_text_limited(path: &Path, max_bytes: u64) -> Result<String, ReadError> {
    // Checked before opening: opening a FIFO blocks until someone writes to it.
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(ReadError::NotAFile {
            kind: file_kind(&meta.file_type()),
        });
    }
    if meta.len() > max_bytes {
        return Err(ReadError::TooLarge);
    }
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    // `take` holds even if the file grows between the check above and this read.
    file.take(max_bytes + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max_bytes {
        return Err(ReadError::TooLarge);
    }
    let text = String::from_utf8(bytes).map_err(|e| ReadError::NotText {
        offset: e.utf8_error().valid_up_to(),
    })?;
    Ok(match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_owned(),
        None => text,
    })
}

/// Drops a leading UTF-8 byte-order mark, which editors on Windows write.
pub fn strip_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

/// A size as the limits are written: `8 MiB`, or bytes when it is not a whole MiB.
pub fn show_size(bytes: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if bytes >= MIB && bytes % MIB == 0 {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{bytes} bytes")
    }
}

fn file_kind(t: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_dir() {
        "a directory"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_are_refused_by_type() {
        let err = read_text(Path::new("/dev/zero")).unwrap_err();
        assert!(matches!(
            err,
            ReadError::NotAFile {
                kind: "a character device"
            }
        ));
        assert!(err.to_string().contains("not a regular file"), "{err}");
    }

    #[test]
    fn directories_are_refused_by_type() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_text(dir.path()).unwrap_err();
        assert!(matches!(
            err,
            ReadError::NotAFile {
                kind: "a directory"
            }
        ));
    }

    #[test]
    fn files_over_the_limit_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.yaml");
        std::fs::write(&p, "a: 1\n".repeat(100)).unwrap();
        assert!(matches!(
            read_text_limited(&p, 499),
            Err(ReadError::TooLarge)
        ));
        assert_eq!(read_text_limited(&p, 500).unwrap().len(), 500);
        assert!(
            ReadError::TooLarge.to_string().contains("8 MiB limit"),
            "{}",
            ReadError::TooLarge
        );
    }

    #[test]
    fn bom_is_dropped_and_invalid_utf8_located() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bom.yaml");
        std::fs::write(&p, b"\xef\xbb\xbfname: x\n").unwrap();
        assert_eq!(read_text(&p).unwrap(), "name: x\n");
        std::fs::write(&p, b"ab\xffc").unwrap();
        assert!(matches!(
            read_text(&p),
            Err(ReadError::NotText { offset: 2 })
        ));
    }
}
