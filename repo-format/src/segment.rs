//! Index segments (`index/<id>`): sealed lists of packs and the blobs in each. They are written
//! only after the packs they describe are durable, so every entry points at a pack that exists.
//! A segment's id is the BLAKE3 of its stored bytes.

use serde::{Deserialize, Serialize};

use crate::crypto::{MasterKey, SealKind};
use crate::encoding::{self, Tag};
use crate::error::{Error, Result};
use crate::id::{IndexId, PackId};
use crate::pack::PackEntry;

/// Current index-segment version (2 added `supersedes` and `marked`; version 1 is still read).
pub const SEGMENT_VERSION: u8 = 2;

/// Packs per segment when the whole index is written anew (prune, `repair index`): small
/// enough that a segment stays a few MiB, large enough that there are few of them.
pub const PACKS_PER_REWRITTEN_SEGMENT: usize = 256;

/// One pack as an index segment describes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexedPack {
    pub id: PackId,
    /// Size of the pack object in bytes.
    pub size: u64,
    pub blobs: Vec<PackEntry>,
}

/// The contents of one index segment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexSegment {
    pub packs: Vec<IndexedPack>,
    /// Segments this one replaces (prune rewrites the index): readers ignore a listed segment
    /// that another listed segment supersedes, so a prune killed between writing the new
    /// segments and deleting the old ones leaves a consistent index.
    pub supersedes: Vec<IndexId>,
    /// Packs of this segment that prune found unused, with when it decided so (Unix seconds).
    /// Their blobs still restore, but backups do not reuse them, and a later prune deletes
    /// them once no backup that might have reused them is running (docs/format.md, "Prune").
    pub marked: Vec<MarkedPack>,
}

/// A pack prune has marked for deletion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarkedPack {
    pub pack: PackId,
    pub since_s: i64,
}

/// Version 1: packs only.
#[derive(Deserialize)]
struct IndexSegmentV1 {
    packs: Vec<IndexedPack>,
}

impl IndexSegment {
    /// Sealed bytes and the id they are stored under.
    pub fn seal(&self, key: &MasterKey) -> (IndexId, Vec<u8>) {
        let sealed = key.seal(SealKind::IndexSegment, None, &self.encode());
        (IndexId::hash_of(&sealed), sealed)
    }

    /// Plaintext encoding (golden vectors).
    pub fn encode(&self) -> Vec<u8> {
        encoding::encode(Tag::IndexSegment, SEGMENT_VERSION, self)
    }

    /// Opens a stored segment, checking its name first.
    pub fn open(key: &MasterKey, id: &IndexId, sealed: &[u8]) -> Result<Self> {
        let name = id.to_hex();
        if IndexId::hash_of(sealed) != *id {
            return Err(Error::corrupt("index segment", name, "contents do not hash to the name"));
        }
        let plain = key.open(SealKind::IndexSegment, None, sealed, &name)?;
        if encoding::version_of(&plain) == Some(1) {
            let v1: IndexSegmentV1 = encoding::decode(Tag::IndexSegment, 1, &plain, &name)?;
            return Ok(IndexSegment { packs: v1.packs, ..IndexSegment::default() });
        }
        encoding::decode(Tag::IndexSegment, SEGMENT_VERSION, &plain, &name)
    }
}
