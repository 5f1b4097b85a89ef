//! `check`, `check --read-data` and `repair` (issue #6): each kind of damage is found, named,
//! mapped to the snapshots and files it costs, and given the documented exit code; repairs
//! leave a repository that restores everything that survived.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::util::{Scratch, describe, noise};

/// A repository with one snapshot of `src/` (a 3 MB random file over several data packs and
/// some small files); returns the source directory.
pub fn backed_up() -> (Scratch, PathBuf) {
    let s = Scratch::with_repo();
    let src = s.path("src");
    fs::create_dir_all(src.join("docs")).unwrap();
    fs::write(src.join("big.bin"), noise(1, 3_000_000)).unwrap();
    for i in 0..5 {
        fs::write(src.join(format!("docs/note{i}.txt")), format!("note {i}\n")).unwrap();
    }
    s.backup(&[&src], &[]);
    (s, src)
}

/// Runs `check` with `--json`; returns the exit code and the report.
pub fn check(s: &Scratch, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["--json", "check"];
    args.extend_from_slice(extra);
    let out = s.run(&args);
    let value = last_json(&String::from_utf8_lossy(&out.stdout))
        .unwrap_or_else(|| panic!("no JSON report: {}", describe(&out)));
    (out.status.code().unwrap_or(-1), value)
}

/// The JSON object at the end of `--json` output (after any status lines).
fn last_json(text: &str) -> Option<Value> {
    crate::util::json_lines(text).pop()
}

/// A blob as the index places it.
pub struct BlobAt {
    pub id: String,
    pub offset: u64,
    pub length: u64,
    pub raw_length: u64,
}

/// Every indexed pack: its file, the kind of its blobs, and its blobs.
pub fn packs(s: &Scratch) -> Vec<(PathBuf, String, Vec<BlobAt>)> {
    let mut out = Vec::new();
    for segment in fs::read_dir(s.repo().join("index")).unwrap() {
        let name = segment.unwrap().file_name().into_string().unwrap();
        let index: Value = serde_json::from_str(&s.ok(&["cat", "index", &name])).unwrap();
        for pack in index["packs"].as_array().unwrap() {
            let id = pack["id"].as_str().unwrap();
            let path = s.repo().join("data").join(&id[..2]).join(id);
            let blobs = pack["blobs"].as_array().unwrap();
            let kind = blobs[0]["kind"].as_str().unwrap().to_string();
            let blobs = blobs
                .iter()
                .map(|b| BlobAt {
                    id: b["id"].as_str().unwrap().to_string(),
                    offset: b["offset"].as_u64().unwrap(),
                    length: b["length"].as_u64().unwrap(),
                    raw_length: b["raw_length"].as_u64().unwrap(),
                })
                .collect();
            out.push((path, kind, blobs));
        }
    }
    out
}

/// The files of every indexed data pack.
pub fn data_packs(s: &Scratch) -> Vec<PathBuf> {
    packs(s).into_iter().filter(|(_, kind, _)| kind == "Data").map(|(path, _, _)| path).collect()
}

/// The largest pack of a kind, with its blobs.
fn largest_pack_of(s: &Scratch, kind: &str) -> (PathBuf, Vec<BlobAt>) {
    let (path, _, blobs) = packs(s)
        .into_iter()
        .filter(|(_, k, _)| k == kind)
        .max_by_key(|(path, _, _)| fs::metadata(path).unwrap().len())
        .unwrap_or_else(|| panic!("no {kind} pack"));
    (path, blobs)
}

pub fn flip_byte(path: &Path, offset: u64) {
    let mut bytes = fs::read(path).unwrap();
    bytes[offset as usize] ^= 0x40;
    fs::write(path, bytes).unwrap();
}

