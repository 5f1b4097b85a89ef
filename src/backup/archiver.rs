//! The walker: reads the file system depth-first in name order and builds trees bottom-up,
//! handing every new chunk and tree to the [`BlobWriter`].

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Result, anyhow};
use cairn_format::content::{Content, ContentBuilder, ContentEntry};
use cairn_format::pack::BlobKind;
use cairn_format::packer::BlobWriter;
use cairn_format::snapshot::BackupSummary;
use cairn_format::tree::{Node, NodeKind, Tree};
use cairn_format::{BlobId, Repository};
use rayon::iter::{IntoParallelIterator, ParallelIterator};

use super::chunk::{ChunkContext, Job, PieceAction, Plan, ReadStats, Run};
use super::extent::{self, ChangedRanges, Piece, RangeReader};
use super::hint;
use super::{BackupOptions, Excludes, StdinSource, is_root, scan};
use crate::metadata::{NameCache, node_from};
use crate::outcome::Interrupted;
use crate::progress::{Change, Observer, Progress};

/// Deep trees recurse deeply; give the walker room.
const WALKER_STACK: usize = 256 * 1024 * 1024;

/// What the root of the snapshot is built from: backed-up paths and the directories above
/// them, which are recorded with their metadata but only with the children that lead to a
/// backed-up path.
enum Planned {
    Real(PathBuf),
    Above(BTreeMap<Vec<u8>, Planned>),
}

fn plan(paths: &[PathBuf]) -> BTreeMap<Vec<u8>, Planned> {
    let mut root = BTreeMap::new();
    for path in paths {
        let names: Vec<&OsStr> = path.iter().skip(1).collect();
        insert(&mut root, &names, path);
    }
    root
}

fn insert(level: &mut BTreeMap<Vec<u8>, Planned>, names: &[&OsStr], path: &Path) {
    let Some((first, rest)) = names.split_first() else {
        return;
    };
    let key = first.as_bytes().to_vec();
    if rest.is_empty() {
        level.insert(key, Planned::Real(path.to_path_buf()));
        return;
    }
    let entry = level.entry(key).or_insert_with(|| Planned::Above(BTreeMap::new()));
    if let Planned::Above(children) = entry {
        insert(children, rest, path);
    } // a Real ancestor already covers this path
}

/// What the walk produced.
pub(super) struct Walked {
    pub root: BlobId,
    pub counts: BackupSummary,
    pub reads: ReadStats,
}

/// Walks everything and returns the root tree id with the walk's counters.
pub(super) fn run(
    repo: &Repository,
    writer: &BlobWriter,
    excludes: &Excludes,
    options: &mut BackupOptions,
    parent: Option<&Tree>,
    progress: &Progress,
    observer: &dyn Observer,
) -> Result<Walked> {
    let stdin = options.stdin.take();
    let options = &*options;
    let done = AtomicBool::new(false);
    let names = NameCache::default();
    let pool = walker_pool()?;
    std::thread::scope(|scope| {
        if stdin.is_none() && options.scan_totals {
            scope.spawn(|| {
                scan::count(&options.paths, excludes, progress, &done, &options.interrupt);
            });
        }
        pool.install(|| {
            let mut archiver = Archiver {
                repo,
                writer,
                excludes,
                options,
                progress,
                observer,
                names: &names,
                counts: BackupSummary::default(),
                reads: ReadStats::default(),
                hint_mismatches: 0,
            };
            let root = archiver.save_root(stdin, parent);
            done.store(true, Ordering::Relaxed);
            Ok(Walked { root: root?, counts: archiver.counts, reads: archiver.reads })
        })
    })
}

/// The walk runs on a work-stealing pool: each directory's entries are handled in parallel,
/// and a thread waiting for a subdirectory takes other work meanwhile.
fn walker_pool() -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(std::thread::available_parallelism().map_or(2, usize::from))
        .stack_size(WALKER_STACK)
        .thread_name(|i| format!("walker-{i}"))
        .build()
        .map_err(|e| anyhow!("cannot start the walker threads: {e}"))
}

