//! The filesystem core: inodes, directory listings, attributes, symlinks, xattrs and reads of
//! a repository, with no fuser types (the adapter translates), so it is tested directly.
//!
//! Inodes are allocated on first sight and live as long as the mount: memory grows with what
//! is browsed, never with the size of the repository. An inode number is stable: the same
//! path (or, inside a snapshot, the same hardlinked file) always gets the same number.
//! Everything below a snapshot root is immutable; only the whole-repository listings
//! (`ids/`, `snapshots/`, `hosts/`, `tags/`) change, when the snapshot catalog refreshes.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use cairn_format::content::ContentEntry;
use cairn_format::snapshot::Snapshot;
use cairn_format::tree::{Node, NodeKind, Tree};
use cairn_format::{BlobId, Repository};
use parking_lot::{Mutex, RwLock};

use crate::attr::node_attr;
pub use crate::attr::{Attr, FileKind, IMMUTABLE_TTL, LISTING_TTL};
use crate::cache::{BlobCache, Prefetcher};
use crate::catalog::{Catalog, CatalogEntry, LATEST, Listing, LiveCatalog};
use crate::error::{FsError, FsResult};
use crate::file::{FileData, OpenFile};
use crate::inode::{Body, Children, Inode, Key, Table, kind_of, node_body};
pub use crate::inode::{Ino, ROOT};

/// One entry of a directory listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    pub ino: Ino,
    pub kind: FileKind,
    pub name: Vec<u8>,
}

/// Entries of an open directory from some position on (see [`CairnFs::readdir`]).
pub struct DirPage {
    entries: Arc<Vec<DirEntry>>,
    start: usize,
}

impl DirPage {
    /// Each entry with the position that follows it (what the kernel passes back to go on).
    pub fn iter(&self) -> impl Iterator<Item = (u64, &DirEntry)> {
        self.entries[self.start..]
            .iter()
            .zip(self.start as u64 + 1..)
            .map(|(entry, next)| (next, entry))
    }
}

/// An open directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenDir {
    pub handle: u64,
    /// A snapshot directory, whose listing never changes: the kernel may cache it.
    pub immutable: bool,
}

/// The answer to getxattr/listxattr: the size when asked for it (a zero-size buffer), else
/// the bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum XattrReply {
    Size(u32),
    Data(Vec<u8>),
}

/// What the mount shows at its root.
pub enum MountRoot {
    /// The whole repository: `ids/`, `snapshots/`, `hosts/`, `tags/` of the catalog's
    /// snapshots.
    Repository(LiveCatalog),
    /// One snapshot, or one directory inside it (see [`snapshot_root`]).
    Directory(Node),
}

/// Tuning and ownership of the mount.
#[derive(Clone, Debug)]
pub struct FsOptions {
    /// Bytes of decrypted blobs kept in memory.
    pub cache_bytes: u64,
    pub prefetch_workers: usize,
    /// Owner of the directories the mount makes up (the mounting user).
    pub uid: u32,
    pub gid: u32,
}

impl Default for FsOptions {
    fn default() -> Self {
        Self { cache_bytes: 256 << 20, prefetch_workers: 4, uid: 0, gid: 0 }
    }
}

/// The directory node that stands for a snapshot's root (the snapshot records no metadata
/// for it): readable by everyone, owned by the user who made the backup, timed at the backup.
pub fn snapshot_root(name: &str, snapshot: &Snapshot) -> Node {
    Node {
        name: name.as_bytes().to_vec(),
        kind: NodeKind::Directory { subtree: snapshot.tree },
        mode: 0o755,
        uid: snapshot.uid,
        gid: snapshot.gid,
        user: snapshot.username.clone(),
        group: String::new(),
        mtime_ns: snapshot.time_ns,
        atime_ns: snapshot.time_ns,
        ctime_ns: snapshot.time_ns,
        inode: 0,
        device: 0,
        nlink: 2,
        size: 0,
        xattrs: Vec::new(),
    }
}

enum Handle {
    File(Arc<OpenFile>),
    Directory(Arc<Vec<DirEntry>>),
}

/// A read-only view of a repository.
pub struct CairnFs {
    cache: Arc<BlobCache>,
    prefetcher: Prefetcher,
    catalog: Option<LiveCatalog>,
    table: RwLock<Table>,
    handles: Mutex<HashMap<u64, Handle>>,
    next_handle: AtomicU64,
    options: FsOptions,
    mounted_at: SystemTime,
}

