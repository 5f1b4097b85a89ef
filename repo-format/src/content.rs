//! Content lists: the chunks of a file in order. A list is either inline in the tree node or,
//! past [`INLINE_MAX`] entries, a B-tree of content-node blobs (stored as tree blobs) whose
//! leaves hold entries and whose inner nodes hold `(child blob, bytes covered)`. Leaves and
//! inner nodes are cut where an entry's blob id has its low 10 bits zero (at most 4096 items),
//! so an edit to a huge image changes only the nodes around it and the rest deduplicate.
//!
//! Finding the chunk that covers a byte offset costs one node load per level and a binary
//! search in each: O(log n) for a 2 TiB image of two million chunks (three levels at most).

use serde::{Deserialize, Serialize};

use crate::encoding::{self, Tag};
use crate::error::{Error, Result};
use crate::id::BlobId;

/// Current content-node version.
pub const CONTENT_NODE_VERSION: u8 = 1;
/// Lists with at most this many entries are stored inline in the tree node.
pub const INLINE_MAX: usize = 64;
/// Most items in one content node.
pub const NODE_MAX: usize = 4096;
/// Deepest B-tree accepted when reading (4096^8 chunks is far beyond any file).
pub const MAX_DEPTH: u8 = 8;

/// One run of a file's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ContentEntry {
    /// Bytes stored in a data blob.
    Data { id: BlobId, length: u32 },
    /// A run of zero bytes (a hole or zeros found in data): no blob, nothing to read.
    Zero { length: u64 },
}

impl ContentEntry {
    /// Bytes this entry covers.
    pub fn length(&self) -> u64 {
        match *self {
            ContentEntry::Data { length, .. } => u64::from(length),
            ContentEntry::Zero { length } => length,
        }
    }
}

/// A file's content list as a tree node carries it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Content {
    Inline(Vec<ContentEntry>),
    /// `depth` 0: `root` is a leaf; `depth` d: `root` is an inner node with d levels below.
    Indirect {
        root: BlobId,
        depth: u8,
    },
}

impl Default for Content {
    fn default() -> Self {
        Content::Inline(Vec::new())
    }
}

/// A content-node blob.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ContentNode {
    Leaf(Vec<ContentEntry>),
    Inner(Vec<ContentChild>),
}

/// A child of an inner content node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentChild {
    pub blob: BlobId,
    /// File bytes covered by the child's subtree.
    pub length: u64,
}

impl ContentNode {
    /// Plaintext of the node's blob.
    pub fn encode(&self) -> Vec<u8> {
        encoding::encode(Tag::ContentNode, CONTENT_NODE_VERSION, self)
    }

    /// Decodes a node's blob.
    pub fn decode(bytes: &[u8], name: &str) -> Result<Self> {
        let node: ContentNode =
            encoding::decode(Tag::ContentNode, CONTENT_NODE_VERSION, bytes, name)?;
        let len = match &node {
            ContentNode::Leaf(e) => e.len(),
            ContentNode::Inner(c) => c.len(),
        };
        if len == 0 || len > NODE_MAX {
            return Err(Error::corrupt("content list", name, format!("{len} items in a node")));
        }
        Ok(node)
    }
}

/// Stores a content node's plaintext as a tree blob and returns its id.
pub type StoreNode<'a> = dyn FnMut(Vec<u8>) -> Result<BlobId> + 'a;
/// Loads a tree blob's plaintext by id.
pub type LoadNode<'a> = dyn Fn(&BlobId) -> Result<Vec<u8>> + 'a;

fn is_boundary(id: &BlobId) -> bool {
    u16::from_le_bytes([id.0[0], id.0[1]]).trailing_zeros() >= 10
}

/// Builds a content list entry by entry, spilling to content nodes when it grows large.
/// Memory stays bounded by one open leaf plus one child per finished leaf.
#[derive(Default)]
pub struct ContentBuilder {
    pending: Vec<ContentEntry>,
    leaves: Vec<ContentChild>,
    spilled: bool,
}

