//! How a regular file is cut into pieces before chunking: holes the file system reports
//! (SEEK_HOLE) are skipped, and data is split on a fixed grid of [`SEGMENT`] bytes of file
//! offset. The chunker restarts at the start of every piece, so a piece's chunks depend only on
//! its own bytes and pieces can be chunked in parallel, one per core, and still deduplicate
//! against the previous backup of the same image (docs/format.md, section 6).

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;

/// Chunking restarts at every multiple of this file offset (64 MiB). Large enough that the
/// extra cuts cost nothing measurable in dedup (one short chunk per 64 MiB), small enough to
/// give every core work in a file of a few hundred MiB.
pub const SEGMENT: u64 = 64 << 20;

/// Holes shorter than this are read like data: chunking restarts after every skipped hole, so
/// skipping small ones would only cut chunks short. Zeros read are still stored as zero
/// extents when a whole chunk is zero.
pub const HOLE_MIN: u64 = 1 << 20;

/// A piece of a file, in file order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Piece {
    /// That many bytes of hole, recorded without reading.
    Hole(u64),
    /// `length` bytes of data at `start`, inside one segment.
    Data { start: u64, length: u64 },
}

impl Piece {
    pub fn length(&self) -> u64 {
        match *self {
            Piece::Hole(length) | Piece::Data { length, .. } => length,
        }
    }
}

/// The pieces of a file of `size` bytes: holes and data, data split at segment boundaries.
pub fn pieces(file: &File, size: u64) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut position = 0;
    for (start, length) in data_extents(file, size) {
        if start > position {
            out.push(Piece::Hole(start - position));
        }
        split_on_grid(start, start + length, &mut out);
        position = start + length;
    }
    if size > position {
        out.push(Piece::Hole(size - position));
    }
    out
}

fn split_on_grid(mut start: u64, end: u64, out: &mut Vec<Piece>) {
    while start < end {
        let boundary = (start / SEGMENT + 1) * SEGMENT;
        let stop = boundary.min(end);
        out.push(Piece::Data { start, length: stop - start });
        start = stop;
    }
}

/// The data extents `(offset, length)` of a file, from SEEK_DATA/SEEK_HOLE, with holes
/// shorter than [`HOLE_MIN`] folded into the data around them. A file system that cannot tell
/// gets the whole file as one extent (everything is read).
pub fn data_extents(file: &File, size: u64) -> Vec<(u64, u64)> {
    use nix::unistd::{Whence, lseek};
    let whole = vec![(0, size)];
    let mut extents: Vec<(u64, u64)> = Vec::new();
    let mut position = 0u64;
    while position < size {
        let Ok(offset) = i64::try_from(position) else {
            return whole;
        };
        let start = match lseek(file, offset, Whence::SeekData) {
            Ok(start) => (start as u64).min(size),
            Err(nix::errno::Errno::ENXIO) => break, // only a hole is left
            Err(_) => return whole,
        };
        let end = match lseek(file, start as i64, Whence::SeekHole) {
            Ok(end) => (end as u64).clamp(start, size),
            Err(_) => return whole,
        };
        if start >= end {
            break;
        }
        let gap_from = extents.last().map_or(0, |&(s, l)| s + l);
        match extents.last_mut() {
            Some(last) if start - gap_from < HOLE_MIN => last.1 = end - last.0,
            None if start < HOLE_MIN => extents.push((0, end)),
            _ => extents.push((start, end - start)),
        }
        position = end;
    }
    if let Some(last) = extents.last_mut()
        && size - (last.0 + last.1) < HOLE_MIN
    {
        last.1 = size - last.0;
    }
    extents
}

/// Byte ranges of an image that changed since its last backup (`--changed-ranges`), sorted
/// and merged. A hint, not a fact: see `ChangedRanges::touches` and docs/format.md.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChangedRanges {
    /// `(start, end)`, sorted, disjoint.
    ranges: Vec<(u64, u64)>,
    /// Read the unchanged pieces too and check them against the parent (`--verify-unchanged`).
    pub verify: bool,
}

#[derive(serde::Deserialize)]
struct Range {
    offset: u64,
    length: u64,
}