const TOP: [(&str, Listing); 4] = [
    ("hosts", Listing::Hosts),
    ("ids", Listing::Ids),
    ("snapshots", Listing::Snapshots),
    ("tags", Listing::Tags),
];

impl CairnFs {
    /// Builds the view (fails only if the prefetch threads cannot start).
    pub fn new(
        repo: Arc<Repository>,
        root: MountRoot,
        options: FsOptions,
    ) -> std::io::Result<Self> {
        let cache = Arc::new(BlobCache::new(repo, options.cache_bytes));
        let prefetcher = Prefetcher::start(&cache, options.prefetch_workers)?;
        let (catalog, body) = match root {
            MountRoot::Repository(catalog) => (Some(catalog), Body::Root),
            MountRoot::Directory(node) => (None, node_body(ROOT, node)),
        };
        let table =
            Table { inodes: vec![Arc::new(Inode { parent: ROOT, body })], keys: HashMap::new() };
        Ok(Self {
            cache,
            prefetcher,
            catalog,
            table: RwLock::new(table),
            handles: Mutex::default(),
            next_handle: AtomicU64::new(1),
            options,
            mounted_at: SystemTime::now(),
        })
    }

    /// Resolves `name` in directory `parent`.
    pub fn lookup(&self, parent: Ino, name: &[u8]) -> FsResult<Attr> {
        let dir = self.inode(parent)?;
        let ino = match &dir.body {
            Body::Root => self.top_level(name).ok_or(FsError::NotFound)?,
            Body::Listing(listing) => {
                let name = std::str::from_utf8(name).map_err(|_| FsError::NotFound)?;
                let catalog = self.live_catalog()?.get();
                let entry = catalog.find(listing, name).ok_or(FsError::NotFound)?;
                self.catalog_inode(parent, listing, &entry, &catalog)?
            }
            Body::Node { .. } => {
                let children = self.children(parent, &dir)?;
                let i = children
                    .names
                    .binary_search_by(|n| n.as_slice().cmp(name))
                    .map_err(|_| FsError::NotFound)?;
                children.inos[i]
            }
            Body::Latest(_) => return Err(FsError::NotDirectory),
        };
        self.getattr(ino)
    }

    pub fn getattr(&self, ino: Ino) -> FsResult<Attr> {
        let inode = self.inode(ino)?;
        Ok(match &inode.body {
            Body::Root | Body::Listing(_) => self.virtual_attr(ino, FileKind::Directory, 0),
            Body::Latest(listing) => {
                let target = self.latest_target(listing)?;
                self.virtual_attr(ino, FileKind::Symlink, target.len() as u64)
            }
            Body::Node { node, blocks, .. } => {
                let blocks = *blocks.get_or_init(|| self.stored_blocks(ino, node));
                node_attr(ino, node, blocks)
            }
        })
    }

    pub fn readlink(&self, ino: Ino) -> FsResult<Vec<u8>> {
        match &self.inode(ino)?.body {
            Body::Latest(listing) => Ok(self.latest_target(listing)?.into_bytes()),
            Body::Node { node, .. } => match &node.kind {
                NodeKind::Symlink { target } => Ok(target.clone()),
                _ => Err(FsError::NotSymlink),
            },
            _ => Err(FsError::NotSymlink),
        }
    }