impl ContentBuilder {
    /// Appends an entry; adjacent zero runs merge.
    pub fn push(&mut self, entry: ContentEntry, store: &mut StoreNode<'_>) -> Result<()> {
        if let (ContentEntry::Zero { length }, Some(ContentEntry::Zero { length: last })) =
            (entry, self.pending.last_mut())
        {
            *last += length;
            return Ok(());
        }
        if entry.length() == 0 {
            return Ok(());
        }
        self.pending.push(entry);
        if self.spilled || self.pending.len() > INLINE_MAX {
            self.spilled = true;
            self.cut_leaves(store)?;
        }
        Ok(())
    }

    /// Cuts finished leaves off the front of `pending`. Boundaries depend only on the
    /// entries, never on when spilling began, so equal lists give equal nodes.
    fn cut_leaves(&mut self, store: &mut StoreNode<'_>) -> Result<()> {
        loop {
            let cut = self.pending.iter().take(NODE_MAX).position(|e| match e {
                ContentEntry::Data { id, .. } => is_boundary(id),
                ContentEntry::Zero { .. } => false,
            });
            let end = match cut {
                Some(i) if i + 1 < self.pending.len() => i + 1,
                None if self.pending.len() > NODE_MAX => NODE_MAX,
                _ => return Ok(()),
            };
            let rest = self.pending.split_off(end);
            let leaf = std::mem::replace(&mut self.pending, rest);
            self.leaves.push(store_leaf(leaf, store)?);
        }
    }

    /// Finishes the list.
    pub fn finish(mut self, store: &mut StoreNode<'_>) -> Result<Content> {
        if !self.spilled {
            return Ok(Content::Inline(self.pending));
        }
        // The last entry may sit on a boundary that cut_leaves kept back; flush everything.
        while !self.pending.is_empty() {
            let end = self.pending.len().min(NODE_MAX);
            let rest = self.pending.split_off(end);
            let leaf = std::mem::replace(&mut self.pending, rest);
            self.leaves.push(store_leaf(leaf, store)?);
        }
        let mut level = self.leaves;
        let mut depth = 0u8;
        while level.len() > 1 {
            level = split_runs(level)
                .into_iter()
                .map(|children| store_inner(children, store))
                .collect::<Result<_>>()?;
            depth += 1;
        }
        Ok(Content::Indirect { root: level[0].blob, depth })
    }
}

fn store_leaf(entries: Vec<ContentEntry>, store: &mut StoreNode<'_>) -> Result<ContentChild> {
    let length = entries.iter().map(ContentEntry::length).sum();
    let blob = store(ContentNode::Leaf(entries).encode())?;
    Ok(ContentChild { blob, length })
}

fn store_inner(children: Vec<ContentChild>, store: &mut StoreNode<'_>) -> Result<ContentChild> {
    let length = children.iter().map(|c| c.length).sum();
    let blob = store(ContentNode::Inner(children).encode())?;
    Ok(ContentChild { blob, length })
}

fn split_runs(children: Vec<ContentChild>) -> Vec<Vec<ContentChild>> {
    let mut runs = Vec::new();
    let mut run = Vec::new();
    for child in children {
        let boundary = is_boundary(&child.blob);
        run.push(child);
        if boundary || run.len() == NODE_MAX {
            runs.push(std::mem::take(&mut run));
        }
    }
    if !run.is_empty() {
        runs.push(run);
    }
    runs
}

impl Content {
    /// Builds a list from entries held in memory.
    pub fn from_entries(
        entries: impl IntoIterator<Item = ContentEntry>,
        store: &mut StoreNode<'_>,
    ) -> Result<Self> {
        let mut builder = ContentBuilder::default();
        for entry in entries {
            builder.push(entry, store)?;
        }
        builder.finish(store)
    }

    /// Visits every entry in file order with its starting offset.
    pub fn for_each(
        &self,
        load: &LoadNode<'_>,
        visit: &mut dyn FnMut(u64, &ContentEntry) -> Result<()>,
    ) -> Result<()> {
        let mut offset = 0;
        match self {
            Content::Inline(entries) => visit_entries(entries, &mut offset, visit),
            Content::Indirect { root, depth } => {
                walk_node(root, Self::check_depth(*depth)?, load, &mut offset, visit)
            }
        }
    }

