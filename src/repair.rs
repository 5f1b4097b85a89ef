//! `repair`: puts a damaged repository back into a consistent state from what survives.
//!
//! - `repair index` rebuilds the index segments from the pack headers (every pack describes
//!   its own blobs), writes the new segments first and removes the old ones after, so a crash
//!   at any point leaves a usable index.
//! - `repair snapshots` removes snapshot objects that do not open (damaged) and rewrites
//!   snapshots that reference lost blobs (not indexed, in a pack that no longer exists, or a
//!   copy `check --read-data` found damaged with no intact copy) so everything else in them
//!   stays restorable; the originals stay unless asked to go.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use cairn_format::content::{Content, ContentChild, ContentEntry, ContentNode, MAX_DEPTH};
use cairn_format::pack::BlobKind;
use cairn_format::packer::{BlobWriter, WriterOptions};
use cairn_format::segment::{IndexSegment, IndexedPack, PACKS_PER_REWRITTEN_SEGMENT};
use cairn_format::snapshot::Snapshot;
use cairn_format::tree::{Node, NodeKind, Tree, Xattr};
use cairn_format::{BlobId, Error, PackId, Repository, SnapshotId};
use serde::Serialize;

use crate::progress::{Observer, Progress};
use crate::walk::{Listing, Place, Visitor, Walker};

/// What `repair index` did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct IndexRepair {
    pub packs_indexed: u64,
    pub blobs_indexed: u64,
    pub segments_written: u64,
    pub segments_removed: u64,
    /// Packs whose header could not be read: their blobs are not indexed.
    pub unreadable_packs: Vec<(PackId, String)>,
}

/// Rebuilds every index segment from the pack headers and the local index from those.
pub fn repair_index(repo: &Repository, progress: &Progress) -> Result<IndexRepair> {
    let span = tracing::info_span!("repair_index", repo = %repo.location());
    let _enter = span.enter();
    let old = repo.segment_ids()?;
    // Emptied first (rather than cleared: a damaged database may not even iterate), then
    // filled by the segments written below.
    repo.index().rebuild()?;
    let packs = repo.list_packs().context("cannot list the packs")?.packs;
    progress.add_total(packs.len() as u64, packs.iter().map(|(_, size)| size).sum());
    let mut outcome = IndexRepair::default();
    let mut segment = IndexSegment::default();
    for (id, size) in packs {
        progress.add_done(1, size);
        match repo.read_pack_header(&id, size) {
            Ok(blobs) => {
                outcome.packs_indexed += 1;
                outcome.blobs_indexed += blobs.len() as u64;
                segment.packs.push(IndexedPack { id, size, blobs });
            }
            Err(e) => outcome.unreadable_packs.push((id, e.to_string())),
        }
        if segment.packs.len() == PACKS_PER_REWRITTEN_SEGMENT {
            repo.save_segment(&std::mem::take(&mut segment))?;
            outcome.segments_written += 1;
        }
    }
    if !segment.packs.is_empty() {
        repo.save_segment(&segment)?;
        outcome.segments_written += 1;
    }
    for id in old {
        repo.remove_segment(&id)
            .with_context(|| format!("cannot remove old index segment {id}"))?;
        outcome.segments_removed += 1;
    }
    repo.sync_index()?;
    Ok(outcome)
}

/// What to do with a file that lost data.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub enum DamagedFiles {
    /// Keep the file at its size with zeros where data is lost, and name the lost ranges in
    /// the extended attribute `user.cairn.damaged`.
    #[default]
    Mark,
    /// Cut the file before its first lost byte.
    Truncate,
    /// Leave the file out.
    Drop,
}

impl DamagedFiles {
    fn describe(self) -> &'static str {
        match self {
            DamagedFiles::Mark => "kept with zeros there, marked in user.cairn.damaged",
            DamagedFiles::Truncate => "truncated before the first lost byte",
            DamagedFiles::Drop => "left out",
        }
    }
}

/// One rewritten snapshot.
#[derive(Clone, Debug, Serialize)]
pub struct RepairedSnapshot {
    pub original: SnapshotId,
    /// `None` for a dry run.
    pub repaired: Option<SnapshotId>,
    pub damaged_files: u64,
    pub lost_directories: u64,
    pub lost_bytes: u64,
}

/// Options of `repair snapshots`.
#[derive(Clone, Debug, Default)]
pub struct SnapshotRepairOptions {
    pub damaged_files: DamagedFiles,
    /// Remove the original of every rewritten snapshot.
    pub forget: bool,
    pub dry_run: bool,
}

