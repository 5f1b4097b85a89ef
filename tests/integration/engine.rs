//! The engine as a library: embedding with progress, and failures injected through the
//! backend seam (issue #2).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use cairn::backup::{BackupOptions, ParentChoice, backup};
use cairn::check::{CheckOptions, check};
use cairn::copy::copy;
use cairn::progress::{Observer, Progress};
use cairn::prune::{PruneOptions, prune};
use cairn::repair::{SnapshotRepairOptions, repair_index, repair_snapshots};
use cairn::restore::{RestoreOptions, restore};
use cairn_format::backend::{Backend, FaultyBackend, MemoryBackend};
use cairn_format::{InitOptions, Repository};

use crate::util::noise;

struct CountingObserver(AtomicUsize);

impl Observer for CountingObserver {
    fn warning(&self, _: &std::path::Path, _: &str) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

fn options(paths: Vec<PathBuf>) -> BackupOptions {
    BackupOptions {
        paths,
        stdin: None,
        tags: vec![],
        host: "test".into(),
        excludes: vec![],
        exclude_caches: false,
        exclude_if_present: vec![],
        one_file_system: false,
        read_special: false,
        changed_ranges: None,
        parent: ParentChoice::Auto,
        time: None,
        dry_run: false,
        skip_if_unchanged: false,
        compression_level: None,
        scan_totals: true,
        interrupt: Arc::new(AtomicBool::new(false)),
    }
}

fn init(backend: Arc<dyn Backend>, cache: &std::path::Path) -> Repository {
    let options = InitOptions { pack_size: 1 << 20, ..cairn_format::testing::cheap_options() };
    Repository::init(backend, b"pw", &options, cache).unwrap()
}

#[test]
fn full_disk_fails_cleanly_and_a_retry_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("f"), noise(3, 8 << 20)).unwrap();
    let memory: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    drop(init(memory.clone(), &dir.path().join("cache")));
    let full: Arc<dyn Backend> = Arc::new(FaultyBackend::fail_after_puts(memory.clone(), 3));
    let repo = Arc::new(Repository::open(full, b"pw", &dir.path().join("cache")).unwrap());
    let error = backup(
        &repo,
        options(vec![src.clone()]),
        &Progress::default(),
        &CountingObserver(AtomicUsize::new(0)),
    )
    .unwrap_err();
    let message = format!("{error:#}");
    assert!(message.contains("No space left on device") && message.contains("data/"), "{message}");
    assert!(memory.list("snapshots/").unwrap().is_empty(), "a failed backup wrote a snapshot");
    drop(repo);
    let repo =
        Arc::new(Repository::open(memory.clone(), b"pw", &dir.path().join("cache")).unwrap());
    let progress = Progress::default();
    let outcome =
        backup(&repo, options(vec![src]), &progress, &CountingObserver(AtomicUsize::new(0)))
            .unwrap();
    assert!(outcome.id.is_some());
    assert!(
        outcome.summary.bytes_added < 8 << 20,
        "packs written before the failure were not reused"
    );
    assert_eq!(progress.sample().files_done, 1);
}

#[test]
fn dry_run_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("f"), noise(4, 3 << 20)).unwrap();
    let memory: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    let repo = Arc::new(init(memory.clone(), &dir.path().join("cache")));
    let before = memory.list("").unwrap().len();
    let mut opts = options(vec![src]);
    opts.dry_run = true;
    let outcome =
        backup(&repo, opts, &Progress::default(), &CountingObserver(AtomicUsize::new(0))).unwrap();
    assert!(outcome.id.is_none());
    assert!(outcome.summary.bytes_added >= 3 << 20);
    assert_eq!(memory.list("").unwrap().len(), before);
}

/// A memory backend that calls itself remote and counts the reads of snapshots and packs.
struct CountingRemote {
    inner: MemoryBackend,
    snapshot_gets: AtomicUsize,
    /// Ranged reads (one blob or a run of blobs).
    pack_reads: AtomicUsize,
    /// Whole-pack reads.
    pack_gets: AtomicUsize,
}

