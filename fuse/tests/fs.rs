//! The filesystem core against an in-memory repository, without a kernel: layout, metadata,
//! hardlinks, xattrs, reads across chunk and zero-extent boundaries, damage, refresh and
//! concurrent readers. Real mounts are tested in the cairn package's integration tests.

use std::sync::Arc;
use std::time::Duration;

use cairn_format::backend::{Backend, MemoryBackend};
use cairn_format::content::{Content, ContentEntry};
use cairn_format::pack::BlobKind;
use cairn_format::packer::{BlobWriter, WriterOptions};
use cairn_format::snapshot::Snapshot;
use cairn_format::tree::{Node, NodeKind, Tree, Xattr};
use cairn_format::{BlobId, Repository};
use cairn_fuse::fs::{FileKind, Ino, ROOT, XattrReply};
use cairn_fuse::{CairnFs, FsError, FsOptions, LiveCatalog, MountRoot};

struct Fixture {
    backend: Arc<MemoryBackend>,
    repo: Arc<Repository>,
    _cache: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let backend = Arc::new(MemoryBackend::new());
        let cache = tempfile::tempdir().unwrap();
        let options = cairn_format::testing::cheap_options();
        let repo = Repository::init(backend.clone(), b"pw", &options, cache.path()).unwrap();
        Self { backend, repo: Arc::new(repo), _cache: cache }
    }

    /// Writes blobs through a real pack writer and returns what `build` returned.
    fn write<T>(&self, build: impl FnOnce(&mut Writer) -> T) -> T {
        let blobs = BlobWriter::new(self.repo.clone(), WriterOptions::for_repository(&self.repo));
        let mut writer = Writer { repo: &self.repo, blobs: &blobs };
        let out = build(&mut writer);
        blobs.finish().unwrap();
        self.repo.sync_index().unwrap();
        out
    }

    fn snapshot(&self, time_s: i64, host: &str, tags: &[&str], nodes: Vec<Node>) {
        let tree = self.write(|w| w.tree(nodes));
        let snapshot = Snapshot {
            time_ns: time_s * 1_000_000_000,
            hostname: host.into(),
            tags: tags.iter().map(ToString::to_string).collect(),
            tree,
            ..Snapshot::default()
        };
        self.repo.save_snapshot(&snapshot).unwrap();
    }

    fn whole_repository(&self, ttl: Duration) -> CairnFs {
        let catalog = LiveCatalog::load(self.repo.clone(), Box::new(|_| true), ttl).unwrap();
        CairnFs::new(self.repo.clone(), MountRoot::Repository(catalog), FsOptions::default())
            .unwrap()
    }
}

struct Writer<'a> {
    repo: &'a Repository,
    blobs: &'a BlobWriter,
}

impl Writer<'_> {
    fn data(&self, bytes: &[u8]) -> ContentEntry {
        let id = self.repo.key().blob_id(bytes);
        let owned = bytes.to_vec();
        self.blobs.add(BlobKind::Data, id, move || owned).unwrap();
        ContentEntry::Data { id, length: bytes.len() as u32 }
    }

    fn tree_blob(&self, bytes: Vec<u8>) -> BlobId {
        let id = self.repo.key().blob_id(&bytes);
        self.blobs.add(BlobKind::Tree, id, move || bytes).unwrap();
        id
    }

    fn tree(&self, nodes: Vec<Node>) -> BlobId {
        let mut tree = Tree { nodes };
        tree.sort();
        self.tree_blob(tree.encode())
    }

    /// A file whose content is `chunks` (`None` is a zero extent of that length).
    fn file(&self, name: &str, chunks: &[Result<Vec<u8>, u64>]) -> (Node, Vec<u8>) {
        let mut bytes = Vec::new();
        let entries: Vec<ContentEntry> = chunks
            .iter()
            .map(|chunk| match chunk {
                Ok(data) => {
                    bytes.extend_from_slice(data);
                    self.data(data)
                }
                Err(zeros) => {
                    bytes.resize(bytes.len() + *zeros as usize, 0);
                    ContentEntry::Zero { length: *zeros }
                }
            })
            .collect();
        let content = Content::from_entries(entries, &mut |b| Ok(self.tree_blob(b))).unwrap();
        let mut node = node(name, NodeKind::File { content });
        node.size = bytes.len() as u64;
        (node, bytes)
    }

    fn dir(&self, name: &str, nodes: Vec<Node>) -> Node {
        node(name, NodeKind::Directory { subtree: self.tree(nodes) })
    }
}

