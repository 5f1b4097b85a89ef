//! `prune`: frees the space of blobs no snapshot references, while backups keep running.
//!
//! Two phases (docs/format.md, "Locks and prune"): a pack found unused is first *marked* in a
//! rewritten index (its blobs still restore, backups stop reusing them); its file is deleted
//! only once no backup that might have reused it before the mark is still running (their
//! `Backup` locks say when they started). When no backup runs, that is in the same prune.
//! Packs mostly unused are *repacked*: their live blobs are copied (still sealed, after
//! verifying them) into new packs and the old pack is marked.
//!
//! Order, so that killing prune at any point leaves a repository that checks clean and a
//! rerun that finishes the job: new packs, then the new index (its last segment supersedes
//! every old one), then pack deletions, then the old segments.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use cairn_format::pack::{self, PackEntry, PackWriter, SealedBlob};
use cairn_format::segment::{IndexSegment, IndexedPack, MarkedPack, PACKS_PER_REWRITTEN_SEGMENT};
use cairn_format::{BlobId, Error, IndexId, PackId, Repository, SnapshotId};
use serde::Serialize;

use crate::progress::Progress;
use crate::walk::{Listing, Place, Visitor, Walker};

/// Allowance for clocks of different hosts disagreeing, when comparing a backup's start with
/// the time a pack was marked.
const CLOCK_SKEW_S: i64 = 300;

/// How prune works.
#[derive(Clone, Debug)]
pub struct PruneOptions {
    /// Repack a pack when more than this share of its bytes is unused (0.0-1.0).
    pub max_unused: f64,
    /// Repack at most this many bytes of packs.
    pub max_repack_bytes: u64,
    pub dry_run: bool,
    /// Snapshots counted as gone though they still exist (`forget --prune --dry-run`).
    pub forgotten: Vec<SnapshotId>,
}

impl Default for PruneOptions {
    fn default() -> Self {
        Self { max_unused: 0.05, max_repack_bytes: u64::MAX, dry_run: false, forgotten: Vec::new() }
    }
}

/// What prune did (or, for a dry run, would do).
#[derive(Clone, Debug, Default, Serialize)]
pub struct PruneReport {
    pub snapshots: u64,
    pub packs_before: u64,
    pub bytes_before: u64,
    pub packs_after: u64,
    pub bytes_after: u64,
    pub unused_blobs: u64,
    pub unused_bytes: u64,
    /// Packs newly marked unused.
    pub packs_marked: u64,
    /// Marked packs a snapshot needs again (a backup reused them before the mark).
    pub packs_revived: u64,
    pub packs_repacked: u64,
    pub bytes_repacked: u64,
    pub packs_deleted: u64,
    pub bytes_freed: u64,
    /// Marked packs kept for now because a backup that started before the mark still runs.
    pub packs_deferred: u64,
    pub bytes_deferred: u64,
    /// Temporary objects of interrupted writes (killed backups) removed, and their bytes.
    pub leftovers_removed: u64,
    pub leftover_bytes_freed: u64,
    /// Temporary objects kept: young enough that a running backup may still be writing them.
    pub leftovers_kept: u64,
    pub dry_run: bool,
}

/// One indexed pack as prune sees it.
struct PackState {
    size: u64,
    entries: Vec<PackEntry>,
    marked_since: Option<i64>,
    present: bool,
}

