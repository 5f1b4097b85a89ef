//! The one error type of the format crate. Each variant says what failed and names the object,
//! so the CLI can print an actionable message and pick an exit code without string matching.

use std::path::PathBuf;

/// Everything that can go wrong while reading or writing a repository.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("no repository at {location}")]
    RepositoryNotFound { location: String },
    #[error("a repository already exists at {location}")]
    RepositoryExists { location: String },
    #[error("wrong password: no key file in {location} opens with it")]
    WrongPassword { location: String },
    #[error("repository {location} has no key files")]
    NoKeys { location: String },
    #[error(
        "no key file of repository {location} can be read ({reasons}); restore keys/ from a copy \
         of the repository"
    )]
    NoReadableKey { location: String, reasons: String },
    #[error("{what} {name} is corrupt: {reason}")]
    Corrupt { what: &'static str, name: String, reason: String },
    #[error(
        "blob {id} is not in the index (`cairn check` tells why; `cairn repair index` rebuilds \
         the index from the packs that exist)"
    )]
    BlobNotFound { id: String },
    #[error(
        "index segment {id} is unreadable ({reason}); `cairn repair index` rebuilds the index \
         from the packs"
    )]
    SegmentUnreadable { id: String, reason: String },
    #[error("{kind} id {text:?} is not 64 hex digits")]
    InvalidId { kind: &'static str, text: String },
    #[error("no snapshot matches {reference:?}")]
    SnapshotNotFound { reference: String },
    #[error("snapshot prefix {reference:?} is ambiguous: {count} snapshots match")]
    AmbiguousSnapshot { reference: String, count: usize },
    #[error("object {name} does not exist in the repository")]
    ObjectNotFound { name: String },
    #[error("repository backend: {op} {name}")]
    Backend {
        op: &'static str,
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("local index at {path}: {reason}")]
    Index { path: PathBuf, reason: String },
    #[error(
        "the local index at {path} is damaged ({reason}); it is only a cache of the repository \
         and is rebuilt at the next run: run the command again (or delete {path})"
    )]
    IndexDamaged { path: PathBuf, reason: String },
    #[error("unsupported {what} version {version} (this cairn reads up to {supported})")]
    UnsupportedVersion { what: &'static str, version: u32, supported: u32 },
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
    #[error("key file {id}: {reason}")]
    Key { id: String, reason: String },
}

/// Result alias for the format crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Shorthand for a corruption error.
    pub fn corrupt(what: &'static str, name: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Corrupt { what, name: name.into(), reason: reason.into() }
    }

    /// Whether the object itself is damaged (it fails authentication or decoding), as opposed
    /// to unreachable storage or a newer format: only such objects may be removed as garbage.
    pub fn is_damage(&self) -> bool {
        matches!(self, Error::Corrupt { .. })
    }

    /// Whether an object that exists failed to open for what is in it (damaged, or from a
    /// newer cairn) rather than for the storage: listings set such objects aside.
    pub fn is_unreadable_object(&self) -> bool {
        matches!(self, Error::Corrupt { .. } | Error::UnsupportedVersion { .. })
    }

    /// Shorthand for a backend I/O error.
    pub fn backend(op: &'static str, name: impl Into<String>, source: std::io::Error) -> Self {
        Error::Backend { op, name: name.into(), source }
    }
}
