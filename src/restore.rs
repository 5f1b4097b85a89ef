//! Restore: writes a snapshot (or a path inside it) into a target directory.
//!
//! Plan first, then write: the tree is walked to list what to create; files are created at
//! their full size (so zero extents stay holes); the blobs they need are grouped by pack and
//! each pack is read once, in offset order, by a pool of threads that write every blob to all
//! the file ranges that use it. Metadata comes last, directories deepest first, so writing
//! never disturbs a time or permission already set.
//!
//! Safety: every name was validated when its tree was decoded (no `/`, `..`, NUL); each
//! directory on the way to an item is checked to be a real directory, never a symlink, and
//! files are opened with `O_NOFOLLOW`. Nothing is written outside the target.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fs::{self, OpenOptions};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};
use cairn_format::content::{Content, ContentEntry};
use cairn_format::index::BlobLocation;
use cairn_format::snapshot::Snapshot;
use cairn_format::tree::{Node, NodeKind, Tree};
use cairn_format::{BlobId, Repository};
use globset::GlobSet;

use crate::metadata;
use crate::outcome::Interrupted;
use crate::progress::{Observer, Progress};

/// What to do with files that already exist in the target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Overwrite {
    #[default]
    Always,
    /// Only when size or modification time differ.
    IfChanged,
    Never,
}

/// Everything a restore needs to know.
#[derive(Clone, Debug, Default)]
pub struct RestoreOptions {
    pub target: PathBuf,
    /// A path inside the snapshot; its contents (or the file itself) are restored.
    pub subpath: Option<PathBuf>,
    pub includes: Vec<String>,
    pub excludes: Vec<String>,
    pub overwrite: Overwrite,
    pub verify: bool,
    pub interrupt: Arc<AtomicBool>,
    /// Where file contents are written.
    pub sink: Sink,
}

/// What a restore did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct RestoreSummary {
    pub files_restored: u64,
    pub dirs_restored: u64,
    pub other_restored: u64,
    pub files_skipped: u64,
    pub bytes_written: u64,
    pub total_bytes: u64,
    pub files_verified: u64,
    /// Files that could not be written completely (or failed `--verify`): removed, so that
    /// nothing incomplete is left looking restored.
    pub files_failed: u64,
    pub errors: u64,
}

/// One thing to create. The list holds every node of the restore, so an item names its parent
/// directory's item instead of carrying its path (paths are rebuilt where they are needed).
struct Item {
    /// Index of the directory item it is in; `None` at the top of the restore.
    parent: Option<u32>,
    node: Node,
}

/// The path of `items[i]` relative to the target.
fn rel(items: &[Item], i: usize) -> PathBuf {
    let mut names = Vec::new();
    let mut at = Some(i);
    while let Some(j) = at {
        names.push(OsStr::from_bytes(&items[j].node.name));
        at = items[j].parent.map(|p| p as usize);
    }
    names.iter().rev().collect()
}

/// How many directories `items[i]` is below the top of the restore.
fn depth(items: &[Item], i: usize) -> usize {
    std::iter::successors(items[i].parent, |&p| items[p as usize].parent).count()
}

/// A file range that wants a blob.
#[derive(Clone, Copy)]
struct Target {
    file: usize,
    offset: u64,
}

struct Run<'a> {
    repo: &'a Repository,
    options: &'a RestoreOptions,
    progress: &'a Progress,
    observer: &'a dyn Observer,
    errors: AtomicU64,
    bytes_written: AtomicU64,
    checked_dirs: Mutex<HashSet<PathBuf>>,
    /// Item indexes of files some of whose bytes were not written.
    failed_files: Mutex<HashSet<usize>>,
}

impl Run<'_> {
    fn warn(&self, path: &Path, message: &str) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        self.progress.errors.fetch_add(1, Ordering::Relaxed);
        self.observer.warning(path, message);
    }

    /// Reports a failure to write part of the file `items[file]`: the file is removed at the
    /// end of the write phase instead of getting its metadata.
    fn fail_file(&self, items: &[Item], file: usize, message: &str) {
        self.warn(&rel(items, file), message);
        self.failed_files.lock().expect("failed files").insert(file);
    }

    fn interrupted(&self) -> bool {
        self.options.interrupt.load(Ordering::Relaxed)
    }
}

