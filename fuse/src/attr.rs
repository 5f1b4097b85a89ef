//! What `stat` shows for a snapshot node, in the kernel's terms, and how long the kernel may
//! keep it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cairn_format::tree::{Node, NodeKind};

/// An inode number as the kernel sees it (the inode table, `inode.rs`, hands them out).
pub type Ino = u64;

/// How long the kernel may cache what never changes (everything inside a snapshot).
pub const IMMUTABLE_TTL: Duration = Duration::from_secs(24 * 3600);
/// How long the kernel may cache the whole-repository listings, which gain snapshots.
pub const LISTING_TTL: Duration = Duration::from_secs(1);

/// The kind of a directory entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    Directory,
    File,
    Symlink,
    BlockDevice,
    CharDevice,
    Fifo,
    Socket,
}

/// What `stat` shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attr {
    pub ino: Ino,
    pub kind: FileKind,
    pub size: u64,
    /// 512-byte blocks actually stored: zero extents (holes) do not count.
    pub blocks: u64,
    pub perm: u16,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u32,
    pub atime: SystemTime,
    pub mtime: SystemTime,
    pub ctime: SystemTime,
    /// How long the kernel may keep this.
    pub ttl: Duration,
}

pub(crate) fn node_kind(kind: &NodeKind) -> FileKind {
    match kind {
        NodeKind::File { .. } => FileKind::File,
        NodeKind::Directory { .. } => FileKind::Directory,
        NodeKind::Symlink { .. } => FileKind::Symlink,
        NodeKind::BlockDevice { .. } => FileKind::BlockDevice,
        NodeKind::CharDevice { .. } => FileKind::CharDevice,
        NodeKind::Fifo => FileKind::Fifo,
        NodeKind::Socket => FileKind::Socket,
    }
}

pub(crate) fn node_attr(ino: Ino, node: &Node, blocks: u64) -> Attr {
    let (size, rdev) = match &node.kind {
        NodeKind::File { .. } => (node.size, 0),
        NodeKind::Symlink { target } => (target.len() as u64, 0),
        NodeKind::BlockDevice { rdev } | NodeKind::CharDevice { rdev } => (0, *rdev),
        _ => (0, 0),
    };
    Attr {
        ino,
        kind: node_kind(&node.kind),
        size,
        blocks,
        perm: (node.mode & 0o7777) as u16,
        nlink: node.nlink.clamp(1, u64::from(u32::MAX)) as u32,
        uid: node.uid,
        gid: node.gid,
        rdev: encode_rdev(rdev),
        atime: system_time(node.atime_ns),
        mtime: system_time(node.mtime_ns),
        ctime: system_time(node.ctime_ns),
        ttl: IMMUTABLE_TTL,
    }
}

/// The kernel's 32-bit `new_encode_dev` form of a 64-bit glibc `dev_t`, which FUSE carries.
fn encode_rdev(rdev: u64) -> u32 {
    let major = ((rdev >> 32) & 0xffff_f000) | ((rdev >> 8) & 0xfff);
    let minor = ((rdev >> 12) & 0xffff_ff00) | (rdev & 0xff);
    ((minor & 0xff) | ((major & 0xfff) << 8) | ((minor & !0xff) << 12)) as u32
}

fn system_time(ns: i64) -> SystemTime {
    let magnitude = Duration::from_nanos(ns.unsigned_abs());
    if ns >= 0 { UNIX_EPOCH + magnitude } else { UNIX_EPOCH - magnitude }
}
