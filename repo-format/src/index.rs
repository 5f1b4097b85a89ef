//! The local index: a RocksDB database in the cache directory that maps blob ids to their place
//! in a pack. It is only a cache of the index segments in the repository: it records which
//! segments it has ingested, and deleting it is harmless because the next open rebuilds it.
//! RocksDB keeps memory bounded however many blobs the repository holds.
//!
//! Keys: `b || blob id` -> `pack id (32) || kind (1) || offset || length || raw length`
//! (u32 LE each); `p || pack id` -> `kind (1) || size (u64 LE)`; `s || segment id` -> `0` and
//! the ids of the segments it supersedes (ingested), or `1` (superseded, not ingested);
//! `m || pack id` -> since when (Unix seconds, i64 LE) prune has marked the pack unused.
//!
//! It also remembers what `check --read-data` found, which no segment can tell: `v || pack id`
//! -> when the pack last verified (Unix seconds, i64 LE), and `x || pack id || blob id` -> empty
//! for a stored copy of a blob that failed to verify. A damaged copy is never preferred over an
//! intact one, and a backup stores a blob again rather than reuse a damaged copy (self-healing).
//! Rebuilding the index keeps these records.
//!
//! For a remote repository it also keeps copies of objects that never change under their name
//! (`o || name` -> the sealed bytes: `snapshots/<id>`, and `blob/<id>` for tree blobs), so
//! listing and browsing do not download them again. Every copy is authenticated again when it
//! is opened, like the original.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{PoisonError, RwLock};

use rocksdb::{BlockBasedOptions, DB, DBCompressionType, IteratorMode, Options, WriteBatch};

use crate::error::{Error, Result};
use crate::id::{BlobId, ID_LEN, IndexId, PackId};
use crate::pack::BlobKind;
use crate::segment::IndexSegment;

const BLOB: u8 = b'b';
const PACK: u8 = b'p';
const SEGMENT: u8 = b's';
const MARKED: u8 = b'm';
const VERIFIED: u8 = b'v';
const DAMAGED: u8 = b'x';
const OBJECT: u8 = b'o';

/// Where a blob is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobLocation {
    pub pack: PackId,
    pub kind: BlobKind,
    pub offset: u32,
    pub length: u32,
    pub raw_length: u32,
}

impl BlobLocation {
    /// Where a pack header entry says the blob is.
    pub fn new(pack: PackId, entry: &crate::pack::PackEntry) -> Self {
        Self {
            pack,
            kind: entry.kind,
            offset: entry.offset,
            length: entry.length,
            raw_length: entry.raw_length,
        }
    }
}

/// A pack the index knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KnownPack {
    pub id: PackId,
    pub kind: BlobKind,
    pub size: u64,
}

/// The RocksDB-backed blob index.
pub struct LocalIndex {
    /// Behind a lock so a database found damaged while in use can be rebuilt in place.
    db: RwLock<DB>,
    path: PathBuf,
    /// A private index made because the shared one was in use; removed on drop.
    temporary: bool,
    /// The `m` and `x` records, kept in memory (they are few) so that a backup's dedup
    /// lookups cost no extra read.
    second_best: RwLock<SecondBest>,
}

/// Copies a backup must not reuse: in packs marked unused, or recorded damaged.
#[derive(Default)]
struct SecondBest {
    marked: HashSet<PackId>,
    damaged: HashSet<(PackId, BlobId)>,
}

impl SecondBest {
    fn contains(&self, pack: &PackId, blob: &BlobId) -> bool {
        self.marked.contains(pack) || self.damaged.contains(&(*pack, *blob))
    }
}

