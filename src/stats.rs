//! `stats`: how big the snapshots are when restored, and what they take in the repository.
//!
//! Restore size counts every file of every selected snapshot at its apparent size (a file in
//! ten snapshots counts ten times), from a walk that reads each tree once (subtree sizes are
//! remembered). Raw data counts each blob the selected snapshots reference once: its plaintext
//! size and its stored (compressed, sealed) size, from the index.

use std::collections::{HashMap, HashSet};

use anyhow::{Context, Result};
use cairn_format::content::{Content, ContentEntry};
use cairn_format::snapshot::Snapshot;
use cairn_format::tree::NodeKind;
use cairn_format::{BlobId, Repository, SnapshotId};
use serde::Serialize;

/// What to count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StatsMode {
    #[default]
    RestoreSize,
    RawData,
}

/// The numbers.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Stats {
    pub snapshots: u64,
    pub files: u64,
    pub restore_size: u64,
    /// Raw-data mode only.
    pub blobs: Option<u64>,
    /// Plaintext bytes of the unique blobs.
    pub raw_size: Option<u64>,
    /// Their bytes as stored.
    pub stored_size: Option<u64>,
    /// raw / stored.
    pub compression_ratio: Option<f64>,
    /// restore size / raw.
    pub dedup_ratio: Option<f64>,
}

/// Files and bytes under a tree, counted once per tree id.
#[derive(Clone, Copy, Default)]
struct Size {
    files: u64,
    bytes: u64,
}

/// Computes the statistics of `snapshots`.
pub fn stats(
    repo: &Repository,
    snapshots: &[(SnapshotId, Snapshot)],
    mode: StatsMode,
) -> Result<Stats> {
    let mut walker = Walker {
        repo,
        sizes: HashMap::new(),
        blobs: (mode == StatsMode::RawData).then(HashSet::new),
    };
    let mut out = Stats {
        snapshots: snapshots.len() as u64,
        ..Stats::default()
    };
    for (_, snapshot) in snapshots {
        let size = walker.tree(&snapshot.tree)?;
        out.files += size.files;
        out.restore_size += size.bytes;
    }
    if let Some(blobs) = walker.blobs {
        let (mut raw, mut stored) = (0u64, 0u64);
        let ids: Vec<BlobId> = blobs.into_iter().collect();
        for chunk in ids.chunks(1024) {
            for (id, location) in chunk.iter().zip(repo.index().lookup_many(chunk)?) {
                let location = location.with_context(|| format!("blob {id} is not indexed"))?;
                raw += u64::from(location.raw_length);
                stored += u64::from(location.length);
            }
        }
        out.blobs = Some(ids.len() as u64);
        out.raw_size = Some(raw);
        out.stored_size = Some(stored);
        out.compression_ratio = Some(raw as f64 / stored.max(1) as f64);
        out.dedup_ratio = Some(out.restore_size as f64 / raw.max(1) as f64);
    }
    Ok(out)
}

struct Walker<'a> {
    repo: &'a Repository,
    sizes: HashMap<BlobId, Size>,
    /// Every referenced blob, in raw-data mode.
    blobs: Option<HashSet<BlobId>>,
}

impl Walker<'_> {
    fn tree(&mut self, id: &BlobId) -> Result<Size> {
        if let Some(size) = self.sizes.get(id) {
            return Ok(*size);
        }
        self.note(id);
        let tree = self
            .repo
            .load_tree(id)
            .with_context(|| format!("tree {id}: run `cairn check`"))?;
        let mut size = Size::default();
        for node in &tree.nodes {
            match &node.kind {
                NodeKind::Directory { subtree } => {
                    let below = self.tree(subtree)?;
                    size.files += below.files;
                    size.bytes += below.bytes;
                }
                NodeKind::File { content } => {
                    size.files += 1;
                    size.bytes += node.size;
                    if self.blobs.is_some() {
                        self.content(content)?;
                    }
                }
                _ => {}
            }
        }
        self.sizes.insert(*id, size);
        Ok(size)
    }

    fn note(&mut self, id: &BlobId) -> bool {
        self.blobs.as_mut().is_some_and(|blobs| blobs.insert(*id))
    }

    fn content(&mut self, content: &Content) -> Result<()> {
        let Some(blobs) = self.blobs.as_mut() else {
            return Ok(());
        };
        let (mut data, mut failure) = (Vec::new(), None);
        content.visit_blobs(
            &|id| self.repo.read_blob(id),
            &mut |id| blobs.insert(*id),
            &mut |entry| {
                if let ContentEntry::Data { id, .. } = entry {
                    data.push(*id);
                }
            },
            &mut |id, error| {
                failure.get_or_insert_with(|| anyhow::anyhow!("content node {id}: {error}"));
            },
        );
        blobs.extend(data);
        failure.map_or(Ok(()), Err)
    }
}