/// Restores `snapshot` according to `options`.
pub fn restore(
    repo: &Repository,
    snapshot: &Snapshot,
    options: &RestoreOptions,
    progress: &Progress,
    observer: &dyn Observer,
) -> Result<RestoreSummary> {
    let span =
        tracing::info_span!("restore", repo = %repo.location(), target = %options.target.display());
    let _enter = span.enter();
    let filter = Filter::new(&options.includes, &options.excludes)?;
    let items = plan(repo, snapshot, options.subpath.as_deref(), &filter)?;
    fs::create_dir_all(&options.target).with_context(|| {
        format!(
            "cannot create target directory {}",
            options.target.display()
        )
    })?;
    let run = Run {
        repo,
        options,
        progress,
        observer,
        errors: AtomicU64::new(0),
        bytes_written: AtomicU64::new(0),
        checked_dirs: Mutex::new(HashSet::new()),
        failed_files: Mutex::new(HashSet::new()),
    };
    let mut summary = RestoreSummary::default();
    for (i, item) in items.iter().enumerate() {
        if !matches!(item.node.kind, NodeKind::Directory { .. }) {
            continue;
        }
        let rel = rel(&items, i);
        match ensure_dir(&run, &rel) {
            Ok(()) => summary.dirs_restored += 1,
            Err(e) => run.warn(&rel, &format!("cannot create directory: {e}")),
        }
    }
    let mut files = prepare_files(&run, &items, &mut summary);
    write_contents(&run, &items, &files);
    if run.interrupted() {
        return Err(Interrupted.into());
    }
    discard_failed(&run, &items, &mut files, &mut summary);
    summary.other_restored = create_others(&run, &items, &files);
    apply_metadata(&run, &items, &files);
    if options.verify {
        summary.files_verified = verify(&run, &items, &files);
        discard_failed(&run, &items, &mut files, &mut summary);
    }
    summary.files_restored = files.written.len() as u64;
    summary.bytes_written = run.bytes_written.load(Ordering::Relaxed);
    summary.errors = run.errors.load(Ordering::Relaxed);
    Ok(summary)
}

/// Include and exclude patterns, matched against a node's full path in the snapshot.
struct Filter {
    includes: Option<GlobSet>,
    excludes: GlobSet,
}

impl Filter {
    fn new(includes: &[String], excludes: &[String]) -> Result<Self> {
        Ok(Self {
            includes: if includes.is_empty() {
                None
            } else {
                Some(crate::pattern::compile(includes)?)
            },
            excludes: crate::pattern::compile(excludes)?,
        })
    }
}

/// Lists what to restore, parents before children.
fn plan(
    repo: &Repository,
    snapshot: &Snapshot,
    subpath: Option<&Path>,
    filter: &Filter,
) -> Result<Vec<Item>> {
    let subpath = subpath.unwrap_or(Path::new("/"));
    let full: PathBuf = std::iter::once(Component::RootDir)
        .chain(
            subpath
                .components()
                .filter(|c| matches!(c, Component::Normal(_))),
        )
        .collect();
    let mut items = Vec::new();
    let tree = match crate::dump::find_node(repo, snapshot, subpath)? {
        None => repo.load_tree(&snapshot.tree)?,
        Some(Node {
            kind: NodeKind::Directory { subtree },
            ..
        }) => repo.load_tree(&subtree)?,
        Some(node) => {
            let included = filter.includes.as_ref().is_none_or(|s| s.is_match(&full));
            if included && !filter.excludes.is_match(&full) {
                items.push(Item { parent: None, node });
            }
            return Ok(items);
        }
    };
    collect(repo, &tree, None, &full, filter, false, &mut items)?;

    items.shrink_to_fit(); // the list outlives its growth: give back up to half of it
    Ok(items)
}

