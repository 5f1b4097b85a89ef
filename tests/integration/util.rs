//! Shared test helpers: a scratch repository driven through the real `cairn` binary, a
//! generator for file trees with every kind of node, and a deep comparison of two trees.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cairn_format::backend::LocalBackend;
use cairn_format::pack::BlobKind;
use cairn_format::packer::BlobWriter;
use cairn_format::snapshot::Snapshot;
pub use cairn_format::testing::node;
use cairn_format::tree::{Node, Tree};
use cairn_format::{BlobId, Repository};
use serde_json::Value;

pub const PASSWORD: &str = "correct horse battery staple";

/// A temporary directory with a repository, a cache and room for sources and targets.
pub struct Scratch {
    pub dir: tempfile::TempDir,
    /// `-r` for every command; the local `repo` directory when `None`.
    pub location: Option<String>,
    /// Extra environment for every command (a remote's credentials).
    pub env: Vec<(String, String)>,
}

impl Scratch {
    pub fn new() -> Self {
        Self { dir: tempfile::tempdir().expect("temp dir"), location: None, env: Vec::new() }
    }

    /// A scratch directory with an initialized repository (cheap KDF, 1 MiB packs).
    pub fn with_repo() -> Self {
        Self::new().initialized()
    }

    /// Initializes the repository at `location` (cheap KDF, 1 MiB packs).
    pub fn initialized(self) -> Self {
        let scratch = self;
        scratch.ok(&[
            "init",
            "--argon2-memory",
            "256",
            "--argon2-iterations",
            "1",
            "--pack-size",
            "1",
        ]);
        scratch
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn repo(&self) -> PathBuf {
        self.path("repo")
    }

    /// A `cairn` command with the repository, password and cache set through the environment.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cairn"));
        let location = (self.location.clone()).unwrap_or_else(|| self.repo().display().to_string());
        cmd.args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("CAIRN_REPOSITORY", location)
            .env("CAIRN_PASSWORD", PASSWORD)
            .env("CAIRN_CACHE_DIR", self.path("cache"))
            .env_remove("CAIRN_PASSWORD_FILE")
            .env_remove("CAIRN_PASSWORD_COMMAND")
            .env("RUST_LOG", "warn");
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("cairn runs")
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "cairn {args:?} failed: {}", describe(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs with `--json`, asserts success and parses stdout.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        json_output(&self.ok(&all))
    }

    /// Runs with `--json`, asserts success, checks that every line of stdout is one JSON object
    /// and returns those that are not progress (`status`), as an array.
    pub fn json_list(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        Value::Array(json_lines(&self.ok(&all)))
    }

    /// Backs up `paths` and returns the JSON summary.
    pub fn backup(&self, paths: &[&Path], extra: &[&str]) -> Value {
        let mut args = vec!["backup"];
        let paths: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        args.extend(paths.iter().map(String::as_str));
        args.extend_from_slice(extra);
        self.json(&args)
    }

    /// Restores `latest:<src>` with `--verify` into a new directory, compares it with `src`,
    /// and returns the directory.
    pub fn restore_latest_and_compare(&self, src: &Path) -> PathBuf {
        let target = self.path("restored");
        let reference = format!("latest:{}", src.display());
        self.ok(&["restore", &reference, "--target", target.to_str().unwrap(), "--verify"]);
        assert_same_tree(src, &target);
        target
    }

    /// Every file in the repository, with its bytes.
    pub fn repository_files(&self) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        walk_files(&self.repo(), &mut out);
        out
    }
}

/// The scratch repository opened through the library, for writing what the CLI never would
/// (hostile names, absurd depths).
pub fn library_repo(s: &Scratch) -> std::sync::Arc<Repository> {
    let backend = std::sync::Arc::new(LocalBackend::new(s.repo()));
    let repo = Repository::open(backend, PASSWORD.as_bytes(), &s.path("cache")).unwrap();
    std::sync::Arc::new(repo)
}

/// Stores a tree of `nodes` through `writer`; returns its id.
pub fn store_tree(repo: &Repository, writer: &BlobWriter, nodes: Vec<Node>) -> BlobId {
    let bytes = Tree { nodes }.encode();
    let id = repo.key().blob_id(&bytes);
    writer.add(BlobKind::Tree, id, || bytes).unwrap();
    id
}

