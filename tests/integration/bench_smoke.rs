//! The peer benchmark's smoke mode runs in the test suite so the script cannot rot (issue #3):
//! a tiny dataset, only cairn, every scenario (the mount ones where FUSE works, issue #4; the
//! VM-image ones need mke2fs, issue #5), and the result table.

use std::process::Command;

use crate::util::describe;

#[test]
fn peer_benchmark_smoke_mode_runs_every_scenario() {
    // From cargo at run time, so a binary built in another checkout runs this one's script.
    let root = std::env::var("CARGO_MANIFEST_DIR")
        .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string());
    let script = format!("{root}/benches/compare/compare.py");
    let work = tempfile::tempdir().unwrap();
    let out = Command::new("python3")
        .args([
            script.as_str(),
            "--smoke",
            "--tools",
            "cairn",
            "--no-install",
            "--cairn-bin",
            env!("CARGO_BIN_EXE_cairn"),
        ])
        .arg("--work-dir")
        .arg(work.path())
        .output()
        .expect("python3 runs");
    assert!(out.status.success(), "{}", describe(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    let mut scenarios = vec![
        "initial",
        "unchanged",
        "incremental",
        "restore",
        "check",
        "forget-prune",
        "image-backup",
        "image-restore",
        "vm-initial",
        "vm-incremental",
        "vm-hinted",
        "vm-restore",
    ];
    if crate::mount::fuse_usable() {
        scenarios.extend(["mount-walk", "mount-read", "mount-random", "mount-catalog"]);
    }
    if crate::servers::garage_available() {
        scenarios.extend(["s3-backup", "s3-restore"]);
    }
    for scenario in scenarios {
        assert!(table.contains(&format!("| {scenario} | cairn |")), "{scenario} missing:\n{table}");
    }
}
