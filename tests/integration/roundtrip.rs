//! Backup then restore gives back identical bytes and metadata (issue #2).

use std::fs;
use std::os::unix::fs::MetadataExt;

use crate::util::{Scratch, make_tree};

#[test]
fn every_node_type_round_trips() {
    let s = Scratch::with_repo();
    let src = s.path("src");
    make_tree(&src);
    let summary = s.backup(&[&src], &[]);
    assert_eq!(summary["error_count"], 0, "{summary}");
    let target = s.restore_latest_and_compare(&src);
    // Holes stay holes: 64 MiB apparent, a few blocks allocated.
    let sparse = fs::metadata(target.join("sparse.img")).unwrap();
    assert_eq!(sparse.len(), 64 << 20);
    assert!(sparse.blocks() * 512 < 1 << 20, "sparse file allocated {} blocks", sparse.blocks());
    let zeros = fs::metadata(target.join("zeros-in-data")).unwrap();
    assert!(
        zeros.blocks() * 512 < 4 << 20,
        "zero chunk was written out: {} blocks",
        zeros.blocks()
    );
}

#[test]
fn whole_snapshot_restores_under_absolute_paths() {
    let s = Scratch::with_repo();
    let src = s.path("src");
    fs::create_dir_all(src.join("a")).unwrap();
    fs::write(src.join("a/file"), b"x").unwrap();
    s.backup(&[&src], &[]);
    let target = s.path("out");
    s.ok(&["restore", "latest", "--target", target.to_str().unwrap()]);
    let restored = target.join(src.strip_prefix("/").unwrap()).join("a/file");
    assert_eq!(fs::read(restored).unwrap(), b"x");
}

#[test]
fn stdin_backup_and_dump() {
    let s = Scratch::with_repo();
    let data = crate::util::noise(9, 3 << 20);
    let mut child = s
        .cmd(&["backup", "--stdin", "--stdin-filename", "db.sql", "--json"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), &data).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", crate::util::describe(&out));
    let dumped = s.cmd(&["dump", "latest", "/db.sql"]).output().unwrap();
    assert!(dumped.status.success());
    assert!(dumped.stdout == data, "dump differs from what went in");
    let listing = s.ok(&["ls", "latest"]);
    assert_eq!(listing.trim(), "/db.sql");
}

#[test]
fn dump_of_a_directory_is_a_tar_stream() {
    let s = Scratch::with_repo();
    let src = s.path("src");
    fs::create_dir_all(src.join("d")).unwrap();
    fs::write(src.join("d/f"), b"in tar").unwrap();
    s.backup(&[&src], &[]);
    let out = s.cmd(&["dump", "latest", src.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success());
    let mut archive = tar::Archive::new(&out.stdout[..]);
    let mut names = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().display().to_string();
        if name == "src/d/f" {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut entry, &mut text).unwrap();
            assert_eq!(text, "in tar");
        }
        names.push(name);
    }
    // The directory's own entry first, as `tar -c DIR` writes it (issue #17).
    assert_eq!(names, ["src", "src/d", "src/d/f"]);
}
