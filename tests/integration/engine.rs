//! The engine as a library: embedding with progress, and failures injected through the
//! backend seam (issue #2).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use cairn::backup::{BackupOptions, ParentChoice, backup};
use cairn::progress::{Observer, Progress};
use cairn_format::backend::{Backend, FaultyBackend, MemoryBackend};
use cairn_format::crypto::KdfParams;
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
        compression_level: None,
        scan_totals: true,
        interrupt: Arc::new(AtomicBool::new(false)),
    }
}

fn init(backend: Arc<dyn Backend>, cache: &std::path::Path) -> Repository {
    let options = InitOptions {
        pack_size: 1 << 20,
        kdf: KdfParams {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        },
        ..InitOptions::default()
    };
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
    assert!(
        message.contains("No space left on device") && message.contains("data/"),
        "{message}"
    );
    assert!(
        memory.list("snapshots/").unwrap().is_empty(),
        "a failed backup wrote a snapshot"
    );
    drop(repo);
    let repo =
        Arc::new(Repository::open(memory.clone(), b"pw", &dir.path().join("cache")).unwrap());
    let progress = Progress::default();
    let outcome = backup(
        &repo,
        options(vec![src]),
        &progress,
        &CountingObserver(AtomicUsize::new(0)),
    )
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
    let outcome = backup(
        &repo,
        opts,
        &Progress::default(),
        &CountingObserver(AtomicUsize::new(0)),
    )
    .unwrap();
    assert!(outcome.id.is_none());
    assert!(outcome.summary.bytes_added >= 3 << 20);
    assert_eq!(memory.list("").unwrap().len(), before);
}
