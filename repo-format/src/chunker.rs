//! Content-defined chunking: FastCDC (2020 variant, normalization level 1) with a gear table
//! derived from the repository's secret chunker key, so chunk boundaries cannot be predicted
//! from known plaintext without the key.
//!
//! Invariants (checked by proptest): every chunk but the last is between `min_size` and
//! `max_size` bytes; chunks concatenate to the input; boundaries resynchronise shortly after an
//! insertion.

use std::io::{self, Read};

use fastcdc::v2020::{MASKS, cut_gear, logarithm2};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Chunk size bounds, stored in the repository config.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkerParams {
    pub min_size: u32,
    pub avg_size: u32,
    pub max_size: u32,
}

impl Default for ChunkerParams {
    /// 128 KiB / 512 KiB / 2 MiB: see docs/format.md "Choice of chunk sizes".
    fn default() -> Self {
        Self { min_size: 128 * 1024, avg_size: 512 * 1024, max_size: 2 * 1024 * 1024 }
    }
}

impl ChunkerParams {
    /// Checks the bounds FastCDC requires, so a hostile config cannot make it panic.
    pub fn validate(&self) -> Result<()> {
        let ok = (64..=1 << 20).contains(&self.min_size)
            && (256..=1 << 22).contains(&self.avg_size)
            && self.avg_size.is_power_of_two()
            && (1024..=1 << 24).contains(&self.max_size)
            && self.min_size < self.avg_size
            && self.avg_size < self.max_size;
        if ok {
            Ok(())
        } else {
            Err(Error::InvalidParameter(format!(
                "chunk sizes must satisfy 64 <= min < avg < max <= 16 MiB with avg a power of two: {self:?}"
            )))
        }
    }
}

/// A keyed FastCDC chunker.
pub struct Chunker {
    params: ChunkerParams,
    gear: Box<[u64; 256]>,
    gear_shifted: Box<[u64; 256]>,
    mask_small: u64,
    mask_large: u64,
}

impl Chunker {
    /// Builds the chunker; the gear table is the first 2 KiB of BLAKE3's keyed output stream
    /// for the input `"cairn gear table v1"`, read as little-endian u64s.
    pub fn new(params: ChunkerParams, key: &[u8; 32]) -> Result<Self> {
        params.validate()?;
        let mut stream = [0u8; 256 * 8];
        blake3::Hasher::new_keyed(key)
            .update(b"cairn gear table v1")
            .finalize_xof()
            .fill(&mut stream);
        let mut gear = Box::new([0u64; 256]);
        let mut gear_shifted = Box::new([0u64; 256]);
        for (i, bytes) in stream.chunks_exact(8).enumerate() {
            gear[i] = u64::from_le_bytes(bytes.try_into().expect("8 bytes"));
            gear_shifted[i] = gear[i] << 1;
        }
        let bits = logarithm2(params.avg_size) as usize;
        Ok(Self {
            params,
            gear,
            gear_shifted,
            mask_small: MASKS[bits + 1],
            mask_large: MASKS[bits - 1],
        })
    }

    /// The bounds this chunker cuts with.
    pub fn params(&self) -> ChunkerParams {
        self.params
    }

    /// Length of the first chunk of `data`. `data` must hold at least `max_size` bytes unless
    /// it is the end of the stream.
    pub fn cut(&self, data: &[u8]) -> usize {
        let (_, length) = cut_gear(
            data,
            self.params.min_size as usize,
            self.params.avg_size as usize,
            self.params.max_size as usize,
            self.mask_small,
            self.mask_large,
            self.mask_small << 1,
            self.mask_large << 1,
            &self.gear,
            &self.gear_shifted,
        );
        length
    }

    /// Cuts a whole in-memory buffer into chunk lengths.
    pub fn chunk_lengths(&self, mut data: &[u8]) -> Vec<usize> {
        let mut lengths = Vec::new();
        while !data.is_empty() {
            let n = self.cut(data);
            lengths.push(n);
            data = &data[n..];
        }
        lengths
    }

    /// Streams chunks out of a reader with one buffer.
    pub fn reader<R: Read>(&self, source: R) -> ChunkReader<'_, R> {
        self.reader_with_buffer(source, Vec::new())
    }

    /// Like [`Chunker::reader`], reusing `buffer` (see [`ChunkReader::into_buffer`]), so a
    /// walk over many small files does not allocate and fault in a fresh buffer per file.
    pub fn reader_with_buffer<R: Read>(
        &self,
        source: R,
        mut buffer: Vec<u8>,
    ) -> ChunkReader<'_, R> {
        buffer.resize(2 * self.params.max_size as usize, 0);
        ChunkReader { chunker: self, source, buffer, start: 0, end: 0, eof: false }
    }
}

