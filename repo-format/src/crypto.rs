//! Keys and sealing. Every stored object except key files is sealed with XChaCha20-Poly1305
//! under the repository's AEAD key: `nonce (24) || ciphertext || tag (16)`, a fresh random
//! nonce each time, and associated data that names the object's kind (and its id where the id
//! is known before sealing). An object moved to another name or kind, truncated, or altered
//! fails authentication instead of being decoded.

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Key, Tag, XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::{Error, Result};
use crate::id::{BlobId, random_bytes};

/// Nonce length of XChaCha20-Poly1305.
pub const NONCE_LEN: usize = 24;
/// Authentication tag length.
pub const TAG_LEN: usize = 16;
/// Bytes a sealed object is longer than its plaintext.
pub const SEAL_OVERHEAD: usize = NONCE_LEN + TAG_LEN;

/// What a sealed object is; its code is part of the associated data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SealKind {
    Config = 1,
    DataBlob = 2,
    TreeBlob = 3,
    PackHeader = 4,
    IndexSegment = 5,
    Snapshot = 6,
    MasterKey = 7,
    Lock = 8,
}

/// Associated data: `"CRN" || kind code || id bytes (only for blobs)`.
pub fn associated_data(kind: SealKind, id: Option<&BlobId>) -> Vec<u8> {
    let mut aad = Vec::with_capacity(36);
    aad.extend_from_slice(b"CRN");
    aad.push(kind as u8);
    if let Some(id) = id {
        aad.extend_from_slice(id.as_bytes());
    }
    aad
}

/// The repository's secret keys. Created once at `init`, wrapped in every key file.
#[derive(Clone, Zeroize, ZeroizeOnDrop, Serialize, Deserialize)]
pub struct MasterKey {
    /// XChaCha20-Poly1305 key for every sealed object.
    aead: [u8; 32],
    /// BLAKE3 key for blob ids, so ids do not reveal content fingerprints.
    id: [u8; 32],
    /// Key from which the chunker's gear table is derived.
    chunker: [u8; 32],
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    /// Fresh random keys.
    pub fn generate() -> Self {
        Self { aead: random_bytes(), id: random_bytes(), chunker: random_bytes() }
    }

    /// Fresh encryption keys with `other`'s blob-id and chunker keys: a repository made with
    /// them cuts and names data exactly as `other`'s does, so blobs copy across unchanged and
    /// deduplicate (`init --copy-chunker-params`).
    pub fn sharing_ids_with(other: &Self) -> Self {
        Self { aead: random_bytes(), id: other.id, chunker: other.chunker }
    }

    /// Whether both name and cut data the same way (see [`MasterKey::sharing_ids_with`]).
    pub fn shares_ids_with(&self, other: &Self) -> bool {
        self.id == other.id && self.chunker == other.chunker
    }

    /// Builds keys from fixed bytes (golden vectors and tests).
    pub fn from_parts(aead: [u8; 32], id: [u8; 32], chunker: [u8; 32]) -> Self {
        Self { aead, id, chunker }
    }

    /// Keyed BLAKE3 of a blob's plaintext.
    pub fn blob_id(&self, plaintext: &[u8]) -> BlobId {
        BlobId(*blake3::keyed_hash(&self.id, plaintext).as_bytes())
    }

    /// The key the chunker's gear table is derived from.
    pub fn chunker_key(&self) -> &[u8; 32] {
        &self.chunker
    }

    /// Seals `plaintext` with a random nonce.
    pub fn seal(&self, kind: SealKind, id: Option<&BlobId>, plaintext: &[u8]) -> Vec<u8> {
        self.seal_with_nonce(kind, id, plaintext, random_bytes())
    }

    /// Seals with a caller-chosen nonce; only golden vectors use this directly.
    pub fn seal_with_nonce(
        &self,
        kind: SealKind,
        id: Option<&BlobId>,
        plaintext: &[u8],
        nonce: [u8; NONCE_LEN],
    ) -> Vec<u8> {
        seal_with_key(&self.aead, &associated_data(kind, id), plaintext, nonce)
    }

