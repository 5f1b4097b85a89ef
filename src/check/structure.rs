//! The structure pass of `check`: key files, index segments, pack presence and sizes,
//! snapshots, and every tree and content node reachable from them. Each tree and content node
//! is read once however many snapshots share it.

use std::collections::{HashMap, HashSet};
use std::fmt::Display;

use anyhow::Result;
use cairn_format::{BlobId, Error, PackId, Repository, SnapshotId};

use super::{CheckReport, DamagedPack, IndexedPackInfo, IndexedPacks, Problem};
use crate::walk::{Listing, Place, Visitor, Walker};

fn problem(what: &'static str, name: impl Display, error: impl Display) -> Problem {
    Problem { what, name: name.to_string(), error: error.to_string() }
}

/// Decodes every key file and index segment, and brings the local index up to date with the
/// readable segments.
pub(super) fn load_index(repo: &Repository, report: &mut CheckReport) -> Result<IndexedPacks> {
    for (id, decoded) in repo.key_files()? {
        if let Err(e) = decoded {
            report.problems.push(problem("key file", id, e));
        }
    }
    let mut packs = HashMap::new();
    let mut marked = HashSet::new();
    let segments = repo.load_segments()?;
    for (id, e) in segments.unreadable {
        report.problems.push(problem(
            "index segment",
            id,
            format!("{e} (`cairn repair index` rebuilds the index from the packs)"),
        ));
    }
    for (_, segment) in segments.current {
        marked.extend(segment.marked.iter().map(|m| m.pack));
        for pack in segment.packs {
            let info = IndexedPackInfo { size: pack.size, entries: pack.blobs };
            packs.insert(pack.id, info);
        }
    }
    // Unreadable segments were reported just above.
    repo.sync_index_tolerant()?;
    report.indexed_packs = packs.len() as u64;
    report.marked_packs = marked.len() as u64;
    Ok(IndexedPacks { packs, marked })
}

/// Compares the packs in `data/` with the index: missing and wrongly sized packs are damage,
/// unindexed ones are noted. Returns the listed packs with their sizes.
pub(super) fn check_packs(
    repo: &Repository,
    indexed: &IndexedPacks,
    report: &mut CheckReport,
) -> Result<HashMap<PackId, u64>> {
    let listing = repo.list_packs()?;
    for stray in &listing.strays {
        report.problems.push(problem(
            "object",
            stray,
            "not a pack name; remove it if you did not put it there",
        ));
    }
    let listed: HashMap<PackId, u64> = listing.packs.into_iter().collect();
    for (id, info) in &indexed.packs {
        if let Some(damaged) = listing_damage(id, info, listed.get(id), indexed) {
            report.damaged_packs.push(damaged);
        }
    }
    let mut unindexed: Vec<PackId> =
        (listed.keys()).filter(|id| !indexed.packs.contains_key(id)).copied().collect();
    unindexed.sort();
    report.unindexed_packs = unindexed;
    let leftovers = repo.leftovers()?;
    report.leftovers = leftovers.len() as u64;
    report.leftover_bytes = leftovers.iter().map(|l| l.size).sum();
    Ok(listed)
}

/// An indexed pack that is missing from the listing, or listed at another size.
fn listing_damage(
    id: &PackId,
    info: &IndexedPackInfo,
    listed_size: Option<&u64>,
    indexed: &IndexedPacks,
) -> Option<DamagedPack> {
    let (reason, entries) = match listed_size {
        // Prune deleted it; the index forgets it at the next prune.
        None if indexed.marked.contains(id) => return None,
        None => ("missing".to_string(), info.entries.clone()),
        Some(&size) if size != info.size => (
            format!("{size} bytes, the index says {}", info.size),
            (info.entries.iter())
                .filter(|e| u64::from(e.offset) + u64::from(e.length) > size)
                .copied()
                .collect(),
        ),
        Some(_) => return None,
    };
    Some(DamagedPack {
        pack: *id,
        reason,
        structural: true,
        damaged_blobs: entries.iter().map(|e| e.id).collect(),
        lost_blobs: Vec::new(),
        harmless: false,
    })
}

