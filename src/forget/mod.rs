//! Retention policies: which snapshots `forget` keeps, and why (docs/retention.md).
//!
//! Semantics follow restic's, so existing policies mean the same thing here. Within a group,
//! snapshots are taken newest first. `--keep-last n` keeps the n newest. Each calendar rule
//! (`hourly`, `daily`, `weekly`, `monthly`, `yearly`) keeps the newest snapshot of each of the n
//! most recent periods that have a snapshot; periods are in the local time the snapshot
//! recorded (its own UTC offset, so a DST change or a host moved between zones buckets each
//! snapshot by its own wall clock), weeks are ISO 8601 weeks. `--keep-within d` keeps every
//! snapshot no older than d before the group's newest snapshot (not before now: a host that
//! stopped backing up keeps its last snapshots). `--keep-tag t` keeps snapshots tagged t.
//! Protected snapshots are always kept. A count of -1 means "every period".

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use cairn_format::snapshot::Snapshot;
use cairn_format::{Repository, SnapshotId};
use chrono::{DateTime, Datelike, FixedOffset, Months, TimeDelta, Timelike};
use serde::Serialize;

use crate::progress::Progress;
use crate::select::SnapshotFilter;

/// A retention policy; counts of 0 disable a rule, -1 means unlimited.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Policy {
    pub last: i64,
    pub hourly: i64,
    pub daily: i64,
    pub weekly: i64,
    pub monthly: i64,
    pub yearly: i64,
    pub within: Option<CalendarSpan>,
    pub tags: Vec<String>,
}

impl Policy {
    /// True when no rule is set: such a policy would remove everything, so it is refused.
    pub fn is_empty(&self) -> bool {
        [self.last, self.hourly, self.daily, self.weekly, self.monthly, self.yearly]
            .iter()
            .all(|&n| n == 0)
            && self.within.is_none()
            && self.tags.is_empty()
    }
}

/// A duration in calendar units, as `--keep-within 1y6m2d12h` gives it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CalendarSpan {
    pub years: u32,
    pub months: u32,
    pub days: u32,
    pub hours: u32,
}

impl std::str::FromStr for CalendarSpan {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("{text:?}: expected a duration such as 1y6m, 14d or 36h");
        let mut span = CalendarSpan::default();
        let mut digits = String::new();
        for c in text.trim().chars() {
            if c.is_ascii_digit() {
                digits.push(c);
                continue;
            }
            let n: u32 = digits.parse().map_err(|_| bad())?;
            digits.clear();
            match c {
                'y' => span.years += n,
                'm' => span.months += n,
                'd' => span.days += n,
                'h' => span.hours += n,
                _ => return Err(bad()),
            }
        }
        if !digits.is_empty() || text.trim().is_empty() {
            return Err(bad());
        }
        Ok(span)
    }
}

impl CalendarSpan {
    /// `time` minus this span, in calendar terms (a month back from 31 March is 28/29 Feb).
    fn before(&self, time: DateTime<FixedOffset>) -> Option<DateTime<FixedOffset>> {
        time.checked_sub_months(Months::new(self.years * 12 + self.months))?
            .checked_sub_signed(TimeDelta::days(i64::from(self.days)))?
            .checked_sub_signed(TimeDelta::hours(i64::from(self.hours)))
    }
}

/// Why a snapshot is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Reason {
    Last,
    Hourly,
    Daily,
    Weekly,
    Monthly,
    Yearly,
    Within,
    Tag,
    Protected,
}

/// The verdict for one snapshot.
#[derive(Clone, Debug, Serialize)]
pub struct Decision {
    pub id: SnapshotId,
    pub time: DateTime<FixedOffset>,
    /// Empty: removed.
    pub reasons: Vec<Reason>,
}

impl Decision {
    pub fn keep(&self) -> bool {
        !self.reasons.is_empty()
    }
}

/// The snapshot's time in the local time it recorded.
pub fn local_time(snapshot: &Snapshot) -> DateTime<FixedOffset> {
    let offset = FixedOffset::east_opt(snapshot.utc_offset_s)
        .unwrap_or_else(|| FixedOffset::east_opt(0).expect("UTC"));
    DateTime::from_timestamp_nanos(snapshot.time_ns).with_timezone(&offset)
}

