//! `cairn forget`: applies a retention policy (or removes the snapshots named) and prints,
//! per group, what is kept and why and what is removed.

use crate::commands::output::outln;
use std::sync::Arc;

use anyhow::{Result, bail};
use cairn_format::snapshot::Snapshot;
use cairn_format::{Repository, SnapshotId};

use super::open_unsynced;
use super::output::report::Reporter;
use super::output::table::{self, render};
use super::output::{count, json_line};
use crate::cli::{ForgetArgs, Global};
use crate::exit::Exit;
use crate::forget::{Decision, GroupPlan, Policy, plan, remove};
use crate::progress::Progress;
use crate::select::{SnapshotFilter, resolve, resolve_id};

pub fn run(global: &Global, args: &ForgetArgs) -> Result<Exit> {
    let repo = open_unsynced(global)?;
    let mut damaged = Vec::new();
    let plans = decide(&repo, args, &mut damaged)?;
    let removed: Vec<_> = plans
        .iter()
        .flat_map(|p| p.decisions.iter().filter(|d| !d.keep()).map(|d| d.id))
        .chain(damaged.iter().copied())
        .collect();
    if !args.dry_run {
        let progress = Arc::new(Progress::default());
        let reporter = Reporter::counting(global, progress.clone(), "forget", "snapshots");
        remove(&repo, &removed, &progress)?;
        reporter.finish();
    }
    print_outcome(global, args, &plans, &damaged, removed.len());
    if args.prune {
        // A dry run removed nothing: prune's dry run must count those snapshots as gone.
        let gone = if args.dry_run { removed } else { Vec::new() };
        return super::prune::run_on(global, &repo, &args.prune_tuning, args.dry_run, gone);
    }
    Ok(Exit::Ok)
}

/// What to keep and remove: the policy applied per group, or the snapshots named (damaged
/// ones among them go to `damaged`).
fn decide(
    repo: &Repository,
    args: &ForgetArgs,
    damaged: &mut Vec<SnapshotId>,
) -> Result<Vec<GroupPlan>> {
    let policy = Policy {
        last: args.keep_last.unwrap_or(0),
        hourly: args.keep_hourly.unwrap_or(0),
        daily: args.keep_daily.unwrap_or(0),
        weekly: args.keep_weekly.unwrap_or(0),
        monthly: args.keep_monthly.unwrap_or(0),
        yearly: args.keep_yearly.unwrap_or(0),
        within: args.keep_within,
        tags: args.keep_tag.clone(),
    };
    let filter = SnapshotFilter::from(&args.filter);
    if args.snapshots.is_empty() {
        return plan(repo, &filter, args.group_by, &policy);
    }
    if !policy.is_empty() {
        bail!("name snapshots or give a policy (--keep-*), not both");
    }
    Ok(vec![named(repo, &args.snapshots, &filter, damaged)?])
}

fn print_outcome(
    global: &Global,
    args: &ForgetArgs,
    plans: &[GroupPlan],
    damaged: &[SnapshotId],
    removed: usize,
) {
    if global.json {
        print_outcome_json(args, plans, damaged, removed);
    } else if !global.quiet {
        print_outcome_text(args, plans, damaged, removed);
    }
}

/// A `group` line per group, then the `summary`.
fn print_outcome_json(
    args: &ForgetArgs,
    plans: &[GroupPlan],
    damaged: &[SnapshotId],
    removed: usize,
) {
    for plan in plans {
        json_line(&group_json(plan));
    }
    json_line(&serde_json::json!({
        "message_type": "summary",
        "dry_run": args.dry_run,
        "snapshots_removed": removed,
        "damaged_removed": damaged,
    }));
}

fn print_outcome_text(
    args: &ForgetArgs,
    plans: &[GroupPlan],
    damaged: &[SnapshotId],
    removed: usize,
) {
    for p in plans {
        print_group(p);
    }
    let verb = if args.dry_run { "would remove" } else { "removed" };
    for id in damaged {
        outln!("{verb} damaged snapshot object {id}");
    }
    outln!("{verb} {}", count(removed as u64, "snapshot"));
}

/// A named snapshot to remove, or `None` when its object is damaged: then its id goes to
/// `damaged`, to be removed all the same (nothing in it can be read, protection included).
fn resolve_for_removal(
    repo: &Repository,
    reference: &str,
    filter: &SnapshotFilter,
    damaged: &mut Vec<SnapshotId>,
) -> Result<Option<(SnapshotId, Snapshot)>> {
    if reference == "latest" {
        return resolve(repo, reference, filter).map(Some);
    }
    let id = resolve_id(repo, reference)?;
    match repo.load_snapshot(&id) {
        Ok(snapshot) => Ok(Some((id, snapshot))),
        Err(e) if e.is_damage() => {
            tracing::warn!("snapshot {} is damaged ({e}); removing the object", id.short());
            damaged.push(id);
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// The snapshots named on the command line, all to be removed; protected ones are refused.
fn named(
    repo: &Repository,
    references: &[String],
    filter: &SnapshotFilter,
    damaged: &mut Vec<SnapshotId>,
) -> Result<GroupPlan> {
    let mut decisions = Vec::new();
    for reference in references {
        let Some((id, snapshot)) = resolve_for_removal(repo, reference, filter, damaged)? else {
            continue;
        };
        if snapshot.protected {
            bail!(
                "snapshot {} is protected; lift that first with `cairn tag --unprotect {}`",
                id.short(),
                id.short()
            );
        }
        decisions.push(Decision {
            id,
            time: crate::forget::local_time(&snapshot),
            reasons: Vec::new(),
        });
    }
    Ok(GroupPlan { group: None, decisions })
}

fn group_json(plan: &GroupPlan) -> serde_json::Value {
    let entry = |d: &Decision| {
        serde_json::json!({
            "id": d.id,
            "short_id": d.id.short(),
            "time": d.time.to_rfc3339(),
            "reasons": d.reasons,
        })
    };
    serde_json::json!({
        "message_type": "group",
        "group": plan.group,
        "keep": plan.decisions.iter().filter(|d| d.keep()).map(entry).collect::<Vec<_>>(),
        "remove": plan.decisions.iter().filter(|d| !d.keep()).map(entry).collect::<Vec<_>>(),
    })
}

fn print_group(plan: &GroupPlan) {
    match &plan.group {
        Some(key) => outln!("{key}:"),
        None => outln!("named snapshots:"),
    }
    let rows = |keep: bool| -> Vec<Vec<String>> {
        plan.decisions
            .iter()
            .filter(|d| d.keep() == keep)
            .map(|d| {
                let reasons: Vec<String> =
                    d.reasons.iter().map(|r| format!("{r:?}").to_lowercase()).collect();
                let time = d.time.timestamp_nanos_opt().unwrap_or_default();
                vec![d.id.short(), table::time(time), reasons.join(", ")]
            })
            .collect()
    };
    let (kept, removed) = (rows(true), rows(false));
    if !kept.is_empty() {
        outln!("keep {}:", count(kept.len() as u64, "snapshot"));
        outln!("{}", render(&["ID", "Time", "Reasons"], &kept));
    }
    if !removed.is_empty() {
        outln!("remove {}:", count(removed.len() as u64, "snapshot"));
        let removed: Vec<Vec<String>> = removed.into_iter().map(|r| r[..2].to_vec()).collect();
        outln!("{}", render(&["ID", "Time"], &removed));
    }
    outln!();
}
