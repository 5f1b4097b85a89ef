//! Copy: snapshots from one repository into another, transferring only the blobs the target
//! lacks. Two ways, chosen by the keys:
//!
//! - The target names and cuts data as the source does (made with `init --copy-chunker-params
//!   --from-repo SOURCE`): blobs keep their ids, trees and content lists copy byte for byte, a
//!   blob the target has is never read, and copied data deduplicates against the target's own
//!   backups.
//! - Unrelated repositories: blob ids are keyed, so every blob gets the target's id for its
//!   bytes, and trees and content lists are rewritten with the new ids. Every data blob of a
//!   snapshot being copied is read (its new id needs its bytes), and the chunks keep the
//!   source's cut points.
//!
//! Every blob is opened (decrypted, decompressed, its id checked) from the source and sealed
//! again under the target's key, so nothing damaged in the source is copied silently.
//!
//! Order, as in a backup: all blobs are written and indexed before the snapshot that refers to
//! them, so a copy killed half-way leaves no snapshot with missing data; a rerun reuses what
//! was already stored.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use cairn_format::content::{Content, ContentBuilder, ContentEntry};
use cairn_format::index::BlobLocation;
use cairn_format::pack::BlobKind;
use cairn_format::packer::{BlobWriter, WriterOptions};
use cairn_format::snapshot::Snapshot;
use cairn_format::tree::{Node, NodeKind, Tree};
use cairn_format::{BlobId, Error, PackId, Repository, SnapshotId};

use crate::outcome::Interrupted;
use crate::progress::Progress;
use crate::walk::{Listing, Place, Visitor, Walker};

/// What a copy did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct CopySummary {
    /// Source snapshot id -> the id of its copy in the target.
    pub copied: Vec<(SnapshotId, SnapshotId)>,
    /// Source snapshots the target already holds.
    pub already_present: Vec<SnapshotId>,
    pub blobs_copied: u64,
    /// Plaintext bytes of the blobs copied.
    pub bytes_copied: u64,
    /// Whether blob ids were rewritten (unrelated repositories).
    pub rewritten: bool,
    pub dry_run: bool,
    /// Source snapshots not copied because something they need does not read in the source,
    /// with why; every other snapshot is copied all the same.
    pub failed: Vec<(SnapshotId, String)>,
}

/// Source snapshots with the copies to write into the target.
type Copies = Vec<(SnapshotId, Snapshot)>;
/// Source snapshots not copied, with why.
type LeftOut = Vec<(SnapshotId, String)>;

/// Something a snapshot needs does not read in the source: that snapshot is not copied.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct SourceUnreadable(String);

/// Whether blobs keep their ids from `source` to `target`.
pub fn ids_carry_over(source: &Repository, target: &Repository) -> bool {
    let (s, t) = (source.config(), target.config());
    target.key().shares_ids_with(source.key())
        && t.chunker == s.chunker
        && t.image_chunking == s.image_chunking
}

/// Whether `target` already holds a copy of `snapshot`: same time, host and paths (and, when
/// ids carry over, the same tree).
fn present_in(snapshot: &Snapshot, existing: &[(SnapshotId, Snapshot)], same_ids: bool) -> bool {
    existing.iter().any(|(_, s)| {
        (!same_ids || s.tree == snapshot.tree)
            && s.time_ns == snapshot.time_ns
            && s.hostname == snapshot.hostname
            && s.paths == snapshot.paths
    })
}

