//! Path patterns, one rule set for backup excludes and restore filters (restic's): a pattern
//! that starts with `/` matches from the root, any other matches at any depth; `*` stays within
//! one path component, `**` crosses them; a trailing `/` is ignored.

use anyhow::{Context, Result};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

/// Compiles patterns into one set, matched against absolute paths.
pub fn compile(patterns: &[String]) -> Result<GlobSet> {
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        let trimmed = pattern.trim_end_matches('/');
        let anchored =
            if trimmed.starts_with('/') { trimmed.to_string() } else { format!("**/{trimmed}") };
        let glob = GlobBuilder::new(&anchored)
            .literal_separator(true)
            .build()
            .with_context(|| format!("invalid pattern {pattern:?}"))?;
        builder.add(glob);
    }
    Ok(builder.build()?)
}