/// Applies the policy to one group; returns a decision per snapshot, newest first.
pub fn apply(policy: &Policy, group: &[(SnapshotId, Snapshot)]) -> Vec<Decision> {
    let mut snapshots: Vec<&(SnapshotId, Snapshot)> = group.iter().collect();
    snapshots.sort_by(|a, b| b.1.time_ns.cmp(&a.1.time_ns).then(b.0.cmp(&a.0)));
    let newest = snapshots.first().map(|(_, s)| local_time(s));
    let mut keeper = Keeper::new(policy, newest);
    (snapshots.into_iter())
        .map(|(id, snapshot)| {
            let time = local_time(snapshot);
            Decision { id: *id, time, reasons: keeper.reasons(snapshot, &time) }
        })
        .collect()
}

/// The policy's rules with what they have kept so far, asked newest snapshot first.
struct Keeper<'a> {
    policy: &'a Policy,
    rules: [CalendarRule; 5],
    last_left: i64,
    /// `--keep-within`: snapshots at or after this time are kept.
    within_since: Option<DateTime<FixedOffset>>,
}

impl<'a> Keeper<'a> {
    fn new(policy: &'a Policy, newest: Option<DateTime<FixedOffset>>) -> Self {
        Keeper {
            policy,
            rules: [
                CalendarRule::new(Reason::Hourly, policy.hourly, hour_of),
                CalendarRule::new(Reason::Daily, policy.daily, day_of),
                CalendarRule::new(Reason::Weekly, policy.weekly, iso_week_of),
                CalendarRule::new(Reason::Monthly, policy.monthly, month_of),
                CalendarRule::new(Reason::Yearly, policy.yearly, year_of),
            ],
            last_left: policy.last,
            within_since: newest.zip(policy.within).and_then(|(t, span)| span.before(t)),
        }
    }

    /// Why the next snapshot (older than every one asked before) is kept; empty: it is not.
    fn reasons(&mut self, snapshot: &Snapshot, time: &DateTime<FixedOffset>) -> Vec<Reason> {
        let mut reasons = Vec::new();
        if snapshot.protected {
            reasons.push(Reason::Protected);
        }
        if self.last_left != 0 {
            reasons.push(Reason::Last);
            self.last_left -= 1;
        }
        for rule in &mut self.rules {
            if rule.keeps(time) {
                reasons.push(rule.reason);
            }
        }
        if self.within_since.is_some_and(|since| *time >= since) {
            reasons.push(Reason::Within);
        }
        if self.policy.tags.iter().any(|t| snapshot.tags.contains(t)) {
            reasons.push(Reason::Tag);
        }
        reasons
    }
}

/// A calendar rule while it walks a group newest first: it keeps the first snapshot of each
/// period until it has kept `left` (negative: no limit).
struct CalendarRule {
    reason: Reason,
    left: i64,
    period: fn(&DateTime<FixedOffset>) -> i64,
    previous: Option<i64>,
}

impl CalendarRule {
    fn new(reason: Reason, count: i64, period: fn(&DateTime<FixedOffset>) -> i64) -> Self {
        Self { reason, left: count, period, previous: None }
    }

    fn keeps(&mut self, time: &DateTime<FixedOffset>) -> bool {
        let period = (self.period)(time);
        if self.left == 0 || self.previous == Some(period) {
            return false;
        }
        self.left -= 1;
        self.previous = Some(period);
        true
    }
}

fn hour_of(t: &DateTime<FixedOffset>) -> i64 {
    day_of(t) * 24 + i64::from(t.hour())
}

fn day_of(t: &DateTime<FixedOffset>) -> i64 {
    i64::from(t.num_days_from_ce())
}

fn iso_week_of(t: &DateTime<FixedOffset>) -> i64 {
    let week = t.iso_week();
    i64::from(week.year()) * 100 + i64::from(week.week())
}

fn month_of(t: &DateTime<FixedOffset>) -> i64 {
    i64::from(t.year()) * 100 + i64::from(t.month())
}

fn year_of(t: &DateTime<FixedOffset>) -> i64 {
    i64::from(t.year())
}

/// What snapshots are grouped by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupBy {
    pub host: bool,
    pub paths: bool,
    pub tags: bool,
}

