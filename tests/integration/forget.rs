//! `forget` and `tag` (issue #7): policies applied per group, dry runs that change nothing,
//! protection, and snapshots named by id.

use std::fs;

use serde_json::Value;

use crate::util::{Scratch, describe};

/// Snapshots of `src/` at the given local times, for host `a` unless the time starts with `b:`.
fn snapshots_at(times: &[&str]) -> Scratch {
    let s = Scratch::with_repo();
    let src = s.path("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("file"), "contents").unwrap();
    for time in times {
        let (host, time) =
            time.split_once(':').filter(|(h, _)| h.len() == 1).unwrap_or(("a", time));
        s.backup(&[&src], &["--time", time, "--host", host]);
    }
    s
}

fn ids(s: &Scratch) -> Vec<String> {
    let list = s.json_list(&["snapshots"]);
    list.as_array().unwrap().iter().map(|s| s["time"].as_str().unwrap()[..10].to_string()).collect()
}

#[test]
fn forget_applies_a_policy_per_group_and_a_dry_run_changes_nothing() {
    let s = snapshots_at(&[
        "2024-01-31 10:00:00",
        "2024-02-29 10:00:00",
        "2024-03-01 10:00:00",
        "2024-03-31 10:00:00",
        "b:2024-01-15 10:00:00",
    ]);
    let lines = s.json_list(&["forget", "--keep-monthly", "2", "--dry-run"]);
    let lines = lines.as_array().unwrap();
    let (dry, groups) = lines.split_last().unwrap();
    assert_eq!(dry["message_type"], "summary");
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["snapshots_removed"], 2);
    assert_eq!(ids(&s).len(), 5, "a dry run removes nothing");
    assert_eq!(groups.len(), 2, "{lines:?}");
    // Issue #17: a group is its fields, not a sentence.
    assert_eq!(groups[0]["group"]["host"], "a");
    assert_eq!(groups[1]["group"]["host"], "b");
    assert!(groups[0]["group"]["paths"].is_array());
    assert!(groups[0]["group"]["tags"].is_null(), "not grouped by tags");
    let a = &groups[0];
    assert_eq!(a["keep"].as_array().unwrap().len(), 2);
    assert_eq!(a["keep"][0]["reasons"][0], "monthly");
    assert_eq!(a["remove"].as_array().unwrap().len(), 2);
    assert_eq!(groups[1]["keep"].as_array().unwrap().len(), 1, "host b's own policy");
    s.json(&["forget", "--keep-monthly", "2"]);
    let left = ids(&s);
    assert_eq!(left, ["2024-01-15", "2024-02-29", "2024-03-31"]);
    // Everything left still restores.
    s.restore_latest_and_compare(&s.path("src"));
}

#[test]
fn protected_snapshots_survive_policies_and_cannot_be_named() {
    let s = snapshots_at(&["2024-05-01 10:00:00", "2024-05-02 10:00:00", "2024-05-03 10:00:00"]);
    let oldest = s.json_list(&["snapshots"])[0]["id"].as_str().unwrap().to_string();
    let tagged: Value = s.json(&["tag", &oldest[..8], "--protect", "--add", "keep"]);
    let protected = tagged["snapshots"][0]["new"].as_str().unwrap().to_string();
    assert_ne!(protected, oldest, "a changed snapshot gets a new id");
    let listed = s.json_list(&["snapshots"]);
    assert_eq!(listed[0]["protected"], true);
    assert_eq!(listed[0]["tags"][0], "keep");
    s.json(&["forget", "--keep-last", "1"]);
    assert_eq!(ids(&s), ["2024-05-01", "2024-05-03"]);
    let out = s.run(&["forget", &protected[..8]]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--unprotect"));
    s.ok(&["tag", &protected[..8], "--unprotect"]);
    let unprotected = s.json_list(&["snapshots"])[0]["id"].as_str().unwrap().to_string();
    s.ok(&["forget", &unprotected[..8]]);
    assert_eq!(ids(&s), ["2024-05-03"]);
}

#[test]
fn forget_refuses_an_empty_policy_and_a_policy_with_names() {
    let s = snapshots_at(&["2024-05-01 10:00:00"]);
    let out = s.run(&["forget"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--keep"));
    let out = s.run(&["forget", "latest", "--keep-last", "1"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert_eq!(ids(&s).len(), 1);
}

#[test]
fn stats_count_restore_size_and_unique_compressed_data() {
    let s = Scratch::with_repo();
    let src = s.path("src");
    fs::create_dir(&src).unwrap();
    // Compressible (a small vocabulary) but never repeating, so chunks do not dedup within
    // the file whatever the repository's chunker key.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let text: Vec<u8> = std::iter::repeat_with(|| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        ["alpha ", "beta ", "gamma ", "delta\n"][(x >> 62) as usize].bytes()
    })
    .flatten()
    .take(1_000_000)
    .collect();
    fs::write(src.join("a.txt"), &text).unwrap();
    fs::write(src.join("b.txt"), &text).unwrap();
    s.backup(&[&src], &[]);
    s.backup(&[&src], &[]);
    let restore = s.json(&["stats"])["stats"].clone();
    assert_eq!(restore["snapshots"], 2);
    assert_eq!(restore["files"], 4);
    assert_eq!(restore["restore_size"], 4_000_000);
    assert!(restore["raw_size"].is_null(), "restore-size mode reads no index");
    let raw = s.json(&["stats", "--mode", "raw-data"])["stats"].clone();
    let unique = raw["raw_size"].as_u64().unwrap();
    assert!((1_000_000..1_100_000).contains(&unique), "{raw}");
    assert!(raw["compression_ratio"].as_f64().unwrap() > 2.0, "{raw}");
    assert!(raw["dedup_ratio"].as_f64().unwrap() > 3.5, "{raw}");
    let one = s.json(&["stats", "latest"])["stats"].clone();
    assert_eq!(one["restore_size"], 2_000_000);
}
