//! `cairn restore`

use std::sync::Arc;

use anyhow::{Result, bail};

use super::report::{CliObserver, Reporter};
use super::table::bytes;
use super::{interrupt_flag, open, print_json};
use crate::cli::{Global, OverwriteArg, RestoreArgs};
use crate::dump::write_to_target;
use crate::exit::Exit;
use crate::progress::Progress;
use crate::restore::{Overwrite, RestoreOptions, restore};
use crate::select::{SnapshotFilter, resolve, split_reference};

pub fn run(global: &Global, args: &RestoreArgs) -> Result<Exit> {
    let repo = open(global)?;
    let (reference, subpath) = split_reference(&args.snapshot)?;
    let (id, snapshot) = resolve(&repo, reference, &SnapshotFilter::from(&args.filter))?;
    let Some(target) = args.target.clone() else {
        let target_file = args
            .target_file
            .as_deref()
            .expect("clap requires one target");
        let Some(path) = subpath else {
            bail!("--target-file needs SNAPSHOT:PATH naming one file");
        };
        let summary = write_to_target(&repo, &snapshot, path, target_file, args.verify)?;
        if global.json {
            print_summary_json(&summary, &id)?;
        } else if !global.quiet {
            println!(
                "wrote {} ({}) from snapshot {} to {}{}",
                path.display(),
                bytes(summary.bytes),
                id.short(),
                summary.target,
                if summary.verified { ", verified" } else { "" }
            );
        }
        return Ok(Exit::Ok);
    };
    let options = RestoreOptions {
        target: target.clone(),
        subpath: subpath.map(std::path::Path::to_path_buf),
        includes: args.includes.clone(),
        excludes: args.excludes.clone(),
        overwrite: match args.overwrite {
            OverwriteArg::Always => Overwrite::Always,
            OverwriteArg::IfChanged => Overwrite::IfChanged,
            OverwriteArg::Never => Overwrite::Never,
        },
        verify: args.verify,
        interrupt: interrupt_flag()?,
        sink: crate::restore::Sink::default(),
    };
    let progress = Arc::new(Progress::default());
    let reporter = Reporter::start(global, progress.clone(), "restore");
    let summary = restore(
        &repo,
        &snapshot,
        &options,
        &progress,
        &CliObserver::new(global),
    );
    reporter.finish();
    let summary = summary?;
    if global.json {
        print_summary_json(&summary, &id)?;
    } else if !global.quiet {
        println!(
            "restored {} files, {} directories, {} other entries ({}) from snapshot {} to {}",
            summary.files_restored,
            summary.dirs_restored,
            summary.other_restored,
            bytes(summary.total_bytes),
            id.short(),
            target.display()
        );
        if summary.files_failed > 0 {
            println!(
                "{} files could not be restored completely and were removed (see the errors \
                 above); run the restore again once the cause is fixed",
                summary.files_failed
            );
        }
        if summary.files_skipped > 0 {
            println!(
                "skipped {} existing files (--overwrite)",
                summary.files_skipped
            );
        }
        if args.verify {
            println!("verified {} files", summary.files_verified);
        }
    }
    if summary.errors > 0 {
        bail!(
            "{} errors during restore (listed above); the target is incomplete",
            summary.errors
        );
    }
    Ok(Exit::Ok)
}

/// A restore summary as JSON, tagged like every command's summary.
fn print_summary_json(
    summary: &impl serde::Serialize,
    id: &cairn_format::SnapshotId,
) -> Result<()> {
    let mut value = serde_json::to_value(summary)?;
    value["message_type"] = "summary".into();
    value["snapshot_id"] = id.to_hex().into();
    print_json(&value)
}
