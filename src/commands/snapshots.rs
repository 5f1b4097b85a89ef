//! `cairn snapshots`

use anyhow::Result;
use cairn_format::SnapshotId;
use cairn_format::snapshot::Snapshot;

use super::output::table::{bytes, local_time, render, time_with_offset};
use super::{open_unsynced, print_json};
use crate::cli::{Global, SnapshotsArgs};
use crate::exit::Exit;
use crate::select::SnapshotFilter;

/// The JSON shape of a snapshot, shared by every command that prints one.
pub fn snapshot_json(id: &SnapshotId, s: &Snapshot) -> serde_json::Value {
    serde_json::json!({
        "id": id,
        "short_id": id.short(),
        "time": time_with_offset(s.time_ns, s.utc_offset_s).to_rfc3339(),
        "tree": s.tree,
        "paths": s.paths,
        "hostname": s.hostname,
        "username": s.username,
        "uid": s.uid,
        "gid": s.gid,
        "tags": s.tags,
        "protected": s.protected,
        "parent": s.parent,
        "program_version": s.program_version,
        "summary": s.summary,
    })
}

pub fn run(global: &Global, args: &SnapshotsArgs) -> Result<Exit> {
    let repo = open_unsynced(global)?;
    let mut list = SnapshotFilter::from(&args.filter).apply(&repo)?;
    if let Some(n) = args.latest {
        list.drain(..list.len().saturating_sub(n));
    }
    if global.json {
        let values: Vec<_> = list.iter().map(|(id, s)| snapshot_json(id, s)).collect();
        print_json(&values)?;
        return Ok(Exit::Ok);
    }
    let rows: Vec<Vec<String>> = list.iter().map(|(id, s)| row(id, s)).collect();
    println!(
        "{}",
        render(&["ID", "Time", "Host", "Tags", "Paths", "Size"], &rows)
    );
    println!("{} snapshots", list.len());
    Ok(Exit::Ok)
}

/// A snapshot as a line of the table.
fn row(id: &SnapshotId, s: &Snapshot) -> Vec<String> {
    let tags = s.tags.join(",");
    vec![
        id.short(),
        local_time(s.time_ns),
        s.hostname.clone(),
        if s.protected {
            format!("{tags} [protected]").trim_start().to_string()
        } else {
            tags
        },
        s.paths.join(" "),
        (s.summary.as_ref())
            .map(|x| bytes(x.total_bytes_processed))
            .unwrap_or_default(),
    ]
}
