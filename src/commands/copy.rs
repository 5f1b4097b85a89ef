//! `cairn copy --from-repo SOURCE [SNAP...]`: snapshots from another repository into this one.

use std::sync::Arc;

use anyhow::Result;

use super::output::report::Reporter;
use super::output::table::bytes;
use super::{interrupt_flag, open_source, open_unsynced, print_json};
use crate::cli::{CopyArgs, Global};
use crate::copy::{CopySummary, copy};
use crate::exit::Exit;
use crate::progress::Progress;
use crate::select::{SnapshotFilter, choose};
use cairn_format::Repository;
use cairn_format::lock::LockKind;

pub fn run(global: &Global, args: &CopyArgs) -> Result<Exit> {
    let source = open_source(global, &args.from)?;
    let snapshots = choose(
        &source,
        &args.snapshots,
        &SnapshotFilter::from(&args.filter),
    )?;
    // As for a backup: the lock is visible before the index is read (crate::prune).
    let target = open_unsynced(global)?;
    let _lock = super::lock(global, &target, LockKind::Backup, "copy")?;
    super::sync_tolerant(&target)?;
    let progress = Arc::new(Progress::default());
    let reporter = Reporter::start(global, progress.clone(), "copy");
    let interrupt = interrupt_flag()?;
    let summary = copy(
        &source,
        &target,
        &snapshots,
        args.dry_run,
        &progress,
        &interrupt,
    )?;
    reporter.finish();
    if global.json {
        print_json(&serde_json::json!({"message_type": "copy", "summary": summary}))?;
    } else if !global.quiet {
        print_text(&summary, &target);
    }
    for (id, reason) in &summary.failed {
        eprintln!(
            "warning: snapshot {} not copied: {reason}; `cairn check --read-data` on the source \
             names what is damaged",
            id.short()
        );
    }
    Ok(if summary.failed.is_empty() {
        Exit::Ok
    } else {
        Exit::Incomplete
    })
}

fn print_text(summary: &CopySummary, target: &Repository) {
    let verb = if summary.dry_run {
        "would copy"
    } else {
        "copied"
    };
    for (from, to) in &summary.copied {
        println!("{verb} snapshot {} as {}", from.short(), to.short());
    }
    for id in &summary.already_present {
        println!(
            "snapshot {} is already in {}",
            id.short(),
            target.location()
        );
    }
    println!(
        "{} snapshots {verb}, {} already present; {} blobs ({}) transferred",
        summary.copied.len(),
        summary.already_present.len(),
        summary.blobs_copied,
        bytes(summary.bytes_copied)
    );
}
