//! `prune`, locks and `unlock` (issue #7): space is freed, every remaining snapshot restores,
//! a prune killed anywhere leaves a repository that checks clean and is finished by the next
//! one, a backup running beside prune keeps what it reused, and locks conflict as documented.

use std::fs;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use cairn::progress::Progress;
use cairn::prune::{PruneOptions, prune};
use cairn_format::Repository;
use cairn_format::backend::{FaultyBackend, LocalBackend};
use cairn_format::lock::{Lock, LockKind};
use serde_json::Value;

use crate::util::{PASSWORD, Scratch, describe, noise};

/// 120 files of 20 KB in `src/` backed up, then every other one deleted and backed up again,
/// and the first snapshot forgotten: half of the first packs' blobs are unused.
fn half_unused() -> (Scratch, std::path::PathBuf) {
    let (s, src) = two_snapshots_half_shared();
    s.json(&["forget", "--keep-last", "1"]);
    (s, src)
}

/// Two snapshots of `src/`: 120 files of 20 KB, then every other one of them.
fn two_snapshots_half_shared() -> (Scratch, std::path::PathBuf) {
    let s = Scratch::with_repo();
    let src = s.path("src");
    fs::create_dir(&src).unwrap();
    for i in 0..120 {
        fs::write(src.join(format!("f{i:03}")), noise(i, 20_000)).unwrap();
    }
    s.backup(&[&src], &[]);
    for i in (0..120).step_by(2) {
        fs::remove_file(src.join(format!("f{i:03}"))).unwrap();
    }
    s.backup(&[&src], &[]);
    (s, src)
}

fn data_bytes(s: &Scratch) -> u64 {
    fn walk(dir: &Path) -> u64 {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let path = e.unwrap().path();
                if path.is_dir() { walk(&path) } else { fs::metadata(path).unwrap().len() }
            })
            .sum()
    }
    walk(&s.repo().join("data"))
}

fn prune_report(s: &Scratch, extra: &[&str]) -> Value {
    let mut args = vec!["prune"];
    args.extend_from_slice(extra);
    s.json(&args)["report"].clone()
}

fn check_clean(s: &Scratch) {
    let out = s.run(&["check", "--read-data"]);
    assert!(out.status.success(), "check after prune: {}", describe(&out));
}

#[test]
fn prune_frees_space_repacks_and_keeps_every_snapshot_restorable() {
    let (s, src) = half_unused();
    let before = data_bytes(&s);
    let dry = prune_report(&s, &["--dry-run"]);
    assert_eq!(dry["dry_run"], true);
    assert!(dry["unused_bytes"].as_u64().unwrap() > 1_000_000, "{dry}");
    assert_eq!(data_bytes(&s), before, "a dry run changes nothing");
    let report = prune_report(&s, &[]);
    assert!(report["packs_repacked"].as_u64().unwrap() >= 1, "{report}");
    let after = data_bytes(&s);
    assert_eq!(report["bytes_before"].as_u64(), Some(before));
    assert_eq!(report["bytes_after"].as_u64(), Some(after));
    // Half of 2.4 MB of incompressible files is gone, give or take pack overhead.
    assert!(before - after > 1_000_000, "{before} -> {after}");
    check_clean(&s);
    s.restore_latest_and_compare(&src);
    // A second prune finds nothing left to do.
    let again = prune_report(&s, &[]);
    assert_eq!(again["packs_repacked"], 0, "{again}");
    assert_eq!(again["bytes_freed"], 0, "{again}");
}