/// Copies `snapshots` of `source` into `target`.
pub fn copy(
    source: &Repository,
    target: &Arc<Repository>,
    snapshots: &[(SnapshotId, Snapshot)],
    dry_run: bool,
    progress: &Progress,
    interrupt: &AtomicBool,
) -> Result<CopySummary> {
    let span = tracing::info_span!("copy", from = %source.location(), to = %target.location());
    let _enter = span.enter();
    let same_ids = ids_carry_over(source, target);
    let existing = crate::select::readable(target)?;
    let (present, to_copy): (Vec<_>, Vec<_>) =
        (snapshots.iter()).partition(|(_, snapshot)| present_in(snapshot, &existing, same_ids));
    let mut summary = CopySummary {
        dry_run,
        rewritten: !same_ids,
        already_present: present.iter().map(|(id, _)| *id).collect(),
        ..CopySummary::default()
    };
    let mut options = WriterOptions::for_repository(target);
    options.dry_run = dry_run;
    let writer = BlobWriter::new(target.clone(), options);
    let mut copier = Copier {
        source,
        target,
        same_ids,
        queued: Vec::new(),
        writer: &writer,
        unreadable: HashMap::new(),
        translated: HashMap::new(),
        summary: &mut summary,
        progress,
        interrupt,
    };
    let (wanted, failed) = copier.copy_blobs(&to_copy)?;
    writer.finish().context("cannot store the copied data")?;
    summary.failed = failed;
    summary.copied = save_copies(target, wanted, dry_run)?;
    Ok(summary)
}

/// Writes the copied snapshots, once all their blobs are stored; returns source id -> new id.
fn save_copies(
    target: &Repository,
    copies: Copies,
    dry_run: bool,
) -> Result<Vec<(SnapshotId, SnapshotId)>> {
    let save = |(id, copy): (SnapshotId, Snapshot)| {
        let new_id = if dry_run { id } else { target.save_snapshot(&copy)? };
        Ok((id, new_id))
    };
    copies.into_iter().map(save).collect()
}

struct Copier<'a> {
    source: &'a Repository,
    target: &'a Repository,
    /// Whether blobs keep their ids (else they are rewritten).
    same_ids: bool,
    /// Data blobs to read, pack by pack, once the trees are walked: those the target lacks
    /// (same ids), or all (rewriting, which needs every blob's bytes for its new id).
    queued: Vec<BlobId>,
    writer: &'a BlobWriter,
    /// Blobs the source cannot give, and trees that need one, with why.
    unreadable: HashMap<BlobId, String>,
    /// Rewriting: source blob id -> target blob id, for blobs already handled.
    translated: HashMap<BlobId, BlobId>,
    summary: &'a mut CopySummary,
    progress: &'a Progress,
    interrupt: &'a AtomicBool,
}

/// Splits a source failure (the snapshot is left out, for this reason) from one that stops
/// the copy (the target, an interrupt).
fn spare<T>(result: Result<T>) -> Result<Result<T, String>> {
    match result {
        Ok(value) => Ok(Ok(value)),
        Err(e) if e.is::<SourceUnreadable>() => Ok(Err(e.to_string())),
        Err(e) => Err(e),
    }
}

