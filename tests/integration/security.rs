//! Confidentiality, tamper detection, password and repository errors, and hostile snapshots
//! (issue #2).

use std::fs;
use std::path::Path;

use cairn_format::content::{Content, ContentEntry};
use cairn_format::packer::{BlobWriter, WriterOptions};
use cairn_format::tree::{Node, NodeKind};

use crate::util::{
    Scratch, assert_same_tree, describe, library_repo, node, noise, save_snapshot, store_tree,
};

const MARKER: &str = "CAIRN-SECRET-MARKER-7f3a9";

#[test]
fn plaintext_never_reaches_the_repository() {
    let s = Scratch::with_repo();
    let src = s.path("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join(format!("{MARKER}.txt")), MARKER.repeat(1000)).unwrap();
    fs::write(src.join("random"), [noise(1, 100_000), MARKER.as_bytes().to_vec()].concat())
        .unwrap();
    s.backup(&[&src], &["--tag", MARKER, "--host", MARKER]);
    for (path, bytes) in s.repository_files() {
        assert!(!path.to_string_lossy().contains(MARKER));
        assert!(
            !bytes.windows(MARKER.len()).any(|w| w == MARKER.as_bytes()),
            "{} contains the marker",
            path.display()
        );
    }
}

fn flip(path: &Path, at: usize) {
    let mut bytes = fs::read(path).unwrap();
    let at = at.min(bytes.len() - 1);
    bytes[at] ^= 0x40;
    fs::write(path, bytes).unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn any_flipped_byte_gives_an_error_never_wrong_output() {
    let s = Scratch::with_repo();
    let src = s.path("src");
    fs::create_dir_all(src.join("d")).unwrap();
    fs::write(src.join("d/a"), noise(5, 2_500_000)).unwrap();
    fs::write(src.join("b"), b"small file").unwrap();
    s.backup(&[&src], &[]);
    let pristine = s.path("pristine");
    copy_dir(&s.repo(), &pristine);
    let objects: Vec<_> = s
        .repository_files()
        .into_iter()
        .map(|(p, b)| (p.strip_prefix(s.repo()).unwrap().to_path_buf(), b.len()))
        .filter(|(p, _)| !p.starts_with("keys"))
        .collect();
    assert!(objects.len() >= 5, "{objects:?}");
    for (round, (object, len)) in objects.iter().enumerate() {
        for at in [0, len / 3] {
            fs::remove_dir_all(s.repo()).unwrap();
            copy_dir(&pristine, &s.repo());
            flip(&s.repo().join(object), at);
            let cache = s.path(&format!("cache-{round}-{at}"));
            let target = s.path(&format!("out-{round}-{at}"));
            let reference = format!("latest:{}", src.display());
            let out = s
                .cmd(&["restore", &reference, "--target", target.to_str().unwrap()])
                .env("CAIRN_CACHE_DIR", &cache)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            if out.status.success() {
                // Only bytes restore never reads (a pack header) may be damaged silently here;
                // what it wrote must then be exactly right.
                assert!(
                    at > 0 && object.starts_with("data"),
                    "flip at {at} of {} undetected",
                    object.display()
                );
                assert_same_tree(&src, &target);
            } else {
                assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
                assert!(
                    stderr.contains("corrupt") || stderr.contains("authentication"),
                    "unclear error for {} at {at}: {stderr}",
                    object.display()
                );
            }
        }
    }
}

#[test]
fn wrong_password_exits_12_and_missing_repository_exits_10() {
    let s = Scratch::with_repo();
    let out = s.cmd(&["snapshots"]).env("CAIRN_PASSWORD", "wrong").output().unwrap();
    assert_eq!(out.status.code(), Some(12), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("wrong password"));
    let out =
        s.cmd(&["snapshots"]).env("CAIRN_REPOSITORY", s.path("nothing-here")).output().unwrap();
    assert_eq!(out.status.code(), Some(10), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cairn init"));
    let out = s.run(&["init"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
}

/// Writes a snapshot whose root tree holds `nodes`, through the library (the CLI never
/// produces hostile names, an attacker with the key can).
fn write_hostile_snapshot(s: &Scratch, nodes: Vec<Node>) -> String {
    let repo = library_repo(s);
    let writer = BlobWriter::new(repo.clone(), WriterOptions::for_repository(&repo));
    let tree = store_tree(&repo, &writer, nodes);
    writer.finish().unwrap();
    save_snapshot(&repo, tree, "evil")
}

fn file_node(name: &[u8]) -> Node {
    let content = Content::Inline(vec![ContentEntry::Zero { length: 5 }]);
    node(name, NodeKind::File { content }, 5)
}

#[test]
fn hostile_names_in_a_snapshot_never_escape_the_target() {
    for name in [&b"../escape"[..], b"..", b"/abs"] {
        let s = Scratch::with_repo();
        let id = write_hostile_snapshot(&s, vec![file_node(name)]);
        let target = s.path("out");
        let out = s.run(&["restore", &id, "--target", target.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
        assert!(String::from_utf8_lossy(&out.stderr).contains("unsafe entry name"));
        assert!(!s.path("escape").exists() && !Path::new("/abs").exists());
    }
}

#[test]
fn restore_never_follows_a_symlink_planted_in_the_target() {
    let s = Scratch::with_repo();
    let src = s.path("src");
    fs::create_dir_all(src.join("sub")).unwrap();
    fs::write(src.join("sub/f"), b"payload").unwrap();
    s.backup(&[&src], &[]);
    let outside = s.path("outside");
    fs::create_dir(&outside).unwrap();
    let target = s.path("out");
    fs::create_dir(&target).unwrap();
    std::os::unix::fs::symlink(&outside, target.join("sub")).unwrap();
    let reference = format!("latest:{}", src.display());
    let out = s.run(&[
        "restore",
        &reference,
        "--target",
        target.to_str().unwrap(),
        "--overwrite",
        "never",
    ]);
    assert!(!outside.join("f").exists(), "restore wrote through a symlink");
    assert_eq!(out.status.code(), Some(1));
    s.ok(&["restore", &reference, "--target", target.to_str().unwrap()]);
    assert!(!outside.join("f").exists(), "restore wrote through a symlink");
    assert_eq!(fs::read(target.join("sub/f")).unwrap(), b"payload");
}
