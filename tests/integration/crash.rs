//! A killed or interrupted backup leaves a repository whose next backup succeeds and reuses
//! what was uploaded (issue #2).

use std::fs;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::util::{Scratch, describe, noise};

fn dataset(s: &Scratch) -> std::path::PathBuf {
    let src = s.path("src");
    fs::create_dir(&src).unwrap();
    for i in 0..12 {
        fs::write(src.join(format!("part{i:02}")), noise(100 + i, 6 << 20)).unwrap();
    }
    src
}

fn pack_count(s: &Scratch) -> usize {
    s.repository_files().iter().filter(|(p, _)| p.starts_with(s.repo().join("data"))).count()
}

/// Starts a backup and stops it with `signal` once a few packs are on disk.
fn start_and_stop(
    s: &Scratch,
    src: &std::path::Path,
    signal: nix::sys::signal::Signal,
) -> std::process::Output {
    let child = s
        .cmd(&["backup", src.to_str().unwrap(), "--compression", "19"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while pack_count(s) < 4 {
        assert!(Instant::now() < deadline, "no packs appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn sigkill_mid_backup_then_rerun_reuses_uploaded_packs() {
    let s = Scratch::with_repo();
    let src = dataset(&s);
    let out = start_and_stop(&s, &src, nix::sys::signal::Signal::SIGKILL);
    assert!(!out.status.success());
    assert!(s.ok(&["snapshots", "--json"]).trim().is_empty(), "a killed backup left a snapshot");
    let uploaded = pack_count(&s);
    let summary = s.backup(&[&src], &[]);
    let total = 12 * (6u64 << 20);
    let added = summary["data_added"].as_u64().unwrap();
    assert!(
        added < total,
        "rerun re-uploaded everything ({added} bytes; {uploaded} packs were there)"
    );
    s.restore_latest_and_compare(&src);
}

#[test]
fn sigint_stops_cleanly_with_exit_130() {
    let s = Scratch::with_repo();
    let src = dataset(&s);
    let out = start_and_stop(&s, &src, nix::sys::signal::Signal::SIGINT);
    assert_eq!(out.status.code(), Some(130), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("interrupted"));
    // Everything uploaded was indexed on the way out: the rerun finds it without adopting packs.
    let indexed =
        s.repository_files().iter().filter(|(p, _)| p.starts_with(s.repo().join("index"))).count();
    assert!(indexed >= 1, "interrupted backup wrote no index segment");
    let summary = s.backup(&[&src], &[]);
    assert!(summary["data_added"].as_u64().unwrap() < 12 * (6 << 20));
}
