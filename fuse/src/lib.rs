//! cairn-fuse: the read-only FUSE view of a repository (`cairn mount`).
//!
//! `fs` is the filesystem core (inodes, listings, attributes, reads) with no fuser types, so
//! it is tested without a kernel; `adapter` is the only `impl fuser::Filesystem` and owns the
//! mount session. `catalog` names snapshots in the whole-repository layout, `file` reads open
//! files with sequential prefetch, `cache` holds decrypted blobs, `inode` is the inode table and
//! `attr` turns snapshot nodes into `stat` answers. docs/mount.md states the
//! semantics.

pub mod adapter;
mod attr;
pub mod cache;
pub mod catalog;
pub mod error;
pub mod file;
pub mod fs;
mod inode;

pub use adapter::{Mount, MountOptions, Unmounter};
pub use catalog::{LiveCatalog, SnapshotFilter};
pub use error::FsError;
pub use fs::{CairnFs, FsOptions, MountRoot, snapshot_root};