    /// Visits every blob a content list references, depth first in file order, for walks
    /// over whole repositories (the engine's reachability walk): see [`BlobVisitor`]. A node
    /// that cannot be loaded or decoded goes to `failed` and its subtree is skipped; an error
    /// from the visitor stops the visit.
    pub fn visit_blobs<E>(
        &self,
        load: &LoadNode<'_>,
        visitor: &mut dyn BlobVisitor<E>,
    ) -> Result<(), E> {
        let mut pending = match self {
            Content::Inline(entries) => return entries.iter().try_for_each(|e| visitor.entry(e)),
            Content::Indirect { root, depth } => vec![(*root, *depth)],
        };
        while let Some((id, depth)) = pending.pop() {
            if !visitor.node(&id)? {
                continue;
            }
            let name = id.to_hex();
            let decoded = Self::check_depth(depth)
                .and_then(|_| load(&id))
                .and_then(|bytes| ContentNode::decode(&bytes, &name));
            match (decoded, depth) {
                (Ok(ContentNode::Leaf(entries)), 0) => {
                    entries.iter().try_for_each(|e| visitor.entry(e))?;
                }
                (Ok(ContentNode::Inner(children)), d) if d > 0 => {
                    pending.extend(children.iter().rev().map(|c| (c.blob, d - 1)));
                }
                (Ok(_), _) => visitor.failed(&id, depth_mismatch(&name))?,
                (Err(e), _) => visitor.failed(&id, e)?,
            }
        }
        Ok(())
    }

    /// All entries in order (loads every node: for restore-sized work, not random access).
    pub fn entries(&self, load: &LoadNode<'_>) -> Result<Vec<(u64, ContentEntry)>> {
        let mut out = Vec::new();
        self.for_each(load, &mut |offset, entry| {
            out.push((offset, *entry));
            Ok(())
        })?;
        Ok(out)
    }

    /// The entry covering byte `offset` and where that entry starts; `None` past the end.
    pub fn locate(&self, offset: u64, load: &LoadNode<'_>) -> Result<Option<(u64, ContentEntry)>> {
        Ok(self.leaf_at(offset, load)?.and_then(|leaf| leaf.find(offset)))
    }

    /// The run of entries (the whole inline list, or one B-tree leaf) that covers byte
    /// `offset`: one node load per level. Random readers keep the run and answer the next
    /// offsets inside it without loading anything.
    pub fn leaf_at(&self, offset: u64, load: &LoadNode<'_>) -> Result<Option<LeafRun>> {
        let (mut blob, mut depth) = match self {
            Content::Inline(entries) => return Ok(LeafRun::new(0, entries.clone())),
            Content::Indirect { root, depth } => (*root, Self::check_depth(*depth)?),
        };
        let mut base = 0u64;
        loop {
            let name = blob.to_hex();
            match (ContentNode::decode(&load(&blob)?, &name)?, depth) {
                (ContentNode::Leaf(entries), 0) => return Ok(LeafRun::new(base, entries)),
                (ContentNode::Inner(children), d) if d > 0 => {
                    let Some((start, child)) = locate_child(&children, offset, base) else {
                        return Ok(None);
                    };
                    base = start;
                    blob = child.blob;
                    depth -= 1;
                }
                _ => return Err(depth_mismatch(&name)),
            }
        }
    }

    fn check_depth(depth: u8) -> Result<u8> {
        if depth > MAX_DEPTH {
            return Err(Error::corrupt("content list", "", format!("depth {depth}")));
        }
        Ok(depth)
    }
}

/// What [`Content::visit_blobs`] reports, with the visitor's own error type.
pub trait BlobVisitor<E> {
    /// A content-list node blob; the answer is whether to load it and go inside.
    fn node(&mut self, id: &BlobId) -> Result<bool, E>;
    /// An entry of a visited leaf (or of an inline list), in file order.
    fn entry(&mut self, entry: &ContentEntry) -> Result<(), E>;
    /// A node that cannot be loaded or decoded; what is under it is skipped.
    fn failed(&mut self, id: &BlobId, error: Error) -> Result<(), E>;
}

