//! The one walk over what snapshots reach: trees, the nodes of files' content lists and data
//! blobs, depth first in tree order. prune, check, stats, copy, repair, restore and ls are
//! built on it and differ only in their [`Visitor`].
//!
//! The walk keeps its own stack (one frame per open directory), so a snapshot thousands of
//! levels deep, which backup accepts, cannot overflow the thread's stack. It remembers every
//! blob it has reached, across all the roots one [`Walker`] is given: a visitor is told
//! whether a blob is reached for the first time and decides whether to go inside, which is how
//! shared subtrees are walked once. Blobs that do not load are reported to the visitor, which
//! decides whether the walk goes on without them.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::Result;
use cairn_format::content::{BlobVisitor, ContentEntry};
use cairn_format::tree::{Node, NodeKind, Tree};
use cairn_format::{BlobId, Repository};

/// A blob that has blobs under it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listing {
    Tree,
    /// A node of a file's content list.
    ContentNode,
}

impl Listing {
    /// How messages name it.
    pub fn name(self) -> &'static str {
        match self {
            Listing::Tree => "tree",
            Listing::ContentNode => "content node",
        }
    }
}

/// Where the walk is when it calls the visitor.
#[derive(Clone, Copy)]
pub struct Place<'w> {
    trees: &'w [BlobId],
    path: &'w Path,
}

impl Place<'_> {
    /// The open trees, from the root down to the innermost one.
    pub fn trees(&self) -> &[BlobId] {
        self.trees
    }

    /// The path of the node, file or directory concerned (empty unless the walker was made
    /// [`Walker::with_paths`]).
    pub fn path(&self) -> &Path {
        self.path
    }
}

/// What a caller does at each step. Every method but `failed` has a default: go into each
/// listing the first time it is reached, into every directory and every file's content.
pub trait Visitor {
    /// A tree or content node reached (`first`: not reached before by this walker); the answer
    /// is whether to load it and go inside.
    fn reach(&mut self, id: &BlobId, listing: Listing, first: bool, at: &Place) -> Result<bool> {
        let _ = (id, listing, at);
        Ok(first)
    }

    /// A data blob of a file's content, in file order.
    fn data(&mut self, id: &BlobId, length: u32, first: bool, at: &Place) -> Result<()> {
        let _ = (id, length, first, at);
        Ok(())
    }

    /// An entry of a loaded tree, before anything under it; the answer is whether to go into
    /// its subtree or its content.
    fn node(&mut self, node: &Node, at: &Place) -> Result<bool> {
        let _ = (node, at);
        Ok(true)
    }

    /// A file whose content has been walked (after every `data` of it).
    fn file_done(&mut self, node: &Node, at: &Place) -> Result<()> {
        let _ = (node, at);
        Ok(())
    }

    /// A loaded tree, once everything under it has been walked.
    fn leave(&mut self, id: &BlobId, tree: &Tree, at: &Place) -> Result<()> {
        let _ = (id, tree, at);
        Ok(())
    }

    /// A listing that does not load or decode: nothing under it is walked. An error stops
    /// the walk.
    fn failed(
        &mut self,
        id: &BlobId,
        listing: Listing,
        error: cairn_format::Error,
        at: &Place,
    ) -> Result<()>;
}

/// One open directory.
struct Frame {
    tree: Tree,
    /// The next node to visit.
    next: usize,
    /// Whether the directory's name is the last component of the walker's path.
    named: bool,
}

/// Walks snapshot trees; see the module documentation.
pub struct Walker<'r> {
    repo: &'r Repository,
    paths: bool,
    seen: HashSet<BlobId>,
    frames: Vec<Frame>,
    /// The id of each open frame's tree.
    trees: Vec<BlobId>,
    path: PathBuf,
}

impl<'r> Walker<'r> {
    pub fn new(repo: &'r Repository) -> Self {
        Walker {
            repo,
            paths: false,
            seen: HashSet::new(),
            frames: Vec::new(),
            trees: Vec::new(),
            path: PathBuf::new(),
        }
    }

    /// A walker that tracks the path of every node, starting from `/`.
    pub fn with_paths(repo: &'r Repository) -> Self {
        Walker { paths: true, ..Walker::new(repo) }
    }

    /// Every blob reached so far.
    pub fn seen(&self) -> &HashSet<BlobId> {
        &self.seen
    }

    pub fn into_seen(self) -> HashSet<BlobId> {
        self.seen
    }

    /// The trees the last walk was in when it stopped: all of them need what stopped it.
    pub fn open_trees(&self) -> &[BlobId] {
        &self.trees
    }

    /// Walks everything under the tree `root`, a snapshot's root directory `/`.
    pub fn walk(&mut self, root: &BlobId, visitor: &mut dyn Visitor) -> Result<()> {
        self.walk_at(root, Path::new("/"), visitor)
    }

    /// Walks everything under the tree `root`, whose path is `base`.
    pub fn walk_at(&mut self, root: &BlobId, base: &Path, visitor: &mut dyn Visitor) -> Result<()> {
        self.frames.clear();
        self.trees.clear();
        self.path = if self.paths { base.to_path_buf() } else { PathBuf::new() };
        self.enter(root, false, visitor)?;
        while !self.frames.is_empty() {
            self.step(visitor)?;
        }
        Ok(())
    }