/// Issue #15: `forget --prune` was parsed and never acted on (snapshots went, no space freed).
#[test]
fn forget_with_prune_frees_the_space_of_the_snapshots_it_removes() {
    let (s, src) = two_snapshots_half_shared();
    let before = data_bytes(&s);
    let dry = s.json(&["forget", "--keep-last", "1", "--prune", "--dry-run"])["report"].clone();
    // What prune would free counts the snapshot the dry run did not remove as gone.
    assert!(dry["unused_bytes"].as_u64().unwrap() > 1_000_000, "{dry}");
    assert_eq!(data_bytes(&s), before, "a dry run changes nothing");
    assert_eq!(s.json_list(&["snapshots"]).as_array().unwrap().len(), 2);

    let report = s.json(&["forget", "--keep-last", "1", "--prune"])["report"].clone();
    let after = data_bytes(&s);
    assert!(before - after > 1_000_000, "{before} -> {after}: {report}");
    assert_eq!(report["bytes_after"].as_u64(), Some(after));
    check_clean(&s);
    s.restore_latest_and_compare(&src);
}

/// A copy of `template`'s repository in a scratch directory of its own.
fn copy_of(template: &Scratch) -> Scratch {
    let s = Scratch::new();
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(template.repo())
        .arg(s.repo())
        .status()
        .unwrap();
    assert!(status.success());
    s
}

/// Runs prune in this process on `s`'s repository through a backend that stops answering
/// after `stop` operations (all of them when `None`), as `kill -9` would stop the process
/// there. Returns how many operations prune asked for.
fn prune_stopped_after(s: &Scratch, stop: Option<i64>) -> i64 {
    let backend = Arc::new(FaultyBackend::healthy(Arc::new(LocalBackend::new(s.repo()))));
    let repo = Arc::new(
        Repository::open_unsynced(backend.clone(), PASSWORD.as_bytes(), &s.path("cache")).unwrap(),
    );
    let before = backend.operations();
    if let Some(stop) = stop {
        backend.die_after(stop);
    }
    let outcome = prune(&repo, &PruneOptions::default(), &hostname(), &Progress::default());
    assert_eq!(outcome.is_ok(), stop.is_none(), "{:?}", outcome.err());
    backend.operations() - before
}

/// Prune stopped after any of its storage operations (sampled across the whole run) leaves a
/// repository that checks clean and restores; the dead prune's lock is stale, and the next
/// prune finishes the job.
#[test]
fn a_prune_stopped_anywhere_leaves_a_checkable_repository_that_the_next_prune_finishes() {
    let (template, src) = half_unused();
    let before = data_bytes(&template);
    let total = prune_stopped_after(&copy_of(&template), None);
    assert!(total > 10, "a prune takes more than {total} operations");
    let step = (total / 12).max(1) as usize;
    for stop in (0..total).step_by(step).chain([total - 1]) {
        let s = copy_of(&template);
        prune_stopped_after(&s, Some(stop));
        check_clean(&s);
        s.restore_latest_and_compare(&src);
        // What a killed prune leaves behind: its lock, stale since its process is gone.
        open(&s)
            .write_lock(&cairn_format::LockId([9; 32]), &exclusive_lock(4_000_000_000))
            .unwrap();
        let report = prune_report(&s, &[]);
        assert_eq!(report["packs_deferred"], 0, "stopped after {stop}: {report}");
        check_clean(&s);
        s.restore_latest_and_compare(&src);
        assert!(
            before - data_bytes(&s) > 1_000_000,
            "stopped after {stop} of {total}: space freed in the end"
        );
        assert!(prune_report(&s, &[])["bytes_freed"] == 0);
    }
}

#[test]
fn a_backup_running_during_prune_keeps_the_blobs_it_reuses() {
    for delay_ms in [100u64, 600, 1500] {
        backup_during_prune_keeps_reused_blobs(&Scratch::with_repo(), delay_ms);
    }
}

