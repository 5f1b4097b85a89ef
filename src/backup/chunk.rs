//! Chunking the pieces of a file: the shared context the walker and its helper threads chunk
//! with, the jobs they run for a large file (read a piece, or patch it against the parent with
//! a `--changed-ranges` map), and how each piece of a window is handled.

use std::fs::File;
use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use anyhow::Result;
use cairn_format::Repository;
use cairn_format::chunker::Chunker;
use cairn_format::content::ContentEntry;
use cairn_format::pack::BlobKind;
use cairn_format::packer::BlobWriter;

use super::extent::{ChangedRanges, Piece, RangeReader};
use crate::outcome::Interrupted;
use crate::progress::Progress;

/// How many bytes the walk read, skipped as holes, and found to be zeros (reported, not stored).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReadStats {
    /// Bytes read from files and stdin.
    pub bytes_read: u64,
    /// Bytes in holes of sparse files, recorded as zero extents without being read.
    pub bytes_holes: u64,
    /// Bytes read that were all-zero chunks, recorded as zero extents.
    pub bytes_zero: u64,
    /// Bytes taken from the parent snapshot without reading, as `--changed-ranges` allowed.
    pub bytes_unchanged: u64,
}

impl ReadStats {
    pub(super) fn add(&mut self, other: &ReadStats) {
        self.bytes_read += other.bytes_read;
        self.bytes_holes += other.bytes_holes;
        self.bytes_zero += other.bytes_zero;
        self.bytes_unchanged += other.bytes_unchanged;
    }
}

/// A piece of a stream's content, in order.
pub(super) enum Run<R> {
    Hole(u64),
    Data(R),
}

/// How a piece is handled.
pub(super) enum PieceAction {
    Reuse(Vec<ContentEntry>),
    Job(Job),
}

/// A piece's place in a window: its entries, or where its job's result comes from.
pub(super) enum Plan {
    Reuse(Vec<ContentEntry>),
    /// Read anyway (`--verify-unchanged`) and compare with these.
    Check(Vec<ContentEntry>),
    Take,
}

/// Work for a chunking thread.
pub(super) enum Job {
    Read(Piece),
    /// A data piece `[range.0, range.1)` that a changed range touches, with the parent's
    /// entries for it.
    Patch {
        range: (u64, u64),
        parent: Vec<ContentEntry>,
    },
}

/// What chunking needs, shared by the threads that chunk pieces of one large file.
#[derive(Clone, Copy)]
pub(super) struct ChunkContext<'a> {
    pub repo: &'a Repository,
    /// The file profile or the image profile, chosen by size (`Repository::chunker_for`).
    pub chunker: &'a Chunker,
    /// zstd level for new chunks, chosen with the chunker (`Repository::compression_for`)
    /// unless the backup sets one.
    pub compression_level: i32,
    pub writer: &'a BlobWriter,
    pub progress: &'a Progress,
    pub interrupt: &'a AtomicBool,
}

