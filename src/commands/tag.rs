//! `cairn tag`: adds or removes tags and protects snapshots from forget.

use crate::commands::output::outln;
use anyhow::{Result, bail};

use super::{open_unsynced, print_json};
use crate::cli::{Global, TagArgs};
use crate::exit::Exit;
use crate::forget::retag;
use crate::select::{SnapshotFilter, resolve};

pub fn run(global: &Global, args: &TagArgs) -> Result<Exit> {
    let protect = match (args.protect, args.unprotect) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    };
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
    if global.json {
        let list: Vec<_> = changed
            .iter()
            .map(|(old, new)| serde_json::json!({"old": old, "new": new, "changed": old != new}))
            .collect();
        print_json(&serde_json::json!({"message_type": "tag", "snapshots": list}))?;
    } else if !global.quiet {
        for (old, new) in &changed {
            if old == new {
                outln!("snapshot {}: unchanged", old.short());
            } else {
                outln!("snapshot {} saved as {}", old.short(), new.short());
            }
        }
    }
    Ok(Exit::Ok)
}
