//! `--verify`: every written file read back and checked chunk by chunk against its id.

use std::fs::{self, OpenOptions};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{Result, bail};
use cairn_format::content::{Content, ContentEntry};
use cairn_format::tree::NodeKind;
use cairn_format::{BlobId, Repository};

use super::create::Files;
use super::{Item, Run, rel};

/// Re-reads every written file and checks each chunk against its id. Returns how many files
/// verified; mismatches are reported as errors.
pub(super) fn verify(run: &Run<'_>, items: &[Item], files: &Files) -> u64 {
    let mut verified = 0;
    for &i in &files.written {
        let NodeKind::File { content } = &items[i].node.kind else {
            continue;
        };
        let path = run.options.target.join(rel(items, i));
        match verify_file(run.repo, &path, content, items[i].node.size) {
            Ok(()) => verified += 1,
            Err(e) => run.fail_file(items, i, &format!("verification failed: {e}")),
        }
    }
    verified
}

fn verify_file(repo: &Repository, path: &Path, content: &Content, size: u64) -> Result<()> {
    let mut file = OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(path)?;
    if file.metadata()?.len() != size {
        bail!("size differs from the snapshot");
    }
    verify_content(repo, &mut file, path, content)
}

/// Reads `file` from its current position and checks it against `content`, chunk by chunk.
pub(crate) fn verify_content(
    repo: &Repository,
    file: &mut fs::File,
    path: &Path,
    content: &Content,
) -> Result<()> {
    let mut buffer = Vec::new();
    let load = |id: &BlobId| repo.read_blob(id);
    content.for_each(&load, &mut |offset, entry| {
        buffer.resize(entry.length() as usize, 0);
        file.read_exact(&mut buffer)
            .map_err(|e| cairn_format::Error::backend("verify", path.display().to_string(), e))?;
        let ok = match entry {
            ContentEntry::Data { id, .. } => repo.key().blob_id(&buffer) == *id,
            ContentEntry::Zero { .. } => buffer.iter().all(|&b| b == 0),
        };
        if ok {
            Ok(())
        } else {
            Err(cairn_format::Error::corrupt(
                "restored file",
                path.display().to_string(),
                format!("bytes at offset {offset} differ"),
            ))
        }
    })?;
    Ok(())
}
