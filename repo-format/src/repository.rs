//! The repository facade: unlocks a repository with a password, keeps the local index in step
//! with the index segments, and reads and writes every kind of object. Callers never see
//! object names or sealing; they deal in ids and decoded structures.

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::backend::{Backend, Leftover, id_part, pack_name};
use crate::chunker::{Chunker, ChunkerParams};

use crate::config::{Config, ImageChunking};
use crate::crypto::{KdfParams, MasterKey};
use crate::error::{Error, Result};
use crate::id::{BlobId, IndexId, KeyId, LockId, PackId, RepositoryId, SnapshotId, random_bytes};
use crate::index::{BlobLocation, LocalIndex};
use crate::key::KeyFile;
use crate::lock::Lock;
use crate::pack::{self, BlobKind, PackEntry, TRAILER_LEN};
use crate::segment::{IndexSegment, IndexedPack};
use crate::snapshot::Snapshot;
use crate::tree::Tree;

/// The index segments of a repository, as [`Repository::load_segments`] found them.
pub struct Segments {
    pub listed: Vec<IndexId>,
    pub current: Vec<(IndexId, IndexSegment)>,
    pub unreadable: Vec<(IndexId, Error)>,
}

/// The packs in storage, as [`Repository::list_packs`] found them.
#[derive(Debug, Default)]
pub struct PackListing {
    pub packs: Vec<(PackId, u64)>,
    /// Names of objects among the packs whose name is not a pack id.
    pub strays: Vec<String>,
}

/// The snapshots of a repository, as [`Repository::snapshots`] found them.
#[derive(Debug, Default)]
pub struct SnapshotListing {
    /// Oldest first.
    pub readable: Vec<(SnapshotId, Snapshot)>,
    /// Objects that exist but do not open, with why: damaged ([`Error::is_damage`]) or
    /// written by a newer cairn.
    pub unreadable: Vec<(SnapshotId, Error)>,
}

/// Choices made once, at `init`.
#[derive(Clone, Debug)]
pub struct InitOptions {
    pub chunker: ChunkerParams,
    pub image_chunking: ImageChunking,
    pub pack_size: u32,
    pub compression_level: i32,
    pub image_compression_level: i32,
    pub kdf: KdfParams,
    pub hostname: String,
    pub username: String,
    pub now_ns: i64,
    /// Take the blob-id and chunker keys from this repository's key (its chunker parameters
    /// come through `chunker` and `image_chunking`), so snapshots copy between the two
    /// without rewriting and deduplicate.
    pub ids_from: Option<MasterKey>,
}

impl Default for InitOptions {
    fn default() -> Self {
        Self {
            chunker: ChunkerParams::default(),
            image_chunking: ImageChunking::default(),
            pack_size: 16 * 1024 * 1024,
            compression_level: 2,
            image_compression_level: 1,
            kdf: KdfParams::default(),
            hostname: String::new(),
            username: String::new(),
            now_ns: 0,
            ids_from: None,
        }
    }
}

/// An open, unlocked repository.
pub struct Repository {
    backend: Arc<dyn Backend>,
    key: MasterKey,
    key_id: KeyId,
    config: Config,
    chunker: Chunker,
    image_chunker: Chunker,
    index: LocalIndex,
    /// Keep copies of remote snapshots and tree blobs in the local index (they never change
    /// under their name), so listing and browsing do not download them again.
    object_cache: bool,
    /// Held by the one thread rebuilding a damaged local index ([`Repository::healing`]).
    heal: Mutex<()>,
    /// Twice the number of rebuilds of the local index in this process, plus one while one
    /// runs.
    heals: AtomicU64,
}

impl std::fmt::Debug for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Repository({})", self.backend.location())
    }
}

