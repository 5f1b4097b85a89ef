//! JSON shapes shared by several commands, in one vocabulary: where restic has a name for a
//! value, cairn uses it (docs/json.md), so scripts written for restic port.

use cairn_format::SnapshotId;
use cairn_format::snapshot::{BackupSummary, Snapshot};
use serde_json::{Value, json};

use super::table::time_with_offset;

/// A snapshot, as `snapshots`, `ls` and `cat snapshot` print it.
pub fn snapshot(id: &SnapshotId, s: &Snapshot) -> Value {
    json!({
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
        "summary": s.summary.as_ref().map(summary),
    })
}

/// What a backup did, as its `--json` summary and a snapshot's `summary` both say it.
pub fn summary(s: &BackupSummary) -> Value {
    json!({
        "backup_start": time_with_offset(s.start_ns, 0).to_rfc3339(),
        "backup_end": time_with_offset(s.end_ns, 0).to_rfc3339(),
        "total_duration": (s.end_ns - s.start_ns) as f64 / 1e9,
        "files_new": s.files_new,
        "files_changed": s.files_changed,
        "files_unmodified": s.files_unmodified,
        "dirs_new": s.dirs_new,
        "dirs_changed": s.dirs_changed,
        "dirs_unmodified": s.dirs_unmodified,
        "total_files_processed": s.total_files_processed,
        "total_bytes_processed": s.total_bytes_processed,
        "data_blobs": s.data_blobs_added,
        "tree_blobs": s.tree_blobs_added,
        "data_added": s.bytes_added,
        "data_added_packed": s.bytes_added_stored,
        "error_count": s.errors,
    })
}
