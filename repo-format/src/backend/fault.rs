//! A wrapper that makes another backend fail on demand: after a number of successful puts, or
//! on every put with a given prefix. Tests use it to simulate a full disk or a dying server.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use super::{Backend, Leftover, ObjectInfo};

/// Fails puts once a budget is spent.
pub struct FaultyBackend {
    inner: Arc<dyn Backend>,
    puts_left: AtomicI64,
}

impl FaultyBackend {
    /// Allows `puts` successful puts, then fails every put with "no space left on device".
    pub fn fail_after_puts(inner: Arc<dyn Backend>, puts: i64) -> Self {
        Self {
            inner,
            puts_left: AtomicI64::new(puts),
        }
    }
}

impl Backend for FaultyBackend {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn create(&self) -> io::Result<()> {
        self.inner.create()
    }
    fn put(&self, name: &str, data: &[u8]) -> io::Result<()> {
        if self.puts_left.fetch_sub(1, Ordering::SeqCst) <= 0 {
            return Err(io::Error::from_raw_os_error(libc_enospc()));
        }
        self.inner.put(name, data)
    }
    fn get(&self, name: &str) -> io::Result<Vec<u8>> {
        self.inner.get(name)
    }
    fn get_range_into(
        &self,
        name: &str,
        offset: u64,
        length: u64,
        buffer: &mut Vec<u8>,
    ) -> io::Result<()> {
        self.inner.get_range_into(name, offset, length, buffer)
    }
    fn list(&self, prefix: &str) -> io::Result<Vec<ObjectInfo>> {
        self.inner.list(prefix)
    }
    fn stat(&self, name: &str) -> io::Result<Option<u64>> {
        self.inner.stat(name)
    }
    fn delete(&self, name: &str) -> io::Result<()> {
        self.inner.delete(name)
    }
    fn leftovers(&self) -> io::Result<Vec<Leftover>> {
        self.inner.leftovers()
    }
}

/// ENOSPC on Linux.
const fn libc_enospc() -> i32 {
    28
}