/// Consecutive entries of a content list and the file offset of each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeafRun {
    entries: Vec<ContentEntry>,
    starts: Vec<u64>,
    end: u64,
}

impl LeafRun {
    fn new(base: u64, entries: Vec<ContentEntry>) -> Option<Self> {
        let starts = prefix_starts(entries.iter().map(ContentEntry::length), base);
        let end = match (starts.last(), entries.last()) {
            (Some(start), Some(last)) => start.saturating_add(last.length()),
            _ => return None,
        };
        Some(Self { entries, starts, end })
    }

    /// First byte the run covers.
    pub fn start(&self) -> u64 {
        self.starts[0]
    }

    /// One past the last byte the run covers.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// The entry covering `offset` and its start (binary search over the prefix sums).
    pub fn find(&self, offset: u64) -> Option<(u64, ContentEntry)> {
        self.position(offset).map(|i| (self.starts[i], self.entries[i]))
    }

    /// Index of the entry covering `offset`.
    pub fn position(&self, offset: u64) -> Option<usize> {
        if offset >= self.end {
            return None;
        }
        self.starts.partition_point(|&s| s <= offset).checked_sub(1)
    }

    /// Entries from index `i` on, each with its start.
    pub fn from_position(&self, i: usize) -> impl Iterator<Item = (u64, ContentEntry)> + '_ {
        self.starts[i..].iter().copied().zip(self.entries[i..].iter().copied())
    }
}

fn depth_mismatch(name: &str) -> Error {
    Error::corrupt("content list", name, "node type does not match its depth")
}

fn visit_entries(
    entries: &[ContentEntry],
    offset: &mut u64,
    visit: &mut dyn FnMut(u64, &ContentEntry) -> Result<()>,
) -> Result<()> {
    for entry in entries {
        visit(*offset, entry)?;
        *offset += entry.length();
    }
    Ok(())
}

fn walk_node(
    blob: &BlobId,
    depth: u8,
    load: &LoadNode<'_>,
    offset: &mut u64,
    visit: &mut dyn FnMut(u64, &ContentEntry) -> Result<()>,
) -> Result<()> {
    let name = blob.to_hex();
    match (ContentNode::decode(&load(blob)?, &name)?, depth) {
        (ContentNode::Leaf(entries), 0) => visit_entries(&entries, offset, visit),
        (ContentNode::Inner(children), d) if d > 0 => {
            for child in &children {
                walk_node(&child.blob, d - 1, load, offset, visit)?;
            }
            Ok(())
        }
        _ => Err(depth_mismatch(&name)),
    }
}

fn locate_child(children: &[ContentChild], offset: u64, base: u64) -> Option<(u64, ContentChild)> {
    let starts = prefix_starts(children.iter().map(|c| c.length), base);
    let i = starts.partition_point(|&s| s <= offset).checked_sub(1)?;
    (offset < starts[i] + children[i].length).then(|| (starts[i], children[i]))
}

