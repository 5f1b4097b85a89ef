//! Writing blobs: the parallel half of a backup. The caller hands over blobs whose ids it has
//! computed; `BlobWriter` drops the ones the repository already has, compresses and seals the
//! rest on worker threads, fills data and tree packs, uploads finished packs on uploader
//! threads (as many as the backend wants in flight), and writes an index segment every few packs.
//!
//! Ordering (why a killed backup never leaves dangling references): a blob enters an index
//! segment only after its pack is durable, and the local index learns a blob only from a
//! segment that is durable. Blobs in flight are tracked in memory, so each is stored once.
//! Queues are bounded, so memory stays bounded whatever the input size.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded};

use crate::backend::pack_name;
use crate::error::{Error, Result};
use crate::id::BlobId;
use crate::pack::{BlobKind, FinishedPack, PackWriter, SealedBlob};
use crate::repository::Repository;
use crate::segment::{IndexSegment, IndexedPack};

/// How a [`BlobWriter`] works.
#[derive(Clone, Debug)]
pub struct WriterOptions {
    /// zstd level for new blobs unless [`BlobWriter::add_at`] names one; 0 stores them
    /// uncompressed.
    pub compression_level: i32,
    /// Compress-and-seal threads.
    pub workers: usize,
    /// Count what would be written but write nothing.
    pub dry_run: bool,
    /// Write an index segment after this many packs...
    pub segment_every_packs: usize,
    /// ...or when this much time has passed since the last one.
    pub segment_every: Duration,
}

impl WriterOptions {
    /// Defaults for a repository: its compression level and one worker per core.
    pub fn for_repository(repo: &Repository) -> Self {
        Self {
            compression_level: repo.config().compression_level,
            workers: std::thread::available_parallelism().map_or(2, usize::from),
            dry_run: false,
            segment_every_packs: 32,
            segment_every: Duration::from_secs(60),
        }
    }
}

/// What a writer added to the repository.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteStats {
    pub data_blobs: u64,
    pub tree_blobs: u64,
    /// Plaintext bytes of new blobs.
    pub bytes_raw: u64,
    /// Sealed bytes of new blobs.
    pub bytes_stored: u64,
    pub packs: u64,
    pub segments: u64,
}

struct Job {
    kind: BlobKind,
    id: BlobId,
    level: i32,
    data: Vec<u8>,
}

#[derive(Default)]
struct Counters {
    data_blobs: AtomicU64,
    tree_blobs: AtomicU64,
    bytes_raw: AtomicU64,
    bytes_stored: AtomicU64,
    packs: AtomicU64,
    segments: AtomicU64,
}

struct Shared {
    repo: Arc<Repository>,
    options: WriterOptions,
    /// Blobs accepted but not yet in the local index.
    in_flight: Mutex<HashSet<BlobId>>,
    open_packs: [Mutex<PackWriter>; 2],
    /// Uploaded packs not yet in a segment, and when the last segment was written.
    unindexed: Mutex<(Vec<IndexedPack>, Instant)>,
    error: Mutex<Option<Error>>,
    counters: Counters,
}

