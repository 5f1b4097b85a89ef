//! Packs: the objects under `data/` that hold blobs.
//!
//! Layout: `sealed blob 1 || ... || sealed blob n || sealed header || header length (u32 LE) ||
//! "CRNP"`. The header lists every blob (kind, id, offset, length, raw length), so a pack
//! describes itself and the index can be rebuilt from packs alone. A pack's id is the BLAKE3 of
//! all its bytes. Blobs are written in a shuffled order so that the order of chunks in a file
//! does not show in the pack layout.

use serde::{Deserialize, Serialize};

use crate::compress;
use crate::crypto::{MasterKey, SEAL_OVERHEAD, SealKind};
use crate::encoding::{self, Tag};
use crate::error::{Error, Result};
use crate::id::{BlobId, PackId, random_bytes};

/// Current pack-header version.
pub const PACK_HEADER_VERSION: u8 = 1;
/// Magic bytes at the very end of every pack.
pub const PACK_MAGIC: &[u8; 4] = b"CRNP";
/// Length of the trailer: header length and magic.
pub const TRAILER_LEN: usize = 8;
/// Largest plaintext blob accepted when reading (a hostile header cannot ask for more).
pub const MAX_BLOB_SIZE: u32 = 1 << 30;

/// Data blobs hold file contents; tree blobs hold directories and content lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BlobKind {
    Data,
    Tree,
}

impl BlobKind {
    /// How blobs of this kind are sealed.
    pub fn seal_kind(self) -> SealKind {
        match self {
            BlobKind::Data => SealKind::DataBlob,
            BlobKind::Tree => SealKind::TreeBlob,
        }
    }
}

/// One blob's place in a pack.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackEntry {
    pub kind: BlobKind,
    pub id: BlobId,
    /// Offset of the sealed blob from the start of the pack.
    pub offset: u32,
    /// Length of the sealed blob.
    pub length: u32,
    /// Length of the plaintext.
    pub raw_length: u32,
}

/// A blob compressed and sealed, ready to be placed in a pack.
pub struct SealedBlob {
    pub kind: BlobKind,
    pub id: BlobId,
    pub raw_length: u32,
    pub bytes: Vec<u8>,
}

impl SealedBlob {
    /// Compresses at `level` and seals `plaintext`, whose id is `id`.
    pub fn new(key: &MasterKey, kind: BlobKind, id: BlobId, plaintext: &[u8], level: i32) -> Self {
        let payload = compress::encode(plaintext, level);
        Self {
            kind,
            id,
            raw_length: plaintext.len() as u32,
            bytes: key.seal(kind.seal_kind(), Some(&id), &payload),
        }
    }
}

/// Opens one sealed blob read from a pack and checks its plaintext against its id.
pub fn open_blob(key: &MasterKey, entry: &PackEntry, sealed: &[u8]) -> Result<Vec<u8>> {
    let name = entry.id.to_hex();
    let payload = key.open(entry.kind.seal_kind(), Some(&entry.id), sealed, &name)?;
    let plain = compress::decode(&payload, entry.raw_length as usize, &name)?;
    if key.blob_id(&plain) != entry.id {
        return Err(Error::corrupt("blob", name, "plaintext does not hash to its id"));
    }
    Ok(plain)
}

/// Collects sealed blobs for one pack.
#[derive(Default)]
pub struct PackWriter {
    blobs: Vec<SealedBlob>,
    size: usize,
}

/// A finished pack: its id, bytes and the header entries.
pub struct FinishedPack {
    pub id: PackId,
    pub bytes: Vec<u8>,
    pub entries: Vec<PackEntry>,
}

impl PackWriter {
    /// Adds a blob.
    pub fn push(&mut self, blob: SealedBlob) {
        self.size += blob.bytes.len();
        self.blobs.push(blob);
    }

    /// Bytes of sealed blobs so far.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Number of blobs so far.
    pub fn len(&self) -> usize {
        self.blobs.len()
    }

    /// True when no blob was added.
    pub fn is_empty(&self) -> bool {
        self.blobs.is_empty()
    }

    /// Shuffles the blobs and lays out the pack.
    pub fn finish(mut self, key: &MasterKey) -> FinishedPack {
        shuffle(&mut self.blobs, u64::from_le_bytes(random_bytes()));
        self.finish_in_order(key, random_bytes())
    }

    /// Lays out the blobs in the order given, with a fixed header nonce (golden vectors).
    pub fn finish_in_order(self, key: &MasterKey, header_nonce: [u8; 24]) -> FinishedPack {
        let mut bytes = Vec::with_capacity(self.size + 64 + 80 * self.blobs.len());
        let mut entries = Vec::with_capacity(self.blobs.len());
        for blob in self.blobs {
            entries.push(PackEntry {
                kind: blob.kind,
                id: blob.id,
                offset: bytes.len() as u32,
                length: blob.bytes.len() as u32,
                raw_length: blob.raw_length,
            });
            bytes.extend_from_slice(&blob.bytes);
        }
        let header = encoding::encode(Tag::PackHeader, PACK_HEADER_VERSION, &entries);
        let sealed = key.seal_with_nonce(SealKind::PackHeader, None, &header, header_nonce);
        bytes.extend_from_slice(&sealed);
        bytes.extend_from_slice(&(sealed.len() as u32).to_le_bytes());
        bytes.extend_from_slice(PACK_MAGIC);
        FinishedPack { id: PackId::hash_of(&bytes), bytes, entries }
    }
}

