//! Lock objects (`locks/<id>`): who is working on the repository, sealed like every other
//! object. A lock is rewritten in place to refresh it and deleted when the work ends; the
//! rules for which locks conflict, and when one is stale, are the engine's (docs/format.md,
//! "Locks and prune").

use serde::{Deserialize, Serialize};

use crate::crypto::{MasterKey, SealKind};
use crate::encoding::{self, Tag};
use crate::error::Result;
use crate::id::LockId;

/// Current lock version.
pub const LOCK_VERSION: u8 = 1;

/// What the holder is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LockKind {
    /// A backup: never waits and never blocks anyone, but prune does not delete packs the
    /// backup might have reused while it runs.
    Backup,
    /// `check`: waits for an exclusive lock to go, blocks exclusive locks.
    Check,
    /// `prune`, `repair`: one at a time, and not while a check runs.
    Exclusive,
}

/// One lock object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    pub kind: LockKind,
    /// The command, for messages (`prune`, `backup`).
    pub operation: String,
    pub hostname: String,
    pub username: String,
    pub pid: u32,
    /// When the lock was taken and last refreshed, Unix seconds of the holder's clock.
    pub created_s: i64,
    pub refreshed_s: i64,
}

impl Lock {
    /// Sealed bytes of the lock object.
    pub fn seal(&self, key: &MasterKey) -> Vec<u8> {
        key.seal(SealKind::Lock, None, &encoding::encode(Tag::Lock, LOCK_VERSION, self))
    }

    /// Opens a lock object.
    pub fn open(key: &MasterKey, id: &LockId, sealed: &[u8]) -> Result<Self> {
        let name = id.to_hex();
        let plain = key.open(SealKind::Lock, None, sealed, &name)?;
        encoding::decode(Tag::Lock, LOCK_VERSION, &plain, &name)
    }
}