/// The extended attribute that marks a repaired file.
pub const DAMAGE_XATTR: &[u8] = b"user.cairn.damaged";

/// Whether `repair snapshots` marked this node as having lost data (a backup then reads the
/// file again instead of taking its content from the parent snapshot).
pub fn is_marked_damaged(node: &Node) -> bool {
    node.xattrs.iter().any(|x| x.name == DAMAGE_XATTR)
}

/// What `repair snapshots` did (or, for a dry run, would do).
#[derive(Clone, Debug, Default, Serialize)]
pub struct SnapshotRepair {
    pub snapshots: Vec<RepairedSnapshot>,
    /// Snapshot objects that do not open (damaged), removed.
    pub removed_damaged: Vec<SnapshotId>,
    /// Indexed packs that no longer exist: their blobs count as lost, and the index is
    /// rebuilt from the packs that do exist before snapshots are rewritten.
    pub missing_packs: Vec<PackId>,
}

/// Removes damaged snapshot objects, then rewrites every snapshot that references a lost blob
/// (not indexed, in a pack that is gone, or a copy `check --read-data` found damaged).
pub fn repair_snapshots(
    repo: &Arc<Repository>,
    options: &SnapshotRepairOptions,
    observer: &dyn Observer,
    progress: &Progress,
) -> Result<SnapshotRepair> {
    let span = tracing::info_span!("repair_snapshots", repo = %repo.location());
    let _enter = span.enter();
    // Blobs only an unreadable segment lists would look lost, and be cut out of snapshots.
    repo.sync_index().context(
        "repair snapshots needs every index segment to read: run `cairn repair index` first",
    )?;
    let mut outcome =
        SnapshotRepair { missing_packs: missing_packs(repo)?, ..SnapshotRepair::default() };
    if !options.dry_run && !outcome.missing_packs.is_empty() {
        // So that nothing written below (or by later backups) deduplicates against a blob
        // of a pack that is gone.
        repair_index(repo, progress)?;
    }
    let listing = repo.snapshots()?;
    for (id, error) in listing.unreadable {
        if !error.is_damage() {
            bail!(
                "snapshot {id} does not open ({error}); a newer cairn wrote it: repair with that version"
            );
        }
        if !options.dry_run {
            repo.remove_snapshot(&id)?;
        }
        outcome.removed_damaged.push(id);
    }
    outcome.snapshots =
        rewrite_snapshots(repo, listing.readable, &outcome.missing_packs, options, observer)?;
    Ok(outcome)
}

/// Packs the local index knows that the repository no longer lists.
fn missing_packs(repo: &Repository) -> Result<Vec<PackId>> {
    let listed: HashSet<PackId> =
        (repo.list_packs()?.packs.into_iter()).map(|(id, _)| id).collect();
    let mut missing: Vec<PackId> = (repo.index().packs()?.into_iter())
        .map(|p| p.id)
        .filter(|id| !listed.contains(id))
        .collect();
    missing.sort();
    Ok(missing)
}

fn rewrite_snapshots(
    repo: &Arc<Repository>,
    snapshots: Vec<(SnapshotId, Snapshot)>,
    missing_packs: &[PackId],
    options: &SnapshotRepairOptions,
    observer: &dyn Observer,
) -> Result<Vec<RepairedSnapshot>> {
    let mut writer_options = WriterOptions::for_repository(repo);
    writer_options.dry_run = options.dry_run;
    let writer = BlobWriter::new(repo.clone(), writer_options);
    let mut rewriter = Rewriter {
        repo,
        writer: &writer,
        mode: options.damaged_files,
        missing_packs: missing_packs.iter().copied().collect(),
        clean_trees: HashSet::new(),
        repaired: HashMap::new(),
        counts: Counts::default(),
        observer,
    };
    let mut walker = Walker::with_paths(repo);
    let mut rewritten = Vec::new();
    for (id, snapshot) in snapshots {
        rewriter.counts = Counts::default();
        walker.walk(&snapshot.tree, &mut rewriter)?;
        let tree = rewriter.repaired_id(&snapshot.tree);
        if tree == snapshot.tree {
            continue;
        }
        rewritten.push((id, snapshot, tree, rewriter.counts));
    }
    writer.finish()?;
    (rewritten.into_iter())
        .map(|(original, snapshot, tree, counts)| {
            save_repaired(repo, original, snapshot, tree, counts, options)
        })
        .collect()
}