/// Adds the included nodes of `tree`; returns whether anything was added.
fn collect(
    repo: &Repository,
    tree: &Tree,
    parent: Option<u32>,
    full: &Path,
    filter: &Filter,
    parent_included: bool,
    items: &mut Vec<Item>,
) -> Result<bool> {
    let mut any = false;
    for node in &tree.nodes {
        let full = full.join(OsStr::from_bytes(&node.name));
        if filter.excludes.is_match(&full) {
            continue;
        }
        let included =
            parent_included || filter.includes.as_ref().is_none_or(|s| s.is_match(&full));
        if let NodeKind::Directory { subtree } = &node.kind {
            let at = items.len();
            items.push(Item {
                parent,
                node: node.clone(),
            });
            let subtree = repo.load_tree(subtree)?;
            let this = Some(u32::try_from(at).context("too many items to restore")?);
            if collect(repo, &subtree, this, &full, filter, included, items)? || included {
                any = true;
            } else {
                items.remove(at); // a directory with nothing included is left out
            }
        } else if included {
            items.push(Item {
                parent,
                node: node.clone(),
            });
            any = true;
        }
    }
    Ok(any)
}

/// Makes sure `rel` (relative to the target) is a real directory, creating what is missing
/// and refusing to pass through anything that is not a directory.
fn ensure_dir(run: &Run<'_>, rel: &Path) -> io::Result<()> {
    let mut path = run.options.target.clone();
    let mut so_far = PathBuf::new();
    for component in rel.components() {
        path.push(component);
        so_far.push(component);
        if run
            .checked_dirs
            .lock()
            .expect("dir cache")
            .contains(&so_far)
        {
            continue;
        }
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) if run.options.overwrite == Overwrite::Always => {
                fs::remove_file(&path)?;
                fs::create_dir(&path)?;
            }
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "exists and is not a directory",
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => fs::create_dir(&path)?,
            Err(e) => return Err(e),
        }
        run.checked_dirs
            .lock()
            .expect("dir cache")
            .insert(so_far.clone());
    }
    Ok(())
}

/// Regular files to write (index into items), and hardlinks to make to them.
#[derive(Default)]
struct Files {
    written: Vec<usize>,
    /// item index -> item index of the file it is a hardlink of.
    links: HashMap<usize, usize>,
    /// Files skipped because they exist (overwrite policy).
    skipped: HashSet<usize>,
}

fn prepare_files(run: &Run<'_>, items: &[Item], summary: &mut RestoreSummary) -> Files {
    let mut files = Files::default();
    let mut first_of_inode: HashMap<(u64, u64), usize> = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        let NodeKind::File { .. } = item.node.kind else {
            continue;
        };
        if item.node.nlink > 1 && item.node.inode != 0 {
            if let Some(&first) = first_of_inode.get(&(item.node.device, item.node.inode)) {
                files.links.insert(i, first);
                continue;
            }
            first_of_inode.insert((item.node.device, item.node.inode), i);
        }
        let rel = rel(items, i);
        let path = run.options.target.join(&rel);
        if should_skip(&path, &item.node, run.options.overwrite) {
            files.skipped.insert(i);
            summary.files_skipped += 1;
            continue;
        }
        summary.total_bytes += item.node.size;
        match create_file(run, &rel, item.node.size) {
            Ok(()) => files.written.push(i),
            Err(e) => run.warn(&path, &format!("cannot create file: {e}")),
        }
    }
    run.progress
        .add_total(files.written.len() as u64, summary.total_bytes);
    files
}

fn should_skip(path: &Path, node: &Node, overwrite: Overwrite) -> bool {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return false;
    };
    match overwrite {
        Overwrite::Always => false,
        Overwrite::Never => true,
        Overwrite::IfChanged => {
            meta.is_file() && meta.size() == node.size && metadata::mtime_ns(&meta) == node.mtime_ns
        }
    }
}