/// Stores blobs in packs with a pool of worker threads.
pub struct BlobWriter {
    shared: Arc<Shared>,
    jobs: Option<Sender<Job>>,
    packs: Option<Sender<FinishedPack>>,
    workers: Vec<JoinHandle<()>>,
    uploaders: Vec<JoinHandle<()>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl BlobWriter {
    /// Starts the worker and uploader threads.
    pub fn new(repo: Arc<Repository>, options: WriterOptions) -> Self {
        let workers = options.workers.max(1);
        let shared = Arc::new(Shared {
            repo,
            options,
            in_flight: Mutex::new(HashSet::new()),
            open_packs: [Mutex::default(), Mutex::default()],
            unindexed: Mutex::new((Vec::new(), Instant::now())),
            error: Mutex::new(None),
            counters: Counters::default(),
        });
        let (job_tx, job_rx) = bounded::<Job>(workers * 2);
        let uploaders = shared.repo.backend().parallel_uploads().max(1);
        let (pack_tx, pack_rx) = bounded::<FinishedPack>(uploaders + 1);
        let worker_handles = (0..workers)
            .map(|_| {
                let (shared, jobs, packs) = (shared.clone(), job_rx.clone(), pack_tx.clone());
                std::thread::spawn(move || work(&shared, &jobs, &packs))
            })
            .collect();
        let uploaders = (0..uploaders)
            .map(|_| {
                let (shared, packs) = (shared.clone(), pack_rx.clone());
                std::thread::spawn(move || upload(&shared, &packs))
            })
            .collect();
        Self {
            shared,
            jobs: Some(job_tx),
            packs: Some(pack_tx),
            workers: worker_handles,
            uploaders,
        }
    }

    /// Queues a blob unless the repository has it or it is already queued; `data` is only
    /// called for a new blob, so known chunks are never copied. Returns whether it was new.
    /// Fails with the first error any thread met.
    pub fn add(&self, kind: BlobKind, id: BlobId, data: impl FnOnce() -> Vec<u8>) -> Result<bool> {
        self.add_at(kind, id, self.shared.options.compression_level, data)
    }

    /// [`BlobWriter::add`], compressing a new blob at zstd `level` instead of the default.
    pub fn add_at(
        &self,
        kind: BlobKind,
        id: BlobId,
        level: i32,
        data: impl FnOnce() -> Vec<u8>,
    ) -> Result<bool> {
        self.check_error()?;
        if !self.claim(id)? {
            return Ok(false);
        }
        let counter = match kind {
            BlobKind::Data => &self.shared.counters.data_blobs,
            BlobKind::Tree => &self.shared.counters.tree_blobs,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let data = data();
        self.shared.counters.bytes_raw.fetch_add(data.len() as u64, Ordering::Relaxed);
        let sender = self.jobs.as_ref().expect("add after finish");
        let job = Job { kind, id, level, data };
        if sender.send(job).is_err() {
            self.check_error()?;
        }
        Ok(true)
    }

    /// True if the blob is stored or queued (without queueing anything).
    pub fn has(&self, id: &BlobId) -> Result<bool> {
        Ok(lock(&self.shared.in_flight).contains(id)
            || self.shared.repo.index().lookup_intact(id)?.is_some())
    }

    fn claim(&self, id: BlobId) -> Result<bool> {
        let mut in_flight = lock(&self.shared.in_flight);
        if in_flight.contains(&id) || self.shared.repo.index().lookup_intact(&id)?.is_some() {
            return Ok(false);
        }
        in_flight.insert(id);
        Ok(true)
    }

    fn check_error(&self) -> Result<()> {
        match lock(&self.shared.error).take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Counters so far (blobs are counted when accepted, bytes stored when sealed).
    pub fn stats(&self) -> WriteStats {
        let c = &self.shared.counters;
        WriteStats {
            data_blobs: c.data_blobs.load(Ordering::Relaxed),
            tree_blobs: c.tree_blobs.load(Ordering::Relaxed),
            bytes_raw: c.bytes_raw.load(Ordering::Relaxed),
            bytes_stored: c.bytes_stored.load(Ordering::Relaxed),
            packs: c.packs.load(Ordering::Relaxed),
            segments: c.segments.load(Ordering::Relaxed),
        }
    }

    /// Seals the remaining blobs, uploads the last packs and writes the last segment. After
    /// this returns `Ok`, every accepted blob is durable and indexed.
    pub fn finish(mut self) -> Result<WriteStats> {
        self.jobs.take();
        for handle in self.workers.drain(..) {
            let _ = handle.join();
        }
        let packs = self.packs.take().expect("finish once");
        for slot in &self.shared.open_packs {
            let writer = std::mem::take(&mut *lock(slot));
            if !writer.is_empty() {
                let _ = packs.send(writer.finish(self.shared.repo.key()));
            }
        }
        drop(packs);
        for handle in self.uploaders.drain(..) {
            let _ = handle.join();
        }
        self.check_error()?;
        write_segment(&self.shared)?;
        Ok(self.stats())
    }
}

impl Drop for BlobWriter {
    /// A writer dropped without `finish` (an error path) still stops its threads.
    fn drop(&mut self) {
        self.jobs.take();
        self.packs.take();
        for handle in self.workers.drain(..) {
            let _ = handle.join();
        }
        for handle in self.uploaders.drain(..) {
            let _ = handle.join();
        }
    }
}

fn record_error(shared: &Shared, error: Error) {
    lock(&shared.error).get_or_insert(error);
}

fn work(shared: &Shared, jobs: &Receiver<Job>, packs: &Sender<FinishedPack>) {
    let key = shared.repo.key();
    let pack_size = shared.repo.config().pack_size as usize;
    for job in jobs {
        let blob = SealedBlob::new(key, job.kind, job.id, &job.data, job.level);
        shared.counters.bytes_stored.fetch_add(blob.bytes.len() as u64, Ordering::Relaxed);
        let slot = &shared.open_packs[job.kind as usize];
        let full = {
            let mut writer = lock(slot);
            writer.push(blob);
            (writer.size() >= pack_size).then(|| std::mem::take(&mut *writer))
        };
        if let Some(writer) = full
            && packs.send(writer.finish(key)).is_err()
        {
            return;
        }
    }
}

fn upload(shared: &Shared, packs: &Receiver<FinishedPack>) {
    for pack in packs {
        if lock(&shared.error).is_some() {
            continue; // drain so workers never block on a dead uploader
        }
        if let Err(e) = store_pack(shared, pack) {
            record_error(shared, e);
        }
    }
}

fn store_pack(shared: &Shared, pack: FinishedPack) -> Result<()> {
    let name = pack_name(&pack.id);
    if !shared.options.dry_run {
        shared
            .repo
            .backend()
            .put(&name, &pack.bytes)
            .map_err(|e| Error::backend("write", name, e))?;
    }
    shared.counters.packs.fetch_add(1, Ordering::Relaxed);
    if !shared.options.dry_run {
        shared.repo.keep_tree_copies(&pack)?;
    }
    let due = {
        let mut unindexed = lock(&shared.unindexed);
        unindexed.0.push(IndexedPack {
            id: pack.id,
            size: pack.bytes.len() as u64,
            blobs: pack.entries,
        });
        unindexed.0.len() >= shared.options.segment_every_packs
            || unindexed.1.elapsed() >= shared.options.segment_every
    };
    if due { write_segment(shared) } else { Ok(()) }
}

/// Writes the uploaded-but-unindexed packs as one segment, then forgets their blobs from the
/// in-flight set (the local index answers for them from now on).
fn write_segment(shared: &Shared) -> Result<()> {
    let packs = {
        let mut unindexed = lock(&shared.unindexed);
        unindexed.1 = Instant::now();
        std::mem::take(&mut unindexed.0)
    };
    if packs.is_empty() || shared.options.dry_run {
        return Ok(());
    }
    let segment = IndexSegment { packs, ..IndexSegment::default() };
    shared.repo.save_segment(&segment)?;
    shared.counters.segments.fetch_add(1, Ordering::Relaxed);
    let mut in_flight = lock(&shared.in_flight);
    for blob in segment.packs.iter().flat_map(|p| &p.blobs) {
        in_flight.remove(&blob.id);
    }
    Ok(())
}