/// Saves the repaired copy of `original` (unless a dry run), tagged `repaired`, and removes
/// the original with `--forget`.
fn save_repaired(
    repo: &Repository,
    original: SnapshotId,
    mut snapshot: Snapshot,
    tree: BlobId,
    counts: Counts,
    options: &SnapshotRepairOptions,
) -> Result<RepairedSnapshot> {
    snapshot.tree = tree;
    snapshot.parent = Some(original);
    if !snapshot.tags.iter().any(|t| t == "repaired") {
        snapshot.tags.push("repaired".into());
    }
    let repaired = if options.dry_run {
        None
    } else {
        let id = repo.save_snapshot(&snapshot)?;
        if options.forget {
            repo.remove_snapshot(&original)?;
        }
        Some(id)
    };
    Ok(RepairedSnapshot {
        original,
        repaired,
        damaged_files: counts.files,
        lost_directories: counts.directories,
        lost_bytes: counts.bytes,
    })
}

#[derive(Clone, Copy, Debug, Default)]
struct Counts {
    files: u64,
    directories: u64,
    bytes: u64,
}

struct Rewriter<'a> {
    repo: &'a Repository,
    writer: &'a BlobWriter,
    mode: DamagedFiles,
    /// Blobs indexed in these packs are lost (a dry run does not rebuild the index first).
    missing_packs: HashSet<PackId>,
    /// Trees known to reference no lost blob.
    clean_trees: HashSet<BlobId>,
    /// Damaged trees and the ids of their repaired copies.
    repaired: HashMap<BlobId, BlobId>,
    counts: Counts,
    observer: &'a dyn Observer,
}

impl Rewriter<'_> {
    fn is_lost(&self, id: &BlobId) -> Result<bool> {
        let found = self.repo.index().lookup_intact(id)?;
        Ok(found.is_none_or(|location| self.missing_packs.contains(&location.pack)))
    }

    /// The id of the tree with its damage repaired (the same id when there is none).
    fn repaired_id(&self, id: &BlobId) -> BlobId {
        self.repaired.get(id).copied().unwrap_or(*id)
    }

    /// A directory whose listing is lost becomes an empty one.
    fn lost_directory(&mut self, id: &BlobId, at: &Place) -> Result<()> {
        (self.observer)
            .warning(at.path(), "directory listing lost: restored as an empty directory");
        self.counts.directories += 1;
        let empty = self.store(&Tree { nodes: Vec::new() })?;
        self.repaired.insert(*id, empty);
        Ok(())
    }

    /// A file's node with its damage repaired, or `None` when the mode leaves it out.
    fn repaired_file(&mut self, mut node: Node, at: &Place) -> Result<Option<Node>> {
        let NodeKind::File { content } = &node.kind else {
            return Ok(Some(node));
        };
        let Some(runs) = self.lost_runs(content, node.size)? else {
            return Ok(Some(node));
        };
        let lost: u64 = runs.iter().map(|(_, length)| length).sum();
        self.counts.files += 1;
        self.counts.bytes += lost;
        let path = at.path().join(OsStr::from_bytes(&node.name));
        (self.observer).warning(&path, &format!("{lost} bytes lost; {}", self.mode.describe()));
        Ok(self.repair_file(&mut node, &runs)?.then_some(node))
    }

    /// The lost byte ranges (offset, length) of a file, or `None` when nothing is lost.
    fn lost_runs(&self, content: &Content, size: u64) -> Result<Option<Vec<(u64, u64)>>> {
        let mut runs = Vec::new();
        let mut offset = 0;
        self.walk(content, size, &mut |piece| {
            if let Piece::Lost(length) = piece {
                runs.push((offset, length));
            }
            offset += piece.length();
        })?;
        Ok((!runs.is_empty()).then_some(runs))
    }

    /// Visits a file's content in order, lost parts as [`Piece::Lost`]: a lost chunk, or all
    /// the bytes under a content node that is lost or unreadable.
    fn walk(&self, content: &Content, size: u64, visit: &mut dyn FnMut(Piece)) -> Result<()> {
        match content {
            Content::Inline(entries) => self.visit_entries(entries, visit),
            Content::Indirect { root, depth } => {
                self.visit_node(root, (*depth).min(MAX_DEPTH), size, visit)
            }
        }
    }

    fn visit_entries(&self, entries: &[ContentEntry], visit: &mut dyn FnMut(Piece)) -> Result<()> {
        for entry in entries {
            match entry {
                ContentEntry::Data { id, .. } if self.is_lost(id)? => {
                    visit(Piece::Lost(entry.length()));
                }
                _ => visit(Piece::Entry(*entry)),
            }
        }
        Ok(())
    }

    fn visit_node(
        &self,
        id: &BlobId,
        depth: u8,
        length: u64,
        visit: &mut dyn FnMut(Piece),
    ) -> Result<()> {
        let node = if self.is_lost(id)? {
            None
        } else {
            self.repo.read_blob(id).and_then(|bytes| ContentNode::decode(&bytes, &id.to_hex())).ok()
        };
        match (node, depth) {
            (Some(ContentNode::Leaf(entries)), 0) => self.visit_entries(&entries, visit),
            (Some(ContentNode::Inner(children)), d) if d > 0 => {
                for ContentChild { blob, length } in children {
                    self.visit_node(&blob, d - 1, length, visit)?;
                }
                Ok(())
            }
            _ => {
                visit(Piece::Lost(length));
                Ok(())
            }
        }
    }

    /// Applies the mode to a damaged file; false when the file is to be left out.
    fn repair_file(&mut self, node: &mut Node, runs: &[(u64, u64)]) -> Result<bool> {
        let NodeKind::File { content } = &node.kind else {
            return Ok(true);
        };
        let mut entries = Vec::new();
        let mut cut = false;
        self.walk(content, node.size, &mut |piece| match piece {
            Piece::Entry(entry) if !cut => entries.push(entry),
            Piece::Lost(length) if self.mode == DamagedFiles::Mark => {
                entries.push(ContentEntry::Zero { length });
            }
            _ => cut = true,
        })?;
        match self.mode {
            DamagedFiles::Drop => return Ok(false),
            DamagedFiles::Truncate => node.size = runs[0].0,
            DamagedFiles::Mark => {
                let ranges: Vec<String> =
                    runs.iter().map(|(offset, length)| format!("{offset}+{length}")).collect();
                node.xattrs.retain(|x| x.name != DAMAGE_XATTR);
                node.xattrs.push(Xattr {
                    name: DAMAGE_XATTR.to_vec(),
                    value: format!("lost byte ranges (offset+length): {}", ranges.join(" "))
                        .into_bytes(),
                });
            }
        }
        let (key, writer) = (self.repo.key(), self.writer);
        let mut store = |bytes: Vec<u8>| {
            let id = key.blob_id(&bytes);
            writer.add(BlobKind::Tree, id, move || bytes)?;
            Ok(id)
        };
        node.kind = NodeKind::File { content: Content::from_entries(entries, &mut store)? };
        Ok(true)
    }

    fn store(&self, tree: &Tree) -> Result<BlobId> {
        let bytes = tree.encode();
        let id = self.repo.key().blob_id(&bytes);
        self.writer.add(BlobKind::Tree, id, move || bytes)?;
        Ok(id)
    }
}

