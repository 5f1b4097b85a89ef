//! `cairn prune` and `cairn unlock`.

use crate::commands::output::{count, outln};
use std::sync::Arc;

use anyhow::Result;
use cairn_format::lock::LockKind;
use cairn_format::{Repository, SnapshotId};

use super::output::json_line;
use super::output::report::Reporter;
use super::output::table::bytes;
use super::{hostname, open_unsynced};
use crate::cli::{Global, PruneArgs, PruneTuning, UnlockArgs};
use crate::exit::Exit;
use crate::lock::{age, unlock};
use crate::progress::Progress;
use crate::prune::{PruneOptions, PruneReport, prune};

pub fn run(global: &Global, args: &PruneArgs) -> Result<Exit> {
    let repo = open_unsynced(global)?;
    run_on(global, &repo, &args.tuning, args.dry_run, Vec::new())
}

/// Prune on an open repository (also the end of `forget --prune`, whose dry run passes the
/// snapshots it would have removed as `forgotten`).
pub fn run_on(
    global: &Global,
    repo: &Arc<Repository>,
    tuning: &PruneTuning,
    dry_run: bool,
    forgotten: Vec<SnapshotId>,
) -> Result<Exit> {
    let _lock = super::lock(global, repo, LockKind::Exclusive, "prune")?;
    let options = PruneOptions {
        max_unused: tuning.max_unused,
        max_repack_bytes: tuning.max_repack_size.unwrap_or(u64::MAX),
        dry_run,
        forgotten,
    };
    let progress = Arc::new(Progress::default());
    let reporter = Reporter::counting(global, progress.clone(), "prune", "packs");
    let report = prune(repo, &options, &hostname(), &progress)?;
    reporter.finish();
    if global.json {
        json_line(&serde_json::json!({"message_type": "prune", "report": report}));
    } else if !global.quiet {
        print_report(&report);
    }
    Ok(Exit::Ok)
}

fn print_report(r: &PruneReport) {
    let verb = if r.dry_run { "would" } else { "did" };
    outln!(
        "{} the data; {} ({}) unused",
        match r.snapshots {
            1 => "1 snapshot references".to_string(),
            n => format!("{n} snapshots reference"),
        },
        match r.unused_blobs {
            1 => "1 blob is".to_string(),
            n => format!("{n} blobs are"),
        },
        bytes(r.unused_bytes)
    );
    outln!(
        "packs: {} marked unused, {} needed again, {} repacked ({})",
        r.packs_marked,
        r.packs_revived,
        r.packs_repacked,
        bytes(r.bytes_repacked)
    );
    print_leftovers(r);
    if r.dry_run {
        outln!("dry run: nothing changed ({verb} mark and repack the packs above)");
        return;
    }
    print_freed(r);
}

fn print_leftovers(r: &PruneReport) {
    if r.leftovers_removed + r.leftovers_kept > 0 {
        outln!(
            "temporary files of interrupted writes: {} {} ({}), {} kept (a running backup may \
             own them; a later prune removes them)",
            if r.dry_run { "would remove" } else { "removed" },
            r.leftovers_removed,
            bytes(r.leftover_bytes_freed),
            r.leftovers_kept
        );
    }
}

fn print_freed(r: &PruneReport) {
    outln!(
        "deleted {}, freed {}; repository {} -> {} ({} -> {} packs)",
        count(r.packs_deleted, "pack"),
        bytes(r.bytes_freed),
        bytes(r.bytes_before),
        bytes(r.bytes_after),
        r.packs_before,
        r.packs_after
    );
    if r.packs_deferred > 0 {
        outln!(
            "{} packs ({}) stay until the backups running now are done: the next prune \
             deletes them",
            r.packs_deferred,
            bytes(r.bytes_deferred)
        );
    }
}

pub fn run_unlock(global: &Global, args: &UnlockArgs) -> Result<Exit> {
    let repo = open_unsynced(global)?;
    let removed = unlock(&repo, &hostname(), args.all)?;
    let now = chrono::Utc::now().timestamp();
    if global.json {
        let list: Vec<_> = removed
            .locks
            .iter()
            .map(|(id, l)| serde_json::json!({"id": id, "operation": l.operation, "hostname": l.hostname, "pid": l.pid}))
            .collect();
        json_line(
            &serde_json::json!({"message_type": "unlock", "removed": list, "removed_damaged": removed.damaged}),
        );
    } else if !global.quiet {
        for id in &removed.damaged {
            outln!("removed the damaged lock object {id}");
        }
        for (_, l) in &removed.locks {
            outln!(
                "removed the lock of {} on {} (pid {}), taken {} ago",
                l.operation,
                l.hostname,
                l.pid,
                age(now - l.created_s)
            );
        }
        outln!("{} removed", count((removed.locks.len() + removed.damaged.len()) as u64, "lock"));
    }
    Ok(Exit::Ok)
}
