//! Errors about a path that is not in a snapshot, told with what the user needs next: which
//! snapshot and host `latest` turned out to be, that snapshot paths are absolute, and when
//! another host's snapshot is the newer one, the `--host` that picks this machine's.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Result, anyhow};
use cairn_format::snapshot::Snapshot;
use cairn_format::{Repository, SnapshotId};

use super::hostname;
use super::output::table;
use crate::dump::NotInSnapshot;
use crate::select::{SnapshotFilter, resolve};

/// The snapshot a command resolved a reference to, with what it needs to explain errors.
pub struct Chosen {
    pub id: SnapshotId,
    pub snapshot: Snapshot,
    reference: String,
    filter: SnapshotFilter,
}

impl Chosen {
    /// Resolves `reference` (`latest`, an id or a prefix) among the snapshots `filter` selects.
    pub fn resolve(repo: &Repository, reference: &str, filter: SnapshotFilter) -> Result<Self> {
        let (id, snapshot) = resolve(repo, reference, &filter)?;
        Ok(Chosen { id, snapshot, reference: reference.to_string(), filter })
    }

    /// `error` with the explanation when it is a path the snapshot does not hold.
    pub fn explain(&self, repo: &Repository, error: anyhow::Error) -> anyhow::Error {
        let Some(missing) = error.downcast_ref::<NotInSnapshot>() else {
            return error;
        };
        let mut text = self.not_in(&missing.path);
        if missing.path.is_relative() {
            let _ = write!(
                text,
                "; paths in a snapshot are absolute, as they were backed up: try /{}",
                missing.path.display()
            );
        }
        if let Some(suggestion) = self.this_host(repo) {
            text += &suggestion;
        }
        anyhow!(text)
    }

    fn not_in(&self, path: &Path) -> String {
        let s = &self.snapshot;
        let which = format!(
            "snapshot {} (host {}, {})",
            self.id.short(),
            s.hostname,
            table::time(s.time_ns)
        );
        match self.reference.as_str() {
            "latest" => format!("{} is not in latest, which is {which}", path.display()),
            _ => format!("{} is not in {which}", path.display()),
        }
    }

    /// "; the newest is another host's: `--host vm1` takes this host's latest (1a2b3c4d, ...)".
    fn this_host(&self, repo: &Repository) -> Option<String> {
        let me = hostname();
        if self.reference != "latest"
            || !self.filter.hosts.is_empty()
            || self.snapshot.hostname == me
        {
            return None;
        }
        let mine = SnapshotFilter { hosts: vec![me.clone()], ..self.filter.clone() };
        let (id, s) = mine.apply(repo).ok()?.pop()?;
        Some(format!(
            "; it is another host's, newer than this host's latest: `--host {me}` takes that \
             one ({}, {})",
            id.short(),
            table::time(s.time_ns)
        ))
    }
}
