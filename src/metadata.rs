//! File metadata in both directions: reading a tree node's metadata from the file system at
//! backup, and applying it at restore. Nothing here follows symlinks.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{self, Metadata};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::Mutex;

use cairn_format::tree::{Node, NodeKind, Xattr};
use nix::sys::stat::{UtimensatFlags, utimensat};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Group, Uid, User};

/// Caches uid/gid to name lookups, which otherwise cost a passwd read per file.
#[derive(Default)]
pub struct NameCache {
    users: Mutex<HashMap<u32, String>>,
    groups: Mutex<HashMap<u32, String>>,
}

impl NameCache {
    /// The user name for a uid, empty when it has none.
    pub fn user(&self, uid: u32) -> String {
        cached(&self.users, uid, || {
            let user = User::from_uid(Uid::from_raw(uid));
            user.ok().flatten().map(|u| u.name)
        })
    }

    /// The group name for a gid, empty when it has none.
    pub fn group(&self, gid: u32) -> String {
        cached(&self.groups, gid, || {
            let group = Group::from_gid(Gid::from_raw(gid));
            group.ok().flatten().map(|g| g.name)
        })
    }
}

/// The name `map` holds for `id`, looked up (and remembered, empty when there is none) once.
fn cached(
    map: &Mutex<HashMap<u32, String>>,
    id: u32,
    look_up: impl FnOnce() -> Option<String>,
) -> String {
    let mut names = map.lock().expect("name cache");
    names.entry(id).or_insert_with(|| look_up().unwrap_or_default()).clone()
}

fn nanos(seconds: i64, nanos: i64) -> i64 {
    seconds.saturating_mul(1_000_000_000).saturating_add(nanos)
}

/// Modification time in ns since the epoch, as tree nodes record it.
pub fn mtime_ns(meta: &Metadata) -> i64 {
    nanos(meta.mtime(), meta.mtime_nsec())
}

/// Status-change time in ns since the epoch, as tree nodes record it.
pub fn ctime_ns(meta: &Metadata) -> i64 {
    nanos(meta.ctime(), meta.ctime_nsec())
}

/// A node for `path` with everything but the kind-specific part; `kind` is given by the
/// caller, which knows whether it read a file's content or a directory's subtree.
pub fn node_from(
    path: &Path,
    name: &OsStr,
    meta: &Metadata,
    kind: NodeKind,
    names: &NameCache,
) -> Node {
    let mtime_ns = mtime_ns(meta);
    warn_if_clamped(path, mtime_ns);
    // Listing a directory updates its atime, so recording it would make every tree blob new
    // on every run; a directory's atime is recorded as its mtime instead.
    let atime_ns = match kind {
        NodeKind::Directory { .. } => mtime_ns,
        _ => nanos(meta.atime(), meta.atime_nsec()),
    };
    let size = match &kind {
        NodeKind::File { .. } => meta.size(),
        NodeKind::Symlink { target } => target.len() as u64,
        _ => 0,
    };
    Node {
        name: name.as_bytes().to_vec(),
        kind,
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
        user: names.user(meta.uid()),
        group: names.group(meta.gid()),
        mtime_ns,
        atime_ns,
        ctime_ns: ctime_ns(meta),
        inode: meta.ino(),
        device: meta.dev(),
        nlink: meta.nlink(),
        size,
        xattrs: read_xattrs(path),
    }
}

/// Nodes record ns in an i64: 1677-09-21 to 2262-04-11; a time outside is clamped.
fn warn_if_clamped(path: &Path, mtime_ns: i64) {
    if mtime_ns == i64::MAX || mtime_ns == i64::MIN {
        tracing::warn!(
            path = %path.display(),
            "modification time outside 1677-2262 cannot be stored exactly; recorded as the \
             nearest time that can"
        );
    }
}

/// Extended attributes of `path` itself (not a symlink's target). File systems without xattr
/// support simply yield none.
pub fn read_xattrs(path: &Path) -> Vec<Xattr> {
    let Ok(names) = xattr::list(path) else {
        return Vec::new();
    };
    let mut out: Vec<Xattr> = names
        .filter_map(|name| {
            let value = xattr::get(path, &name).ok().flatten()?;
            Some(Xattr { name: name.as_bytes().to_vec(), value })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// True when the process may change file ownership (restores ownership only then).
pub fn running_as_root() -> bool {
    Uid::effective().is_root()
}

/// Applies ownership, xattrs, permissions and times, in that order: chown clears set-uid
/// bits and writing xattrs may touch times. Failures are returned for the caller to report.
pub fn apply(path: &Path, node: &Node, as_root: bool) -> io::Result<()> {
    let is_link = matches!(node.kind, NodeKind::Symlink { .. });
    if as_root {
        std::os::unix::fs::lchown(path, Some(node.uid), Some(node.gid))?;
    }
    for attr in &node.xattrs {
        let name = OsStr::from_bytes(&attr.name);
        if let Err(e) = xattr::set(path, name, &attr.value) {
            // Unprivileged users cannot set trusted.* or security.* attributes.
            if as_root || e.raw_os_error() != Some(libc::EPERM) {
                return Err(e);
            }
        }
    }
    if !is_link {
        fs::set_permissions(path, fs::Permissions::from_mode(node.mode))?;
    }
    let time = |ns: i64| TimeSpec::new(ns.div_euclid(1_000_000_000), ns.rem_euclid(1_000_000_000));
    utimensat(
        nix::fcntl::AT_FDCWD,
        path,
        &time(node.atime_ns),
        &time(node.mtime_ns),
        UtimensatFlags::NoFollowSymlink,
    )
    .map_err(io::Error::from)
}