/// Repairs each tree after its subtrees; clean trees are remembered and skipped, damaged ones
/// are walked again in each snapshot that has them (each snapshot counts its own damage).
impl Visitor for Rewriter<'_> {
    fn reach(&mut self, id: &BlobId, _: Listing, _: bool, at: &Place) -> Result<bool> {
        if self.clean_trees.contains(id) {
            return Ok(false);
        }
        if self.is_lost(id)? {
            self.lost_directory(id, at)?;
            return Ok(false);
        }
        Ok(true)
    }

    fn node(&mut self, node: &Node, _: &Place) -> Result<bool> {
        Ok(matches!(node.kind, NodeKind::Directory { .. }))
    }

    fn leave(&mut self, id: &BlobId, tree: &Tree, at: &Place) -> Result<()> {
        let mut nodes = Vec::with_capacity(tree.nodes.len());
        for mut node in tree.nodes.iter().cloned() {
            if let NodeKind::Directory { subtree } = &node.kind {
                node.kind = NodeKind::Directory { subtree: self.repaired_id(subtree) };
            }
            nodes.extend(self.repaired_file(node, at)?);
        }
        let repaired = Tree { nodes };
        if repaired == *tree {
            self.clean_trees.insert(*id);
        } else {
            let new = self.store(&repaired)?;
            self.repaired.insert(*id, new);
        }
        Ok(())
    }

    fn failed(&mut self, id: &BlobId, _: Listing, _: Error, at: &Place) -> Result<()> {
        self.lost_directory(id, at)
    }
}

/// A run of a file's content as repair sees it.
enum Piece {
    Entry(ContentEntry),
    Lost(u64),
}

impl Piece {
    fn length(&self) -> u64 {
        match self {
            Piece::Entry(entry) => entry.length(),
            Piece::Lost(length) => *length,
        }
    }
}