impl LocalIndex {
    /// Opens (or creates) the index at `path`. A damaged database is deleted and recreated,
    /// since everything in it can be rebuilt from the repository (the `check --read-data`
    /// verdicts, which cannot, are kept where they still read): one that does not open, and
    /// one an earlier run found damaged while reading it ([`DAMAGE_MARKER`]).
    pub fn open(path: &Path) -> Result<Self> {
        let options = options();
        match DB::open(&options, path) {
            Ok(db) if path.join(DAMAGE_MARKER).exists() => {
                tracing::warn!(path = %path.display(), "local index was found damaged; rebuilding it");
                Ok(Self::wrap(rebuild(path, Some(db))?, path, false))
            }
            Ok(db) => Ok(Self::wrap(db, path, false)),
            Err(e) if is_lock_error(&e) => Err(Error::Index {
                path: path.to_path_buf(),
                reason: format!("in use by another process: {e}"),
            }),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "local index unreadable, rebuilding it");
                Ok(Self::wrap(rebuild(path, None)?, path, false))
            }
        }
    }

    /// Replaces a database found damaged while in use with an empty one (keeping the verdicts
    /// that still read); the caller fills it from the repository's segments again.
    pub fn rebuild(&self) -> Result<()> {
        // The damaged database must be closed before its files go: a placeholder beside it
        // stands in meanwhile.
        let aside = self.path.with_file_name(format!(
            "index-replacing-{}",
            hex::encode(crate::id::random_bytes::<4>())
        ));
        let mut db = self.db.write().unwrap_or_else(PoisonError::into_inner);
        let placeholder = DB::open(&options(), &aside).map_err(|e| index_error(&aside, &e))?;
        let damaged = std::mem::replace(&mut *db, placeholder);
        let placeholder = std::mem::replace(&mut *db, rebuild(&self.path, Some(damaged))?);
        drop(placeholder);
        let _ = DB::destroy(&Options::default(), &aside);
        let _ = std::fs::remove_dir_all(&aside);
        drop(db);
        *self.second_best_mut() = self.load_second_best()?;
        Ok(())
    }

    /// Opens the index at `path`, or a private temporary one beside it when another process
    /// holds the shared one (the private copy is filled from the repository's segments).
    pub fn open_shared_or_private(path: &Path) -> Result<Self> {
        match Self::open(path) {
            Err(Error::Index { .. }) if path.exists() => {
                let private = path.with_file_name(format!(
                    "index-private-{}-{}",
                    std::process::id(),
                    hex::encode(crate::id::random_bytes::<4>())
                ));
                tracing::info!(path = %private.display(), "shared local index is busy; using a private one");
                let mut index = Self::open(&private)?;
                index.temporary = true;
                Ok(index)
            }
            other => other,
        }
    }

    fn wrap(db: DB, path: &Path, temporary: bool) -> Self {
        let index = Self {
            db: RwLock::new(db),
            path: path.to_path_buf(),
            temporary,
            second_best: RwLock::default(),
        };
        match index.load_second_best() {
            Ok(second_best) => *index.second_best_mut() = second_best,
            Err(Error::IndexDamaged { reason, .. }) => {
                tracing::warn!(path = %path.display(), %reason, "the local index is damaged; rebuilding it from the repository");
                if let Err(e) = index.rebuild() {
                    tracing::warn!(error = %e, "cannot rebuild the local index");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the marked and damaged records"),
        }
        index
    }

    fn load_second_best(&self) -> Result<SecondBest> {
        let damaged = self.damaged_copies()?;
        let marked = self.marked_packs()?.into_iter().map(|(p, _)| p).collect();
        Ok(SecondBest { marked, damaged })
    }

    fn db(&self) -> std::sync::RwLockReadGuard<'_, DB> {
        self.db.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Where the database lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Looks up one blob.
    pub fn lookup(&self, id: &BlobId) -> Result<Option<BlobLocation>> {
        let value = self.db().get(key(BLOB, &id.0)).map_err(|e| self.error(&e))?;
        value.map(|v| decode_location(&v, &self.path)).transpose()
    }

    /// Looks up one blob, ignoring a copy that is known to be damaged or sits in a pack prune
    /// marked unused: what a backup may reuse.
    pub fn lookup_intact(&self, id: &BlobId) -> Result<Option<BlobLocation>> {
        let found = self.lookup(id)?;
        Ok(found.filter(|location| !self.second_best().contains(&location.pack, id)))
    }

    fn second_best(&self) -> std::sync::RwLockReadGuard<'_, SecondBest> {
        self.second_best.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn second_best_mut(&self) -> std::sync::RwLockWriteGuard<'_, SecondBest> {
        self.second_best.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Looks up many blobs in one batched call (bloom filters make misses cheap).
    pub fn lookup_many(&self, ids: &[BlobId]) -> Result<Vec<Option<BlobLocation>>> {
        let keys: Vec<_> = ids.iter().map(|id| key(BLOB, &id.0)).collect();
        self.db()
            .multi_get(keys)
            .into_iter()
            .map(|r| {
                let value = r.map_err(|e| self.error(&e))?;
                value.map(|v| decode_location(&v, &self.path)).transpose()
            })
            .collect()
    }

    /// Points a blob at another of its copies (an intact one, when `check` found the copy in
    /// use damaged).
    pub fn set_location(&self, id: &BlobId, location: &BlobLocation) -> Result<()> {
        self.db().put(key(BLOB, &id.0), encode_location(location)).map_err(|e| self.error(&e))
    }

    /// Adds every pack and blob of a segment, and remembers the segment, atomically.
    pub fn ingest(&self, id: &IndexId, segment: &IndexSegment) -> Result<()> {
        self.second_best_mut().marked.extend(segment.marked.iter().map(|m| m.pack));
        let second_best = self.second_best();
        let mut batch = WriteBatch::default();
        // Blobs placed by this batch, which lookups cannot see before it is written.
        let mut placed: HashSet<BlobId> = HashSet::new();
        for mark in &segment.marked {
            batch.put(key(MARKED, &mark.pack.0), mark.since_s.to_le_bytes());
        }
        for pack in &segment.packs {
            let kind = pack.blobs.first().map_or(BlobKind::Data, |b| b.kind);
            let mut value = vec![kind_byte(kind)];
            value.extend_from_slice(&pack.size.to_le_bytes());
            batch.put(key(PACK, &pack.id.0), value);
            for blob in &pack.blobs {
                if second_best.contains(&pack.id, &blob.id)
                    && (placed.contains(&blob.id) || self.lookup(&blob.id)?.is_some())
                {
                    continue; // keep the other copy
                }
                placed.insert(blob.id);
                let location = BlobLocation::new(pack.id, blob);
                batch.put(key(BLOB, &blob.id.0), encode_location(&location));
            }
        }
        let mut record = vec![0u8];
        for superseded in &segment.supersedes {
            record.extend_from_slice(&superseded.0);
        }
        batch.put(key(SEGMENT, &id.0), record);
        self.db().write(batch).map_err(|e| self.error(&e))
    }

    /// Remembers a segment that another one supersedes, so it is never ingested.
    pub fn record_superseded(&self, id: &IndexId) -> Result<()> {
        self.db().put(key(SEGMENT, &id.0), [1u8]).map_err(|e| self.error(&e))
    }

    /// The segments seen so far, each with the segments it supersedes (none for one that was
    /// itself superseded and not ingested).
    pub fn segment_records(&self) -> Result<Vec<(IndexId, Vec<IndexId>)>> {
        self.ids_with_prefix(SEGMENT, |bytes, value| {
            let superseded = match value.split_first() {
                Some((0, rest)) => rest.chunks(ID_LEN).map(IndexId::from_slice).collect(),
                Some((1, [])) => Some(Vec::new()),
                _ => None,
            }?;
            Some((IndexId::from_slice(bytes)?, superseded))
        })
    }

    /// Since when prune has marked a pack unused, if it has.
    pub fn marked_since(&self, pack: &PackId) -> Result<Option<i64>> {
        self.seconds(MARKED, pack)
    }

    /// A Unix-seconds record of a pack.
    fn seconds(&self, prefix: u8, pack: &PackId) -> Result<Option<i64>> {
        let db = self.db();
        let value = db.get_pinned(key(prefix, &pack.0)).map_err(|e| self.error(&e))?;
        Ok(value.and_then(|v| Some(i64::from_le_bytes(v.as_ref().try_into().ok()?))))
    }

    /// Every pack marked unused, with since when.
    pub fn marked_packs(&self) -> Result<Vec<(PackId, i64)>> {
        self.ids_with_prefix(MARKED, |bytes, value| {
            Some((PackId::from_slice(bytes)?, i64::from_le_bytes(value.try_into().ok()?)))
        })
    }

    /// The segments seen so far (ingested, or recorded as superseded).
    pub fn segments(&self) -> Result<HashSet<IndexId>> {
        self.ids_with_prefix(SEGMENT, |bytes, _| IndexId::from_slice(bytes))
    }

    /// Every pack the index knows.
    pub fn packs(&self) -> Result<Vec<KnownPack>> {
        self.ids_with_prefix(PACK, |bytes, value| {
            let (&kind, size) = value.split_first()?;
            Some(KnownPack {
                id: PackId::from_slice(bytes)?,
                kind: kind_from_byte(kind)?,
                size: u64::from_le_bytes(size.try_into().ok()?),
            })
        })
    }

    /// What the index knows of one pack.
    pub fn pack(&self, id: &PackId) -> Result<Option<KnownPack>> {
        let db = self.db();
        let value = db.get_pinned(key(PACK, &id.0)).map_err(|e| self.error(&e))?;
        Ok(value.and_then(|value| {
            let (&kind, size) = value.split_first()?;
            Some(KnownPack {
                id: *id,
                kind: kind_from_byte(kind)?,
                size: u64::from_le_bytes(size.try_into().ok()?),
            })
        }))
    }

    /// True if the index knows the pack.
    pub fn has_pack(&self, id: &PackId) -> Result<bool> {
        Ok(self.db().get_pinned(key(PACK, &id.0)).map_err(|e| self.error(&e))?.is_some())
    }

    /// Number of blobs in the index (walks the keys; for statistics and tests).
    pub fn blob_count(&self) -> Result<u64> {
        let all: Vec<()> = self.ids_with_prefix(BLOB, |_, _| Some(()))?;
        Ok(all.len() as u64)
    }

    /// Removes what the segments say, for a rebuild (verification records stay).
    pub fn clear(&self) -> Result<()> {
        let mut batch = WriteBatch::default();
        let db = self.db();
        for item in db.iterator(IteratorMode::Start) {
            let (k, _) = item.map_err(|e| self.error(&e))?;
            if [BLOB, PACK, SEGMENT, MARKED].contains(&k[0]) {
                batch.delete(k);
            }
        }
        db.write(batch).map_err(|e| self.error(&e))?;
        self.second_best_mut().marked.clear();
        Ok(())
    }

    /// The local copy of a remote object, if one was kept.
    pub fn cached_object(&self, name: &str) -> Result<Option<Vec<u8>>> {
        self.db().get(object_key(name)).map_err(|e| self.error(&e))
    }

    /// Keeps copies of remote objects that never change under their names, in one write.
    pub fn cache_objects<'a>(
        &self,
        objects: impl IntoIterator<Item = (String, &'a [u8])>,
    ) -> Result<()> {
        let mut batch = WriteBatch::default();
        for (name, bytes) in objects {
            batch.put(object_key(&name), bytes);
        }
        self.db().write(batch).map_err(|e| self.error(&e))
    }

    /// Records what reading a whole pack found at `at` (Unix seconds): the copies in it that
    /// failed to verify (replacing what an earlier check recorded for the pack).
    pub fn record_verification(&self, pack: &PackId, at: i64, damaged: &[BlobId]) -> Result<()> {
        let mut batch = WriteBatch::default();
        let db = self.db();
        for item in db.prefix_iterator(damage_prefix(pack)) {
            let (k, _) = item.map_err(|e| self.error(&e))?;
            if !k.starts_with(&damage_prefix(pack)) {
                break;
            }
            batch.delete(k);
        }
        for blob in damaged {
            batch.put(damage_key(pack, blob), []);
        }
        batch.put(key(VERIFIED, &pack.0), at.to_le_bytes());
        db.write(batch).map_err(|e| self.error(&e))?;
        let mut second_best = self.second_best_mut();
        second_best.damaged.retain(|(p, _)| p != pack);
        second_best.damaged.extend(damaged.iter().map(|blob| (*pack, *blob)));
        Ok(())
    }

    /// When a pack last verified completely, if ever (damaged or not).
    pub fn verified_at(&self, pack: &PackId) -> Result<Option<i64>> {
        self.seconds(VERIFIED, pack)
    }

    /// Every recorded damaged copy, as (pack, blob).
    pub fn damaged_copies(&self) -> Result<HashSet<(PackId, BlobId)>> {
        self.ids_with_prefix(DAMAGED, |bytes, _| {
            let (pack, blob) = bytes.split_at_checked(ID_LEN)?;
            Some((PackId::from_slice(pack)?, BlobId::from_slice(blob)?))
        })
    }

    fn ids_with_prefix<T, C: FromIterator<T>>(
        &self,
        prefix: u8,
        parse: impl Fn(&[u8], &[u8]) -> Option<T>,
    ) -> Result<C> {
        let mut out = Vec::new();
        let db = self.db();
        for item in db.prefix_iterator([prefix]) {
            let (k, v) = item.map_err(|e| self.error(&e))?;
            if k.first() != Some(&prefix) {
                break;
            }
            let parsed = parse(&k[1..], &v).ok_or_else(|| Error::Index {
                path: self.path.clone(),
                reason: "malformed entry".into(),
            })?;
            out.push(parsed);
        }
        Ok(out.into_iter().collect())
    }

    fn error(&self, e: &rocksdb::Error) -> Error {
        index_error(&self.path, e)
    }
}

impl Drop for LocalIndex {
    fn drop(&mut self) {
        if self.temporary {
            let _ = DB::destroy(&Options::default(), &self.path);
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

fn options() -> Options {
    let mut table = BlockBasedOptions::default();
    table.set_bloom_filter(10.0, false);
    let mut options = Options::default();
    options.create_if_missing(true);
    options.set_compression_type(DBCompressionType::None);
    options.set_block_based_table_factory(&table);
    options.set_keep_log_file_num(2);
    options.set_max_open_files(256);
    options
}

fn is_lock_error(e: &rocksdb::Error) -> bool {
    let text = e.to_string();
    text.contains("lock") || text.contains("Resource temporarily unavailable")
}

/// A file left in a database found damaged while reading it, so that the next open rebuilds
/// it even when it opens (RocksDB checks a block's checksum only when it reads the block).
pub const DAMAGE_MARKER: &str = "CAIRN-DAMAGED";

fn index_error(path: &Path, e: &rocksdb::Error) -> Error {
    if e.kind() != rocksdb::ErrorKind::Corruption {
        return Error::Index { path: path.to_path_buf(), reason: e.to_string() };
    }
    if let Err(marking) = std::fs::write(path.join(DAMAGE_MARKER), e.to_string()) {
        tracing::warn!(path = %path.display(), error = %marking, "cannot mark the damaged local index");
    }
    Error::IndexDamaged { path: path.to_path_buf(), reason: e.to_string() }
}

/// A key and its value, as RocksDB iterates them.
type Record = (Box<[u8]>, Box<[u8]>);

/// Deletes the database at `path` and creates an empty one, carrying over the `check
/// --read-data` verdicts (`v` and `x` records) of `old` that still read.
fn rebuild(path: &Path, old: Option<DB>) -> Result<DB> {
    let verdicts: Vec<Record> = old.as_ref().map_or_else(Vec::new, |db| {
        [VERIFIED, DAMAGED]
            .iter()
            .flat_map(|prefix| {
                db.prefix_iterator([*prefix])
                    .map_while(std::result::Result::ok)
                    .take_while(move |(k, _)| k.first() == Some(prefix))
            })
            .collect()
    });
    drop(old);
    let options = options();
    let _ = DB::destroy(&options, path);
    let _ = std::fs::remove_dir_all(path);
    let db = DB::open(&options, path).map_err(|e| index_error(path, &e))?;
    let mut batch = WriteBatch::default();
    for (k, v) in verdicts {
        batch.put(k, v);
    }
    db.write(batch).map_err(|e| index_error(path, &e))?;
    Ok(db)
}

fn encode_location(location: &BlobLocation) -> Vec<u8> {
    let mut value = Vec::with_capacity(45);
    value.extend_from_slice(&location.pack.0);
    value.push(kind_byte(location.kind));
    value.extend_from_slice(&location.offset.to_le_bytes());
    value.extend_from_slice(&location.length.to_le_bytes());
    value.extend_from_slice(&location.raw_length.to_le_bytes());
    value
}

fn damage_prefix(pack: &PackId) -> [u8; ID_LEN + 1] {
    key(DAMAGED, &pack.0)
}

fn damage_key(pack: &PackId, blob: &BlobId) -> Vec<u8> {
    let mut k = damage_prefix(pack).to_vec();
    k.extend_from_slice(&blob.0);
    k
}

fn object_key(name: &str) -> Vec<u8> {
    [&[OBJECT], name.as_bytes()].concat()
}

fn key(prefix: u8, id: &[u8; ID_LEN]) -> [u8; ID_LEN + 1] {
    let mut k = [0u8; ID_LEN + 1];
    k[0] = prefix;
    k[1..].copy_from_slice(id);
    k
}

fn kind_byte(kind: BlobKind) -> u8 {
    match kind {
        BlobKind::Data => 0,
        BlobKind::Tree => 1,
    }
}

fn kind_from_byte(byte: u8) -> Option<BlobKind> {
    match byte {
        0 => Some(BlobKind::Data),
        1 => Some(BlobKind::Tree),
        _ => None,
    }
}

fn decode_location(value: &[u8], path: &Path) -> Result<BlobLocation> {
    let parse = || -> Option<BlobLocation> {
        let (pack, rest) = value.split_first_chunk::<32>()?;
        let (&kind, rest) = rest.split_first()?;
        let u32_at = |i: usize| {
            rest.get(i..i + 4).map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
        };
        Some(BlobLocation {
            pack: PackId(*pack),
            kind: kind_from_byte(kind)?,
            offset: u32_at(0)?,
            length: u32_at(4)?,
            raw_length: u32_at(8)?,
        })
    };
    parse().ok_or_else(|| Error::Index {
        path: path.to_path_buf(),
        reason: "malformed blob entry".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pack::PackEntry;
    use crate::segment::IndexedPack;

    fn segment(n: u8) -> IndexSegment {
        IndexSegment {
            packs: vec![IndexedPack {
                id: PackId([n; 32]),
                size: 1000,
                blobs: (0..3)
                    .map(|i| PackEntry {
                        kind: BlobKind::Tree,
                        id: BlobId([n + i; 32]),
                        offset: u32::from(i) * 100,
                        length: 100,
                        raw_length: 60,
                    })
                    .collect(),
            }],
            ..IndexSegment::default()
        }
    }

    #[test]
    fn ingest_lookup_and_rebuild() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index");
        {
            let index = LocalIndex::open(&path).unwrap();
            index.ingest(&IndexId([1; 32]), &segment(10)).unwrap();
            let loc = index.lookup(&BlobId([11; 32])).unwrap().unwrap();
            assert_eq!((loc.pack, loc.offset, loc.kind), (PackId([10; 32]), 100, BlobKind::Tree));
            assert!(index.lookup(&BlobId([99; 32])).unwrap().is_none());
            let many = index.lookup_many(&[BlobId([10; 32]), BlobId([99; 32])]).unwrap();
            assert!(many[0].is_some() && many[1].is_none());
            assert_eq!(index.segments().unwrap(), HashSet::from([IndexId([1; 32])]));
            assert_eq!(index.packs().unwrap()[0].size, 1000);
            assert_eq!(index.blob_count().unwrap(), 3);
        }
        // Reopens with its contents; a second handle in the same process gets a private copy.
        let index = LocalIndex::open(&path).unwrap();
        assert!(index.has_pack(&PackId([10; 32])).unwrap());
        let private = LocalIndex::open_shared_or_private(&path).unwrap();
        assert!(private.temporary && !private.has_pack(&PackId([10; 32])).unwrap());
        index.clear().unwrap();
        assert_eq!(index.blob_count().unwrap(), 0);
    }

    /// Self-healing (issue #6): a copy `check` found damaged is not reused by backups, loses
    /// to an intact copy at ingest, and its record survives a rebuild.
    /// Regression (issue #7): within one segment, a copy in a pack marked unused never
    /// replaces a copy in a live pack, whichever comes first.
    #[test]
    fn marked_copies_give_way_within_one_segment() {
        for marked_first in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let index = LocalIndex::open(&dir.path().join("index")).unwrap();
            let (live, marked) = (segment(10).packs.remove(0), {
                let mut p = segment(10).packs.remove(0);
                p.id = PackId([60; 32]);
                p
            });
            let packs =
                if marked_first { vec![marked.clone(), live] } else { vec![live, marked.clone()] };
            let both = IndexSegment {
                packs,
                marked: vec![crate::segment::MarkedPack { pack: marked.id, since_s: 5 }],
                ..IndexSegment::default()
            };
            index.ingest(&IndexId([1; 32]), &both).unwrap();
            let found = index.lookup(&BlobId([11; 32])).unwrap().unwrap();
            assert_eq!(found.pack, PackId([10; 32]), "marked first: {marked_first}");
            assert_eq!(index.marked_since(&marked.id).unwrap(), Some(5));
        }
    }

    #[test]
    fn damaged_copies_give_way_to_intact_ones() {
        let dir = tempfile::tempdir().unwrap();
        let index = LocalIndex::open(&dir.path().join("index")).unwrap();
        index.ingest(&IndexId([1; 32]), &segment(10)).unwrap();
        let blob = BlobId([11; 32]);
        assert!(index.lookup_intact(&blob).unwrap().is_some());
        index.record_verification(&PackId([10; 32]), 77, &[blob]).unwrap();
        assert_eq!(index.verified_at(&PackId([10; 32])).unwrap(), Some(77));
        assert!(index.lookup(&blob).unwrap().is_some(), "restore still finds it");
        assert!(index.lookup_intact(&blob).unwrap().is_none(), "backups store it again");
        assert!(index.lookup_intact(&BlobId([10; 32])).unwrap().is_some());
        // An intact copy in another pack wins, whichever segment is ingested last.
        let mut healed = segment(11);
        healed.packs[0].id = PackId([50; 32]);
        index.ingest(&IndexId([2; 32]), &healed).unwrap();
        index.ingest(&IndexId([3; 32]), &segment(10)).unwrap();
        assert_eq!(index.lookup(&blob).unwrap().unwrap().pack, PackId([50; 32]));
        // Rebuilding keeps what checks found; a clean re-check clears the record.
        index.clear().unwrap();
        assert_eq!(index.damaged_copies().unwrap().len(), 1);
        index.record_verification(&PackId([10; 32]), 78, &[]).unwrap();
        assert!(index.damaged_copies().unwrap().is_empty());
    }

    #[test]
    fn damaged_database_is_rebuilt_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index");
        LocalIndex::open(&path).unwrap().ingest(&IndexId([1; 32]), &segment(1)).unwrap();
        for entry in std::fs::read_dir(&path).unwrap() {
            let p = entry.unwrap().path();
            if p.file_name().unwrap().to_string_lossy().starts_with("MANIFEST") {
                std::fs::write(&p, b"garbage").unwrap();
            }
        }
        let index = LocalIndex::open(&path).unwrap();
        assert!(index.segments().unwrap().is_empty());
    }
}
