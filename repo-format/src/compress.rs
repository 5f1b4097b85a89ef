//! Blob payload compression. The plaintext inside a sealed blob starts with one byte that says
//! how the rest is stored: `0` raw, `1` zstd. Compression is skipped when it does not make the
//! blob smaller, so incompressible data costs one byte, not zstd framing.

use std::cell::RefCell;

use crate::error::{Error, Result};

const RAW: u8 = 0;
const ZSTD: u8 = 1;

thread_local! {
    /// One zstd context per thread and level, reused from blob to blob: creating one per blob
    /// allocated and cleared its tables every time.
    static COMPRESSOR: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
        const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { RefCell::new(None) };
}

/// `data` compressed at `level` into `out` after its first byte, or `None` when that fails or
/// does not make it smaller.
fn compress_into(data: &[u8], level: i32, out: &mut Vec<u8>) -> Option<()> {
    COMPRESSOR.with_borrow_mut(|slot| {
        if slot.as_ref().is_none_or(|(l, _)| *l != level) {
            *slot = Some((level, zstd::bulk::Compressor::new(level).ok()?));
        }
        let (_, compressor) = slot.as_mut()?;
        out.resize(1 + zstd::zstd_safe::compress_bound(data.len()), 0);
        let written = compressor.compress_to_buffer(data, &mut out[1..]).ok()?;
        out.truncate(1 + written);
        (written < data.len()).then_some(())
    })
}

/// Encodes `data` as a blob payload, compressing at `level` (0 disables compression).
pub fn encode(data: &[u8], level: i32) -> Vec<u8> {
    let mut out = vec![ZSTD];
    if level > 0 && data.len() >= 64 && compress_into(data, level, &mut out).is_some() {
        return out;
    }
    out.clear();
    out.reserve(data.len() + 1);
    out.push(RAW);
    out.extend_from_slice(data);
    out
}

/// Decodes a blob payload whose plaintext must be exactly `raw_length` bytes long. The length
/// comes from the index or pack header and bounds the allocation, so a hostile payload cannot
/// inflate beyond it.
pub fn decode(payload: &[u8], raw_length: usize, name: &str) -> Result<Vec<u8>> {
    let (flag, body) =
        payload.split_first().ok_or_else(|| Error::corrupt("blob", name, "empty payload"))?;
    let data = match *flag {
        RAW => body.to_vec(),
        ZSTD => decompress(body, raw_length)
            .map_err(|e| Error::corrupt("blob", name, format!("zstd: {e}")))?,
        other => {
            return Err(Error::corrupt("blob", name, format!("unknown compression flag {other}")));
        }
    };
    if data.len() != raw_length {
        return Err(Error::corrupt(
            "blob",
            name,
            format!("{} bytes, expected {raw_length}", data.len()),
        ));
    }
    Ok(data)
}

/// Decompresses into a buffer of at most `capacity` bytes with this thread's context.
fn decompress(body: &[u8], capacity: usize) -> std::io::Result<Vec<u8>> {
    DECOMPRESSOR.with_borrow_mut(|slot| {
        if slot.is_none() {
            *slot = Some(zstd::bulk::Decompressor::new()?);
        }
        let decompressor = slot.as_mut().expect("set above");
        let mut out = Vec::with_capacity(capacity);
        decompressor.decompress_to_buffer(body, &mut out)?;
        Ok(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressible_data_shrinks_and_round_trips() {
        let data = vec![b'a'; 10_000];
        let payload = encode(&data, 3);
        assert_eq!(payload[0], ZSTD);
        assert!(payload.len() < 200);
        assert_eq!(decode(&payload, data.len(), "t").unwrap(), data);
    }

    #[test]
    fn incompressible_data_is_stored_raw() {
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        let data: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u8
            })
            .collect();
        let payload = encode(&data, 3);
        assert_eq!(payload[0], RAW);
        assert_eq!(decode(&payload, data.len(), "t").unwrap(), data);
    }

    #[test]
    fn lying_length_is_an_error_not_a_panic() {
        let payload = encode(&vec![0u8; 100_000], 3);
        assert!(decode(&payload, 10, "t").is_err());
        assert!(decode(&[9, 1, 2], 2, "t").is_err());
        assert!(decode(&[], 0, "t").is_err());
    }
}
