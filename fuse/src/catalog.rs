//! The snapshot catalog of a whole-repository mount: which snapshots are shown and under which
//! names in `ids/`, `snapshots/`, `hosts/<host>/` and `tags/<tag>/`.
//!
//! Invariant: inside one listing every name is unique and names depend only on the snapshots
//! themselves, so a snapshot keeps its name when others are added: a time name clash is resolved
//! by suffixing the short id to every snapshot but the oldest.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_format::snapshot::Snapshot;
use cairn_format::{Repository, SnapshotId};
use parking_lot::{Mutex, RwLock};

/// Decides which snapshots the mount shows (`--host`, `--tag`).
pub type SnapshotFilter = Box<dyn Fn(&Snapshot) -> bool + Send + Sync>;

/// A directory of the whole-repository layout.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Listing {
    Ids,
    Snapshots,
    Hosts,
    Tags,
    Host(String),
    Tag(String),
}

/// One entry of a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CatalogEntry {
    /// `hosts/<host>` or `tags/<tag>`.
    Group(String, Listing),
    /// A snapshot's root directory.
    Snapshot(String, SnapshotId),
    /// The `latest` symlink and its target, relative to the listing.
    Latest(String),
}

impl CatalogEntry {
    pub fn name(&self) -> &str {
        match self {
            CatalogEntry::Group(name, _) | CatalogEntry::Snapshot(name, _) => name,
            CatalogEntry::Latest(_) => LATEST,
        }
    }
}

/// Name of the symlink to the newest snapshot in each listing.
pub const LATEST: &str = "latest";

type Named = Vec<(String, SnapshotId)>;

/// Snapshots and their names at one moment.
#[derive(Default)]
pub struct Catalog {
    snapshots: HashMap<SnapshotId, Arc<Snapshot>>,
    /// Snapshots the filter left out, so a refresh does not load them again.
    filtered_out: std::collections::HashSet<SnapshotId>,
    ids: Named,
    times: Named,
    hosts: BTreeMap<String, Named>,
    tags: BTreeMap<String, Named>,
}

impl Catalog {
    /// Names every snapshot; `snapshots` in any order.
    pub fn build(snapshots: HashMap<SnapshotId, Arc<Snapshot>>) -> Self {
        let mut ordered: Vec<(&SnapshotId, &Arc<Snapshot>)> = snapshots.iter().collect();
        ordered.sort_by_key(|(id, s)| (s.time_ns, **id));
        let mut hosts: BTreeMap<String, Vec<_>> = BTreeMap::new();
        let mut tags: BTreeMap<String, Vec<_>> = BTreeMap::new();
        for &(id, s) in &ordered {
            hosts.entry(group_name(&s.hostname)).or_default().push((id, s));
            for tag in &s.tags {
                tags.entry(group_name(tag)).or_default().push((id, s));
            }
        }
        Self {
            ids: id_names(&ordered),
            times: time_names(&ordered),
            hosts: hosts.into_iter().map(|(h, l)| (h, time_names(&l))).collect(),
            tags: tags.into_iter().map(|(t, l)| (t, time_names(&l))).collect(),
            snapshots,
            filtered_out: std::collections::HashSet::new(),
        }
    }

    pub fn snapshot(&self, id: &SnapshotId) -> Option<&Arc<Snapshot>> {
        self.snapshots.get(id)
    }

    pub fn is_empty(&self) -> bool {
        self.snapshots.is_empty()
    }

    /// The entries of a listing (`None` when a host or tag has no snapshots any more).
    pub fn entries(&self, listing: &Listing) -> Option<Vec<CatalogEntry>> {
        let named = match listing {
            Listing::Ids => &self.ids,
            Listing::Snapshots => &self.times,
            Listing::Host(host) => self.hosts.get(host)?,
            Listing::Tag(tag) => self.tags.get(tag)?,
            Listing::Hosts => return Some(groups(&self.hosts, Listing::Host)),
            Listing::Tags => return Some(groups(&self.tags, Listing::Tag)),
        };
        let mut entries: Vec<CatalogEntry> =
            named.iter().map(|(name, id)| CatalogEntry::Snapshot(name.clone(), *id)).collect();
        if let Some((newest, _)) = named.last() {
            entries.push(CatalogEntry::Latest(newest.clone()));
        }
        Some(entries)
    }