struct Archiver<'a> {
    repo: &'a Repository,
    writer: &'a BlobWriter,
    excludes: &'a Excludes,
    options: &'a BackupOptions,
    progress: &'a Progress,
    observer: &'a dyn Observer,
    names: &'a NameCache,
    counts: BackupSummary,
    reads: ReadStats,
    /// Pieces whose bytes differed from what a `--changed-ranges` map promised.
    hint_mismatches: u64,
}

thread_local! {
    /// The chunker's read buffer, reused from file to file on each walker thread (a fresh
    /// multi-MiB buffer per file would be mapped and faulted in every time).
    static CHUNK_BUFFER: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// What a forked walker counted, merged into its parent's counters.
struct Tallies {
    counts: BackupSummary,
    reads: ReadStats,
    hint_mismatches: u64,
}

impl<'a> Archiver<'a> {
    /// The snapshot's root tree: stdin as one file, the whole file system, or the backed-up
    /// paths under the directories above them.
    fn save_root(&mut self, stdin: Option<StdinSource>, parent: Option<&Tree>) -> Result<BlobId> {
        let paths = &self.options.paths;
        match stdin {
            Some(source) => self.save_stdin(&source.filename, source.reader),
            None if paths.iter().any(|p| is_root(p)) => {
                let meta = fs::symlink_metadata("/")?;
                self.save_dir(Path::new("/"), &meta, parent, meta.dev())
            }
            None => self.save_planned(Path::new("/"), &plan(paths), parent),
        }
    }

    /// A walker for one entry handled in parallel: the same repository, writer and options,
    /// its own counters.
    fn fork(&self) -> Archiver<'a> {
        Archiver {
            repo: self.repo,
            writer: self.writer,
            excludes: self.excludes,
            options: self.options,
            progress: self.progress,
            observer: self.observer,
            names: self.names,
            counts: BackupSummary::default(),
            reads: ReadStats::default(),
            hint_mismatches: 0,
        }
    }

    fn tallies(self) -> Tallies {
        Tallies { counts: self.counts, reads: self.reads, hint_mismatches: self.hint_mismatches }
    }

    fn merge(&mut self, tallies: &Tallies) {
        add_counts(&mut self.counts, &tallies.counts);
        self.reads.add(&tallies.reads);
        self.hint_mismatches += tallies.hint_mismatches;
    }
}

/// Adds the walk's counters (the blob counters are the writer's, filled in later).
fn add_counts(into: &mut BackupSummary, from: &BackupSummary) {
    into.files_new += from.files_new;
    into.files_changed += from.files_changed;
    into.files_unmodified += from.files_unmodified;
    into.dirs_new += from.dirs_new;
    into.dirs_changed += from.dirs_changed;
    into.dirs_unmodified += from.dirs_unmodified;
    into.total_files_processed += from.total_files_processed;
    into.total_bytes_processed += from.total_bytes_processed;
    into.errors += from.errors;
}

