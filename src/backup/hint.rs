//! `--changed-ranges`: taking the unchanged pieces of an image from its parent snapshot.
//!
//! Chunking restarts at every piece (`extent.rs`), so a piece whose bytes did not change has
//! exactly the parent's entries for that byte range. Those are reused only when they lie wholly
//! inside the piece (a parent written with other piece boundaries is simply read again) and
//! their blobs are still in the repository.

use cairn_format::content::{Content, ContentEntry};
use cairn_format::packer::BlobWriter;
use cairn_format::{BlobId, Repository};

/// The parent's entries covering `[start, end)`, or `None` when they cannot stand for it.
pub fn parent_entries(
    repo: &Repository,
    writer: &BlobWriter,
    parent: &Content,
    start: u64,
    end: u64,
) -> Option<Vec<ContentEntry>> {
    let load = |id: &BlobId| repo.read_blob(id);
    let mut out = Vec::new();
    let mut position = start;
    while position < end {
        let leaf = parent.leaf_at(position, &load).ok()??;
        let first = leaf.position(position)?;
        for (entry_start, entry) in leaf.from_position(first) {
            if position >= end {
                break;
            }
            let entry_end = entry_start + entry.length();
            match entry {
                ContentEntry::Zero { .. } => {
                    let stop = entry_end.min(end);
                    out.push(ContentEntry::Zero { length: stop - position });
                    position = stop;
                }
                ContentEntry::Data { id, .. } => {
                    if entry_start < start || entry_end > end || !writer.has(&id).unwrap_or(false) {
                        return None;
                    }
                    out.push(entry);
                    position = entry_end;
                }
            }
        }
    }
    Some(out)
}

/// Whether two entry lists describe the same bytes (zero runs may be cut differently).
pub fn same_bytes(a: &[ContentEntry], b: &[ContentEntry]) -> bool {
    merged_zeros(a) == merged_zeros(b)
}

fn merged_zeros(entries: &[ContentEntry]) -> Vec<ContentEntry> {
    let mut out: Vec<ContentEntry> = Vec::with_capacity(entries.len());
    for entry in entries {
        match (out.last_mut(), entry) {
            (Some(ContentEntry::Zero { length }), ContentEntry::Zero { length: more }) => {
                *length += more;
            }
            (_, ContentEntry::Zero { length: 0 }) => {}
            _ => out.push(*entry),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_runs_cut_differently_are_the_same_bytes() {
        let data = ContentEntry::Data { id: BlobId([1; 32]), length: 10 };
        let a = [ContentEntry::Zero { length: 5 }, ContentEntry::Zero { length: 7 }, data];
        let b = [ContentEntry::Zero { length: 12 }, data];
        assert!(same_bytes(&a, &b));
        assert!(!same_bytes(&a, &[ContentEntry::Zero { length: 11 }, data]));
        assert!(!same_bytes(&b, &[data]));
    }
}