/// Runs prune. The caller holds the exclusive lock.
pub fn prune(
    repo: &Arc<Repository>,
    options: &PruneOptions,
    hostname: &str,
    progress: &Progress,
) -> Result<PruneReport> {
    let span = tracing::info_span!("prune", repo = %repo.location());
    let _enter = span.enter();
    repo.sync_index().context("prune needs every index segment to read")?;
    if !options.dry_run {
        // Packs of an interrupted backup or prune join the index, so they are judged like
        // any other (those of a running backup are then kept while it runs).
        repo.adopt_unindexed_packs()?;
    }
    let mut report = PruneReport { dry_run: options.dry_run, ..PruneReport::default() };
    let (old_segments, packs) = known_packs(repo, &mut report)?;
    let (used, snapshots) = used_blobs(repo, &options.forgotten)?;
    report.snapshots = snapshots;
    let needed = needed_copies(&packs, &used)?;
    let now = chrono::Utc::now().timestamp();
    let plan = decide(&packs, &needed, options, &mut report);
    progress.add_total(plan.repack.len() as u64, plan.repack.iter().map(|id| packs[id].size).sum());
    if options.dry_run {
        report.packs_after = report.packs_before - plan.delete_candidates.len() as u64;
        remove_leftovers(repo, now, hostname, true, &mut report)?;
        return Ok(report);
    }
    let new_packs = repack(repo, &packs, &needed, &plan.repack, progress, &mut report)?;
    write_index(repo, &packs, &plan, new_packs, &old_segments, now)?;
    repo.sync_index()?;
    delete_marked(repo, &packs, &plan, now, hostname, progress, &mut report)?;
    for id in &old_segments {
        repo.remove_segment(id)?;
    }
    remove_leftovers(repo, now, hostname, false, &mut report)?;
    let after = list_packs(repo)?;
    report.packs_after = after.len() as u64;
    report.bytes_after = after.values().sum();
    Ok(report)
}

/// The index's packs, each marked present or not in the listing (counted in the report),
/// and the segments that hold them.
fn known_packs(
    repo: &Repository,
    report: &mut PruneReport,
) -> Result<(Vec<IndexId>, HashMap<PackId, PackState>)> {
    let (old_segments, mut packs) = load_index(repo)?;
    let listed = list_packs(repo)?;
    for (id, state) in &mut packs {
        state.present = listed.contains_key(id);
    }
    report.packs_before = listed.len() as u64;
    report.bytes_before = listed.values().sum();
    Ok((old_segments, packs))
}

/// Every listed segment, and the packs of the current (not superseded) ones.
fn load_index(repo: &Repository) -> Result<(Vec<IndexId>, HashMap<PackId, PackState>)> {
    let segments = repo.load_segments()?;
    if let Some((id, error)) = segments.unreadable.into_iter().next() {
        bail!("index segment {id}: {error}; run `cairn repair index` first");
    }
    let mut packs: HashMap<PackId, PackState> = HashMap::new();
    for (_, segment) in &segments.current {
        let marks: HashMap<PackId, i64> =
            segment.marked.iter().map(|m| (m.pack, m.since_s)).collect();
        for pack in &segment.packs {
            let state = packs.entry(pack.id).or_insert_with(|| PackState {
                size: pack.size,
                entries: pack.blobs.clone(),
                marked_since: None,
                present: false,
            });
            // Marked anywhere counts: only a prune marks, and it rechecks usage every run.
            if let Some(&since) = marks.get(&pack.id) {
                state.marked_since = Some(state.marked_since.map_or(since, |s| s.min(since)));
            }
        }
    }
    Ok((segments.listed, packs))
}

fn list_packs(repo: &Repository) -> Result<HashMap<PackId, u64>> {
    let listing = repo.list_packs().context("cannot list the packs")?;
    Ok(listing.packs.into_iter().collect())
}

/// Every blob a snapshot references. Anything unreadable stops prune: deciding what is unused
/// from an incomplete picture would delete data.
fn used_blobs(repo: &Repository, forgotten: &[SnapshotId]) -> Result<(HashSet<BlobId>, u64)> {
    let listing = repo.snapshots()?;
    for (id, error) in &listing.unreadable {
        if !error.is_damage() {
            bail!(
                "cannot prune: snapshot {id} does not open ({error}); a newer cairn wrote it, \
                 so prune with that version"
            );
        }
        tracing::warn!(
            "snapshot {} is damaged ({error}) and is treated as absent: data only it \
             referenced is freed; `cairn repair snapshots` removes the object",
            id.short()
        );
        crate::outcome::note_partial();
    }
    let mut snapshots = listing.readable;
    snapshots.retain(|(id, _)| !forgotten.contains(id));
    let mut walker = Walker::new(repo);
    for (_, snapshot) in &snapshots {
        walker.walk(&snapshot.tree, &mut StopOnFailure)?;
    }
    Ok((walker.into_seen(), snapshots.len() as u64))
}

