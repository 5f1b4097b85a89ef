//! Index scale: builds a repository whose index holds 10 million blob entries (override with
//! `CAIRN_SCALE_BLOBS`), measures lookups per second against the RocksDB local index, then runs
//! a real `cairn backup` of new data against that repository and reports its peak RSS. Memory
//! must stay bounded: restic keeps about 100 bytes per blob in RAM (1 GB for 10 million).
//!
//!     cargo build --release && cargo bench --bench index_scale
//!
//! Not part of the test suite (minutes of work); results go to docs/benchmarks.md.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use cairn_format::backend::LocalBackend;
use cairn_format::crypto::KdfParams;
use cairn_format::pack::{BlobKind, PackEntry};
use cairn_format::segment::{IndexSegment, IndexedPack};
use cairn_format::{BlobId, InitOptions, PackId, Repository};

const PER_SEGMENT: u64 = 200_000;
const PER_PACK: u64 = 1000;

fn synthetic_blob(i: u64) -> BlobId {
    BlobId(*blake3::hash(&i.to_le_bytes()).as_bytes())
}

fn build(repo: &Repository, blobs: u64) {
    let started = Instant::now();
    for first in (0..blobs).step_by(PER_SEGMENT as usize) {
        let last = (first + PER_SEGMENT).min(blobs);
        let packs = (first..last)
            .step_by(PER_PACK as usize)
            .map(|p| IndexedPack {
                id: PackId(*blake3::hash(format!("pack {p}").as_bytes()).as_bytes()),
                size: 16 << 20,
                blobs: (p..(p + PER_PACK).min(last))
                    .map(|i| PackEntry {
                        kind: BlobKind::Data,
                        id: synthetic_blob(i),
                        offset: 0,
                        length: 1 << 20,
                        raw_length: 1 << 20,
                    })
                    .collect(),
            })
            .collect();
        repo.save_segment(&IndexSegment { packs, ..IndexSegment::default() }).unwrap();
    }
    println!(
        "| building the index ({} sealed segments written and ingested) | {:.1} s |",
        blobs.div_ceil(PER_SEGMENT),
        started.elapsed().as_secs_f64()
    );
}

fn lookups(repo: &Repository, blobs: u64) {
    let n = 200_000u64;
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    let started = Instant::now();
    for _ in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        assert!(repo.index().lookup(&synthetic_blob(x % blobs)).unwrap().is_some());
    }
    let hits = n as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    for i in 0..n {
        assert!(repo.index().lookup(&synthetic_blob(blobs + i)).unwrap().is_none());
    }
    let misses = n as f64 / started.elapsed().as_secs_f64();
    println!("| random lookups, hits | {:.0} k/s |", hits / 1000.0);
    println!(
        "| lookups of absent blobs (the dedup miss path, bloom filters) | {:.0} k/s |",
        misses / 1000.0
    );
}

/// Runs the backup under GNU time, whose own small process forks it: measuring from this
/// process would count this process's memory, which a forked child inherits in its
/// high-water mark.
fn peak_rss_of_backup(cairn: &Path, repo: &Path, cache: &Path, data: &Path) {
    let stats = repo.with_file_name("time.txt");
    let started = Instant::now();
    let status = Command::new("/usr/bin/time")
        .args(["-f", "%M", "-o"])
        .arg(&stats)
        .arg(cairn)
        .args(["-q", "backup"])
        .arg(data)
        .env("CAIRN_REPOSITORY", repo)
        .env("CAIRN_PASSWORD", "scale")
        .env("CAIRN_CACHE_DIR", cache)
        .status()
        .expect("GNU time is installed (apt-get install time)");
    assert!(status.success());
    let rss_kib: u64 = std::fs::read_to_string(&stats).unwrap().trim().parse().unwrap();
    println!(
        "| `cairn backup` of 512 MiB of new, incompressible data against it | {:.1} s |",
        started.elapsed().as_secs_f64()
    );
    println!("| peak RSS of that backup | {} MiB |", rss_kib / 1024);
}

/// Incompressible bytes, written a block at a time so this process stays small.
fn write_noise(path: &Path, len: usize) {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    let mut block = vec![0u8; 1 << 20];
    for _ in 0..len >> 20 {
        for byte in &mut block {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *byte = (x >> 32) as u8;
        }
        out.write_all(&block).unwrap();
    }
}

fn main() {
    let blobs: u64 =
        std::env::var("CAIRN_SCALE_BLOBS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000_000);
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let cairn = Path::new(&target).join("release/cairn");
    assert!(cairn.exists(), "build the release binary first: cargo build --release");
    let work = tempfile::Builder::new().prefix("cairn-scale-").tempdir_in("/var/tmp").unwrap();
    let (repo_dir, cache) = (work.path().join("repo"), work.path().join("cache"));
    let options = InitOptions {
        kdf: KdfParams { memory_kib: 1024, iterations: 1, parallelism: 1 },
        ..InitOptions::default()
    };
    let repo = Repository::init(Arc::new(LocalBackend::new(&repo_dir)), b"scale", &options, &cache)
        .unwrap();
    println!(
        "`cargo bench --bench index_scale`: a repository whose index segments list {blobs} blobs,"
    );
    println!("ingested into the RocksDB local index.\n");
    println!("| measurement | result |\n|---|---:|");
    build(&repo, blobs);
    lookups(&repo, blobs);
    drop(repo);
    let data = work.path().join("data");
    std::fs::create_dir(&data).unwrap();
    write_noise(&data.join("new-data"), 512 << 20);
    peak_rss_of_backup(&cairn, &repo_dir, &cache, &data);
    println!(
        "\nFor comparison, restic keeps about 100 bytes per blob in RAM ({} MB for {blobs} blobs) before it reads a file.",
        blobs * 100 / 1_000_000
    );
}