    /// Opens a sealed object; `name` is only used in the error message.
    pub fn open(
        &self,
        kind: SealKind,
        id: Option<&BlobId>,
        sealed: &[u8],
        name: &str,
    ) -> Result<Vec<u8>> {
        open_with_key(&self.aead, &associated_data(kind, id), sealed)
            .ok_or_else(|| Error::corrupt(kind_name(kind), name, "authentication failed"))
    }
}

fn kind_name(kind: SealKind) -> &'static str {
    match kind {
        SealKind::Config => "config",
        SealKind::DataBlob => "data blob",
        SealKind::TreeBlob => "tree blob",
        SealKind::PackHeader => "pack header",
        SealKind::IndexSegment => "index segment",
        SealKind::Snapshot => "snapshot",
        SealKind::MasterKey => "key file",
        SealKind::Lock => "lock",
    }
}

fn seal_with_key(key: &[u8; 32], aad: &[u8], plaintext: &[u8], nonce: [u8; NONCE_LEN]) -> Vec<u8> {
    let cipher = XChaCha20Poly1305::new(Key::from_slice(key));
    let mut out = Vec::with_capacity(plaintext.len() + SEAL_OVERHEAD);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext);
    let tag = cipher
        .encrypt_in_place_detached(XNonce::from_slice(&nonce), aad, &mut out[NONCE_LEN..])
        .expect("XChaCha20-Poly1305 accepts any message below 256 GiB");
    out.extend_from_slice(&tag);
    out
}

fn open_with_key(key: &[u8; 32], aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < SEAL_OVERHEAD {
        return None;
    }
    let (nonce, rest) = sealed.split_at(NONCE_LEN);
    let (body, tag) = rest.split_at(rest.len() - TAG_LEN);
    let mut plain = body.to_vec();
    let cipher = XChaCha20Poly1305::new(Key::from_slice(key));
    cipher
        .decrypt_in_place_detached(XNonce::from_slice(nonce), aad, &mut plain, Tag::from_slice(tag))
        .ok()?;
    Some(plain)
}

/// Argon2id parameters, stored in each key file so they can change per key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Number of passes.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Default for KdfParams {
    /// 64 MiB, 3 passes, 1 lane: about a quarter of a second here, and above the
    /// OWASP-recommended floor for Argon2id.
    fn default() -> Self {
        Self { memory_kib: 64 * 1024, iterations: 3, parallelism: 1 }
    }
}

impl KdfParams {
    /// Rejects parameters that are unusable or would exhaust memory when read from a
    /// hostile key file.
    pub fn validate(&self) -> Result<()> {
        let sane = (8..=4 * 1024 * 1024).contains(&self.memory_kib)
            && (1..=64).contains(&self.iterations)
            && (1..=16).contains(&self.parallelism)
            && self.memory_kib >= 8 * self.parallelism;
        if sane {
            Ok(())
        } else {
            Err(Error::InvalidParameter(format!("Argon2id parameters out of range: {self:?}")))
        }
    }
}

/// A key-encryption key derived from a password; wipes itself when dropped.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct WrappingKey([u8; 32]);

impl WrappingKey {
    /// Argon2id over the password and salt.
    pub fn derive(password: &[u8], salt: &[u8; 16], params: KdfParams) -> Result<Self> {
        params.validate()?;
        let argon_params =
            Params::new(params.memory_kib, params.iterations, params.parallelism, Some(32))
                .map_err(|e| Error::InvalidParameter(format!("Argon2id: {e}")))?;
        let mut out = [0u8; 32];
        Argon2::new(Algorithm::Argon2id, Version::V0x13, argon_params)
            .hash_password_into(password, salt, &mut out)
            .map_err(|e| Error::InvalidParameter(format!("Argon2id: {e}")))?;
        Ok(Self(out))
    }