fn node(name: &str, kind: NodeKind) -> Node {
    Node {
        name: name.as_bytes().to_vec(),
        kind,
        mode: 0o640,
        uid: 1000,
        gid: 100,
        user: "u".into(),
        group: "g".into(),
        mtime_ns: 1_600_000_000_123_456_789,
        atime_ns: 1_600_000_001_000_000_000,
        ctime_ns: 1_600_000_002_000_000_000,
        inode: 0,
        device: 0,
        nlink: 1,
        size: 0,
        xattrs: Vec::new(),
    }
}

fn noise(len: usize, seed: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut x = u32::from(seed).wrapping_mul(2_654_435_761) | 1;
    for _ in 0..len {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        out.push(x as u8);
    }
    out
}

/// Resolves a path as the kernel would, following the `latest` symlinks (relative, one
/// component) on the way.
fn lookup_path(fs: &CairnFs, path: &str) -> Result<Ino, FsError> {
    let mut ino = ROOT;
    let mut parts = path.split('/').filter(|p| !p.is_empty()).peekable();
    while let Some(part) = parts.next() {
        let parent = ino;
        ino = fs.lookup(parent, part.as_bytes())?.ino;
        if part == "latest" && parts.peek().is_some() {
            ino = fs.lookup(parent, &fs.readlink(ino)?)?.ino;
        }
    }
    Ok(ino)
}

fn list(fs: &CairnFs, ino: Ino) -> Vec<String> {
    let handle = fs.opendir(ino).unwrap().handle;
    let names = fs
        .readdir(handle, 0)
        .unwrap()
        .iter()
        .map(|(_, e)| String::from_utf8(e.name.clone()).unwrap())
        .collect();
    fs.release(handle);
    names
}

fn read_all(fs: &CairnFs, ino: Ino, step: u32) -> Vec<u8> {
    let handle = fs.open(ino).unwrap();
    let mut out = Vec::new();
    loop {
        let chunk = fs.read(handle, out.len() as u64, step).unwrap();
        if chunk.as_slice().is_empty() {
            break;
        }
        out.extend_from_slice(chunk.as_slice());
    }
    fs.release(handle);
    out
}

#[test]
fn whole_repository_layout_names_every_snapshot() {
    let f = Fixture::new();
    f.snapshot(1_700_000_000, "web", &["daily"], vec![]);
    f.snapshot(1_700_000_060, "db", &["daily", "vm"], vec![]);
    let fs = f.whole_repository(Duration::from_secs(60));
    assert_eq!(list(&fs, ROOT), [".", "..", "hosts", "ids", "snapshots", "tags"]);
    let snapshots = lookup_path(&fs, "snapshots").unwrap();
    assert_eq!(
        list(&fs, snapshots),
        [".", "..", "2023-11-14T22:13:20Z", "2023-11-14T22:14:20Z", "latest"]
    );
    let latest = lookup_path(&fs, "snapshots/latest").unwrap();
    assert_eq!(fs.getattr(latest).unwrap().kind, FileKind::Symlink);
    assert_eq!(fs.readlink(latest).unwrap(), b"2023-11-14T22:14:20Z");
    assert_eq!(list(&fs, lookup_path(&fs, "hosts").unwrap()), [".", "..", "db", "web"]);
    assert_eq!(
        list(&fs, lookup_path(&fs, "tags/vm").unwrap()),
        [".", "..", "2023-11-14T22:14:20Z", "latest"]
    );
    assert_eq!(list(&fs, lookup_path(&fs, "ids").unwrap()).len(), 5);
    assert_eq!(lookup_path(&fs, "hosts/nobody"), Err(FsError::NotFound));
    // The same path always resolves to the same inode.
    assert_eq!(
        lookup_path(&fs, "snapshots/2023-11-14T22:13:20Z"),
        lookup_path(&fs, "snapshots/2023-11-14T22:13:20Z")
    );
}