impl ChangedRanges {
    /// Parses a JSON list of `{"offset": N, "length": N}` objects (other fields, such as those
    /// `qemu-img map --output=json` prints, are ignored).
    pub fn parse(json: &str) -> anyhow::Result<Self> {
        let mut ranges: Vec<(u64, u64)> = serde_json::from_str::<Vec<Range>>(json)?
            .into_iter()
            .filter(|r| r.length > 0)
            .map(|r| (r.offset, r.offset.saturating_add(r.length)))
            .collect();
        ranges.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
        for (start, end) in ranges {
            match merged.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        Ok(Self { ranges: merged, verify: false })
    }

    /// Whether any changed range overlaps `[start, end)`.
    pub fn touches(&self, start: u64, end: u64) -> bool {
        let i = self.ranges.partition_point(|&(_, e)| e <= start);
        self.ranges.get(i).is_some_and(|&(s, _)| s < end)
    }
}

/// Reads `[position, end)` of a file with `pread`, so several readers can share one `File`.
pub struct RangeReader<'f> {
    file: &'f File,
    position: u64,
    end: u64,
}

impl<'f> RangeReader<'f> {
    pub fn new(file: &'f File, start: u64, length: u64) -> Self {
        Self { file, position: start, end: start + length }
    }
}

impl Read for RangeReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = usize::try_from(self.end - self.position).unwrap_or(usize::MAX);
        let want = buf.len().min(left);
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.position)?;
        self.position += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sparse_file(size: u64, writes: &[u64]) -> (tempfile::TempDir, File) {
        let dir = tempfile::tempdir().unwrap();
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.path().join("img"))
            .unwrap();
        file.set_len(size).unwrap();
        for &offset in writes {
            file.write_all_at(&[7u8; 3000], offset).unwrap();
        }
        (dir, file)
    }

    #[test]
    fn data_extents_skip_large_holes_and_fold_small_ones() {
        let size = (256 << 20) + 12_345;
        let (_dir, file) =
            sparse_file(size, &[4096, 100 << 20, (100 << 20) + (512 << 10), size - 5000]);
        let extents = data_extents(&file, size);
        if extents == [(0, size)] {
            eprintln!("skipping: this file system does not report holes (SEEK_HOLE)");
            return;
        }
        // The leading 4 KiB hole and the 512 KiB gap are read; the big holes are skipped.
        assert_eq!(extents.len(), 3, "{extents:?}");
        assert_eq!(extents[0].0, 0);
        let (start, length) = extents[1];
        assert!(start <= 100 << 20 && start + length >= (100 << 20) + (512 << 10) + 3000);
        assert_eq!(extents[2].0 + extents[2].1, size, "a short trailing hole is folded in");
        let read: u64 = extents.iter().map(|e| e.1).sum();
        assert!(read < 16 << 20, "{read} bytes would be read");
    }

    #[test]
    fn pieces_tile_the_file_and_never_cross_a_segment_boundary() {
        let size = 5 * SEGMENT + 777;
        let (_dir, file) = sparse_file(size, &[0, SEGMENT - 10, 3 * SEGMENT + 5, size - 100]);
        let pieces = pieces(&file, size);
        let mut position = 0;
        for piece in &pieces {
            match *piece {
                Piece::Hole(length) => position += length,
                Piece::Data { start, length } => {
                    assert_eq!(start, position, "{pieces:?}");
                    assert_eq!(start / SEGMENT, (start + length - 1) / SEGMENT, "{piece:?}");
                    position += length;
                }
            }
        }
        assert_eq!(position, size);
    }

    #[test]
    fn changed_ranges_merge_and_answer_overlaps() {
        let json = r#"[{"offset": 100, "length": 50, "data": true},
                       {"offset": 0, "length": 10},
                       {"offset": 140, "length": 60},
                       {"offset": 500, "length": 0}]"#;
        let ranges = ChangedRanges::parse(json).unwrap();
        assert_eq!(ranges.ranges, [(0, 10), (100, 200)]);
        assert!(ranges.touches(5, 6));
        assert!(!ranges.touches(10, 100));
        assert!(ranges.touches(199, 300));
        assert!(!ranges.touches(200, 1000));
        assert!(ChangedRanges::parse("{\"offset\": 1}").is_err());
    }

    #[test]
    fn a_dense_file_is_cut_only_on_the_grid() {
        let (_dir, file) = sparse_file(0, &[]);
        file.write_all_at(&vec![1u8; (2 * SEGMENT + 9) as usize], 0).unwrap();
        let size = 2 * SEGMENT + 9;
        assert_eq!(
            pieces(&file, size),
            [
                Piece::Data { start: 0, length: SEGMENT },
                Piece::Data { start: SEGMENT, length: SEGMENT },
                Piece::Data { start: 2 * SEGMENT, length: 9 },
            ]
        );
    }
}
