//! Backup: turns paths (or standard input) into a snapshot.
//!
//! One walker thread reads the file system in name order, chunks and hashes file contents,
//! and decides per chunk whether the repository already has it; a [`BlobWriter`] compresses,
//! seals, packs and uploads the new ones on every core. A scanner thread counts what lies
//! ahead so progress can show an ETA. Files whose size, mtime, ctime and inode match the
//! parent snapshot reuse its content list without being read.

mod archiver;
mod chunk;
mod exclude;
mod extent;
mod hint;
mod scan;
mod unchanged;

pub use chunk::ReadStats;
pub use exclude::Excludes;
pub use extent::ChangedRanges;

use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result, bail};
use cairn_format::packer::{BlobWriter, WriteStats, WriterOptions};
use cairn_format::snapshot::Chunking;
use cairn_format::snapshot::{BackupSummary, Snapshot};
use cairn_format::tree::Tree;
use cairn_format::{BlobId, Repository, SnapshotId};
use chrono::{DateTime, FixedOffset};

use crate::progress::{Observer, Progress};

/// Standard input (or a command's output) as one file in the snapshot.
pub struct StdinSource {
    pub filename: String,
    pub reader: Box<dyn Read + Send + Sync>,
}

impl StdinSource {
    /// Runs `command` and backs up what it writes to standard output. The command's exit
    /// status is checked at the end of its output: a failure fails the backup, so a truncated
    /// stream never becomes a snapshot.
    pub fn from_command(command: &[String], filename: &str) -> Result<Self> {
        let (program, args) =
            command.split_first().context("--stdin-from-command needs a command after `--`")?;
        let mut child = std::process::Command::new(program)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot run {program:?}"))?;
        let stdout = child.stdout.take().context("the command has no standard output")?;
        Ok(Self {
            filename: filename.to_string(),
            reader: Box::new(CommandOutput { child, stdout, command: command.join(" ") }),
        })
    }
}

/// A command's standard output that turns a failed exit into a read error at its end.
struct CommandOutput {
    child: std::process::Child,
    stdout: std::process::ChildStdout,
    command: String,
}

impl Read for CommandOutput {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.stdout.read(buf)?;
        if n == 0 && !buf.is_empty() {
            let status = self.child.wait()?;
            if !status.success() {
                return Err(std::io::Error::other(format!(
                    "`{}` failed ({status}); its output was not saved as a snapshot",
                    self.command
                )));
            }
        }
        Ok(n)
    }
}

/// Which snapshot unchanged files are taken from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParentChoice {
    /// The latest snapshot of the same host and paths.
    Auto,
    /// Read every file.
    None,
    Snapshot(SnapshotId),
}

/// Everything a backup needs to know.
pub struct BackupOptions {
    pub paths: Vec<PathBuf>,
    pub stdin: Option<StdinSource>,
    pub tags: Vec<String>,
    pub host: String,
    pub excludes: Vec<String>,
    pub exclude_caches: bool,
    pub exclude_if_present: Vec<String>,
    pub one_file_system: bool,
    /// Back up the contents of block devices and fifos as files (borg's `--read-special`).
    pub read_special: bool,
    /// For the one image backed up: the byte ranges changed since the parent snapshot.
    pub changed_ranges: Option<ChangedRanges>,
    pub parent: ParentChoice,
    /// Snapshot time; now when `None`.
    pub time: Option<DateTime<FixedOffset>>,
    pub dry_run: bool,
    /// Save no snapshot when nothing changed since the parent (restic's flag of that name).
    pub skip_if_unchanged: bool,
    /// zstd level for this backup; the repository default when `None`.
    pub compression_level: Option<i32>,
    /// Set from a signal handler to stop cleanly.
    pub interrupt: Arc<AtomicBool>,
    /// Count files and bytes ahead of the walk for progress totals and an ETA: a second
    /// `lstat` of everything, only worth it when someone watches the progress.
    pub scan_totals: bool,
}

/// What a backup produced.
#[derive(Debug)]
pub struct BackupOutcome {
    /// `None` for a dry run.
    pub id: Option<SnapshotId>,
    pub snapshot: Snapshot,
    pub summary: BackupSummary,
    /// Bytes read, skipped as holes, and found zero (reported, not stored in the snapshot).
    pub reads: ReadStats,
    /// Nothing changed since the parent and `skip_if_unchanged` was set: no snapshot saved.
    pub unchanged: bool,
}

