//! The envelope every structured object shares: one tag byte saying what the bytes are, one
//! version byte, then the postcard encoding of the structure. The tag and version are read
//! before postcard is involved, so a future version can change the body freely.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// What an encoded structure is; the first byte of its plaintext.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Tag {
    Config = b'C',
    KeyFile = b'K',
    PackHeader = b'H',
    IndexSegment = b'I',
    Snapshot = b'S',
    Tree = b'T',
    ContentNode = b'L',
    Lock = b'O',
}

impl Tag {
    fn describe(self) -> &'static str {
        match self {
            Tag::Config => "config",
            Tag::KeyFile => "key file",
            Tag::PackHeader => "pack header",
            Tag::IndexSegment => "index segment",
            Tag::Snapshot => "snapshot",
            Tag::Tree => "tree",
            Tag::ContentNode => "content list",
            Tag::Lock => "lock",
        }
    }
}

/// The version byte of an envelope, to pick the structure of an older version.
pub fn version_of(bytes: &[u8]) -> Option<u8> {
    bytes.get(1).copied()
}

/// `tag || version || postcard(value)`.
pub fn encode<T: Serialize>(tag: Tag, version: u8, value: &T) -> Vec<u8> {
    let out = vec![tag as u8, version];
    postcard::to_extend(value, out).expect("in-memory encoding cannot fail")
}

/// Decodes an envelope written by [`encode`], accepting versions up to `supported`. Trailing
/// bytes are an error: a structure has exactly one encoding.
pub fn decode<T: DeserializeOwned>(tag: Tag, supported: u8, bytes: &[u8], name: &str) -> Result<T> {
    let what = tag.describe();
    let [found_tag, version, body @ ..] = bytes else {
        return Err(Error::corrupt(what, name, "shorter than its 2-byte envelope"));
    };
    if *found_tag != tag as u8 {
        return Err(Error::corrupt(
            what,
            name,
            format!("tag byte {found_tag:#04x}, expected {:#04x}", tag as u8),
        ));
    }
    if *version == 0 || *version > supported {
        return Err(Error::UnsupportedVersion {
            what,
            version: u32::from(*version),
            supported: u32::from(supported),
        });
    }
    let (value, rest) = postcard::take_from_bytes(body)
        .map_err(|e| Error::corrupt(what, name, format!("undecodable: {e}")))?;
    if !rest.is_empty() {
        return Err(Error::corrupt(what, name, format!("{} trailing bytes", rest.len())));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_round_trip_and_checks() {
        let bytes = encode(Tag::Tree, 1, &(7u32, "x".to_string()));
        assert_eq!(&bytes[..2], b"T\x01");
        let back: (u32, String) = decode(Tag::Tree, 1, &bytes, "t").unwrap();
        assert_eq!(back, (7, "x".into()));
        assert!(decode::<(u32, String)>(Tag::Snapshot, 1, &bytes, "t").is_err());
        let mut future = bytes.clone();
        future[1] = 2;
        assert!(matches!(
            decode::<(u32, String)>(Tag::Tree, 1, &future, "t"),
            Err(Error::UnsupportedVersion { .. })
        ));
        let mut long = bytes.clone();
        long.push(0);
        assert!(decode::<(u32, String)>(Tag::Tree, 1, &long, "t").is_err());
        assert!(decode::<(u32, String)>(Tag::Tree, 1, &bytes[..3], "t").is_err());
        assert!(decode::<(u32, String)>(Tag::Tree, 1, &[], "t").is_err());
    }
}