/// Walks everything once and stops at the first blob that does not read.
struct StopOnFailure;

impl Visitor for StopOnFailure {
    fn failed(&mut self, id: &BlobId, listing: Listing, error: Error, _: &Place) -> Result<()> {
        bail!("cannot prune: {} {id} is unreadable ({error}); run `cairn check`", listing.name())
    }
}

/// For each used blob, the pack whose copy is kept: one not marked if any, else a marked one
/// (which is then revived). A used blob with no copy in a present pack stops prune.
fn needed_copies(
    packs: &HashMap<PackId, PackState>,
    used: &HashSet<BlobId>,
) -> Result<HashMap<BlobId, PackId>> {
    let mut needed: HashMap<BlobId, (PackId, bool)> = HashMap::new();
    // In pack-id order, not the map's random one: the same repository gives the same choice,
    // so a prune right after another finds nothing newly unused.
    let mut present: Vec<_> = packs.iter().filter(|(_, s)| s.present).collect();
    present.sort_unstable_by_key(|(id, _)| **id);
    for (id, state) in present {
        for entry in state.entries.iter().filter(|e| used.contains(&e.id)) {
            let unmarked = state.marked_since.is_none();
            let better = needed.get(&entry.id).is_none_or(|(_, was)| unmarked && !was);
            if better {
                needed.insert(entry.id, (*id, unmarked));
            }
        }
    }
    if let Some(missing) = used.iter().find(|id| !needed.contains_key(id)) {
        bail!(
            "cannot prune: blob {missing}, which a snapshot references, is in no existing pack; \
             run `cairn check` (and `cairn repair`) first"
        );
    }
    Ok(needed.into_iter().map(|(blob, (pack, _))| (blob, pack)).collect())
}

/// What this run does to each pack.
#[derive(Default)]
struct Plan {
    /// Packs to copy the needed blobs out of (then marked).
    repack: Vec<PackId>,
    /// Packs to mark unused now.
    mark: HashSet<PackId>,
    /// Marked packs needed again.
    revive: HashSet<PackId>,
    /// Indexed packs whose file is gone and that nothing needs: dropped from the index.
    drop: HashSet<PackId>,
    /// Unused packs, marked now or before: deleted if no running backup may use them.
    delete_candidates: Vec<PackId>,
}

fn decide(
    packs: &HashMap<PackId, PackState>,
    needed: &HashMap<BlobId, PackId>,
    options: &PruneOptions,
    report: &mut PruneReport,
) -> Plan {
    let mut plan = Plan::default();
    let mut repack_budget = options.max_repack_bytes;
    let mut ids: Vec<&PackId> = packs.keys().collect();
    ids.sort();
    for id in ids {
        let state = &packs[id];
        let (stored, used, unused_entries) = usage(id, state, needed);
        report.unused_blobs += unused_entries;
        report.unused_bytes += stored - used;
        match (state.present, used > 0, state.marked_since) {
            (false, _, _) => {
                plan.drop.insert(*id);
            }
            (true, false, None) => {
                plan.mark.insert(*id);
                plan.delete_candidates.push(*id);
            }
            (true, false, Some(_)) => plan.delete_candidates.push(*id),
            (true, true, marked) => {
                let unused_share = 1.0 - used as f64 / stored.max(1) as f64;
                if unused_share > options.max_unused && state.size <= repack_budget {
                    repack_budget -= state.size;
                    plan.repack.push(*id);
                    plan.mark.insert(*id);
                } else if marked.is_some() {
                    plan.revive.insert(*id);
                }
            }
        }
    }
    report.packs_marked = plan.mark.len() as u64;
    report.packs_revived = plan.revive.len() as u64;
    plan
}