impl std::str::FromStr for GroupBy {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let mut group = GroupBy { host: false, paths: false, tags: false };
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "host" => group.host = true,
                "paths" => group.paths = true,
                "tags" => group.tags = true,
                _ => return Err(format!("{part:?}: group by host, paths and/or tags")),
            }
        }
        Ok(group)
    }
}

/// What the snapshots of one group share: the fields grouped by, the others `None`.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct GroupKey {
    pub host: Option<String>,
    pub paths: Option<Vec<String>>,
    pub tags: Option<Vec<String>>,
}

impl GroupKey {
    pub fn of(by: GroupBy, snapshot: &Snapshot) -> Self {
        let sorted = |list: &[String]| {
            let mut list = list.to_vec();
            list.sort();
            list
        };
        GroupKey {
            host: by.host.then(|| snapshot.hostname.clone()),
            paths: by.paths.then(|| sorted(&snapshot.paths)),
            tags: by.tags.then(|| sorted(&snapshot.tags)),
        }
    }
}

/// As people read it: `host vm1, paths /etc /home`.
impl std::fmt::Display for GroupKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if let Some(host) = &self.host {
            parts.push(format!("host {host}"));
        }
        if let Some(paths) = &self.paths {
            parts.push(format!("paths {}", paths.join(" ")));
        }
        if let Some(tags) = &self.tags {
            parts.push(format!("tags {}", tags.join(",")));
        }
        if parts.is_empty() { f.write_str("all snapshots") } else { f.write_str(&parts.join(", ")) }
    }
}

/// Splits snapshots into groups, in key order.
pub fn groups(
    by: GroupBy,
    snapshots: Vec<(SnapshotId, Snapshot)>,
) -> BTreeMap<GroupKey, Vec<(SnapshotId, Snapshot)>> {
    let mut out: BTreeMap<GroupKey, Vec<_>> = BTreeMap::new();
    for (id, snapshot) in snapshots {
        out.entry(GroupKey::of(by, &snapshot)).or_default().push((id, snapshot));
    }
    out
}

/// One group's verdicts.
#[derive(Clone, Debug, Serialize)]
pub struct GroupPlan {
    /// `None` for the snapshots named on the command line.
    pub group: Option<GroupKey>,
    /// Newest first.
    pub decisions: Vec<Decision>,
}

/// Applies a policy to the snapshots the filter selects, group by group.
pub fn plan(
    repo: &Repository,
    filter: &SnapshotFilter,
    by: GroupBy,
    policy: &Policy,
) -> Result<Vec<GroupPlan>> {
    check_policy(policy)?;
    Ok(groups(by, filter.apply(repo)?)
        .into_iter()
        .map(|(group, snapshots)| GroupPlan {
            decisions: apply(policy, &snapshots),
            group: Some(group),
        })
        .collect())
}

/// Deletes snapshot objects. Their data stays in the repository until prune frees what no
/// remaining snapshot references.
pub fn remove(repo: &Repository, ids: &[SnapshotId], progress: &Progress) -> Result<()> {
    progress.add_total(ids.len() as u64, 0);
    for id in ids {
        repo.remove_snapshot(id)?;
        progress.add_done(1, 0);
    }
    Ok(())
}

/// Changes a snapshot's tags or protection by writing it anew (a snapshot's id is the hash of
/// its bytes) and then deleting the old object; a crash in between leaves both, which is
/// harmless. Returns the new id, or the old one when nothing changes.
pub fn retag(
    repo: &Repository,
    id: SnapshotId,
    mut snapshot: Snapshot,
    add: &[String],
    remove: &[String],
    protect: Option<bool>,
) -> Result<SnapshotId> {
    let before = snapshot.clone();
    snapshot.tags.retain(|t| !remove.contains(t));
    for tag in add {
        if !snapshot.tags.contains(tag) {
            snapshot.tags.push(tag.clone());
        }
    }
    if let Some(protect) = protect {
        snapshot.protected = protect;
    }
    if snapshot == before {
        return Ok(id);
    }
    let new = repo.save_snapshot(&snapshot)?;
    repo.remove_snapshot(&id)?;
    Ok(new)
}

/// Refuses a policy that would keep nothing.
pub fn check_policy(policy: &Policy) -> Result<()> {
    if policy.is_empty() {
        bail!(
            "no keep rule given: forget with a policy needs at least one --keep-* option \
             (to remove snapshots by id, name them: cairn forget SNAP...)"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests;
