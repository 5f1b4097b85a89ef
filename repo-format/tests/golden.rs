//! Golden vectors: fixed inputs, fixed keys and nonces, and the exact bytes every encoding
//! must produce, checked in under `testdata/`. A failure here means the on-disk format
//! changed; released encodings are never edited, a new version is added instead.
//! `CAIRN_BLESS_GOLDEN=1 cargo test -p cairn-format --test golden` rewrites the files (only
//! for a new, unreleased encoding).

use std::path::PathBuf;

use cairn_format::chunker::{Chunker, ChunkerParams};
use cairn_format::config::{Config, ImageChunking};
use cairn_format::content::{Content, ContentChild, ContentEntry, ContentNode};
use cairn_format::crypto::{KdfParams, MasterKey, SealKind, WrappingKey};
use cairn_format::key::KeyFile;
use cairn_format::pack::{self, BlobKind, PackEntry, PackWriter, SealedBlob};
use cairn_format::segment::{IndexSegment, IndexedPack, MarkedPack};
use cairn_format::snapshot::{BackupSummary, Chunking, Snapshot};
use cairn_format::tree::{Node, NodeKind, Tree, Xattr};
use cairn_format::{BlobId, IndexId, PackId, RepositoryId, SnapshotId, compress};

fn key() -> MasterKey {
    MasterKey::from_parts([0x11; 32], [0x22; 32], [0x33; 32])
}

/// The crate directory, from cargo at run time: a test binary reused from a build in another
/// checkout (one target directory shared between clones) must still read this checkout's
/// files.
fn testdata_root() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
}

fn golden(name: &str, actual: &[u8]) {
    let path = testdata_root().join("testdata").join(format!("{name}.hex"));
    let mut hex_text = String::new();
    for line in hex::encode(actual).as_bytes().chunks(64) {
        hex_text.push_str(std::str::from_utf8(line).unwrap());
        hex_text.push('\n');
    }
    if std::env::var_os("CAIRN_BLESS_GOLDEN").is_some() {
        std::fs::write(&path, hex_text).unwrap();
        return;
    }
    let expected =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        expected, hex_text,
        "{name} changed: the on-disk format is not what testdata/{name}.hex says"
    );
}

/// xorshift64: reproducible input bytes without depending on any RNG crate.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn blob_id_is_keyed_blake3() {
    let id = key().blob_id(b"cairn");
    golden("blob_id", id.as_bytes());
    assert_eq!(id.0, *blake3::keyed_hash(&[0x22; 32], b"cairn").as_bytes());
}

#[test]
fn chunk_boundaries() {
    let params = ChunkerParams { min_size: 1024, avg_size: 4096, max_size: 16384 };
    let chunker = Chunker::new(params, &[0x33; 32]).unwrap();
    let lengths = chunker.chunk_lengths(&noise(0x0123_4567_89ab_cdef, 100_000));
    let bytes: Vec<u8> = lengths.iter().flat_map(|&l| (l as u32).to_le_bytes()).collect();
    golden("chunk_lengths_u32le", &bytes);
}

#[test]
fn sealed_object_layout() {
    let sealed = key().seal_with_nonce(SealKind::Snapshot, None, b"plaintext", [0x44; 24]);
    golden("sealed_snapshot_kind", &sealed);
    assert_eq!(&sealed[..24], &[0x44; 24]);
    assert_eq!(key().open(SealKind::Snapshot, None, &sealed, "v").unwrap(), b"plaintext");
}

#[test]
fn config() {
    let config = Config {
        id: RepositoryId([0x55; 32]),
        chunker: ChunkerParams { min_size: 256 << 10, avg_size: 1 << 20, max_size: 4 << 20 },
        pack_size: 16 << 20,
        compression_level: 3,
        created_ns: 1_763_769_600_000_000_000,
        image_chunking: ImageChunking {
            chunker: ChunkerParams { min_size: 32 << 10, avg_size: 128 << 10, max_size: 512 << 10 },
            from_size: 1 << 30,
        },
        image_compression_level: 1,
    };
    golden("config_plain", &config.encode());
    let sealed = key().seal_with_nonce(SealKind::Config, None, &config.encode(), [0x66; 24]);
    golden("config_sealed", &sealed);
    assert_eq!(Config::open(&key(), &sealed).unwrap(), config);
}

#[test]
fn key_file() {
    let kdf = KdfParams { memory_kib: 64, iterations: 1, parallelism: 1 };
    let salt = [0x77; 16];
    let wrapping = WrappingKey::derive(b"password", &salt, kdf).unwrap();
    let file = KeyFile {
        created_ns: 1_763_769_600_000_000_000,
        hostname: "host".into(),
        username: "user".into(),
        kdf,
        salt,
        wrapped: wrapping.wrap(&key(), [0x88; 24]),
    };
    let (id, bytes) = file.encode();
    golden("key_file", &bytes);
    let back = KeyFile::decode(&id, &bytes).unwrap();
    assert_eq!(back.unlock(b"password").unwrap().unwrap().blob_id(b"x"), key().blob_id(b"x"));
    assert!(back.unlock(b"wrong").unwrap().is_none());
}