impl ChunkContext<'_> {
    /// Chunks a stream: new data chunks go to the writer, all-zero chunks become zero
    /// extents; `emit` receives the entries in order and returns whether to go on. Returns the
    /// chunker's buffer for reuse.
    pub fn chunk(
        &self,
        source: impl Read,
        buffer: Vec<u8>,
        reads: &mut ReadStats,
        emit: &mut dyn FnMut(ContentEntry) -> Result<bool>,
    ) -> Result<Vec<u8>> {
        let key = self.repo.key();
        let mut reader = self.chunker.reader_with_buffer(source, buffer);
        while let Some(chunk) = reader.next_chunk()? {
            if self.interrupt.load(Ordering::Relaxed) {
                return Err(Interrupted.into());
            }
            let length = chunk.len() as u32;
            reads.bytes_read += u64::from(length);
            self.progress.add_read(u64::from(length));
            let entry = if chunk.iter().all(|&b| b == 0) {
                reads.bytes_zero += u64::from(length);
                self.progress.add_zero(u64::from(length));
                ContentEntry::Zero { length: u64::from(length) }
            } else {
                let id = key.blob_id(chunk);
                let level = self.compression_level;
                if self.writer.add_at(BlobKind::Data, id, level, || chunk.to_vec())? {
                    self.progress.add_new(u64::from(length));
                }
                ContentEntry::Data { id, length }
            };
            if !emit(entry)? {
                break;
            }
        }
        Ok(reader.into_buffer())
    }

    /// One piece of a file, as its entries (run on a worker thread).
    fn piece(&self, file: &File, piece: Piece) -> Result<(Vec<ContentEntry>, ReadStats)> {
        let mut reads = ReadStats::default();
        let mut entries = Vec::new();
        match piece {
            Piece::Hole(length) => {
                reads.bytes_holes = length;
                self.progress.add_hole(length);
                entries.push(ContentEntry::Zero { length });
            }
            Piece::Data { start, length } => {
                let source = RangeReader::new(file, start, length);
                self.chunk(source, Vec::new(), &mut reads, &mut |entry| {
                    entries.push(entry);
                    Ok(true)
                })?;
            }
        }
        Ok((entries, reads))
    }

    /// Re-chunks a piece of which only some byte ranges changed since `parent` (its entries
    /// for `[start, end)`): the parent's entries are kept up to the last cut before a change,
    /// the bytes are chunked from there, and the parent's entries are taken again as soon as
    /// a new cut lands on one of the parent's cuts. Chunking starts afresh at every cut, so
    /// from such a cut on the parent's entries are what reading would give (for unchanged
    /// bytes, which is what the map promises).
    fn patch(
        &self,
        file: &File,
        (start, end): (u64, u64),
        parent: &[ContentEntry],
        ranges: &ChangedRanges,
    ) -> Result<(Vec<ContentEntry>, ReadStats)> {
        let mut cuts = Vec::with_capacity(parent.len() + 1);
        let mut at = start;
        for entry in parent {
            cuts.push(at);
            at += entry.length();
        }
        cuts.push(at);
        let (mut reads, mut out, mut i) = (ReadStats::default(), Vec::new(), 0);
        while i < parent.len() {
            if !ranges.touches(cuts[i], cuts[i + 1]) {
                reads.bytes_unchanged += cuts[i + 1] - cuts[i];
                self.progress.add_unchanged(cuts[i + 1] - cuts[i]);
                out.push(parent[i]);
                i += 1;
                continue;
            }
            let (mut position, mut resume) = (cuts[i], None);
            let source = RangeReader::new(file, position, end - position);
            self.chunk(source, Vec::new(), &mut reads, &mut |entry| {
                position += entry.length();
                out.push(entry);
                resume = cuts.binary_search(&position).ok().filter(|&j| j < parent.len());
                Ok(resume.is_none())
            })?;
            match resume {
                Some(j) => i = j,
                None => break,
            }
        }
        Ok((out, reads))
    }

    /// Chunks `jobs` on `workers` threads; results in job order.
    pub fn pieces(
        &self,
        file: &File,
        jobs: &[Job],
        ranges: Option<&ChangedRanges>,
        workers: usize,
    ) -> Result<Vec<(Vec<ContentEntry>, ReadStats)>> {
        let next = AtomicUsize::new(0);
        let slots: Vec<Mutex<Option<Result<_>>>> = jobs.iter().map(|_| Mutex::new(None)).collect();
        std::thread::scope(|scope| {
            for _ in 0..workers.min(jobs.len()) {
                scope.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(job) = jobs.get(i) else { break };
                        let result = match (job, ranges) {
                            (Job::Patch { range, parent }, Some(ranges)) => {
                                self.patch(file, *range, parent, ranges)
                            }
                            (Job::Patch { range, .. }, None) => self.piece(
                                file,
                                Piece::Data { start: range.0, length: range.1 - range.0 },
                            ),
                            (Job::Read(piece), _) => self.piece(file, *piece),
                        };
                        *slots[i].lock().unwrap_or_else(PoisonError::into_inner) = Some(result);
                    }
                });
            }
        });
        slots
            .into_iter()
            .map(|slot| {
                slot.into_inner()
                    .unwrap_or_else(PoisonError::into_inner)
                    .expect("every piece was taken by a worker")
            })
            .collect()
    }
}
