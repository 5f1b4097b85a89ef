//! Why a filesystem request failed, and the one place each reason becomes an errno.

use std::fmt;

/// A failed request. Repository failures are logged where they happen (with the file and the
/// blob), so the kernel only needs the errno.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FsError {
    /// No entry of that name, or an inode or handle the kernel no longer should use.
    NotFound,
    /// A directory operation on something else.
    NotDirectory,
    /// A file operation on something else.
    NotFile,
    /// Not a symlink.
    NotSymlink,
    /// The node has no extended attribute of that name.
    NoAttribute,
    /// The caller's buffer is smaller than the value.
    BufferTooSmall,
    /// The mount is read-only.
    ReadOnly,
    /// The repository could not deliver or verify data (damaged, missing, unreadable).
    Repository(String),
}

impl FsError {
    /// The errno the kernel passes on to the program that made the call.
    pub fn errno(&self) -> i32 {
        match self {
            FsError::NotFound => libc::ENOENT,
            FsError::NotDirectory => libc::ENOTDIR,
            FsError::NotFile => libc::EISDIR,
            FsError::NotSymlink => libc::EINVAL,
            FsError::NoAttribute => libc::ENODATA,
            FsError::BufferTooSmall => libc::ERANGE,
            FsError::ReadOnly => libc::EROFS,
            FsError::Repository(_) => libc::EIO,
        }
    }
}

impl fmt::Display for FsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FsError::Repository(detail) => write!(f, "repository error: {detail}"),
            other => write!(f, "{}", std::io::Error::from_raw_os_error(other.errno())),
        }
    }
}

impl std::error::Error for FsError {}

pub type FsResult<T> = Result<T, FsError>;