#[test]
fn metadata_hardlinks_devices_and_xattrs_match_the_snapshot() {
    let f = Fixture::new();
    let nodes = f.write(|w| {
        let (mut a, _) = w.file("a", &[Ok(b"shared".to_vec())]);
        a.nlink = 2;
        a.inode = 77;
        a.device = 5;
        a.xattrs = vec![Xattr { name: b"user.note".to_vec(), value: b"hello".to_vec() }];
        let mut b = a.clone();
        b.name = b"b".to_vec();
        let link = node("link", NodeKind::Symlink { target: b"a".to_vec() });
        let dev = node("null", NodeKind::CharDevice { rdev: 0x0103 });
        vec![w.dir("d", vec![a, b, link, dev, node("pipe", NodeKind::Fifo)])]
    });
    f.snapshot(1_700_000_000, "h", &[], nodes);
    let fs = f.whole_repository(Duration::from_secs(60));
    let dir = "snapshots/latest/d";
    let a = fs.getattr(lookup_path(&fs, &format!("{dir}/a")).unwrap()).unwrap();
    let b = fs.getattr(lookup_path(&fs, &format!("{dir}/b")).unwrap()).unwrap();
    assert_eq!(a.ino, b.ino, "hardlinks share an inode");
    assert_eq!((a.nlink, a.perm, a.uid, a.gid, a.size), (2, 0o640, 1000, 100, 6));
    assert_eq!(a.mtime, std::time::UNIX_EPOCH + Duration::from_nanos(1_600_000_000_123_456_789));
    let link = lookup_path(&fs, &format!("{dir}/link")).unwrap();
    assert_eq!(fs.readlink(link).unwrap(), b"a");
    let null = fs.getattr(lookup_path(&fs, &format!("{dir}/null")).unwrap()).unwrap();
    assert_eq!((null.kind, null.rdev), (FileKind::CharDevice, 0x0103));
    let pipe = fs.getattr(lookup_path(&fs, &format!("{dir}/pipe")).unwrap()).unwrap();
    assert_eq!(pipe.kind, FileKind::Fifo);
    assert_eq!(fs.getxattr(a.ino, b"user.note", 0).unwrap(), XattrReply::Size(5));
    assert_eq!(fs.getxattr(a.ino, b"user.note", 64).unwrap(), XattrReply::Data(b"hello".to_vec()));
    assert_eq!(fs.getxattr(a.ino, b"user.note", 2), Err(FsError::BufferTooSmall));
    assert_eq!(fs.getxattr(a.ino, b"user.none", 64), Err(FsError::NoAttribute));
    assert_eq!(fs.listxattr(a.ino, 64).unwrap(), XattrReply::Data(b"user.note\0".to_vec()));
    assert_eq!(fs.open(lookup_path(&fs, dir).unwrap()), Err(FsError::NotFile));
}

#[test]
fn reads_cross_chunks_and_zero_extents_and_holes_are_not_counted_as_blocks() {
    let f = Fixture::new();
    let (nodes, expected) = f.write(|w| {
        let (file, bytes) = w.file(
            "img",
            &[
                Ok(noise(70_000, 1)),
                Err(1 << 20),
                Ok(noise(3_000, 2)),
                Err(5),
                Ok(noise(100_000, 3)),
            ],
        );
        (vec![file], bytes)
    });
    f.snapshot(1_700_000_000, "h", &[], nodes);
    let fs = f.whole_repository(Duration::from_secs(60));
    let ino = lookup_path(&fs, "snapshots/latest/img").unwrap();
    let attr = fs.getattr(ino).unwrap();
    assert_eq!(attr.size, expected.len() as u64);
    assert_eq!(attr.blocks, (70_000u64 + 3_000 + 100_000).div_ceil(512));
    for step in [4096, 65_536, 131_072, 1 << 20] {
        assert!(read_all(&fs, ino, step) == expected, "step {step}");
    }
    let handle = fs.open(ino).unwrap();
    for offset in [0u64, 69_999, 70_000, 1_118_575, 1_121_570, expected.len() as u64 - 3] {
        let got = fs.read(handle, offset, 8192).unwrap();
        let end = (offset as usize + 8192).min(expected.len());
        assert_eq!(got.as_slice(), &expected[offset as usize..end], "offset {offset}");
    }
    let past_end = fs.read(handle, expected.len() as u64, 10).unwrap();
    assert!(past_end.as_slice().is_empty());
}

