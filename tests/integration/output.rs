//! What a restic user meets in the first hour (issue #17): JSON lines from every command,
//! errors as JSON, closed pipes, a missing backup path, `-v`, tables, errors about `latest`,
//! `copy`'s source password, `dump` to a terminal, help and `version`.

use std::fs;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Output, Stdio};

use serde_json::Value;

use crate::util::{Scratch, describe, json_lines};

fn tree(s: &Scratch) -> PathBuf {
    let src = s.path("src");
    fs::create_dir_all(src.join("dir/sub")).unwrap();
    fs::write(src.join("dir/sub/a.txt"), b"alpha").unwrap();
    fs::write(src.join("top.txt"), b"top").unwrap();
    std::os::unix::fs::symlink("top.txt", src.join("link")).unwrap();
    src
}

fn text(out: &Output) -> (String, String) {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (stdout, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Every stdout line one JSON object with a message_type; returns them.
fn lines_of(s: &Scratch, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = s.run(&all);
    assert!(out.status.success(), "{args:?}: {}", describe(&out));
    let (stdout, stderr) = text(&out);
    let lines = json_lines(&stdout);
    assert!(!lines.is_empty(), "{args:?} printed no JSON: {}", describe(&out));
    for line in &lines {
        assert!(line["message_type"].is_string(), "{args:?}: {line}");
    }
    for line in stderr.lines() {
        let value: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{args:?}: stderr not JSON ({e}): {line}"));
        assert!(value["message_type"].is_string(), "{args:?}: {line}");
    }
    lines
}

#[test]
fn every_command_prints_one_json_object_per_line() {
    let s = Scratch::new();
    let init = lines_of(&s, &["init", "--argon2-memory", "256", "--argon2-iterations", "1"]);
    assert_eq!(init.len(), 1);
    let src = tree(&s);
    let src_arg = src.to_str().unwrap();
    let summary = lines_of(&s, &["backup", src_arg]).pop().unwrap();
    assert_eq!(summary["message_type"], "summary");
    let snapshots = lines_of(&s, &["snapshots"]);
    assert_eq!(snapshots.len(), 1);
    // One vocabulary: the snapshot's summary says what the backup summary said.
    let stored = &snapshots[0]["summary"];
    for field in ["files_new", "dirs_new", "data_added", "total_files_processed", "error_count"] {
        assert_eq!(stored[field], summary[field], "{field}: {stored} vs {summary}");
    }
    assert_eq!(stored["backup_start"], summary["backup_start"]);
    let target = s.path("restored");
    let restore_target = target.to_str().unwrap();
    let other = Scratch::with_repo();
    let from = s.repo();
    for args in [
        vec!["ls", "latest"],
        vec!["stats"],
        vec!["stats", "--mode", "raw-data"],
        vec!["check"],
        vec!["check", "--read-data"],
        vec!["forget", "--keep-last", "5", "--dry-run"],
        vec!["tag", "latest", "--add", "t"],
        vec!["key", "list"],
        vec!["restore", "latest", "--target", restore_target],
        vec!["prune", "--dry-run"],
        vec!["prune"],
        vec!["repair", "index"],
        vec!["repair", "snapshots", "--dry-run"],
        vec!["unlock"],
        vec!["version"],
    ] {
        lines_of(&s, &args);
    }
    let copied = other
        .cmd(&["--json", "copy", "--from-repo", from.to_str().unwrap()])
        .env("CAIRN_FROM_PASSWORD", crate::util::PASSWORD)
        .output()
        .unwrap();
    assert!(copied.status.success(), "{}", describe(&copied));
    let copy = json_lines(&text(&copied).0).pop().unwrap();
    let tagged = s.json_list(&["snapshots"]);
    assert_eq!(copy["copied"][0]["from"], tagged[0]["id"], "{copy}");
    assert!(copy["copied"][0]["to"].is_string(), "{copy}");
}

#[test]
fn errors_with_json_are_json_lines_with_the_exit_code_and_hint() {
    let s = Scratch::new();
    let out = s.run(&["--json", "snapshots"]);
    assert_eq!(out.status.code(), Some(10), "{}", describe(&out));
    let error: Value = serde_json::from_str(text(&out).1.trim()).expect("one JSON line");
    assert_eq!(error["message_type"], "error");
    assert_eq!(error["exit_code"], 10);
    assert!(error["hint"].as_str().unwrap().contains("cairn init"), "{error}");
    let usage = s.run(&["--json", "snapshots", "--no-such-option"]);
    assert_eq!(usage.status.code(), Some(2), "{}", describe(&usage));
    let error: Value = serde_json::from_str(text(&usage).1.trim()).expect("one JSON line");
    assert_eq!(error["exit_code"], 2);
    assert!(error["message"].as_str().unwrap().contains("--no-such-option"));
    let plain = s.run(&["snapshots", "--no-such-option"]);
    assert_eq!(plain.status.code(), Some(2), "usage errors exit 2");
}

/// Runs with stdout a pipe whose reading end is already closed.
fn with_closed_stdout(s: &Scratch, args: &[&str]) -> Output {
    let mut child = s.cmd(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    drop(child.stdout.take());
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    let status = child.wait().unwrap();
    Output { status, stdout: Vec::new(), stderr: stderr.into_bytes() }
}

#[test]
fn a_closed_pipe_ends_a_command_quietly() {
    let s = Scratch::with_repo();
    let src = tree(&s);
    fs::write(src.join("big"), crate::util::noise(1, 3 << 20)).unwrap();
    s.backup(&[&src], &[]);
    let big = format!("{}", src.join("big").display());
    let restored = format!("{}", s.path("restored").display());
    for args in [
        vec!["snapshots"],
        vec!["--json", "snapshots"],
        vec!["ls", "latest"],
        vec!["ls", "latest", "--long"],
        vec!["--json", "ls", "latest"],
        vec!["dump", "latest", big.as_str()],
        vec!["stats"],
        vec!["key", "list"],
        vec!["version"],
        vec!["--help"],
        vec!["check"],
        vec!["cat", "config"],
        vec!["--json", "forget", "--keep-last", "1", "--dry-run"],
        vec!["restore", "latest", "--target", restored.as_str()],
    ] {
        let out = with_closed_stdout(&s, &args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", describe(&out));
        assert!(out.stderr.is_empty(), "{args:?}: {}", describe(&out));
    }
    // A backup whose reader went away still saves its snapshot.
    fs::write(src.join("new.txt"), b"new").unwrap();
    let out = with_closed_stdout(&s, &["--json", "backup", src.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(s.json_list(&["snapshots"]).as_array().unwrap().len(), 2);
}

#[test]
fn a_missing_backup_path_is_skipped_with_exit_3() {
    let s = Scratch::with_repo();
    let src = tree(&s);
    let missing = s.path("not-there");
    let out = s.run(&["backup", src.to_str().unwrap(), missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    assert!(text(&out).1.contains("not-there"), "{}", describe(&out));
    let listed = s.json_list(&["snapshots"]);
    let paths = &listed[0]["paths"];
    assert_eq!(paths.as_array().unwrap().len(), 1, "{paths}");
    assert_eq!(paths[0], src.to_str().unwrap());
    assert_eq!(listed[0]["summary"]["error_count"], 1);
    let target = s.path("restored");
    let reference = format!("latest:{}", src.display());
    s.ok(&["restore", &reference, "--target", target.to_str().unwrap()]);
    crate::util::assert_same_tree(&src, &target);
    let none = s.run(&["backup", missing.to_str().unwrap()]);
    assert_eq!(none.status.code(), Some(1), "{}", describe(&none));
    assert!(text(&none).1.contains("none of the paths"), "{}", describe(&none));
    assert_eq!(s.json_list(&["snapshots"]).as_array().unwrap().len(), 1);
}

#[test]
fn verbose_backups_list_what_changed_and_very_verbose_what_did_not() {
    let s = Scratch::with_repo();
    let src = tree(&s);
    let first = s.ok(&["backup", "-v", src.to_str().unwrap()]);
    let a = src.join("dir/sub/a.txt");
    assert!(first.contains(&format!("new       {}", a.display())), "{first}");
    fs::write(src.join("top.txt"), b"changed").unwrap();
    let second = s.ok(&["backup", "-v", src.to_str().unwrap()]);
    let top = src.join("top.txt");
    assert!(second.contains(&format!("modified  {}", top.display())), "{second}");
    assert!(!second.contains("unchanged"), "-v leaves unchanged files out: {second}");
    let third = s.ok(&["backup", "-vv", src.to_str().unwrap()]);
    assert!(third.contains(&format!("unchanged {}", a.display())), "{third}");
    let json = lines_of(&s, &["backup", "-vv", src.to_str().unwrap()]);
    let verbose: Vec<_> = json.iter().filter(|l| l["message_type"] == "verbose_status").collect();
    assert!(
        verbose.iter().any(|l| l["action"] == "unchanged" && l["item"] == a.to_str().unwrap()),
        "{json:?}"
    );
}

#[test]
fn skip_if_unchanged_saves_no_snapshot_when_nothing_changed() {
    let s = Scratch::with_repo();
    let src = tree(&s);
    s.backup(&[&src], &["--skip-if-unchanged"]);
    let same = s.backup(&[&src], &["--skip-if-unchanged"]);
    assert_eq!(same["skipped_unchanged"], true, "{same}");
    assert!(same["snapshot_id"].is_null());
    assert_eq!(s.json_list(&["snapshots"]).as_array().unwrap().len(), 1);
    fs::write(src.join("top.txt"), b"changed").unwrap();
    let changed = s.backup(&[&src], &["--skip-if-unchanged"]);
    assert_eq!(changed["skipped_unchanged"], false);
    assert_eq!(s.json_list(&["snapshots"]).as_array().unwrap().len(), 2);
    fs::remove_file(src.join("dir/sub/a.txt")).unwrap();
    let removed = s.backup(&[&src], &["--skip-if-unchanged"]);
    assert_eq!(removed["skipped_unchanged"], false, "a removed file is a change");
    assert_eq!(s.json_list(&["snapshots"]).as_array().unwrap().len(), 3);
}

#[test]
fn tables_read_well() {
    let s = Scratch::with_repo();
    let (a, b) = (s.path("a"), s.path("b"));
    for dir in [&a, &b] {
        fs::create_dir_all(dir).unwrap();
        fs::write(dir.join("f"), b"x").unwrap();
    }
    let time = ["--time", "2026-01-01T10:00:00Z"];
    s.backup(&[&a, &b], &[&time[..], &["--host", "h1"]].concat());
    s.backup(&[&a], &["--host", "h1", "--time", "2026-01-02T10:00:00Z"]);
    s.backup(&[&a], &["--host", "h2", "--time", "2026-01-03T10:00:00Z"]);
    s.backup(&[&a], &["--host", "h2", "--time", "2026-01-04T10:00:00Z"]);
    let table = s.ok(&["snapshots"]);
    // One path per line, as restic; times in UTC as the mount names snapshots.
    let first = table.lines().find(|l| l.contains("2026-01-01T10:00:00Z")).unwrap();
    assert!(first.ends_with(a.to_str().unwrap()) || first.contains(&format!("{} ", a.display())));
    assert!(!first.contains(b.to_str().unwrap()), "{table}");
    assert!(table.lines().any(|l| l.trim() == b.to_str().unwrap()), "{table}");
    assert!(table.lines().all(|l| l.chars().count() <= 120), "{table}");
    assert!(table.trim_end().ends_with("4 snapshots"), "{table}");
    let latest = s.json_list(&["snapshots", "--latest", "1"]);
    let hosts: Vec<_> = latest.as_array().unwrap().iter().map(|l| l["hostname"].clone()).collect();
    assert_eq!(hosts, ["h1", "h1", "h2"], "newest per host and paths: {latest}");
    let one = s.ok(&["snapshots", "--host", "h1", "--latest", "1", "--compact"]);
    assert!(one.trim_end().ends_with("2 snapshots"), "{one}");
    assert!(!one.contains(a.to_str().unwrap()), "--compact leaves paths out: {one}");
    let id = latest[2]["short_id"].as_str().unwrap().to_string();
    let named = s.ok(&["snapshots", &id]);
    assert!(named.trim_end().ends_with("1 snapshot"), "{named}");
    let summary = s.ok(&["backup", a.to_str().unwrap()]);
    assert!(!summary.contains(" 0 B skipped"), "zero counts left out: {summary}");
    assert!(!summary.contains("0 new"), "{summary}");
}

#[test]
fn errors_about_latest_say_what_it_was_and_what_to_try() {
    let s = Scratch::with_repo();
    let src = tree(&s);
    let here = s.ok(&["backup", src.to_str().unwrap()]);
    assert!(here.contains("saved"));
    let other = s.path("other");
    fs::create_dir_all(&other).unwrap();
    s.backup(&[&other], &["--host", "elsewhere"]);
    let wanted = format!("latest:{}", src.join("top.txt").display());
    let out = s.run(&["restore", &wanted, "--target", s.path("t").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let error = text(&out).1;
    assert!(error.contains("host elsewhere"), "{error}");
    assert!(error.contains("--host "), "{error}");
    let relative = s.run(&["dump", "latest", "no/such/file"]);
    let error = text(&relative).1;
    assert!(error.contains("absolute"), "{error}");
    assert!(!error.contains("SnapshotFilter"), "{error}");
    let none = s.run(&["ls", "latest", "--host", "nobody"]);
    let error = text(&none).1;
    assert!(error.contains("--host nobody"), "{error}");
    assert!(!error.contains("SnapshotFilter"), "no Rust debug text: {error}");
}

#[test]
fn copy_names_the_source_repository_and_its_password_options() {
    let source = Scratch::with_repo();
    let target = Scratch::with_repo();
    let from = source.repo();
    let missing = target
        .cmd(&["copy", "--from-repo", from.to_str().unwrap()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1), "{}", describe(&missing));
    let error = text(&missing).1;
    assert!(error.contains(from.to_str().unwrap()), "{error}");
    assert!(error.contains("--from-password-file"), "{error}");
    let wrong = target
        .cmd(&["copy", "--from-repo", from.to_str().unwrap()])
        .env("CAIRN_FROM_PASSWORD", "not the password")
        .output()
        .unwrap();
    assert_eq!(wrong.status.code(), Some(12), "{}", describe(&wrong));
    let error = text(&wrong).1;
    assert!(error.contains("source repository"), "{error}");
    assert!(error.contains("CAIRN_FROM_PASSWORD"), "{error}");
}

#[test]
fn copy_dry_run_prints_no_ids_the_real_run_would_not_use() {
    let source = Scratch::with_repo();
    source.backup(&[&tree(&source)], &[]);
    let target = Scratch::with_repo();
    let from = source.repo();
    let dry = target
        .cmd(&["copy", "-n", "--from-repo", from.to_str().unwrap()])
        .env("CAIRN_FROM_PASSWORD", crate::util::PASSWORD)
        .output()
        .unwrap();
    assert!(dry.status.success(), "{}", describe(&dry));
    let said = text(&dry).0;
    assert!(said.contains("would copy snapshot"), "{said}");
    assert!(!said.contains(" as "), "{said}");
    assert!(target.json_list(&["snapshots"]).as_array().unwrap().is_empty());
}

#[test]
fn dump_of_a_directory_holds_the_directory_and_refuses_a_terminal() {
    let s = Scratch::with_repo();
    let src = tree(&s);
    s.backup(&[&src], &[]);
    let dir = src.join("dir");
    let out = s.cmd(&["dump", "latest", dir.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    let mut archive = tar::Archive::new(&out.stdout[..]);
    let names: Vec<String> = (archive.entries().unwrap())
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert_eq!(names[0].trim_end_matches('/'), "dir", "{names:?}");
    assert!(names.iter().any(|n| n == "dir/sub/a.txt"), "{names:?}");
    // Under `script`, stdout is a terminal.
    let command = format!("{} dump latest {}", env!("CARGO_BIN_EXE_cairn"), dir.display());
    let environment = s.cmd(&[]);
    let tty = std::process::Command::new("script")
        .envs(environment.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .args(["-qec", &command, "/dev/null"])
        .output()
        .unwrap();
    assert_eq!(tty.status.code(), Some(1), "{}", describe(&tty));
    assert!(text(&tty).0.contains("tar stream"), "{}", describe(&tty));
}

#[test]
fn help_puts_the_commands_own_options_first_and_lists_the_environment() {
    let s = Scratch::new();
    let help = s.ok(&["backup", "--help"]);
    let own = help.find("--exclude").unwrap();
    let global = help.find("Global options").expect("a heading for global options");
    assert!(own < global, "{help}");
    assert!(help.find("--repo").unwrap() > global, "{help}");
    let top = s.ok(&["--help"]);
    for variable in [
        "CAIRN_REPOSITORY",
        "CAIRN_PASSWORD",
        "CAIRN_PASSWORD_FILE",
        "CAIRN_PASSWORD_COMMAND",
        "CAIRN_CACHE_DIR",
    ] {
        assert!(top.contains(variable), "{variable}: {top}");
    }
    assert!(top.contains("2    wrong command line"), "{top}");
    let forget = s.ok(&["forget", "--help"]);
    for keep in ["last", "hourly", "daily", "weekly", "monthly", "yearly"] {
        let line = forget.lines().skip_while(|l| !l.contains(&format!("--keep-{keep}")));
        let described: String = line.take(3).collect();
        assert!(described.contains("(-1:"), "--keep-{keep} says what -1 means: {forget}");
    }
    let ls = s.run(&["ls", "latest", "--recursive"]);
    assert_eq!(ls.status.code(), Some(2));
    let said = text(&ls).1;
    assert!(said.contains("restic's"), "{said}");
    assert!(!said.contains("--retries"), "{said}");
    let version = s.ok(&["version"]);
    assert!(version.starts_with(&format!("cairn {}", env!("CARGO_PKG_VERSION"))), "{version}");
}

#[test]
fn sizes_take_suffixes_and_the_old_numbers() {
    for (given, bytes) in [("8MiB", 8u64 << 20), ("8", 8 << 20)] {
        let s = Scratch::new();
        let cheap = ["--argon2-memory", "256KiB", "--argon2-iterations", "1"];
        s.ok(&[&["init", "--pack-size", given][..], &cheap].concat());
        let config = crate::util::json_output(&s.ok(&["cat", "config"]));
        assert_eq!(config["pack_size"], bytes, "{given}: {config}");
    }
    let s = Scratch::new();
    let bad = s.run(&["init", "--pack-size", "2GiB"]);
    assert_eq!(bad.status.code(), Some(2), "{}", describe(&bad));
}

/// `key passwd` says what happened once ("new key", not "new key key").
#[test]
fn key_passwd_reads_well() {
    let s = Scratch::with_repo();
    let file = s.path("new-password");
    fs::write(&file, "another password").unwrap();
    let said = s.ok(&["key", "passwd", "--new-password-file", file.to_str().unwrap()]);
    assert!(said.starts_with("password changed; new key "), "{said}");
    assert!(!said.contains("key key"), "{said}");
}

/// A detached tmux session of a given size running one shell command: a real terminal whose
/// screen the test reads (capture-pane), as a person would see it.
struct Tmux {
    name: String,
}

impl Tmux {
    fn start(s: &Scratch, width: u16, command: &str) -> Tmux {
        let name = format!("cairn-test-{}-{width}", std::process::id());
        let environment: Vec<String> = (s.cmd(&[]).get_envs())
            .filter_map(|(k, v)| {
                let value = v?.to_str()?.replace('\'', "'\\''");
                Some(format!("{}='{value}'", k.to_str()?))
            })
            .collect();
        let script = format!("env {} {command}; echo exit=$?; sleep 60", environment.join(" "));
        let started = std::process::Command::new("tmux")
            .args(["new-session", "-d", "-s", &name, "-x", &width.to_string(), "-y", "30"])
            .arg(script)
            .status()
            .expect("tmux is installed (scripts/setup-debian --test-servers)");
        assert!(started.success());
        Tmux { name }
    }

    fn screen(&self) -> String {
        let out = std::process::Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.name])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn keys(&self, keys: &str) {
        let sent = std::process::Command::new("tmux")
            .args(["send-keys", "-t", &self.name, keys])
            .status()
            .unwrap();
        assert!(sent.success());
    }

    /// Waits up to a minute for the screen to show `what`; returns the screen.
    fn wait_for(&self, what: impl Fn(&str) -> bool) -> String {
        for _ in 0..600 {
            let screen = self.screen();
            if what(&screen) {
                return screen;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("the screen never showed what was expected:\n{}", self.screen());
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ =
            std::process::Command::new("tmux").args(["kill-session", "-t", &self.name]).status();
    }
}

/// On a terminal of 80 and of 120 columns, a backup's progress is one line that fits, with a
/// bar or a percentage, sizes and an ETA; Ctrl-C clears it before the "interrupted" message.
#[test]
fn the_progress_line_fits_the_terminal_and_ctrl_c_clears_it() {
    let s = Scratch::with_repo();
    let src = s.path("src");
    fs::create_dir_all(&src).unwrap();
    for i in 0..4 {
        let name = src.join(format!("part-{i}.bin"));
        fs::write(name, crate::util::noise(i, 64 << 20)).unwrap();
    }
    for width in [80u16, 120] {
        // zstd's level 19 keeps the backup running long enough to be looked at.
        let cairn = env!("CARGO_BIN_EXE_cairn");
        let command = format!("{cairn} backup --compression 19 {}", src.display());
        let tmux = Tmux::start(&s, width, &command);
        let screen = tmux.wait_for(|screen| screen.contains("ETA"));
        let line = screen.lines().find(|l| l.contains("ETA")).unwrap();
        assert!(line.chars().count() < usize::from(width), "{width}: {line:?}");
        assert!(line.starts_with("backup "), "{line:?}");
        assert!(line.contains('%') && line.contains("files"), "{line:?}");
        assert!(!line.contains("0 B/0 B"), "{line:?}");
        tmux.keys("C-c");
        let after = tmux.wait_for(|screen| screen.contains("exit="));
        assert!(after.contains("exit=130"), "{after}");
        let message = after.lines().find(|l| l.contains("interrupted")).unwrap_or("");
        assert!(message.starts_with("error: interrupted"), "{after}");
        assert!(!after.contains("ETA"), "the bar was cleared: {after}");
    }
}
