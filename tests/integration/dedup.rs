//! Deduplication: unchanged data is never stored twice, and an insertion in a large file
//! costs only the chunks around it (issue #2).

use std::fs;

use crate::util::{Scratch, noise};

#[test]
fn unchanged_rebackup_adds_no_data_blobs_and_reads_nothing() {
    let s = Scratch::with_repo();
    let src = s.path("src");
    fs::create_dir(&src).unwrap();
    for i in 0..20 {
        fs::write(src.join(format!("f{i}")), noise(i, 200_000)).unwrap();
    }
    let first = s.backup(&[&src], &[]);
    assert_eq!(first["files_new"], 20);
    let second = s.backup(&[&src], &[]);
    assert_eq!(second["data_blobs"], 0, "{second}");
    assert_eq!(second["files_unmodified"], 20);
    assert_eq!(second["parent"], first["snapshot_id"]);
    // --force reads everything again but still stores nothing new.
    let forced = s.backup(&[&src], &["--force"]);
    assert_eq!(forced["files_new"], 20);
    assert_eq!(forced["data_blobs"], 0);
}

#[test]
fn insertion_in_a_large_file_adds_only_nearby_chunks() {
    let s = Scratch::with_repo();
    let src = s.path("src");
    fs::create_dir(&src).unwrap();
    let data = noise(42, 40 << 20);
    fs::write(src.join("big"), &data).unwrap();
    let first = s.backup(&[&src], &[]);
    let chunks = first["data_blobs"].as_u64().unwrap();
    assert!(chunks >= 20, "expected ~40 chunks, got {chunks}");
    let mut edited = data[..20 << 20].to_vec();
    edited.extend_from_slice(b"a few inserted bytes");
    edited.extend_from_slice(&data[20 << 20..]);
    fs::write(src.join("big"), &edited).unwrap();
    let second = s.backup(&[&src], &[]);
    let added = second["data_blobs"].as_u64().unwrap();
    assert!(added <= 3, "an insertion added {added} of {chunks} chunks");
    assert!(second["data_added"].as_u64().unwrap() < 10 << 20);
}

#[test]
fn identical_files_are_stored_once() {
    let s = Scratch::with_repo();
    let src = s.path("src");
    fs::create_dir(&src).unwrap();
    let data = noise(7, 2 << 20);
    fs::write(src.join("a"), &data).unwrap();
    fs::write(src.join("b"), &data).unwrap();
    let summary = s.backup(&[&src], &[]);
    // Trees add a few hundred bytes; the second copy adds nothing.
    assert!(summary["data_added"].as_u64().unwrap() < (2 << 20) + 4096, "{summary}");
}

#[test]
fn reading_files_between_backups_changes_no_tree() {
    use std::os::unix::fs::MetadataExt;
    let s = Scratch::with_repo();
    let src = s.path("src");
    fs::create_dir_all(src.join("sub")).unwrap();
    for name in ["a", "sub/b"] {
        fs::write(src.join(name), noise(11, 5000)).unwrap();
    }
    s.backup(&[&src], &[]);
    let before = fs::metadata(src.join("a")).unwrap().atime_nsec();
    std::thread::sleep(std::time::Duration::from_millis(20));
    for name in ["a", "sub/b"] {
        fs::read(src.join(name)).unwrap();
    }
    if fs::metadata(src.join("a")).unwrap().atime_nsec() == before {
        eprintln!(
            "note: this file system does not update atimes on read; the test proves little here"
        );
    }
    let second = s.backup(&[&src], &[]);
    assert_eq!(second["dirs_changed"], 0, "a read made a tree new: {second}");
    assert_eq!(second["dirs_unmodified"], 2);
    assert_eq!(second["files_unmodified"], 2);
}