/// Creates (or truncates) a file at its final size: never-written ranges stay holes.
fn create_file(run: &Run<'_>, rel: &Path, size: u64) -> io::Result<()> {
    if let Some(parent) = rel.parent() {
        ensure_dir(run, parent)?;
    }
    let path = run.options.target.join(rel);
    if fs::symlink_metadata(&path).is_ok_and(|m| !m.is_file()) {
        remove_any(&path)?;
    }
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)?;
    file.set_len(size)
}

fn remove_any(path: &Path) -> io::Result<()> {
    if fs::symlink_metadata(path)?.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    }
}

/// A blob to restore: where it is, and which `targets` want it (a range of the plan's list).
struct PlannedBlob {
    id: BlobId,
    location: BlobLocation,
    targets: std::ops::Range<usize>,
}

/// Groups every needed blob by pack and has a thread pool read each pack once. The plan is two
/// flat lists (targets sorted by blob, blobs sorted by pack and offset), about 100 bytes per
/// blob, instead of a map with a vector per blob.
fn write_contents(run: &Run<'_>, items: &[Item], files: &Files) {
    let mut needs: Vec<(BlobId, Target)> = Vec::new();
    let load = |id: &BlobId| run.repo.read_blob(id);
    for &file in &files.written {
        let NodeKind::File { content } = &items[file].node.kind else {
            continue;
        };
        let visited = content.for_each(&load, &mut |offset, entry| {
            match *entry {
                ContentEntry::Data { id, .. } => needs.push((id, Target { file, offset })),
                ContentEntry::Zero { length } => run.progress.add_bytes(length),
            }
            Ok(())
        });
        if let Err(e) = visited {
            run.fail_file(items, file, &format!("content list unreadable: {e}"));
        }
    }
    needs.sort_unstable_by_key(|(id, _)| *id);
    let mut blobs: Vec<PlannedBlob> = Vec::new();
    let mut start = 0;
    while start < needs.len() {
        let id = needs[start].0;
        let end = start + needs[start..].partition_point(|(other, _)| *other == id);
        match run.repo.locate(&id) {
            Ok(location) => blobs.push(PlannedBlob {
                id,
                location,
                targets: start..end,
            }),
            Err(e) => {
                for (_, t) in &needs[start..end] {
                    run.fail_file(items, t.file, &format!("{e}"));
                }
            }
        }
        start = end;
    }
    let targets: Vec<Target> = needs.into_iter().map(|(_, t)| t).collect();
    blobs.sort_unstable_by_key(|b| (b.location.pack, b.location.offset));
    let mut packs = Vec::new();
    let mut first = 0;
    for i in 1..=blobs.len() {
        if i == blobs.len() || blobs[i].location.pack != blobs[first].location.pack {
            packs.push(first..i);
            first = i;
        }
    }
    let queue = Mutex::new(packs);
    let threads = std::thread::available_parallelism().map_or(2, usize::from) * 2;
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                // Sized once: reads never exceed MAX_READ, so it is never grown (and doubled).
                let mut buffer = Vec::with_capacity(MAX_READ as usize);
                loop {
                    let next = queue.lock().expect("pack queue").pop();
                    let Some(range) = next else { break };
                    if run.interrupted() {
                        break;
                    }
                    restore_pack(run, items, &blobs[range], &targets, &mut buffer);
                }
            });
        }
    });
}

/// Largest gap between two needed blobs that is read through rather than split into two reads.
const MAX_GAP: u64 = 1 << 20;
/// Largest single read, into a buffer each thread keeps: large enough for full disk speed,
/// small enough that four threads hold 16 MiB (8 MiB reads were no faster and held 32; 32 MiB
/// held 128).
const MAX_READ: u64 = 4 << 20;