/// Runs a backup and writes its snapshot (unless `dry_run`).
pub fn backup(
    repo: &Arc<Repository>,
    mut options: BackupOptions,
    progress: &Progress,
    observer: &dyn Observer,
) -> Result<BackupOutcome> {
    let span = tracing::info_span!("backup", repo = %repo.location());
    let _enter = span.enter();
    let started = chrono::Local::now().fixed_offset();
    let time = options.time.unwrap_or(started);
    options.paths = normalize_paths(&options.paths)?;
    let missing = skip_missing(&mut options.paths, observer)?;
    if !options.dry_run {
        repo.adopt_unindexed_packs()?;
    }
    progress.set_phase("scanning");
    let parent = choose_parent(repo, &options)?;
    let writer = BlobWriter::new(repo.clone(), writer_options(repo, &options));
    let excludes = Excludes::new(
        &options.excludes,
        options.exclude_caches,
        options.exclude_if_present.clone(),
    )?;
    let walked = archiver::run(
        repo,
        &writer,
        &excludes,
        &mut options,
        parent.as_ref().map(|p| &p.tree),
        progress,
        observer,
    );
    // Flush what was uploaded even when the walk failed or was interrupted.
    let stats = writer.finish();
    let walked = walked?;
    let mut summary = summary(started, &walked.counts, &stats?);
    summary.errors += missing;
    let snapshot = new_snapshot(
        repo,
        &options,
        time,
        walked.root,
        parent.as_ref().map(|p| p.id),
        summary.clone(),
    )?;
    let unchanged = match &parent {
        Some(p) if options.skip_if_unchanged && !options.dry_run && missing == 0 => {
            unchanged::same_as_parent(repo, &p.root, &walked.root, &options.paths)?
        }
        _ => false,
    };
    let id = if options.dry_run || unchanged { None } else { Some(repo.save_snapshot(&snapshot)?) };
    Ok(BackupOutcome { id, snapshot, summary, reads: walked.reads, unchanged })
}

/// Leaves out the paths that do not exist, each reported (as restic does: one missing path
/// does not lose the night's backup of the others); an error when none exists. Returns how
/// many were left out.
fn skip_missing(paths: &mut Vec<PathBuf>, observer: &dyn Observer) -> Result<u64> {
    let before = paths.len();
    paths.retain(|path| match std::fs::symlink_metadata(path) {
        Ok(_) => true,
        Err(e) => {
            observer.warning(path, &format!("cannot back up: {e}; left out of the snapshot"));
            false
        }
    });
    if before > 0 && paths.is_empty() {
        bail!("none of the paths to back up exists; nothing was saved");
    }
    Ok((before - paths.len()) as u64)
}

/// What the walk counted, with what the writer stored and when the backup ran.
fn summary(
    started: DateTime<FixedOffset>,
    counts: &BackupSummary,
    stored: &WriteStats,
) -> BackupSummary {
    BackupSummary {
        start_ns: started.timestamp_nanos_opt().unwrap_or_default(),
        end_ns: chrono::Local::now().timestamp_nanos_opt().unwrap_or_default(),
        data_blobs_added: stored.data_blobs,
        tree_blobs_added: stored.tree_blobs,
        bytes_added: stored.bytes_raw,
        bytes_added_stored: stored.bytes_stored,
        ..*counts
    }
}

/// How this backup stores blobs: the repository's settings, `--dry-run` and `--compression`.
fn writer_options(repo: &Repository, options: &BackupOptions) -> WriterOptions {
    let mut writer = WriterOptions::for_repository(repo);
    writer.dry_run = options.dry_run;
    if let Some(level) = options.compression_level {
        writer.compression_level = level;
    }
    writer
}

/// The snapshot of a finished walk: its tree, who and what it describes, how it was cut.
fn new_snapshot(
    repo: &Repository,
    options: &BackupOptions,
    time: DateTime<FixedOffset>,
    tree: cairn_format::BlobId,
    parent: Option<SnapshotId>,
    summary: BackupSummary,
) -> Result<Snapshot> {
    let uid = nix::unistd::getuid().as_raw();
    Ok(Snapshot {
        time_ns: time.timestamp_nanos_opt().context("snapshot time out of range")?,
        utc_offset_s: time.offset().local_minus_utc(),
        tree,
        paths: snapshot_paths(options),
        hostname: options.host.clone(),
        username: crate::metadata::NameCache::default().user(uid),
        uid,
        gid: nix::unistd::getgid().as_raw(),
        tags: options.tags.clone(),
        parent,
        program_version: format!("cairn {}", env!("CARGO_PKG_VERSION")),
        summary: Some(summary),
        chunking: Some(Chunking {
            files: repo.config().chunker,
            images: repo.config().image_chunking,
        }),
        protected: false,
    })
}