/// Saves a snapshot of the tree `tree` from the host `host`; returns its id in hex.
pub fn save_snapshot(repo: &Repository, tree: BlobId, host: &str) -> String {
    let snapshot = Snapshot {
        time_ns: 1_700_000_000_000_000_000,
        tree,
        paths: vec!["/".into()],
        hostname: host.into(),
        ..Snapshot::default()
    };
    repo.save_snapshot(&snapshot).unwrap().to_hex()
}

/// The JSON object a `--json` command printed last (after any status lines); every line must
/// be one JSON object (issue #17).
pub fn json_output(text: &str) -> Value {
    json_lines(text).pop().unwrap_or_else(|| panic!("no JSON result in: {text}"))
}

/// Every line of `text` parsed as one JSON object, progress (`status`) lines left out.
pub fn json_lines(text: &str) -> Vec<Value> {
    let parsed = text.lines().filter(|l| !l.trim().is_empty()).map(|line| {
        let value: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        assert!(value.is_object(), "not a JSON object: {line}");
        value
    });
    parsed.filter(|v| v["message_type"] != "status").collect()
}

pub fn describe(out: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn walk_files(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    for entry in fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            walk_files(&path, out);
        } else {
            out.push((path.clone(), fs::read(&path).expect("read")));
        }
    }
}

/// Reproducible pseudo-random bytes (xorshift), so tests never depend on a RNG crate's output.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

pub fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

/// Builds a tree with every node type the snapshot format records.
pub fn make_tree(root: &Path) {
    fs::create_dir_all(root.join("dir/nested/deeper")).unwrap();
    fs::create_dir(root.join("empty-dir")).unwrap();
    fs::write(root.join("small.txt"), b"hello cairn\n").unwrap();
    fs::write(root.join("empty"), b"").unwrap();
    fs::write(root.join("dir/nested/deeper/leaf"), noise(1, 3000)).unwrap();
    fs::write(root.join("large.bin"), noise(2, 9 << 20)).unwrap();
    fs::write(
        root.join("zeros-in-data"),
        [noise(3, 100_000), vec![0; 6 << 20], noise(4, 5000)].concat(),
    )
    .unwrap();
    let sparse = fs::File::create(root.join("sparse.img")).unwrap();
    sparse.set_len(64 << 20).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&sparse, b"middle", 32 << 20).unwrap();
    for name in [
        "unicodé ✓ 名前",
        "with space",
        "-starts-with-dash",
        "new\nline",
        "back\\slash",
        "*glob?[x]",
    ] {
        fs::write(root.join(name), name.as_bytes()).unwrap();
    }
    let non_utf8 = root.join(OsString::from_vec(vec![b'b', 0xff, 0xfe, b'x']));
    fs::write(non_utf8, b"latin-1 name").unwrap();
    symlink("small.txt", root.join("link-to-file")).unwrap();
    symlink("/nonexistent/target", root.join("dangling-link")).unwrap();
    symlink("dir/nested", root.join("link-to-dir")).unwrap();
    fs::write(root.join("hard-a"), b"shared inode").unwrap();
    fs::hard_link(root.join("hard-a"), root.join("dir/hard-b")).unwrap();
    nix::unistd::mkfifo(&root.join("fifo"), nix::sys::stat::Mode::from_bits_truncate(0o640))
        .unwrap();
    let _ = std::os::unix::net::UnixListener::bind(root.join("socket"));
    fs::set_permissions(root.join("small.txt"), fs::Permissions::from_mode(0o4751)).unwrap();
    fs::set_permissions(root.join("dir/nested"), fs::Permissions::from_mode(0o1770)).unwrap();
    xattr::set(root.join("small.txt"), "user.colour", b"blue").unwrap();
    xattr::set(root.join("dir"), "user.empty", b"").unwrap();
    if is_root() {
        use nix::sys::stat::{Mode, SFlag, makedev, mknod};
        mknod(
            &root.join("char-dev"),
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o600),
            makedev(1, 3),
        )
        .unwrap();
        mknod(
            &root.join("block-dev"),
            SFlag::S_IFBLK,
            Mode::from_bits_truncate(0o600),
            makedev(7, 200),
        )
        .unwrap();
        std::os::unix::fs::lchown(root.join("dir/nested/deeper/leaf"), Some(1234), Some(5678))
            .unwrap();
    }
    // Old, distinct times so a restore that forgets them is caught.
    let old = filetime(1_500_000_000, 123_456_789);
    for path in ["small.txt", "large.bin", "dir/nested/deeper", "dir"] {
        nix::sys::stat::utimensat(
            nix::fcntl::AT_FDCWD,
            &root.join(path),
            &old,
            &old,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )
        .unwrap();
    }
}

