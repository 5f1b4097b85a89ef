//! The repository config: the parameters every client must agree on. Stored sealed as the
//! object `config`; its presence is what makes a location a repository.

use serde::{Deserialize, Serialize};

use crate::chunker::ChunkerParams;
use crate::crypto::{MasterKey, SealKind};
use crate::encoding::{self, Tag};
use crate::error::{Error, Result};
use crate::id::RepositoryId;

/// Current config version (2 added `image_chunking`, 3 `image_compression_level`; versions 1
/// and 2 are still read).
pub const CONFIG_VERSION: u8 = 3;

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
    /// How large files (VM images) and streams are cut.
    pub image_chunking: ImageChunking,
    /// Default zstd level for data blobs cut with the image profile: images are large and
    /// backed up often, so they trade a few percent of size for a cheaper level.
    pub image_compression_level: i32,
}

/// The chunking profile for large files and streams: smaller chunks, so a scattered in-place
/// change to a disk image costs little (docs/format.md, "Choice of chunk sizes").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageChunking {
    pub chunker: ChunkerParams,
    /// Regular files (and block devices) of at least this many bytes use `chunker`; so do
    /// streams (stdin, `--stdin-from-command`), whose size is not known in advance.
    pub from_size: u64,
}

impl Default for ImageChunking {
    /// 32 KiB / 128 KiB / 512 KiB for files of 1 GiB and more.
    fn default() -> Self {
        Self {
            chunker: ChunkerParams {
                min_size: 32 * 1024,
                avg_size: 128 * 1024,
                max_size: 512 * 1024,
            },
            from_size: 1 << 30,
        }
    }
}

/// Version 1: no image profile; every file was cut with `chunker`.
#[derive(Deserialize)]
struct ConfigV1 {
    id: RepositoryId,
    chunker: ChunkerParams,
    pack_size: u32,
    compression_level: i32,
    created_ns: i64,
}

impl From<ConfigV1> for Config {
    fn from(v1: ConfigV1) -> Self {
        ConfigV2 {
            id: v1.id,
            chunker: v1.chunker,
            pack_size: v1.pack_size,
            compression_level: v1.compression_level,
            created_ns: v1.created_ns,
            // Keeps cutting as the repository always did, so dedup is not disturbed.
            image_chunking: ImageChunking { chunker: v1.chunker, from_size: u64::MAX },
        }
        .into()
    }
}

/// Version 2: one compression level for every blob.
#[derive(Deserialize)]
struct ConfigV2 {
    id: RepositoryId,
    chunker: ChunkerParams,
    pack_size: u32,
    compression_level: i32,
    created_ns: i64,
    image_chunking: ImageChunking,
}

impl From<ConfigV2> for Config {
    fn from(v2: ConfigV2) -> Self {
        Config {
            id: v2.id,
            chunker: v2.chunker,
            pack_size: v2.pack_size,
            compression_level: v2.compression_level,
            created_ns: v2.created_ns,
            image_chunking: v2.image_chunking,
            image_compression_level: v2.compression_level,
        }
    }
}

impl Config {
    /// Checks every field a hostile or damaged config could use to make later code misbehave.
    pub fn validate(&self) -> Result<()> {
        self.chunker.validate()?;
        self.image_chunking.chunker.validate()?;
        if !PACK_SIZE_RANGE.contains(&self.pack_size) {
            return Err(Error::InvalidParameter(format!(
                "pack size {} outside {PACK_SIZE_RANGE:?}",
                self.pack_size
            )));
        }
        for level in [self.compression_level, self.image_compression_level] {
            if !(0..=22).contains(&level) {
                return Err(Error::InvalidParameter(format!(
                    "compression level {level} outside 0..=22"
                )));
            }
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
        let config: Config = match encoding::version_of(&plain) {
            Some(1) => encoding::decode::<ConfigV1>(Tag::Config, 1, &plain, "config")?.into(),
            Some(2) => encoding::decode::<ConfigV2>(Tag::Config, 2, &plain, "config")?.into(),
            _ => encoding::decode(Tag::Config, CONFIG_VERSION, &plain, "config")?,
        };
        config.validate().map_err(|e| Error::corrupt("config", "config", e.to_string()))?;
        Ok(config)
    }
}