fn snapshot_paths(options: &BackupOptions) -> Vec<String> {
    match &options.stdin {
        Some(stdin) => vec![format!("/{}", stdin.filename)],
        None => options.paths.iter().map(|p| p.to_string_lossy().into_owned()).collect(),
    }
}

/// Makes paths absolute and lexically clean (no `.`/`..`), sorted, without duplicates.
pub fn normalize_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let mut out: Vec<PathBuf> = paths
        .iter()
        .map(|p| {
            let mut clean = PathBuf::from("/");
            for component in cwd.join(p).components() {
                match component {
                    Component::ParentDir => {
                        clean.pop();
                    }
                    Component::Normal(c) => clean.push(c),
                    _ => {}
                }
            }
            clean
        })
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

/// The snapshot a backup compares with: files that look unchanged are taken from its tree.
struct Parent {
    id: SnapshotId,
    /// Its root tree's id: the same after the walk means nothing changed.
    root: BlobId,
    tree: Tree,
}

fn choose_parent(repo: &Repository, options: &BackupOptions) -> Result<Option<Parent>> {
    let parent = match options.parent {
        ParentChoice::None => None,
        ParentChoice::Snapshot(id) => Some((id, repo.load_snapshot(&id)?)),
        ParentChoice::Auto => {
            let paths = snapshot_paths(options);
            crate::select::readable(repo)?
                .into_iter()
                .filter(|(_, s)| s.hostname == options.host && s.paths == paths)
                .max_by_key(|(_, s)| s.time_ns)
        }
    };
    let Some((id, snapshot)) = parent else {
        return Ok(None);
    };
    match repo.load_tree(&snapshot.tree) {
        Ok(tree) => Ok(Some(Parent { id, root: snapshot.tree, tree })),
        Err(e) => {
            tracing::warn!(parent = %id, error = %e, "parent snapshot unreadable; reading every file");
            Ok(None)
        }
    }
}

/// True when `path` is `/`.
fn is_root(path: &Path) -> bool {
    path.parent().is_none()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::FileExt;

    use cairn_format::InitOptions;
    use cairn_format::backend::LocalBackend;

    use super::*;
    use crate::progress::LogObserver;

    /// The live counters a progress bar shows end where the summary's do.
    #[test]
    fn progress_counts_bytes_by_source_like_the_summary() {
        let dir = tempfile::tempdir().unwrap();
        let mut init = InitOptions::default();
        init.kdf.memory_kib = 64;
        init.kdf.iterations = 1;
        init.image_chunking.from_size = 1 << 20;
        let backend = Arc::new(LocalBackend::new(dir.path().join("repo")));
        let repo = Repository::init(backend, b"pw", &init, &dir.path().join("cache")).unwrap();
        let repo = Arc::new(repo);
        let image = dir.path().join("image.raw");
        let file = std::fs::File::create(&image).unwrap();
        file.set_len(64 << 20).unwrap();
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let data: Vec<u8> = (0..3 << 20)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        file.write_all_at(&data, 8 << 20).unwrap();
        file.write_all_at(&vec![0; 2 << 20], 40 << 20).unwrap();
        let options = BackupOptions {
            paths: vec![image],
            stdin: None,
            tags: Vec::new(),
            host: "test".into(),
            excludes: Vec::new(),
            exclude_caches: false,
            exclude_if_present: Vec::new(),
            one_file_system: false,
            read_special: false,
            changed_ranges: None,
            parent: ParentChoice::Auto,
            time: None,
            dry_run: false,
            skip_if_unchanged: false,
            compression_level: None,
            interrupt: Arc::default(),
            scan_totals: false,
        };
        let progress = Progress::default();
        let outcome = backup(&repo, options, &progress, &LogObserver).unwrap();
        assert_eq!(progress.sample().files_total, 0, "no scan when nobody watches");
        let sources = progress.sample().sources;
        let reads = outcome.reads;
        assert_eq!(
            (sources.read, sources.holes, sources.zero, sources.unchanged),
            (reads.bytes_read, reads.bytes_holes, reads.bytes_zero, reads.bytes_unchanged)
        );
        assert!(reads.bytes_read >= 5 << 20, "{reads:?}");
        assert!(reads.bytes_zero >= 1 << 20, "{reads:?}");
        assert!(reads.bytes_holes > 0 || reads.bytes_read == 64 << 20);
        // Random data: every chunk that is not all zeros is new.
        assert_eq!(sources.new, reads.bytes_read - reads.bytes_zero);
    }
}
