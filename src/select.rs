//! Choosing snapshots: filters by host, tag and path, and references (`latest`, a full id, or a
//! unique id prefix, optionally followed by `:PATH`). `latest` honours the filters, on every
//! command that takes a snapshot.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use anyhow::{Result, bail};
use cairn_format::snapshot::Snapshot;
use cairn_format::{Error, Repository, SnapshotId};

/// Which snapshots a command looks at.
#[derive(Clone, Debug, Default)]
pub struct SnapshotFilter {
    /// Any of these hosts (empty: any host).
    pub hosts: Vec<String>,
    /// Any of these groups; a group is a comma-separated list of tags that must all be set.
    pub tags: Vec<String>,
    /// Snapshots whose paths include all of these.
    pub paths: Vec<String>,
}

/// The filter as the options that set it: `--host web --tag daily` (empty for none).
impl std::fmt::Display for SnapshotFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let options = (self.hosts.iter().map(|h| ("host", h)))
            .chain(self.tags.iter().map(|t| ("tag", t)))
            .chain(self.paths.iter().map(|p| ("path", p)));
        let words: Vec<String> = options.map(|(o, v)| format!("--{o} {v}")).collect();
        f.write_str(&words.join(" "))
    }
}

impl SnapshotFilter {
    pub fn matches(&self, snapshot: &Snapshot) -> bool {
        let host_ok = self.hosts.is_empty() || self.hosts.contains(&snapshot.hostname);
        let tags_ok = self.tags.is_empty()
            || self.tags.iter().any(|group| {
                group
                    .split(',')
                    .filter(|t| !t.is_empty())
                    .all(|tag| snapshot.tags.iter().any(|t| t == tag))
            });
        let paths_ok = self.paths.iter().all(|p| snapshot.paths.contains(p));
        host_ok && tags_ok && paths_ok
    }

    /// Matching snapshots, oldest first (unreadable ones skipped, see [`readable`]).
    pub fn apply(&self, repo: &Repository) -> Result<Vec<(SnapshotId, Snapshot)>> {
        Ok(readable(repo)?.into_iter().filter(|(_, s)| self.matches(s)).collect())
    }
}

/// Every readable snapshot, oldest first. One that does not open is skipped with a warning
/// that says what to do, and the command then ends with exit 3 instead of 0.
pub fn readable(repo: &Repository) -> Result<Vec<(SnapshotId, Snapshot)>> {
    let listing = repo.snapshots()?;
    for (id, error) in &listing.unreadable {
        warn_skipped(id, error);
    }
    Ok(listing.readable)
}

/// Warns that a snapshot which does not open was skipped, and marks the result partial.
fn warn_skipped(id: &SnapshotId, error: &Error) {
    let remedy = if error.is_damage() {
        "`cairn repair snapshots` removes it (or `cairn forget` it)"
    } else {
        "a newer cairn reads it"
    };
    tracing::warn!("snapshot {} skipped: {error}; {remedy}", id.short());
    crate::outcome::note_partial();
}

/// The snapshots named by `references`, or when none is named every snapshot `filter` selects.
pub fn choose(
    repo: &Repository,
    references: &[String],
    filter: &SnapshotFilter,
) -> Result<Vec<(SnapshotId, Snapshot)>> {
    if references.is_empty() {
        return filter.apply(repo);
    }
    references.iter().map(|r| resolve(repo, r, filter)).collect()
}

/// Splits `SNAP:PATH` into the snapshot reference and the path inside it (any bytes: names
/// need not be UTF-8).
pub fn split_reference(reference: &OsStr) -> Result<(&str, Option<&Path>)> {
    let bytes = reference.as_bytes();
    let (snap, path) = match bytes.iter().position(|&b| b == b':') {
        Some(at) => (&bytes[..at], Some(Path::new(OsStr::from_bytes(&bytes[at + 1..])))),
        None => (bytes, None),
    };
    let Ok(snap) = std::str::from_utf8(snap) else {
        bail!(
            "{} does not start with a snapshot reference: use `latest` or an id",
            Path::new(reference).display()
        );
    };
    Ok((snap, path))
}