/// Yields the chunks of a stream, one borrowed slice at a time.
pub struct ChunkReader<'c, R> {
    chunker: &'c Chunker,
    source: R,
    buffer: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
}

impl<R: Read> ChunkReader<'_, R> {
    /// The next chunk, or `None` at the end of the stream.
    pub fn next_chunk(&mut self) -> io::Result<Option<&[u8]>> {
        self.fill()?;
        if self.start == self.end {
            return Ok(None);
        }
        let length = self.chunker.cut(&self.buffer[self.start..self.end]);
        let chunk = &self.buffer[self.start..self.start + length];
        self.start += length;
        Ok(Some(chunk))
    }

    /// Gives the buffer back for the next stream.
    pub fn into_buffer(self) -> Vec<u8> {
        self.buffer
    }

    /// Ensures `max_size` bytes are buffered, or everything up to the end of the stream.
    fn fill(&mut self) -> io::Result<()> {
        let max = self.chunker.params.max_size as usize;
        if self.eof || self.end - self.start >= max {
            return Ok(());
        }
        self.buffer.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
        while self.end < max && !self.eof {
            match self.source.read(&mut self.buffer[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn small_chunker() -> Chunker {
        let params = ChunkerParams { min_size: 256, avg_size: 1024, max_size: 4096 };
        Chunker::new(params, &[42; 32]).unwrap()
    }

    /// xorshift: reproducible pseudo-random bytes without depending on `rand`'s algorithms.
    fn noise(seed: u64, len: usize) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    fn stream_chunks(chunker: &Chunker, data: &[u8]) -> Vec<Vec<u8>> {
        let mut reader = chunker.reader(data);
        let mut out = Vec::new();
        while let Some(chunk) = reader.next_chunk().unwrap() {
            out.push(chunk.to_vec());
        }
        out
    }

    proptest! {
        #[test]
        fn chunks_respect_bounds_and_concatenate(seed in any::<u64>(), len in 0usize..40_000) {
            let chunker = small_chunker();
            let data = noise(seed, len);
            let chunks = stream_chunks(&chunker, &data);
            prop_assert_eq!(chunks.concat(), data.clone());
            for (i, chunk) in chunks.iter().enumerate() {
                prop_assert!(chunk.len() <= 4096);
                if i + 1 < chunks.len() {
                    prop_assert!(chunk.len() >= 256);
                }
            }
            let lengths: Vec<usize> = chunks.iter().map(Vec::len).collect();
            prop_assert_eq!(lengths, chunker.chunk_lengths(&data));
            // A reused (dirty) buffer changes nothing.
            let mut reused = chunker.reader_with_buffer(&data[..], vec![0xaa; 10]);
            let mut again = Vec::new();
            while let Some(chunk) = reused.next_chunk().unwrap() {
                again.push(chunk.to_vec());
            }
            prop_assert_eq!(again, chunks);
        }

        /// Normalized chunking may need a few chunks to fall back into step after an edit
        /// (a candidate cut can pass one size-dependent mask and not the other), but every cut
        /// well past the insertion is shared.
        #[test]
        fn boundaries_resync_after_insertion(seed in any::<u64>(), at in 0usize..50_000, insert in 1usize..100) {
            let chunker = small_chunker();
            let data = noise(seed, 200_000);
            let mut edited = data[..at].to_vec();
            edited.extend(noise(seed ^ 0xdead, insert));
            edited.extend_from_slice(&data[at..]);
            let cuts = |d: &[u8]| -> Vec<usize> {
                chunker.chunk_lengths(d).iter().scan(0, |end, n| { *end += n; Some(*end) }).collect()
            };
            let after: std::collections::HashSet<usize> = cuts(&edited).into_iter().collect();
            for cut in cuts(&data).into_iter().filter(|&c| c > at + 48 * 1024) {
                prop_assert!(after.contains(&(cut + insert)), "cut at {} not shared", cut);
            }
        }
    }

    #[test]
    fn key_changes_boundaries() {
        let data = noise(7, 100_000);
        let params = small_chunker().params();
        let a = Chunker::new(params, &[1; 32]).unwrap().chunk_lengths(&data);
        let b = Chunker::new(params, &[2; 32]).unwrap().chunk_lengths(&data);
        assert_ne!(a, b);
    }

    #[test]
    fn invalid_params_are_errors() {
        let bad = ChunkerParams { min_size: 1, avg_size: 1000, max_size: 10 };
        assert!(Chunker::new(bad, &[0; 32]).is_err());
    }
}