    /// The entry called `name` in a listing (without building the whole listing).
    pub fn find(&self, listing: &Listing, name: &str) -> Option<CatalogEntry> {
        let named = match listing {
            Listing::Ids => &self.ids,
            Listing::Snapshots => &self.times,
            Listing::Host(host) => self.hosts.get(host)?,
            Listing::Tag(tag) => self.tags.get(tag)?,
            Listing::Hosts => {
                return self.hosts.contains_key(name).then(|| group(name, Listing::Host));
            }
            Listing::Tags => {
                return self.tags.contains_key(name).then(|| group(name, Listing::Tag));
            }
        };
        if name == LATEST {
            let (newest, _) = named.last()?;
            return Some(CatalogEntry::Latest(newest.clone()));
        }
        let (name, id) = named.iter().find(|(n, _)| n == name)?;
        Some(CatalogEntry::Snapshot(name.clone(), *id))
    }
}

fn group(name: &str, make: fn(String) -> Listing) -> CatalogEntry {
    CatalogEntry::Group(name.to_string(), make(name.to_string()))
}

fn groups(map: &BTreeMap<String, Named>, make: fn(String) -> Listing) -> Vec<CatalogEntry> {
    map.keys().map(|name| group(name, make)).collect()
}

/// `2026-11-22T04:11:18Z`, the snapshot time in UTC to the second; later snapshots with the
/// same name get `-<short id>` appended.
fn time_names(ordered: &[(&SnapshotId, &Arc<Snapshot>)]) -> Named {
    let mut taken = std::collections::HashSet::new();
    ordered
        .iter()
        .map(|&(id, s)| {
            let mut name = rfc3339_utc(s.time_ns);
            if !taken.insert(name.clone()) {
                name = format!("{name}-{}", id.short());
                taken.insert(name.clone());
            }
            (name, *id)
        })
        .collect()
}

/// Short ids, or the full id for snapshots whose short ids collide.
fn id_names(ordered: &[(&SnapshotId, &Arc<Snapshot>)]) -> Named {
    let mut count: HashMap<String, usize> = HashMap::new();
    for (id, _) in ordered {
        *count.entry(id.short()).or_default() += 1;
    }
    ordered
        .iter()
        .map(|&(id, _)| match count[&id.short()] {
            1 => (id.short(), *id),
            _ => (id.to_hex(), *id),
        })
        .collect()
}