    /// Opens a directory: its entries are fixed for the life of the handle, so a listing that
    /// gains a snapshot while `ls` pages through it is still read consistently.
    pub fn opendir(&self, ino: Ino) -> FsResult<OpenDir> {
        let dir = self.inode(ino)?;
        let mut entries =
            vec![dot(ino, b"."), dot(if ino == ROOT { ROOT } else { dir.parent }, b"..")];
        match &dir.body {
            Body::Root => entries.extend(TOP.iter().map(|(name, _)| DirEntry {
                ino: self.top_level(name.as_bytes()).expect("top-level name"),
                kind: FileKind::Directory,
                name: name.as_bytes().to_vec(),
            })),
            Body::Listing(listing) => {
                let catalog = self.live_catalog()?.get();
                for entry in catalog.entries(listing).unwrap_or_default() {
                    entries.push(DirEntry {
                        ino: self.catalog_inode(ino, listing, &entry, &catalog)?,
                        kind: match entry {
                            CatalogEntry::Latest(_) => FileKind::Symlink,
                            _ => FileKind::Directory,
                        },
                        name: entry.name().as_bytes().to_vec(),
                    });
                }
            }
            Body::Node { .. } => {
                let children = self.children(ino, &dir)?;
                let table = self.table.read();
                for (name, &child) in children.names.iter().zip(&children.inos) {
                    let Some(kind) = table.get(child).map(|i| kind_of(&i.body)) else {
                        return Err(FsError::NotFound);
                    };
                    entries.push(DirEntry { ino: child, kind, name: name.clone() });
                }
            }
            Body::Latest(_) => return Err(FsError::NotDirectory),
        }
        let immutable = matches!(dir.body, Body::Node { .. });
        let handle = self.add_handle(Handle::Directory(Arc::new(entries)));
        Ok(OpenDir { handle, immutable })
    }

    /// The entries of an open directory from position `offset` on. The kernel asks page by
    /// page, so nothing is copied here: the caller takes entries until its buffer is full.
    pub fn readdir(&self, handle: u64, offset: u64) -> FsResult<DirPage> {
        let entries = match self.handles.lock().get(&handle) {
            Some(Handle::Directory(entries)) => entries.clone(),
            _ => return Err(FsError::NotFound),
        };
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(entries.len());
        Ok(DirPage { entries, start })
    }

    pub fn open(&self, ino: Ino) -> FsResult<u64> {
        let inode = self.inode(ino)?;
        let Body::Node { node, .. } = &inode.body else {
            return Err(FsError::NotFile);
        };
        let NodeKind::File { content } = &node.kind else {
            return Err(FsError::NotFile);
        };
        let file = OpenFile::new(self.path(ino), content.clone(), node.size);
        Ok(self.add_handle(Handle::File(Arc::new(file))))
    }

    pub fn read(&self, handle: u64, offset: u64, length: u32) -> FsResult<FileData> {
        let file = match self.handles.lock().get(&handle) {
            Some(Handle::File(file)) => file.clone(),
            _ => return Err(FsError::NotFound),
        };
        file.read(&self.cache, &self.prefetcher, offset, length)
    }

    /// Closes a file or directory handle.
    pub fn release(&self, handle: u64) {
        self.handles.lock().remove(&handle);
    }

    /// `size` is the caller's buffer: 0 asks for the value's size.
    pub fn getxattr(&self, ino: Ino, name: &[u8], size: u32) -> FsResult<XattrReply> {
        let inode = self.inode(ino)?;
        let Body::Node { node, .. } = &inode.body else {
            return Err(FsError::NoAttribute);
        };
        let xattr = node.xattrs.iter().find(|x| x.name == name);
        sized_reply(xattr.ok_or(FsError::NoAttribute)?.value.clone(), size)
    }

    /// Names of all xattrs, each followed by a NUL byte.
    pub fn listxattr(&self, ino: Ino, size: u32) -> FsResult<XattrReply> {
        let inode = self.inode(ino)?;
        let mut names = Vec::new();
        if let Body::Node { node, .. } = &inode.body {
            for xattr in &node.xattrs {
                names.extend_from_slice(&xattr.name);
                names.push(0);
            }
        }
        sized_reply(names, size)
    }

    /// Inodes allocated so far: grows with what has been browsed (diagnostics and tests).
    pub fn inode_count(&self) -> usize {
        self.table.read().inodes.len()
    }

    /// The path of an inode inside the mount (for log lines).
    pub fn path(&self, mut ino: Ino) -> String {
        let table = self.table.read();
        let mut parts = Vec::new();
        while ino != ROOT {
            let Some(inode) = table.get(ino) else { break };
            parts.push(match &inode.body {
                Body::Node { node, .. } => String::from_utf8_lossy(&node.name).into_owned(),
                Body::Listing(listing) => listing_name(listing),
                Body::Latest(_) => LATEST.to_string(),
                Body::Root => break,
            });
            ino = inode.parent;
        }
        parts.reverse();
        parts.join("/")
    }

    fn inode(&self, ino: Ino) -> FsResult<Arc<Inode>> {
        self.table.read().get(ino).ok_or(FsError::NotFound)
    }

