//! Where repository objects live. The interface is shaped for object stores: whole-object put,
//! get, ranged get, list by prefix, stat, delete; no append and no rename, so every backend can
//! offer the same guarantees. A put is atomic: readers see the whole object or none of it.
//!
//! Object names: `config`, `keys/<id>`, `data/<first 2 hex digits>/<pack id>`, `index/<id>`,
//! `snapshots/<id>`, `locks/<id>`.

#[cfg(any(test, feature = "testing"))]
mod fault;
mod local;
mod memory;
mod remote;

#[cfg(any(test, feature = "testing"))]
pub use fault::FaultyBackend;
pub use local::LocalBackend;
pub use memory::MemoryBackend;
pub use remote::{RemoteBackend, RemoteOptions, S3Location, SftpLocation};

use std::io;

use crate::id::PackId;

/// An object name and its size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    pub name: String,
    pub size: u64,
}

/// A temporary object that a put never finished (its process was killed), found so that it
/// can be removed once no running process can still own it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leftover {
    /// Its name, as [`Backend::delete`] takes it.
    pub name: String,
    pub size: u64,
    /// When it was last written (Unix seconds).
    pub modified_s: i64,
}

/// Storage for immutable objects. Errors are plain `io::Error`s; `NotFound` means the object
/// does not exist. The repository layer adds the object name to every error.
pub trait Backend: Send + Sync {
    /// A human-readable location for messages (`/srv/repo`, `memory`).
    fn location(&self) -> String;
    /// Creates what the backend needs before the first object (directories, buckets).
    fn create(&self) -> io::Result<()>;
    /// Stores a whole object atomically, replacing any object of the same name.
    fn put(&self, name: &str, data: &[u8]) -> io::Result<()>;
    /// Reads a whole object.
    fn get(&self, name: &str) -> io::Result<Vec<u8>>;
    /// Reads `length` bytes at `offset` into `buffer`, replacing its contents (a caller reading
    /// many ranges reuses one allocation); reading past the end is an `UnexpectedEof` error.
    fn get_range_into(
        &self,
        name: &str,
        offset: u64,
        length: u64,
        buffer: &mut Vec<u8>,
    ) -> io::Result<()>;
    /// [`Backend::get_range_into`] a new buffer.
    fn get_range(&self, name: &str, offset: u64, length: u64) -> io::Result<Vec<u8>> {
        let mut buffer = Vec::new();
        self.get_range_into(name, offset, length, &mut buffer)?;
        Ok(buffer)
    }
    /// Lists objects whose name starts with `prefix` (which ends in `/`), in any order.
    fn list(&self, prefix: &str) -> io::Result<Vec<ObjectInfo>>;
    /// Size of an object, `None` if it does not exist.
    fn stat(&self, name: &str) -> io::Result<Option<u64>>;
    /// Deletes an object; deleting a missing object is not an error.
    fn delete(&self, name: &str) -> io::Result<()>;
    /// How many pack uploads a writer should keep in flight: one saturates a local disk, a
    /// remote store needs several to hide each request's latency.
    fn parallel_uploads(&self) -> usize {
        1
    }
    /// Temporary objects of puts that never finished, anywhere in the repository. Backends
    /// whose puts leave none behind (object stores) have none.
    fn leftovers(&self) -> io::Result<Vec<Leftover>> {
        Ok(Vec::new())
    }
    /// Whether reads cross a network (the repository then keeps local copies of what never
    /// changes: snapshots and trees).
    fn is_remote(&self) -> bool {
        false
    }
}

/// The object name of a pack.
pub fn pack_name(id: &PackId) -> String {
    let hex = id.to_hex();
    format!("data/{}/{hex}", &hex[..2])
}

/// The id in the last path component of an object name.
pub fn id_part(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// Shared checks every backend must pass, on an empty location; run by each backend's tests
/// (the remote ones from the workspace's integration tests, against real servers). Panics on
/// the first failure. Test code: only with the `testing` feature.
#[cfg(any(test, feature = "testing"))]
pub fn conformance(backend: &dyn Backend) {
    backend.create().unwrap();
    assert_eq!(backend.stat("config").unwrap(), None);
    assert_eq!(backend.get("config").unwrap_err().kind(), io::ErrorKind::NotFound);
    backend.put("config", b"abc").unwrap();
    backend.put("config", b"abcdef").unwrap();
    assert_eq!(backend.get("config").unwrap(), b"abcdef");
    assert_eq!(backend.stat("config").unwrap(), Some(6));
    assert_eq!(backend.get_range("config", 2, 3).unwrap(), b"cde");
    assert!(backend.get_range("config", 4, 10).is_err());
    let big: Vec<u8> = (0..5_000_000u32).map(|i| (i % 251) as u8).collect();
    backend.put("data/ab/big", &big).unwrap();
    assert_eq!(backend.get("data/ab/big").unwrap(), big);
    assert_eq!(backend.get_range("data/ab/big", 4_000_000, 10).unwrap(), big[4_000_000..4_000_010]);
    let mut reused = vec![7u8; 100];
    backend.get_range_into("data/ab/big", 1_000_000, 3_000_000, &mut reused).unwrap();
    assert!(reused == big[1_000_000..4_000_000], "a reused buffer holds the range");
    backend.get_range_into("config", 1, 2, &mut reused).unwrap();
    assert_eq!(reused, b"bc", "and only the range, however large it was");
    let past_end = backend.get_range_into("config", 4, 10, &mut reused);
    assert_eq!(past_end.as_ref().unwrap_err().kind(), io::ErrorKind::UnexpectedEof, "{past_end:?}");
    for i in 0..1500 {
        backend.put(&format!("index/{i:05}"), &[1]).unwrap();
    }
    let mut listed = backend.list("index/").unwrap();
    listed.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(listed.len(), 1500);
    assert_eq!(listed[7], ObjectInfo { name: "index/00007".into(), size: 1 });
    let data = backend.list("data/").unwrap();
    assert_eq!(data, vec![ObjectInfo { name: "data/ab/big".into(), size: 5_000_000 }]);
    assert!(backend.list("snapshots/").unwrap().is_empty());
    backend.delete("data/ab/big").unwrap();
    backend.delete("data/ab/big").unwrap();
    assert_eq!(backend.stat("data/ab/big").unwrap(), None);
    std::thread::scope(|s| {
        for t in 0..4 {
            s.spawn(move || {
                for i in 0..50 {
                    backend.put(&format!("snapshots/{t}-{i}"), &[t; 100]).unwrap();
                }
            });
        }
    });
    assert_eq!(backend.list("snapshots/").unwrap().len(), 200);
}
