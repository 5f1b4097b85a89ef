//! `cairn backup`

use crate::commands::output::{count, outln};
use std::fmt::Write as _;
use std::sync::Arc;

use anyhow::{Context, Result};
use cairn_format::Repository;
use cairn_format::snapshot::BackupSummary;
use chrono::{DateTime, FixedOffset, Local, NaiveDateTime, TimeZone};

use super::output::json_line;
use super::output::report::{CliObserver, Reporter};
use super::output::table::bytes;
use super::{hostname, interrupt_flag, open_unsynced};
use crate::backup::{
    BackupOptions, BackupOutcome, ChangedRanges, Excludes, ParentChoice, ReadStats, StdinSource,
    backup,
};
use crate::cli::{BackupArgs, Global};
use crate::exit::Exit;
use crate::progress::Progress;
use crate::select::{SnapshotFilter, resolve};
use cairn_format::lock::LockKind;

pub fn run(global: &Global, args: &BackupArgs) -> Result<Exit> {
    // The lock is visible before the index is read: a prune that marks packs unused after
    // this point either is seen by this backup's index, or sees this lock (crate::prune).
    let repo = open_unsynced(global)?;
    let _lock = super::lock(global, &repo, LockKind::Backup, "backup")?;
    super::sync_tolerant(global, &repo)?;
    let options = options(global, args, &repo)?;
    let progress = Arc::new(Progress::default());
    let reporter = Reporter::start(global, progress.clone(), "backup");
    let outcome = backup(&repo, options, &progress, &CliObserver::new(global));
    reporter.finish();
    let outcome = outcome?;
    print_summary(global, &outcome);
    if outcome.summary.errors > 0 {
        tracing::warn!(
            "{} reported above (what could not be read is not in the snapshot); exit 3",
            count(outcome.summary.errors, "problem")
        );
        return Ok(Exit::Incomplete);
    }
    Ok(Exit::Ok)
}

/// The engine's options from the command line.
fn options(global: &Global, args: &BackupArgs, repo: &Repository) -> Result<BackupOptions> {
    let mut excludes = args.excludes.clone();
    for file in &args.exclude_files {
        excludes.extend(Excludes::read_pattern_file(file)?);
    }
    let stdin = stdin_source(args)?;
    Ok(BackupOptions {
        paths: if stdin.is_some() { Vec::new() } else { args.paths.clone() },
        stdin,
        tags: args
            .tags
            .iter()
            .flat_map(|t| t.split(','))
            .filter(|t| !t.is_empty())
            .map(String::from)
            .collect(),
        host: args.host.clone().unwrap_or_else(hostname),
        excludes,
        exclude_caches: args.exclude_caches,
        exclude_if_present: args.exclude_if_present.clone(),
        one_file_system: args.one_file_system,
        read_special: args.read_special,
        changed_ranges: changed_ranges(args)?,
        parent: parent_choice(args, repo)?,
        time: args.time.as_deref().map(parse_time).transpose()?,
        dry_run: args.dry_run,
        skip_if_unchanged: args.skip_if_unchanged,
        compression_level: args.compression,
        interrupt: interrupt_flag()?,
        scan_totals: Reporter::shows_progress(global),
    })
}

/// `--force` (read everything), `--parent SNAP`, else the newest snapshot of the same paths.
fn parent_choice(args: &BackupArgs, repo: &Repository) -> Result<ParentChoice> {
    Ok(match (&args.parent, args.force) {
        (_, true) => ParentChoice::None,
        (Some(reference), _) => {
            ParentChoice::Snapshot(resolve(repo, reference, &SnapshotFilter::default())?.0)
        }
        (None, false) => ParentChoice::Auto,
    })
}

/// `--stdin`, or `--stdin-from-command` (the paths are then the command and its arguments).
fn stdin_source(args: &BackupArgs) -> Result<Option<StdinSource>> {
    if args.stdin_from_command {
        let command: Vec<String> =
            (args.paths.iter()).map(|p| p.to_string_lossy().into()).collect();
        return Ok(Some(StdinSource::from_command(&command, &args.stdin_filename)?));
    }
    Ok(args.stdin.then(|| StdinSource {
        filename: args.stdin_filename.clone(),
        reader: Box::new(std::io::stdin()),
    }))
}

/// The `--changed-ranges` map, for a backup of exactly one file.
fn changed_ranges(args: &BackupArgs) -> Result<Option<ChangedRanges>> {
    let Some(file) = &args.changed_ranges else {
        return Ok(None);
    };
    if args.paths.len() != 1 || args.stdin || args.stdin_from_command {
        anyhow::bail!("--changed-ranges describes one image: back up exactly one file with it");
    }
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read --changed-ranges {}", file.display()))?;
    let mut ranges = ChangedRanges::parse(&text).with_context(|| {
        format!("{} is not a JSON list of {{\"offset\": N, \"length\": N}} ranges", file.display())
    })?;
    ranges.verify = args.verify_unchanged;
    Ok(Some(ranges))
}

