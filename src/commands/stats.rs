//! `cairn stats`.

use crate::commands::output::outln;
use anyhow::Result;

use super::open;
use super::output::json_line;
use super::output::table::bytes;
use crate::cli::{Global, StatsArgs, StatsModeArg};
use crate::exit::Exit;
use crate::select::{SnapshotFilter, choose};
use crate::stats::{StatsMode, stats};

pub fn run(global: &Global, args: &StatsArgs) -> Result<Exit> {
    let repo = open(global)?;
    let snapshots = choose(&repo, &args.snapshots, &SnapshotFilter::from(&args.filter))?;
    let mode = match args.mode {
        StatsModeArg::RestoreSize => StatsMode::RestoreSize,
        StatsModeArg::RawData => StatsMode::RawData,
    };
    let stats = stats(&repo, &snapshots, mode)?;
    if global.json {
        json_line(&serde_json::json!({"message_type": "stats", "stats": stats}));
        return Ok(Exit::Ok);
    }
    outln!("Snapshots:          {}", stats.snapshots);
    outln!("Files:              {}", stats.files);
    outln!("Restore size:       {}", bytes(stats.restore_size));
    if let (Some(blobs), Some(raw), Some(stored)) = (stats.blobs, stats.raw_size, stats.stored_size)
    {
        outln!("Unique blobs:       {blobs}");
        outln!("Unique data:        {}", bytes(raw));
        outln!("Stored:             {}", bytes(stored));
        outln!("Compression ratio:  {:.2}x", stats.compression_ratio.unwrap_or(0.0));
        outln!("Dedup ratio:        {:.2}x", stats.dedup_ratio.unwrap_or(0.0));
    }
    Ok(Exit::Ok)
}
