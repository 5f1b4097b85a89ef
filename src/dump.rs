//! Dump: a file's bytes, or a directory as a tar stream, written to any `Write` (stdout in
//! the CLI), for piping into `dd`, `qemu-img` or `tar -x`.

use std::ffi::OsStr;
use std::io::{self, Read, Seek, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, FileTypeExt};
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use cairn_format::Repository;
use cairn_format::reader::FileReader;
use cairn_format::snapshot::Snapshot;
use cairn_format::tree::{Node, NodeKind, Tree};

/// Finds the node at `path` ("/" is the snapshot root, returned as `None`).
/// Names are bytes: a path need not be UTF-8.
pub fn find_node(repo: &Repository, snapshot: &Snapshot, path: &Path) -> Result<Option<Node>> {
    let mut tree = repo.load_tree(&snapshot.tree)?;
    let mut found = None;
    let components = path.components().filter_map(|c| match c {
        std::path::Component::Normal(name) => Some(name.as_bytes()),
        _ => None,
    });
    for component in components {
        if let Some(Node {
            kind: NodeKind::Directory { subtree },
            ..
        }) = &found
        {
            tree = repo.load_tree(subtree)?;
        } else if found.is_some() {
            bail!("{}: a component is not a directory", path.display());
        }
        found = Some(
            tree.find(component)
                .cloned()
                .with_context(|| format!("{} is not in the snapshot", path.display()))?,
        );
    }
    Ok(found)
}

/// Writes the file at `path`, or the directory as tar, to `out`.
pub fn dump(
    repo: &Arc<Repository>,
    snapshot: &Snapshot,
    path: &Path,
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
        Some(_) => bail!("{} is neither a file nor a directory", path.display()),
    }
    out.flush()?;
    Ok(())
}

/// What `restore --target-file` wrote.
#[derive(Debug, serde::Serialize)]
pub struct TargetFileSummary {
    pub target: String,
    pub bytes: u64,
    /// A block device (every byte written) rather than a regular file (holes left unwritten).
    pub device: bool,
    pub verified: bool,
}

/// Writes the file at `path` into `target`: an existing block device (every byte, zeros
/// included, since the device holds old data) or a regular file, created or truncated, whose
/// zero blocks stay holes. Chunks are fetched ahead in parallel. `verify` reads the target back
/// and checks it chunk by chunk.
pub fn write_to_target(
    repo: &Arc<Repository>,
    snapshot: &Snapshot,
    path: &Path,
    target: &Path,
    verify: bool,
) -> Result<TargetFileSummary> {
    let Some(Node {
        kind: NodeKind::File { content },
        size,
        ..
    }) = find_node(repo, snapshot, path)?
    else {
        bail!(
            "{} is not a file in the snapshot; --target-file restores one file",
            path.display()
        );
    };
    let device = std::fs::metadata(target).is_ok_and(|m| m.file_type().is_block_device());
    let file = open_target(target, device, size)?;
    let mut reader = FileReader::new(repo, &content)?;
    let mut buffer = vec![0u8; 1 << 20];
    let mut offset = 0u64;
    loop {
        let n = reader.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        let written = if device {
            file.write_all_at(&buffer[..n], offset)
        } else {
            crate::restore::write_sparse(&file, &buffer[..n], offset)
        };
        written.with_context(|| format!("cannot write {}", target.display()))?;
        offset += n as u64;
    }
    file.sync_all()
        .with_context(|| format!("cannot flush {}", target.display()))?;
    if verify {
        let mut check = std::fs::File::open(target)?;
        crate::restore::verify_content(repo, &mut check, target, &content)
            .with_context(|| format!("verifying {}", target.display()))?;
    }
    Ok(TargetFileSummary {
        target: target.display().to_string(),
        bytes: offset,
        device,
        verified: verify,
    })
}

fn open_target(target: &Path, device: bool, size: u64) -> Result<std::fs::File> {
    let shown = target.display();
    if device {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .open(target)
            .with_context(|| format!("cannot open device {shown} for writing"))?;
        let capacity = file.seek(io::SeekFrom::End(0))?;
        if capacity < size {
            bail!(
                "device {shown} holds {capacity} bytes, the file needs {size}: nothing was written"
            );
        }
        return Ok(file);
    }
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(target)
        .with_context(|| format!("cannot create {shown}"))?;
    file.set_len(size)
        .with_context(|| format!("cannot size {shown} to {size} bytes (is the disk full?)"))?;
    Ok(file)
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
