//! Taking, refreshing and releasing repository locks, and the rules for them.
//!
//! - `backup` takes a `Backup` lock: it conflicts with nothing, it only tells prune that a
//!   backup which may reuse indexed blobs is running (prune then keeps the packs it marked
//!   unused until that backup is over).
//! - `check` takes a `Check` lock, `prune` and `repair` an `Exclusive` one. Exclusive conflicts
//!   with Exclusive and Check; Check conflicts with Exclusive.
//!
//! A lock is refreshed every [`REFRESH`]; it is stale when not refreshed for [`STALE`], or when
//! its holder ran on this host and the process is gone. Stale locks are ignored (and reported);
//! `cairn unlock` removes them. A conflict is retried until `--retry-lock` runs out, then
//! reported with the holder (exit 11).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Result;
use cairn_format::lock::{Lock, LockKind};
use cairn_format::{LockId, Repository};

/// How often a held lock is rewritten.
pub const REFRESH: Duration = Duration::from_secs(5 * 60);
/// A lock not refreshed for this long belongs to a process that is gone.
pub const STALE: Duration = Duration::from_secs(30 * 60);

/// Another process holds a lock this one cannot share (exit 11).
#[derive(Debug, thiserror::Error)]
#[error(
    "the repository is locked by {operation} on {hostname} (pid {pid}, user {username}), taken \
     {age} ago; wait for it, retry with --retry-lock 10m, or if that process is gone, \
     `cairn unlock` removes stale locks"
)]
pub struct LockConflict {
    pub operation: String,
    pub hostname: String,
    pub username: String,
    pub pid: u32,
    pub age: String,
}

/// A lock held until dropped, refreshed in the background.
pub struct LockGuard {
    repo: Arc<Repository>,
    id: LockId,
    stop: Arc<AtomicBool>,
    refresher: Option<JoinHandle<()>>,
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.refresher.take() {
            // Wake it from its wait, so releasing the lock costs no waiting.
            handle.thread().unpark();
            let _ = handle.join();
        }
        if let Err(e) = self.repo.remove_lock(&self.id) {
            tracing::warn!(lock = %self.id, error = %e, "could not remove our lock; `cairn unlock` removes it once stale");
        }
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn conflicts(ours: LockKind, theirs: LockKind) -> bool {
    use LockKind::{Check, Exclusive};
    matches!((ours, theirs), (Exclusive, Exclusive | Check) | (Check, Exclusive))
}

/// Whether a lock's holder is gone: not refreshed for [`STALE`], or a process of this host that
/// no longer exists.
pub fn is_stale(lock: &Lock, hostname: &str, now_s: i64) -> bool {
    if now_s - lock.refreshed_s > STALE.as_secs() as i64 {
        return true;
    }
    lock.hostname == hostname && !process_exists(lock.pid)
}

fn process_exists(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    // Signal 0 checks for existence without sending anything; EPERM means it exists.
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) => true,
        Err(errno) => errno == nix::errno::Errno::EPERM,
    }
}

/// Who we are, for lock objects.
#[derive(Clone, Debug)]
pub struct Holder {
    pub hostname: String,
    pub username: String,
    pub operation: String,
}

/// Takes a lock of `kind`, waiting up to `retry` for conflicting ones to go.
pub fn acquire(
    repo: &Arc<Repository>,
    kind: LockKind,
    holder: &Holder,
    retry: Duration,
) -> Result<LockGuard> {
    let id = LockId(cairn_format::id::random_bytes());
    let deadline = Instant::now() + retry;
    let mut pause = Duration::from_millis(200);
    loop {
        let created = now();
        let lock = Lock {
            kind,
            operation: holder.operation.clone(),
            hostname: holder.hostname.clone(),
            username: holder.username.clone(),
            pid: std::process::id(),
            created_s: created,
            refreshed_s: created,
        };
        // Written before looking, so two processes taking conflicting locks at once see each
        // other (both back off and retry).
        repo.write_lock(&id, &lock)?;
        let Some(conflict) = first_conflict(repo, &id, kind, &holder.hostname)? else {
            return Ok(start_refresher(repo, id, lock));
        };
        repo.remove_lock(&id)?;
        if Instant::now() >= deadline {
            return Err(conflict.into());
        }
        std::thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
        pause = (pause * 2).min(Duration::from_secs(10));
    }
}