fn filetime(s: i64, ns: i64) -> nix::sys::time::TimeSpec {
    nix::sys::time::TimeSpec::new(s, ns)
}

/// Asserts that `restored` matches `source` in content, type, mode, owner, mtime, xattrs,
/// symlink targets, hardlink structure and sparseness. Sockets are not restored.
pub fn assert_same_tree(source: &Path, restored: &Path) {
    assert_same_tree_within(source, restored, 8);
}

/// As [`assert_same_tree`], allowing `slack_blocks` more allocated 512-byte blocks per file
/// (a mount counts a stored chunk whole, even where it holds zeros).
pub fn assert_same_tree_within(source: &Path, restored: &Path, slack_blocks: u64) {
    let mut inode_pairs: HashMap<u64, u64> = HashMap::new();
    compare_dir(source, restored, slack_blocks, &mut inode_pairs);
}

fn compare_dir(
    source: &Path,
    restored: &Path,
    slack_blocks: u64,
    inode_pairs: &mut HashMap<u64, u64>,
) {
    let mut names: Vec<_> = fs::read_dir(source).unwrap().map(|e| e.unwrap().file_name()).collect();
    names.sort();
    for name in names {
        let (a, b) = (source.join(&name), restored.join(&name));
        let ma = fs::symlink_metadata(&a).unwrap();
        if ma.file_type().is_socket_like() {
            continue;
        }
        let mb =
            fs::symlink_metadata(&b).unwrap_or_else(|e| panic!("{} missing: {e}", b.display()));
        assert_eq!(ma.file_type(), mb.file_type(), "{}", a.display());
        if !ma.file_type().is_symlink() {
            assert_eq!(ma.mode(), mb.mode(), "mode of {}", a.display());
        }
        if is_root() {
            assert_eq!((ma.uid(), ma.gid()), (mb.uid(), mb.gid()), "owner of {}", a.display());
        }
        assert_eq!(
            (ma.mtime(), ma.mtime_nsec()),
            (mb.mtime(), mb.mtime_nsec()),
            "mtime of {}",
            a.display()
        );
        assert_eq!(xattrs(&a), xattrs(&b), "xattrs of {}", a.display());
        if ma.is_dir() {
            compare_dir(&a, &b, slack_blocks, inode_pairs);
        } else if ma.is_file() {
            assert!(fs::read(&a).unwrap() == fs::read(&b).unwrap(), "content of {}", a.display());
            assert!(
                mb.blocks() <= ma.blocks() + slack_blocks,
                "{} lost its holes: {} vs {} blocks",
                a.display(),
                mb.blocks(),
                ma.blocks()
            );
            if ma.nlink() > 1 {
                let paired = *inode_pairs.entry(ma.ino()).or_insert(mb.ino());
                assert_eq!(paired, mb.ino(), "hardlink structure of {}", a.display());
                assert_eq!(ma.nlink(), mb.nlink(), "link count of {}", a.display());
            }
        } else if ma.file_type().is_symlink() {
            assert_eq!(fs::read_link(&a).unwrap(), fs::read_link(&b).unwrap());
        } else {
            assert_eq!(ma.rdev(), mb.rdev(), "device of {}", a.display());
        }
    }
}

trait SocketLike {
    fn is_socket_like(&self) -> bool;
}

impl SocketLike for fs::FileType {
    fn is_socket_like(&self) -> bool {
        std::os::unix::fs::FileTypeExt::is_socket(self)
    }
}

fn xattrs(path: &Path) -> Vec<(OsString, Vec<u8>)> {
    let mut out: Vec<_> = xattr::list(path)
        .map(|names| {
            names.filter_map(|n| xattr::get(path, &n).ok().flatten().map(|v| (n, v))).collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}
