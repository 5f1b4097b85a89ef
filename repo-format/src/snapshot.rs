//! Snapshots (`snapshots/<id>`): the root of one backup, written last, after every pack, index
//! segment and tree it refers to. A snapshot's id is the BLAKE3 of its stored bytes.

use serde::{Deserialize, Serialize};

use crate::chunker::ChunkerParams;
use crate::config::ImageChunking;
use crate::crypto::{MasterKey, SealKind};
use crate::encoding::{self, Tag};
use crate::error::{Error, Result};
use crate::id::{BlobId, SnapshotId};

/// Current snapshot version (2 added `chunking`, 3 `protected`; versions 1 and 2 are still
/// read).
pub const SNAPSHOT_VERSION: u8 = 3;

/// What one backup recorded.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// When the backup started (or `--time`), nanoseconds since the Unix epoch, UTC.
    pub time_ns: i64,
    /// The local UTC offset at that time in seconds, for calendar-based retention.
    pub utc_offset_s: i32,
    /// Root tree: a directory that holds the backed-up paths under their absolute names.
    pub tree: BlobId,
    pub paths: Vec<String>,
    pub hostname: String,
    pub username: String,
    pub uid: u32,
    pub gid: u32,
    pub tags: Vec<String>,
    pub parent: Option<SnapshotId>,
    pub program_version: String,
    pub summary: Option<BackupSummary>,
    /// How the backup cut file contents (`None`: written by version 1, where every file was cut
    /// with the repository's `chunker`).
    pub chunking: Option<Chunking>,
    /// No retention policy removes a protected snapshot (`cairn tag --protect`).
    pub protected: bool,
}

/// The chunking profiles a backup used, copied from the config it ran with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunking {
    pub files: ChunkerParams,
    pub images: ImageChunking,
}

/// Version 1, without `chunking`.
#[derive(Deserialize)]
struct SnapshotV1 {
    time_ns: i64,
    utc_offset_s: i32,
    tree: BlobId,
    paths: Vec<String>,
    hostname: String,
    username: String,
    uid: u32,
    gid: u32,
    tags: Vec<String>,
    parent: Option<SnapshotId>,
    program_version: String,
    summary: Option<BackupSummary>,
}

impl From<SnapshotV1> for SnapshotV2 {
    fn from(v1: SnapshotV1) -> Self {
        SnapshotV2 {
            time_ns: v1.time_ns,
            utc_offset_s: v1.utc_offset_s,
            tree: v1.tree,
            paths: v1.paths,
            hostname: v1.hostname,
            username: v1.username,
            uid: v1.uid,
            gid: v1.gid,
            tags: v1.tags,
            parent: v1.parent,
            program_version: v1.program_version,
            summary: v1.summary,
            chunking: None,
        }
    }
}

/// Version 2, without `protected`.
#[derive(Deserialize)]
struct SnapshotV2 {
    time_ns: i64,
    utc_offset_s: i32,
    tree: BlobId,
    paths: Vec<String>,
    hostname: String,
    username: String,
    uid: u32,
    gid: u32,
    tags: Vec<String>,
    parent: Option<SnapshotId>,
    program_version: String,
    summary: Option<BackupSummary>,
    chunking: Option<Chunking>,
}

impl From<SnapshotV2> for Snapshot {
    fn from(v2: SnapshotV2) -> Self {
        Snapshot {
            time_ns: v2.time_ns,
            utc_offset_s: v2.utc_offset_s,
            tree: v2.tree,
            paths: v2.paths,
            hostname: v2.hostname,
            username: v2.username,
            uid: v2.uid,
            gid: v2.gid,
            tags: v2.tags,
            parent: v2.parent,
            program_version: v2.program_version,
            summary: v2.summary,
            chunking: v2.chunking,
            protected: false,
        }
    }
}

/// Counters and sizes of the backup that made a snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupSummary {
    pub start_ns: i64,
    pub end_ns: i64,
    pub files_new: u64,
    pub files_changed: u64,
    pub files_unmodified: u64,
    pub dirs_new: u64,
    pub dirs_changed: u64,
    pub dirs_unmodified: u64,
    pub total_files_processed: u64,
    pub total_bytes_processed: u64,
    pub data_blobs_added: u64,
    pub tree_blobs_added: u64,
    /// Plaintext bytes of new blobs.
    pub bytes_added: u64,
    /// Bytes of new blobs as stored (compressed and sealed).
    pub bytes_added_stored: u64,
    /// Files or directories that could not be read.
    pub errors: u64,
}

impl Snapshot {
    /// Sealed bytes and the id they are stored under.
    pub fn seal(&self, key: &MasterKey) -> (SnapshotId, Vec<u8>) {
        let sealed = key.seal(SealKind::Snapshot, None, &self.encode());
        (SnapshotId::hash_of(&sealed), sealed)
    }

    /// Plaintext encoding (golden vectors).
    pub fn encode(&self) -> Vec<u8> {
        encoding::encode(Tag::Snapshot, SNAPSHOT_VERSION, self)
    }

    /// Opens a stored snapshot, checking its name first.
    pub fn open(key: &MasterKey, id: &SnapshotId, sealed: &[u8]) -> Result<Self> {
        let name = id.to_hex();
        if SnapshotId::hash_of(sealed) != *id {
            return Err(Error::corrupt("snapshot", name, "contents do not hash to the name"));
        }
        let plain = key.open(SealKind::Snapshot, None, sealed, &name)?;
        match encoding::version_of(&plain) {
            Some(1) => {
                let v1 = encoding::decode::<SnapshotV1>(Tag::Snapshot, 1, &plain, &name)?;
                Ok(SnapshotV2::from(v1).into())
            }
            Some(2) => Ok(encoding::decode::<SnapshotV2>(Tag::Snapshot, 2, &plain, &name)?.into()),
            _ => encoding::decode(Tag::Snapshot, SNAPSHOT_VERSION, &plain, &name),
        }
    }
}
