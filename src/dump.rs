//! Dump: a file's bytes, or a directory as a tar stream, written to any `Write` (stdout in
//! the CLI), for piping into `dd`, `qemu-img` or `tar -x`.

use std::ffi::OsStr;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Result, bail};
use cairn_format::reader::FileReader;
use cairn_format::snapshot::Snapshot;
use cairn_format::tree::{Node, NodeKind};
use cairn_format::{BlobId, Error, Repository};

use crate::walk::{Listing, Place, Visitor, Walker};

/// A path that a snapshot does not hold (the CLI says which snapshot `latest` was, and what
/// to try instead).
#[derive(Debug, thiserror::Error)]
#[error("{} is not in the snapshot", path.display())]
pub struct NotInSnapshot {
    pub path: std::path::PathBuf,
}

/// Finds the node at `path` ("/" is the snapshot root, returned as `None`).
/// Names are bytes: a path need not be UTF-8.
pub fn find_node(repo: &Repository, snapshot: &Snapshot, path: &Path) -> Result<Option<Node>> {
    find_node_in(repo, &snapshot.tree, path)
}

/// [`find_node`] below the root tree `root`.
pub fn find_node_in(repo: &Repository, root: &BlobId, path: &Path) -> Result<Option<Node>> {
    let mut tree = repo.load_tree(root)?;
    let mut found = None;
    let components = path.components().filter_map(|c| match c {
        std::path::Component::Normal(name) => Some(name.as_bytes()),
        _ => None,
    });
    for component in components {
        if let Some(Node { kind: NodeKind::Directory { subtree }, .. }) = &found {
            tree = repo.load_tree(subtree)?;
        } else if found.is_some() {
            bail!("{}: a component is not a directory", path.display());
        }
        found = Some(
            tree.find(component)
                .cloned()
                .ok_or_else(|| NotInSnapshot { path: path.to_path_buf() })?,
        );
    }
    Ok(found)
}

/// Writes the file at `path`, or the directory as tar, to `out`; with `refuse_tar` (output
/// to a terminal) a directory is an error instead of a screen of binary.
pub fn dump(
    repo: &Arc<Repository>,
    snapshot: &Snapshot,
    path: &Path,
    out: &mut dyn Write,
    refuse_tar: bool,
) -> Result<()> {
    let node = find_node(repo, snapshot, path)?;
    if refuse_tar && !matches!(&node, Some(Node { kind: NodeKind::File { .. }, .. })) {
        bail!(
            "{} is a directory: dump writes it as a tar stream, which a terminal cannot show; \
             redirect it (`> dir.tar`) or pipe it (`| tar -t`)",
            path.display()
        );
    }
    match node {
        Some(Node { kind: NodeKind::File { content }, .. }) => {
            io::copy(&mut FileReader::new(repo, &content)?, out)?;
        }
        Some(top @ Node { kind: NodeKind::Directory { .. }, .. }) => {
            write_tar(repo, Some(&top), &snapshot.tree, out)?;
        }
        None => write_tar(repo, None, &snapshot.tree, out)?,
        Some(_) => bail!("{} is neither a file nor a directory", path.display()),
    }
    out.flush()?;
    Ok(())
}

/// The tar of a directory: its own entry first (as tar of a directory has it), then what is
/// in it under its name; of the whole snapshot (`top` is `None`) its contents.
fn write_tar(
    repo: &Arc<Repository>,
    top: Option<&Node>,
    root: &BlobId,
    out: &mut dyn Write,
) -> Result<()> {
    let mut tar = TarWriter { repo, builder: tar::Builder::new(out) };
    let mut walker = Walker::with_paths(repo);
    match top {
        Some(node @ Node { kind: NodeKind::Directory { subtree }, .. }) => {
            let name = Path::new(OsStr::from_bytes(&node.name));
            let header = &mut header_for(node);
            tar.builder.append_data(header, name, io::empty())?;
            walker.walk_at(subtree, name, &mut tar)?;
        }
        _ => walker.walk_at(root, Path::new(""), &mut tar)?,
    }
    tar.builder.finish()?;
    Ok(())
}

/// Appends every node to a tar stream, parents before children.
struct TarWriter<'a, W: Write> {
    repo: &'a Arc<Repository>,
    builder: tar::Builder<W>,
}

impl<W: Write> Visitor for TarWriter<'_, W> {
    fn reach(&mut self, _: &BlobId, _: Listing, _: bool, _: &Place) -> Result<bool> {
        Ok(true)
    }

    fn node(&mut self, node: &Node, at: &Place) -> Result<bool> {
        let (path, mut header) = (at.path(), header_for(node));
        match &node.kind {
            NodeKind::File { content } => {
                header.set_size(node.size);
                let reader = FileReader::new(self.repo, content)?;
                self.builder.append_data(&mut header, path, reader)?;
            }
            NodeKind::Symlink { target } => {
                (self.builder).append_link(&mut header, path, OsStr::from_bytes(target))?;
            }
            NodeKind::Socket => {}
            _ => self.builder.append_data(&mut header, path, io::empty())?,
        }
        Ok(matches!(node.kind, NodeKind::Directory { .. }))
    }

    fn failed(&mut self, id: &BlobId, _: Listing, error: Error, at: &Place) -> Result<()> {
        bail!("directory {} (tree {id}) does not read: {error}", at.path().display())
    }
}

fn header_for(node: &Node) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    let kind = match &node.kind {
        NodeKind::File { .. } => tar::EntryType::Regular,
        NodeKind::Directory { .. } => tar::EntryType::Directory,
        NodeKind::Symlink { .. } => tar::EntryType::Symlink,
        NodeKind::BlockDevice { .. } => tar::EntryType::Block,
        NodeKind::CharDevice { .. } => tar::EntryType::Char,
        NodeKind::Fifo | NodeKind::Socket => tar::EntryType::Fifo,
    };
    header.set_entry_type(kind);
    header.set_mode(node.mode);
    header.set_uid(u64::from(node.uid));
    header.set_gid(u64::from(node.gid));
    let _ = header.set_username(&node.user);
    let _ = header.set_groupname(&node.group);
    header.set_mtime(node.mtime_ns.div_euclid(1_000_000_000).max(0) as u64);
    header.set_size(0);
    if let NodeKind::BlockDevice { rdev } | NodeKind::CharDevice { rdev } = node.kind {
        let _ = header.set_device_major(nix::sys::stat::major(rdev) as u32);
        let _ = header.set_device_minor(nix::sys::stat::minor(rdev) as u32);
    }
    header
}
