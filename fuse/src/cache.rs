//! Decrypted blobs shared by every request: a cache bounded in bytes in front of the
//! repository, and the prefetch workers that fill it ahead of sequential readers.
//!
//! Invariant: a blob is fetched at most once at a time. A reader that needs a blob a worker is
//! already fetching waits for that fetch instead of starting its own, so prefetching never
//! doubles the work.

use std::sync::Arc;

use cairn_format::{BlobId, Repository};
use crossbeam_channel::Sender;
use quick_cache::Weighter;

/// A blob's verified plaintext.
pub type Blob = Arc<Vec<u8>>;

/// Bytes charged per entry on top of the plaintext (key, pointer, bookkeeping).
const ENTRY_OVERHEAD: u64 = 96;
/// Used only to size the cache's hash tables (the mean chunk is about this big).
const TYPICAL_BLOB: u64 = 256 * 1024;

#[derive(Clone)]
struct ByteWeight;

impl Weighter<BlobId, Blob> for ByteWeight {
    fn weight(&self, _id: &BlobId, blob: &Blob) -> u64 {
        blob.len() as u64 + ENTRY_OVERHEAD
    }
}

/// The repository seen through a byte-bounded cache (quick_cache: CLOCK-Pro eviction, an LRU
/// approximation that a single large scan cannot flush).
pub struct BlobCache {
    repo: Arc<Repository>,
    cache: quick_cache::sync::Cache<BlobId, Blob, ByteWeight>,
    capacity: u64,
}

impl BlobCache {
    pub fn new(repo: Arc<Repository>, capacity: u64) -> Self {
        let items = (capacity / TYPICAL_BLOB).max(16) as usize;
        Self {
            repo,
            cache: quick_cache::sync::Cache::with_weighter(items, capacity, ByteWeight),
            capacity,
        }
    }

    /// The blob's plaintext, from the cache or read, opened and verified once.
    pub fn get(&self, id: &BlobId) -> cairn_format::Result<Blob> {
        self.cache.get_or_insert_with(id, || self.repo.read_blob(id).map(Arc::new))
    }

    /// Whether the blob is cached now (does not count as a use).
    pub fn contains(&self, id: &BlobId) -> bool {
        self.cache.peek(id).is_some()
    }

    pub fn capacity(&self) -> u64 {
        self.capacity
    }
}

/// Requests waiting for a prefetch worker; past this, hints are dropped (readers fetch on
/// demand, so a dropped hint costs speed, never data).
const QUEUE: usize = 4096;

/// Worker threads that load blobs into the cache before readers ask for them.
pub struct Prefetcher {
    jobs: Option<Sender<BlobId>>,
    workers: Vec<std::thread::JoinHandle<()>>,
}

impl Prefetcher {
    /// Starts `workers` threads; they stop when the prefetcher is dropped.
    pub fn start(cache: &Arc<BlobCache>, workers: usize) -> std::io::Result<Self> {
        let (jobs, queue) = crossbeam_channel::bounded::<BlobId>(QUEUE);
        let mut handles = Vec::with_capacity(workers);
        for n in 0..workers.max(1) {
            let queue = queue.clone();
            let cache = cache.clone();
            let handle = std::thread::Builder::new().name(format!("cairn-prefetch-{n}")).spawn(
                move || {
                    for id in queue {
                        if let Err(error) = cache.get(&id) {
                            // The reader that needs the blob reports it, with the file name.
                            tracing::debug!(blob = %id, %error, "prefetch failed");
                        }
                    }
                },
            )?;
            handles.push(handle);
        }
        Ok(Self { jobs: Some(jobs), workers: handles })
    }

    /// Asks for a blob to be loaded soon (a hint: never blocks).
    pub fn request(&self, id: BlobId) {
        // Full or shut down: the reader fetches the blob itself when it gets there.
        if let Some(jobs) = &self.jobs {
            let _ = jobs.try_send(id);
        }
    }
}

impl Drop for Prefetcher {
    /// Stops the workers and waits for them, so no thread still holds the repository (and
    /// its RocksDB handle) when the process exits.
    fn drop(&mut self) {
        self.jobs = None;
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}
