//! The inode table of a mount: what each inode number stands for, and the keys that make a
//! number stable (the same path, or the same hardlinked file of a snapshot, always gets the
//! same number). Inodes are never freed: the table grows with what has been browsed.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use cairn_format::SnapshotId;
use cairn_format::tree::Node;

pub use crate::attr::Ino;
use crate::attr::{FileKind, node_kind};
use crate::catalog::Listing;

/// The mount's root directory.
pub const ROOT: Ino = 1;

/// What an inode stands for.
pub(crate) enum Body {
    /// The whole-repository root.
    Root,
    Listing(Listing),
    /// The `latest` symlink of a listing; its target follows the catalog.
    Latest(Listing),
    /// A node of a snapshot. `view` is the inode of the snapshot root it was reached from:
    /// hardlinks are shared within one view.
    Node {
        view: Ino,
        node: Box<Node>,
        children: OnceLock<Arc<Children>>,
        blocks: OnceLock<u64>,
    },
}

pub(crate) struct Inode {
    pub parent: Ino,
    pub body: Body,
}

/// A snapshot directory's entries, sorted by name.
pub(crate) struct Children {
    pub names: Vec<Vec<u8>>,
    pub inos: Vec<Ino>,
}

/// What an inode number is allocated for: asking again gives the same number.
#[derive(Hash, PartialEq, Eq)]
pub(crate) enum Key {
    Name(Ino, Vec<u8>),
    Snapshot(Ino, SnapshotId),
    Hardlink { view: Ino, device: u64, inode: u64 },
}

#[derive(Default)]
pub(crate) struct Table {
    pub inodes: Vec<Arc<Inode>>,
    pub keys: HashMap<Key, Ino>,
}

impl Table {
    pub fn get(&self, ino: Ino) -> Option<Arc<Inode>> {
        let index = usize::try_from(ino.checked_sub(1)?).ok()?;
        self.inodes.get(index).cloned()
    }

    /// The inode for `key`, made by `make(new ino)` the first time.
    pub fn intern(&mut self, key: Key, make: impl FnOnce(Ino) -> Inode) -> Ino {
        if let Some(&ino) = self.keys.get(&key) {
            return ino;
        }
        let ino = self.inodes.len() as Ino + 1;
        self.inodes.push(Arc::new(make(ino)));
        self.keys.insert(key, ino);
        ino
    }
}

/// `view` is the inode of the snapshot root; a root passes its own number.
pub(crate) fn node_body(view: Ino, node: Node) -> Body {
    Body::Node { view, node: Box::new(node), children: OnceLock::new(), blocks: OnceLock::new() }
}

pub(crate) fn kind_of(body: &Body) -> FileKind {
    match body {
        Body::Root | Body::Listing(_) => FileKind::Directory,
        Body::Latest(_) => FileKind::Symlink,
        Body::Node { node, .. } => node_kind(&node.kind),
    }
}
