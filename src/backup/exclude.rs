//! What a backup leaves out: glob patterns (rules in `crate::pattern`), cache directories tagged per the Cache Directory Tagging spec, and
//! directories that contain a marker file.

use std::fs;
use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result};
use globset::GlobSet;

const CACHEDIR_SIGNATURE: &[u8] = b"Signature: 8a477f597d28d172789f06886806bc55";

/// Compiled exclusion rules.
pub struct Excludes {
    globs: GlobSet,
    caches: bool,
    if_present: Vec<String>,
}

impl Excludes {
    pub fn new(patterns: &[String], caches: bool, if_present: Vec<String>) -> Result<Self> {
        Ok(Self { globs: crate::pattern::compile(patterns)?, caches, if_present })
    }

    /// Reads patterns from an exclude file: one per line, `#` comments and blank lines skipped.
    pub fn read_pattern_file(path: &Path) -> Result<Vec<String>> {
        let text = fs::read_to_string(path)
            .with_context(|| format!("cannot read exclude file {}", path.display()))?;
        Ok(text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(String::from)
            .collect())
    }

    /// True if `path` (absolute) matches a pattern.
    pub fn matches_path(&self, path: &Path) -> bool {
        self.globs.is_match(path)
    }

    /// True if the directory at `path` is to be skipped for its contents.
    pub fn skips_directory(&self, path: &Path) -> bool {
        if self.if_present.iter().any(|name| path.join(name).symlink_metadata().is_ok()) {
            return true;
        }
        self.caches && is_tagged_cache(path)
    }
}

fn is_tagged_cache(dir: &Path) -> bool {
    let mut head = [0u8; CACHEDIR_SIGNATURE.len()];
    fs::File::open(dir.join("CACHEDIR.TAG"))
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| head == CACHEDIR_SIGNATURE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(patterns: &[&str]) -> Excludes {
        let patterns: Vec<String> = patterns.iter().map(ToString::to_string).collect();
        Excludes::new(&patterns, false, Vec::new()).unwrap()
    }

    #[test]
    fn restic_style_patterns() {
        let e = ex(&["*.tmp", "/var/cache", "node_modules", "build/out"]);
        assert!(e.matches_path(Path::new("/home/a/x.tmp")));
        assert!(e.matches_path(Path::new("/x.tmp")));
        assert!(!e.matches_path(Path::new("/home/a/x.tmpl")));
        assert!(e.matches_path(Path::new("/var/cache")));
        assert!(!e.matches_path(Path::new("/srv/var/cache")));
        assert!(e.matches_path(Path::new("/src/app/node_modules")));
        assert!(e.matches_path(Path::new("/p/build/out")));
        assert!(!e.matches_path(Path::new("/p/build/output")));
    }

    #[test]
    fn cache_tags_and_marker_files() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        fs::create_dir(&cache).unwrap();
        fs::write(cache.join("CACHEDIR.TAG"), [CACHEDIR_SIGNATURE, b"\n# x"].concat()).unwrap();
        let fake = dir.path().join("fake");
        fs::create_dir(&fake).unwrap();
        fs::write(fake.join("CACHEDIR.TAG"), b"not a tag").unwrap();
        let marked = dir.path().join("marked");
        fs::create_dir(&marked).unwrap();
        fs::write(marked.join(".nobackup"), b"").unwrap();
        let e = Excludes::new(&[], true, vec![".nobackup".into()]).unwrap();
        assert!(e.skips_directory(&cache));
        assert!(!e.skips_directory(&fake));
        assert!(e.skips_directory(&marked));
        let plain = Excludes::new(&[], false, Vec::new()).unwrap();
        assert!(!plain.skips_directory(&cache));
    }
}
