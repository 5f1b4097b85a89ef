//! `cairn mount` through the kernel (issue #4): real FUSE mounts compared with their sources,
//! standard tools run against them, live refresh, concurrency, damage and unmounting.
//!
//! These need a usable /dev/fuse and fusermount3. Without them each test prints why it skips;
//! with `CAIRN_REQUIRE_FUSE=1` (set by scripts/test, so CI never skips) a missing FUSE fails.

use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::util::{Scratch, assert_same_tree, assert_same_tree_within, describe, make_tree, noise};

/// A mount counts each stored chunk whole (up to 2 MiB, 4096 blocks), zeros inside included.
const CHUNK_BLOCKS: u64 = 4096 + 8;

/// Whether real mounts can run here; explains on stderr when not.
pub fn fuse_usable() -> bool {
    let device = fs::OpenOptions::new().read(true).write(true).open("/dev/fuse");
    let helper = Command::new("fusermount3").arg("-V").output();
    let reason = match (device, helper) {
        (Ok(_), Ok(_)) => return true,
        (Err(e), _) => format!("/dev/fuse cannot be opened ({e})"),
        (_, Err(e)) => format!("fusermount3 is not installed ({e})"),
    };
    assert!(
        std::env::var_os("CAIRN_REQUIRE_FUSE").is_none(),
        "CAIRN_REQUIRE_FUSE is set but {reason}"
    );
    eprintln!("skipping a real-mount test: {reason}; install fuse3 and run where /dev/fuse exists");
    false
}

fn is_mounted(dir: &Path) -> bool {
    let dir = dir.to_string_lossy().replace(' ', "\\040");
    fs::read_to_string("/proc/mounts")
        .unwrap()
        .lines()
        .any(|line| line.split(' ').nth(1) == Some(dir.as_str()))
}

/// A running `cairn mount`, unmounted (and waited for) when dropped.
pub struct Mounted {
    child: Option<Child>,
    dir: PathBuf,
    log: PathBuf,
}

impl Mounted {
    pub fn start(s: &Scratch, name: &str, extra: &[&str]) -> Self {
        let dir = s.path(name);
        fs::create_dir_all(&dir).unwrap();
        let log = s.path(&format!("{name}.log"));
        let mut args = vec!["mount", dir.to_str().unwrap()];
        args.extend_from_slice(extra);
        let mut child = s
            .cmd(&args)
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !is_mounted(&dir) {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("cairn mount exited ({status}): {}", fs::read_to_string(&log).unwrap());
            }
            assert!(Instant::now() < deadline, "mount did not appear");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child: Some(child), dir, log }
    }

    pub fn path(&self, inside: &str) -> PathBuf {
        self.dir.join(inside.trim_start_matches('/'))
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap()
    }

    /// Stops the mount with `signal` and returns the exit status.
    fn stop(&mut self, signal: Signal) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        kill(Pid::from_raw(child.id() as i32), signal).unwrap();
        wait_for(&mut child, Duration::from_secs(20))
    }
}

fn wait_for(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("cairn mount did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
            let _ = child.wait();
        }
        if is_mounted(&self.dir) {
            let _ = Command::new("fusermount3").arg("-uz").arg(&self.dir).status();
        }
    }
}