impl Backend for CountingRemote {
    fn location(&self) -> String {
        "counting".into()
    }
    fn create(&self) -> std::io::Result<()> {
        self.inner.create()
    }
    fn put(&self, name: &str, data: &[u8]) -> std::io::Result<()> {
        self.inner.put(name, data)
    }
    fn get(&self, name: &str) -> std::io::Result<Vec<u8>> {
        if name.starts_with("snapshots/") {
            self.snapshot_gets.fetch_add(1, Ordering::Relaxed);
        }
        if name.starts_with("data/") {
            self.pack_gets.fetch_add(1, Ordering::Relaxed);
        }
        self.inner.get(name)
    }
    fn get_range_into(
        &self,
        name: &str,
        offset: u64,
        length: u64,
        buffer: &mut Vec<u8>,
    ) -> std::io::Result<()> {
        self.pack_reads.fetch_add(1, Ordering::Relaxed);
        self.inner.get_range_into(name, offset, length, buffer)
    }
    fn list(&self, prefix: &str) -> std::io::Result<Vec<cairn_format::backend::ObjectInfo>> {
        self.inner.list(prefix)
    }
    fn stat(&self, name: &str) -> std::io::Result<Option<u64>> {
        self.inner.stat(name)
    }
    fn delete(&self, name: &str) -> std::io::Result<()> {
        self.inner.delete(name)
    }
    fn is_remote(&self) -> bool {
        true
    }
}

/// Lists every snapshot and loads every tree they reference.
fn browse_everything(repo: &Repository) -> usize {
    fn walk(repo: &Repository, id: &cairn_format::BlobId) -> usize {
        let tree = repo.load_tree(id).unwrap();
        1 + tree
            .nodes
            .iter()
            .map(|node| match &node.kind {
                cairn_format::tree::NodeKind::Directory { subtree } => walk(repo, subtree),
                _ => 0,
            })
            .sum::<usize>()
    }
    repo.snapshots().unwrap().readable.iter().map(|(_, snapshot)| walk(repo, &snapshot.tree)).sum()
}

#[test]
fn remote_snapshots_and_trees_are_read_once_and_the_cache_is_disposable() {
    // Issue #9: `snapshots`, `ls` and `mount` must not download the same objects again.
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    for d in ["a/b/c", "d/e", "f"] {
        std::fs::create_dir_all(src.join(d)).unwrap();
        std::fs::write(src.join(d).join("file"), noise(d.len() as u64, 5000)).unwrap();
    }
    let remote = Arc::new(CountingRemote {
        inner: MemoryBackend::new(),
        snapshot_gets: AtomicUsize::new(0),
        pack_reads: AtomicUsize::new(0),
        pack_gets: AtomicUsize::new(0),
    });
    let backend: Arc<dyn Backend> = remote.clone();
    let cache = dir.path().join("cache");
    let repo = Arc::new(init(backend.clone(), &cache));
    let observer = CountingObserver(AtomicUsize::new(0));
    for _ in 0..2 {
        backup(&repo, options(vec![src.clone()]), &Progress::default(), &observer).unwrap();
    }
    drop(repo);

    let reads = || {
        (
            remote.snapshot_gets.swap(0, Ordering::Relaxed),
            remote.pack_reads.swap(0, Ordering::Relaxed),
        )
    };
    let open = |cache: &std::path::Path| Repository::open(backend.clone(), b"pw", cache).unwrap();
    let whole_packs = || remote.pack_gets.swap(0, Ordering::Relaxed);

    // The backups kept copies of the trees they uploaded (and the second read the first
    // snapshot as its parent): listing everything reads one snapshot and no pack.
    reads();
    let trees = browse_everything(&open(&cache));
    assert!(trees >= 14, "{trees} trees");
    assert_eq!((reads(), whole_packs()), ((1, 0), 0));

    // A fresh cache: each tree pack is read whole, once (one per backup here), and nothing
    // again the second time.
    std::fs::remove_dir_all(&cache).unwrap();
    assert_eq!(browse_everything(&open(&cache)), trees);
    assert_eq!(reads(), (2, 0), "snapshot gets, ranged pack reads");
    let packs = whole_packs();
    assert!((1..=2).contains(&packs), "{packs} whole-pack reads for {trees} trees");
    assert_eq!(browse_everything(&open(&cache)), trees);
    assert_eq!((reads(), whole_packs()), ((0, 0), 0), "the second listing downloaded again");

    // Without the copies every snapshot and tree is read from the repository each time.
    let mut uncached = open(&cache);
    uncached.set_object_cache(false);
    browse_everything(&uncached);
    let (snapshots, ranged) = reads();
    assert!(snapshots == 2 && ranged >= trees, "{snapshots} snapshots, {ranged} pack reads");
}

