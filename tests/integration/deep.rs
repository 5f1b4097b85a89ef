//! Snapshots thousands of levels deep (issue #16): every command that walks trees does so on
//! its own stack, so depth costs memory, never a stack overflow.
//!
//! Two shapes: a real directory chain as deep as Linux paths allow (backed up, restored,
//! copied both ways, checked, pruned, listed and mounted), and a snapshot built through the
//! library far deeper than any thread's stack could recurse (checked, counted, copied and
//! pruned; its paths are too long for a filesystem).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use cairn_format::content::{Content, ContentEntry};
use cairn_format::pack::BlobKind;
use cairn_format::packer::{BlobWriter, WriterOptions};
use cairn_format::tree::NodeKind;

use crate::mount::{Mounted, fuse_usable};
use crate::util::{
    PASSWORD, Scratch, describe, json_output, library_repo, node, save_snapshot, store_tree,
};

/// Linux refuses paths of 4096 bytes or more; the deepest file's path in a mount (the
/// longest path the test uses) stays under that.
const PATH_MAX: usize = 4096;

/// Runs `f` on a thread with room for the test's own recursive tree comparison.
fn on_big_stack<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .stack_size(512 << 20)
            .spawn_scoped(scope, f)
            .unwrap()
            .join()
            .unwrap()
    })
}

/// `src/d/d/.../d/bottom`, as deep as `room` bytes of path allow; returns the bottom file.
fn make_chain(src: &Path, room: usize) -> (PathBuf, usize) {
    let depth = (room - src.as_os_str().len() - "/bottom".len()) / 2;
    let mut deepest = src.to_path_buf();
    for _ in 0..depth {
        deepest.push("d");
    }
    fs::create_dir_all(&deepest).unwrap();
    fs::write(src.join("top"), b"at the top").unwrap();
    let bottom = deepest.join("bottom");
    fs::write(&bottom, b"at the bottom, first version").unwrap();
    (bottom, depth)
}

/// Copies every snapshot of `source` into a twin (same chunking and ids) and into an
/// unrelated repository (ids rewritten); each copy must check clean, then `more` looks at it.
fn copy_both_ways(source: &Scratch, more: impl Fn(&Scratch)) {
    for init_args in [&["--copy-chunker-params"][..], &[]] {
        let target = Scratch::new();
        let out = copy_into(&target, source, init_args);
        assert!(out.status.success(), "copy {init_args:?}: {}", describe(&out));
        let report = json_output(&String::from_utf8_lossy(&out.stdout));
        assert_eq!(report["copied"].as_array().unwrap().len(), 1);
        let check = target.ok(&["check", "--read-data"]);
        assert!(check.contains("no errors"), "{check}");
        more(&target);
    }
}

fn copy_into(target: &Scratch, source: &Scratch, init_args: &[&str]) -> Output {
    let from = |args: &[&str]| {
        let mut cmd = target.cmd(args);
        cmd.env("CAIRN_FROM_REPOSITORY", source.repo()).env("CAIRN_FROM_PASSWORD", PASSWORD);
        cmd.output().unwrap()
    };
    let mut init = vec!["init", "--argon2-memory", "256", "--argon2-iterations", "1"];
    init.extend_from_slice(init_args);
    let out = from(&init);
    assert!(out.status.success(), "{}", describe(&out));
    from(&["--json", "copy"])
}

#[test]
fn a_tree_as_deep_as_paths_allow_backs_up_restores_copies_checks_prunes_and_mounts() {
    let s = Scratch::with_repo();
    let src = s.path("src");
    let mount_prefix = s.path("mnt/snapshots/latest").as_os_str().len();
    let (bottom, depth) = make_chain(&src, PATH_MAX - 1 - mount_prefix);
    assert!(depth > 1500, "only {depth} levels fit");
    s.backup(&[&src], &[]);
    fs::write(&bottom, b"at the bottom, second version").unwrap();
    s.backup(&[&src], &[]);

    on_big_stack(|| s.restore_latest_and_compare(&src));
    let listing = s.ok(&["ls", "latest"]);
    assert!(listing.lines().any(|l| l == bottom.to_str().unwrap()), "ls does not reach the bottom");
    let stats = s.json(&["stats", "--mode", "raw-data"]);
    assert_eq!(stats["stats"]["files"], 4, "{stats}"); // top and bottom, in each of two snapshots

    // Prune keeps everything the remaining snapshot needs, all the way down.
    let pruned = s.json(&["forget", "--keep-last", "1", "--prune"]);
    assert_eq!(s.json_list(&["snapshots"]).as_array().unwrap().len(), 1, "{pruned}");
    let check = s.ok(&["check", "--read-data"]);
    assert!(check.contains("no errors"), "{check}");
    fs::remove_dir_all(s.path("restored")).unwrap();
    on_big_stack(|| s.restore_latest_and_compare(&src));

    copy_both_ways(&s, |target| {
        on_big_stack(|| target.restore_latest_and_compare(&src));
    });

    if fuse_usable() {
        let m = Mounted::start(&s, "mnt", &[]);
        let mounted = m.path(&format!("snapshots/latest/{}", bottom.display()));
        assert_eq!(fs::read(mounted).unwrap(), b"at the bottom, second version");
    }
}

/// Builds a snapshot of `depth` nested directories named `d` with one small file at the
/// bottom, straight through the library (no filesystem holds such paths).
fn store_chain(s: &Scratch, depth: usize) {
    let repo = library_repo(s);
    let writer = BlobWriter::new(repo.clone(), WriterOptions::for_repository(&repo));
    let data = b"at the bottom".to_vec();
    let id = repo.key().blob_id(&data);
    writer.add(BlobKind::Data, id, || data).unwrap();
    let content = Content::Inline(vec![ContentEntry::Data { id, length: 13 }]);
    let file = node(b"bottom", NodeKind::File { content }, 13);
    let mut below = store_tree(&repo, &writer, vec![file]);
    for _ in 0..depth {
        let dir = NodeKind::Directory { subtree: below };
        below = store_tree(&repo, &writer, vec![node(b"d", dir, 0)]);
    }
    writer.finish().unwrap();
    save_snapshot(&repo, below, "deep-host");
}

#[test]
fn a_snapshot_deeper_than_any_stack_is_checked_counted_copied_and_pruned() {
    const DEPTH: usize = 50_000;
    let s = Scratch::with_repo();
    store_chain(&s, DEPTH);

    let check = s.ok(&["check", "--read-data"]);
    assert!(check.contains("no errors"), "{check}");
    let stats = s.json(&["stats", "--mode", "raw-data"]);
    assert_eq!(stats["stats"]["files"], 1, "{stats}");
    assert_eq!(stats["stats"]["blobs"], DEPTH as u64 + 2, "{stats}"); // the trees and the data

    let pruned = s.json(&["prune"]);
    let check = s.ok(&["check", "--read-data"]);
    assert!(check.contains("no errors"), "after prune {pruned}: {check}");

    copy_both_ways(&s, |target| {
        let stats = target.json(&["stats", "--mode", "raw-data"]);
        assert_eq!(stats["stats"]["blobs"], DEPTH as u64 + 2, "{stats}");
    });
}