impl Copier<'_> {
    /// Copies what the snapshots need: trees walked first (they come whole with their packs),
    /// then the data read pack by pack, then (unrelated ids) the trees rewritten with the ids
    /// the data got. Returns the snapshots to write, and those left out because they need a
    /// blob the source cannot give (with why).
    fn copy_blobs(&mut self, snapshots: &[&(SnapshotId, Snapshot)]) -> Result<(Copies, LeftOut)> {
        let (mut walked, mut failed) = (Vec::new(), Vec::new());
        let mut walker = Walker::new(self.source);
        for (id, snapshot) in snapshots {
            let result = walker.walk(&snapshot.tree, &mut Collect(self));
            match self.left_out(&walker, result)? {
                Ok(()) => walked.push((*id, snapshot)),
                Err(reason) => failed.push((*id, reason)),
            }
        }
        self.copy_queued()?;
        let mut walker = Walker::new(self.source);
        let mut wanted = Vec::new();
        for (id, snapshot) in walked {
            match self.finished_copy(&mut walker, snapshot)? {
                Ok(copy) => wanted.push((id, copy)),
                Err(reason) => failed.push((id, reason)),
            }
        }
        Ok((wanted, failed))
    }

    /// Splits the result of walking a snapshot: a source failure leaves the snapshot out (for
    /// this reason), and every tree the walk was in needs what failed, so later snapshots
    /// sharing one are left out without walking it again. Other failures stop the copy.
    fn left_out(&mut self, walker: &Walker, walked: Result<()>) -> Result<Result<(), String>> {
        let result = spare(walked)?;
        if let Err(reason) = &result {
            for tree in walker.open_trees() {
                self.unreadable.insert(*tree, reason.clone());
            }
        }
        Ok(result)
    }

    /// Records that `id` does not read in the source; the error a snapshot needing it gets.
    fn unreadable(&mut self, id: &BlobId, error: impl std::fmt::Display) -> anyhow::Error {
        let reason = format!("blob {id} does not read in {}: {error}", self.source.location());
        self.unreadable.insert(*id, reason.clone());
        SourceUnreadable(reason).into()
    }

    /// The snapshot as it is written into the target once its data is copied, or why it is
    /// left out: some data it needs did not read (same ids), or rewriting it failed.
    fn finished_copy(
        &mut self,
        walker: &mut Walker,
        snapshot: &Snapshot,
    ) -> Result<Result<Snapshot, String>> {
        let walked = if !self.same_ids {
            walker.walk(&snapshot.tree, &mut Rewrite(self))
        } else if self.unreadable.is_empty() {
            Ok(())
        } else {
            walker.walk(&snapshot.tree, &mut Complete(self))
        };
        if let Err(reason) = self.left_out(walker, walked)? {
            return Ok(Err(reason));
        }
        let mut copy = snapshot.clone();
        if !self.same_ids {
            copy.tree = self.translated_tree(&snapshot.tree)?;
        }
        copy.parent = None; // an id in the source repository
        Ok(Ok(copy))
    }

    fn translated_tree(&self, id: &BlobId) -> Result<BlobId> {
        (self.translated.get(id).copied())
            .with_context(|| format!("tree {id} was not rewritten before its parent"))
    }

    /// Copies a tree or content-list blob unless the target has it.
    fn copy_tree_blob(&mut self, id: &BlobId) -> Result<()> {
        if self.interrupt.load(Ordering::Relaxed) {
            return Err(Interrupted.into());
        }
        let mut failure = None;
        let mut length = 0;
        let added = self.writer.add(BlobKind::Tree, *id, || match self.source.read_blob(id) {
            Ok(plain) => {
                length = plain.len() as u64;
                plain
            }
            Err(e) => {
                failure = Some(e);
                Vec::new()
            }
        })?;
        if let Some(e) = failure {
            return Err(self.unreadable(id, e));
        }
        if added {
            self.count_copied(length);
        }
        Ok(())
    }

    /// Copies the queued data blobs grouped by pack: a pack at least half of whose bytes are
    /// wanted is read whole, in one request, instead of one request per blob. Rewriting, each
    /// is stored under its new id, remembered for the trees.
    fn copy_queued(&mut self) -> Result<()> {
        for (pack, blobs) in self.queued_by_pack() {
            let wanted: u64 = blobs.iter().map(|(_, l)| u64::from(l.length)).sum();
            // A pack that does not read whole is read blob by blob: what reads is copied.
            let whole = match self.source.index().pack(&pack)? {
                Some(known) if wanted * 2 >= known.size => {
                    self.source.read_pack_range(&pack, 0, known.size).ok()
                }
                _ => None,
            };
            for (id, location) in blobs {
                let sealed = whole.as_ref().and_then(|bytes| {
                    let at = location.offset as usize;
                    bytes.get(at..at + location.length as usize)
                });
                self.copy_data(&id, &location, sealed)?;
            }
        }
        Ok(())
    }

    /// The queued blobs by pack; those the source's index does not place are unreadable.
    fn queued_by_pack(&mut self) -> BTreeMap<PackId, Vec<(BlobId, BlobLocation)>> {
        let mut by_pack: BTreeMap<PackId, Vec<(BlobId, BlobLocation)>> = BTreeMap::new();
        for id in std::mem::take(&mut self.queued) {
            match self.source.locate(&id) {
                Ok(location) => by_pack.entry(location.pack).or_default().push((id, location)),
                Err(e) => drop(self.unreadable(&id, e)),
            }
        }
        by_pack
    }

    /// Copies one data blob, from its sealed bytes when its pack was read whole.
    fn copy_data(
        &mut self,
        id: &BlobId,
        location: &BlobLocation,
        sealed: Option<&[u8]>,
    ) -> Result<()> {
        if self.interrupt.load(Ordering::Relaxed) {
            return Err(Interrupted.into());
        }
        let read = match sealed {
            Some(sealed) => self.source.open_blob(id, location, sealed),
            None => self.source.read_blob(id),
        };
        let plain = match read {
            Ok(plain) => plain,
            Err(e) => {
                drop(self.unreadable(id, e));
                return Ok(());
            }
        };
        if self.same_ids {
            let length = plain.len() as u64;
            if self.writer.add(BlobKind::Data, *id, || plain)? {
                self.count_copied(length);
            }
        } else {
            let new = self.store_new(BlobKind::Data, plain)?;
            self.translated.insert(*id, new);
        }
        Ok(())
    }

    fn count_copied(&mut self, length: u64) {
        self.summary.blobs_copied += 1;
        self.summary.bytes_copied += length;
        self.progress.add_bytes(length);
    }

    /// Stores `plain` under the target's id for it; returns that id.
    fn store_new(&mut self, kind: BlobKind, plain: Vec<u8>) -> Result<BlobId> {
        if self.interrupt.load(Ordering::Relaxed) {
            return Err(Interrupted.into());
        }
        let id = self.target.key().blob_id(&plain);
        let length = plain.len() as u64;
        if self.writer.add(kind, id, || plain)? {
            self.count_copied(length);
        }
        Ok(id)
    }

    /// Rewrites a tree of unrelated ids, once its subtrees are: stores it under the target's
    /// id, remembered for its parent.
    fn rewrite_tree(&mut self, id: &BlobId, tree: &Tree) -> Result<()> {
        let mut nodes = tree.nodes.clone();
        for node in &mut nodes {
            match &mut node.kind {
                NodeKind::Directory { subtree } => *subtree = self.translated_tree(subtree)?,
                NodeKind::File { content } => *content = self.rewrite_content(content)?,
                _ => {}
            }
        }
        let new = self.store_new(BlobKind::Tree, Tree { nodes }.encode())?;
        self.translated.insert(*id, new);
        Ok(())
    }

    /// A file's content list with the target's ids, built as a backup builds one.
    fn rewrite_content(&mut self, content: &Content) -> Result<Content> {
        let target = self.target;
        let mut entries = Vec::new();
        let load = |id: &BlobId| self.source.read_blob(id);
        let listed = content.for_each(&load, &mut |_, entry| {
            entries.push(*entry);
            Ok(())
        });
        listed.map_err(|e| SourceUnreadable(format!("a content list does not read: {e}")))?;
        let mut rewritten = Vec::with_capacity(entries.len());
        for entry in entries {
            rewritten.push(match entry {
                ContentEntry::Data { id, length } => {
                    ContentEntry::Data { id: self.rewrite_data(&id)?, length }
                }
                zero @ ContentEntry::Zero { .. } => zero,
            });
        }
        let mut nodes = Vec::new();
        let mut builder = ContentBuilder::default();
        let mut store = |bytes: Vec<u8>| {
            let id = target.key().blob_id(&bytes);
            nodes.push((id, bytes));
            Ok(id)
        };
        for entry in rewritten {
            builder.push(entry, &mut store)?;
        }
        let content = builder.finish(&mut store)?;
        for (_, bytes) in nodes {
            self.store_new(BlobKind::Tree, bytes)?;
        }
        Ok(content)
    }

    fn rewrite_data(&mut self, id: &BlobId) -> Result<BlobId> {
        if let Some(done) = self.translated.get(id) {
            return Ok(*done);
        }
        if let Some(reason) = self.unreadable.get(id) {
            return Err(SourceUnreadable(reason.clone()).into());
        }
        let plain = self.source.read_blob(id).map_err(|e| self.unreadable(id, e))?;
        let new = self.store_new(BlobKind::Data, plain)?;
        self.translated.insert(*id, new);
        Ok(new)
    }
}

