//! cairn's repository format: everything that turns bytes into stored objects and back.
//!
//! The crate knows nothing about file systems being backed up, policies or command lines. It
//! owns ids, chunking, crypto, compression, packs, the index (segments in the repository and
//! the RocksDB cache), trees, content lists, snapshots, backends and the repository facade.
//! `docs/format.md` is the normative description of every byte written here.

pub mod backend;
pub mod chunker;
pub mod compress;
pub mod config;
pub mod content;
pub mod crypto;
pub mod encoding;
pub mod error;
pub mod id;
pub mod index;
pub mod key;
pub mod lock;
pub mod pack;
pub mod packer;
pub mod reader;
pub mod repository;
pub mod segment;
pub mod snapshot;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod tree;

pub use error::{Error, Result};
pub use id::{BlobId, IndexId, KeyId, LockId, PackId, RepositoryId, SnapshotId};
pub use repository::{InitOptions, PackListing, Repository, Segments, SnapshotListing};