#[test]
fn copy_reads_the_data_it_transfers_pack_by_pack() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("big"), noise(31, 6 << 20)).unwrap();
    let remote = Arc::new(CountingRemote {
        inner: MemoryBackend::new(),
        snapshot_gets: AtomicUsize::new(0),
        pack_reads: AtomicUsize::new(0),
        pack_gets: AtomicUsize::new(0),
    });
    let source = Arc::new(init(remote.clone(), &dir.path().join("cache")));
    let observer = CountingObserver(AtomicUsize::new(0));
    backup(&source, options(vec![src]), &Progress::default(), &observer).unwrap();
    let twin_options = InitOptions {
        chunker: source.config().chunker,
        image_chunking: source.config().image_chunking,
        pack_size: 1 << 20,
        ids_from: Some(source.key().clone()),
        ..cairn_format::testing::cheap_options()
    };
    let twin_backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    let twin = Arc::new(
        Repository::init(twin_backend, b"pw2", &twin_options, &dir.path().join("cache")).unwrap(),
    );
    let data_packs = source
        .index()
        .packs()
        .unwrap()
        .iter()
        .filter(|p| p.kind == cairn_format::pack::BlobKind::Data)
        .count();
    remote.pack_reads.store(0, Ordering::Relaxed);
    let snapshots = source.snapshots().unwrap().readable;
    let summary = cairn::copy::copy(
        &source,
        &twin,
        &snapshots,
        false,
        &Progress::default(),
        &AtomicBool::new(false),
    )
    .unwrap();
    assert!(!summary.rewritten);
    assert!(summary.bytes_copied >= 6 << 20);
    let blobs = summary.blobs_copied as usize;
    let reads = remote.pack_reads.load(Ordering::Relaxed);
    assert!(
        blobs > data_packs && reads <= data_packs,
        "{reads} ranged reads for {blobs} blobs in {data_packs} data packs"
    );
    assert_eq!(twin.snapshots().unwrap().readable.len(), 1);

    // Into an unrelated repository every data blob is read, still pack by pack.
    let unrelated = Arc::new(init(Arc::new(MemoryBackend::new()), &dir.path().join("cache")));
    remote.pack_reads.store(0, Ordering::Relaxed);
    let summary = cairn::copy::copy(
        &source,
        &unrelated,
        &snapshots,
        false,
        &Progress::default(),
        &AtomicBool::new(false),
    )
    .unwrap();
    assert!(summary.rewritten);
    let reads = remote.pack_reads.load(Ordering::Relaxed);
    assert!(reads <= data_packs, "{reads} ranged reads, {data_packs} data packs");
    let (_, copied) = &unrelated.snapshots().unwrap().readable[0];
    assert_ne!(copied.tree, snapshots[0].1.tree, "ids were rewritten");
}

/// A memory backend that asks for several uploads in flight and records how many overlapped.
struct ParallelProbe {
    inner: MemoryBackend,
    running: AtomicUsize,
    most: AtomicUsize,
}

impl Backend for ParallelProbe {
    fn location(&self) -> String {
        "probe".into()
    }
    fn create(&self) -> std::io::Result<()> {
        self.inner.create()
    }
    fn put(&self, name: &str, data: &[u8]) -> std::io::Result<()> {
        if name.starts_with("data/") {
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(100)); // a slow network
            self.running.fetch_sub(1, Ordering::SeqCst);
        }
        self.inner.put(name, data)
    }
    fn get(&self, name: &str) -> std::io::Result<Vec<u8>> {
        self.inner.get(name)
    }
    fn get_range_into(
        &self,
        name: &str,
        offset: u64,
        length: u64,
        buffer: &mut Vec<u8>,
    ) -> std::io::Result<()> {
        self.inner.get_range_into(name, offset, length, buffer)
    }
    fn list(&self, prefix: &str) -> std::io::Result<Vec<cairn_format::backend::ObjectInfo>> {
        self.inner.list(prefix)
    }
    fn stat(&self, name: &str) -> std::io::Result<Option<u64>> {
        self.inner.stat(name)
    }
    fn delete(&self, name: &str) -> std::io::Result<()> {
        self.inner.delete(name)
    }
    fn parallel_uploads(&self) -> usize {
        3
    }
}