fn run_tool(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(out.status.success(), "{program} {args:?}: {}", describe(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_mounted_snapshot_matches_its_source_for_every_tool() {
    if !fuse_usable() {
        return;
    }
    let s = Scratch::with_repo();
    let src = s.path("src");
    make_tree(&src);
    s.backup(&[&src], &["--tag", "first"]);
    let m = Mounted::start(&s, "mnt", &[]);
    let inside = m.path(&format!("snapshots/latest/{}", src.display()));
    // Content, types, modes, owners, times, xattrs, symlinks, hardlinks, devices, holes.
    assert_same_tree_within(&src, &inside, CHUNK_BLOCKS);
    let by_id = fs::read_dir(m.path("ids"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .find(|n| n != "latest")
        .unwrap();
    assert_same_tree_within(&src, &m.path(&format!("ids/{by_id}/{}", src.display())), CHUNK_BLOCKS);
    let host = fs::read_dir(m.path("hosts")).unwrap().count();
    assert_eq!(host, 1);
    assert!(m.path("tags/first/latest").join(src.strip_prefix("/").unwrap()).is_dir());

    // The usual tools: diff, stat, find, du, cp -a, rsync -aHAXS (S keeps holes), tar.
    let (a, b) = (src.join("dir"), inside.join("dir"));
    run_tool("diff", &["-r", a.to_str().unwrap(), b.to_str().unwrap()]);
    // Directory sizes are whatever the source file system reports; they are not recorded.
    for (name, format) in [
        ("small.txt", "%s %a %u %g %h %Y %F"),
        ("large.bin", "%s %a %u %g %h %Y %F"),
        ("hard-a", "%s %a %u %g %h %Y %F"),
        ("link-to-file", "%s %a %u %g %h %Y %F %N"),
        ("dir/nested", "%a %u %g %h %Y %F"),
    ] {
        let (a, b) = (src.join(name), inside.join(name));
        let shown = |path: &Path| {
            run_tool("stat", &["-c", format, path.to_str().unwrap()])
                .replace(path.to_str().unwrap(), "PATH")
        };
        assert_eq!(shown(&a), shown(&b), "stat of {name}");
    }
    let found = run_tool("find", &[inside.to_str().unwrap()]);
    let expected = run_tool("find", &[src.to_str().unwrap()]);
    assert_eq!(found.lines().count(), expected.lines().count());
    run_tool("du", &["-s", inside.to_str().unwrap()]);
    let copy = s.path("copied");
    run_tool("cp", &["-a", inside.to_str().unwrap(), copy.to_str().unwrap()]);
    assert_same_tree(&src, &copy);
    let synced = s.path("synced");
    let from = format!("{}/", inside.display());
    run_tool("rsync", &["-aHAXS", &from, synced.to_str().unwrap()]);
    assert_same_tree(&src, &synced);
    let tarball = s.path("tree.tar");
    run_tool("tar", &["-cf", tarball.to_str().unwrap(), "-C", inside.to_str().unwrap(), "dir"]);
    assert!(fs::metadata(&tarball).unwrap().len() > 3000);
}

#[test]
fn a_large_sparse_image_copies_out_exactly_and_stays_sparse() {
    if !fuse_usable() {
        return;
    }
    let s = Scratch::with_repo();
    let src = s.path("src");
    fs::create_dir(&src).unwrap();
    let image = src.join("vm.raw");
    let file = fs::File::create(&image).unwrap();
    file.set_len(512 << 20).unwrap();
    for (i, offset) in [0u64, 7 << 20, 100 << 20, 511 << 20].into_iter().enumerate() {
        std::os::unix::fs::FileExt::write_all_at(&file, &noise(40 + i as u64, 1 << 20), offset)
            .unwrap();
    }
    drop(file);
    s.backup(&[&src], &[]);
    let m = Mounted::start(&s, "mnt", &["--cache-size", "16M"]);
    let mounted = m.path(&format!("snapshots/latest/{}", image.display()));
    assert_eq!(fs::metadata(&mounted).unwrap().len(), 512 << 20);
    let copy = s.path("copy.raw");
    run_tool("cp", &["--sparse=always", mounted.to_str().unwrap(), copy.to_str().unwrap()]);
    assert!(
        blake3::hash(&fs::read(&copy).unwrap()) == blake3::hash(&fs::read(&image).unwrap()),
        "copied bytes differ"
    );
    assert!(fs::metadata(&copy).unwrap().blocks() < 64 << 11, "the copy lost its holes");
    // `du` on the mount reports stored data, not the apparent size.
    assert!(fs::metadata(&mounted).unwrap().blocks() < 64 << 11);
    // Random 4 KiB reads anywhere in the image.
    let expected = fs::read(&image).unwrap();
    let mut reader = fs::File::open(&mounted).unwrap();
    let mut x = 99u64;
    for _ in 0..200 {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        let offset = (x >> 16) % ((512 << 20) - 4096);
        let mut buf = [0u8; 4096];
        std::os::unix::fs::FileExt::read_exact_at(&reader, &mut buf, offset).unwrap();
        assert!(buf[..] == expected[offset as usize..offset as usize + 4096]);
    }
    let mut head = [0u8; 16];
    reader.read_exact(&mut head).unwrap();
    assert_eq!(head[..], expected[..16]);
}

#[test]
fn snapshots_made_after_mounting_appear_and_readers_run_concurrently() {
    if !fuse_usable() {
        return;
    }
    let s = Scratch::with_repo();
    let src = s.path("src");
    fs::create_dir(&src).unwrap();
    for i in 0..4u64 {
        fs::write(src.join(format!("f{i}")), noise(i, 6 << 20)).unwrap();
    }
    s.backup(&[&src], &[]);
    let m = Mounted::start(&s, "mnt", &["--cache-size", "8M"]);
    let count = || fs::read_dir(m.path("snapshots")).unwrap().count();
    assert_eq!(count(), 2, "one snapshot and latest");

    fs::write(src.join("later"), b"made after mounting").unwrap();
    s.backup(&[&src], &["--host", "second-host"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while count() < 3 {
        assert!(Instant::now() < deadline, "the new snapshot never appeared");
        std::thread::sleep(Duration::from_millis(200));
    }
    let later = m.path(&format!("hosts/second-host/latest/{}/later", src.display()));
    assert_eq!(fs::read(later).unwrap(), b"made after mounting");

    // Four readers on different files and listings elsewhere, all at once.
    let readers: Vec<_> = (0..4u64)
        .map(|i| {
            let path = m.path(&format!("snapshots/latest/{}/f{i}", src.display()));
            std::thread::spawn(move || fs::read(path).unwrap() == noise(i, 6 << 20))
        })
        .collect();
    for _ in 0..20 {
        assert!(fs::read_dir(m.path("ids")).unwrap().count() >= 3);
        assert!(fs::read_dir(m.path("hosts")).unwrap().count() >= 2);
    }
    for reader in readers {
        assert!(reader.join().unwrap(), "a concurrent reader got wrong bytes");
    }
}

#[test]
fn one_snapshot_path_can_be_mounted_at_the_root() {
    if !fuse_usable() {
        return;
    }
    let s = Scratch::with_repo();
    let src = s.path("src");
    make_tree(&src);
    s.backup(&[&src], &[]);
    let reference = format!("latest:{}/dir", src.display());
    let m = Mounted::start(&s, "mnt", &["--snapshot", &reference]);
    assert_same_tree_within(&src.join("dir"), &m.dir, CHUNK_BLOCKS);
    assert!(!m.path("snapshots").exists());
}

#[test]
fn a_damaged_chunk_is_an_io_error_for_that_file_only_and_is_logged() {
    if !fuse_usable() {
        return;
    }
    let s = Scratch::with_repo();
    let src = s.path("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("fine.txt"), b"still readable").unwrap();
    s.backup(&[&src], &[]);
    let before: Vec<PathBuf> = s.repository_files().into_iter().map(|(p, _)| p).collect();
    fs::write(src.join("victim.bin"), noise(7, 3 << 20)).unwrap();
    s.backup(&[&src], &[]);
    // The largest pack the second backup wrote holds the victim's data.
    let (pack, mut bytes) = s
        .repository_files()
        .into_iter()
        .filter(|(p, _)| p.starts_with(s.repo().join("data")) && !before.contains(p))
        .max_by_key(|(_, b)| b.len())
        .unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    fs::write(&pack, bytes).unwrap();

    let m = Mounted::start(&s, "mnt", &[]);
    let dir = m.path(&format!("snapshots/latest/{}", src.display()));
    let error = fs::read(dir.join("victim.bin")).unwrap_err();
    assert_eq!(error.raw_os_error(), Some(libc::EIO), "{error}");
    assert_eq!(fs::read(dir.join("fine.txt")).unwrap(), b"still readable");
    assert!(fs::read_dir(m.path("ids")).unwrap().count() >= 2);
    let log = m.log();
    assert!(
        log.contains("victim.bin") && log.contains("blob"),
        "the log names the file and the blob: {log}"
    );
}

#[test]
fn signals_and_fusermount_unmount_cleanly() {
    if !fuse_usable() {
        return;
    }
    let s = Scratch::with_repo();
    let src = s.path("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("a"), b"a").unwrap();
    s.backup(&[&src], &[]);
    for signal in [Signal::SIGTERM, Signal::SIGINT] {
        let mut m = Mounted::start(&s, "mnt", &[]);
        assert!(fs::read_dir(m.path("snapshots")).unwrap().count() > 0);
        let status = m.stop(signal);
        assert!(status.success(), "{signal}: exit {status}");
        assert!(!is_mounted(&m.dir), "{signal} left the mount behind");
    }
    let mut m = Mounted::start(&s, "mnt", &[]);
    run_tool("fusermount3", &["-u", m.dir.to_str().unwrap()]);
    let status = wait_for(m.child.as_mut().unwrap(), Duration::from_secs(20));
    m.child = None;
    assert!(status.success(), "fusermount3 -u: exit {status}");
    // A busy mount (a file open inside it) is detached lazily on SIGTERM: it leaves the
    // namespace at once, and cairn exits when the last file is closed.
    let mut m = Mounted::start(&s, "mnt", &[]);
    let holder = fs::File::open(m.path(&format!("snapshots/latest/{}/a", src.display()))).unwrap();
    let mut child = m.child.take().unwrap();
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while is_mounted(&m.dir) {
        assert!(Instant::now() < deadline, "the busy mount was not detached");
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(holder);
    let status = wait_for(&mut child, Duration::from_secs(20));
    assert!(status.success(), "busy mount: exit {status}");
}

#[test]
fn bad_mountpoints_and_passwords_fail_before_anything_is_mounted() {
    let s = Scratch::with_repo();
    let missing = s.path("missing");
    let out = s.run(&["mount", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("create an empty directory"));

    let full = s.path("full");
    fs::create_dir(&full).unwrap();
    fs::write(full.join("x"), b"x").unwrap();
    let out = s.run(&["mount", full.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not empty"));

    let empty = s.path("empty");
    fs::create_dir(&empty).unwrap();
    let out =
        s.cmd(&["mount", empty.to_str().unwrap()]).env("CAIRN_PASSWORD", "wrong").output().unwrap();
    assert_eq!(out.status.code(), Some(12), "{}", describe(&out));
    let out = s
        .cmd(&["mount", empty.to_str().unwrap()])
        .env("CAIRN_REPOSITORY", s.path("nowhere"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(10), "{}", describe(&out));
    assert!(!is_mounted(&empty));

    let src = s.path("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("f"), b"f").unwrap();
    s.backup(&[&src], &[]);
    let reference = format!("latest:{}/f", src.display());
    let out = s.run(&["mount", empty.to_str().unwrap(), "--snapshot", &reference]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a directory"));
    assert!(!is_mounted(&empty));
}

#[test]
fn a_mount_of_an_empty_repository_shows_its_first_snapshot() {
    if !fuse_usable() {
        return;
    }
    let s = Scratch::with_repo();
    let m = Mounted::start(&s, "mnt", &[]);
    assert_eq!(fs::read_dir(m.path("snapshots")).unwrap().count(), 0);
    let src = s.path("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("first"), noise(5, 3 << 20)).unwrap();
    s.backup(&[&src], &[]);
    let file = m.path(&format!("snapshots/latest/{}/first", src.display()));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !file.exists() {
        assert!(Instant::now() < deadline, "the first snapshot never appeared");
        std::thread::sleep(Duration::from_millis(200));
    }
    // Its blobs are found: the index segments written after mounting were read.
    assert!(fs::read(file).unwrap() == noise(5, 3 << 20));
}
