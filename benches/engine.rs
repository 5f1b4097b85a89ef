//! Micro-benchmarks of the stages every backup and restore runs through: chunking, sealing
//! (compress + encrypt), opening, and index lookups. Run with `cargo bench --bench engine`;
//! results and the machine they ran on are recorded in docs/benchmarks.md.

use std::hint::black_box;

use cairn_format::chunker::{Chunker, ChunkerParams};
use cairn_format::crypto::MasterKey;
use cairn_format::index::LocalIndex;
use cairn_format::pack::{self, BlobKind, PackEntry, SealedBlob};
use cairn_format::segment::{IndexSegment, IndexedPack};
use cairn_format::{BlobId, IndexId, PackId};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

/// Text-like data that compresses about 3:1, like source trees and logs.
fn corpus(len: usize) -> Vec<u8> {
    let words = ["backup ", "restore ", "chunk ", "cairn ", "pack ", "index ", "\n", "tree "];
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    let mut out = Vec::with_capacity(len + 16);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if x.is_multiple_of(5) {
            out.extend_from_slice(&x.to_le_bytes()[..3]);
        }
        out.extend_from_slice(words[(x % 8) as usize].as_bytes());
    }
    out.truncate(len);
    out
}

fn key() -> MasterKey {
    MasterKey::from_parts([1; 32], [2; 32], [3; 32])
}

fn chunking(c: &mut Criterion) {
    let data = corpus(64 << 20);
    let chunker = Chunker::new(ChunkerParams::default(), &[7; 32]).unwrap();
    let mut group = c.benchmark_group("chunker");
    group.throughput(Throughput::Bytes(data.len() as u64));
    group.sample_size(10);
    group.bench_function("fastcdc_keyed_default_sizes", |b| {
        b.iter(|| black_box(chunker.chunk_lengths(&data)));
    });
    group.bench_function("blake3_keyed_id", |b| {
        b.iter(|| black_box(key().blob_id(&data)));
    });
    group.finish();
}

fn sealing(c: &mut Criterion) {
    let data = corpus(1 << 20);
    let id = key().blob_id(&data);
    let mut group = c.benchmark_group("seal");
    group.throughput(Throughput::Bytes(data.len() as u64));
    for level in [0, 1, 3] {
        group.bench_with_input(
            BenchmarkId::new("compress_encrypt_zstd", level),
            &level,
            |b, &level| {
                b.iter(|| black_box(SealedBlob::new(&key(), BlobKind::Data, id, &data, level)));
            },
        );
    }
    let sealed = SealedBlob::new(&key(), BlobKind::Data, id, &data, 3);
    let entry = PackEntry {
        kind: BlobKind::Data,
        id,
        offset: 0,
        length: sealed.bytes.len() as u32,
        raw_length: sealed.raw_length,
    };
    group.bench_function("decrypt_decompress_verify", |b| {
        b.iter(|| black_box(pack::open_blob(&key(), &entry, &sealed.bytes).unwrap()));
    });
    group.finish();
}

fn index_lookups(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let index = LocalIndex::open(&dir.path().join("index")).unwrap();
    let blob = |i: u64| BlobId(*blake3::hash(&i.to_le_bytes()).as_bytes());
    let blobs_per_pack = 1000u64;
    for pack in 0..200u64 {
        let blobs = (0..blobs_per_pack)
            .map(|i| PackEntry {
                kind: BlobKind::Data,
                id: blob(pack * blobs_per_pack + i),
                offset: 0,
                length: 100,
                raw_length: 60,
            })
            .collect();
        let segment = IndexSegment {
            packs: vec![IndexedPack { id: PackId([pack as u8; 32]), size: 1, blobs }],
            ..IndexSegment::default()
        };
        index.ingest(&IndexId(*blake3::hash(&pack.to_le_bytes()).as_bytes()), &segment).unwrap();
    }
    let total = 200 * blobs_per_pack;
    let mut group = c.benchmark_group("index_200k_blobs");
    group.throughput(Throughput::Elements(1000));
    group.bench_function("lookup_hit_x1000", |b| {
        let mut i = 0u64;
        b.iter(|| {
            for _ in 0..1000 {
                i = (i + 7919) % total;
                black_box(index.lookup(&blob(i)).unwrap());
            }
        });
    });
    group.bench_function("lookup_miss_x1000", |b| {
        let mut i = total;
        b.iter(|| {
            for _ in 0..1000 {
                i += 1;
                black_box(index.lookup(&blob(i)).unwrap());
            }
        });
    });
    group.bench_function("lookup_many_hit_x1000", |b| {
        let ids: Vec<BlobId> = (0..1000).map(|i| blob(i * 97 % total)).collect();
        b.iter(|| black_box(index.lookup_many(&ids).unwrap()));
    });
    group.finish();
}

criterion_group!(benches, chunking, sealing, index_lookups);
criterion_main!(benches);