/// What walking the snapshots found.
pub(super) struct Walk {
    /// Packs in `data/`.
    listed: HashSet<PackId>,
    /// Every readable snapshot and its root tree.
    pub snapshots: Vec<(SnapshotId, BlobId)>,
    /// Every blob reachable from a snapshot.
    pub referenced: HashSet<BlobId>,
    /// Referenced blobs that the index does not have.
    pub unindexed: HashSet<BlobId>,
}

/// Decodes every snapshot and every tree and content node reachable from one, and checks that
/// every referenced blob is indexed.
pub(super) fn check_snapshots(
    repo: &Repository,
    listed: &HashMap<PackId, u64>,
    report: &mut CheckReport,
) -> Result<Walk> {
    let mut walk = Walk {
        listed: listed.keys().copied().collect(),
        snapshots: Vec::new(),
        referenced: HashSet::new(),
        unindexed: HashSet::new(),
    };
    let ids = repo.snapshot_ids()?;
    for id in ids {
        match repo.load_snapshot(&id) {
            Ok(snapshot) => walk.snapshots.push((id, snapshot.tree)),
            Err(e) => report.problems.push(problem("snapshot", id, e)),
        }
    }
    walk.snapshots.sort();
    report.snapshots = walk.snapshots.len() as u64;
    let roots: Vec<BlobId> = walk.snapshots.iter().map(|(_, tree)| *tree).collect();
    let mut walker = Walker::new(repo);
    let mut visitor = Structure { repo, walk: &mut walk, report };
    for root in &roots {
        walker.walk(root, &mut visitor)?;
    }
    walk.referenced = walker.into_seen();
    report.referenced_blobs = walk.referenced.len() as u64;
    Ok(walk)
}

/// Checks that every reachable blob is indexed in a listed pack and every listing decodes.
struct Structure<'a> {
    repo: &'a Repository,
    walk: &'a mut Walk,
    report: &'a mut CheckReport,
}

impl Visitor for Structure<'_> {
    fn reach(&mut self, id: &BlobId, listing: Listing, first: bool, _: &Place) -> Result<bool> {
        if !first {
            return Ok(false);
        }
        let indexed = is_indexed(self.repo, id, self.walk, self.report)?;
        // An unindexed tree is not loaded; a content node is, and fails to load as well.
        match listing {
            Listing::Tree => {
                self.report.trees += 1;
                Ok(indexed)
            }
            Listing::ContentNode => Ok(true),
        }
    }

    fn data(&mut self, id: &BlobId, _: u32, first: bool, _: &Place) -> Result<()> {
        if first {
            is_indexed(self.repo, id, self.walk, self.report)?;
        }
        Ok(())
    }

    fn failed(&mut self, id: &BlobId, listing: Listing, error: Error, _: &Place) -> Result<()> {
        self.report.problems.push(problem(listing.name(), id, error));
        Ok(())
    }
}

fn is_indexed(
    repo: &Repository,
    id: &BlobId,
    walk: &mut Walk,
    report: &mut CheckReport,
) -> Result<bool> {
    let error = match repo.lookup(id)? {
        Some(location) if walk.listed.contains(&location.pack) => return Ok(true),
        Some(location) => format!(
            "the local index places it in pack {}, which does not exist (`cairn repair \
             index` rebuilds the index from the packs that do)",
            location.pack
        ),
        None => "referenced by a snapshot but in no index segment (`cairn check --read-data` \
                 and `cairn repair index` find it if its pack still exists)"
            .to_string(),
    };
    walk.unindexed.insert(*id);
    report.problems.push(problem("blob", id, error));
    Ok(false)
}

/// Counts indexed blobs and packs that nothing references (not an error: prune frees them).
pub(super) fn report_unused(
    indexed: &IndexedPacks,
    referenced: &HashSet<BlobId>,
    report: &mut CheckReport,
) {
    for (id, info) in indexed.packs.iter().filter(|(id, _)| !indexed.marked.contains(id)) {
        let unused: Vec<_> = info.entries.iter().filter(|e| !referenced.contains(&e.id)).collect();
        report.unused_blobs += unused.len() as u64;
        report.unused_bytes += unused.iter().map(|e| u64::from(e.length)).sum::<u64>();
        if unused.len() == info.entries.len() {
            report.unused_packs.push(*id);
        }
    }
    report.unused_packs.sort();
}
