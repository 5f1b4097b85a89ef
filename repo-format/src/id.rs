//! Identifiers: one newtype per kind of object, all 32 bytes, shown as lowercase hex.
//!
//! Keeping the kinds apart in the type system means a pack id can never be looked up as a
//! blob id by mistake. Every id is either a keyed BLAKE3 of plaintext (blobs) or the plain
//! BLAKE3 of the stored bytes (packs, index segments, snapshots, key files), so an object's
//! name can always be checked against what was read.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::Error;

/// Length of every id in bytes.
pub const ID_LEN: usize = 32;

macro_rules! define_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name(pub [u8; ID_LEN]);

        impl $name {
            /// Builds the id from exactly 32 bytes.
            pub fn from_slice(bytes: &[u8]) -> Option<Self> {
                bytes.try_into().ok().map(Self)
            }

            /// The raw bytes.
            pub fn as_bytes(&self) -> &[u8; ID_LEN] {
                &self.0
            }

            /// The full lowercase hex form.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }

            /// The first 8 hex digits, as shown in listings.
            pub fn short(&self) -> String {
                hex::encode(&self.0[..4])
            }

            /// The plain BLAKE3 hash of `bytes`, for content-addressed objects.
            pub fn hash_of(bytes: &[u8]) -> Self {
                Self(*blake3::hash(bytes).as_bytes())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.short())
            }
        }

        /// Hex in human-readable formats (JSON), 32 raw bytes in postcard.
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                if serializer.is_human_readable() {
                    serializer.serialize_str(&self.to_hex())
                } else {
                    self.0.serialize(serializer)
                }
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                if deserializer.is_human_readable() {
                    let text = String::deserialize(deserializer)?;
                    text.parse().map_err(serde::de::Error::custom)
                } else {
                    <[u8; ID_LEN]>::deserialize(deserializer).map(Self)
                }
            }
        }

        impl FromStr for $name {
            type Err = Error;

            fn from_str(s: &str) -> Result<Self, Error> {
                let mut bytes = [0u8; ID_LEN];
                hex::decode_to_slice(s, &mut bytes).map_err(|_| Error::InvalidId {
                    kind: $what,
                    text: s.to_string(),
                })?;
                Ok(Self(bytes))
            }
        }
    };
}

define_id!(
    /// A blob: keyed BLAKE3 (the repository's id key) of the blob's plaintext.
    BlobId,
    "blob"
);
define_id!(
    /// A pack: BLAKE3 of the whole pack object as stored.
    PackId,
    "pack"
);
define_id!(
    /// An index segment: BLAKE3 of the stored segment object.
    IndexId,
    "index segment"
);
define_id!(
    /// A snapshot: BLAKE3 of the stored snapshot object.
    SnapshotId,
    "snapshot"
);
define_id!(
    /// A key file: BLAKE3 of the stored key file.
    KeyId,
    "key"
);
define_id!(
    /// A lock object: 32 random bytes chosen when the lock is taken.
    LockId,
    "lock"
);
define_id!(
    /// A repository: 32 random bytes chosen at `init`, naming the local cache directory.
    RepositoryId,
    "repository"
);

/// Fills a buffer from the operating system's random source.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes).expect("the operating system has no random source");
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_short_form() {
        let id = BlobId([0xab; 32]);
        let text = id.to_string();
        assert_eq!(text.len(), 64);
        assert_eq!(id.short(), "abababab");
        assert_eq!(text.parse::<BlobId>().unwrap(), id);
    }

    #[test]
    fn rejects_bad_hex() {
        assert!("xyz".parse::<PackId>().is_err());
        assert!("ab".parse::<PackId>().is_err());
    }
}
