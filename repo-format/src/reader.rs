//! Reading a file's bytes back: a `Read` over a content list that fetches each data blob in
//! turn and produces zero extents without touching the repository.

use std::io::{self, Read};

use crate::content::{Content, ContentEntry};
use crate::repository::Repository;

/// Sequential reader of one file's content.
pub struct FileReader<'r> {
    repo: &'r Repository,
    entries: std::vec::IntoIter<(u64, ContentEntry)>,
    buffer: Vec<u8>,
    position: usize,
    zeros_left: u64,
}

impl<'r> FileReader<'r> {
    /// Loads the content list (not the data) of a file.
    pub fn new(repo: &'r Repository, content: &Content) -> crate::Result<Self> {
        let load = |id: &crate::BlobId| repo.read_blob(id);
        Ok(Self {
            repo,
            entries: content.entries(&load)?.into_iter(),
            buffer: Vec::new(),
            position: 0,
            zeros_left: 0,
        })
    }
}

impl Read for FileReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.zeros_left > 0 {
                let n = out
                    .len()
                    .min(usize::try_from(self.zeros_left).unwrap_or(usize::MAX));
                out[..n].fill(0);
                self.zeros_left -= n as u64;
                return Ok(n);
            }
            if self.position < self.buffer.len() {
                let n = out.len().min(self.buffer.len() - self.position);
                out[..n].copy_from_slice(&self.buffer[self.position..self.position + n]);
                self.position += n;
                return Ok(n);
            }
            match self.entries.next() {
                None => return Ok(0),
                Some((_, ContentEntry::Zero { length })) => self.zeros_left = length,
                Some((_, ContentEntry::Data { id, .. })) => {
                    self.buffer = self.repo.read_blob(&id).map_err(io::Error::other)?;
                    self.position = 0;
                }
            }
        }
    }
}