fn affected_paths(report: &Value) -> Vec<String> {
    report["report"]["affected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["path"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_clean_repository_checks_clean_with_and_without_reading_data() {
    let (s, _) = backed_up();
    for extra in [&[][..], &["--read-data"][..]] {
        let (code, report) = check(&s, extra);
        assert_eq!(code, 0, "{report}");
        assert_eq!(report["clean"], true);
        assert!(report["report"]["problems"].as_array().unwrap().is_empty());
        assert!(report["report"]["damaged_packs"].as_array().unwrap().is_empty());
    }
    let (_, report) = check(&s, &["--read-data"]);
    let read = &report["report"]["read"];
    assert_eq!(read["packs_read"], read["packs_in_repository"]);
    assert!(read["blobs_verified"].as_u64().unwrap() > 5);
    let text = s.ok(&["check", "--read-data"]);
    assert!(text.contains("no errors were found"), "{text}");
}

#[test]
fn a_flipped_byte_in_a_data_pack_is_found_mapped_repaired_and_healed() {
    let (s, src) = backed_up();
    let (pack, blobs) = largest_pack_of(&s, "Data");
    let largest = blobs.iter().max_by_key(|b| b.length).unwrap();
    flip_byte(&pack, largest.offset + largest.length / 2);
    // The structure check does not read data: still clean.
    assert_eq!(check(&s, &[]).0, 0);
    let (code, report) = check(&s, &["--read-data"]);
    assert_eq!(code, 1, "{report}");
    let damaged = &report["report"]["damaged_packs"][0];
    assert_eq!(damaged["damaged_blobs"][0].as_str(), Some(largest.id.as_str()));
    assert_eq!(affected_paths(&report), vec![format!("{}/big.bin", src.display())]);
    assert!(report["lost_bytes"].as_u64().unwrap() > 0);
    // Unaffected files still restore.
    let target = s.path("partial");
    let docs = format!("latest:{}/docs", src.display());
    s.ok(&["restore", &docs, "--target", target.to_str().unwrap()]);
    assert_eq!(fs::read(target.join("note3.txt")).unwrap(), b"note 3\n");
    // repair snapshots keeps everything else, and marks the damaged file.
    let repaired = last_json(&s.ok(&["--json", "repair", "snapshots"])).unwrap();
    let id = repaired["snapshots"][0]["repaired"].as_str().unwrap().to_string();
    let target = s.path("repaired");
    s.ok(&["restore", &id, "--target", target.to_str().unwrap()]);
    let copy = target.join(src.strip_prefix("/").unwrap());
    assert_eq!(fs::read(copy.join("docs/note1.txt")).unwrap(), b"note 1\n");
    let big = fs::read(copy.join("big.bin")).unwrap();
    assert_eq!(big.len(), 3_000_000, "marked files keep their size");
    let original = noise(1, 3_000_000);
    // The marker names the lost range: zeros there, the original bytes everywhere else.
    let marker = xattr::get(copy.join("big.bin"), "user.cairn.damaged").unwrap();
    let marker = String::from_utf8(marker.expect("marked")).unwrap();
    let range = marker.rsplit(' ').next().unwrap();
    let (offset, length) = range.split_once('+').unwrap();
    let (offset, length): (usize, usize) = (offset.parse().unwrap(), length.parse().unwrap());
    assert_eq!(length as u64, largest.raw_length, "{marker}");
    assert!(big[offset..offset + length].iter().all(|&b| b == 0));
    assert!(big[..offset] == original[..offset]);
    assert!(big[offset + length..] == original[offset + length..]);
    // Backing up the source again stores the damaged chunk anew: the check is clean, and the
    // original snapshot restores in full. The repaired snapshot as parent must not pass its
    // zeros on as "unchanged" content.
    s.backup(&[&src], &["--parent", &id]);
    let (code, report) = check(&s, &["--read-data"]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["report"]["damaged_packs"][0]["harmless"], true);
    let first = repaired["snapshots"][0]["original"].as_str().unwrap();
    let target = s.path("healed");
    s.ok(&["restore", first, "--target", target.to_str().unwrap()]);
    let copy = target.join(src.strip_prefix("/").unwrap());
    assert!(fs::read(copy.join("big.bin")).unwrap() == original);
}

#[test]
fn a_truncated_and_a_deleted_pack_are_found_without_reading_data() {
    let (s, src) = backed_up();
    let data = data_packs(&s);
    assert!(data.len() >= 2, "the test needs two data packs");
    let bytes = fs::read(&data[0]).unwrap();
    fs::write(&data[0], &bytes[..bytes.len() / 2]).unwrap();
    fs::remove_file(&data[1]).unwrap();
    let (code, report) = check(&s, &[]);
    assert_eq!(code, 1, "{report}");
    let reasons: Vec<&str> = report["report"]["damaged_packs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["reason"].as_str().unwrap())
        .collect();
    assert!(reasons.iter().any(|r| r.contains("missing")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("the index says")), "{reasons:?}");
    assert!(affected_paths(&report).contains(&format!("{}/big.bin", src.display())));
    let text = String::from_utf8_lossy(&s.run(&["check"]).stdout).into_owned();
    assert!(text.contains("big.bin") && text.contains("what to do"), "{text}");
}

#[test]
fn a_flipped_byte_in_a_tree_pack_loses_the_directory_listing() {
    let (s, _) = backed_up();
    let (pack, blobs) = largest_pack_of(&s, "Tree");
    for blob in &blobs {
        flip_byte(&pack, blob.offset + blob.length / 2);
    }
    let (code, report) = check(&s, &["--read-data"]);
    assert_eq!(code, 1, "{report}");
    assert!(
        report["report"]["affected"].as_array().unwrap().iter().any(|a| a["kind"] == "directory"),
        "{report}"
    );
}

#[test]
fn a_corrupt_index_segment_is_reported_and_repair_index_rebuilds_it() {
    let (s, src) = backed_up();
    let segment = fs::read_dir(s.repo().join("index")).unwrap().next().unwrap();
    let segment = segment.unwrap().path();
    flip_byte(&segment, 40);
    let (code, report) = check(&s, &[]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["report"]["problems"][0]["what"], "index segment");
    // Where the segment is not cached yet, other commands refuse with the reason instead of
    // guessing.
    fs::remove_dir_all(s.path("cache")).unwrap();
    let out = s.run(&["restore", "latest", "--target", s.path("x").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("corrupt"));
    s.ok(&["repair", "index"]);
    assert_eq!(check(&s, &["--read-data"]).0, 0);
    s.restore_latest_and_compare(&src);
}

#[test]
fn repair_index_after_losing_every_segment_restores_byte_identically() {
    let (s, src) = backed_up();
    for segment in fs::read_dir(s.repo().join("index")).unwrap() {
        fs::remove_file(segment.unwrap().path()).unwrap();
    }
    assert_eq!(check(&s, &[]).0, 1);
    let repaired = last_json(&s.ok(&["--json", "repair", "index"])).unwrap();
    assert!(repaired["packs_indexed"].as_u64().unwrap() >= 2);
    assert_eq!(check(&s, &["--read-data"]).0, 0);
    s.restore_latest_and_compare(&src);
}

#[test]
fn a_corrupt_snapshot_and_a_missing_key_file_are_named() {
    let (s, _) = backed_up();
    let snapshot = fs::read_dir(s.repo().join("snapshots")).unwrap().next().unwrap();
    let snapshot = snapshot.unwrap().path();
    flip_byte(&snapshot, 50);
    let (code, report) = check(&s, &[]);
    assert_eq!(code, 1, "{report}");
    let problem = &report["report"]["problems"][0];
    assert_eq!(problem["what"], "snapshot");
    assert!(snapshot.to_string_lossy().ends_with(problem["name"].as_str().unwrap()));
    for key in fs::read_dir(s.repo().join("keys")).unwrap() {
        fs::remove_file(key.unwrap().path()).unwrap();
    }
    let out = s.run(&["check"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no key files"));
}

#[test]
fn subsets_partition_the_packs_and_max_age_skips_recent_ones() {
    let (s, _) = backed_up();
    let (_, full) = check(&s, &["--read-data"]);
    let total = full["report"]["read"]["packs_in_repository"].as_u64().unwrap();
    let mut read = 0;
    for part in ["1/3", "2/3", "3/3"] {
        let (code, report) = check(&s, &["--read-data-subset", part]);
        assert_eq!(code, 0);
        read += report["report"]["read"]["packs_read"].as_u64().unwrap();
    }
    assert_eq!(read, total, "the three parts cover every pack once");
    let (_, recent) = check(&s, &["--read-data", "--max-age", "1d"]);
    assert_eq!(recent["report"]["read"]["packs_read"], 0);
    assert_eq!(recent["report"]["read"]["packs_skipped_recent"], total);
    // A check that read only part of the packs (as an interrupted one has) is continued by
    // --max-age: only what was not verified since is read.
    let cache = s.path("cache");
    fs::remove_dir_all(&cache).unwrap();
    let (_, half) = check(&s, &["--read-data-subset", "1/2"]);
    let first = half["report"]["read"]["packs_read"].as_u64().unwrap();
    let (_, rest) = check(&s, &["--read-data", "--max-age", "1d"]);
    assert_eq!(rest["report"]["read"]["packs_read"].as_u64().unwrap(), total - first);
    let (_, sized) = check(&s, &["--read-data-subset", "1K"]);
    assert!(sized["report"]["read"]["packs_read"].as_u64().unwrap() >= 1);
    let bad = s.run(&["check", "--read-data-subset", "4/3"]);
    assert_eq!(bad.status.code(), Some(2), "clap rejects it: {}", describe(&bad));
}