/// RFC 3339, or "YYYY-MM-DD HH:MM:SS" in local time.
pub fn parse_time(text: &str) -> Result<DateTime<FixedOffset>> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(time);
    }
    let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").with_context(|| {
        format!("cannot read time {text:?}: use RFC 3339 or \"YYYY-MM-DD HH:MM:SS\"")
    })?;
    let local =
        Local.from_local_datetime(&naive).earliest().context("that local time does not exist")?;
    Ok(local.fixed_offset())
}

fn print_summary(global: &Global, outcome: &BackupOutcome) {
    if global.json {
        json_line(&summary_json(outcome));
        return;
    }
    if !global.quiet {
        print_summary_text(outcome);
    }
}

/// The summary as restic's `backup --json` prints it, with cairn's read counters added.
fn summary_json(outcome: &BackupOutcome) -> serde_json::Value {
    let mut line = serde_json::json!({
        "message_type": "summary",
        "snapshot_id": outcome.id.map(|id| id.to_hex()),
        "parent": outcome.snapshot.parent,
        "hostname": outcome.snapshot.hostname,
        "paths": outcome.snapshot.paths,
        "tags": outcome.snapshot.tags,
        "dry_run": outcome.id.is_none() && !outcome.unchanged,
        "skipped_unchanged": outcome.unchanged,
        "bytes_read": outcome.reads.bytes_read,
        "bytes_holes": outcome.reads.bytes_holes,
        "bytes_zero": outcome.reads.bytes_zero,
        "bytes_unchanged": outcome.reads.bytes_unchanged,
    });
    merge(&mut line, super::output::json::summary(&outcome.summary));
    line
}

/// Adds the fields of one JSON object to another.
fn merge(into: &mut serde_json::Value, from: serde_json::Value) {
    if let (Some(into), serde_json::Value::Object(from)) = (into.as_object_mut(), from) {
        into.extend(from);
    }
}

fn print_summary_text(outcome: &BackupOutcome) {
    let s: &BackupSummary = &outcome.summary;
    let changes = |new, changed, unmodified| {
        [(new, "new"), (changed, "changed"), (unmodified, "unmodified")]
            .into_iter()
            .filter(|&(n, _)| n > 0)
            .map(|(n, what)| format!("{n} {what}"))
            .collect::<Vec<_>>()
    };
    let files = changes(s.files_new, s.files_changed, s.files_unmodified);
    let dirs = changes(s.dirs_new, s.dirs_changed, s.dirs_unmodified);
    outln!("Files:       {}", or_none(&files));
    outln!("Dirs:        {}", or_none(&dirs));
    let stored = match s.bytes_added {
        0 => String::new(),
        _ => format!(" ({} stored)", bytes(s.bytes_added_stored)),
    };
    outln!("Added:       {}{stored}", bytes(s.bytes_added));
    print_reads(&outcome.reads);
    outln!(
        "Processed:   {}, {} in {:.1}s",
        count(s.total_files_processed, "file"),
        bytes(s.total_bytes_processed),
        (s.end_ns - s.start_ns) as f64 / 1e9
    );
    print_saved(outcome);
}

fn or_none(parts: &[String]) -> String {
    if parts.is_empty() { "none".into() } else { parts.join(", ") }
}

/// How the bytes were got through, naming only what happened: "Read: 2.000 GiB (3.000 MiB
/// of it zeros), 6.000 GiB skipped as holes".
fn print_reads(r: &ReadStats) {
    let mut parts = vec![bytes(r.bytes_read)];
    if r.bytes_zero > 0 {
        let _ = write!(parts[0], " ({} of it zeros)", bytes(r.bytes_zero));
    }
    if r.bytes_holes > 0 {
        parts.push(format!("{} skipped as holes", bytes(r.bytes_holes)));
    }
    if r.bytes_unchanged > 0 {
        let taken = bytes(r.bytes_unchanged);
        parts.push(format!("{taken} taken unread from the parent (--changed-ranges)"));
    }
    outln!("Read:        {}", parts.join(", "));
}

fn print_saved(outcome: &BackupOutcome) {
    match (outcome.id, &outcome.snapshot.parent) {
        (Some(id), Some(parent)) => {
            outln!("snapshot {} saved (parent {})", id.short(), parent.short());
        }
        (Some(id), None) => outln!("snapshot {} saved", id.short()),
        (None, Some(parent)) if outcome.unchanged => outln!(
            "nothing changed since snapshot {}: no snapshot saved (--skip-if-unchanged)",
            parent.short()
        ),
        (None, _) => outln!("dry run: nothing was written"),
    }
}