impl Archiver<'_> {
    fn check_interrupt(&self) -> Result<()> {
        if self.options.interrupt.load(Ordering::Relaxed) {
            return Err(Interrupted.into());
        }
        Ok(())
    }

    fn warn(&mut self, path: &Path, message: &str) {
        self.counts.errors += 1;
        self.progress.errors.fetch_add(1, Ordering::Relaxed);
        self.observer.warning(path, message);
    }

    fn store_tree(&self, tree: &Tree) -> Result<BlobId> {
        let bytes = tree.encode();
        let id = self.repo.key().blob_id(&bytes);
        self.writer.add(BlobKind::Tree, id, move || bytes)?;
        Ok(id)
    }

    fn load_parent_tree(&self, node: Option<&Node>) -> Option<Tree> {
        let Some(NodeKind::Directory { subtree }) = node.map(|n| &n.kind) else {
            return None;
        };
        self.repo.load_tree(subtree).ok()
    }

    /// The directories above the backed-up paths.
    fn save_planned(
        &mut self,
        dir: &Path,
        children: &BTreeMap<Vec<u8>, Planned>,
        parent: Option<&Tree>,
    ) -> Result<BlobId> {
        let mut tree = Tree::default();
        for (name, planned) in children {
            let parent_node = parent.and_then(|t| t.find(name));
            let node = match planned {
                Planned::Real(path) => match fs::symlink_metadata(path) {
                    Ok(meta) => self.save_path(path, &meta, parent_node, meta.dev())?,
                    Err(e) => {
                        self.warn(path, &format!("cannot back up: {e}"));
                        None
                    }
                },
                Planned::Above(grandchildren) => {
                    let path = dir.join(OsStr::from_bytes(name));
                    let parent_tree = self.load_parent_tree(parent_node);
                    let subtree = self.save_planned(&path, grandchildren, parent_tree.as_ref())?;
                    let meta = fs::symlink_metadata(&path)?;
                    Some(node_from(
                        &path,
                        OsStr::from_bytes(name),
                        &meta,
                        NodeKind::Directory { subtree },
                        self.names,
                    ))
                }
            };
            tree.nodes.extend(node);
        }
        self.store_tree(&tree)
    }

    /// One file-system object and, for directories, everything below it. `None` when it is
    /// excluded or unreadable (unreadable ones are reported).
    fn save_path(
        &mut self,
        path: &Path,
        meta: &Metadata,
        parent: Option<&Node>,
        root_dev: u64,
    ) -> Result<Option<Node>> {
        self.check_interrupt()?;
        if self.excludes.matches_path(path) {
            return Ok(None);
        }
        let file_type = meta.file_type();
        if file_type.is_file() || self.reads_as_file(meta) {
            return self.save_file_node(path, meta, parent);
        }
        let kind = if file_type.is_dir() {
            let parent_tree = self.load_parent_tree(parent);
            let subtree = self.save_dir(path, meta, parent_tree.as_ref(), root_dev)?;
            self.count_dir(path, parent, &subtree);
            NodeKind::Directory { subtree }
        } else {
            let Some(kind) = self.special_kind(path, meta) else {
                return Ok(None);
            };
            kind
        };
        Ok(Some(self.node(path, meta, kind)))
    }

    fn node(&self, path: &Path, meta: &Metadata, kind: NodeKind) -> Node {
        let name = path.file_name().unwrap_or(path.as_os_str());
        node_from(path, name, meta, kind, self.names)
    }

    /// A file (or a device or fifo read as one) with its content.
    fn save_file_node(
        &mut self,
        path: &Path,
        meta: &Metadata,
        parent: Option<&Node>,
    ) -> Result<Option<Node>> {
        let Some((content, size)) = self.save_file(path, meta, parent)? else {
            return Ok(None);
        };
        let mut node = self.node(path, meta, NodeKind::File { content });
        node.size = size;
        // Reading a file (by anyone) moves its atime; for an unchanged file keep the one
        // recorded before, so reads alone never make its tree new.
        if let Some(old) = parent.filter(|p| looks_unchanged(p, meta)) {
            node.atime_ns = old.atime_ns;
        }
        Ok(Some(node))
    }

    /// Symlinks, devices, fifos and sockets; `None` for a symlink that does not read.
    fn special_kind(&mut self, path: &Path, meta: &Metadata) -> Option<NodeKind> {
        let file_type = meta.file_type();
        Some(if file_type.is_symlink() {
            match fs::read_link(path) {
                Ok(target) => NodeKind::Symlink { target: target.as_os_str().as_bytes().to_vec() },
                Err(e) => {
                    self.warn(path, &format!("cannot read symlink: {e}"));
                    return None;
                }
            }
        } else if file_type.is_block_device() {
            NodeKind::BlockDevice { rdev: meta.rdev() }
        } else if file_type.is_char_device() {
            NodeKind::CharDevice { rdev: meta.rdev() }
        } else if file_type.is_fifo() {
            NodeKind::Fifo
        } else {
            NodeKind::Socket
        })
    }

    fn count_dir(&mut self, path: &Path, parent: Option<&Node>, subtree: &BlobId) {
        let change = match parent.map(|n| &n.kind) {
            Some(NodeKind::Directory { subtree: old }) if old == subtree => {
                self.counts.dirs_unmodified += 1;
                Change::Unmodified
            }
            Some(NodeKind::Directory { .. }) => {
                self.counts.dirs_changed += 1;
                Change::Changed
            }
            _ => {
                self.counts.dirs_new += 1;
                Change::New
            }
        };
        self.observer.saved(path, change, true);
    }

    fn save_dir(
        &mut self,
        path: &Path,
        meta: &Metadata,
        parent: Option<&Tree>,
        root_dev: u64,
    ) -> Result<BlobId> {
        let mut tree = Tree::default();
        let crosses_device = self.options.one_file_system && meta.dev() != root_dev;
        if crosses_device || self.excludes.skips_directory(path) {
            return self.store_tree(&tree);
        }
        let mut entries: Vec<(Vec<u8>, fs::DirEntry)> = match fs::read_dir(path) {
            Ok(iter) => iter
                .filter_map(std::result::Result::ok)
                .map(|e| (e.file_name().as_bytes().to_vec(), e))
                .collect(),
            Err(e) => {
                self.warn(path, &format!("cannot list directory: {e}"));
                Vec::new()
            }
        };
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let results: Vec<Result<(Option<Node>, Tallies)>> = entries
            .into_par_iter()
            .map(|(name, entry)| {
                let mut fork = self.fork();
                let node = fork.save_entry(&name, &entry, parent, root_dev);
                node.map(|node| (node, fork.tallies()))
            })
            .collect();
        let mut nodes = Vec::with_capacity(results.len());
        for result in results {
            let (node, tallies) = result?;
            self.merge(&tallies);
            nodes.push(node);
        }
        tree.nodes.extend(nodes.into_iter().flatten());
        self.store_tree(&tree)
    }

    /// One directory entry (on a walker thread of the pool).
    fn save_entry(
        &mut self,
        name: &[u8],
        entry: &fs::DirEntry,
        parent: Option<&Tree>,
        root_dev: u64,
    ) -> Result<Option<Node>> {
        let child = entry.path();
        // Relative to the open directory (fstatat): no path walk from the root.
        let meta = match entry.metadata() {
            Ok(meta) => meta,
            Err(e) => {
                self.warn(&child, &format!("cannot stat: {e}"));
                return Ok(None);
            }
        };
        let parent_node = parent.and_then(|t| t.find(name));
        self.save_path(&child, &meta, parent_node, root_dev)
    }

    /// With `--read-special`, block devices and fifos are backed up by their contents.
    fn reads_as_file(&self, meta: &Metadata) -> bool {
        let file_type = meta.file_type();
        self.options.read_special && (file_type.is_block_device() || file_type.is_fifo())
    }

    /// A file's content list and the number of bytes it covers, or `None` if unreadable.
    /// Devices and fifos read as files are read whole every time: their metadata says nothing
    /// about whether their contents changed.
    fn save_file(
        &mut self,
        path: &Path,
        meta: &Metadata,
        parent: Option<&Node>,
    ) -> Result<Option<(Content, u64)>> {
        self.progress.set_current(path);
        // A file `repair snapshots` marked has zeros where data was lost: never reuse it.
        let parent = parent.filter(|node| !crate::repair::is_marked_damaged(node));
        if let Some(reused) = self.reuse_unchanged(meta, parent)? {
            self.observer.saved(path, Change::Unmodified, false);
            return Ok(Some(reused));
        }
        let file = match open_for_reading(path) {
            Ok(file) => file,
            Err(e) => {
                self.warn(path, &format!("cannot open: {e}"));
                return Ok(None);
            }
        };
        let mismatches_before = self.hint_mismatches;
        let saved = self.read_file(&file, meta, parent);
        self.warn_hint_mismatches(path, self.hint_mismatches - mismatches_before);
        match saved {
            Ok(saved) => {
                self.count_saved(path, parent.is_some(), saved.1);
                Ok(Some(saved))
            }
            Err(e) if e.is::<std::io::Error>() => {
                self.warn(path, &format!("cannot read: {e}"));
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// The parent's content, counted, when the file is a regular one that looks unchanged
    /// (never with --verify-unchanged, which means every byte is read).
    fn reuse_unchanged(
        &mut self,
        meta: &Metadata,
        parent: Option<&Node>,
    ) -> Result<Option<(Content, u64)>> {
        let verify_all = (self.options.changed_ranges.as_ref()).is_some_and(|r| r.verify);
        if !meta.file_type().is_file() || verify_all {
            return Ok(None);
        }
        let Some(content) = self.unchanged_content(meta, parent)? else {
            return Ok(None);
        };
        self.counts.files_unmodified += 1;
        self.counts.total_files_processed += 1;
        self.counts.total_bytes_processed += meta.size();
        self.progress.add_done(1, meta.size());
        Ok(Some((content, meta.size())))
    }

    /// Reads an open file, device or fifo into a content list.
    fn read_file(
        &mut self,
        file: &File,
        meta: &Metadata,
        parent: Option<&Node>,
    ) -> Result<(Content, u64)> {
        let parent_content = parent.and_then(|node| match &node.kind {
            NodeKind::File { content } => Some(content),
            _ => None,
        });
        if meta.file_type().is_block_device() {
            let size = device_size(file)?;
            self.save_regular_file(file, size, parent_content)
        } else if !meta.file_type().is_file() {
            self.save_content(file)
        } else {
            self.save_regular_file(file, meta.size(), parent_content)
        }
    }

    fn warn_hint_mismatches(&mut self, path: &Path, lied: u64) {
        if lied > 0 {
            self.warn(
                path,
                &format!(
                    "the --changed-ranges map missed changes in {lied} pieces of 64 MiB; \
                     the snapshot holds the bytes as read, but the map cannot be trusted"
                ),
            );
        }
    }

    fn count_saved(&mut self, path: &Path, had_parent: bool, bytes: u64) {
        let change = if had_parent {
            self.counts.files_changed += 1;
            Change::Changed
        } else {
            self.counts.files_new += 1;
            Change::New
        };
        self.observer.saved(path, change, false);
        self.counts.total_files_processed += 1;
        self.counts.total_bytes_processed += bytes;
        self.progress.add_done(1, 0);
    }

    /// The parent's content list when the file looks unchanged and its blobs are all present.
    fn unchanged_content(&self, meta: &Metadata, parent: Option<&Node>) -> Result<Option<Content>> {
        let Some(node) = parent.filter(|p| looks_unchanged(p, meta)) else {
            return Ok(None);
        };
        let NodeKind::File { content } = &node.kind else {
            return Ok(None);
        };
        let present = match content {
            Content::Inline(entries) => entries.iter().all(|e| match e {
                ContentEntry::Data { id, .. } => self.writer.has(id).unwrap_or(false),
                ContentEntry::Zero { .. } => true,
            }),
            Content::Indirect { root, .. } => self.writer.has(root)?,
        };
        Ok(present.then(|| content.clone()))
    }

    /// Chunks a stream into data blobs; all-zero chunks become zero extents.
    fn save_content(&mut self, source: impl Read) -> Result<(Content, u64)> {
        self.save_runs(None, [Ok(Run::Data(source))])
    }

    /// A regular file, hole-aware: the holes the file system reports (SEEK_HOLE) become zero
    /// extents without being read. Data is cut into pieces on a fixed grid (`extent.rs`);
    /// a file of several pieces is chunked on every core, a window of pieces at a time.
    fn save_regular_file(
        &mut self,
        file: &File,
        size: u64,
        parent: Option<&Content>,
    ) -> Result<(Content, u64)> {
        let pieces = extent::pieces(file, size);
        let data_pieces = (pieces.iter()).filter(|p| matches!(p, Piece::Data { .. })).count();
        let hint = self.options.changed_ranges.as_ref().zip(parent);
        if data_pieces <= 1 && hint.is_none() {
            let runs = pieces.into_iter().map(|piece| {
                Ok(match piece {
                    Piece::Hole(length) => Run::Hole(length),
                    Piece::Data { start, length } => {
                        Run::Data(RangeReader::new(file, start, length))
                    }
                })
            });
            return self.save_runs(Some(size), runs);
        }
        let context = self.chunk_context(Some(size));
        let workers = std::thread::available_parallelism().map_or(2, usize::from);
        let (mut builder, mut store) = (ContentBuilder::default(), self.tree_store());
        let mut total = 0;
        for window in pieces.chunks(2 * workers) {
            let (plans, jobs) = self.plan_window(window, hint);
            let ranges = hint.map(|(ranges, _)| ranges);
            let mut results = context.pieces(file, &jobs, ranges, workers)?.into_iter();
            for (piece, plan) in window.iter().zip(plans) {
                total += piece.length();
                for entry in self.entries_of(*piece, plan, &mut results) {
                    builder.push(entry, &mut store)?;
                }
            }
        }
        Ok((builder.finish(&mut store)?, total))
    }

    /// How each piece of a window is saved, and the chunking jobs that needs (with
    /// --verify-unchanged, pieces that could be reused are read and compared).
    fn plan_window(
        &self,
        window: &[Piece],
        hint: Option<(&ChangedRanges, &Content)>,
    ) -> (Vec<Plan>, Vec<Job>) {
        let verify = hint.is_some_and(|(ranges, _)| ranges.verify);
        let mut jobs = Vec::new();
        let plans = (window.iter())
            .map(|&piece| match self.plan(piece, hint) {
                PieceAction::Reuse(entries) if verify => {
                    jobs.push(Job::Read(piece));
                    Plan::Check(entries)
                }
                PieceAction::Reuse(entries) => Plan::Reuse(entries),
                PieceAction::Job(job) => {
                    jobs.push(job);
                    Plan::Take
                }
            })
            .collect();
        (plans, jobs)
    }

    /// The entries of a planned piece: the parent's, or the next chunking result.
    fn entries_of(
        &mut self,
        piece: Piece,
        plan: Plan,
        results: &mut impl Iterator<Item = (Vec<ContentEntry>, ReadStats)>,
    ) -> Vec<ContentEntry> {
        if let Plan::Reuse(entries) = plan {
            self.reads.bytes_unchanged += piece.length();
            self.progress.add_unchanged(piece.length());
            return entries;
        }
        let (fresh, reads) = results.next().expect("one result per job");
        self.reads.add(&reads);
        if let Plan::Check(old) = plan
            && !hint::same_bytes(&old, &fresh)
        {
            self.hint_mismatches += 1;
        }
        fresh
    }

    /// What to do with one piece given a `--changed-ranges` hint: reuse the parent's entries
    /// (no range touches it), patch them (a range does), or read it (no usable parent entries).
    fn plan(&self, piece: Piece, hint: Option<(&ChangedRanges, &Content)>) -> PieceAction {
        let (Piece::Data { start, length }, Some((ranges, parent))) = (piece, hint) else {
            return PieceAction::Job(Job::Read(piece));
        };
        let end = start + length;
        match hint::parent_entries(self.repo, self.writer, parent, start, end) {
            None => PieceAction::Job(Job::Read(piece)),
            Some(entries) if !ranges.touches(start, end) => PieceAction::Reuse(entries),
            Some(entries) => PieceAction::Job(Job::Patch { range: (start, end), parent: entries }),
        }
    }

    /// Builds a content list from holes and data streams, in order, on this thread, for a
    /// file of `size` bytes or a stream (`None`).
    fn save_runs<R: Read>(
        &mut self,
        size: Option<u64>,
        runs: impl IntoIterator<Item = std::io::Result<Run<R>>>,
    ) -> Result<(Content, u64)> {
        let context = self.chunk_context(size);
        let (mut builder, mut store) = (ContentBuilder::default(), self.tree_store());
        let mut reads = ReadStats::default();
        for run in runs {
            match run? {
                Run::Hole(length) => {
                    reads.bytes_holes += length;
                    self.progress.add_hole(length);
                    builder.push(ContentEntry::Zero { length }, &mut store)?;
                }
                Run::Data(source) => {
                    let buffer = CHUNK_BUFFER.take();
                    let buffer = context.chunk(source, buffer, &mut reads, &mut |entry| {
                        builder.push(entry, &mut store)?;
                        Ok(true)
                    })?;
                    CHUNK_BUFFER.set(buffer);
                }
            }
        }
        self.reads.add(&reads);
        let total = reads.bytes_read + reads.bytes_holes;
        Ok((builder.finish(&mut store)?, total))
    }

    fn save_stdin(
        &mut self,
        filename: &str,
        reader: Box<dyn Read + Send + Sync>,
    ) -> Result<BlobId> {
        let (content, size) = self.save_content(reader)?;
        self.counts.files_new += 1;
        self.counts.total_files_processed += 1;
        self.counts.total_bytes_processed += size;
        let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default();
        let uid = nix::unistd::getuid().as_raw();
        let gid = nix::unistd::getgid().as_raw();
        let node = Node {
            name: filename.as_bytes().to_vec(),
            kind: NodeKind::File { content },
            mode: 0o644,
            uid,
            gid,
            user: self.names.user(uid),
            group: self.names.group(gid),
            mtime_ns: now,
            atime_ns: now,
            ctime_ns: now,
            inode: 0,
            device: 0,
            nlink: 1,
            size,
            xattrs: Vec::new(),
        };
        self.store_tree(&Tree { nodes: vec![node] })
    }
}

/// The change-detection rule: a file whose size, mtime, ctime and inode all match its node in
/// the parent snapshot is taken to be unchanged and is not read.
fn looks_unchanged(node: &Node, meta: &Metadata) -> bool {
    matches!(node.kind, NodeKind::File { .. })
        && node.size == meta.size()
        && node.mtime_ns == crate::metadata::mtime_ns(meta)
        && node.ctime_ns == crate::metadata::ctime_ns(meta)
        && node.inode == meta.ino()
}

/// A block device's size: the offset of its end.
fn device_size(mut device: &File) -> Result<u64> {
    Ok(device.seek(SeekFrom::End(0))?)
}

/// Opens without updating the access time where the kernel allows it (only the owner or
/// root may ask for that).
fn open_for_reading(path: &Path) -> std::io::Result<File> {
    let open = |flags| OpenOptions::new().read(true).custom_flags(flags).open(path);
    open(libc::O_NOATIME | libc::O_NOFOLLOW).or_else(|_| open(libc::O_NOFOLLOW))
}

impl<'a> Archiver<'a> {
    /// For a file of `size` bytes, or a stream (`None`).
    fn chunk_context(&self, size: Option<u64>) -> ChunkContext<'a> {
        ChunkContext {
            repo: self.repo,
            chunker: self.repo.chunker_for(size),
            compression_level: (self.options.compression_level)
                .unwrap_or_else(|| self.repo.compression_for(size)),
            writer: self.writer,
            progress: self.progress,
            interrupt: &self.options.interrupt,
        }
    }

    /// Stores content-list nodes as tree blobs.
    fn tree_store(&self) -> impl FnMut(Vec<u8>) -> cairn_format::Result<BlobId> + use<'a> {
        let key = self.repo.key();
        let writer = self.writer;
        move |bytes: Vec<u8>| {
            let id = key.blob_id(&bytes);
            writer.add(BlobKind::Tree, id, move || bytes)?;
            Ok(id)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_merges_paths_and_drops_nested_ones() {
        let paths = [PathBuf::from("/home/a"), PathBuf::from("/home/a/b"), PathBuf::from("/etc")];
        let root = plan(&paths);
        assert_eq!(
            root.keys().cloned().collect::<Vec<_>>(),
            vec![b"etc".to_vec(), b"home".to_vec()]
        );
        let Planned::Above(home) = &root[&b"home".to_vec()] else { panic!("home is above a path") };
        assert!(matches!(&home[&b"a".to_vec()], Planned::Real(p) if p == Path::new("/home/a")));
    }
}