/// A pack's stored bytes, the bytes of the blobs whose kept copy it holds, and how many of
/// its blobs are not kept from it.
fn usage(id: &PackId, state: &PackState, needed: &HashMap<BlobId, PackId>) -> (u64, u64, u64) {
    let (mut stored, mut used, mut unused_entries) = (0, 0, 0);
    for entry in &state.entries {
        stored += u64::from(entry.length);
        if needed.get(&entry.id) == Some(id) {
            used += u64::from(entry.length);
        } else {
            unused_entries += 1;
        }
    }
    (stored, used, unused_entries)
}

/// Copies the needed blobs of `ids` into new packs (verifying each on the way). Returns the
/// new packs, uploaded.
fn repack(
    repo: &Repository,
    packs: &HashMap<PackId, PackState>,
    needed: &HashMap<BlobId, PackId>,
    ids: &[PackId],
    progress: &Progress,
    report: &mut PruneReport,
) -> Result<Vec<IndexedPack>> {
    let pack_size = repo.config().pack_size as usize;
    let mut writers: [PackWriter; 2] = Default::default(); // by BlobKind
    let mut written = Vec::new();
    for id in ids {
        let state = &packs[id];
        let bytes = repo.read_pack_range(id, 0, state.size)?;
        let kept = (state.entries.iter()).filter(|e| needed.get(&e.id) == Some(id));
        for entry in kept {
            let writer = &mut writers[entry.kind as usize];
            writer.push(verified_blob(repo, id, entry, &bytes)?);
            if writer.size() >= pack_size {
                written.push(upload(repo, std::mem::take(writer))?);
            }
        }
        report.packs_repacked += 1;
        report.bytes_repacked += state.size;
        progress.add_done(1, state.size);
    }
    for writer in writers {
        if !writer.is_empty() {
            written.push(upload(repo, writer)?);
        }
    }
    Ok(written)
}

/// A blob of the pack `id` (read whole into `bytes`), opened to check it before it is kept.
fn verified_blob(
    repo: &Repository,
    id: &PackId,
    entry: &PackEntry,
    bytes: &[u8],
) -> Result<SealedBlob> {
    let start = entry.offset as usize;
    let sealed = &bytes[start..start + entry.length as usize];
    pack::open_blob(repo.key(), entry, sealed).with_context(|| {
        format!(
            "cannot repack pack {id}: blob {} is damaged; run `cairn check --read-data`",
            entry.id
        )
    })?;
    Ok(SealedBlob {
        kind: entry.kind,
        id: entry.id,
        raw_length: entry.raw_length,
        bytes: sealed.to_vec(),
    })
}

fn upload(repo: &Repository, writer: PackWriter) -> Result<IndexedPack> {
    let pack = writer.finish(repo.key());
    (repo.save_pack(&pack)).with_context(|| format!("cannot write pack {}", pack.id))?;
    Ok(IndexedPack { id: pack.id, size: pack.bytes.len() as u64, blobs: pack.entries })
}

/// Writes the whole index anew: every pack kept, with its mark; the last segment supersedes
/// every segment listed before, so until it exists the old ones stay current.
fn write_index(
    repo: &Repository,
    packs: &HashMap<PackId, PackState>,
    plan: &Plan,
    new_packs: Vec<IndexedPack>,
    old_segments: &[IndexId],
    now: i64,
) -> Result<()> {
    let mut kept = kept_packs(packs, plan, now);
    kept.extend(new_packs.into_iter().map(|p| (p, None)));
    let chunks: Vec<_> = kept.chunks(PACKS_PER_REWRITTEN_SEGMENT).collect();
    let last = chunks.len().saturating_sub(1);
    for (i, chunk) in chunks.iter().enumerate() {
        let supersedes = if i == last { old_segments.to_vec() } else { Vec::new() };
        repo.save_segment(&segment(chunk, supersedes))?;
    }
    if chunks.is_empty() && !old_segments.is_empty() {
        repo.save_segment(&IndexSegment {
            supersedes: old_segments.to_vec(),
            ..IndexSegment::default()
        })?;
    }
    Ok(())
}