#[test]
fn large_content_lists_are_read_through_their_b_tree() {
    let f = Fixture::new();
    let (nodes, expected) = f.write(|w| {
        let chunks: Vec<Result<Vec<u8>, u64>> = (0..5_000u32)
            .map(|i| {
                if i % 7 == 3 {
                    Err(1000)
                } else {
                    Ok(noise(500 + (i % 13) as usize, i as u8)
                        .into_iter()
                        .chain(i.to_le_bytes())
                        .collect())
                }
            })
            .collect();
        let (file, bytes) = w.file("big", &chunks);
        assert!(matches!(&file.kind, NodeKind::File { content: Content::Indirect { .. } }));
        (vec![file], bytes)
    });
    f.snapshot(1_700_000_000, "h", &[], nodes);
    let fs = f.whole_repository(Duration::from_secs(60));
    let ino = lookup_path(&fs, "snapshots/latest/big").unwrap();
    assert!(read_all(&fs, ino, 128 * 1024) == expected);
    // Random reads, jumping backwards and forwards.
    let handle = fs.open(ino).unwrap();
    let mut x = 12_345u64;
    for _ in 0..300 {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let offset = x % expected.len() as u64;
        let got = fs.read(handle, offset, 4096).unwrap();
        let end = (offset as usize + 4096).min(expected.len());
        assert_eq!(got.as_slice(), &expected[offset as usize..end]);
    }
}

#[test]
fn a_damaged_chunk_fails_only_its_range_with_an_io_error() {
    let f = Fixture::new();
    let (good, bad) = f.write(|w| {
        let good = w.file("good", &[Ok(noise(10_000, 1))]);
        (good, w.data(&noise(10_000, 2)))
    });
    let bad_id = match bad {
        ContentEntry::Data { id, .. } => id,
        ContentEntry::Zero { .. } => unreachable!(),
    };
    let nodes = f.write(|w| {
        let (mut broken, _) = w.file("broken", &[Ok(noise(5_000, 3))]);
        let content = Content::Inline(vec![
            match &broken.kind {
                NodeKind::File { content: Content::Inline(e) } => e[0],
                _ => unreachable!(),
            },
            bad,
        ]);
        broken.kind = NodeKind::File { content };
        broken.size = 15_000;
        vec![good.0.clone(), broken]
    });
    f.snapshot(1_700_000_000, "h", &[], nodes);
    // Flip one byte inside the damaged blob's stored form.
    let location = f.repo.locate(&bad_id).unwrap();
    let name = cairn_format::backend::pack_name(&location.pack);
    let mut pack = f.backend.get(&name).unwrap();
    pack[location.offset as usize + 40] ^= 0x55;
    f.backend.overwrite(&name, pack);

    let fs = f.whole_repository(Duration::from_secs(60));
    let broken = lookup_path(&fs, "snapshots/latest/broken").unwrap();
    let handle = fs.open(broken).unwrap();
    assert_eq!(fs.read(handle, 0, 4096).unwrap().as_slice(), &noise(5_000, 3)[..4096]);
    let error = fs.read(handle, 4096, 4096).unwrap_err();
    assert_eq!(error.errno(), libc::EIO);
    let good = lookup_path(&fs, "snapshots/latest/good").unwrap();
    assert!(read_all(&fs, good, 4096) == noise(10_000, 1));
}

#[test]
fn snapshots_made_after_mounting_appear_after_the_ttl() {
    let f = Fixture::new();
    f.snapshot(1_700_000_000, "h", &[], vec![]);
    let fs = f.whole_repository(Duration::from_millis(50));
    let snapshots = lookup_path(&fs, "snapshots").unwrap();
    assert_eq!(list(&fs, snapshots).len(), 4);
    let nodes = f.write(|w| vec![w.file("new", &[Ok(b"fresh".to_vec())]).0]);
    f.snapshot(1_700_000_100, "h2", &[], nodes);
    std::thread::sleep(Duration::from_millis(120));
    assert_eq!(list(&fs, snapshots).len(), 5);
    let file = lookup_path(&fs, "hosts/h2/2023-11-14T22:15:00Z/new").unwrap();
    assert_eq!(read_all(&fs, file, 4096), b"fresh");
}