/// Restores the blobs of one pack (sorted by offset), reading runs of them at once.
fn restore_pack(
    run: &Run<'_>,
    items: &[Item],
    blobs: &[PlannedBlob],
    targets: &[Target],
    buffer: &mut Vec<u8>,
) {
    let pack = blobs[0].location.pack;
    let mut start = 0;
    while start < blobs.len() {
        let first = u64::from(blobs[start].location.offset);
        let mut end = start + 1;
        while end < blobs.len() {
            let previous = &blobs[end - 1].location;
            let previous_end = u64::from(previous.offset) + u64::from(previous.length);
            let next = &blobs[end].location;
            let next_end = u64::from(next.offset) + u64::from(next.length);
            if u64::from(next.offset) > previous_end + MAX_GAP || next_end - first > MAX_READ {
                break;
            }
            end += 1;
        }
        let last = &blobs[end - 1].location;
        let length = u64::from(last.offset) + u64::from(last.length) - first;
        match run.repo.read_pack_range_into(&pack, first, length, buffer) {
            Ok(()) => {
                let bytes = &*buffer;
                for blob in &blobs[start..end] {
                    let at = (u64::from(blob.location.offset) - first) as usize;
                    let sealed = &bytes[at..at + blob.location.length as usize];
                    let wanted = &targets[blob.targets.clone()];
                    write_blob(run, items, &blob.id, &blob.location, sealed, wanted);
                }
            }
            Err(e) => {
                for blob in &blobs[start..end] {
                    for t in &targets[blob.targets.clone()] {
                        run.fail_file(items, t.file, &format!("cannot read pack: {e}"));
                    }
                }
            }
        }
        start = end;
    }
}

fn write_blob(
    run: &Run<'_>,
    items: &[Item],
    id: &BlobId,
    location: &BlobLocation,
    sealed: &[u8],
    targets: &[Target],
) {
    let plain = match run.repo.open_blob(id, location, sealed) {
        Ok(plain) => plain,
        Err(e) => {
            for t in targets {
                run.fail_file(items, t.file, &format!("{e}"));
            }
            return;
        }
    };
    for t in targets {
        let path = run.options.target.join(rel(items, t.file));
        match run.options.sink.0.write_at(&path, &plain, t.offset) {
            Ok(()) => {
                run.bytes_written
                    .fetch_add(plain.len() as u64, Ordering::Relaxed);
                run.progress.add_bytes(plain.len() as u64);
            }
            Err(e) => run.fail_file(items, t.file, &format!("cannot write: {e}")),
        }
    }
}

/// Removes the files that failed (and drops the hardlinks to them, which would share the
/// loss), so that none is left at its full size looking complete: a later `--overwrite
/// if-changed` restores them again.
fn discard_failed(run: &Run<'_>, items: &[Item], files: &mut Files, summary: &mut RestoreSummary) {
    let failed = std::mem::take(&mut *run.failed_files.lock().expect("failed files"));
    files.written.retain(|i| !failed.contains(i));
    let orphans: Vec<usize> = (files.links.iter())
        .filter(|(_, first)| failed.contains(first))
        .map(|(&link, _)| link)
        .collect();
    for link in orphans {
        files.links.remove(&link);
        let _ = fs::remove_file(run.options.target.join(rel(items, link)));
        run.warn(
            &rel(items, link),
            "hardlink not made: its file could not be restored",
        );
    }
    for &i in &failed {
        summary.files_failed += 1;
        summary.total_bytes = summary.total_bytes.saturating_sub(items[i].node.size);
        let path = run.options.target.join(rel(items, i));
        match fs::remove_file(&path) {
            Ok(()) => run
                .observer
                .warning(&path, "removed: it could not be restored completely"),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => run.warn(&path, &format!("incomplete, and cannot be removed: {e}")),
        }
    }
}

/// Where restored bytes go. The disk, but a test can put a file system that fails here.
pub trait FileSink: Send + Sync {
    /// Writes `data` at `offset` into the existing file at `path`, never following a symlink.
    fn write_at(&self, path: &Path, data: &[u8], offset: u64) -> io::Result<()>;
}

/// The real file system: sparse writes (zero blocks stay holes).
pub struct Disk;

impl FileSink for Disk {
    fn write_at(&self, path: &Path, data: &[u8], offset: u64) -> io::Result<()> {
        let file = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)?;
        write_sparse(&file, data, offset)
    }
}

