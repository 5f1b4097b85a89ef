//! `cairn repair index` and `cairn repair snapshots`.

use crate::commands::output::{count, outln};
use std::sync::Arc;

use anyhow::Result;

use super::open_unsynced;
use super::output::json_line;
use super::output::report::{CliObserver, Reporter};
use super::output::table::bytes;
use crate::cli::{DamagedFilesArg, Global, RepairCommand, RepairSnapshotsArgs};
use crate::exit::Exit;
use crate::progress::Progress;
use crate::repair::{
    DamagedFiles, IndexRepair, SnapshotRepair, SnapshotRepairOptions, repair_index,
    repair_snapshots,
};
use cairn_format::lock::LockKind;

pub fn run(global: &Global, command: &RepairCommand) -> Result<Exit> {
    match command {
        RepairCommand::Index => index(global),
        RepairCommand::Snapshots(args) => snapshots(global, args),
    }
}

fn index(global: &Global) -> Result<Exit> {
    let repo = open_unsynced(global)?;
    let _lock = super::lock(global, &repo, LockKind::Exclusive, "repair index")?;
    let progress = Arc::new(Progress::default());
    let reporter = Reporter::counting(global, progress.clone(), "repair index", "packs");
    let outcome = repair_index(&repo, &progress)?;
    reporter.finish();
    print_index_outcome(global, &outcome);
    for (pack, error) in &outcome.unreadable_packs {
        tracing::warn!("pack {pack}: header unreadable, its blobs are not indexed: {error}");
    }
    Ok(if outcome.unreadable_packs.is_empty() { Exit::Ok } else { Exit::Incomplete })
}

fn print_index_outcome(global: &Global, outcome: &IndexRepair) {
    if global.json {
        json_line(&serde_json::json!({
            "message_type": "repair_index",
            "packs_indexed": outcome.packs_indexed,
            "blobs_indexed": outcome.blobs_indexed,
            "segments_written": outcome.segments_written,
            "segments_removed": outcome.segments_removed,
            "unreadable_packs": outcome.unreadable_packs.iter()
                .map(|(id, e)| serde_json::json!({"pack": id, "error": e}))
                .collect::<Vec<_>>(),
        }));
        return;
    }
    if !global.quiet {
        outln!(
            "indexed {} in {}: {} written, {} old ones removed",
            count(outcome.blobs_indexed, "blob"),
            count(outcome.packs_indexed, "pack"),
            count(outcome.segments_written, "segment"),
            outcome.segments_removed
        );
    }
}

fn snapshots(global: &Global, args: &RepairSnapshotsArgs) -> Result<Exit> {
    let repo = open_unsynced(global)?;
    let _lock = super::lock(global, &repo, LockKind::Exclusive, "repair snapshots")?;
    let options = SnapshotRepairOptions {
        damaged_files: match args.damaged_files {
            DamagedFilesArg::Mark => DamagedFiles::Mark,
            DamagedFilesArg::Truncate => DamagedFiles::Truncate,
            DamagedFilesArg::Drop => DamagedFiles::Drop,
        },
        forget: args.forget,
        dry_run: args.dry_run,
    };
    let progress = Arc::new(Progress::default());
    let outcome = repair_snapshots(&repo, &options, &CliObserver::new(global), &progress)?;
    if global.json {
        json_line(&serde_json::json!({
            "message_type": "repair_snapshots",
            "dry_run": args.dry_run,
            "snapshots": outcome.snapshots,
            "removed_damaged": outcome.removed_damaged,
            "missing_packs": outcome.missing_packs,
        }));
    } else if !global.quiet {
        print_snapshot_repair(&outcome, args);
    }
    Ok(Exit::Ok)
}

fn print_snapshot_repair(outcome: &SnapshotRepair, args: &RepairSnapshotsArgs) {
    let (remove, rebuild) =
        if args.dry_run { ("would remove", "would rebuild") } else { ("removed", "rebuilt") };
    if !outcome.missing_packs.is_empty() {
        outln!(
            "{} indexed packs no longer exist: their blobs are lost; {rebuild} the index from \
             the packs that exist",
            outcome.missing_packs.len()
        );
    }
    for id in &outcome.removed_damaged {
        outln!("{remove} damaged snapshot object {id}");
    }
    let repaired = &outcome.snapshots;
    if repaired.is_empty() {
        outln!("no snapshot references lost data");
    }
    for r in repaired {
        let new = r.repaired.map_or("(dry run)".to_string(), |id| id.short());
        outln!(
            "snapshot {} -> {new}: {} files lost {}, {} directory listings lost{}",
            r.original.short(),
            r.damaged_files,
            bytes(r.lost_bytes),
            r.lost_directories,
            if args.forget && !args.dry_run { " (original removed)" } else { "" }
        );
    }
}