#[test]
fn one_snapshot_directory_can_be_the_root() {
    let f = Fixture::new();
    let root = f.write(|w| {
        let inner = w.dir("inner", vec![w.file("x", &[Ok(b"x!".to_vec())]).0]);
        w.dir("top", vec![inner])
    });
    let fs =
        CairnFs::new(f.repo.clone(), MountRoot::Directory(root), FsOptions::default()).unwrap();
    assert_eq!(list(&fs, ROOT), [".", "..", "inner"]);
    let x = lookup_path(&fs, "inner/x").unwrap();
    assert_eq!(read_all(&fs, x, 4096), b"x!");
    assert_eq!(lookup_path(&fs, "snapshots"), Err(FsError::NotFound));
}

#[test]
fn trees_load_only_when_browsed() {
    let f = Fixture::new();
    let nodes = f.write(|w| {
        (0..3)
            .map(|d| {
                let files =
                    (0..100).map(|i| w.file(&format!("f{i}"), &[Ok(vec![d, i])]).0).collect();
                w.dir(&format!("d{d}"), files)
            })
            .collect()
    });
    f.snapshot(1_700_000_000, "h", &[], nodes);
    let fs = f.whole_repository(Duration::from_secs(60));
    let d0 = lookup_path(&fs, "snapshots/latest/d0").unwrap();
    let before = fs.inode_count();
    assert!(before < 20, "{before} inodes before listing anything in the snapshot");
    assert_eq!(list(&fs, d0).len(), 102);
    assert_eq!(fs.inode_count(), before + 100, "only d0's entries were added");
    // Looking a file up again, or listing again, allocates nothing.
    lookup_path(&fs, "snapshots/latest/d0/f7").unwrap();
    list(&fs, d0);
    assert_eq!(fs.inode_count(), before + 100);
}

#[test]
fn concurrent_readers_get_their_own_bytes() {
    let f = Fixture::new();
    let (nodes, files) = f.write(|w| {
        let mut nodes = Vec::new();
        let mut files = Vec::new();
        for n in 0..4u8 {
            let chunks: Vec<_> = (0..40).map(|i| Ok(noise(30_000, n * 40 + i))).collect();
            let (node, bytes) = w.file(&format!("f{n}"), &chunks);
            nodes.push(node);
            files.push(bytes);
        }
        (nodes, files)
    });
    f.snapshot(1_700_000_000, "h", &[], nodes);
    let fs = Arc::new(f.whole_repository(Duration::from_secs(60)));
    let threads: Vec<_> = files
        .into_iter()
        .enumerate()
        .map(|(n, expected)| {
            let fs = fs.clone();
            std::thread::spawn(move || {
                let ino = lookup_path(&fs, &format!("snapshots/latest/f{n}")).unwrap();
                assert!(read_all(&fs, ino, 128 * 1024) == expected);
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
}

/// Issue #15: a damaged snapshot object is left out of the mount instead of failing it.
#[test]
fn a_damaged_snapshot_is_left_out_of_the_mount() {
    let f = Fixture::new();
    f.snapshot(1_700_000_000, "web", &[], vec![]);
    f.snapshot(1_700_000_060, "db", &[], vec![]);
    let listed = f.backend.list("snapshots/").unwrap();
    let damaged = &listed[0].name;
    let mut bytes = f.backend.get(damaged).unwrap();
    bytes.extend_from_slice(b"garbage");
    f.backend.overwrite(damaged, bytes);
    let fs = f.whole_repository(Duration::from_secs(60));
    let snapshots = lookup_path(&fs, "snapshots").unwrap();
    assert_eq!(list(&fs, snapshots).len(), 4, "., .., the readable one and latest");
    assert_eq!(list(&fs, lookup_path(&fs, "hosts").unwrap()).len(), 3);
}
