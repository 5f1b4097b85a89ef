//! Issue #15: what fault and corruption testing found. A restore that cannot write leaves no
//! file looking complete; one damaged snapshot, lock, cache file or index segment stops
//! nothing; blobs of a deleted pack count as lost; killed backups' temporaries are cleaned up.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use cairn::progress::{LogObserver, Progress};
use cairn::restore::{Disk, FileSink, RestoreOptions, Sink, restore};
use cairn_format::Repository;
use cairn_format::backend::LocalBackend;
use serde_json::Value;

use crate::check::{backed_up, check, data_packs, flip_byte, packs};
use crate::util::{PASSWORD, Scratch, assert_same_tree, describe, is_root, json_output, noise};

/// `src/` with 40 files of 1 to 156 KB of noise (about 3 MB), backed up.
fn many_files() -> (Scratch, PathBuf) {
    let s = Scratch::with_repo();
    let src = s.path("src");
    fs::create_dir_all(src.join("sub")).unwrap();
    for i in 0..40u64 {
        let dir = if i % 2 == 0 { src.clone() } else { src.join("sub") };
        let size = 1_000 + (i as usize * 3_989) % 155_000;
        fs::write(dir.join(format!("f{i:02}")), noise(i + 1, size)).unwrap();
    }
    fs::write(src.join("six"), b"sixsix").unwrap();
    s.backup(&[&src], &[]);
    (s, src)
}

fn restore_into(s: &Scratch, src: &Path, target: &Path, extra: &[&str]) -> Command {
    let reference = format!("latest:{}", src.display());
    let mut args = vec!["--json", "restore", &reference, "--target"];
    args.push(target.to_str().unwrap());
    args.extend_from_slice(extra);
    s.cmd(&args)
}

/// Every file in `target` holds exactly the bytes of its source; returns how many are absent.
fn absent_or_exact(src: &Path, target: &Path) -> usize {
    let mut absent = 0;
    for dir in [src.to_path_buf(), src.join("sub")] {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                continue;
            }
            let restored = target.join(path.strip_prefix(src).unwrap());
            match fs::read(&restored) {
                Ok(bytes) => {
                    assert!(bytes == fs::read(&path).unwrap(), "{} differs", restored.display());
                }
                Err(_) => absent += 1,
            }
        }
    }
    absent
}

/// What a command said, on either stream (with `--json`, per-file errors are JSON lines on
/// stdout).
fn said(out: &Output) -> String {
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    text
}

/// A file system whose Nth write fails with an errno, as a full or dying disk's does.
struct FailingDisk {
    nth: u64,
    errno: i32,
    writes: AtomicU64,
}

impl FileSink for FailingDisk {
    fn write_at(&self, path: &Path, data: &[u8], offset: u64) -> std::io::Result<()> {
        if self.writes.fetch_add(1, Ordering::SeqCst) + 1 == self.nth {
            return Err(std::io::Error::from_raw_os_error(self.errno));
        }
        Disk.write_at(path, data, offset)
    }
}

/// Defect 1, with a failing file system: the 7th write fails with EIO, ENOSPC or EDQUOT.
#[test]
fn a_restore_whose_writes_fail_removes_the_files_it_could_not_finish() {
    let (s, src) = many_files();
    let backend = Arc::new(LocalBackend::new(s.repo()));
    let repo = Repository::open(backend, PASSWORD.as_bytes(), &s.path("cache")).unwrap();
    let (_, snapshot) = repo.snapshots().unwrap().readable.pop().unwrap();
    for errno in [5, 28, 122] {
        let target = s.path(&format!("target-{errno}"));
        let sink = FailingDisk { nth: 7, errno, writes: AtomicU64::new(0) };
        let options = RestoreOptions {
            target: target.clone(),
            subpath: Some(src.clone()),
            sink: Sink(Arc::new(sink)),
            ..RestoreOptions::default()
        };
        let summary =
            restore(&repo, &snapshot, &options, &Progress::default(), &LogObserver).unwrap();
        assert_eq!(summary.files_failed, 1, "{summary:?}");
        assert_eq!(summary.files_restored, 40, "{summary:?}");
        assert!(summary.errors > 0, "{summary:?}");
        assert_eq!(absent_or_exact(&src, &target), 1, "errno {errno}");
        // The next restore does not take anything for complete that is not.
        let again =
            restore_into(&s, &src, &target, &["--overwrite", "if-changed"]).output().unwrap();
        assert!(again.status.success(), "{}", describe(&again));
        assert_same_tree(&src, &target);
    }
}

