//! Blob payload compression. The plaintext inside a sealed blob starts with one byte that says
//! how the rest is stored: `0` raw, `1` zstd. Compression is skipped when it does not make the
//! blob smaller, so incompressible data costs one byte, not zstd framing.

use crate::error::{Error, Result};

const RAW: u8 = 0;
const ZSTD: u8 = 1;

/// Encodes `data` as a blob payload, compressing at `level` (0 disables compression).
pub fn encode(data: &[u8], level: i32) -> Vec<u8> {
    if level > 0
        && data.len() >= 64
        && let Ok(compressed) = zstd::bulk::compress(data, level)
        && compressed.len() < data.len()
    {
        let mut out = Vec::with_capacity(compressed.len() + 1);
        out.push(ZSTD);
        out.extend_from_slice(&compressed);
        return out;
    }
    let mut out = Vec::with_capacity(data.len() + 1);
    out.push(RAW);
    out.extend_from_slice(data);
    out
}

/// Decodes a blob payload whose plaintext must be exactly `raw_length` bytes long. The length
/// comes from the index or pack header and bounds the allocation, so a hostile payload cannot
/// inflate beyond it.
pub fn decode(payload: &[u8], raw_length: usize, name: &str) -> Result<Vec<u8>> {
    let (flag, body) = payload
        .split_first()
        .ok_or_else(|| Error::corrupt("blob", name, "empty payload"))?;
    let data = match *flag {
        RAW => body.to_vec(),
        ZSTD => zstd::bulk::decompress(body, raw_length)
            .map_err(|e| Error::corrupt("blob", name, format!("zstd: {e}")))?,
        other => {
            return Err(Error::corrupt(
                "blob",
                name,
                format!("unknown compression flag {other}"),
            ));
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
