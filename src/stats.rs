//! `stats`: how big the snapshots are when restored, and what they take in the repository.
//!
//! Restore size counts every file of every selected snapshot at its apparent size (a file in
//! ten snapshots counts ten times), from a walk that reads each tree once (subtree sizes are
//! remembered). Raw data counts each blob the selected snapshots reference once: its plaintext
//! size and its stored (compressed, sealed) size, from the index.

use std::collections::{HashMap, HashSet};

use anyhow::{Context, Result, bail};
use cairn_format::snapshot::Snapshot;
use cairn_format::tree::{Node, NodeKind, Tree};
use cairn_format::{BlobId, Error, Repository, SnapshotId};
use serde::Serialize;

use crate::walk::{Listing, Place, Visitor, Walker};

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
    let mut sizer = Sizer { sizes: HashMap::new(), raw: mode == StatsMode::RawData };
    let mut walker = Walker::new(repo);
    let mut out = Stats { snapshots: snapshots.len() as u64, ..Stats::default() };
    for (_, snapshot) in snapshots {
        walker.walk(&snapshot.tree, &mut sizer)?;
        let size = sizer.size(&snapshot.tree);
        out.files += size.files;
        out.restore_size += size.bytes;
    }
    if sizer.raw {
        add_raw_sizes(repo, walker.seen(), &mut out)?;
    }
    Ok(out)
}

/// Adds the plaintext and stored sizes of `blobs`, each counted once.
fn add_raw_sizes(repo: &Repository, blobs: &HashSet<BlobId>, out: &mut Stats) -> Result<()> {
    let (mut raw, mut stored) = (0u64, 0u64);
    let ids: Vec<BlobId> = blobs.iter().copied().collect();
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
    Ok(())
}

/// Sums each tree once, after its subtrees; walks file contents only in raw-data mode.
struct Sizer {
    sizes: HashMap<BlobId, Size>,
    raw: bool,
}

impl Sizer {
    fn size(&self, tree: &BlobId) -> Size {
        self.sizes.get(tree).copied().unwrap_or_default()
    }
}

impl Visitor for Sizer {
    fn node(&mut self, node: &Node, _: &Place) -> Result<bool> {
        Ok(self.raw || !matches!(node.kind, NodeKind::File { .. }))
    }

    fn leave(&mut self, id: &BlobId, tree: &Tree, _: &Place) -> Result<()> {
        let mut size = Size::default();
        for node in &tree.nodes {
            match &node.kind {
                NodeKind::Directory { subtree } => {
                    let below = self.size(subtree);
                    size.files += below.files;
                    size.bytes += below.bytes;
                }
                NodeKind::File { .. } => {
                    size.files += 1;
                    size.bytes += node.size;
                }
                _ => {}
            }
        }
        self.sizes.insert(*id, size);
        Ok(())
    }

    fn failed(&mut self, id: &BlobId, listing: Listing, error: Error, _: &Place) -> Result<()> {
        bail!("{} {id}: {error}; run `cairn check`", listing.name())
    }
}