fn rfc3339_utc(time_ns: i64) -> String {
    chrono::DateTime::from_timestamp(time_ns.div_euclid(1_000_000_000), 0)
        .map_or_else(|| format!("time-{time_ns}"), |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
}

/// A host or tag as a directory name: `/` cannot appear in a name and `.`, `..` and the empty
/// name are not directories of their own, so those are escaped.
fn group_name(raw: &str) -> String {
    match raw {
        "" => "_".to_string(),
        "." | ".." => format!("_{raw}"),
        _ => raw.replace('/', "_"),
    }
}

/// The catalog of a live mount: re-listed from the repository at most once per `ttl`, so
/// snapshots made after mounting appear without a remount. Already-loaded snapshots are never
/// fetched again (they are immutable).
pub struct LiveCatalog {
    repo: Arc<Repository>,
    filter: SnapshotFilter,
    ttl: Duration,
    current: RwLock<(Instant, Arc<Catalog>)>,
    refreshing: Mutex<()>,
}

impl LiveCatalog {
    /// Loads the catalog once, so a broken repository fails before anything is mounted.
    pub fn load(
        repo: Arc<Repository>,
        filter: SnapshotFilter,
        ttl: Duration,
    ) -> cairn_format::Result<Self> {
        let catalog = Self {
            repo,
            filter,
            ttl,
            current: RwLock::new((Instant::now(), Arc::default())),
            refreshing: Mutex::new(()),
        };
        let fresh = catalog.reload(&Catalog::default(), true)?;
        *catalog.current.write() = (Instant::now(), Arc::new(fresh));
        Ok(catalog)
    }

    /// The current catalog, refreshed first when it is older than the TTL. A failed refresh
    /// is logged and the previous catalog kept: a flaky backend must not empty the mount.
    pub fn get(&self) -> Arc<Catalog> {
        let (loaded, catalog) = self.current.read().clone();
        if loaded.elapsed() < self.ttl {
            return catalog;
        }
        let _one_refresher = self.refreshing.lock();
        let (loaded, catalog) = self.current.read().clone();
        if loaded.elapsed() < self.ttl {
            return catalog;
        }
        let next = match self.reload(&catalog, false) {
            Ok(fresh) => Arc::new(fresh),
            Err(error) => {
                tracing::warn!(%error, "could not refresh the snapshot list; showing the previous one");
                catalog
            }
        };
        *self.current.write() = (Instant::now(), next.clone());
        next
    }

    /// The catalog as the repository lists it now. `initial`: the first load, right after the
    /// repository was opened (and its index synced).
    fn reload(&self, previous: &Catalog, initial: bool) -> cairn_format::Result<Catalog> {
        let ids = self.repo.snapshot_ids()?;
        let mut snapshots = HashMap::with_capacity(ids.len());
        let mut filtered_out = std::collections::HashSet::new();
        let mut added = false;
        for id in ids {
            if let Some(known) = previous.snapshots.get(&id) {
                snapshots.insert(id, known.clone());
            } else if previous.filtered_out.contains(&id) {
                filtered_out.insert(id);
            } else {
                let snapshot = match self.repo.load_snapshot(&id) {
                    Ok(snapshot) => snapshot,
                    Err(cairn_format::Error::ObjectNotFound { .. }) => continue,
                    // A damaged snapshot is left out of the mount, not fatal to it.
                    Err(e) if e.is_unreadable_object() => {
                        tracing::warn!(snapshot = %id, error = %e, "snapshot left out of the mount; `cairn repair snapshots` removes a damaged one");
                        filtered_out.insert(id);
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                if (self.filter)(&snapshot) {
                    snapshots.insert(id, Arc::new(snapshot));
                    added = true;
                } else {
                    filtered_out.insert(id);
                }
            }
        }
        if added && !initial {
            // A new snapshot's blobs arrived in index segments this mount has not read yet.
            for (segment, error) in self.repo.sync_index_tolerant()?.1 {
                tracing::warn!(%segment, %error, "index segment unreadable; blobs only it lists read as missing (`cairn repair index` rebuilds the index)");
            }
        }
        let mut catalog = Catalog::build(snapshots);
        catalog.filtered_out = filtered_out;
        Ok(catalog)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(time_s: i64, host: &str, tags: &[&str]) -> Snapshot {
        Snapshot {
            time_ns: time_s * 1_000_000_000,
            hostname: host.into(),
            tags: tags.iter().map(ToString::to_string).collect(),
            ..Snapshot::default()
        }
    }

    fn catalog(list: &[(u8, Snapshot)]) -> Catalog {
        Catalog::build(
            list.iter().map(|(n, s)| (SnapshotId([*n; 32]), Arc::new(s.clone()))).collect(),
        )
    }

    fn names(entries: &[CatalogEntry]) -> Vec<String> {
        entries.iter().map(|e| e.name().to_string()).collect()
    }

    #[test]
    fn listings_name_snapshots_by_time_host_tag_and_id() {
        let c = catalog(&[
            (1, snapshot(1_700_000_000, "web", &["daily"])),
            (2, snapshot(1_700_000_100, "db", &["daily", "vm"])),
        ]);
        assert_eq!(
            names(&c.entries(&Listing::Snapshots).unwrap()),
            ["2023-11-14T22:13:20Z", "2023-11-14T22:15:00Z", "latest"]
        );
        assert_eq!(names(&c.entries(&Listing::Hosts).unwrap()), ["db", "web"]);
        assert_eq!(names(&c.entries(&Listing::Tags).unwrap()), ["daily", "vm"]);
        assert_eq!(names(&c.entries(&Listing::Ids).unwrap()), ["01010101", "02020202", "latest"]);
        assert_eq!(
            c.find(&Listing::Tag("daily".into()), "latest"),
            Some(CatalogEntry::Latest("2023-11-14T22:15:00Z".into()))
        );
        assert_eq!(c.entries(&Listing::Host("gone".into())), None);
    }

    #[test]
    fn clashing_times_get_the_short_id_and_the_oldest_keeps_its_name() {
        let c = catalog(&[
            (9, snapshot(1_700_000_000, "a", &[])),
            (3, snapshot(1_700_000_000, "a", &[])),
        ]);
        assert_eq!(
            c.find(&Listing::Snapshots, "2023-11-14T22:13:20Z"),
            Some(CatalogEntry::Snapshot("2023-11-14T22:13:20Z".into(), SnapshotId([3; 32])))
        );
        assert!(c.find(&Listing::Snapshots, "2023-11-14T22:13:20Z-09090909").is_some());
    }

    #[test]
    fn hostile_host_and_tag_names_become_single_components() {
        let c = catalog(&[(1, snapshot(0, "../etc", &["a/b", "..", ""]))]);
        assert_eq!(names(&c.entries(&Listing::Hosts).unwrap()), [".._etc"]);
        assert_eq!(names(&c.entries(&Listing::Tags).unwrap()), ["_", "_..", "a_b"]);
    }

    #[test]
    fn colliding_short_ids_fall_back_to_full_ids() {
        let mut a = [7u8; 32];
        a[31] = 1;
        let c = Catalog::build(
            [(SnapshotId(a), snapshot(1, "h", &[])), (SnapshotId([7; 32]), snapshot(2, "h", &[]))]
                .into_iter()
                .map(|(id, s)| (id, Arc::new(s)))
                .collect(),
        );
        let ids = names(&c.entries(&Listing::Ids).unwrap());
        assert!(ids.iter().all(|n| n == LATEST || n.len() == 64), "{ids:?}");
    }
}
