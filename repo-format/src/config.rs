//! The repository config: the parameters every client must agree on. Stored sealed as the
//! object `config`; its presence is what makes a location a repository.

use serde::{Deserialize, Serialize};

use crate::chunker::ChunkerParams;
use crate::crypto::{MasterKey, SealKind};
use crate::encoding::{self, Tag};
use crate::error::{Error, Result};
use crate::id::RepositoryId;

/// Current config version.
pub const CONFIG_VERSION: u8 = 1;

/// Smallest and largest accepted target pack sizes.
pub const PACK_SIZE_RANGE: std::ops::RangeInclusive<u32> = (64 * 1024)..=(1 << 30);

/// Repository-wide parameters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// Random id, names the local cache directory.
    pub id: RepositoryId,
    /// Chunk size bounds for file contents.
    pub chunker: ChunkerParams,
    /// Target size of a pack in bytes.
    pub pack_size: u32,
    /// Default zstd level for new blobs (0 = store uncompressed).
    pub compression_level: i32,
    /// Creation time, nanoseconds since the Unix epoch (UTC).
    pub created_ns: i64,
}

impl Config {
    /// Checks every field a hostile or damaged config could use to make later code misbehave.
    pub fn validate(&self) -> Result<()> {
        self.chunker.validate()?;
        if !PACK_SIZE_RANGE.contains(&self.pack_size) {
            return Err(Error::InvalidParameter(format!(
                "pack size {} outside {PACK_SIZE_RANGE:?}",
                self.pack_size
            )));
        }
        if !(0..=22).contains(&self.compression_level) {
            return Err(Error::InvalidParameter(format!(
                "compression level {} outside 0..=22",
                self.compression_level
            )));
        }
        Ok(())
    }

    /// Sealed bytes of the `config` object.
    pub fn seal(&self, key: &MasterKey) -> Vec<u8> {
        key.seal(SealKind::Config, None, &self.encode())
    }

    /// Plaintext encoding (golden vectors).
    pub fn encode(&self) -> Vec<u8> {
        encoding::encode(Tag::Config, CONFIG_VERSION, self)
    }

    /// Opens and validates the `config` object.
    pub fn open(key: &MasterKey, sealed: &[u8]) -> Result<Self> {
        let plain = key.open(SealKind::Config, None, sealed, "config")?;
        let config: Config = encoding::decode(Tag::Config, CONFIG_VERSION, &plain, "config")?;
        config
            .validate()
            .map_err(|e| Error::corrupt("config", "config", e.to_string()))?;
        Ok(config)
    }
}