#[test]
fn packs_upload_in_parallel_when_the_backend_asks_for_it() {
    // Issue #9: `--connections N` is how many uploads a remote backend asks for.
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("big"), noise(51, 8 << 20)).unwrap();
    let probe = Arc::new(ParallelProbe {
        inner: MemoryBackend::new(),
        running: AtomicUsize::new(0),
        most: AtomicUsize::new(0),
    });
    let repo = Arc::new(init(probe.clone(), &dir.path().join("cache")));
    let observer = CountingObserver(AtomicUsize::new(0));
    backup(&repo, options(vec![src]), &Progress::default(), &observer).unwrap();
    let most = probe.most.load(Ordering::SeqCst);
    assert!((2..=3).contains(&most), "{most} pack uploads at once");
}

/// Records the name of every span opened.
struct SpanNames(Arc<std::sync::Mutex<Vec<&'static str>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for SpanNames {
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        _: &tracing::span::Id,
        _: tracing_subscriber::layer::Context<'_, S>,
    ) {
        self.0.lock().unwrap().push(attrs.metadata().name());
    }
}

/// Issue #16: every public operation runs in a span named after it (STYLE.md rule 15), so a
/// log line says which operation it came from.
#[test]
fn each_engine_operation_runs_in_its_own_span() {
    use tracing_subscriber::layer::SubscriberExt;
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("f"), noise(5, 1 << 20)).unwrap();
    let repo = Arc::new(init(Arc::new(MemoryBackend::new()), &dir.path().join("cache")));
    let target = Arc::new(init(Arc::new(MemoryBackend::new()), &dir.path().join("cache2")));
    let names = Arc::new(std::sync::Mutex::new(Vec::new()));
    let subscriber = tracing_subscriber::registry().with(SpanNames(names.clone()));
    let (progress, observer) = (Progress::default(), CountingObserver(AtomicUsize::new(0)));
    tracing::subscriber::with_default(subscriber, || {
        let outcome = backup(&repo, options(vec![src.clone()]), &progress, &observer).unwrap();
        let restore_options =
            RestoreOptions { target: dir.path().join("restored"), ..RestoreOptions::default() };
        restore(&repo, &outcome.snapshot, &restore_options, &progress, &observer).unwrap();
        let snapshots = vec![(outcome.id.unwrap(), outcome.snapshot.clone())];
        let interrupt = AtomicBool::new(false);
        copy(&repo, &target, &snapshots, false, &progress, &interrupt).unwrap();
        let repair = SnapshotRepairOptions::default();
        repair_snapshots(&repo, &repair, &observer, &progress).unwrap();
        repair_index(&repo, &progress).unwrap();
        check(&repo, &CheckOptions::default(), &progress).unwrap();
        prune(&repo, &PruneOptions::default(), "test", &progress).unwrap();
    });
    let names = names.lock().unwrap();
    for operation in
        ["backup", "restore", "copy", "repair_snapshots", "repair_index", "check", "prune"]
    {
        assert!(names.contains(&operation), "no {operation} span in {names:?}");
    }
}

/// Issue #17: the counters a progress line shows count. A backup's file total is the
/// summary's (symlinks and directories are not files), and a restore's file counter reaches
/// the number of files restored, empty and all-zero files included.
#[test]
fn progress_counters_agree_with_the_summaries() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("data"), noise(9, 3 << 20)).unwrap();
    std::fs::write(src.join("sub/zeros"), vec![0; 1 << 20]).unwrap();
    std::fs::write(src.join("empty"), b"").unwrap();
    std::os::unix::fs::symlink("data", src.join("link")).unwrap();
    let repo = Arc::new(init(Arc::new(MemoryBackend::new()), &dir.path().join("cache")));
    let observer = CountingObserver(AtomicUsize::new(0));
    let progress = Progress::default();
    let outcome = backup(&repo, options(vec![src]), &progress, &observer).unwrap();
    let sample = progress.sample();
    assert_eq!(outcome.summary.total_files_processed, 3);
    assert_eq!(sample.files_total, 3, "the scan counts files only");
    assert_eq!(sample.files_done, 3);
    let restored = Progress::default();
    let options =
        RestoreOptions { target: dir.path().join("restored"), ..RestoreOptions::default() };
    let summary = restore(&repo, &outcome.snapshot, &options, &restored, &observer).unwrap();
    let sample = restored.sample();
    assert_eq!(summary.files_restored, 3);
    assert_eq!((sample.files_done, sample.files_total), (3, 3));
    assert_eq!(sample.bytes_done, sample.bytes_total);
}
