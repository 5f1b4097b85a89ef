//! Copy: snapshots from one repository into another, transferring only the blobs the target
//! lacks. Both repositories must name and cut data the same way (the target made with `init
//! --copy-chunker-params --from-repo SOURCE`): blobs then keep their ids, trees and content
//! lists copy byte for byte, and copied data deduplicates against the target's own backups.
//! Every blob is opened (decrypted, decompressed, its id checked) from the source and sealed
//! again under the target's key, so nothing damaged in the source is copied silently.
//!
//! Order, as in a backup: all blobs are written and indexed before the snapshot that refers to
//! them, so a copy killed half-way leaves no snapshot with missing data; a rerun reuses what
//! was already stored.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, bail};
use cairn_format::content::ContentEntry;
use cairn_format::pack::BlobKind;
use cairn_format::packer::{BlobWriter, WriterOptions};
use cairn_format::snapshot::Snapshot;
use cairn_format::tree::NodeKind;
use cairn_format::{BlobId, Repository, SnapshotId};

use crate::exit::Interrupted;
use crate::progress::Progress;

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
    pub dry_run: bool,
}

/// Fails unless `target` names and cuts data as `source` does.
pub fn check_compatible(source: &Repository, target: &Repository) -> Result<()> {
    let (s, t) = (source.config(), target.config());
    if !target.key().shares_ids_with(source.key())
        || t.chunker != s.chunker
        || t.image_chunking != s.image_chunking
    {
        bail!(
            "{} does not cut and name data as {} does, so copied blobs could not keep their \
             ids: create the target with `cairn init --copy-chunker-params --from-repo {}` \
             (copying between unrelated repositories, which means rewriting every tree, is \
             not supported yet)",
            target.location(),
            source.location(),
            source.location()
        );
    }
    Ok(())
}

/// Whether `target` already holds a copy of `snapshot` (same tree, time, host and paths).
fn present_in(snapshot: &Snapshot, existing: &[(SnapshotId, Snapshot)]) -> bool {
    existing.iter().any(|(_, s)| {
        s.tree == snapshot.tree
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
    check_compatible(source, target)?;
    let existing = target.snapshots()?;
    let mut summary = CopySummary {
        dry_run,
        ..CopySummary::default()
    };
    let mut options = WriterOptions::for_repository(target);
    options.dry_run = dry_run;
    let writer = BlobWriter::new(target.clone(), options);
    let mut copier = Copier {
        source,
        writer: &writer,
        seen: HashSet::new(),
        summary: &mut summary,
        progress,
        interrupt,
    };
    let mut wanted = Vec::new();
    for (id, snapshot) in snapshots {
        if present_in(snapshot, &existing) {
            copier.summary.already_present.push(*id);
            continue;
        }
        copier.tree(&snapshot.tree)?;
        wanted.push((*id, snapshot));
    }
    writer.finish().context("cannot store the copied data")?;
    for (id, snapshot) in wanted {
        let new_id = if dry_run {
            id
        } else {
            target.save_snapshot(snapshot)?
        };
        summary.copied.push((id, new_id));
    }
    Ok(summary)
}

struct Copier<'a> {
    source: &'a Repository,
    writer: &'a BlobWriter,
    /// Blobs handled in this run (trees are walked once, however many snapshots share them).
    seen: HashSet<BlobId>,
    summary: &'a mut CopySummary,
    progress: &'a Progress,
    interrupt: &'a AtomicBool,
}

impl Copier<'_> {
    /// Copies a blob unless the target has it; returns whether it was seen before in this run.
    fn blob(&mut self, kind: BlobKind, id: &BlobId) -> Result<bool> {
        if !self.seen.insert(*id) {
            return Ok(true);
        }
        if self.interrupt.load(Ordering::Relaxed) {
            return Err(Interrupted.into());
        }
        let mut failure = None;
        let mut length = 0;
        let added = self
            .writer
            .add(kind, *id, || match self.source.read_blob(id) {
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
            return Err(e)
                .with_context(|| format!("cannot read blob {id} from {}", self.source.location()));
        }
        if added {
            self.summary.blobs_copied += 1;
            self.summary.bytes_copied += length;
            self.progress.add_bytes(length);
        }
        Ok(false)
    }

    fn tree(&mut self, id: &BlobId) -> Result<()> {
        if self.blob(BlobKind::Tree, id)? {
            return Ok(());
        }
        let tree = self.source.load_tree(id)?;
        for node in &tree.nodes {
            match &node.kind {
                NodeKind::Directory { subtree } => self.tree(subtree)?,
                NodeKind::File { content } => {
                    let load = |id: &BlobId| self.source.read_blob(id);
                    let mut nodes = Vec::new();
                    let mut data = Vec::new();
                    let mut failed = None;
                    content.visit_blobs(
                        &load,
                        &mut |node| {
                            nodes.push(*node);
                            true
                        },
                        &mut |entry| {
                            if let ContentEntry::Data { id, .. } = entry {
                                data.push(*id);
                            }
                        },
                        &mut |node, e| {
                            failed.get_or_insert((*node, e));
                        },
                    );
                    if let Some((node, e)) = failed {
                        return Err(e).with_context(|| {
                            format!("cannot read the content list node {node} of a file")
                        });
                    }
                    for id in &nodes {
                        self.blob(BlobKind::Tree, id)?;
                    }
                    for id in &data {
                        self.blob(BlobKind::Data, id)?;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}
