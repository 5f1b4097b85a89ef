//! Fixtures for tests of this crate and of the crates built on it (only with the `testing`
//! feature): a repository in memory with a cheap key derivation, and tree nodes with neutral
//! metadata for trees written straight through the library.

use std::path::Path;
use std::sync::Arc;

use crate::backend::MemoryBackend;
use crate::crypto::KdfParams;
use crate::tree::{Node, NodeKind};
use crate::{InitOptions, Repository};

/// Default repository settings with a key derivation cheap enough for tests (64 KiB, one
/// pass).
pub fn cheap_options() -> InitOptions {
    InitOptions {
        kdf: KdfParams { memory_kib: 64, iterations: 1, parallelism: 1 },
        ..InitOptions::default()
    }
}

/// A new repository in memory (password `pw`, [`cheap_options`]), its cache in `cache`.
pub fn memory_repository(cache: &Path) -> Arc<Repository> {
    let backend = Arc::new(MemoryBackend::new());
    let repo = Repository::init(backend, b"pw", &cheap_options(), cache);
    Arc::new(repo.expect("a repository in memory"))
}

/// A node named `name` with root's ownership, mode 0644, times and inode zero, one link.
pub fn node(name: &[u8], kind: NodeKind, size: u64) -> Node {
    Node {
        name: name.to_vec(),
        kind,
        mode: 0o644,
        uid: 0,
        gid: 0,
        user: String::new(),
        group: String::new(),
        mtime_ns: 0,
        atime_ns: 0,
        ctime_ns: 0,
        inode: 0,
        device: 0,
        nlink: 1,
        size,
        xattrs: Vec::new(),
    }
}
