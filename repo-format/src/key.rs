//! Key files (`keys/<id>`): the master key wrapped under a password-derived key. Key files are
//! the only unsealed objects; they hold nothing but KDF parameters, a salt, who created them,
//! and the wrapped key. Any one of them opens the repository.

use serde::{Deserialize, Serialize};

use crate::crypto::{KdfParams, MasterKey, WrappingKey};
use crate::encoding::{self, Tag};
use crate::error::{Error, Result};
use crate::id::{KeyId, random_bytes};

/// Current key-file version.
pub const KEY_FILE_VERSION: u8 = 1;

/// The stored form of a key file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyFile {
    pub created_ns: i64,
    pub hostname: String,
    pub username: String,
    pub kdf: KdfParams,
    pub salt: [u8; 16],
    /// The master key, sealed under the Argon2id-derived key.
    pub wrapped: Vec<u8>,
}

impl KeyFile {
    /// Wraps `master` under `password`.
    pub fn create(
        master: &MasterKey,
        password: &[u8],
        kdf: KdfParams,
        hostname: String,
        username: String,
        created_ns: i64,
    ) -> Result<Self> {
        let salt = random_bytes();
        let wrapping = WrappingKey::derive(password, &salt, kdf)?;
        Ok(Self {
            created_ns,
            hostname,
            username,
            kdf,
            salt,
            wrapped: wrapping.wrap(master, random_bytes()),
        })
    }

    /// Tries `password`; `Ok(None)` when it is not this key's password.
    pub fn unlock(&self, password: &[u8]) -> Result<Option<MasterKey>> {
        let wrapping = WrappingKey::derive(password, &self.salt, self.kdf)?;
        Ok(wrapping.unwrap(&self.wrapped))
    }

    /// Stored bytes and the id they are named by.
    pub fn encode(&self) -> (KeyId, Vec<u8>) {
        let bytes = encoding::encode(Tag::KeyFile, KEY_FILE_VERSION, self);
        (KeyId::hash_of(&bytes), bytes)
    }

    /// Decodes a stored key file, checking that it hashes to its name.
    pub fn decode(id: &KeyId, bytes: &[u8]) -> Result<Self> {
        if KeyId::hash_of(bytes) != *id {
            return Err(Error::Key {
                id: id.to_hex(),
                reason: "contents do not hash to the file name".into(),
            });
        }
        let key: KeyFile = encoding::decode(Tag::KeyFile, KEY_FILE_VERSION, bytes, &id.to_hex())?;
        key.kdf.validate().map_err(|e| Error::Key { id: id.to_hex(), reason: e.to_string() })?;
        Ok(key)
    }
}
