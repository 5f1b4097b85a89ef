//! Reading an open file: find the chunks covering a byte range (O(log n) in the content list,
//! then a binary search in the cached leaf run), copy them out of the blob cache, serve zero
//! extents without touching the repository, and prefetch ahead of sequential readers.
//!
//! Sequential detection: a read that starts within [`SEQUENTIAL_SLACK`] of where the previous
//! one ended (the kernel's readahead may issue a few requests out of order) extends a streak;
//! the prefetch window doubles with the streak from [`WINDOW_MIN`] up to [`WINDOW_MAX`] (never
//! more than a quarter of the cache, so prefetched chunks are not evicted before use). A jump
//! resets the streak, so random readers cause no prefetch at all.

use std::sync::Arc;

use cairn_format::BlobId;
use cairn_format::content::{Content, ContentEntry, LeafRun};
use parking_lot::Mutex;

use crate::cache::{Blob, BlobCache, Prefetcher};
use crate::error::{FsError, FsResult};

pub const WINDOW_MIN: u64 = 4 << 20;
pub const WINDOW_MAX: u64 = 64 << 20;
pub const SEQUENTIAL_SLACK: u64 = 1 << 20;

/// Bytes for a read reply: a range of a cached chunk when the read falls inside one chunk
/// (no copy), else assembled.
#[derive(Debug)]
pub enum FileData {
    Shared { blob: Blob, range: std::ops::Range<usize> },
    Owned(Vec<u8>),
}

impl FileData {
    pub fn as_slice(&self) -> &[u8] {
        match self {
            FileData::Shared { blob, range } => &blob[range.clone()],
            FileData::Owned(bytes) => bytes,
        }
    }
}

/// A file opened through the mount.
pub struct OpenFile {
    /// Path inside the mount, for log lines.
    path: String,
    content: Content,
    size: u64,
    state: Mutex<ReadState>,
}

#[derive(Default)]
struct ReadState {
    /// The leaf run of the last read: consecutive reads rarely need another node load.
    leaf: Option<Arc<LeafRun>>,
    /// Furthest byte handed out so far.
    read_end: u64,
    streak: u32,
    /// Prefetch has been requested for everything before this offset.
    prefetched_to: u64,
}

impl OpenFile {
    pub fn new(path: String, content: Content, size: u64) -> Self {
        Self { path, content, size, state: Mutex::default() }
    }

    /// Up to `length` bytes at `offset` (fewer only at the end of the file).
    pub fn read(
        &self,
        cache: &BlobCache,
        prefetcher: &Prefetcher,
        offset: u64,
        length: u32,
    ) -> FsResult<FileData> {
        let end = offset.saturating_add(u64::from(length)).min(self.size);
        if offset >= end {
            return Ok(FileData::Owned(Vec::new()));
        }
        let (leaf, prefetch) = self.note_read(offset, end, cache.capacity());
        if let Some((from, to)) = prefetch {
            self.prefetch(cache, prefetcher, from, to);
        }
        let mut leaf = match leaf.filter(|l| l.start() <= offset && offset < l.end()) {
            Some(leaf) => leaf,
            None => self.leaf_at(cache, offset)?,
        };
        if let Some((start, entry)) = leaf.find(offset)
            && end <= start + entry.length()
        {
            let single = self.single_entry(cache, &entry, offset - start, end - offset)?;
            self.state.lock().leaf = Some(leaf);
            return Ok(single);
        }
        let mut out = Vec::with_capacity((end - offset) as usize);
        let mut pos = offset;
        while pos < end {
            if pos >= leaf.end() {
                leaf = self.leaf_at(cache, pos)?;
            }
            let first = leaf.position(pos).ok_or_else(|| self.short_content(pos))?;
            for (start, entry) in leaf.from_position(first) {
                if pos >= end {
                    break;
                }
                let skip = pos - start;
                let take = (entry.length() - skip).min(end - pos);
                self.copy_entry(cache, &entry, skip, take, &mut out)?;
                pos += take;
            }
        }
        self.state.lock().leaf = Some(leaf);
        Ok(FileData::Owned(out))
    }

