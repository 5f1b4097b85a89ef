//! Dump: a file's bytes, or a directory as a tar stream, written to any `Write` (stdout in
//! the CLI), for piping into `dd`, `qemu-img` or `tar -x`.

use std::ffi::OsStr;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use cairn_format::Repository;
use cairn_format::reader::FileReader;
use cairn_format::snapshot::Snapshot;
use cairn_format::tree::{Node, NodeKind, Tree};

/// Finds the node at `path` ("/" is the snapshot root, returned as `None`).
pub fn find_node(repo: &Repository, snapshot: &Snapshot, path: &str) -> Result<Option<Node>> {
    let mut tree = repo.load_tree(&snapshot.tree)?;
    let mut found = None;
    for component in path.split('/').filter(|c| !c.is_empty()) {
        if let Some(Node {
            kind: NodeKind::Directory { subtree },
            ..
        }) = &found
        {
            tree = repo.load_tree(subtree)?;
        } else if found.is_some() {
            bail!("{path}: a component is not a directory");
        }
        found = Some(
            tree.find(component.as_bytes())
                .cloned()
                .with_context(|| format!("{path} is not in the snapshot"))?,
        );
    }
    Ok(found)
}

/// Writes the file at `path`, or the directory as tar, to `out`.
pub fn dump(
    repo: &Arc<Repository>,
    snapshot: &Snapshot,
    path: &str,
    out: &mut dyn Write,
) -> Result<()> {
    match find_node(repo, snapshot, path)? {
        Some(Node {
            kind: NodeKind::File { content },
            ..
        }) => {
            io::copy(&mut FileReader::new(repo, &content)?, out)?;
        }
        Some(Node {
            kind: NodeKind::Directory { subtree },
            name,
            ..
        }) => {
            write_tar(
                repo,
                &repo.load_tree(&subtree)?,
                Path::new(OsStr::from_bytes(&name)),
                out,
            )?;
        }
        None => write_tar(repo, &repo.load_tree(&snapshot.tree)?, Path::new(""), out)?,
        Some(_) => bail!("{path} is neither a file nor a directory"),
    }
    out.flush()?;
    Ok(())
}

fn write_tar(
    repo: &Arc<Repository>,
    tree: &Tree,
    prefix: &Path,
    out: &mut dyn Write,
) -> Result<()> {
    let mut builder = tar::Builder::new(out);
    append_tree(repo, &mut builder, tree, prefix)?;
    builder.finish()?;
    Ok(())
}

fn append_tree<W: Write>(
    repo: &Arc<Repository>,
    builder: &mut tar::Builder<W>,
    tree: &Tree,
    prefix: &Path,
) -> Result<()> {
    for node in &tree.nodes {
        let path = prefix.join(OsStr::from_bytes(&node.name));
        let mut header = header_for(node);
        match &node.kind {
            NodeKind::File { content } => {
                header.set_size(node.size);
                builder.append_data(&mut header, &path, FileReader::new(repo, content)?)?;
            }
            NodeKind::Directory { subtree } => {
                builder.append_data(&mut header, &path, io::empty())?;
                append_tree(repo, builder, &repo.load_tree(subtree)?, &path)?;
            }
            NodeKind::Symlink { target } => {
                builder.append_link(&mut header, &path, OsStr::from_bytes(target))?;
            }
            NodeKind::Socket => {}
            _ => builder.append_data(&mut header, &path, io::empty())?,
        }
    }
    Ok(())
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
