//! `restore --target-file`: one file of a snapshot written into a regular file or over a
//! block device, for putting a VM image back where it ran.

use std::fs;
use std::io::{self, Read, Seek};
use std::os::unix::fs::{FileExt, FileTypeExt};
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use cairn_format::Repository;
use cairn_format::reader::FileReader;
use cairn_format::snapshot::Snapshot;
use cairn_format::tree::{Node, NodeKind};

use super::{verify_content, write_sparse};

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
    let Some(Node { kind: NodeKind::File { content }, size, .. }) =
        crate::dump::find_node(repo, snapshot, path)?
    else {
        bail!("{} is not a file in the snapshot; --target-file restores one file", path.display());
    };
    let device = fs::metadata(target).is_ok_and(|m| m.file_type().is_block_device());
    let file = open_target(target, device, size)?;
    let reader = FileReader::new(repo, &content)?;
    let written = copy_into(reader, &file, device, target)?;
    file.sync_all().with_context(|| format!("cannot flush {}", target.display()))?;
    if verify {
        let mut check = fs::File::open(target)?;
        verify_content(repo, &mut check, target, &content)
            .with_context(|| format!("verifying {}", target.display()))?;
    }
    Ok(TargetFileSummary {
        target: target.display().to_string(),
        bytes: written,
        device,
        verified: verify,
    })
}

fn open_target(target: &Path, device: bool, size: u64) -> Result<fs::File> {
    let shown = target.display();
    if device {
        let mut file = fs::OpenOptions::new()
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
    let file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(target)
        .with_context(|| format!("cannot create {shown}"))?;
    file.set_len(size)
        .with_context(|| format!("cannot size {shown} to {size} bytes (is the disk full?)"))?;
    Ok(file)
}

/// Copies everything `reader` gives into `file` from its start: every byte on a device,
/// sparsely into a regular file. Returns the bytes copied.
fn copy_into(mut reader: impl Read, file: &fs::File, device: bool, target: &Path) -> Result<u64> {
    let mut buffer = vec![0u8; 1 << 20];
    let mut offset = 0u64;
    loop {
        let n = reader.read(&mut buffer)?;
        if n == 0 {
            return Ok(offset);
        }
        let written = if device {
            file.write_all_at(&buffer[..n], offset)
        } else {
            write_sparse(file, &buffer[..n], offset)
        };
        written.with_context(|| format!("cannot write {}", target.display()))?;
        offset += n as u64;
    }
}