/// The first walk: queues the data blobs to read and, when ids carry over, copies the trees
/// and content-list nodes the target lacks. Every content node is walked again in each file
/// that has it, so a file sharing one with something unreadable under it is left out too.
struct Collect<'c, 'a>(&'c mut Copier<'a>);

impl Visitor for Collect<'_, '_> {
    fn reach(&mut self, id: &BlobId, listing: Listing, first: bool, _: &Place) -> Result<bool> {
        let copier = &mut *self.0;
        if let Some(reason) = copier.unreadable.get(id) {
            return Err(SourceUnreadable(reason.clone()).into());
        }
        if copier.same_ids && first {
            copier.copy_tree_blob(id)?;
        }
        Ok(first || listing == Listing::ContentNode)
    }

    fn data(&mut self, id: &BlobId, _: u32, first: bool, _: &Place) -> Result<()> {
        let copier = &mut *self.0;
        if first && (!copier.same_ids || copier.target.index().lookup_intact(id)?.is_none()) {
            copier.queued.push(*id);
        }
        Ok(())
    }

    fn failed(&mut self, id: &BlobId, _: Listing, error: Error, _: &Place) -> Result<()> {
        Err(self.0.unreadable(id, error))
    }
}

/// Same ids, once the data is copied: fails at the first data blob that did not read.
/// Content nodes are walked in every file, as in [`Collect`].
struct Complete<'c, 'a>(&'c mut Copier<'a>);

