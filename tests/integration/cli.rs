//! The command line end to end: snapshot selection, listings, objects, keys, excludes,
//! restore filters and overwrite modes, exit codes (issue #2).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::util::{Scratch, describe, is_root, noise};

fn small_tree(s: &Scratch) -> std::path::PathBuf {
    let src = s.path("src");
    fs::create_dir_all(src.join("keep/deep")).unwrap();
    fs::write(src.join("keep/deep/a.txt"), b"a").unwrap();
    fs::write(src.join("keep/b.log"), b"b").unwrap();
    fs::write(src.join("top.txt"), b"top").unwrap();
    src
}

#[test]
fn snapshots_filters_and_latest() {
    let s = Scratch::with_repo();
    let src = small_tree(&s);
    s.backup(&[&src], &["--host", "alpha", "--tag", "daily", "--time", "2026-01-01T10:00:00Z"]);
    s.backup(&[&src], &["--host", "beta", "--tag", "daily,db", "--time", "2026-01-02T10:00:00Z"]);
    s.backup(&[&src], &["--host", "alpha", "--time", "2026-01-03 10:00:00"]);
    let all = s.json_list(&["snapshots"]);
    assert_eq!(all.as_array().unwrap().len(), 3);
    let alpha = s.json_list(&["snapshots", "--host", "alpha"]);
    assert_eq!(alpha.as_array().unwrap().len(), 2);
    let tagged = s.json_list(&["snapshots", "--tag", "daily,db"]);
    assert_eq!(tagged[0]["hostname"], "beta");
    // The newest of each host and set of paths, as restic's --latest.
    let latest = s.json_list(&["snapshots", "--latest", "1"]);
    let hosts: Vec<_> = latest.as_array().unwrap().iter().map(|l| &l["hostname"]).collect();
    assert_eq!(hosts, ["beta", "alpha"], "{latest}");
    assert!(all[0]["time"].as_str().unwrap().starts_with("2026-01-01T10:00:00"));
    // `latest` honours filters; prefixes resolve; bad references are clear errors.
    let head = s.ok(&["ls", "latest", "--host", "beta", "--json"]);
    assert!(head.lines().next().unwrap().contains("\"beta\""));
    let id = all[1]["id"].as_str().unwrap();
    assert!(s.ok(&["ls", &id[..10], "--json"]).contains("\"beta\""));
    let out = s.run(&["ls", "ffffffffff"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no snapshot matches"));
    let table = s.ok(&["snapshots"]);
    assert!(
        table.lines().any(|l| l.split_whitespace().any(|w| w == "db"))
            && table.contains("3 snapshots"),
        "{table}"
    );
}

#[test]
fn ls_long_and_json() {
    let s = Scratch::with_repo();
    let src = small_tree(&s);
    s.backup(&[&src], &[]);
    let sub = src.join("keep");
    let plain = s.ok(&["ls", "latest", sub.to_str().unwrap()]);
    let lines: Vec<&str> = plain.lines().collect();
    assert_eq!(lines.len(), 4, "{plain}");
    assert!(
        lines[3].ends_with("keep/deep/a.txt")
            || lines.iter().any(|l| l.ends_with("keep/deep/a.txt"))
    );
    let long = s.ok(&["ls", "latest", sub.to_str().unwrap(), "--long"]);
    assert!(long.lines().any(|l| l.starts_with("-rw") && l.contains("b.log")), "{long}");
    let json = s.ok(&["ls", "latest", "--json"]);
    let nodes: Vec<serde_json::Value> =
        json.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(nodes[0]["struct_type"], "snapshot");
    assert!(nodes.iter().any(|n| n["name"] == "top.txt" && n["type"] == "file" && n["size"] == 3));
}

#[test]
fn cat_shows_every_object_kind() {
    let s = Scratch::with_repo();
    let src = small_tree(&s);
    s.backup(&[&src], &[]);
    let config = s.json(&["cat", "config"]);
    assert_eq!(config["pack_size"], 1 << 20);
    let snapshot = s.json(&["cat", "snapshot", "latest"]);
    let tree = snapshot["tree"].as_str().unwrap().to_string();
    let tree_bytes = s.cmd(&["cat", "blob", &tree]).output().unwrap().stdout;
    assert_eq!(tree_bytes[0], b'T', "tree blobs start with their tag byte");
    let index_name =
        fs::read_dir(s.repo().join("index")).unwrap().next().unwrap().unwrap().file_name();
    let index = s.json(&["cat", "index", index_name.to_str().unwrap()]);
    let pack = index["packs"][0]["id"].as_str().unwrap().to_string();
    let header = s.json(&["cat", "pack", &pack]);
    assert_eq!(header["blobs"], index["packs"][0]["blobs"]);
    let out = s.run(&["cat", "blob", &"0".repeat(64)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not in the index"));
}

#[test]
fn keys_can_be_added_listed_removed_and_changed() {
    let s = Scratch::with_repo();
    let pw2 = s.path("pw2");
    fs::write(&pw2, "second password\n").unwrap();
    s.ok(&["key", "add", "--new-password-file", pw2.to_str().unwrap()]);
    let keys = s.json_list(&["key", "list"]);
    assert_eq!(keys.as_array().unwrap().len(), 2);
    let other = keys.as_array().unwrap().iter().find(|k| k["current"] == false).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    // The new password opens the repository through --password-file.
    let out = s
        .cmd(&["snapshots"])
        .env_remove("CAIRN_PASSWORD")
        .arg("--password-file")
        .arg(&pw2)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    let current = keys.as_array().unwrap().iter().find(|k| k["current"] == true).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let out = s.run(&["key", "remove", &current[..12]]);
    assert_eq!(out.status.code(), Some(1), "removing the key in use must fail");
    s.ok(&["key", "remove", &other[..12]]);
    assert_eq!(s.json_list(&["key", "list"]).as_array().unwrap().len(), 1);
    let pw3 = s.path("pw3");
    fs::write(&pw3, "third").unwrap();
    s.ok(&["key", "passwd", "--new-password-file", pw3.to_str().unwrap()]);
    assert_eq!(s.run(&["snapshots"]).status.code(), Some(12), "old password still works");
    let out = s
        .cmd(&["snapshots"])
        .env("CAIRN_PASSWORD_COMMAND", format!("cat {}", pw3.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
}

#[test]
fn excludes_caches_and_marker_files() {
    let s = Scratch::with_repo();
    let src = small_tree(&s);
    fs::create_dir(src.join("cache")).unwrap();
    fs::write(src.join("cache/CACHEDIR.TAG"), b"Signature: 8a477f597d28d172789f06886806bc55")
        .unwrap();
    fs::write(src.join("cache/blob"), b"x").unwrap();
    fs::create_dir(src.join("private")).unwrap();
    fs::write(src.join("private/.nobackup"), b"").unwrap();
    fs::write(src.join("private/secret"), b"x").unwrap();
    let exclude_file = s.path("excludes");
    fs::write(&exclude_file, "# comment\n\n/**/keep/deep\n").unwrap();
    s.backup(
        &[&src],
        &[
            "--exclude",
            "*.log",
            "--exclude-file",
            exclude_file.to_str().unwrap(),
            "--exclude-caches",
            "--exclude-if-present",
            ".nobackup",
        ],
    );
    let listing = s.ok(&["ls", "latest", src.to_str().unwrap()]);
    let names: Vec<&str> =
        listing.lines().map(|l| l.strip_prefix(src.to_str().unwrap()).unwrap_or(l)).collect();
    assert_eq!(names, ["", "/cache", "/keep", "/private", "/top.txt"], "{listing}");
}

#[test]
fn restore_filters_and_overwrite_modes() {
    let s = Scratch::with_repo();
    let src = small_tree(&s);
    s.backup(&[&src], &[]);
    let target = s.path("out");
    let t = target.to_str().unwrap();
    let reference = format!("latest:{}", src.display());
    s.ok(&["restore", &reference, "--target", t, "--include", "*.txt", "--exclude", "top.txt"]);
    assert!(target.join("keep/deep/a.txt").exists());
    assert!(!target.join("keep/b.log").exists() && !target.join("top.txt").exists());
    fs::write(target.join("keep/deep/a.txt"), b"local change").unwrap();
    s.ok(&["restore", &reference, "--target", t, "--overwrite", "never"]);
    assert_eq!(fs::read(target.join("keep/deep/a.txt")).unwrap(), b"local change");
    assert_eq!(fs::read(target.join("top.txt")).unwrap(), b"top");
    s.ok(&["restore", &reference, "--target", t, "--overwrite", "if-changed"]);
    assert_eq!(fs::read(target.join("keep/deep/a.txt")).unwrap(), b"a");
    let single = format!("latest:{}/keep/b.log", src.display());
    let one = s.path("one");
    s.ok(&["restore", &single, "--target", one.to_str().unwrap()]);
    assert_eq!(fs::read(one.join("b.log")).unwrap(), b"b");
    let missing = format!("latest:{}/nope", src.display());
    let out = s.run(&["restore", &missing, "--target", one.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not in latest, which is snapshot"));
}

#[test]
fn unreadable_file_warns_writes_snapshot_and_exits_3() {
    let s = Scratch::with_repo();
    let src = small_tree(&s);
    fs::write(src.join("locked"), noise(1, 1000)).unwrap();
    fs::set_permissions(src.join("locked"), fs::Permissions::from_mode(0o000)).unwrap();
    let mut cmd = s.cmd(&["backup", src.to_str().unwrap()]);
    if is_root() {
        // Root reads anything; run the backup as nobody so the permission bites.
        for path in [s.dir.path(), &s.repo(), &s.path("cache")] {
            fs::set_permissions(path, fs::Permissions::from_mode(0o777)).unwrap();
        }
        chown_recursive(s.dir.path(), 65534);
        cmd = std::process::Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(env!("CARGO_BIN_EXE_cairn"))
            .args(["backup", src.to_str().unwrap()])
            .env("CAIRN_REPOSITORY", s.repo())
            .env("CAIRN_PASSWORD", crate::util::PASSWORD)
            .env("CAIRN_CACHE_DIR", s.path("cache-nobody"));
        fs::set_permissions(src.join("locked"), fs::Permissions::from_mode(0o000)).unwrap();
    }
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("locked"));
    let listing = s.ok(&["ls", "latest"]);
    assert!(listing.contains("top.txt") && !listing.contains("locked"));
}

fn chown_recursive(path: &Path, id: u32) {
    std::os::unix::fs::lchown(path, Some(id), Some(id)).unwrap();
    if path.is_dir() && !path.is_symlink() {
        for entry in fs::read_dir(path).unwrap() {
            chown_recursive(&entry.unwrap().path(), id);
        }
    }
}

#[test]
fn json_backup_emits_a_summary_and_help_documents_exit_codes() {
    let s = Scratch::with_repo();
    let src = small_tree(&s);
    let summary = s.backup(&[&src], &["--dry-run"]);
    assert_eq!(summary["message_type"], "summary");
    assert_eq!(summary["dry_run"], true);
    assert!(s.json_list(&["snapshots"]).as_array().unwrap().is_empty());
    let help = s.ok(&["--help"]);
    for code in ["10", "11", "12", "130"] {
        assert!(help.contains(code), "--help lacks exit code {code}");
    }
    let out = s.cmd(&["snapshots"]).env_remove("CAIRN_PASSWORD").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no password given"));
}

#[test]
fn explicit_parent_and_one_file_system() {
    let s = Scratch::with_repo();
    let src = small_tree(&s);
    let first = s.backup(&[&src], &[]);
    fs::write(src.join("top.txt"), b"changed").unwrap();
    s.backup(&[&src], &[]);
    let id = first["snapshot_id"].as_str().unwrap();
    let third = s.backup(&[&src], &["--parent", &id[..10]]);
    assert_eq!(third["parent"], first["snapshot_id"]);
    assert_eq!(third["files_changed"], 1, "{third}");

    if !is_root() {
        eprintln!("skipping the --one-file-system half: mounting a tmpfs needs root");
        return;
    }
    let mnt = src.join("mnt");
    fs::create_dir(&mnt).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "tmpfs"])
        .arg(&mnt)
        .status()
        .unwrap();
    assert!(mounted.success(), "mount -t tmpfs failed");
    fs::write(mnt.join("other-fs"), b"x").unwrap();
    s.backup(&[&src], &["--one-file-system"]);
    let listing = s.ok(&["ls", "latest", src.to_str().unwrap()]);
    let _ = std::process::Command::new("umount").arg(&mnt).status();
    assert!(listing.contains("/mnt"), "the mount point itself is kept: {listing}");
    assert!(!listing.contains("other-fs"), "crossed into another file system: {listing}");
}

/// The README's main job (`bash scripts/demo`) runs end to end with the binary under test: it
/// reads `snapshots --json`, so a change to the output that breaks it fails here (issue #17
/// broke it once, unnoticed).
#[test]
fn the_readme_demo_runs() {
    let dir = tempfile::tempdir().unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/demo");
    let out = std::process::Command::new("bash")
        .arg(script)
        .env("CAIRN_BIN", env!("CARGO_BIN_EXE_cairn"))
        .env("CAIRN_DEMO_DIR", dir.path().join("demo"))
        .env_remove("CAIRN_REPOSITORY")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("demo finished"), "{}", describe(&out));
}