    fn live_catalog(&self) -> FsResult<&LiveCatalog> {
        self.catalog.as_ref().ok_or(FsError::NotFound)
    }

    fn top_level(&self, name: &[u8]) -> Option<Ino> {
        let (name, listing) = TOP.iter().find(|(n, _)| n.as_bytes() == name)?;
        let mut table = self.table.write();
        Some(table.intern(Key::Name(ROOT, name.as_bytes().to_vec()), |_| Inode {
            parent: ROOT,
            body: Body::Listing(listing.clone()),
        }))
    }

    /// The inode of one entry of a whole-repository listing.
    fn catalog_inode(
        &self,
        parent: Ino,
        listing: &Listing,
        entry: &CatalogEntry,
        catalog: &Catalog,
    ) -> FsResult<Ino> {
        let key = match entry {
            CatalogEntry::Group(name, _) => Key::Name(parent, name.as_bytes().to_vec()),
            CatalogEntry::Latest(_) => Key::Name(parent, LATEST.as_bytes().to_vec()),
            CatalogEntry::Snapshot(_, id) => Key::Snapshot(parent, *id),
        };
        let snapshot = match entry {
            CatalogEntry::Snapshot(_, id) => Some(catalog.snapshot(id).ok_or(FsError::NotFound)?),
            _ => None,
        };
        let mut table = self.table.write();
        Ok(table.intern(key, |ino| {
            let body = match (entry, snapshot) {
                (CatalogEntry::Group(_, group), _) => Body::Listing(group.clone()),
                (CatalogEntry::Snapshot(name, _), Some(snapshot)) => {
                    node_body(ino, snapshot_root(name, snapshot))
                }
                _ => Body::Latest(listing.clone()),
            };
            Inode { parent, body }
        }))
    }

    /// The entries of a snapshot directory, loaded on first use.
    fn children(&self, ino: Ino, dir: &Inode) -> FsResult<Arc<Children>> {
        let Body::Node { view, node, children, .. } = &dir.body else {
            return Err(FsError::NotDirectory);
        };
        if let Some(loaded) = children.get() {
            return Ok(loaded.clone());
        }
        let NodeKind::Directory { subtree } = &node.kind else {
            return Err(FsError::NotDirectory);
        };
        let tree = self.load_tree(ino, subtree)?;
        // Walkers (`find`, `du`, `cp -r`) list the subdirectories next: fetch their trees in
        // parallel now rather than one by one as they are reached.
        for node in &tree.nodes {
            if let NodeKind::Directory { subtree } = &node.kind {
                self.prefetcher.request(*subtree);
            }
        }
        let loaded = Arc::new(self.intern_children(ino, *view, tree));
        Ok(children.get_or_init(|| loaded).clone())
    }

    fn load_tree(&self, ino: Ino, id: &BlobId) -> FsResult<Tree> {
        let result = self.cache.get(id).and_then(|bytes| Tree::decode(&bytes, &id.to_hex()));
        result.map_err(|error| {
            let path = self.path(ino);
            tracing::error!(%path, blob = %id, %error, "cannot list the directory");
            FsError::Repository(format!("{path}: tree {id}: {error}"))
        })
    }

    fn intern_children(&self, dir: Ino, view: Ino, mut tree: Tree) -> Children {
        // A hostile tree may be unsorted or repeat a name: sort, keep the first of each name.
        tree.nodes.sort_by(|a, b| a.name.cmp(&b.name));
        tree.nodes.dedup_by(|b, a| a.name == b.name);
        let mut table = self.table.write();
        let mut children = Children {
            names: Vec::with_capacity(tree.nodes.len()),
            inos: Vec::with_capacity(tree.nodes.len()),
        };
        for node in tree.nodes {
            let key = match node.kind {
                NodeKind::File { .. } if node.nlink > 1 => {
                    Key::Hardlink { view, device: node.device, inode: node.inode }
                }
                _ => Key::Name(dir, node.name.clone()),
            };
            children.names.push(node.name.clone());
            children
                .inos
                .push(table.intern(key, |_| Inode { parent: dir, body: node_body(view, node) }));
        }
        children
    }

    fn latest_target(&self, listing: &Listing) -> FsResult<String> {
        match self.live_catalog()?.get().find(listing, LATEST) {
            Some(CatalogEntry::Latest(target)) => Ok(target),
            _ => Err(FsError::NotFound),
        }
    }

