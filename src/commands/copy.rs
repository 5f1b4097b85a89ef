//! `cairn copy --from-repo SOURCE [SNAP...]`: snapshots from another repository into this one.

use crate::commands::output::outln;
use std::sync::Arc;

use anyhow::Result;

use super::output::report::Reporter;
use super::output::table::bytes;
use super::output::{count, json_line};
use super::{interrupt_flag, open_source, open_unsynced};
use crate::cli::{CopyArgs, Global};
use crate::copy::{CopySummary, copy};
use crate::exit::Exit;
use crate::progress::Progress;
use crate::select::{SnapshotFilter, choose};
use cairn_format::Repository;
use cairn_format::lock::LockKind;

pub fn run(global: &Global, args: &CopyArgs) -> Result<Exit> {
    let source = open_source(global, &args.from)?;
    let snapshots = choose(&source, &args.snapshots, &SnapshotFilter::from(&args.filter))?;
    // As for a backup: the lock is visible before the index is read (crate::prune).
    let target = open_unsynced(global)?;
    let _lock = super::lock(global, &target, LockKind::Backup, "copy")?;
    super::sync_tolerant(global, &target)?;
    let progress = Arc::new(Progress::default());
    let reporter = Reporter::start(global, progress.clone(), "copy");
    let interrupt = interrupt_flag()?;
    let summary = copy(&source, &target, &snapshots, args.dry_run, &progress, &interrupt)?;
    reporter.finish();
    report(global, &summary, &target);
    Ok(if summary.failed.is_empty() { Exit::Ok } else { Exit::Incomplete })
}

/// The summary as JSON or text, and a warning for each snapshot that could not be copied.
fn report(global: &Global, summary: &CopySummary, target: &Repository) {
    if global.json {
        json_line(&summary_json(summary));
    } else if !global.quiet {
        print_text(summary, target);
    }
    for (id, reason) in &summary.failed {
        tracing::warn!(
            "snapshot {} not copied: {reason}; `cairn check --read-data` on the source \
             names what is damaged",
            id.short()
        );
    }
}

/// The copies made as `{from, to}`; a dry run's `to` is null, as a copy sealed for real gets
/// another id.
fn summary_json(summary: &CopySummary) -> serde_json::Value {
    let copied: Vec<_> = (summary.copied.iter())
        .map(|(from, to)| serde_json::json!({"from": from, "to": (!summary.dry_run).then_some(to)}))
        .collect();
    let failed: Vec<_> = (summary.failed.iter())
        .map(|(id, reason)| serde_json::json!({"id": id, "reason": reason}))
        .collect();
    serde_json::json!({
        "message_type": "summary",
        "dry_run": summary.dry_run,
        "copied": copied,
        "already_present": summary.already_present,
        "failed": failed,
        "blobs_copied": summary.blobs_copied,
        "bytes_copied": summary.bytes_copied,
        "ids_rewritten": summary.rewritten,
    })
}

fn print_text(summary: &CopySummary, target: &Repository) {
    let verb = if summary.dry_run { "would copy" } else { "copied" };
    for (from, to) in &summary.copied {
        if summary.dry_run {
            outln!("would copy snapshot {}", from.short());
        } else {
            outln!("copied snapshot {} as {}", from.short(), to.short());
        }
    }
    for id in &summary.already_present {
        outln!("snapshot {} is already in {}", id.short(), target.location());
    }
    outln!(
        "{} {verb}, {} already present; {} ({}) transferred",
        count(summary.copied.len() as u64, "snapshot"),
        summary.already_present.len(),
        count(summary.blobs_copied, "blob"),
        bytes(summary.bytes_copied)
    );
}