    /// A read inside one entry: zeros, or a slice of the cached chunk without copying.
    fn single_entry(
        &self,
        cache: &BlobCache,
        entry: &ContentEntry,
        skip: u64,
        take: u64,
    ) -> FsResult<FileData> {
        match *entry {
            ContentEntry::Zero { .. } => Ok(FileData::Owned(vec![0; take as usize])),
            ContentEntry::Data { id, length } => {
                let blob = self.chunk(cache, &id, length)?;
                let range = skip as usize..(skip + take) as usize;
                Ok(FileData::Shared { blob, range })
            }
        }
    }

    /// A data chunk's plaintext, checked against the length the content list records.
    fn chunk(&self, cache: &BlobCache, id: &BlobId, length: u32) -> FsResult<Blob> {
        let blob = cache.get(id).map_err(|e| self.damaged(id, &e))?;
        if blob.len() != length as usize {
            let error = format!("{} bytes where the content list says {length}", blob.len());
            return Err(self.damaged(id, &error));
        }
        Ok(blob)
    }

    fn copy_entry(
        &self,
        cache: &BlobCache,
        entry: &ContentEntry,
        skip: u64,
        take: u64,
        out: &mut Vec<u8>,
    ) -> FsResult<()> {
        match *entry {
            ContentEntry::Zero { .. } => out.resize(out.len() + take as usize, 0),
            ContentEntry::Data { id, length } => {
                let blob = self.chunk(cache, &id, length)?;
                out.extend_from_slice(&blob[skip as usize..(skip + take) as usize]);
            }
        }
        Ok(())
    }

    /// Records a read and decides what to prefetch; returns the cached leaf run too.
    fn note_read(
        &self,
        offset: u64,
        end: u64,
        cache_capacity: u64,
    ) -> (Option<Arc<LeafRun>>, Option<(u64, u64)>) {
        let mut state = self.state.lock();
        let sequential = offset == 0 || offset.abs_diff(state.read_end) <= SEQUENTIAL_SLACK;
        if !sequential {
            state.streak = 0;
            state.read_end = end;
            state.prefetched_to = end;
            return (state.leaf.clone(), None);
        }
        state.streak += 1;
        state.read_end = state.read_end.max(end);
        let window = (WINDOW_MIN << state.streak.min(8)).min(WINDOW_MAX).min(cache_capacity / 4);
        let from = state.prefetched_to.max(end);
        let to = end.saturating_add(window).min(self.size);
        // Refill only when half the window has been consumed: fewer, larger batches.
        if from >= to || to - from < window / 2 {
            return (state.leaf.clone(), None);
        }
        state.prefetched_to = to;
        (state.leaf.clone(), Some((from, to)))
    }

    /// Asks the workers for every data chunk overlapping `[from, to)` not cached yet.
    fn prefetch(&self, cache: &BlobCache, prefetcher: &Prefetcher, from: u64, to: u64) {
        let mut pos = from;
        while pos < to {
            let Ok(leaf) = self.leaf_at(cache, pos) else {
                return; // the reader will hit and report the same error
            };
            let Some(first) = leaf.position(pos) else {
                return;
            };
            for (start, entry) in leaf.from_position(first) {
                if start >= to {
                    return;
                }
                if let ContentEntry::Data { id, .. } = entry
                    && !cache.contains(&id)
                {
                    prefetcher.request(id);
                }
            }
            pos = leaf.end();
        }
    }

    fn leaf_at(&self, cache: &BlobCache, offset: u64) -> FsResult<Arc<LeafRun>> {
        let load = |id: &BlobId| cache.get(id).map(|blob| blob.to_vec());
        match self.content.leaf_at(offset, &load) {
            Ok(Some(leaf)) => Ok(Arc::new(leaf)),
            Ok(None) => Err(self.short_content(offset)),
            Err(error) => {
                tracing::error!(path = %self.path, %error, "cannot read the file's content list");
                Err(FsError::Repository(error.to_string()))
            }
        }
    }

    fn damaged(&self, id: &BlobId, error: &dyn std::fmt::Display) -> FsError {
        tracing::error!(path = %self.path, blob = %id, %error, "cannot read a chunk of the file");
        FsError::Repository(format!("{}: blob {id}: {error}", self.path))
    }

    fn short_content(&self, offset: u64) -> FsError {
        tracing::error!(
            path = %self.path,
            offset,
            size = self.size,
            "the content list ends before the file's size"
        );
        FsError::Repository(format!("{}: no content at offset {offset}", self.path))
    }
}