    /// 512-byte blocks of stored data (zero extents excluded), so `du` shows sparse files as
    /// they were. Large files load their content-list nodes once, through the cache.
    fn stored_blocks(&self, ino: Ino, node: &Node) -> u64 {
        let NodeKind::File { content } = &node.kind else {
            return 0;
        };
        let load = |id: &BlobId| self.cache.get(id).map(|blob| blob.to_vec());
        let mut data = 0u64;
        let result = content.for_each(&load, &mut |_, entry| {
            if let ContentEntry::Data { length, .. } = entry {
                data += u64::from(*length);
            }
            Ok(())
        });
        if let Err(error) = result {
            let path = self.path(ino);
            tracing::warn!(%path, %error, "cannot read the content list; reporting the full size");
            data = node.size;
        }
        data.div_ceil(512)
    }

    fn virtual_attr(&self, ino: Ino, kind: FileKind, size: u64) -> Attr {
        Attr {
            ino,
            kind,
            size,
            blocks: 0,
            perm: if kind == FileKind::Directory { 0o555 } else { 0o777 },
            nlink: if kind == FileKind::Directory { 2 } else { 1 },
            uid: self.options.uid,
            gid: self.options.gid,
            rdev: 0,
            atime: self.mounted_at,
            mtime: self.mounted_at,
            ctime: self.mounted_at,
            ttl: LISTING_TTL,
        }
    }

    fn add_handle(&self, handle: Handle) -> u64 {
        let id = self.next_handle.fetch_add(1, Ordering::Relaxed);
        self.handles.lock().insert(id, handle);
        id
    }
}

fn dot(ino: Ino, name: &[u8]) -> DirEntry {
    DirEntry { ino, kind: FileKind::Directory, name: name.to_vec() }
}

fn sized_reply(value: Vec<u8>, size: u32) -> FsResult<XattrReply> {
    let len = u32::try_from(value.len()).map_err(|_| FsError::BufferTooSmall)?;
    match size {
        0 => Ok(XattrReply::Size(len)),
        s if s < len => Err(FsError::BufferTooSmall),
        _ => Ok(XattrReply::Data(value)),
    }
}

fn listing_name(listing: &Listing) -> String {
    match listing {
        Listing::Ids => "ids".into(),
        Listing::Snapshots => "snapshots".into(),
        Listing::Hosts => "hosts".into(),
        Listing::Tags => "tags".into(),
        Listing::Host(name) | Listing::Tag(name) => name.clone(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use cairn_format::pack::BlobKind;
    use cairn_format::packer::{BlobWriter, WriterOptions};

    use super::*;
    use crate::inode::ROOT;

    fn mounted(cache: &std::path::Path) -> CairnFs {
        let repo = cairn_format::testing::memory_repository(cache);
        let tree = Tree { nodes: Vec::new() }.encode();
        let id = repo.key().blob_id(&tree);
        let writer = BlobWriter::new(repo.clone(), WriterOptions::for_repository(&repo));
        writer.add(BlobKind::Tree, id, move || tree).unwrap();
        writer.finish().unwrap();
        let snapshot = Snapshot { tree: id, ..Snapshot::default() };
        repo.save_snapshot(&snapshot).unwrap();
        let catalog = LiveCatalog::load(repo.clone(), Box::new(|_| true), Duration::from_secs(60));
        let root = MountRoot::Repository(catalog.unwrap());
        CairnFs::new(repo, root, FsOptions::default()).unwrap()
    }

    /// Issue #16: a request that panics while it holds the inode table or the handle map
    /// must not make every later request panic (std's locks would be poisoned).
    #[test]
    fn a_panic_while_a_lock_is_held_costs_the_mount_nothing() {
        let cache = tempfile::tempdir().unwrap();
        let fs = Arc::new(mounted(cache.path()));
        let holder = fs.clone();
        let panicked = std::thread::spawn(move || {
            let _table = holder.table.write();
            let _handles = holder.handles.lock();
            panic!("a request that panics while holding the locks");
        })
        .join();
        assert!(panicked.is_err());
        let snapshots = fs.lookup(ROOT, b"snapshots").unwrap();
        let listing = fs.opendir(snapshots.ino).unwrap();
        assert!(fs.readdir(listing.handle, 0).is_ok());
    }
}