/// Resolves a snapshot reference.
pub fn resolve(
    repo: &Repository,
    reference: &str,
    filter: &SnapshotFilter,
) -> Result<(SnapshotId, Snapshot)> {
    if reference == "latest" {
        return filter.apply(repo)?.pop().ok_or_else(|| match filter.to_string() {
            options if options.is_empty() => {
                anyhow::anyhow!("latest: the repository has no snapshots yet")
            }
            options => anyhow::anyhow!(
                "latest: no snapshot matches {options}; `cairn snapshots` lists what there is"
            ),
        });
    }
    let id = resolve_id(repo, reference)?;
    let snapshot = repo.load_snapshot(&id).map_err(|e| {
        let hint = if e.is_damage() { "; `cairn repair snapshots` removes it" } else { "" };
        anyhow::anyhow!("{e}{hint}")
    })?;
    Ok((id, snapshot))
}

/// The id an id or unique id prefix names, without opening the snapshot.
pub fn resolve_id(repo: &Repository, reference: &str) -> Result<SnapshotId> {
    if reference.is_empty() || !reference.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!(
            "{reference:?} is not a snapshot reference: use `latest`, an id, or a unique id prefix"
        );
    }
    let prefix = reference.to_ascii_lowercase();
    let matches: Vec<SnapshotId> =
        repo.snapshot_ids()?.into_iter().filter(|id| id.to_hex().starts_with(&prefix)).collect();
    match matches.as_slice() {
        [id] => Ok(*id),
        [] => Err(Error::SnapshotNotFound { reference: reference.into() }.into()),
        many => {
            Err(Error::AmbiguousSnapshot { reference: reference.into(), count: many.len() }.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(host: &str, tags: &[&str], paths: &[&str]) -> Snapshot {
        Snapshot {
            paths: paths.iter().map(ToString::to_string).collect(),
            hostname: host.into(),
            tags: tags.iter().map(ToString::to_string).collect(),
            ..Snapshot::default()
        }
    }

    #[test]
    fn filters_combine() {
        let s = snap("web", &["daily", "db"], &["/srv"]);
        let f = |hosts: &[&str], tags: &[&str], paths: &[&str]| SnapshotFilter {
            hosts: hosts.iter().map(ToString::to_string).collect(),
            tags: tags.iter().map(ToString::to_string).collect(),
            paths: paths.iter().map(ToString::to_string).collect(),
        };
        assert!(f(&[], &[], &[]).matches(&s));
        assert!(f(&["web"], &["daily,db"], &["/srv"]).matches(&s));
        assert!(f(&[], &["weekly", "db"], &[]).matches(&s));
        assert!(!f(&[], &["daily,weekly"], &[]).matches(&s));
        assert!(!f(&["db1"], &[], &[]).matches(&s));
        assert!(!f(&[], &[], &["/etc"]).matches(&s));
        assert_eq!(f(&["web"], &["daily,db"], &[]).to_string(), "--host web --tag daily,db");
        assert_eq!(f(&[], &[], &[]).to_string(), "");
    }

    #[test]
    fn references_split_on_the_first_colon() {
        let split = |r: &'static [u8]| split_reference(OsStr::from_bytes(r)).unwrap();
        assert_eq!(split(b"latest:/etc/a:b"), ("latest", Some(Path::new("/etc/a:b"))));
        assert_eq!(split(b"abc"), ("abc", None));
        // Issue #15: a name that is not UTF-8 is kept byte for byte.
        let odd = split(b"latest:/srv/\xff\n");
        assert_eq!(odd.1.unwrap().as_os_str().as_bytes(), b"/srv/\xff\n");
    }
}