    fn place(&self) -> Place<'_> {
        Place { trees: &self.trees, path: &self.path }
    }

    /// Reaches a tree and, if the visitor wants it, opens it as a new frame.
    fn enter(&mut self, id: &BlobId, named: bool, visitor: &mut dyn Visitor) -> Result<()> {
        let first = self.seen.insert(*id);
        if !visitor.reach(id, Listing::Tree, first, &self.place())? {
            return Ok(());
        }
        match self.repo.load_tree(id) {
            Ok(tree) => {
                let frame = Frame { tree, next: 0, named };
                self.frames.push(frame);
                self.trees.push(*id);
                Ok(())
            }
            Err(e) => visitor.failed(id, Listing::Tree, e, &self.place()),
        }
    }

    /// Visits the next node of the innermost open directory, or leaves it when it has none.
    fn step(&mut self, visitor: &mut dyn Visitor) -> Result<()> {
        let frame = self.frames.last_mut().expect("step runs while a frame is open");
        let at = frame.next;
        frame.next += 1;
        let Some(node) = self.frames.last().and_then(|f| f.tree.nodes.get(at)) else {
            return self.leave(visitor);
        };
        if self.paths {
            self.path.push(OsStr::from_bytes(&node.name));
        }
        let place = Place { trees: &self.trees, path: &self.path };
        let wanted = visitor.node(node, &place)?;
        match &node.kind {
            NodeKind::Directory { subtree } if wanted => {
                return self.open_directory(*subtree, visitor);
            }
            NodeKind::File { content } if wanted => {
                let mut content_walk =
                    ContentWalk { seen: &mut self.seen, visitor: &mut *visitor, place };
                content.visit_blobs(&|id| self.repo.read_blob(id), &mut content_walk)?;
                visitor.file_done(node, &place)?;
            }
            _ => {}
        }
        self.pop_name(true);
        Ok(())
    }

    fn open_directory(&mut self, subtree: BlobId, visitor: &mut dyn Visitor) -> Result<()> {
        let open = self.frames.len();
        self.enter(&subtree, true, visitor)?;
        // Skipped or unreadable: no frame took the name, so it goes now.
        self.pop_name(self.frames.len() == open);
        Ok(())
    }

    fn leave(&mut self, visitor: &mut dyn Visitor) -> Result<()> {
        let (frame, id) = (self.frames.last(), self.trees.last());
        let (Some(frame), Some(id)) = (frame, id) else {
            return Ok(());
        };
        visitor.leave(id, &frame.tree, &self.place())?;
        let named = frame.named;
        self.frames.pop();
        self.trees.pop();
        self.pop_name(named);
        Ok(())
    }

    fn pop_name(&mut self, named: bool) {
        if self.paths && named {
            self.path.pop();
        }
    }
}

/// A file's content-list walk, seen through the visitor of the whole walk.
struct ContentWalk<'a, 'p> {
    seen: &'a mut HashSet<BlobId>,
    visitor: &'a mut dyn Visitor,
    place: Place<'p>,
}

impl BlobVisitor<anyhow::Error> for ContentWalk<'_, '_> {
    fn node(&mut self, id: &BlobId) -> Result<bool> {
        let first = self.seen.insert(*id);
        self.visitor.reach(id, Listing::ContentNode, first, &self.place)
    }

    fn entry(&mut self, entry: &ContentEntry) -> Result<()> {
        match entry {
            ContentEntry::Data { id, length } => {
                let first = self.seen.insert(*id);
                self.visitor.data(id, *length, first, &self.place)
            }
            ContentEntry::Zero { .. } => Ok(()),
        }
    }