/// Defect 1, on a real file system that fills up (tmpfs of 1 MiB for 3 MB of files).
#[test]
fn a_restore_into_a_full_file_system_leaves_no_wrong_bytes_behind() {
    if !is_root() {
        eprintln!("skipping: mounting a tmpfs needs root");
        return;
    }
    let (s, src) = many_files();
    let target = s.path("small");
    fs::create_dir(&target).unwrap();
    let mount = |options: &str| {
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(&target)
            .status()
            .unwrap();
        assert!(status.success(), "mount -o {options}");
    };
    mount("size=1m");
    let unmount = Unmount(target.clone());
    let out = restore_into(&s, &src, &target, &[]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let summary = json_output(&String::from_utf8_lossy(&out.stdout));
    let failed = summary["files_failed"].as_u64().unwrap();
    assert!(failed > 0, "{summary}");
    assert_eq!(absent_or_exact(&src, &target) as u64, failed, "{summary}");
    mount("remount,size=64m");
    let again = restore_into(&s, &src, &target, &["--overwrite", "if-changed"]).output().unwrap();
    assert!(again.status.success(), "{}", describe(&again));
    assert_same_tree(&src, &target);
    drop(unmount);
}

struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn snapshot_objects(s: &Scratch) -> Vec<PathBuf> {
    let mut objects: Vec<PathBuf> =
        fs::read_dir(s.repo().join("snapshots")).unwrap().map(|e| e.unwrap().path()).collect();
    objects.sort();
    objects
}

fn name_of(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

/// Defect 2: a snapshot object with 7 bytes appended, and a valid one copied under another
/// name, are skipped with a warning (exit 3) by every command, and removed by `forget ID` and
/// `repair snapshots`.
#[test]
fn a_damaged_snapshot_object_is_skipped_and_can_be_removed() {
    let (s, src) = backed_up();
    fs::write(src.join("docs/note0.txt"), "changed\n").unwrap();
    s.backup(&[&src], &[]);
    let objects = snapshot_objects(&s);
    let mut bytes = fs::read(&objects[0]).unwrap();
    bytes.extend_from_slice(b"garbage");
    fs::write(&objects[0], bytes).unwrap();
    let renamed = s.repo().join("snapshots").join("ab".repeat(32));
    fs::copy(&objects[1], &renamed).unwrap();
    let partial = |args: &[&str]| {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = s.run(&all);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {}", describe(&out));
        assert!(said(&out).contains("repair snapshots"), "{args:?}: {}", describe(&out));
        let mut lines = crate::util::json_lines(&String::from_utf8_lossy(&out.stdout));
        if lines.len() == 1 { lines.pop().unwrap() } else { serde_json::Value::Array(lines) }
    };
    assert_eq!(partial(&["snapshots"])["message_type"], "snapshot", "one left");
    let backup = partial(&["backup", src.to_str().unwrap()]);
    assert!(backup["snapshot_id"].is_string(), "{backup}");
    partial(&["stats"]);
    let kept = partial(&["forget", "--keep-last", "5"]);
    assert_eq!(kept[0]["remove"].as_array().unwrap().len(), 0, "{kept}");
    let prune = s.run(&["prune"]);
    assert_eq!(prune.status.code(), Some(3), "{}", describe(&prune));
    assert!(said(&prune).contains("treated as absent"), "{}", describe(&prune));
    // `forget ID` removes a damaged object it names.
    let damaged = name_of(&objects[0]);
    s.ok(&["forget", &damaged[..12]]);
    assert!(!objects[0].exists());
    // `repair snapshots` removes the rest, after which nothing is partial any more.
    let repaired = json_output(&s.ok(&["--json", "repair", "snapshots"]));
    assert_eq!(repaired["removed_damaged"], serde_json::json!([name_of(&renamed)]));
    assert!(!renamed.exists());
    assert_eq!(s.json_list(&["snapshots"]).as_array().unwrap().len(), 2);
    assert_eq!(check(&s, &["--read-data"]).0, 0);
    s.restore_latest_and_compare(&src);
}

/// Defect 2, locks: a lock object that does not open stops neither backup nor prune, and
/// `unlock` removes it.
#[test]
fn a_damaged_lock_object_is_ignored_and_unlock_removes_it() {
    let (s, src) = backed_up();
    let lock = s.repo().join("locks").join("cd".repeat(32));
    fs::write(&lock, noise(9, 300)).unwrap();
    s.backup(&[&src], &[]);
    let out = s.run(&["prune"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(said(&out).contains("does not open"), "{}", describe(&out));
    let unlocked = s.json(&["unlock"]);
    assert_eq!(unlocked["removed_damaged"], serde_json::json!(["cd".repeat(32)]));
    assert!(!lock.exists());
}

/// Defect 3: blobs indexed in a pack that no longer exists are lost to `repair snapshots`,
/// which rebuilds the index first so that nothing deduplicates against them again.
#[test]
fn repair_snapshots_counts_the_blobs_of_a_deleted_pack_as_lost() {
    let (s, src) = backed_up();
    fs::remove_file(&data_packs(&s)[0]).unwrap();
    assert_eq!(check(&s, &["--read-data"]).0, 1);
    let dry = json_output(&s.ok(&["--json", "repair", "snapshots", "--dry-run"]));
    assert_eq!(dry["missing_packs"].as_array().unwrap().len(), 1, "{dry}");
    let damaged = dry["snapshots"][0]["damaged_files"].clone();
    assert!(damaged.as_u64().unwrap() >= 1, "{dry}");
    let repaired = json_output(&s.ok(&["--json", "repair", "snapshots", "--forget"]));
    assert_eq!(repaired["snapshots"][0]["damaged_files"], damaged, "{repaired}");
    let (code, report) = check(&s, &["--read-data"]);
    assert_eq!(code, 0, "{report}");
    // The damaged file is read again and its lost chunks stored again.
    s.backup(&[&src], &[]);
    assert_eq!(check(&s, &["--read-data"]).0, 0);
    s.restore_latest_and_compare(&src);
}

/// The RocksDB table files of the local index.
fn cache_tables(s: &Scratch) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "sst") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&s.path("cache"), &mut out);
    out
}

/// Flips a byte in the first data block of every table file of the local index (opening it
/// once first turns the last run's log into a table file).
fn damage_cache(s: &Scratch) {
    s.ok(&["snapshots"]);
    let tables = cache_tables(s);
    assert!(!tables.is_empty(), "no table file in the cache");
    for table in tables {
        flip_byte(&table, 20);
    }
}

/// Defect 4: a flipped byte in a cache table file is found, the cache rebuilt, and the command
/// finishes.
#[test]
fn a_damaged_local_index_is_rebuilt_and_every_command_finishes() {
    let (s, src) = backed_up();
    let big = format!("{}/big.bin", src.display());
    let commands: Vec<Vec<String>> = vec![
        vec!["ls".into(), "latest".into()],
        vec!["dump".into(), "latest".into(), big.clone()],
        vec!["check".into(), "--read-data".into()],
        vec!["repair".into(), "index".into()],
        vec![
            "restore".into(),
            format!("latest:{}", src.display()),
            "--target".into(),
            s.path("restored").display().to_string(),
        ],
    ];
    for command in &commands {
        damage_cache(&s);
        let args: Vec<&str> = command.iter().map(String::as_str).collect();
        let out = s.run(&args);
        assert!(out.status.success(), "{args:?}: {}", describe(&out));
        assert!(said(&out).contains("rebuilding"), "{args:?}: {}", describe(&out));
        if args[0] == "dump" {
            assert!(out.stdout == fs::read(src.join("big.bin")).unwrap());
        }
    }
    assert_same_tree(&src, &s.path("restored"));
}

/// Defect 6: temporaries of killed writes are named by `check` and removed by `prune` once no
/// running backup can own them.
#[test]
fn prune_removes_the_temporaries_of_killed_backups_once_nothing_can_own_them() {
    let (s, src) = backed_up();
    let dir = s.repo().join("data").join("ab");
    fs::create_dir_all(&dir).unwrap();
    let (old, fresh) = (dir.join(".tmp-00112233aabbccdd"), dir.join(".tmp-99887766ffeeddcc"));
    fs::write(&old, noise(5, 700_000)).unwrap();
    fs::write(&fresh, noise(6, 1000)).unwrap();
    let touched = Command::new("touch").args(["-d", "2 hours ago"]).arg(&old).status().unwrap();
    assert!(touched.success());
    let (code, report) = check(&s, &[]);
    assert_eq!(code, 0, "harmless: {report}");
    assert_eq!(report["report"]["leftovers"], 2, "{report}");
    assert_eq!(report["report"]["leftover_bytes"], 701_000, "{report}");
    let text = s.ok(&["check"]);
    assert!(text.contains("cairn prune"), "{text}");
    let dry = s.json(&["prune", "--dry-run"])["report"].clone();
    assert_eq!(dry["leftovers_removed"], 1, "{dry}");
    assert!(old.exists(), "a dry run removes nothing");
    let report = s.json(&["prune"])["report"].clone();
    assert_eq!(report["leftovers_removed"], 1, "{report}");
    assert_eq!(report["leftover_bytes_freed"], 700_000, "{report}");
    assert_eq!(report["leftovers_kept"], 1, "{report}");
    assert!(!old.exists(), "an old temporary is removed");
    assert!(fresh.exists(), "a running backup may still own a fresh one");
    s.restore_latest_and_compare(&src);
    // A backup running for three hours (its lock live: this process, refreshed now) may own
    // a temporary it wrote two hours ago: prune keeps it.
    let running = fresh.with_file_name(".tmp-0123456789abcdef");
    fs::write(&running, noise(7, 500)).unwrap();
    let touched = Command::new("touch").args(["-d", "2 hours ago"]).arg(&running).status().unwrap();
    assert!(touched.success());
    let now = chrono::Utc::now().timestamp();
    let lock = cairn_format::lock::Lock {
        kind: cairn_format::lock::LockKind::Backup,
        operation: "backup".into(),
        hostname: nix::unistd::gethostname().unwrap().to_string_lossy().into_owned(),
        username: "test".into(),
        pid: std::process::id(),
        created_s: now - 3 * 3600,
        refreshed_s: now,
    };
    let backend = Arc::new(LocalBackend::new(s.repo()));
    let repo = Repository::open_unsynced(backend, PASSWORD.as_bytes(), &s.path("cache")).unwrap();
    repo.write_lock(&cairn_format::LockId([5; 32]), &lock).unwrap();
    let report = s.json(&["prune"])["report"].clone();
    assert_eq!(report["leftovers_removed"], 0, "{report}");
    assert!(running.exists(), "the running backup's temporary stays");
}

/// Directories `a/` and `b/`, each with one file of `size` bytes of its own noise.
fn two_sources(s: &Scratch, size: usize) -> (PathBuf, PathBuf) {
    let (a, b) = (s.path("a"), s.path("b"));
    for (dir, seed) in [(&a, 1), (&b, 2)] {
        fs::create_dir(dir).unwrap();
        fs::write(dir.join("data.bin"), noise(seed, size)).unwrap();
    }
    (a, b)
}

/// Defect 7: with one index segment corrupt (and no cache), listing needs no index, a restore
/// of a snapshot the segment does not cover works, a backup stores again what it cannot find,
/// and every failure names `cairn repair index`.
#[test]
fn a_corrupt_index_segment_stops_only_what_needs_it() {
    let s = Scratch::with_repo();
    let (a, b) = two_sources(&s, 2_500_000);
    s.backup(&[&a], &[]);
    let first: Vec<PathBuf> =
        fs::read_dir(s.repo().join("index")).unwrap().map(|e| e.unwrap().path()).collect();
    s.backup(&[&b], &[]);
    let segment = fs::read_dir(s.repo().join("index"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| !first.contains(p))
        .expect("the second backup wrote a segment");
    flip_byte(&segment, 40);
    fs::remove_dir_all(s.path("cache")).unwrap();
    let listed = s.run(&["--json", "snapshots"]);
    assert!(listed.status.success(), "{}", describe(&listed));
    assert!(listed.stderr.is_empty(), "{}", describe(&listed));
    let target = s.path("restored-a");
    let only = |dir: &Path| ["--path".to_string(), dir.display().to_string()];
    let only_a = only(&a);
    let only_a: Vec<&str> = only_a.iter().map(String::as_str).collect();
    let restore_a = restore_into(&s, &a, &target, &only_a).output().unwrap();
    assert_eq!(restore_a.status.code(), Some(3), "{}", describe(&restore_a));
    assert!(said(&restore_a).contains("cairn repair index"), "{}", describe(&restore_a));
    assert_same_tree(&a, &target);
    let restore_b = restore_into(&s, &b, &s.path("restored-b"), &[]).output().unwrap();
    assert_eq!(restore_b.status.code(), Some(1), "{}", describe(&restore_b));
    assert!(said(&restore_b).contains("cairn repair index"), "{}", describe(&restore_b));
    let prune = s.run(&["prune"]);
    assert_eq!(prune.status.code(), Some(1), "{}", describe(&prune));
    assert!(said(&prune).contains("cairn repair index"), "{}", describe(&prune));
    // A backup carries on: it indexes the packs the segment listed again.
    let backup = s.run(&["--json", "backup", b.to_str().unwrap()]);
    assert_eq!(backup.status.code(), Some(3), "{}", describe(&backup));
    let again = s.path("restored-b-again");
    let restore_b = restore_into(&s, &b, &again, &[]).output().unwrap();
    assert!(
        restore_b.status.success() || restore_b.status.code() == Some(3),
        "{}",
        describe(&restore_b)
    );
    assert_same_tree(&b, &again);
    s.ok(&["repair", "index"]);
    assert_eq!(check(&s, &["--read-data"]).0, 0);
}

/// Smaller ones: a name with a newline, an escape sequence and a byte that is not UTF-8 is
/// listed as its bytes into a pipe, given exactly in `--json` (hex), and can be dumped and
/// restored by that name.
#[test]
fn odd_names_are_listed_faithfully_and_can_be_dumped_and_restored() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let s = Scratch::with_repo();
    let src = s.path("src");
    fs::create_dir(&src).unwrap();
    let name: &[u8] = b"two\nlines \x1b[31mred \xff";
    let odd = src.join(OsStr::from_bytes(name));
    fs::write(&odd, b"odd contents").unwrap();
    s.backup(&[&src], &[]);
    let listed = s.run(&["ls", "latest"]);
    assert!(listed.status.success(), "{}", describe(&listed));
    let raw = odd.as_os_str().as_bytes();
    assert!(listed.stdout.windows(raw.len()).any(|w| w == raw), "{}", describe(&listed));
    let json = String::from_utf8(s.run(&["--json", "ls", "latest"]).stdout).unwrap();
    let entry: Value = json
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v["name_hex"].is_string())
        .unwrap_or_else(|| panic!("no entry with name_hex: {json}"));
    assert_eq!(entry["path_hex"], hex::encode(raw));
    let dumped = s.cmd(&["dump", "latest"]).arg(&odd).output().unwrap();
    assert_eq!(dumped.stdout, b"odd contents", "{}", describe(&dumped));
    let mut reference = b"latest:".to_vec();
    reference.extend_from_slice(raw);
    let target = s.path("target");
    let restored = s
        .cmd(&["restore"])
        .arg(OsStr::from_bytes(&reference))
        .arg("--target")
        .arg(&target)
        .output()
        .unwrap();
    assert!(restored.status.success(), "{}", describe(&restored));
    assert_eq!(fs::read(target.join(OsStr::from_bytes(name))).unwrap(), b"odd contents");
}