fn fixed_blob(data: &[u8], nonce: u8) -> SealedBlob {
    let id = key().blob_id(data);
    SealedBlob {
        kind: BlobKind::Data,
        id,
        raw_length: data.len() as u32,
        bytes: key().seal_with_nonce(
            SealKind::DataBlob,
            Some(&id),
            &compress::encode(data, 0),
            [nonce; 24],
        ),
    }
}

#[test]
fn pack() {
    let mut writer = PackWriter::default();
    writer.push(fixed_blob(b"first blob", 0x91));
    writer.push(fixed_blob(b"second", 0x92));
    let pack = writer.finish_in_order(&key(), [0x93; 24]);
    golden("pack", &pack.bytes);
    let size = pack.bytes.len() as u64;
    let trailer = &pack.bytes[pack.bytes.len() - pack::TRAILER_LEN..];
    let length = pack::header_length(&pack.id, size, trailer).unwrap() as usize;
    let header = &pack.bytes
        [pack.bytes.len() - pack::TRAILER_LEN - length..pack.bytes.len() - pack::TRAILER_LEN];
    let entries = pack::decode_header(&key(), &pack.id, size, header).unwrap();
    assert_eq!(entries, pack.entries);
    let first = &entries[0];
    let sealed = &pack.bytes[first.offset as usize..(first.offset + first.length) as usize];
    assert_eq!(pack::open_blob(&key(), first, sealed).unwrap(), b"first blob");
}

#[test]
fn zstd_payload_decodes() {
    // Encoders may change between zstd releases; what must never change is that these bytes
    // decode to this plaintext.
    let plain =
        b"cairn cairn cairn cairn cairn cairn cairn cairn cairn cairn cairn cairn".repeat(4);
    let path = testdata_root().join("testdata/zstd_payload.hex");
    if std::env::var_os("CAIRN_BLESS_GOLDEN").is_some() {
        golden("zstd_payload", &compress::encode(&plain, 3));
    }
    let text: String = std::fs::read_to_string(path).unwrap().split_whitespace().collect();
    let payload = hex::decode(text).unwrap();
    assert_eq!(payload[0], 1, "flag byte 1 = zstd");
    assert_eq!(compress::decode(&payload, plain.len(), "golden").unwrap(), plain);
}

fn entry(n: u8) -> PackEntry {
    PackEntry {
        kind: BlobKind::Tree,
        id: BlobId([n; 32]),
        offset: 300,
        length: 5000,
        raw_length: 70_000,
    }
}

#[test]
fn index_segment() {
    let segment = IndexSegment {
        packs: vec![IndexedPack {
            id: PackId([0xaa; 32]),
            size: 16_777_216,
            blobs: vec![entry(1), entry(2)],
        }],
        supersedes: vec![IndexId([0xbb; 32])],
        marked: vec![MarkedPack { pack: PackId([0xaa; 32]), since_s: 1_763_769_600 }],
    };
    golden("index_segment_plain", &segment.encode());
}

/// A version 1 segment (golden bytes written by the version that made them) still opens.
#[test]
fn version_1_index_segment_still_decodes() {
    let path = testdata_root().join("testdata/index_segment_v1_plain.hex");
    let text = std::fs::read_to_string(path).unwrap();
    let plain = hex::decode(text.split_whitespace().collect::<String>()).unwrap();
    let sealed = key().seal(SealKind::IndexSegment, None, &plain);
    let id = IndexId::hash_of(&sealed);
    let segment = IndexSegment::open(&key(), &id, &sealed).unwrap();
    assert_eq!(segment.packs[0].blobs.len(), 2);
    assert!(segment.supersedes.is_empty() && segment.marked.is_empty());
}

fn node(name: &[u8], kind: NodeKind) -> Node {
    Node {
        name: name.to_vec(),
        kind,
        mode: 0o644,
        uid: 1000,
        gid: 100,
        user: "ann".into(),
        group: "users".into(),
        mtime_ns: 1_700_000_000_123_456_789,
        atime_ns: 1_700_000_001_000_000_000,
        ctime_ns: 1_700_000_002_000_000_000,
        inode: 4242,
        device: 2049,
        nlink: 1,
        size: 70_000,
        xattrs: vec![Xattr { name: b"user.tag".to_vec(), value: b"v".to_vec() }],
    }
}

#[test]
fn tree_and_content() {
    let content = Content::Inline(vec![
        ContentEntry::Data { id: BlobId([0xbb; 32]), length: 65_536 },
        ContentEntry::Zero { length: 4464 },
    ]);
    let tree = Tree {
        nodes: vec![
            node(b"dir", NodeKind::Directory { subtree: BlobId([0xcc; 32]) }),
            node(b"file", NodeKind::File { content }),
            node(b"link", NodeKind::Symlink { target: b"file".to_vec() }),
            node(b"tty", NodeKind::CharDevice { rdev: 0x0401 }),
        ],
    };
    golden("tree_plain", &tree.encode());
    assert_eq!(Tree::decode(&tree.encode(), "g").unwrap(), tree);
    let leaf =
        ContentNode::Leaf(vec![ContentEntry::Data { id: BlobId([0xdd; 32]), length: 1_048_576 }]);
    golden("content_leaf_plain", &leaf.encode());
    let inner =
        ContentNode::Inner(vec![ContentChild { blob: BlobId([0xee; 32]), length: 1 << 40 }]);
    golden("content_inner_plain", &inner.encode());
}