    fn failed(&mut self, id: &BlobId, error: cairn_format::Error) -> Result<()> {
        self.visitor.failed(id, Listing::ContentNode, error, &self.place)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use cairn_format::Error;
    use cairn_format::content::Content;
    use cairn_format::pack::BlobKind;
    use cairn_format::packer::{BlobWriter, WriterOptions};
    use cairn_format::testing::memory_repository;

    use super::*;

    fn node(name: &str, kind: NodeKind) -> Node {
        cairn_format::testing::node(name.as_bytes(), kind, 0)
    }

    fn store(repo: &Repository, writer: &BlobWriter, kind: BlobKind, bytes: Vec<u8>) -> BlobId {
        let id = repo.key().blob_id(&bytes);
        writer.add(kind, id, || bytes).unwrap();
        id
    }

    /// `/a` and `/b` are the same directory (one file `g`), `/f` a file, `/lost` a directory
    /// whose tree is not in the repository.
    fn fixture(repo: &Arc<Repository>) -> (BlobId, BlobId, BlobId) {
        let writer = BlobWriter::new(repo.clone(), WriterOptions::for_repository(repo));
        let data = store(repo, &writer, BlobKind::Data, b"data".to_vec());
        let file = || NodeKind::File {
            content: Content::Inline(vec![ContentEntry::Data { id: data, length: 4 }]),
        };
        let inner = Tree { nodes: vec![node("g", file())] };
        let shared = store(repo, &writer, BlobKind::Tree, inner.encode());
        let lost = repo.key().blob_id(b"never stored");
        let dir = |subtree| NodeKind::Directory { subtree };
        let nodes = vec![
            node("a", dir(shared)),
            node("b", dir(shared)),
            node("f", file()),
            node("lost", dir(lost)),
        ];
        let root = store(repo, &writer, BlobKind::Tree, Tree { nodes }.encode());
        writer.finish().unwrap();
        repo.sync_index().unwrap();
        (root, shared, data)
    }

    /// Every call, with the place's path and depth.
    #[derive(Default)]
    struct Recorder(Vec<String>);

    impl Recorder {
        fn note(&mut self, what: &str, at: &Place) {
            let path = at.path().display();
            self.0.push(format!("{what} {path} {}", at.trees().len()));
        }
    }

    impl Visitor for Recorder {
        fn reach(&mut self, _: &BlobId, listing: Listing, first: bool, at: &Place) -> Result<bool> {
            self.note(&format!("reach {} first={first}", listing.name()), at);
            Ok(first)
        }

        fn data(&mut self, _: &BlobId, length: u32, first: bool, at: &Place) -> Result<()> {
            self.note(&format!("data {length} first={first}"), at);
            Ok(())
        }

        fn node(&mut self, node: &Node, at: &Place) -> Result<bool> {
            self.note(&format!("node {}", String::from_utf8_lossy(&node.name)), at);
            Ok(true)
        }

        fn file_done(&mut self, _: &Node, at: &Place) -> Result<()> {
            self.note("file done", at);
            Ok(())
        }

        fn leave(&mut self, _: &BlobId, tree: &Tree, at: &Place) -> Result<()> {
            self.note(&format!("leave {} nodes", tree.nodes.len()), at);
            Ok(())
        }

        fn failed(&mut self, _: &BlobId, listing: Listing, _: Error, at: &Place) -> Result<()> {
            self.note(&format!("failed {}", listing.name()), at);
            Ok(())
        }
    }

    #[test]
    fn walks_depth_first_in_order_once_per_blob_with_paths_and_failures() {
        let cache = tempfile::tempdir().unwrap();
        let repo = memory_repository(cache.path());
        let (root, shared, data) = fixture(&repo);
        let mut walker = Walker::with_paths(&repo);
        let mut recorder = Recorder::default();
        walker.walk(&root, &mut recorder).unwrap();
        let expected = [
            "reach tree first=true / 0",
            "node a /a 1",
            "reach tree first=true /a 1",
            "node g /a/g 2",
            "data 4 first=true /a/g 2",
            "file done /a/g 2",
            "leave 1 nodes /a 2",
            "node b /b 1",
            "reach tree first=false /b 1",
            "node f /f 1",
            "data 4 first=false /f 1",
            "file done /f 1",
            "node lost /lost 1",
            "reach tree first=true /lost 1",
            "failed tree /lost 1",
            "leave 4 nodes / 1",
        ];
        assert_eq!(recorder.0, expected);
        for id in [root, shared, data] {
            assert!(walker.seen().contains(&id));
        }
        // A second root through the same walker: everything is reached again, but not first.
        let mut again = Recorder::default();
        walker.walk(&root, &mut again).unwrap();
        assert_eq!(again.0, ["reach tree first=false / 0"]);
    }

    /// Stops at the first failure.
    struct Strict;

    impl Visitor for Strict {
        fn failed(&mut self, id: &BlobId, _: Listing, _: Error, _: &Place) -> Result<()> {
            anyhow::bail!("{id} does not read")
        }
    }

    #[test]
    fn a_failure_the_visitor_refuses_stops_the_walk_and_says_where() {
        let cache = tempfile::tempdir().unwrap();
        let repo = memory_repository(cache.path());
        let (root, _, _) = fixture(&repo);
        let mut walker = Walker::new(&repo);
        assert!(walker.walk(&root, &mut Strict).is_err());
        assert_eq!(walker.open_trees(), [root]);
    }

    #[test]
    fn depth_costs_heap_not_stack() {
        let cache = tempfile::tempdir().unwrap();
        let repo = memory_repository(cache.path());
        let writer = BlobWriter::new(repo.clone(), WriterOptions::for_repository(&repo));
        let mut below = store(&repo, &writer, BlobKind::Tree, Tree::default().encode());
        for _ in 0..30_000 {
            let nodes = vec![node("d", NodeKind::Directory { subtree: below })];
            below = store(&repo, &writer, BlobKind::Tree, Tree { nodes }.encode());
        }
        writer.finish().unwrap();
        repo.sync_index().unwrap();
        // A test thread's stack is 2 MiB: a recursive walk overflows it long before this.
        let mut walker = Walker::new(&repo);
        walker.walk(&below, &mut Strict).unwrap();
        assert_eq!(walker.seen().len(), 30_001);
    }
}
