//! Reading a file's bytes back: a `Read` over a content list. Zero extents never touch the
//! repository. A file of more than a few chunks is read ahead: a walker thread streams the
//! content list (never holding it all) and fetcher threads read, open and verify the next
//! chunks in parallel, while the caller consumes them in order. At most [`AHEAD`] chunks are in
//! flight, so memory stays bounded whatever the file's size.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, bounded};

use crate::BlobId;
use crate::content::{Content, ContentEntry};
use crate::repository::Repository;

/// Chunks queued ahead of the reader, twice over (waiting for a fetcher, then fetched and
/// waiting for the reader): about 16 MiB at the default 512 KiB mean.
pub const AHEAD: usize = 16;
/// Files with at most this many entries in an inline list are read chunk by chunk, without
/// threads (small files in a tar stream would pay more for the threads than they gain).
const SEQUENTIAL_MAX: usize = 4;

/// A piece of the file, in order, as the reader receives it.
enum Part {
    Zeros(u64),
    /// The chunk, once a fetcher has it.
    Chunk(Receiver<io::Result<Vec<u8>>>),
}

/// Reader of one file's content.
pub struct FileReader {
    parts: PartSource,
    buffer: Vec<u8>,
    position: usize,
    zeros_left: u64,
}

enum PartSource {
    /// Small files: the entries, fetched one at a time on the caller's thread.
    Inline(Arc<Repository>, VecDeque<ContentEntry>),
    /// Larger files: parts from the walker, fetched ahead by the fetchers.
    Ahead { parts: Option<Receiver<io::Result<Part>>>, threads: Vec<JoinHandle<()>> },
}

impl FileReader {
    pub fn new(repo: &Arc<Repository>, content: &Content) -> crate::Result<Self> {
        let parts = match content {
            Content::Inline(entries) if entries.len() <= SEQUENTIAL_MAX => {
                PartSource::Inline(repo.clone(), entries.iter().copied().collect())
            }
            _ => read_ahead(repo, content),
        };
        Ok(Self { parts, buffer: Vec::new(), position: 0, zeros_left: 0 })
    }

    fn next_part(&mut self) -> io::Result<Option<Part>> {
        match &mut self.parts {
            PartSource::Inline(repo, entries) => match entries.pop_front() {
                None => Ok(None),
                Some(ContentEntry::Zero { length }) => Ok(Some(Part::Zeros(length))),
                Some(ContentEntry::Data { id, .. }) => {
                    let (sender, receiver) = bounded(1);
                    let _ = sender.send(fetch(repo, &id));
                    Ok(Some(Part::Chunk(receiver)))
                }
            },
            PartSource::Ahead { parts, .. } => match parts.as_ref().map(Receiver::recv) {
                Some(Ok(part)) => part.map(Some),
                _ => Ok(None), // the walker is done
            },
        }
    }
}

/// Starts the walker and the fetchers for one file.
fn read_ahead(repo: &Arc<Repository>, content: &Content) -> PartSource {
    let (parts_in, parts) = bounded::<io::Result<Part>>(AHEAD);
    let (jobs_in, jobs) = bounded::<(BlobId, Sender<io::Result<Vec<u8>>>)>(AHEAD);
    let mut threads = Vec::new();
    let fetchers = std::thread::available_parallelism().map_or(2, usize::from).max(2);
    for _ in 0..fetchers {
        let (repo, jobs) = (repo.clone(), jobs.clone());
        threads.push(std::thread::spawn(move || {
            for (id, done) in jobs {
                let _ = done.send(fetch(&repo, &id));
            }
        }));
    }
    let (repo, content) = (repo.clone(), content.clone());
    threads.push(std::thread::spawn(move || {
        let load = |id: &BlobId| repo.read_blob(id);
        let mut reader_gone = false;
        let walked = content.for_each(&load, &mut |_, entry| {
            let part = match *entry {
                ContentEntry::Zero { length } => Part::Zeros(length),
                ContentEntry::Data { id, .. } => {
                    let (done, receiver) = bounded(1);
                    if jobs_in.send((id, done)).is_err() {
                        reader_gone = true;
                    }
                    Part::Chunk(receiver)
                }
            };
            if reader_gone || parts_in.send(Ok(part)).is_err() {
                reader_gone = true;
                // Stops the walk; nobody is left to tell.
                return Err(crate::Error::InvalidParameter("reader dropped".into()));
            }
            Ok(())
        });
        if let Err(error) = walked
            && !reader_gone
        {
            let _ = parts_in.send(Err(io::Error::other(error)));
        }
    }));
    PartSource::Ahead { parts: Some(parts), threads }
}

fn fetch(repo: &Repository, id: &BlobId) -> io::Result<Vec<u8>> {
    repo.read_blob(id).map_err(io::Error::other)
}

impl Read for FileReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.zeros_left > 0 {
                let n = out.len().min(usize::try_from(self.zeros_left).unwrap_or(usize::MAX));
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
            match self.next_part()? {
                None => return Ok(0),
                Some(Part::Zeros(length)) => self.zeros_left = length,
                Some(Part::Chunk(chunk)) => {
                    self.buffer =
                        chunk.recv().map_err(|_| io::Error::other("a chunk fetcher stopped"))??;
                    self.position = 0;
                }
            }
        }
    }
}

impl Drop for FileReader {
    /// Stops the walker (its next send fails) and the fetchers (their job queue closes), and
    /// waits for them, so no thread outlives the reader.
    fn drop(&mut self) {
        if let PartSource::Ahead { parts, threads } = &mut self.parts {
            drop(parts.take());
            for thread in threads.drain(..) {
                let _ = thread.join();
            }
        }
    }
}