/// The [`FileSink`] of a restore: [`Disk`] unless a caller gives another.
#[derive(Clone)]
pub struct Sink(pub Arc<dyn FileSink>);

impl Default for Sink {
    fn default() -> Self {
        Sink(Arc::new(Disk))
    }
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sink")
    }
}

/// Block size below which zero runs are written rather than left as holes.
const HOLE_BLOCK: u64 = 4096;

/// Writes `data` at `offset`, skipping whole zero blocks: the file was created at its full
/// size, so skipped blocks read as zeros and stay unallocated.
pub(crate) fn write_sparse(file: &fs::File, data: &[u8], offset: u64) -> io::Result<()> {
    let mut start = 0usize;
    while start < data.len() {
        // Cut at the next block boundary of the file so holes line up with file blocks.
        let block_end = ((offset + start as u64) / HOLE_BLOCK + 1) * HOLE_BLOCK - offset;
        let end = (block_end as usize).min(data.len());
        if data[start..end].iter().any(|&b| b != 0) {
            let mut run_end = end;
            while run_end < data.len() {
                let next = (run_end + HOLE_BLOCK as usize).min(data.len());
                if data[run_end..next].iter().all(|&b| b == 0) {
                    break;
                }
                run_end = next;
            }
            file.write_all_at(&data[start..run_end], offset + start as u64)?;
            start = run_end;
        } else {
            start = end;
        }
    }
    Ok(())
}

/// Symlinks, hardlinks, devices and fifos. Returns how many were made.
fn create_others(run: &Run<'_>, items: &[Item], files: &Files) -> u64 {
    let mut made = 0;
    for (i, item) in items.iter().enumerate() {
        let rel = rel(items, i);
        let path = run.options.target.join(&rel);
        let result = match &item.node.kind {
            // A socket is only meaningful to the process that bound it.
            NodeKind::Directory { .. } | NodeKind::Socket => continue,
            NodeKind::File { .. } => match files.links.get(&i) {
                Some(&first) if !files.skipped.contains(&i) => {
                    let source = run.options.target.join(self::rel(items, first));
                    replace(run, &rel, |p| fs::hard_link(&source, p))
                }
                _ => continue,
            },
            NodeKind::Symlink { target } => replace(run, &rel, |p| {
                std::os::unix::fs::symlink(OsStr::from_bytes(target), p)
            }),
            NodeKind::BlockDevice { rdev } => make_node(
                run,
                &rel,
                nix::sys::stat::SFlag::S_IFBLK,
                item.node.mode,
                *rdev,
            ),
            NodeKind::CharDevice { rdev } => make_node(
                run,
                &rel,
                nix::sys::stat::SFlag::S_IFCHR,
                item.node.mode,
                *rdev,
            ),
            NodeKind::Fifo => {
                make_node(run, &rel, nix::sys::stat::SFlag::S_IFIFO, item.node.mode, 0)
            }
        };
        match result {
            Ok(true) => made += 1,
            Ok(false) => {}
            Err(e) => run.warn(&path, &format!("cannot create: {e}")),
        }
    }
    made
}

/// Creates something at `rel` with `create`, first removing what is there if the overwrite
/// policy allows. Returns whether anything was created.
fn replace(
    run: &Run<'_>,
    rel: &Path,
    create: impl FnOnce(&Path) -> io::Result<()>,
) -> io::Result<bool> {
    if let Some(parent) = rel.parent() {
        ensure_dir(run, parent)?;
    }
    let path = run.options.target.join(rel);
    if fs::symlink_metadata(&path).is_ok() {
        if run.options.overwrite != Overwrite::Always {
            return Ok(false);
        }
        remove_any(&path)?;
    }
    create(&path)?;
    Ok(true)
}

fn make_node(
    run: &Run<'_>,
    rel: &Path,
    kind: nix::sys::stat::SFlag,
    mode: u32,
    rdev: u64,
) -> io::Result<bool> {
    if kind != nix::sys::stat::SFlag::S_IFIFO && !metadata::running_as_root() {
        run.observer
            .warning(rel, "device node not restored: creating devices needs root");
        return Ok(false);
    }
    replace(run, rel, |path| {
        let perm = nix::sys::stat::Mode::from_bits_truncate(mode);
        nix::sys::stat::mknod(path, kind, perm, rdev).map_err(io::Error::from)
    })
}

