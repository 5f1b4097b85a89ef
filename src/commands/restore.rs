//! `cairn restore`

use crate::commands::output::{count, outln};
use std::path::Path;
use std::sync::Arc;

use anyhow::{Result, bail};
use cairn_format::{Repository, SnapshotId};

use super::explain::Chosen;
use super::output::json_line;
use super::output::report::{CliObserver, Reporter};
use super::output::table::bytes;
use super::{interrupt_flag, open};
use crate::cli::{Global, OverwriteArg, RestoreArgs};
use crate::exit::Exit;
use crate::progress::Progress;
use crate::restore::{Overwrite, RestoreOptions, RestoreSummary, restore, write_to_target};
use crate::select::{SnapshotFilter, split_reference};

pub fn run(global: &Global, args: &RestoreArgs) -> Result<Exit> {
    let repo = open(global)?;
    let (reference, subpath) = split_reference(&args.snapshot)?;
    let chosen = Chosen::resolve(&repo, reference, SnapshotFilter::from(&args.filter))?;
    let restored = match (&args.target, &args.target_file) {
        (Some(target), _) => into_directory(global, args, &repo, &chosen, subpath, target),
        (None, Some(file)) => {
            let Some(path) = subpath else {
                bail!("--target-file needs SNAPSHOT:PATH naming one file");
            };
            into_file(global, args, &repo, &chosen, path, file)
        }
        (None, None) => unreachable!("clap requires --target or --target-file"),
    };
    restored.map_err(|e| chosen.explain(&repo, e))
}

/// `--target-file`: one file's bytes into a file or block device.
fn into_file(
    global: &Global,
    args: &RestoreArgs,
    repo: &Arc<Repository>,
    Chosen { id, snapshot, .. }: &Chosen,
    path: &Path,
    target_file: &Path,
) -> Result<Exit> {
    let summary = write_to_target(repo, snapshot, path, target_file, args.verify)?;
    if global.json {
        print_summary_json(&summary, id)?;
    } else if !global.quiet {
        outln!(
            "wrote {} ({}) from snapshot {} to {}{}",
            path.display(),
            bytes(summary.bytes),
            id.short(),
            summary.target,
            if summary.verified { ", verified" } else { "" }
        );
    }
    Ok(Exit::Ok)
}

/// `--target`: the snapshot, or the path in it, into a directory.
fn into_directory(
    global: &Global,
    args: &RestoreArgs,
    repo: &Arc<Repository>,
    Chosen { id, snapshot, .. }: &Chosen,
    subpath: Option<&Path>,
    target: &Path,
) -> Result<Exit> {
    let options = restore_options(args, subpath, target)?;
    let progress = Arc::new(Progress::default());
    let reporter = Reporter::start(global, progress.clone(), "restore");
    let summary = restore(repo, snapshot, &options, &progress, &CliObserver::new(global));
    reporter.finish();
    let summary = summary?;
    if global.json {
        print_summary_json(&summary, id)?;
    } else if !global.quiet {
        print_summary(&summary, id, target, args.verify);
    }
    if summary.errors > 0 {
        bail!(
            "{} during restore (listed above); the target is incomplete",
            count(summary.errors, "error")
        );
    }
    Ok(Exit::Ok)
}

fn restore_options(
    args: &RestoreArgs,
    subpath: Option<&Path>,
    target: &Path,
) -> Result<RestoreOptions> {
    Ok(RestoreOptions {
        target: target.to_path_buf(),
        subpath: subpath.map(Path::to_path_buf),
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
    })
}

fn print_summary(summary: &RestoreSummary, id: &SnapshotId, target: &Path, verified: bool) {
    outln!(
        "restored {}, {}, {} ({}) from snapshot {} to {}",
        count(summary.files_restored, "file"),
        count(summary.dirs_restored, "directory"),
        count(summary.other_restored, "other entry"),
        bytes(summary.total_bytes),
        id.short(),
        target.display()
    );
    if summary.files_failed > 0 {
        outln!(
            "{} could not be restored completely and removed (see the errors above); run the \
             restore again once the cause is fixed",
            count(summary.files_failed, "file")
        );
    }
    if summary.files_skipped > 0 {
        outln!("skipped {} (--overwrite)", count(summary.files_skipped, "existing file"));
    }
    if verified {
        outln!("verified {}", count(summary.files_verified, "file"));
    }
}

/// A restore summary as JSON, tagged like every command's summary.
fn print_summary_json(summary: &impl serde::Serialize, id: &SnapshotId) -> Result<()> {
    let mut value = serde_json::to_value(summary)?;
    value["message_type"] = "summary".into();
    value["snapshot_id"] = id.to_hex().into();
    json_line(&value);
    Ok(())
}