impl Complete<'_, '_> {
    fn needs_nothing_unreadable(&self, id: &BlobId) -> Result<()> {
        match self.0.unreadable.get(id) {
            Some(reason) => Err(SourceUnreadable(reason.clone()).into()),
            None => Ok(()),
        }
    }
}

impl Visitor for Complete<'_, '_> {
    fn reach(&mut self, id: &BlobId, listing: Listing, first: bool, _: &Place) -> Result<bool> {
        self.needs_nothing_unreadable(id)?;
        Ok(first || listing == Listing::ContentNode)
    }

    fn data(&mut self, id: &BlobId, _: u32, _: bool, _: &Place) -> Result<()> {
        self.needs_nothing_unreadable(id)
    }

    fn failed(&mut self, id: &BlobId, _: Listing, error: Error, _: &Place) -> Result<()> {
        Err(self.0.unreadable(id, error))
    }
}

/// Unrelated ids, once the data is copied: each tree is rewritten after its subtrees, with
/// the ids its data and subtrees got (content lists are rewritten whole, per file).
struct Rewrite<'c, 'a>(&'c mut Copier<'a>);

impl Visitor for Rewrite<'_, '_> {
    fn reach(&mut self, id: &BlobId, _: Listing, _: bool, _: &Place) -> Result<bool> {
        if let Some(reason) = self.0.unreadable.get(id) {
            return Err(SourceUnreadable(reason.clone()).into());
        }
        Ok(!self.0.translated.contains_key(id))
    }

    fn node(&mut self, node: &Node, _: &Place) -> Result<bool> {
        Ok(matches!(node.kind, NodeKind::Directory { .. }))
    }

    fn leave(&mut self, id: &BlobId, tree: &Tree, _: &Place) -> Result<()> {
        self.0.rewrite_tree(id, tree)
    }

    fn failed(&mut self, id: &BlobId, _: Listing, error: Error, _: &Place) -> Result<()> {
        Err(self.0.unreadable(id, error))
    }
}