/// Ownership, xattrs, modes and times: files and others first, then directories deepest
/// first so creating entries no longer changes a directory's mtime.
fn apply_metadata(run: &Run<'_>, items: &[Item], files: &Files) {
    let as_root = metadata::running_as_root();
    let mut dirs = Vec::new();
    for (i, item) in items.iter().enumerate() {
        if matches!(item.node.kind, NodeKind::Directory { .. }) {
            dirs.push(i);
            continue;
        }
        if files.skipped.contains(&i) || matches!(item.node.kind, NodeKind::Socket) {
            continue;
        }
        let path = run.options.target.join(rel(items, i));
        if fs::symlink_metadata(&path).is_err() {
            continue; // not created (already reported)
        }
        if let Err(e) = metadata::apply(&path, &item.node, as_root) {
            run.warn(&path, &format!("cannot set metadata: {e}"));
        }
    }
    dirs.sort_by_key(|&i| std::cmp::Reverse(depth(items, i)));
    for i in dirs {
        let path = run.options.target.join(rel(items, i));
        if let Err(e) = metadata::apply(&path, &items[i].node, as_root) {
            run.warn(&path, &format!("cannot set metadata: {e}"));
        }
    }
}

/// Re-reads every written file and checks each chunk against its id. Returns how many files
/// verified; mismatches are reported as errors.
fn verify(run: &Run<'_>, items: &[Item], files: &Files) -> u64 {
    let mut verified = 0;
    for &i in &files.written {
        let NodeKind::File { content } = &items[i].node.kind else {
            continue;
        };
        let path = run.options.target.join(rel(items, i));
        match verify_file(run.repo, &path, content, items[i].node.size) {
            Ok(()) => verified += 1,
            Err(e) => run.fail_file(items, i, &format!("verification failed: {e}")),
        }
    }
    verified
}

fn verify_file(repo: &Repository, path: &Path, content: &Content, size: u64) -> Result<()> {
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    if file.metadata()?.len() != size {
        bail!("size differs from the snapshot");
    }
    verify_content(repo, &mut file, path, content)
}

/// Reads `file` from its current position and checks it against `content`, chunk by chunk.
pub(crate) fn verify_content(
    repo: &Repository,
    file: &mut fs::File,
    path: &Path,
    content: &Content,
) -> Result<()> {
    let mut buffer = Vec::new();
    let load = |id: &BlobId| repo.read_blob(id);
    content.for_each(&load, &mut |offset, entry| {
        buffer.resize(entry.length() as usize, 0);
        file.read_exact(&mut buffer)
            .map_err(|e| cairn_format::Error::backend("verify", path.display().to_string(), e))?;
        let ok = match entry {
            ContentEntry::Data { id, .. } => repo.key().blob_id(&buffer) == *id,
            ContentEntry::Zero { .. } => buffer.iter().all(|&b| b == 0),
        };
        if ok {
            Ok(())
        } else {
            Err(cairn_format::Error::corrupt(
                "restored file",
                path.display().to_string(),
                format!("bytes at offset {offset} differ"),
            ))
        }
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_writes_leave_zero_blocks_unallocated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        file.set_len(8 << 20).unwrap();
        let mut data = vec![0u8; 4 << 20];
        data[100] = 1;
        data[(3 << 20) + 5] = 2;
        write_sparse(&file, &data, 1000).unwrap();
        let mut back = Vec::new();
        fs::File::open(&path)
            .unwrap()
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(&back[1000..1000 + data.len()], &data[..]);
        assert!(back[..1000].iter().all(|&b| b == 0));
        let blocks = fs::metadata(&path).unwrap().blocks();
        assert!(blocks <= 32, "{blocks} blocks allocated for two bytes");
    }
}
