//! `cairn snapshots`

use std::collections::BTreeMap;

use anyhow::Result;
use cairn_format::SnapshotId;
use cairn_format::snapshot::Snapshot;

use super::open_unsynced;
use super::output::table::{self, bytes, render};
use super::output::{count, json, json_line, outln};
use crate::cli::{Global, SnapshotsArgs};
use crate::exit::Exit;
use crate::forget::{GroupBy, GroupKey};
use crate::select::{SnapshotFilter, choose};

pub fn run(global: &Global, args: &SnapshotsArgs) -> Result<Exit> {
    let repo = open_unsynced(global)?;
    let mut list = choose(&repo, &args.snapshots, &SnapshotFilter::from(&args.filter))?;
    if let Some(n) = args.latest {
        list = newest_per_group(list, n);
    }
    if global.json {
        for (id, s) in &list {
            let mut line = json::snapshot(id, s);
            line["message_type"] = "snapshot".into();
            json_line(&line);
        }
    } else if args.compact {
        let rows: Vec<_> = list.iter().map(|(id, s)| compact_row(id, s)).collect();
        outln!("{}", render(&["ID", "Time", "Host", "Tags"], &rows));
        outln!("{}", count(list.len() as u64, "snapshot"));
    } else {
        let rows: Vec<_> = list.iter().map(|(id, s)| row(id, s)).collect();
        let header = ["ID", "Time", "Host", "Tags", "Paths", "Size"];
        outln!("{}", render(&header, &rows));
        outln!("{}", count(list.len() as u64, "snapshot"));
    }
    Ok(Exit::Ok)
}

/// The newest `n` snapshots of each host and set of paths (restic's `--latest`), in the
/// order they came.
fn newest_per_group(list: Vec<(SnapshotId, Snapshot)>, n: usize) -> Vec<(SnapshotId, Snapshot)> {
    let by = GroupBy { host: true, paths: true, tags: false };
    let mut taken: BTreeMap<GroupKey, usize> = BTreeMap::new();
    let mut kept: Vec<_> = (list.into_iter().rev())
        .filter(|(_, s)| {
            let count = taken.entry(GroupKey::of(by, s)).or_default();
            *count += 1;
            *count <= n
        })
        .collect();
    kept.reverse();
    kept
}

/// A snapshot as a row of the table: tags and paths one per line, as restic shows them.
fn row(id: &SnapshotId, s: &Snapshot) -> Vec<String> {
    let mut cells = compact_row(id, s);
    cells[3] = tags(s).join("\n");
    cells.push(s.paths.join("\n"));
    cells.push((s.summary.as_ref()).map_or_else(String::new, |x| bytes(x.total_bytes_processed)));
    cells
}

fn compact_row(id: &SnapshotId, s: &Snapshot) -> Vec<String> {
    let when = table::time(s.time_ns);
    vec![id.short(), when, s.hostname.clone(), tags(s).join(",")]
}

/// The tags, and `[protected]` when forget may not remove the snapshot.
fn tags(s: &Snapshot) -> Vec<String> {
    let protected = s.protected.then(|| "[protected]".to_string());
    s.tags.iter().cloned().chain(protected).collect()
}