#[test]
fn snapshot() {
    let snapshot = Snapshot {
        time_ns: 1_763_769_600_000_000_000,
        utc_offset_s: 3600,
        tree: BlobId([0x12; 32]),
        paths: vec!["/home/ann".into()],
        hostname: "host".into(),
        username: "ann".into(),
        uid: 1000,
        gid: 100,
        tags: vec!["daily".into()],
        parent: Some(SnapshotId([0x34; 32])),
        program_version: "cairn 0.1.0".into(),
        summary: Some(BackupSummary {
            files_new: 3,
            total_bytes_processed: 1234,
            ..BackupSummary::default()
        }),
        chunking: Some(Chunking {
            files: ChunkerParams::default(),
            images: ImageChunking::default(),
        }),
        protected: true,
    };
    golden("snapshot_plain", &snapshot.encode());
}

/// A version 2 snapshot (golden bytes written by the version that made them) still opens,
/// unprotected.
#[test]
fn version_2_snapshot_still_decodes() {
    let path = testdata_root().join("testdata/snapshot_v2_plain.hex");
    let text = std::fs::read_to_string(path).unwrap();
    let plain = hex::decode(text.split_whitespace().collect::<String>()).unwrap();
    let sealed = key().seal(SealKind::Snapshot, None, &plain);
    let id = SnapshotId::hash_of(&sealed);
    let snapshot = Snapshot::open(&key(), &id, &sealed).unwrap();
    assert_eq!(snapshot.hostname, "host");
    assert!(snapshot.chunking.is_some());
    assert!(!snapshot.protected);
}

#[derive(serde::Serialize)]
struct ConfigV1 {
    id: RepositoryId,
    chunker: ChunkerParams,
    pack_size: u32,
    compression_level: i32,
    created_ns: i64,
}

#[derive(serde::Serialize)]
struct SnapshotV1 {
    time_ns: i64,
    utc_offset_s: i32,
    tree: BlobId,
    paths: Vec<String>,
    hostname: String,
    username: String,
    uid: u32,
    gid: u32,
    tags: Vec<String>,
    parent: Option<SnapshotId>,
    program_version: String,
    summary: Option<BackupSummary>,
}

/// Repositories written before config version 2 still open, cutting as they always did.
#[test]
fn version_1_config_still_decodes() {
    let v1 = ConfigV1 {
        id: RepositoryId([0x55; 32]),
        chunker: ChunkerParams::default(),
        pack_size: 16 << 20,
        compression_level: 3,
        created_ns: 7,
    };
    let plain = cairn_format::encoding::encode(cairn_format::encoding::Tag::Config, 1, &v1);
    let sealed = key().seal(SealKind::Config, None, &plain);
    let config = Config::open(&key(), &sealed).unwrap();
    assert_eq!(config.image_chunking.from_size, u64::MAX, "no image profile in version 1");
    assert_eq!(config.image_chunking.chunker, ChunkerParams::default());
}

/// A version 2 config (golden bytes written by the version that made them) still opens, with
/// the one compression level it had applying to images too.
#[test]
fn version_2_config_still_decodes() {
    let path = testdata_root().join("testdata/config_v2_sealed.hex");
    let text = std::fs::read_to_string(path).unwrap();
    let sealed = hex::decode(text.split_whitespace().collect::<String>()).unwrap();
    let config = Config::open(&key(), &sealed).unwrap();
    assert_eq!(config.compression_level, 3);
    assert_eq!(config.image_compression_level, 3);
    assert_eq!(config.image_chunking, ImageChunking::default());
}

/// Snapshots written before version 2 still open, without a chunking record.
#[test]
fn version_1_snapshot_still_decodes() {
    let v1 = SnapshotV1 {
        time_ns: 5,
        utc_offset_s: 0,
        tree: BlobId([1; 32]),
        paths: vec!["/x".into()],
        hostname: "h".into(),
        username: "u".into(),
        uid: 1,
        gid: 2,
        tags: vec![],
        parent: None,
        program_version: "cairn 0.1.0".into(),
        summary: None,
    };
    let plain = cairn_format::encoding::encode(cairn_format::encoding::Tag::Snapshot, 1, &v1);
    let sealed = key().seal(SealKind::Snapshot, None, &plain);
    let id = SnapshotId::hash_of(&sealed);
    let snapshot = Snapshot::open(&key(), &id, &sealed).unwrap();
    assert_eq!((snapshot.time_ns, snapshot.chunking), (5, None));
}
