//! `check`: proves a repository restorable. The structure pass reads every piece of metadata
//! (key files, index segments, pack sizes, snapshots, every reachable tree and content node)
//! and checks that every referenced blob is indexed; `--read-data` then reads packs and opens
//! every blob in them. What is lost is mapped back to snapshots and paths.
//!
//! Invariant: `CheckReport::is_clean` is true only when everything that was checked verified,
//! except damaged copies of blobs nothing needs: a blob with an intact copy elsewhere (after a
//! healing backup), or one no snapshot references (after `repair snapshots`). Those are
//! reported, lose nothing, and do not fail the check.

mod damage;
mod read_data;
mod structure;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Result;
use cairn_format::index::BlobLocation;
use cairn_format::pack::PackEntry;
use cairn_format::{BlobId, PackId, Repository, SnapshotId};
use serde::Serialize;

pub use read_data::Subset;

use crate::progress::Progress;

/// What to check.
#[derive(Clone, Debug, Default)]
pub struct CheckOptions {
    /// Read and verify pack contents.
    pub read_data: bool,
    /// Only these packs (implies `read_data`).
    pub subset: Option<Subset>,
    /// Skip packs that verified completely within this long (implies `read_data`).
    pub max_age: Option<Duration>,
    /// Readers working at once (0: one per core, plus one).
    pub readers: usize,
    pub interrupt: Arc<AtomicBool>,
}

/// A piece of metadata that failed to decode or is missing.
#[derive(Clone, Debug, Serialize)]
pub struct Problem {
    /// `key file`, `index segment`, `pack`, `snapshot`, `tree`, `blob`, ...
    pub what: &'static str,
    pub name: String,
    pub error: String,
}

/// A pack whose bytes are not what the index says.
#[derive(Clone, Debug, Serialize)]
pub struct DamagedPack {
    pub pack: PackId,
    pub reason: String,
    /// The pack is missing, has the wrong size, or its header is unreadable or disagrees with
    /// the index: more than the listed blobs is wrong.
    pub structural: bool,
    /// Blobs in it that failed to open or verify (or all its blobs when it is missing).
    pub damaged_blobs: Vec<BlobId>,
    /// Of those, blobs with no intact copy elsewhere.
    pub lost_blobs: Vec<BlobId>,
    /// Only blobs are damaged, and none of them is needed: each has an intact copy in another
    /// pack (a later backup stored it again; the index now uses that copy), or no snapshot
    /// references it (any more). Nothing is lost; prune removes the damaged copies.
    pub harmless: bool,
}

/// A file or directory of a snapshot that cannot be restored completely.
#[derive(Clone, Debug, Serialize)]
pub struct Affected {
    pub snapshot: SnapshotId,
    pub path: String,
    /// Bytes of the file that cannot be restored (for a directory whose listing is lost: 0,
    /// its contents are unknown).
    pub lost_bytes: u64,
    /// `file` or `directory`.
    pub kind: &'static str,
}

/// What `--read-data` covered.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ReadSummary {
    pub packs_in_repository: u64,
    pub packs_read: u64,
    pub bytes_read: u64,
    /// Selected, but verified recently enough for `--max-age`.
    pub packs_skipped_recent: u64,
    pub blobs_verified: u64,
    /// False when interrupted: what was read is recorded, and a rerun with `--max-age`
    /// continues from there.
    pub complete: bool,
}

/// Everything `check` found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CheckReport {
    pub snapshots: u64,
    pub trees: u64,
    pub referenced_blobs: u64,
    pub indexed_packs: u64,
    /// Indexed packs prune has marked unused (deleted, or to be deleted by a later prune).
    pub marked_packs: u64,
    pub problems: Vec<Problem>,
    pub damaged_packs: Vec<DamagedPack>,
    pub affected: Vec<Affected>,
    /// Packs in `data/` that no index segment names (left by an interrupted backup; the next
    /// backup indexes them).
    pub unindexed_packs: Vec<PackId>,
    /// Temporary objects of interrupted writes (a killed backup's partial pack), and their
    /// bytes: harmless, and `prune` removes them once no running backup can own them.
    pub leftovers: u64,
    pub leftover_bytes: u64,
    /// Indexed packs none of whose blobs anything references.
    pub unused_packs: Vec<PackId>,
    pub unused_blobs: u64,
    pub unused_bytes: u64,
    pub read: Option<ReadSummary>,
}