/// The error for a failed read of a pack range: one that ends early means the pack is shorter
/// than the index says (truncated on storage), which is damage with a remedy, not an I/O error.
fn pack_read_error(
    pack: &PackId,
    offset: u64,
    length: u64,
) -> impl FnOnce(std::io::Error) -> Error {
    let pack = *pack;
    move |e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => Error::corrupt(
            "pack",
            pack.to_hex(),
            format!(
                "shorter than the index says ({e}; {length} bytes wanted at offset {offset}): \
                 `cairn check` names what this costs, `cairn repair index` then re-indexes what \
                 is left and `cairn repair snapshots` saves the rest"
            ),
        ),
        _ => backend_error("read", &pack_name(&pack))(e),
    }
}

fn backend_error<'a>(op: &'static str, name: &'a str) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::ObjectNotFound { name: name.to_string() }
        } else {
            Error::backend(op, name, e)
        }
    }
}

impl Repository {
    /// Creates a new repository. The key file is written before `config`, so a location with a
    /// `config` always has a key that opens it.
    pub fn init(
        backend: Arc<dyn Backend>,
        password: &[u8],
        options: &InitOptions,
        cache_root: &Path,
    ) -> Result<Self> {
        let location = backend.location();
        if backend.stat("config").map_err(backend_error("stat", "config"))?.is_some() {
            return Err(Error::RepositoryExists { location });
        }
        let config = Config {
            id: RepositoryId(random_bytes()),
            chunker: options.chunker,
            pack_size: options.pack_size,
            compression_level: options.compression_level,
            created_ns: options.now_ns,
            image_chunking: options.image_chunking,
            image_compression_level: options.image_compression_level,
        };
        config.validate()?;
        backend.create().map_err(|e| Error::backend("create", location.clone(), e))?;
        let key =
            options.ids_from.as_ref().map_or_else(MasterKey::generate, MasterKey::sharing_ids_with);
        let key_file = KeyFile::create(
            &key,
            password,
            options.kdf,
            options.hostname.clone(),
            options.username.clone(),
            options.now_ns,
        )?;
        let (key_id, bytes) = key_file.encode();
        put(&*backend, &format!("keys/{key_id}"), &bytes)?;
        put(&*backend, "config", &config.seal(&key))?;
        Self::assemble(backend, key, key_id, config, cache_root)
    }

    /// Opens an existing repository with `password`.
    pub fn open(backend: Arc<dyn Backend>, password: &[u8], cache_root: &Path) -> Result<Self> {
        let repo = Self::open_unsynced(backend, password, cache_root)?;
        repo.sync_index()?;
        Ok(repo)
    }