/// The packs this run keeps, sorted, each with the time it was marked unused (if it is).
fn kept_packs(
    packs: &HashMap<PackId, PackState>,
    plan: &Plan,
    now: i64,
) -> Vec<(IndexedPack, Option<i64>)> {
    let mut ids: Vec<&PackId> = packs.keys().filter(|id| !plan.drop.contains(id)).collect();
    ids.sort();
    let kept = ids.into_iter().map(|id| {
        let state = &packs[id];
        let mark = if plan.revive.contains(id) {
            None
        } else if plan.mark.contains(id) {
            Some(now)
        } else {
            state.marked_since
        };
        let pack = IndexedPack { id: *id, size: state.size, blobs: state.entries.clone() };
        (pack, mark)
    });
    kept.collect()
}

fn segment(chunk: &[(IndexedPack, Option<i64>)], supersedes: Vec<IndexId>) -> IndexSegment {
    let marked =
        chunk.iter().filter_map(|(p, m)| m.map(|since_s| MarkedPack { pack: p.id, since_s }));
    IndexSegment {
        packs: chunk.iter().map(|(p, _)| p.clone()).collect(),
        supersedes,
        marked: marked.collect(),
    }
}

/// Removes the temporary objects of writes that never finished, once no running backup can
/// own them: one still running was started (its lock written) before it created any of its
/// temporaries, so a temporary last written before the oldest live backup started (allowing
/// for clock skew) belongs to a process that is gone.
fn remove_leftovers(
    repo: &Repository,
    now: i64,
    hostname: &str,
    dry_run: bool,
    report: &mut PruneReport,
) -> Result<()> {
    let backups = crate::lock::live_backups(repo, hostname)?;
    let oldest = backups.iter().map(|b| b.created_s).min().unwrap_or(now);
    let cutoff = oldest.min(now) - CLOCK_SKEW_S;
    let leftovers =
        (repo.leftovers()).context("cannot list the temporary objects of interrupted writes")?;
    for leftover in leftovers {
        if leftover.modified_s >= cutoff {
            report.leftovers_kept += 1;
            continue;
        }
        if !dry_run {
            (repo.remove_leftover(&leftover))
                .with_context(|| format!("cannot remove {}", leftover.name))?;
        }
        report.leftovers_removed += 1;
        report.leftover_bytes_freed += leftover.size;
    }
    Ok(())
}

