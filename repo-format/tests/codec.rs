//! Property tests: every structure survives encode -> decode unchanged, and no decoder panics
//! or over-allocates on arbitrary bytes (untrusted input must only ever produce errors).

use cairn_format::chunker::ChunkerParams;
use cairn_format::config::ImageChunking;
use cairn_format::content::{Content, ContentChild, ContentEntry, ContentNode};
use cairn_format::crypto::{MasterKey, SealKind};
use cairn_format::id::BlobId;
use cairn_format::pack;
use cairn_format::segment::IndexSegment;
use cairn_format::snapshot::{BackupSummary, Chunking, Snapshot};
use cairn_format::tree::{Node, NodeKind, Tree, Xattr, is_safe_name};
use cairn_format::{IndexId, PackId, SnapshotId};
use proptest::prelude::*;

fn blob_id() -> impl Strategy<Value = BlobId> {
    any::<[u8; 32]>().prop_map(BlobId)
}

fn entry() -> impl Strategy<Value = ContentEntry> {
    prop_oneof![
        (blob_id(), any::<u32>()).prop_map(|(id, length)| ContentEntry::Data { id, length }),
        any::<u64>().prop_map(|length| ContentEntry::Zero { length }),
    ]
}

fn kind() -> impl Strategy<Value = NodeKind> {
    prop_oneof![
        prop::collection::vec(entry(), 0..5)
            .prop_map(|e| NodeKind::File { content: Content::Inline(e) }),
        (blob_id(), any::<u8>()).prop_map(|(root, depth)| NodeKind::File {
            content: Content::Indirect { root, depth }
        }),
        blob_id().prop_map(|subtree| NodeKind::Directory { subtree }),
        prop::collection::vec(any::<u8>(), 0..40).prop_map(|target| NodeKind::Symlink { target }),
        any::<u64>().prop_map(|rdev| NodeKind::BlockDevice { rdev }),
        any::<u64>().prop_map(|rdev| NodeKind::CharDevice { rdev }),
        Just(NodeKind::Fifo),
        Just(NodeKind::Socket),
    ]
}

fn node() -> impl Strategy<Value = Node> {
    let name =
        prop::collection::vec(any::<u8>(), 1..20).prop_filter("safe name", |n| is_safe_name(n));
    let times = (any::<i64>(), any::<i64>(), any::<i64>());
    let ids = (any::<u32>(), any::<u32>(), any::<u64>(), any::<u64>(), any::<u64>(), any::<u64>());
    let xattrs = prop::collection::vec(
        (prop::collection::vec(any::<u8>(), 1..10), prop::collection::vec(any::<u8>(), 0..10))
            .prop_map(|(name, value)| Xattr { name, value }),
        0..3,
    );
    (name, kind(), any::<u32>(), ids, ".{0,8}", ".{0,8}", times, xattrs).prop_map(
        |(
            name,
            kind,
            mode,
            (uid, gid, inode, device, nlink, size),
            user,
            group,
            (m, a, c),
            xattrs,
        )| Node {
            name,
            kind,
            mode,
            uid,
            gid,
            user,
            group,
            mtime_ns: m,
            atime_ns: a,
            ctime_ns: c,
            inode,
            device,
            nlink,
            size,
            xattrs,
        },
    )
}

proptest! {
    #[test]
    fn trees_round_trip(nodes in prop::collection::vec(node(), 0..8)) {
        let mut tree = Tree { nodes };
        tree.sort();
        tree.nodes.dedup_by(|a, b| a.name == b.name);
        prop_assert_eq!(Tree::decode(&tree.encode(), "p").unwrap(), tree);
    }

    #[test]
    fn content_nodes_round_trip(entries in prop::collection::vec(entry(), 1..50), children in prop::collection::vec((blob_id(), any::<u64>()), 1..50)) {
        let leaf = ContentNode::Leaf(entries);
        prop_assert_eq!(ContentNode::decode(&leaf.encode(), "p").unwrap(), leaf);
        let inner = ContentNode::Inner(children.into_iter().map(|(blob, length)| ContentChild { blob, length }).collect());
        prop_assert_eq!(ContentNode::decode(&inner.encode(), "p").unwrap(), inner);
    }

    #[test]
    fn snapshots_round_trip(time in any::<i64>(), offset in any::<i32>(), tags in prop::collection::vec(".{0,6}", 0..4), parent in proptest::option::of(any::<[u8; 32]>()), files in any::<u64>()) {
        let key = MasterKey::from_parts([1; 32], [2; 32], [3; 32]);
        let snapshot = Snapshot {
            time_ns: time,
            utc_offset_s: offset,
            tree: BlobId([9; 32]),
            paths: vec!["/a".into()],
            hostname: "h".into(),
            username: "u".into(),
            uid: 1,
            gid: 2,
            tags,
            parent: parent.map(SnapshotId),
            program_version: "v".into(),
            summary: Some(BackupSummary { files_new: files, ..BackupSummary::default() }),
            chunking: Some(Chunking { files: ChunkerParams::default(), images: ImageChunking::default() }),
            protected: false,
        };
        let (id, sealed) = snapshot.seal(&key);
        prop_assert_eq!(Snapshot::open(&key, &id, &sealed).unwrap(), snapshot);
    }

    #[test]
    fn decoders_reject_garbage_without_panicking(bytes in prop::collection::vec(any::<u8>(), 0..300), tag in prop::sample::select(vec![b'T', b'L', b'S', b'I', b'H', b'C', b'K'])) {
        let mut input = vec![tag, 1];
        input.extend_from_slice(&bytes);
        let _ = Tree::decode(&input, "p");
        let _ = ContentNode::decode(&input, "p");
        let key = MasterKey::from_parts([1; 32], [2; 32], [3; 32]);
        let _ = Snapshot::open(&key, &SnapshotId::hash_of(&input), &input);
        let _ = IndexSegment::open(&key, &IndexId::hash_of(&input), &input);
        let id = PackId([0; 32]);
        let _ = pack::header_length(&id, bytes.len() as u64, &bytes);
        let _ = pack::decode_header(&key, &id, 1 << 20, &input);
        let _ = key.open(SealKind::TreeBlob, None, &input, "p");
        let _ = cairn_format::compress::decode(&input, 1000, "p");
    }
}