/// Fisher-Yates with xorshift; the order only has to be unpredictable without the random seed.
fn shuffle<T>(items: &mut [T], seed: u64) {
    let mut x = seed | 1;
    for i in (1..items.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        items.swap(i, (x % (i as u64 + 1)) as usize);
    }
}

/// Reads the sealed header's length from a pack's trailer.
pub fn header_length(pack: &PackId, pack_size: u64, trailer: &[u8]) -> Result<u32> {
    let name = pack.to_hex();
    let Some((length, magic)) = trailer.split_first_chunk::<4>() else {
        return Err(Error::corrupt("pack", name, "trailer too short"));
    };
    if magic != PACK_MAGIC {
        return Err(Error::corrupt("pack", name, "trailer magic missing"));
    }
    let length = u32::from_le_bytes(*length);
    if u64::from(length) + TRAILER_LEN as u64 > pack_size || (length as usize) < SEAL_OVERHEAD {
        return Err(Error::corrupt(
            "pack",
            name,
            format!("header length {length} does not fit a pack of {pack_size} bytes"),
        ));
    }
    Ok(length)
}

/// Opens a pack's sealed header and checks every entry lies inside the blob area.
pub fn decode_header(
    key: &MasterKey,
    pack: &PackId,
    pack_size: u64,
    sealed: &[u8],
) -> Result<Vec<PackEntry>> {
    let name = pack.to_hex();
    let plain = key.open(SealKind::PackHeader, None, sealed, &name)?;
    let entries: Vec<PackEntry> =
        encoding::decode(Tag::PackHeader, PACK_HEADER_VERSION, &plain, &name)?;
    let blob_area = pack_size - sealed.len() as u64 - TRAILER_LEN as u64;
    for entry in &entries {
        let end = u64::from(entry.offset) + u64::from(entry.length);
        if end > blob_area
            || (entry.length as usize) < SEAL_OVERHEAD
            || entry.raw_length > MAX_BLOB_SIZE
        {
            return Err(Error::corrupt(
                "pack header",
                name,
                format!("entry for blob {} lies outside the pack", entry.id),
            ));
        }
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> MasterKey {
        MasterKey::from_parts([1; 32], [2; 32], [3; 32])
    }

    fn pack_of(texts: &[&[u8]]) -> FinishedPack {
        let key = key();
        let mut writer = PackWriter::default();
        for text in texts {
            let id = key.blob_id(text);
            writer.push(SealedBlob::new(&key, BlobKind::Data, id, text, 3));
        }
        writer.finish(&key)
    }

    #[test]
    fn pack_round_trip() {
        let key = key();
        let pack = pack_of(&[b"alpha", b"beta", &[0u8; 5000]]);
        assert_eq!(PackId::hash_of(&pack.bytes), pack.id);
        let size = pack.bytes.len() as u64;
        let trailer = &pack.bytes[pack.bytes.len() - TRAILER_LEN..];
        let length = header_length(&pack.id, size, trailer).unwrap() as usize;
        let start = pack.bytes.len() - TRAILER_LEN - length;
        let entries =
            decode_header(&key, &pack.id, size, &pack.bytes[start..start + length]).unwrap();
        assert_eq!(entries, pack.entries);
        let mut found = Vec::new();
        for e in &entries {
            let range = e.offset as usize..(e.offset + e.length) as usize;
            found.push(open_blob(&key, e, &pack.bytes[range]).unwrap());
        }
        found.sort();
        assert_eq!(found, vec![vec![0u8; 5000], b"alpha".to_vec(), b"beta".to_vec()]);
    }

    #[test]
    fn damaged_trailer_or_header_is_an_error() {
        let key = key();
        let pack = pack_of(&[b"alpha"]);
        let size = pack.bytes.len() as u64;
        let mut trailer = pack.bytes[pack.bytes.len() - TRAILER_LEN..].to_vec();
        trailer[7] = b'X';
        assert!(header_length(&pack.id, size, &trailer).is_err());
        let huge = [&u32::MAX.to_le_bytes()[..], PACK_MAGIC].concat();
        assert!(header_length(&pack.id, size, &huge).is_err());
        assert!(decode_header(&key, &pack.id, size, &[0u8; 60]).is_err());
    }

    #[test]
    fn shuffle_is_a_permutation() {
        let mut v: Vec<u32> = (0..100).collect();
        shuffle(&mut v, 12345);
        assert_ne!(v, (0..100).collect::<Vec<_>>());
        v.sort_unstable();
        assert_eq!(v, (0..100).collect::<Vec<_>>());
    }
}