/// Smaller ones: a modification time that cannot be stored exactly is warned about.
#[test]
fn a_modification_time_after_2262_is_warned_about() {
    let s = Scratch::with_repo();
    let src = s.path("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("future"), b"from 2300").unwrap();
    let touched =
        Command::new("touch").args(["-d", "2300-01-01"]).arg(src.join("future")).status().unwrap();
    assert!(touched.success());
    let out = s.run(&["backup", src.to_str().unwrap()]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(said(&out).contains("1677-2262"), "{}", describe(&out));
}

/// Smaller ones: passwords. An empty one is refused by `init`; one that is not UTF-8 works;
/// key files that cannot be read are not reported as a wrong password.
#[test]
fn passwords_empty_binary_and_unreadable_keys_are_told_apart() {
    use std::os::unix::ffi::OsStrExt;
    let empty = Scratch::new();
    let out = empty.cmd(&["init"]).env("CAIRN_PASSWORD", "").output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(said(&out).contains("empty password"), "{}", describe(&out));
    assert!(!empty.repo().join("config").exists());
    let binary = std::ffi::OsStr::from_bytes(b"caf\xe9 \xff");
    let s = Scratch::new();
    let init = s
        .cmd(&["init", "--argon2-memory", "256", "--argon2-iterations", "1"])
        .env("CAIRN_PASSWORD", binary)
        .output()
        .unwrap();
    assert!(init.status.success(), "{}", describe(&init));
    let listed = s.cmd(&["snapshots"]).env("CAIRN_PASSWORD", binary).output().unwrap();
    assert!(listed.status.success(), "{}", describe(&listed));
    assert_eq!(s.run(&["snapshots"]).status.code(), Some(12), "another password is wrong");
    for key in fs::read_dir(s.repo().join("keys")).unwrap() {
        fs::write(key.unwrap().path(), b"not a key file").unwrap();
    }
    let out = s.cmd(&["snapshots"]).env("CAIRN_PASSWORD", binary).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(said(&out).contains("can be read"), "{}", describe(&out));
}

/// Smaller ones: `copy` copies every snapshot it can read and names the others (exit 3).
#[test]
fn copy_copies_what_it_can_and_names_the_snapshots_it_cannot() {
    let s = Scratch::with_repo();
    let (a, b) = two_sources(&s, 300_000);
    s.backup(&[&a], &[]);
    let before: Vec<PathBuf> = packs(&s).into_iter().map(|(p, _, _)| p).collect();
    s.backup(&[&b], &[]);
    for (pack, kind, blobs) in packs(&s) {
        if kind == "Data" && !before.contains(&pack) {
            for blob in blobs {
                flip_byte(&pack, blob.offset + blob.length / 2);
            }
        }
    }
    let target = Scratch::with_repo();
    let out = target
        .cmd(&["--json", "copy"])
        .env("CAIRN_FROM_REPOSITORY", s.repo())
        .env("CAIRN_FROM_PASSWORD", crate::util::PASSWORD)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    let summary = json_output(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(summary["copied"].as_array().unwrap().len(), 1, "{summary}");
    assert_eq!(summary["failed"].as_array().unwrap().len(), 1, "{summary}");
    assert!(said(&out).contains("not copied"), "{}", describe(&out));
    assert_eq!(check(&target, &["--read-data"]).0, 0);
    let restored = target.path("restored-a");
    let reference = format!("latest:{}", a.display());
    target.ok(&["restore", &reference, "--target", restored.to_str().unwrap()]);
    assert_same_tree(&a, &restored);
}

/// Smaller ones: a pack shorter than the index says is named as such, with what to run.
#[test]
fn a_truncated_pack_is_reported_as_shorter_than_the_index_says() {
    let (s, src) = backed_up();
    let (pack, _, _) = packs(&s).into_iter().find(|(_, kind, _)| kind == "Data").unwrap();
    let bytes = fs::read(&pack).unwrap();
    fs::write(&pack, &bytes[..bytes.len() / 3]).unwrap();
    let out = restore_into(&s, &src, &s.path("target"), &[]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let text = said(&out);
    assert!(text.contains("shorter than the index says"), "{text}");
    assert!(text.contains("cairn check"), "{text}");
}

/// Defect 4, in the middle of a run: a damaged block that opening the index does not read is
/// found by a lookup, and the index is rebuilt in place so that every lookup succeeds.
#[test]
fn a_damaged_block_found_by_a_lookup_is_rebuilt_in_place() {
    let s = Scratch::with_repo();
    let src = s.path("src");
    fs::create_dir(&src).unwrap();
    for i in 0..3000u64 {
        fs::write(src.join(format!("f{i:04}")), noise(i, 200)).unwrap();
    }
    s.backup(&[&src], &[]);
    s.ok(&["snapshots"]);
    let table =
        cache_tables(&s).into_iter().max_by_key(|t| fs::metadata(t).unwrap().len()).unwrap();
    let size = fs::metadata(&table).unwrap().len();
    assert!(size > 100_000, "the blob entries span many blocks ({size} bytes)");
    flip_byte(&table, size / 2);
    let backend = std::sync::Arc::new(LocalBackend::new(s.repo()));
    let repo =
        Repository::open(backend, crate::util::PASSWORD.as_bytes(), &s.path("cache")).unwrap();
    let segments = repo.load_segments().unwrap();
    let mut located = 0;
    for (_, segment) in &segments.current {
        for pack in &segment.packs {
            for blob in &pack.blobs {
                repo.locate(&blob.id).unwrap_or_else(|e| panic!("{}: {e}", blob.id));
                located += 1;
            }
        }
    }
    assert!(located > 3000, "{located}");
}
