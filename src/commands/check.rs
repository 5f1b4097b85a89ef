//! `cairn check`: runs the check and prints what it found: problems, damaged packs, and the
//! snapshots and paths that lose data, with what to do next. Exit 0 only when clean.

use crate::commands::output::{count, outln};
use std::sync::Arc;

use anyhow::Result;

use super::output::json_line;
use super::output::report::Reporter;
use super::output::table::{bytes, render};
use super::{interrupt_flag, open_unsynced};
use crate::check::{
    CheckOptions, CheckReport, DamagedPack, ReadSummary, affected_by_snapshot, check,
};
use crate::cli::{CheckArgs, Global};
use crate::exit::Exit;
use crate::progress::Progress;
use cairn_format::lock::LockKind;

pub fn run(global: &Global, args: &CheckArgs) -> Result<Exit> {
    let repo = open_unsynced(global)?;
    let _lock = super::lock(global, &repo, LockKind::Check, "check")?;
    let options = CheckOptions {
        read_data: args.read_data,
        subset: args.read_data_subset,
        max_age: args.max_age,
        readers: 0,
        interrupt: interrupt_flag()?,
    };
    let progress = Arc::new(Progress::default());
    let reporter = Reporter::counting(global, progress.clone(), "check", "packs");
    let report = check(&repo, &options, &progress)?;
    reporter.finish();
    let interrupted = report.read.as_ref().is_some_and(|r| !r.complete);
    if global.json {
        json_line(&serde_json::json!({
            "message_type": "check",
            "clean": report.is_clean(),
            "lost_bytes": report.lost_bytes(),
            "report": report,
        }));
    } else if !global.quiet || !report.is_clean() {
        print_text(&report);
    }
    Ok(if interrupted {
        Exit::Interrupted
    } else if report.is_clean() {
        Exit::Ok
    } else {
        Exit::Error
    })
}

fn print_text(report: &CheckReport) {
    outln!(
        "{}, {}, {} referenced in {} indexed",
        count(report.snapshots, "snapshot"),
        count(report.trees, "tree"),
        count(report.referenced_blobs, "blob"),
        count(report.indexed_packs, "pack")
    );
    if let Some(read) = &report.read {
        print_read(read);
    }
    print_notes(report);
    for problem in &report.problems {
        outln!("error: {} {}: {}", problem.what, problem.name, problem.error);
    }
    print_damage(report);
    if report.is_clean() {
        outln!("no errors were found");
    } else {
        print_advice(report);
    }
}

fn print_read(read: &ReadSummary) {
    let skipped = if read.packs_skipped_recent > 0 {
        format!("; {} skipped, verified within --max-age", read.packs_skipped_recent)
    } else {
        String::new()
    };
    let interrupted =
        if read.complete { "" } else { "; INTERRUPTED: run again with --max-age to continue" };
    outln!(
        "read {} of {} ({}), {} verified{skipped}{interrupted}",
        read.packs_read,
        count(read.packs_in_repository, "pack"),
        bytes(read.bytes_read),
        count(read.blobs_verified, "blob"),
    );
}

/// What is not damage but worth knowing: leftovers of interrupted runs, unused data.
fn print_notes(report: &CheckReport) {
    if !report.unindexed_packs.is_empty() {
        outln!(
            "note: {} packs are in no index segment (left by an interrupted backup; the next \
             backup indexes them)",
            report.unindexed_packs.len()
        );
    }
    if report.leftovers > 0 {
        outln!(
            "note: {} temporary files ({}) were left by interrupted writes (a killed backup); \
             `cairn prune` removes them once no running backup can own them",
            report.leftovers,
            bytes(report.leftover_bytes)
        );
    }
    if report.unused_blobs > 0 {
        outln!(
            "note: {} blobs ({}) in the index are referenced by no snapshot, {} packs wholly \
             (prune frees them)",
            report.unused_blobs,
            bytes(report.unused_bytes),
            report.unused_packs.len()
        );
    }
}

fn print_damage(report: &CheckReport) {
    if report.damaged_packs.is_empty() {
        return;
    }
    let rows: Vec<Vec<String>> = (report.damaged_packs.iter()).map(damage_row).collect();
    outln!(
        "\ndamaged packs:\n{}",
        render(&["pack", "damaged blobs", "lost blobs", "what is wrong"], &rows)
    );
    print_affected(report);
}

fn damage_row(d: &DamagedPack) -> Vec<String> {
    vec![
        d.pack.short(),
        d.damaged_blobs.len().to_string(),
        match (d.harmless, d.lost_blobs.len()) {
            (true, 0) => "0 (intact copies elsewhere)".into(),
            (true, n) => format!("{n}, unreferenced: harmless"),
            (false, n) => n.to_string(),
        },
        d.reason.clone(),
    ]
}

/// The paths each snapshot loses.
fn print_affected(report: &CheckReport) {
    let by_snapshot = affected_by_snapshot(report);
    if by_snapshot.is_empty() {
        return;
    }
    outln!("\nsnapshots that lose data:");
    for (snapshot, affected) in by_snapshot {
        let lost: u64 = affected.iter().map(|a| a.lost_bytes).sum();
        outln!(
            "  {} ({} paths, {} cannot be restored):",
            snapshot.short(),
            affected.len(),
            bytes(lost)
        );
        for a in affected {
            let what = if a.kind == "directory" {
                "directory listing lost".to_string()
            } else {
                bytes(a.lost_bytes)
            };
            outln!("    {}  ({what})", a.path);
        }
    }
}

fn print_advice(report: &CheckReport) {
    outln!(
        "\nthe repository is damaged: {}, {} damaged, {} of file data cannot be restored",
        count(report.problems.len() as u64, "problem"),
        count(report.damaged_packs.iter().filter(|d| !d.harmless).count() as u64, "pack"),
        bytes(report.lost_bytes())
    );
    outln!(
        "what to do: files not listed above restore normally. Back up the same sources again: \
         chunks that still exist there are stored anew and heal the repository. Then \
         `cairn repair snapshots` keeps what each damaged snapshot still has, and \
         `cairn repair index` rebuilds damaged or missing index segments from the packs."
    );
}