/// A backup that reuses blobs a concurrent prune finds unused: prune must not delete them,
/// whichever comes first. `s` is an initialized repository (local, or remote in remote.rs).
pub fn backup_during_prune_keeps_reused_blobs(s: &Scratch, delay_ms: u64) {
    let src = s.path("src");
    fs::create_dir(&src).unwrap();
    let content = noise(delay_ms, 3_000_000);
    fs::write(src.join("data.bin"), &content).unwrap();
    s.backup(&[&src], &[]);
    s.json(&["forget", "--keep-last", "0", "--keep-tag", "none"]);
    // The data is now unused. A slow backup of the same bytes reuses its blobs, while a
    // prune marks them unused.
    let script = format!("sleep 2; cat {}", src.join("data.bin").display());
    let backup = s
        .cmd(&[
            "--json",
            "backup",
            "--stdin-from-command",
            "--stdin-filename",
            "again.bin",
            "--",
            "sh",
            "-c",
            &script,
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(delay_ms));
    let report = prune_report(s, &[]);
    let out = backup.wait_with_output().unwrap();
    assert!(out.status.success(), "{delay_ms} ms: backup failed");
    if report["packs_marked"].as_u64().unwrap() > 0 {
        assert_eq!(report["packs_deleted"], 0, "{delay_ms} ms: {report}");
    }
    check_clean(s);
    let dumped = s.cmd(&["dump", "latest", "/again.bin"]).output().unwrap();
    assert!(dumped.stdout == content, "{delay_ms} ms: restored bytes differ");
    // With the backup done, the next prune keeps the reused packs (needed again).
    prune_report(s, &[]);
    check_clean(s);
    let dumped = s.cmd(&["dump", "latest", "/again.bin"]).output().unwrap();
    assert!(dumped.stdout == content, "{delay_ms} ms: lost after the second prune");
}

fn open(s: &Scratch) -> Arc<Repository> {
    let backend = Arc::new(LocalBackend::new(s.repo()));
    Arc::new(Repository::open(backend, PASSWORD.as_bytes(), &s.path("lib-cache")).unwrap())
}

fn hostname() -> String {
    nix::unistd::gethostname().unwrap().to_string_lossy().into_owned()
}

fn exclusive_lock(pid: u32) -> Lock {
    let now = chrono::Utc::now().timestamp();
    Lock {
        kind: LockKind::Exclusive,
        operation: "prune".into(),
        hostname: hostname(),
        username: "test".into(),
        pid,
        created_s: now - 90,
        refreshed_s: now,
    }
}

#[test]
fn locks_conflict_with_a_clear_message_retry_and_unlock() {
    let (s, _) = half_unused();
    let repo = open(&s);
    let live = cairn_format::LockId([7; 32]);
    repo.write_lock(&live, &exclusive_lock(std::process::id())).unwrap();
    let out = s.run(&["prune"]);
    assert_eq!(out.status.code(), Some(11), "{}", describe(&out));
    let message = String::from_utf8_lossy(&out.stderr);
    assert!(
        message.contains(&hostname()) && message.contains(&std::process::id().to_string()),
        "{message}"
    );
    assert!(message.contains("taken 1m 3"), "the age, 90 s and a little: {message}");
    // A check waits for an exclusive lock too; a backup does not.
    assert_eq!(s.run(&["check"]).status.code(), Some(11));
    s.backup(&[&s.path("src")], &[]);
    // --retry-lock waits until the holder is done.
    let remover = {
        let repo = repo.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(1500));
            repo.remove_lock(&live).unwrap();
        })
    };
    s.ok(&["prune", "--retry-lock", "30s"]);
    remover.join().unwrap();
    // unlock removes a stale lock (a process that is gone) but not a live one.
    let dead = cairn_format::LockId([8; 32]);
    repo.write_lock(&dead, &exclusive_lock(4_000_000_000)).unwrap();
    repo.write_lock(&live, &exclusive_lock(std::process::id())).unwrap();
    let removed = s.json(&["unlock"]);
    assert_eq!(removed["removed"].as_array().unwrap().len(), 1, "{removed}");
    let left: Vec<_> = fs::read_dir(s.repo().join("locks")).unwrap().collect();
    assert_eq!(left.len(), 1);
    s.json(&["unlock", "--all"]);
    assert_eq!(fs::read_dir(s.repo().join("locks")).unwrap().count(), 0);
}