    /// Opens the repository without reading new index segments, for `check` and `repair`,
    /// which must keep going when a segment is damaged ([`Repository::sync_index_tolerant`]).
    pub fn open_unsynced(
        backend: Arc<dyn Backend>,
        password: &[u8],
        cache_root: &Path,
    ) -> Result<Self> {
        let location = backend.location();
        let sealed_config = match backend.get("config") {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::RepositoryNotFound { location });
            }
            Err(e) => return Err(Error::backend("get", "config", e)),
        };
        let (key, key_id) = unlock(&*backend, password)?;
        let config = Config::open(&key, &sealed_config)?;
        Self::assemble(backend, key, key_id, config, cache_root)
    }

    fn assemble(
        backend: Arc<dyn Backend>,
        key: MasterKey,
        key_id: KeyId,
        config: Config,
        cache_root: &Path,
    ) -> Result<Self> {
        let chunker = Chunker::new(config.chunker, key.chunker_key())?;
        let image_chunker = Chunker::new(config.image_chunking.chunker, key.chunker_key())?;
        let dir = cache_root.join(config.id.to_hex());
        std::fs::create_dir_all(&dir).map_err(|e| Error::Index {
            path: dir.clone(),
            reason: format!("cannot create cache directory: {e}"),
        })?;
        let index = LocalIndex::open_shared_or_private(&dir.join("index"))?;
        let object_cache = backend.is_remote();
        Ok(Self {
            backend,
            key,
            key_id,
            config,
            chunker,
            image_chunker,
            index,
            object_cache,
            heal: Mutex::new(()),
            heals: AtomicU64::new(0),
        })
    }

    /// Turns the local copies of remote snapshots and trees on or off (on for remote
    /// backends by default; `--no-cache`).
    pub fn set_object_cache(&mut self, on: bool) {
        self.object_cache = on;
    }

    /// The storage itself, for the format crate only: callers see ids, never object names.
    pub(crate) fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }
    pub fn config(&self) -> &Config {
        &self.config
    }
    pub fn key(&self) -> &MasterKey {
        &self.key
    }
    /// The chunker for ordinary files.
    pub fn chunker(&self) -> &Chunker {
        &self.chunker
    }
    /// The chunker for a file of `size` bytes, or for a stream (`None`): the image profile
    /// from `config.image_chunking.from_size` on and for streams, else the file profile.
    pub fn chunker_for(&self, size: Option<u64>) -> &Chunker {
        if self.uses_image_profile(size) { &self.image_chunker } else { &self.chunker }
    }
    /// The default zstd level for data of a file of `size` bytes, or of a stream (`None`),
    /// chosen as [`Repository::chunker_for`] chooses the chunker.
    pub fn compression_for(&self, size: Option<u64>) -> i32 {
        if self.uses_image_profile(size) {
            self.config.image_compression_level
        } else {
            self.config.compression_level
        }
    }
    fn uses_image_profile(&self, size: Option<u64>) -> bool {
        size.is_none_or(|size| size >= self.config.image_chunking.from_size)
    }
    pub fn index(&self) -> &LocalIndex {
        &self.index
    }
    /// The key file this session was unlocked with.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }
    pub fn location(&self) -> String {
        self.backend.location()
    }

    /// Brings the local index in line with `index/`: ingests new segments, and rebuilds from
    /// scratch if a segment it had is gone (another client replaced it). Returns how many
    /// segments were read.
    pub fn sync_index(&self) -> Result<usize> {
        let (read, mut unreadable) = self.healing(|| self.ingest_segments())?;
        match unreadable.pop() {
            Some((id, error)) => {
                Err(Error::SegmentUnreadable { id: id.to_hex(), reason: error.to_string() })
            }
            None => Ok(read),
        }
    }

    /// [`Repository::sync_index`] that ingests every readable segment and returns the others
    /// with their errors instead of stopping at the first.
    pub fn sync_index_tolerant(&self) -> Result<(usize, Vec<(IndexId, Error)>)> {
        self.healing(|| self.ingest_segments())
    }

    /// Runs a local-index operation; when the local index turns out to be damaged (a cache
    /// file flipped on disk), rebuilds it from the repository's segments and runs it again.
    /// `heals` works as a sequence lock, so the hot path is two atomic loads: it is odd while
    /// a rebuild runs, and an operation that overlapped one (it may have seen the database
    /// half filled) waits for it and runs again. Threads that hit the damage together rebuild
    /// once.
    fn healing<T>(&self, op: impl Fn() -> Result<T>) -> Result<T> {
        let before = self.heals.load(Ordering::Acquire);
        let result = op();
        let damaged = matches!(result, Err(Error::IndexDamaged { .. }));
        if !damaged && before.is_multiple_of(2) && self.heals.load(Ordering::Acquire) == before {
            return result;
        }
        let _one_rebuild = self.heal.lock().unwrap_or_else(PoisonError::into_inner);
        if damaged && self.heals.load(Ordering::Acquire) == before {
            if let Err(Error::IndexDamaged { path, reason }) = &result {
                tracing::warn!(path = %path.display(), %reason, "the local index is damaged; rebuilding it from the repository");
            }
            self.heals.fetch_add(1, Ordering::AcqRel);
            let rebuilt = self.index.rebuild().and_then(|()| self.ingest_segments());
            self.heals.fetch_add(1, Ordering::AcqRel);
            rebuilt?;
        }
        op()
    }

    fn ingest_segments(&self) -> Result<(usize, Vec<(IndexId, Error)>)> {
        let listed: HashSet<IndexId> = self.list_ids("index/")?;
        let mut records = self.index.segment_records()?;
        if !records.iter().all(|(id, _)| listed.contains(id)) {
            tracing::info!(
                "index segments were removed from the repository; rebuilding local index"
            );
            self.index.clear()?;
            records.clear();
        }
        let known: HashSet<IndexId> = records.iter().map(|(id, _)| *id).collect();
        let mut unreadable = Vec::new();
        let mut loaded = Vec::new();
        for id in listed.difference(&known) {
            match self.load_segment(id) {
                Ok(segment) => loaded.push((*id, segment)),
                Err(error) => unreadable.push((*id, error)),
            }
        }
        let superseded: HashSet<IndexId> = records
            .iter()
            .flat_map(|(_, s)| s.iter().copied())
            .chain(loaded.iter().flat_map(|(_, s)| s.supersedes.iter().copied()))
            .collect();
        if known.iter().any(|id| superseded.contains(id)) {
            // A prune rewrote the index: start over from the segments that are current.
            tracing::info!("the index was rewritten (prune); rebuilding local index");
            self.index.clear()?;
            return self.ingest_segments();
        }
        let mut read = 0;
        for (id, segment) in loaded {
            if superseded.contains(&id) {
                self.index.record_superseded(&id)?;
            } else {
                self.index.ingest(&id, &segment)?;
                read += 1;
            }
        }
        Ok((read, unreadable))
    }

    /// Deletes an object; a missing one is not an error.
    fn delete(&self, name: &str) -> Result<()> {
        self.backend.delete(name).map_err(backend_error("delete", name))
    }

    /// Reads a whole object.
    fn get(&self, name: &str) -> Result<Vec<u8>> {
        self.backend.get(name).map_err(backend_error("get", name))
    }

    /// Reads and opens one index segment.
    pub fn load_segment(&self, id: &IndexId) -> Result<IndexSegment> {
        IndexSegment::open(&self.key, id, &self.get(&format!("index/{id}"))?)
    }

    /// Reads every listed segment, for whole-index work (check, prune): the ones no other
    /// listed segment supersedes, the ids of all listed (current or not), and those that could
    /// not be read.
    pub fn load_segments(&self) -> Result<Segments> {
        let listed: Vec<IndexId> = self.list_ids("index/")?;
        let mut loaded = Vec::new();
        let mut unreadable = Vec::new();
        for id in &listed {
            match self.load_segment(id) {
                Ok(segment) => loaded.push((*id, segment)),
                Err(error) => unreadable.push((*id, error)),
            }
        }
        // A superseded segment is one a prune that was stopped did not get to delete.
        let superseded: HashSet<IndexId> =
            loaded.iter().flat_map(|(_, s)| s.supersedes.iter().copied()).collect();
        loaded.retain(|(id, _)| !superseded.contains(id));
        Ok(Segments { listed, current: loaded, unreadable })
    }

    /// Writes a segment and ingests it into the local index.
    pub fn save_segment(&self, segment: &IndexSegment) -> Result<IndexId> {
        let (id, sealed) = segment.seal(&self.key);
        put(&*self.backend, &format!("index/{id}"), &sealed)?;
        self.index.ingest(&id, segment)?;
        Ok(id)
    }

    /// Ids of every object under a prefix whose name is an id.
    fn list_ids<T: std::str::FromStr + std::hash::Hash + Eq, C: FromIterator<T>>(
        &self,
        prefix: &str,
    ) -> Result<C> {
        let objects = self.backend.list(prefix).map_err(backend_error("list", prefix))?;
        Ok(objects.iter().filter_map(|o| id_part(&o.name).parse().ok()).collect())
    }

    /// Where a blob is, or `BlobNotFound`.
    pub fn locate(&self, id: &BlobId) -> Result<BlobLocation> {
        self.lookup(id)?.ok_or_else(|| Error::BlobNotFound { id: id.to_hex() })
    }

    /// Where the local index places a blob, if anywhere (rebuilding a damaged index first).
    pub fn lookup(&self, id: &BlobId) -> Result<Option<BlobLocation>> {
        self.healing(|| self.index.lookup(id))
    }

    /// Reads, opens, decompresses and verifies one blob.
    pub fn read_blob(&self, id: &BlobId) -> Result<Vec<u8>> {
        let location = self.locate(id)?;
        if !(self.object_cache && location.kind == BlobKind::Tree) {
            return self.fetch_blob(id, &location).map(|(plain, _)| plain);
        }
        let cache_name = format!("blob/{id}");
        let cached = |repo: &Self| -> Result<Option<Vec<u8>>> {
            // A copy from before a repack may no longer match the location: fetch it then.
            Ok(repo
                .index
                .cached_object(&cache_name)?
                .and_then(|sealed| repo.open_blob(id, &location, &sealed).ok()))
        };
        if let Some(plain) = cached(self)? {
            return Ok(plain);
        }
        if self.cache_tree_pack(&location.pack)?
            && let Some(plain) = cached(self)?
        {
            return Ok(plain);
        }
        let (plain, sealed) = self.fetch_blob(id, &location)?;
        self.index.cache_objects([(cache_name.clone(), sealed.as_slice())])?;
        Ok(plain)
    }

    /// Keeps the tree blobs of a pack this process just uploaded, when it keeps copies of a
    /// remote repository's trees: the next listing then downloads nothing.
    pub fn keep_tree_copies(&self, pack: &pack::FinishedPack) -> Result<()> {
        if !self.object_cache {
            return Ok(());
        }
        let trees = pack.entries.iter().filter(|e| e.kind == BlobKind::Tree);
        self.index.cache_objects(trees.map(|e| {
            let start = e.offset as usize;
            (format!("blob/{}", e.id), &pack.bytes[start..start + e.length as usize])
        }))
    }

    /// Keeps every tree blob of a tree pack, read whole: one request instead of one per
    /// directory (a request's round trip, not its bytes, is what a tree read costs remotely).
    /// Returns whether the pack was a tree pack small enough to read whole.
    fn cache_tree_pack(&self, pack: &PackId) -> Result<bool> {
        const LARGEST: u64 = 64 << 20;
        let Some(known) = self.index.pack(pack)? else {
            return Ok(false);
        };
        if known.kind != BlobKind::Tree || known.size > LARGEST {
            return Ok(false);
        }
        let name = pack_name(pack);
        let bytes = self.backend.get(&name).map_err(backend_error("read", &name))?;
        let size = bytes.len() as u64;
        if size < TRAILER_LEN as u64 {
            return Err(Error::corrupt("pack", pack.to_hex(), "shorter than its trailer"));
        }
        let trailer_at = bytes.len() - TRAILER_LEN;
        let header_len = pack::header_length(pack, size, &bytes[trailer_at..])? as usize;
        let header_at = trailer_at
            .checked_sub(header_len)
            .ok_or_else(|| Error::corrupt("pack", pack.to_hex(), "header longer than the pack"))?;
        let entries = pack::decode_header(&self.key, pack, size, &bytes[header_at..trailer_at])?;
        let blobs = entries.iter().filter(|e| e.kind == BlobKind::Tree).filter_map(|e| {
            let (start, end) = (e.offset as usize, e.offset as usize + e.length as usize);
            (end <= header_at).then(|| (format!("blob/{}", e.id), &bytes[start..end]))
        });
        self.index.cache_objects(blobs)?;
        Ok(true)
    }

    /// Reads a blob from its pack: its plaintext and the sealed bytes it came from.
    fn fetch_blob(&self, id: &BlobId, location: &BlobLocation) -> Result<(Vec<u8>, Vec<u8>)> {
        let (offset, length) = (u64::from(location.offset), u64::from(location.length));
        let sealed = self
            .backend
            .get_range(&pack_name(&location.pack), offset, length)
            .map_err(pack_read_error(&location.pack, offset, length))?;
        Ok((self.open_blob(id, location, &sealed)?, sealed))
    }

    /// Opens a sealed blob already read from its pack.
    pub fn open_blob(
        &self,
        id: &BlobId,
        location: &BlobLocation,
        sealed: &[u8],
    ) -> Result<Vec<u8>> {
        let entry = PackEntry {
            kind: location.kind,
            id: *id,
            offset: location.offset,
            length: location.length,
            raw_length: location.raw_length,
        };
        pack::open_blob(&self.key, &entry, sealed)
    }

    /// Reads `length` bytes of a pack at `offset` (restore reads runs of blobs at once).
    pub fn read_pack_range(&self, pack: &PackId, offset: u64, length: u64) -> Result<Vec<u8>> {
        self.backend
            .get_range(&pack_name(pack), offset, length)
            .map_err(pack_read_error(pack, offset, length))
    }

    /// [`Repository::read_pack_range`] into a reused buffer.
    pub fn read_pack_range_into(
        &self,
        pack: &PackId,
        offset: u64,
        length: u64,
        buffer: &mut Vec<u8>,
    ) -> Result<()> {
        self.backend
            .get_range_into(&pack_name(pack), offset, length, buffer)
            .map_err(pack_read_error(pack, offset, length))
    }

    /// Loads and validates a directory tree.
    pub fn load_tree(&self, id: &BlobId) -> Result<Tree> {
        Tree::decode(&self.read_blob(id)?, &id.to_hex())
    }

    /// Every snapshot id in the repository.
    pub fn snapshot_ids(&self) -> Result<Vec<SnapshotId>> {
        self.list_ids("snapshots/")
    }

    /// Loads one snapshot.
    pub fn load_snapshot(&self, id: &SnapshotId) -> Result<Snapshot> {
        let name = format!("snapshots/{id}");
        if self.object_cache
            && let Some(bytes) = self.index.cached_object(&name)?
            && let Ok(snapshot) = Snapshot::open(&self.key, id, &bytes)
        {
            return Ok(snapshot);
        }
        let bytes = self.get(&name)?;
        let snapshot = Snapshot::open(&self.key, id, &bytes)?;
        if self.object_cache {
            self.index.cache_objects([(name, bytes.as_slice())])?;
        }
        Ok(snapshot)
    }

    /// Every snapshot, the readable ones oldest first. One that does not open is set aside,
    /// not fatal: a single flipped bit must not stop every listing. Storage errors still are.
    pub fn snapshots(&self) -> Result<SnapshotListing> {
        let mut listing = SnapshotListing::default();
        for id in self.snapshot_ids()? {
            match self.load_snapshot(&id) {
                Ok(snapshot) => listing.readable.push((id, snapshot)),
                // Removed between listing and reading (forget on another host).
                Err(Error::ObjectNotFound { .. }) => {}
                Err(e) if e.is_unreadable_object() => listing.unreadable.push((id, e)),
                Err(e) => return Err(e),
            }
        }
        listing.readable.sort_by_key(|(id, s)| (s.time_ns, *id));
        Ok(listing)
    }

    /// Writes a snapshot; callers must have flushed every blob it references first.
    pub fn save_snapshot(&self, snapshot: &Snapshot) -> Result<SnapshotId> {
        let (id, sealed) = snapshot.seal(&self.key);
        put(&*self.backend, &format!("snapshots/{id}"), &sealed)?;
        Ok(id)
    }

    /// Writes (or refreshes) a lock object.
    pub fn write_lock(&self, id: &LockId, lock: &Lock) -> Result<()> {
        put(&*self.backend, &format!("locks/{id}"), &lock.seal(&self.key))
    }

    /// Every lock object, each opened or with the reason it could not be.
    pub fn locks(&self) -> Result<Vec<(LockId, Result<Lock>)>> {
        let ids: Vec<LockId> = self.list_ids("locks/")?;
        Ok(ids
            .into_iter()
            .filter_map(|id| {
                let name = format!("locks/{id}");
                match self.backend.get(&name) {
                    Ok(bytes) => Some((id, Lock::open(&self.key, &id, &bytes))),
                    // Released between listing and reading.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                    Err(e) => Some((id, Err(Error::backend("get", name, e)))),
                }
            })
            .collect())
    }

    /// Deletes a lock object.
    pub fn remove_lock(&self, id: &LockId) -> Result<()> {
        self.delete(&format!("locks/{id}"))
    }

    /// Deletes a pack object (prune).
    pub fn remove_pack(&self, id: &PackId) -> Result<()> {
        self.delete(&pack_name(id))
    }

    /// Deletes an index segment object (prune, repair).
    pub fn remove_segment(&self, id: &IndexId) -> Result<()> {
        self.delete(&format!("index/{id}"))
    }

    /// Deletes a snapshot object (its data stays until prune).
    pub fn remove_snapshot(&self, id: &SnapshotId) -> Result<()> {
        self.delete(&format!("snapshots/{id}"))
    }

    /// Reads a pack's header through its trailer.
    pub fn read_pack_header(&self, id: &PackId, size: u64) -> Result<Vec<PackEntry>> {
        if size < TRAILER_LEN as u64 {
            return Err(Error::corrupt("pack", id.to_hex(), "shorter than its trailer"));
        }
        let trailer = self.read_pack_range(id, size - TRAILER_LEN as u64, TRAILER_LEN as u64)?;
        let length = u64::from(pack::header_length(id, size, &trailer)?);
        let sealed = self.read_pack_range(id, size - TRAILER_LEN as u64 - length, length)?;
        pack::decode_header(&self.key, id, size, &sealed)
    }

    /// Indexes packs that exist but no segment names (left by a killed backup), so their
    /// blobs are reused instead of uploaded again. Unreadable packs are skipped with a warning.
    pub fn adopt_unindexed_packs(&self) -> Result<usize> {
        let mut segment = IndexSegment::default();
        for (id, size) in self.list_packs()?.packs {
            if self.index.has_pack(&id)? {
                continue;
            }
            match self.read_pack_header(&id, size) {
                Ok(blobs) => segment.packs.push(IndexedPack { id, size, blobs }),
                Err(e) => {
                    tracing::warn!(pack = %id, error = %e, "unindexed pack is unreadable; not reused");
                }
            }
        }
        let adopted = segment.packs.len();
        if adopted > 0 {
            self.save_segment(&segment)?;
            tracing::info!(packs = adopted, "indexed packs left by an interrupted backup");
        }
        Ok(adopted)
    }

    /// Every key file.
    pub fn keys(&self) -> Result<Vec<(KeyId, KeyFile)>> {
        (self.key_files()?.into_iter()).map(|(id, file)| Ok((id, file?))).collect()
    }

    /// Every key file, each decoded or with why it does not decode (`check`).
    pub fn key_files(&self) -> Result<Vec<(KeyId, Result<KeyFile>)>> {
        let ids: Vec<KeyId> = self.list_ids("keys/")?;
        Ok(ids
            .into_iter()
            .map(|id| {
                let decoded =
                    self.get(&format!("keys/{id}")).and_then(|bytes| KeyFile::decode(&id, &bytes));
                (id, decoded)
            })
            .collect())
    }

    /// The ids of every index segment object (current or superseded).
    pub fn segment_ids(&self) -> Result<Vec<IndexId>> {
        self.list_ids("index/")
    }

    /// Every pack in storage with its size, and the names of objects among the packs that
    /// are not packs (put there by hand, or by another program).
    pub fn list_packs(&self) -> Result<PackListing> {
        let objects = (self.backend.list("data/")).map_err(backend_error("list", "data/"))?;
        let mut listing = PackListing::default();
        for object in objects {
            match id_part(&object.name).parse::<PackId>() {
                Ok(id) => listing.packs.push((id, object.size)),
                Err(_) => listing.strays.push(object.name),
            }
        }
        Ok(listing)
    }

    /// A pack's size in storage, `None` if it does not exist.
    pub fn pack_size(&self, id: &PackId) -> Result<Option<u64>> {
        let name = pack_name(id);
        self.backend.stat(&name).map_err(backend_error("stat", &name))
    }

    /// Stores a finished pack (prune's repacked ones; backups go through the `BlobWriter`).
    pub fn save_pack(&self, pack: &pack::FinishedPack) -> Result<()> {
        put(&*self.backend, &pack_name(&pack.id), &pack.bytes)
    }

    /// Temporary objects of writes that never finished (a killed process's).
    pub fn leftovers(&self) -> Result<Vec<Leftover>> {
        (self.backend.leftovers()).map_err(|e| Error::backend("list", "temporary objects", e))
    }

    /// Deletes one of [`Repository::leftovers`].
    pub fn remove_leftover(&self, leftover: &Leftover) -> Result<()> {
        self.delete(&leftover.name)
    }

    /// Adds a key file for another password.
    pub fn add_key(
        &self,
        password: &[u8],
        kdf: KdfParams,
        host: String,
        user: String,
        now_ns: i64,
    ) -> Result<KeyId> {
        let key_file = KeyFile::create(&self.key, password, kdf, host, user, now_ns)?;
        let (id, bytes) = key_file.encode();
        put(&*self.backend, &format!("keys/{id}"), &bytes)?;
        Ok(id)
    }

    /// Replaces the key this session was opened with by a key for a new password. The new key
    /// is written before the old one is deleted, so the repository is never without a key.
    pub fn change_password(
        &self,
        password: &[u8],
        kdf: KdfParams,
        host: String,
        user: String,
        now_ns: i64,
    ) -> Result<KeyId> {
        let id = self.add_key(password, kdf, host, user, now_ns)?;
        let name = format!("keys/{}", self.key_id);
        self.backend.delete(&name).map_err(backend_error("delete", &name))?;
        Ok(id)
    }

    /// Removes a key file; the key this session was opened with cannot be removed.
    pub fn remove_key(&self, id: &KeyId) -> Result<()> {
        if *id == self.key_id {
            return Err(Error::InvalidParameter(format!(
                "key {id} is the one in use; open the repository with another key to remove it"
            )));
        }
        let name = format!("keys/{id}");
        if self.backend.stat(&name).map_err(backend_error("stat", &name))?.is_none() {
            return Err(Error::ObjectNotFound { name });
        }
        self.backend.delete(&name).map_err(backend_error("delete", &name))
    }
}