fn prefix_starts(lengths: impl Iterator<Item = u64>, base: u64) -> Vec<u64> {
    let mut next = base;
    lengths
        .map(|len| {
            let start = next;
            next = next.saturating_add(len);
            start
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::HashMap;

    use super::*;

    struct Store(RefCell<HashMap<BlobId, Vec<u8>>>);

    // put/get return Result to match the StoreNode and LoadNode signatures.
    #[allow(clippy::unnecessary_wraps)]
    impl Store {
        fn new() -> Self {
            Self(RefCell::new(HashMap::new()))
        }
        fn put(&self, bytes: Vec<u8>) -> Result<BlobId> {
            let id = BlobId::hash_of(&bytes);
            self.0.borrow_mut().insert(id, bytes);
            Ok(id)
        }
        fn get(&self, id: &BlobId) -> Result<Vec<u8>> {
            Ok(self.0.borrow()[id].clone())
        }
    }

    fn entries(n: u64) -> Vec<ContentEntry> {
        (0..n)
            .map(|i| {
                if i % 7 == 3 {
                    ContentEntry::Zero { length: 4096 }
                } else {
                    let id = BlobId::hash_of(&i.to_le_bytes());
                    ContentEntry::Data { id, length: 1000 + (i % 13) as u32 }
                }
            })
            .collect()
    }

    #[test]
    fn small_lists_stay_inline() {
        let store = Store::new();
        let content = Content::from_entries(entries(10), &mut |b| store.put(b)).unwrap();
        assert!(matches!(content, Content::Inline(ref e) if e.len() == 10));
        assert!(store.0.borrow().is_empty());
    }

    #[test]
    fn large_lists_round_trip_and_locate() {
        let store = Store::new();
        let list = entries(20_000);
        let content = Content::from_entries(list.clone(), &mut |b| store.put(b)).unwrap();
        let Content::Indirect { depth, .. } = content else { panic!("expected indirect") };
        assert!(depth >= 1);
        let load = |id: &BlobId| store.get(id);
        let back: Vec<ContentEntry> =
            content.entries(&load).unwrap().into_iter().map(|(_, e)| e).collect();
        assert_eq!(back, list);
        let mut start = 0;
        for (i, entry) in list.iter().enumerate() {
            if i % 97 == 0 {
                let probe = start + entry.length() / 2;
                assert_eq!(content.locate(probe, &load).unwrap(), Some((start, *entry)));
            }
            start += entry.length();
        }
        assert_eq!(content.locate(start, &load).unwrap(), None);
    }

    #[test]
    fn leaf_runs_tile_the_file() {
        let store = Store::new();
        let list = entries(20_000);
        let content = Content::from_entries(list.clone(), &mut |b| store.put(b)).unwrap();
        let load = |id: &BlobId| store.get(id);
        let total: u64 = list.iter().map(ContentEntry::length).sum();
        let (mut offset, mut seen) = (0, Vec::new());
        while offset < total {
            let leaf = content.leaf_at(offset, &load).unwrap().unwrap();
            assert_eq!(leaf.start(), offset, "runs are contiguous");
            let i = leaf.position(offset).unwrap();
            seen.extend(leaf.from_position(i).map(|(_, e)| e));
            offset = leaf.end();
        }
        assert_eq!(seen, list);
        assert!(content.leaf_at(total, &load).unwrap().is_none());
    }

    #[test]
    fn an_edit_changes_few_nodes() {
        let store = Store::new();
        let list = entries(30_000);
        Content::from_entries(list.clone(), &mut |b| store.put(b)).unwrap();
        let before = store.0.borrow().len();
        let mut edited = list;
        edited[15_000] = ContentEntry::Data { id: BlobId([9; 32]), length: 5 };
        Content::from_entries(edited, &mut |b| store.put(b)).unwrap();
        let added = store.0.borrow().len() - before;
        assert!(added <= 4, "an edit added {added} content nodes");
    }

    #[test]
    fn zero_runs_merge() {
        let store = Store::new();
        let zeros = (0..5).map(|_| ContentEntry::Zero { length: 10 });
        let content = Content::from_entries(zeros, &mut |b| store.put(b)).unwrap();
        assert_eq!(content, Content::Inline(vec![ContentEntry::Zero { length: 50 }]));
    }

    #[test]
    fn hostile_nodes_are_errors() {
        assert!(ContentNode::decode(&ContentNode::Leaf(vec![]).encode(), "x").is_err());
        let store = Store::new();
        let leaf = store.put(ContentNode::Leaf(entries(3)).encode()).unwrap();
        let lying = Content::Indirect { root: leaf, depth: 2 };
        let load = |id: &BlobId| store.get(id);
        assert!(lying.entries(&load).is_err());
        assert!(lying.locate(0, &load).is_err());
        let deep = Content::Indirect { root: leaf, depth: 200 };
        assert!(deep.entries(&load).is_err());
    }
}
