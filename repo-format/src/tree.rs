//! Trees: one tree blob per directory, nodes sorted by name bytes. Names are raw bytes because
//! Unix file names need not be UTF-8. Decoding rejects names a restore could be tricked by
//! (empty, `.`, `..`, containing `/` or NUL) and unsorted or duplicate names, so every later
//! consumer can trust a decoded tree's names.

use serde::{Deserialize, Serialize};

use crate::content::Content;
use crate::encoding::{self, Tag};
use crate::error::{Error, Result};
use crate::id::BlobId;

/// Current tree version.
pub const TREE_VERSION: u8 = 1;

/// A directory listing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tree {
    pub nodes: Vec<Node>,
}

/// One directory entry with its metadata.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    pub name: Vec<u8>,
    pub kind: NodeKind,
    /// Permission and special bits (`st_mode & 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub user: String,
    pub group: String,
    pub mtime_ns: i64,
    pub atime_ns: i64,
    pub ctime_ns: i64,
    pub inode: u64,
    pub device: u64,
    /// Link count; with `inode` and `device` this is the hardlink information.
    pub nlink: u64,
    /// Apparent size in bytes (files), target length (symlinks), 0 otherwise.
    pub size: u64,
    pub xattrs: Vec<Xattr>,
}

/// An extended attribute (POSIX ACLs arrive as `system.posix_acl_*`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Xattr {
    pub name: Vec<u8>,
    pub value: Vec<u8>,
}

/// The type of a node and what only that type carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeKind {
    File { content: Content },
    Directory { subtree: BlobId },
    Symlink { target: Vec<u8> },
    BlockDevice { rdev: u64 },
    CharDevice { rdev: u64 },
    Fifo,
    Socket,
}

impl Tree {
    /// Plaintext of the tree blob; nodes must already be sorted by name.
    pub fn encode(&self) -> Vec<u8> {
        encoding::encode(Tag::Tree, TREE_VERSION, self)
    }

    /// Decodes and validates a tree blob.
    pub fn decode(bytes: &[u8], name: &str) -> Result<Self> {
        let tree: Tree = encoding::decode(Tag::Tree, TREE_VERSION, bytes, name)?;
        for pair in tree.nodes.windows(2) {
            if pair[0].name >= pair[1].name {
                return Err(Error::corrupt("tree", name, "names are not strictly sorted"));
            }
        }
        if let Some(node) = tree.nodes.iter().find(|n| !is_safe_name(&n.name)) {
            return Err(Error::corrupt(
                "tree",
                name,
                format!("unsafe entry name {:?}", String::from_utf8_lossy(&node.name)),
            ));
        }
        Ok(tree)
    }

    /// Sorts nodes by name, the order `encode` requires.
    pub fn sort(&mut self) {
        self.nodes.sort_by(|a, b| a.name.cmp(&b.name));
    }

    /// Finds a node by name (binary search).
    pub fn find(&self, name: &[u8]) -> Option<&Node> {
        self.nodes.binary_search_by(|n| n.name.as_slice().cmp(name)).ok().map(|i| &self.nodes[i])
    }
}

/// A name that is safe to create inside a directory.
pub fn is_safe_name(name: &[u8]) -> bool {
    !name.is_empty() && name != b"." && name != b".." && !name.contains(&b'/') && !name.contains(&0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &[u8]) -> Node {
        crate::testing::node(name, NodeKind::Fifo, 0)
    }

    #[test]
    fn hostile_names_are_rejected() {
        for bad in [&b".."[..], b".", b"", b"a/b", b"a\0"] {
            let tree = Tree { nodes: vec![node(bad)] };
            assert!(Tree::decode(&tree.encode(), "t").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn unsorted_or_duplicate_names_are_rejected() {
        let tree = Tree { nodes: vec![node(b"b"), node(b"a")] };
        assert!(Tree::decode(&tree.encode(), "t").is_err());
        let tree = Tree { nodes: vec![node(b"a"), node(b"a")] };
        assert!(Tree::decode(&tree.encode(), "t").is_err());
    }

    #[test]
    fn round_trip_and_find() {
        let mut tree = Tree { nodes: vec![node(b"z"), node("é".as_bytes()), node(b"a")] };
        tree.sort();
        let back = Tree::decode(&tree.encode(), "t").unwrap();
        assert_eq!(back, tree);
        assert!(back.find(b"z").is_some());
        assert!(back.find(b"q").is_none());
    }
}