/// Tries the password against every key file.
fn unlock(backend: &dyn Backend, password: &[u8]) -> Result<(MasterKey, KeyId)> {
    let location = backend.location();
    let keys = backend.list("keys/").map_err(backend_error("list", "keys/"))?;
    if keys.is_empty() {
        return Err(Error::NoKeys { location });
    }
    let mut unreadable = Vec::new();
    let mut tried = 0;
    for object in keys {
        let Ok(id) = id_part(&object.name).parse::<KeyId>() else {
            continue;
        };
        let bytes = backend.get(&object.name).map_err(backend_error("get", &object.name))?;
        match KeyFile::decode(&id, &bytes) {
            Ok(key_file) => {
                tried += 1;
                if let Some(master) = key_file.unlock(password)? {
                    return Ok((master, id));
                }
            }
            Err(e) => {
                tracing::warn!(key = %id, error = %e, "skipping unreadable key file");
                unreadable.push(format!("{}: {e}", object.name));
            }
        }
    }
    if tried == 0 && !unreadable.is_empty() {
        // No password could have opened anything: saying "wrong password" would mislead.
        return Err(Error::NoReadableKey { location, reasons: unreadable.join("; ") });
    }
    Err(Error::WrongPassword { location })
}

fn put(backend: &dyn Backend, name: &str, data: &[u8]) -> Result<()> {
    backend.put(name, data).map_err(|e| Error::backend("write", name, e))
}