/// Deletes the files of unused packs, unless a backup that started before the pack was marked
/// is still running (it may have reused blobs from it; the next prune looks again).
fn delete_marked(
    repo: &Repository,
    packs: &HashMap<PackId, PackState>,
    plan: &Plan,
    now: i64,
    hostname: &str,
    progress: &Progress,
    report: &mut PruneReport,
) -> Result<()> {
    let backups = crate::lock::live_backups(repo, hostname)?;
    let candidates = plan.delete_candidates.iter().map(|id| (id, true));
    for (id, counted) in candidates.chain(plan.repack.iter().map(|id| (id, false))) {
        let state = &packs[id];
        if counted {
            // Repacked packs were counted when they were copied.
            progress.add_done(1, state.size);
        }
        let since = if plan.mark.contains(id) { now } else { state.marked_since.unwrap_or(now) };
        let at_risk = backups.iter().any(|b| b.created_s < since + CLOCK_SKEW_S);
        if at_risk {
            report.packs_deferred += 1;
            report.bytes_deferred += state.size;
            continue;
        }
        repo.remove_pack(id)?;
        report.packs_deleted += 1;
        report.bytes_freed += state.size;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use cairn_format::pack::BlobKind;
    use proptest::prelude::*;

    use super::*;

    /// A pack of `blobs` (ids from a small universe, so copies repeat across packs), 100
    /// bytes each.
    fn pack(blobs: &[u8], present: bool, marked: bool) -> PackState {
        let entries: Vec<PackEntry> = (blobs.iter().enumerate())
            .map(|(i, b)| PackEntry {
                kind: BlobKind::Data,
                id: BlobId([*b; 32]),
                offset: i as u32 * 100,
                length: 100,
                raw_length: 100,
            })
            .collect();
        PackState {
            size: entries.len() as u64 * 100,
            entries,
            marked_since: marked.then_some(1_000),
            present,
        }
    }

    fn plan_for(packs: &HashMap<PackId, PackState>, used: &HashSet<BlobId>) -> Option<Plan> {
        let needed = needed_copies(packs, used).ok()?;
        let options = PruneOptions::default();
        Some(decide(packs, &needed, &options, &mut PruneReport::default()))
    }

    #[test]
    fn unused_packs_go_half_used_ones_are_repacked_and_needed_marked_ones_revive() {
        let packs: HashMap<PackId, PackState> = [
            (PackId([1; 32]), pack(&[1, 2], true, false)), // all needed: kept
            (PackId([2; 32]), pack(&[3, 4], true, false)), // half needed: repacked
            (PackId([3; 32]), pack(&[5], true, false)),    // unused: marked, deleted
            (PackId([4; 32]), pack(&[6], true, true)),     // marked, needed again: revived
            (PackId([5; 32]), pack(&[7], false, true)),    // file gone, unused: dropped
        ]
        .into_iter()
        .collect();
        let used: HashSet<BlobId> = [1, 2, 3, 6].iter().map(|b| BlobId([*b; 32])).collect();
        let plan = plan_for(&packs, &used).unwrap();
        assert_eq!(plan.repack, [PackId([2; 32])]);
        assert_eq!(plan.delete_candidates, [PackId([3; 32])]);
        assert!(plan.revive.contains(&PackId([4; 32])));
        assert!(plan.drop.contains(&PackId([5; 32])));
        assert!(!plan.mark.contains(&PackId([1; 32])));
    }

    proptest! {
        /// Issue #16: whatever the packs, their marks and what is used, every needed blob
        /// keeps a copy: in a pack prune neither deletes nor drops, or in one it repacks
        /// (whose needed blobs are copied out first).
        #[test]
        fn no_needed_blob_loses_its_last_copy(
            packs in prop::collection::vec(
                (prop::collection::vec(0u8..12, 1..6), any::<bool>(), any::<bool>()),
                1..10,
            ),
            used in prop::collection::hash_set(0u8..12, 0..12),
        ) {
            let packs: HashMap<PackId, PackState> = (packs.iter().enumerate())
                .map(|(i, (blobs, present, marked))| {
                    (PackId([i as u8; 32]), pack(blobs, *present, *marked))
                })
                .collect();
            // Snapshots need only blobs that exist (one that does not stops prune before it
            // decides anything).
            let stored = |b: &BlobId| packs.values().any(|s| s.present && s.entries.iter().any(|e| e.id == *b));
            let used: HashSet<BlobId> = (used.iter().map(|b| BlobId([*b; 32]))).filter(stored).collect();
            let plan = plan_for(&packs, &used).unwrap();
            let needed = needed_copies(&packs, &used).unwrap();
            let gone: HashSet<&PackId> = (plan.delete_candidates.iter()).chain(&plan.drop).collect();
            for blob in &used {
                let copied = plan.repack.contains(&needed[blob]);
                let kept = packs.iter().any(|(id, state)| {
                    state.present
                        && !gone.contains(id)
                        && !plan.repack.contains(id)
                        && state.entries.iter().any(|e| e.id == *blob)
                });
                prop_assert!(copied || kept, "blob {blob} loses every copy");
                prop_assert!(!gone.contains(&needed[blob]), "the copy in use is deleted");
            }
        }
    }
}
