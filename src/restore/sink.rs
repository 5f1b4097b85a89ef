//! Where restored bytes go: the disk by default, written sparsely, or a file system a test
//! puts in its place.

use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Arc;

/// Where restored bytes go. The disk, but a test can put a file system that fails here.
pub trait FileSink: Send + Sync {
    /// Writes `data` at `offset` into the existing file at `path`, never following a symlink.
    fn write_at(&self, path: &Path, data: &[u8], offset: u64) -> io::Result<()>;
}

/// The real file system: sparse writes (zero blocks stay holes).
pub struct Disk;

impl FileSink for Disk {
    fn write_at(&self, path: &Path, data: &[u8], offset: u64) -> io::Result<()> {
        let file = OpenOptions::new().write(true).custom_flags(libc::O_NOFOLLOW).open(path)?;
        write_sparse(&file, data, offset)
    }
}

/// The [`FileSink`] of a restore: [`Disk`] unless a caller gives another.
#[derive(Clone)]
pub struct Sink(pub Arc<dyn FileSink>);

impl Default for Sink {
    fn default() -> Self {
        Sink(Arc::new(Disk))
    }
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sink")
    }
}

/// Block size below which zero runs are written rather than left as holes.
const HOLE_BLOCK: u64 = 4096;

/// Writes `data` at `offset`, skipping whole zero blocks: the file was created at its full
/// size, so skipped blocks read as zeros and stay unallocated.
pub(crate) fn write_sparse(file: &fs::File, data: &[u8], offset: u64) -> io::Result<()> {
    let mut start = 0usize;
    while start < data.len() {
        // Cut at the next block boundary of the file so holes line up with file blocks.
        let block_end = ((offset + start as u64) / HOLE_BLOCK + 1) * HOLE_BLOCK - offset;
        let end = (block_end as usize).min(data.len());
        if data[start..end].iter().any(|&b| b != 0) {
            let mut run_end = end;
            while run_end < data.len() {
                let next = (run_end + HOLE_BLOCK as usize).min(data.len());
                if data[run_end..next].iter().all(|&b| b == 0) {
                    break;
                }
                run_end = next;
            }
            file.write_all_at(&data[start..run_end], offset + start as u64)?;
            start = run_end;
        } else {
            start = end;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;

    use super::*;

    #[test]
    fn sparse_writes_leave_zero_blocks_unallocated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        file.set_len(8 << 20).unwrap();
        let mut data = vec![0u8; 4 << 20];
        data[100] = 1;
        data[(3 << 20) + 5] = 2;
        write_sparse(&file, &data, 1000).unwrap();
        let mut back = Vec::new();
        fs::File::open(&path).unwrap().read_to_end(&mut back).unwrap();
        assert_eq!(&back[1000..1000 + data.len()], &data[..]);
        assert!(back[..1000].iter().all(|&b| b == 0));
        let blocks = fs::metadata(&path).unwrap().blocks();
        assert!(blocks <= 32, "{blocks} blocks allocated for two bytes");
    }
}