fn first_conflict(
    repo: &Repository,
    ours: &LockId,
    kind: LockKind,
    hostname: &str,
) -> Result<Option<LockConflict>> {
    let now_s = now();
    for (id, lock) in repo.locks()? {
        let lock = match lock {
            Ok(lock) => lock,
            Err(e) => {
                tracing::warn!(lock = %id, error = %e, "ignoring a lock object that does not open (`cairn unlock` removes it)");
                continue;
            }
        };
        if id == *ours || !conflicts(kind, lock.kind) {
            continue;
        }
        if is_stale(&lock, hostname, now_s) {
            tracing::warn!(lock = %id, host = %lock.hostname, pid = lock.pid, "ignoring a stale lock (`cairn unlock` removes it)");
            continue;
        }
        return Ok(Some(LockConflict {
            age: age(now_s - lock.created_s),
            operation: lock.operation,
            hostname: lock.hostname,
            username: lock.username,
            pid: lock.pid,
        }));
    }
    Ok(None)
}

/// "3m 20s"
pub fn age(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        _ => format!("{}h {}m", s / 3600, s % 3600 / 60),
    }
}

fn start_refresher(repo: &Arc<Repository>, id: LockId, mut lock: Lock) -> LockGuard {
    let stop = Arc::new(AtomicBool::new(false));
    let refresher = {
        let (repo, stop) = (repo.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut next = Instant::now() + REFRESH;
            while !stop.load(Ordering::Relaxed) {
                std::thread::park_timeout(next.saturating_duration_since(Instant::now()));
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                if Instant::now() >= next {
                    lock.refreshed_s = now();
                    if let Err(e) = repo.write_lock(&id, &lock) {
                        tracing::warn!(error = %e, "could not refresh our lock");
                    }
                    next = Instant::now() + REFRESH;
                }
            }
        })
    };
    LockGuard { repo: repo.clone(), id, stop, refresher: Some(refresher) }
}

/// The live backup locks: the backups prune must not pull blobs from under.
pub fn live_backups(repo: &Repository, hostname: &str) -> Result<Vec<Lock>> {
    let now_s = now();
    Ok(repo
        .locks()?
        .into_iter()
        .filter_map(|(_, lock)| lock.ok())
        .filter(|lock| lock.kind == LockKind::Backup && !is_stale(lock, hostname, now_s))
        .collect())
}

/// What `cairn unlock` removed.
#[derive(Debug, Default)]
pub struct Unlocked {
    pub locks: Vec<(LockId, Lock)>,
    /// Lock objects that did not open (damaged): nothing can honour them, and a process still
    /// holding one writes it anew at its next refresh.
    pub damaged: Vec<LockId>,
}

/// Removes stale locks and damaged lock objects (or every lock with `all`).
pub fn unlock(repo: &Repository, hostname: &str, all: bool) -> Result<Unlocked> {
    let now_s = now();
    let mut removed = Unlocked::default();
    for (id, lock) in repo.locks()? {
        match lock {
            Ok(lock) if all || is_stale(&lock, hostname, now_s) => {
                repo.remove_lock(&id)?;
                removed.locks.push((id, lock));
            }
            Ok(_) => {}
            Err(e) if e.is_damage() => {
                repo.remove_lock(&id)?;
                removed.damaged.push(id);
            }
            Err(e) => tracing::warn!(lock = %id, error = %e, "unreadable lock object left alone"),
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock(hostname: &str, pid: u32, refreshed_s: i64) -> Lock {
        Lock {
            kind: LockKind::Exclusive,
            operation: "prune".into(),
            hostname: hostname.into(),
            username: "root".into(),
            pid,
            created_s: refreshed_s,
            refreshed_s,
        }
    }

    #[test]
    fn staleness_by_age_and_by_dead_process_on_this_host() {
        let now_s = 1_000_000;
        let me = std::process::id();
        assert!(!is_stale(&lock("here", me, now_s - 60), "here", now_s));
        assert!(is_stale(&lock("here", me, now_s - 31 * 60), "here", now_s));
        // A pid that cannot exist (above pid_max) on this host is gone...
        assert!(is_stale(&lock("here", 4_000_000_000, now_s), "here", now_s));
        // ...but on another host it says nothing.
        assert!(!is_stale(&lock("there", 4_000_000_000, now_s), "here", now_s));
    }

    #[test]
    fn which_kinds_conflict() {
        use LockKind::{Backup, Check, Exclusive};
        assert!(conflicts(Exclusive, Exclusive) && conflicts(Exclusive, Check));
        assert!(conflicts(Check, Exclusive) && !conflicts(Check, Check));
        for kind in [Backup, Check, Exclusive] {
            assert!(!conflicts(Backup, kind) && !conflicts(kind, Backup));
        }
        assert_eq!(age(200), "3m 20s");
    }
}
