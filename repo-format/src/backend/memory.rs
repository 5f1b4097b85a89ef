//! An in-memory backend for tests and fault injection.

use std::collections::BTreeMap;
use std::io;
use std::sync::RwLock;

use super::{Backend, ObjectInfo};

/// Objects in a map behind a lock.
#[derive(Default)]
pub struct MemoryBackend {
    objects: RwLock<BTreeMap<String, Vec<u8>>>,
}

impl MemoryBackend {
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces an object's bytes without any checks (tests damage objects this way).
    pub fn overwrite(&self, name: &str, data: Vec<u8>) {
        self.objects.write().expect("lock").insert(name.to_string(), data);
    }
}

fn not_found(name: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{name} not found"))
}

impl Backend for MemoryBackend {
    fn location(&self) -> String {
        "memory".into()
    }

    fn create(&self) -> io::Result<()> {
        Ok(())
    }

    fn put(&self, name: &str, data: &[u8]) -> io::Result<()> {
        self.overwrite(name, data.to_vec());
        Ok(())
    }

    fn get(&self, name: &str) -> io::Result<Vec<u8>> {
        let objects = self.objects.read().expect("lock");
        objects.get(name).cloned().ok_or_else(|| not_found(name))
    }

    fn get_range_into(
        &self,
        name: &str,
        offset: u64,
        length: u64,
        buffer: &mut Vec<u8>,
    ) -> io::Result<()> {
        let objects = self.objects.read().expect("lock");
        let data = objects.get(name).ok_or_else(|| not_found(name))?;
        let start = usize::try_from(offset).map_err(io::Error::other)?;
        let end = start.saturating_add(usize::try_from(length).map_err(io::Error::other)?);
        let range = data
            .get(start..end)
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "range past the end"))?;
        buffer.clear();
        buffer.extend_from_slice(range);
        Ok(())
    }

    fn list(&self, prefix: &str) -> io::Result<Vec<ObjectInfo>> {
        let objects = self.objects.read().expect("lock");
        Ok(objects
            .range(prefix.to_string()..)
            .take_while(|(name, _)| name.starts_with(prefix))
            .map(|(name, data)| ObjectInfo { name: name.clone(), size: data.len() as u64 })
            .collect())
    }

    fn stat(&self, name: &str) -> io::Result<Option<u64>> {
        Ok(self.objects.read().expect("lock").get(name).map(|d| d.len() as u64))
    }

    fn delete(&self, name: &str) -> io::Result<()> {
        self.objects.write().expect("lock").remove(name);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn conformance() {
        super::super::conformance(&super::MemoryBackend::new());
    }
}
