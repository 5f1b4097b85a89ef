//! A repository in a local directory. A put writes a hidden temporary file in the target
//! directory, fsyncs it, renames it into place and fsyncs the directory, so after a crash an
//! object is either complete or absent. Temporary names start with `.tmp-` and are never
//! listed.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::{Backend, Leftover, ObjectInfo};
use crate::id::random_bytes;

/// The top-level directories of a repository.
const DIRECTORIES: [&str; 5] = ["keys", "data", "index", "snapshots", "locks"];

/// A local directory backend.
pub struct LocalBackend {
    root: PathBuf,
}

impl LocalBackend {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }
}

impl Backend for LocalBackend {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn create(&self) -> io::Result<()> {
        for dir in DIRECTORIES {
            fs::create_dir_all(self.root.join(dir))?;
        }
        Ok(())
    }

    fn put(&self, name: &str, data: &[u8]) -> io::Result<()> {
        let path = self.path(name);
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        fs::create_dir_all(&dir)?;
        let tmp = dir.join(format!(".tmp-{}", hex::encode(random_bytes::<8>())));
        let result = write_synced(&tmp, data).and_then(|()| fs::rename(&tmp, &path));
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result?;
        File::open(&dir)?.sync_all()
    }

    fn get(&self, name: &str) -> io::Result<Vec<u8>> {
        fs::read(self.path(name))
    }

    fn get_range_into(
        &self,
        name: &str,
        offset: u64,
        length: u64,
        buffer: &mut Vec<u8>,
    ) -> io::Result<()> {
        let mut file = File::open(self.path(name))?;
        file.seek(SeekFrom::Start(offset))?;
        buffer.clear();
        buffer.reserve(usize::try_from(length).map_err(io::Error::other)?);
        // read_to_end fills the spare capacity without zeroing it first.
        file.take(length).read_to_end(buffer)?;
        if buffer.len() as u64 != length {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{} of {length} bytes there", buffer.len()),
            ));
        }
        Ok(())
    }

    fn list(&self, prefix: &str) -> io::Result<Vec<ObjectInfo>> {
        let mut out = Vec::new();
        list_into(&self.root, &self.path(prefix), &mut out)?;
        Ok(out)
    }

    fn stat(&self, name: &str) -> io::Result<Option<u64>> {
        match fs::metadata(self.path(name)) {
            Ok(meta) => Ok(Some(meta.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn delete(&self, name: &str) -> io::Result<()> {
        match fs::remove_file(self.path(name)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    fn leftovers(&self) -> io::Result<Vec<Leftover>> {
        let mut out = Vec::new();
        leftovers_into(&self.root, &self.root, &mut out)?;
        Ok(out)
    }
}

/// The `.tmp-` files below `dir` (a put killed between creating and renaming one).
fn leftovers_into(root: &Path, dir: &Path, out: &mut Vec<Leftover>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        let path = entry.path();
        if meta.is_dir() {
            leftovers_into(root, &path, out)?;
        } else if entry.file_name().to_string_lossy().starts_with(".tmp-") {
            let name = path.strip_prefix(root).map_err(io::Error::other)?;
            out.push(Leftover {
                name: name.to_string_lossy().into_owned(),
                size: meta.len(),
                modified_s: std::os::unix::fs::MetadataExt::mtime(&meta),
            });
        }
    }
    Ok(())
}

fn write_synced(path: &Path, data: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new().write(true).create_new(true).open(path)?;
    file.write_all(data)?;
    file.sync_all()
}

fn list_into(root: &Path, dir: &Path, out: &mut Vec<ObjectInfo>) -> io::Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with(".tmp-") {
            continue;
        }
        let path = entry.path();
        let meta = entry.metadata()?;
        if meta.is_dir() {
            list_into(root, &path, out)?;
        } else {
            let name = path.strip_prefix(root).map_err(io::Error::other)?;
            out.push(ObjectInfo { name: name.to_string_lossy().into_owned(), size: meta.len() });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conformance() {
        let dir = tempfile::tempdir().unwrap();
        super::super::conformance(&LocalBackend::new(dir.path().join("repo")));
    }

    #[test]
    fn temporary_files_are_not_listed() {
        let dir = tempfile::tempdir().unwrap();
        let backend = LocalBackend::new(dir.path());
        backend.create().unwrap();
        fs::write(dir.path().join("index/.tmp-123"), b"partial").unwrap();
        assert!(backend.list("index/").unwrap().is_empty());
        let leftovers = backend.leftovers().unwrap();
        assert_eq!(leftovers.len(), 1);
        assert_eq!((leftovers[0].name.as_str(), leftovers[0].size), ("index/.tmp-123", 7));
        backend.delete(&leftovers[0].name).unwrap();
        assert!(backend.leftovers().unwrap().is_empty());
    }
}
