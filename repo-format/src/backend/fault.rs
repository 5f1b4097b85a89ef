//! A wrapper that makes another backend fail on demand: after a number of successful puts (a
//! full disk, a dying server), or after a number of operations of any kind (a process killed
//! at that point, which does nothing more). Tests use it for fault injection through the
//! backend seam.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use super::{Backend, Leftover, ObjectInfo};

/// Fails puts once a budget is spent, or every operation once another is.
pub struct FaultyBackend {
    inner: Arc<dyn Backend>,
    puts_left: AtomicI64,
    operations_left: AtomicI64,
    operations: AtomicI64,
}

impl FaultyBackend {
    /// Allows `puts` successful puts, then fails every put with "no space left on device".
    pub fn fail_after_puts(inner: Arc<dyn Backend>, puts: i64) -> Self {
        Self {
            inner,
            puts_left: AtomicI64::new(puts),
            operations_left: AtomicI64::new(i64::MAX),
            operations: AtomicI64::new(0),
        }
    }

    /// Passes everything through until [`FaultyBackend::die_after`] is called.
    pub fn healthy(inner: Arc<dyn Backend>) -> Self {
        Self::fail_after_puts(inner, i64::MAX)
    }

    /// From now on answers `operations` more operations, then fails every one, as if the
    /// process using it had been killed there.
    pub fn die_after(&self, operations: i64) {
        self.operations_left.store(operations, Ordering::SeqCst);
    }

    /// How many operations were asked of it so far.
    pub fn operations(&self) -> i64 {
        self.operations.load(Ordering::SeqCst)
    }

    fn alive(&self) -> io::Result<()> {
        self.operations.fetch_add(1, Ordering::SeqCst);
        if self.operations_left.fetch_sub(1, Ordering::SeqCst) <= 0 {
            return Err(io::Error::other("stopped here by the test (FaultyBackend::die_after)"));
        }
        Ok(())
    }
}

impl Backend for FaultyBackend {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn create(&self) -> io::Result<()> {
        self.alive()?;
        self.inner.create()
    }
    fn put(&self, name: &str, data: &[u8]) -> io::Result<()> {
        self.alive()?;
        if self.puts_left.fetch_sub(1, Ordering::SeqCst) <= 0 {
            return Err(io::Error::from_raw_os_error(libc_enospc()));
        }
        self.inner.put(name, data)
    }
    fn get(&self, name: &str) -> io::Result<Vec<u8>> {
        self.alive()?;
        self.inner.get(name)
    }
    fn get_range_into(
        &self,
        name: &str,
        offset: u64,
        length: u64,
        buffer: &mut Vec<u8>,
    ) -> io::Result<()> {
        self.alive()?;
        self.inner.get_range_into(name, offset, length, buffer)
    }
    fn list(&self, prefix: &str) -> io::Result<Vec<ObjectInfo>> {
        self.alive()?;
        self.inner.list(prefix)
    }
    fn stat(&self, name: &str) -> io::Result<Option<u64>> {
        self.alive()?;
        self.inner.stat(name)
    }
    fn delete(&self, name: &str) -> io::Result<()> {
        self.alive()?;
        self.inner.delete(name)
    }
    fn leftovers(&self) -> io::Result<Vec<Leftover>> {
        self.alive()?;
        self.inner.leftovers()
    }
}

/// ENOSPC on Linux.
const fn libc_enospc() -> i32 {
    28
}