    /// Seals the master key for a key file.
    pub fn wrap(&self, master: &MasterKey, nonce: [u8; NONCE_LEN]) -> Vec<u8> {
        let mut plain = postcard::to_allocvec(master).expect("master key encodes");
        let sealed =
            seal_with_key(&self.0, &associated_data(SealKind::MasterKey, None), &plain, nonce);
        plain.zeroize();
        sealed
    }

    /// Opens a wrapped master key; `None` means the password was wrong or the file damaged.
    pub fn unwrap(&self, wrapped: &[u8]) -> Option<MasterKey> {
        let mut plain =
            open_with_key(&self.0, &associated_data(SealKind::MasterKey, None), wrapped)?;
        let key = postcard::from_bytes(&plain).ok();
        plain.zeroize();
        key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> MasterKey {
        MasterKey::from_parts([1; 32], [2; 32], [3; 32])
    }

    #[test]
    fn a_twin_key_names_and_cuts_alike_but_encrypts_apart() {
        let source = key();
        let twin = MasterKey::sharing_ids_with(&source);
        assert!(twin.shares_ids_with(&source));
        assert_eq!(twin.blob_id(b"chunk"), source.blob_id(b"chunk"));
        assert_eq!(twin.chunker_key(), source.chunker_key());
        let sealed = twin.seal(SealKind::Snapshot, None, b"secret");
        assert!(source.open(SealKind::Snapshot, None, &sealed, "twin").is_err());
        assert!(twin.open(SealKind::Snapshot, None, &sealed, "twin").is_ok());
        assert!(!MasterKey::generate().shares_ids_with(&source));
    }

    #[test]
    fn seal_round_trip() {
        let k = key();
        let sealed = k.seal(SealKind::Snapshot, None, b"hello");
        assert_eq!(sealed.len(), 5 + SEAL_OVERHEAD);
        assert_eq!(k.open(SealKind::Snapshot, None, &sealed, "x").unwrap(), b"hello");
    }

    #[test]
    fn wrong_kind_or_id_or_bit_fails() {
        let k = key();
        let id = k.blob_id(b"data");
        let sealed = k.seal(SealKind::DataBlob, Some(&id), b"data");
        assert!(k.open(SealKind::TreeBlob, Some(&id), &sealed, "x").is_err());
        let other = k.blob_id(b"other");
        assert!(k.open(SealKind::DataBlob, Some(&other), &sealed, "x").is_err());
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert!(k.open(SealKind::DataBlob, Some(&id), &bad, "x").is_err());
        }
        assert!(k.open(SealKind::DataBlob, Some(&id), &sealed[..10], "x").is_err());
    }

    #[test]
    fn blob_ids_are_keyed() {
        let a = MasterKey::from_parts([1; 32], [2; 32], [3; 32]);
        let b = MasterKey::from_parts([1; 32], [9; 32], [3; 32]);
        assert_ne!(a.blob_id(b"x"), b.blob_id(b"x"));
        assert_ne!(a.blob_id(b"x").0, *blake3::hash(b"x").as_bytes());
    }

    #[test]
    fn wrap_unwrap() {
        let params = KdfParams { memory_kib: 64, iterations: 1, parallelism: 1 };
        let kek = WrappingKey::derive(b"pw", &[7; 16], params).unwrap();
        let wrapped = kek.wrap(&key(), [0; 24]);
        let back = kek.unwrap(&wrapped).unwrap();
        assert_eq!(back.blob_id(b"a"), key().blob_id(b"a"));
        let wrong = WrappingKey::derive(b"pw2", &[7; 16], params).unwrap();
        assert!(wrong.unwrap(&wrapped).is_none());
    }

    #[test]
    fn hostile_kdf_params_rejected() {
        let params = KdfParams { memory_kib: u32::MAX, iterations: 1, parallelism: 1 };
        assert!(WrappingKey::derive(b"pw", &[0; 16], params).is_err());
    }
}
