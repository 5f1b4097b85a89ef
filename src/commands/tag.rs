//! `cairn tag`: adds or removes tags and protects snapshots from forget.

use crate::commands::output::outln;
use anyhow::{Result, bail};
use cairn_format::SnapshotId;

use super::open_unsynced;
use super::output::json_line;
use crate::cli::{Global, TagArgs};
use crate::exit::Exit;
use crate::forget::retag;
use crate::select::{SnapshotFilter, resolve};

pub fn run(global: &Global, args: &TagArgs) -> Result<Exit> {
    let protect = protection(args);
    if args.add.is_empty() && args.remove.is_empty() && protect.is_none() {
        bail!("nothing to change: give --add, --remove, --protect or --unprotect");
    }
    let repo = open_unsynced(global)?;
    let filter = SnapshotFilter::from(&args.filter);
    let mut changed = Vec::new();
    for reference in &args.snapshots {
        let (id, snapshot) = resolve(&repo, reference, &filter)?;
        let new = retag(&repo, id, snapshot, &args.add, &args.remove, protect)?;
        changed.push((id, new));
    }
    report(global, &changed);
    Ok(Exit::Ok)
}

/// `--protect` (Some(true)), `--unprotect` (Some(false)), or neither.
fn protection(args: &TagArgs) -> Option<bool> {
    match (args.protect, args.unprotect) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    }
}

/// Each snapshot's old and new id (a retagged snapshot is saved anew).
fn report(global: &Global, changed: &[(SnapshotId, SnapshotId)]) {
    if global.json {
        let list: Vec<_> = (changed.iter())
            .map(|(old, new)| serde_json::json!({"old": old, "new": new, "changed": old != new}))
            .collect();
        json_line(&serde_json::json!({"message_type": "tag", "snapshots": list}));
        return;
    }
    for (old, new) in changed.iter().filter(|_| !global.quiet) {
        if old == new {
            outln!("snapshot {}: unchanged", old.short());
        } else {
            outln!("snapshot {} saved as {}", old.short(), new.short());
        }
    }
}