impl CheckReport {
    /// Nothing is missing, unreadable or damaged.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
            && self.affected.is_empty()
            && self.damaged_packs.iter().all(|d| d.harmless)
    }

    /// Bytes of files that cannot be restored, over all snapshots.
    pub fn lost_bytes(&self) -> u64 {
        self.affected.iter().map(|a| a.lost_bytes).sum()
    }
}

/// What the index segments say, loaded once: the packs with their blobs.
pub(crate) struct IndexedPacks {
    pub packs: HashMap<PackId, IndexedPackInfo>,
    /// Packs prune marked unused (their files may already be gone).
    pub marked: HashSet<PackId>,
}

pub(crate) struct IndexedPackInfo {
    pub size: u64,
    pub entries: Vec<PackEntry>,
}

/// Runs the check. Errors are reserved for failures to check at all (the repository cannot be
/// listed); everything found wrong is in the report.
pub fn check(
    repo: &Repository,
    options: &CheckOptions,
    progress: &Progress,
) -> Result<CheckReport> {
    let span = tracing::info_span!("check", repo = %repo.location());
    let _enter = span.enter();
    let mut report = CheckReport::default();
    let indexed = structure::load_index(repo, &mut report)?;
    let listed = structure::check_packs(repo, &indexed, &mut report)?;
    let walk = structure::check_snapshots(repo, &listed, &mut report)?;
    structure::report_unused(&indexed, &walk.referenced, &mut report);
    if options.read_data || options.subset.is_some() || options.max_age.is_some() {
        read_data::read_packs(repo, &indexed, &listed, options, progress, &mut report)?;
    }
    let mut lost = resolve_losses(repo, &indexed, &walk.referenced, &mut report)?;
    lost.extend(walk.unindexed.iter().copied());
    if !lost.is_empty() {
        report.affected = damage::affected_paths(repo, &walk.snapshots, &lost)?;
    }
    Ok(report)
}

/// Sorts damaged copies into lost blobs and those with an intact copy in another pack (the
/// local index is pointed at it, so restores use it). Returns the lost blobs.
fn resolve_losses(
    repo: &Repository,
    indexed: &IndexedPacks,
    referenced: &HashSet<BlobId>,
    report: &mut CheckReport,
) -> Result<HashSet<BlobId>> {
    let damaged: HashSet<(PackId, BlobId)> = report
        .damaged_packs
        .iter()
        .flat_map(|d| d.damaged_blobs.iter().map(|b| (d.pack, *b)))
        .collect();
    let wanted: HashSet<BlobId> = damaged.iter().map(|(_, blob)| *blob).collect();
    let mut intact: HashMap<BlobId, BlobLocation> = HashMap::new();
    for (pack, info) in &indexed.packs {
        for entry in info.entries.iter().filter(|e| wanted.contains(&e.id)) {
            if !damaged.contains(&(*pack, entry.id)) {
                intact.insert(entry.id, BlobLocation::new(*pack, entry));
            }
        }
    }
    let mut lost = HashSet::new();
    for pack in &mut report.damaged_packs {
        for blob in &pack.damaged_blobs {
            if let Some(location) = intact.get(blob) {
                repo.index().set_location(blob, location)?;
            } else {
                pack.lost_blobs.push(*blob);
                lost.insert(*blob);
            }
        }
        pack.harmless = !pack.structural && pack.lost_blobs.iter().all(|b| !referenced.contains(b));
    }
    report.damaged_packs.sort_by_key(|d| d.pack);
    Ok(lost)
}

/// For messages: packs grouped with the snapshots and paths their losses affect.
pub fn affected_by_snapshot(report: &CheckReport) -> BTreeMap<SnapshotId, Vec<&Affected>> {
    let mut out: BTreeMap<SnapshotId, Vec<&Affected>> = BTreeMap::new();
    for affected in &report.affected {
        out.entry(affected.snapshot).or_default().push(affected);
    }
    out
}
