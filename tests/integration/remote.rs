//! Remote repositories (issue #9) against a real three-node Garage cluster on loopback: the
//! backend conformance suite, whole repositories driven through the CLI, several hosts backing
//! up at once, failures that must be immediate and clear, and a cluster losing nodes.

use std::fs;
use std::process::Stdio;
use std::time::Instant;

use cairn_format::backend::{Backend, conformance};

use crate::servers::{Garage, Sshd, Throttler};
use crate::util::{Scratch, assert_same_tree, describe, json_output, make_tree, noise};

fn remote_scratch(garage: &Garage, name: &str) -> Scratch {
    let mut scratch = Scratch::new();
    scratch.location = Some(garage.location(name));
    scratch.env = garage.env();
    scratch.initialized()
}

#[test]
fn s3_backend_passes_the_conformance_suite() {
    let Some(garage) = Garage::shared() else {
        return;
    };
    let backend = garage.backend(&garage.location("conformance"));
    conformance(&backend);
}

#[test]
fn s3_repository_backs_up_restores_checks_and_deduplicates() {
    let Some(garage) = Garage::shared() else {
        return;
    };
    let s = remote_scratch(garage, "roundtrip");
    let src = s.path("src");
    make_tree(&src);
    fs::write(src.join("big"), noise(7, 3 << 20)).unwrap();
    let first = s.backup(&[&src], &[]);
    assert!(first["data_added"].as_u64().unwrap() > 3 << 20, "{first}");
    let target = s.path("out");
    s.ok(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_same_tree(&src, &target.join(src.strip_prefix("/").unwrap()));
    let check = s.ok(&["check", "--read-data"]);
    assert!(check.contains("no errors"), "{check}");

    // Another host with its own cache deduplicates against what the first one uploaded.
    let mut other = s.cmd(&["--json", "backup", "--host", "second", src.to_str().unwrap()]);
    other.env("CAIRN_CACHE_DIR", s.path("cache-second"));
    let out = other.output().unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    let summary = json_output(&String::from_utf8_lossy(&out.stdout));
    assert!(summary["data_added"].as_u64().unwrap() < 64 << 10, "{summary}");
    let listing = s.json_list(&["snapshots"]);
    assert_eq!(listing.as_array().unwrap().len(), 2, "{listing}");
}

#[test]
fn s3_failures_that_retrying_cannot_fix_are_immediate_and_named() {
    let Some(garage) = Garage::shared() else {
        return;
    };
    let mut s = Scratch::new();
    s.env = garage.env();

    s.location = Some(format!("s3:{}/no-such-bucket/x", garage.endpoint));
    let started = Instant::now();
    let out = s.run(&["init"]);
    assert!(!out.status.success());
    assert!(describe(&out).contains("bucket does not exist"), "{}", describe(&out));

    let good = remote_scratch(garage, "credentials");
    let mut cmd = good.cmd(&["snapshots"]);
    cmd.env("AWS_SECRET_ACCESS_KEY", "not-the-secret");
    let out = cmd.output().unwrap();
    assert!(!out.status.success());
    assert!(describe(&out).contains("check the credentials"), "{}", describe(&out));
    // Neither was retried: both answers are permanent.
    assert!(started.elapsed().as_secs() < 20, "took {:?}", started.elapsed());

    s.location = Some("s3:http://127.0.0.1:1/bucket/x".into());
    let out = s.run(&["--retries", "1", "snapshots"]);
    assert!(!out.status.success());
    assert!(describe(&out).contains("could not be reached"), "{}", describe(&out));
}

#[test]
fn s3_several_hosts_back_up_into_one_repository_at_once() {
    let Some(garage) = Garage::shared() else {
        return;
    };
    let s = remote_scratch(garage, "hosts");
    let shared = noise(11, 2 << 20);
    let mut children = Vec::new();
    for host in ["alpha", "beta", "gamma"] {
        let src = s.path(host);
        fs::create_dir(&src).unwrap();
        fs::write(src.join("shared"), &shared).unwrap();
        fs::write(src.join("own"), noise(host.len() as u64 * 31, 1 << 20)).unwrap();
        let mut cmd = s.cmd(&["backup", "--host", host, src.to_str().unwrap()]);
        cmd.env("CAIRN_CACHE_DIR", s.path(&format!("cache-{host}")))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        children.push(cmd.spawn().unwrap());
    }
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", describe(&out));
    }
    let listing = s.json_list(&["snapshots"]);
    assert_eq!(listing.as_array().unwrap().len(), 3, "{listing}");
    let check = s.ok(&["check", "--read-data"]);
    assert!(check.contains("no errors"), "{check}");
    for host in ["alpha", "beta", "gamma"] {
        let target = s.path(&format!("restored-{host}"));
        let snapshot = format!("latest:{}", s.path(host).display());
        s.ok(&["restore", &snapshot, "--host", host, "--target", target.to_str().unwrap()]);
        assert_eq!(fs::read(target.join("shared")).unwrap(), shared);
    }
}

#[test]
fn s3_cluster_losing_nodes() {
    let Some(garage) = Garage::start() else {
        return;
    };
    let s = remote_scratch(&garage, "faults");
    let src = s.path("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("a"), noise(1, 2 << 20)).unwrap();

    // One node of three down: reads and writes still reach a quorum of two.
    garage.kill_node(2);
    s.backup(&[&src], &[]);
    garage.restart();

    // Every node down in the middle of a backup: the backup fails and says why; no snapshot.
    fs::write(src.join("b"), noise(2, 24 << 20)).unwrap();
    // At 4 MiB/s the upload of 24 MiB takes about six seconds: the servers stop once a few
    // packs of it are stored (watched through the backend itself).
    let bucket = garage.backend(s.location.as_deref().unwrap());
    let packs = || bucket.list("data/").unwrap().len();
    let before = packs();
    let mut cmd = s.cmd(&["backup", "--limit-upload", "4096", src.to_str().unwrap()]);
    let child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let waiting = Instant::now();
    while packs() < before + 3 {
        assert!(waiting.elapsed().as_secs() < 60, "no pack was uploaded");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    garage.kill_all();
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(describe(&out).contains("could not be reached"), "{}", describe(&out));
    garage.restart();

    // A rerun reuses the packs the failed run stored (never indexed: the backup adopts them
    // from their headers), completes, and the repository is whole.
    let rerun = s.backup(&[&src], &[]);
    assert!(
        rerun["data_added"].as_u64().unwrap() <= (24 << 20) - (2 << 20),
        "the rerun uploaded everything again: {rerun}"
    );
    let listing = s.json_list(&["snapshots"]);
    assert_eq!(listing.as_array().unwrap().len(), 2, "{listing}");
    let check = s.ok(&["check", "--read-data"]);
    assert!(check.contains("no errors"), "{check}");
    let target = s.path("out");
    s.ok(&["restore", "latest", "--target", target.to_str().unwrap()]);
    let restored = target.join(src.strip_prefix("/").unwrap());
    assert_eq!(fs::read(restored.join("b")).unwrap(), noise(2, 24 << 20));
}

#[test]
fn s3_throttling_answers_are_retried() {
    let Some(garage) = Garage::shared() else {
        return;
    };
    let throttler = Throttler::start(&garage.endpoint, 3);
    let mut s = Scratch::new();
    s.location = Some(garage.location("throttled").replace(&garage.endpoint, &throttler.endpoint));
    s.env = garage.env();
    s.env.retain(|(k, _)| k != "CAIRN_RETRIES"); // the default retries
    let s = s.initialized();
    let src = s.path("src");
    make_tree(&src);
    fs::write(src.join("big"), noise(5, 4 << 20)).unwrap();
    s.backup(&[&src], &[]);
    let target = s.path("out");
    s.ok(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_same_tree(&src, &target.join(src.strip_prefix("/").unwrap()));
    let check = s.ok(&["check", "--read-data"]);
    assert!(check.contains("no errors"), "{check}");
    assert!(
        throttler.throttled.load(std::sync::atomic::Ordering::Relaxed) > 0,
        "the proxy throttled nothing: the test tested nothing"
    );
}

#[test]
fn sftp_repository_backs_up_restores_and_checks() {
    let Some(sshd) = Sshd::start() else { return };
    let mut s = Scratch::new();
    s.location = Some(sshd.location("repo"));
    s.env = vec![("PATH".into(), sshd.path_env())];
    let s = s.initialized();
    let src = s.path("src");
    make_tree(&src);
    fs::write(src.join("big"), noise(9, 3 << 20)).unwrap();
    s.backup(&[&src], &[]);
    let second = s.backup(&[&src], &[]);
    assert_eq!(second["data_blobs"].as_u64().unwrap(), 0, "{second}");
    let target = s.path("out");
    s.ok(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_same_tree(&src, &target.join(src.strip_prefix("/").unwrap()));
    let check = s.ok(&["check", "--read-data"]);
    assert!(check.contains("no errors"), "{check}");

    // Objects land under their final names only: no temporary file is left behind, and the
    // directory is an ordinary repository a local cairn opens as well.
    let repo = sshd.root.join("repo");
    let leftovers: Vec<_> = walk(&repo).into_iter().filter(|p| p.contains(".tmp-")).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let mut local = Scratch::new();
    local.location = Some(repo.display().to_string());
    assert_eq!(local.json_list(&["snapshots"]).as_array().unwrap().len(), 2);
}

#[test]
fn sftp_unknown_host_key_is_refused() {
    let Some(sshd) = Sshd::start() else { return };
    let mut s = Scratch::new();
    // An ssh that knows the server's address and the client key, but not the host key.
    let bin = s.path("bin");
    fs::create_dir(&bin).unwrap();
    let wrapper = bin.join("ssh");
    fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexec {}/ssh -o UserKnownHostsFile=/dev/null \"$@\"\n",
            sshd.path_prefix
        ),
    )
    .unwrap();
    fs::set_permissions(&wrapper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    s.location = Some(sshd.location("repo"));
    s.env = vec![("PATH".into(), format!("{}:{}", bin.display(), sshd.path_env()))];
    let out = s.run(&["--retries", "0", "init"]);
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(describe(&out).contains("ssh could not connect"), "{}", describe(&out));
    assert!(!sshd.root.join("repo").exists(), "nothing was written");
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path.display().to_string());
        }
    }
    found
}

#[test]
fn copy_makes_an_off_site_twin_and_copies_into_unrelated_repositories() {
    let Some(garage) = Garage::shared() else {
        return;
    };
    // The primary: a local repository with two snapshots, under its own password.
    let local = Scratch::with_repo();
    let src = local.path("src");
    make_tree(&src);
    fs::write(src.join("big"), noise(21, 3 << 20)).unwrap();
    local.backup(&[&src], &[]);
    fs::write(src.join("more"), noise(22, 1 << 20)).unwrap();
    local.backup(&[&src], &[]);
    let primary = local.repo().display().to_string();
    let from = |s: &Scratch, args: &[&str]| {
        let mut cmd = s.cmd(args);
        cmd.env("CAIRN_FROM_REPOSITORY", &primary)
            .env("CAIRN_FROM_PASSWORD", crate::util::PASSWORD);
        cmd.output().unwrap()
    };

    // Into an unrelated repository (its own keys): every blob gets a new id, trees and
    // content lists are rewritten, and the copy restores the same files.
    let unrelated = remote_scratch(garage, "unrelated");
    let out = from(&unrelated, &["--json", "copy"]);
    assert!(out.status.success(), "{}", describe(&out));
    let report = json_output(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(report["ids_rewritten"], true, "{report}");
    assert_eq!(report["copied"].as_array().unwrap().len(), 2, "{report}");
    let rewritten = unrelated.path("rewritten");
    unrelated.ok(&["restore", "latest", "--target", rewritten.to_str().unwrap()]);
    assert_same_tree(&src, &rewritten.join(src.strip_prefix("/").unwrap()));
    let check = unrelated.ok(&["check", "--read-data"]);
    assert!(check.contains("no errors"), "{check}");
    let again =
        json_output(&String::from_utf8_lossy(&from(&unrelated, &["--json", "copy"]).stdout));
    assert_eq!(again["already_present"].as_array().unwrap().len(), 2, "{again}");

    // The twin on S3.
    let mut twin = Scratch::new();
    twin.location = Some(garage.location("twin"));
    twin.env = garage.env();
    let out = from(
        &twin,
        &["init", "--argon2-memory", "256", "--argon2-iterations", "1", "--copy-chunker-params"],
    );
    assert!(out.status.success(), "{}", describe(&out));
    let out = from(&twin, &["copy", "--dry-run"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        twin.json_list(&["snapshots"]).as_array().unwrap().is_empty(),
        "a dry run wrote a snapshot"
    );
    let out = from(&twin, &["--json", "copy"]);
    assert!(out.status.success(), "{}", describe(&out));
    let report = json_output(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(report["copied"].as_array().unwrap().len(), 2, "{report}");
    assert!(report["bytes_copied"].as_u64().unwrap() >= 4 << 20, "{report}");

    // Copying again transfers nothing; the twin restores and checks on its own.
    let out = from(&twin, &["--json", "copy"]);
    let again = json_output(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(again["already_present"].as_array().unwrap().len(), 2, "{again}");
    assert_eq!(again["blobs_copied"], 0, "{again}");
    assert_eq!(again["ids_rewritten"], false, "{again}");
    let target = twin.path("out");
    twin.ok(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_same_tree(&src, &target.join(src.strip_prefix("/").unwrap()));
    let check = twin.ok(&["check", "--read-data"]);
    assert!(check.contains("no errors"), "{check}");

    // A backup straight into the twin finds every chunk already there.
    let direct = twin.backup(&[&src], &["--force"]);
    assert_eq!(direct["data_blobs"], 0, "{direct}");
}

#[test]
fn s3_prune_beside_a_running_backup_keeps_what_the_backup_reuses() {
    // The retention issue's two-phase protocol, on S3's consistency model (docs/remote.md).
    let Some(garage) = Garage::shared() else {
        return;
    };
    for delay_ms in [300, 1500] {
        let s = remote_scratch(garage, &format!("prune-{delay_ms}"));
        crate::prune::backup_during_prune_keeps_reused_blobs(&s, delay_ms);
    }
}

#[test]
fn s3_credentials_and_region_come_from_the_aws_profile_files() {
    let Some(garage) = Garage::shared() else {
        return;
    };
    let s = remote_scratch(garage, "profile");
    let home = s.path("home");
    fs::create_dir_all(home.join(".aws")).unwrap();
    fs::write(
        home.join(".aws/credentials"),
        format!(
            "[backup]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            garage.key_id, garage.secret
        ),
    )
    .unwrap();
    fs::write(home.join(".aws/config"), "[profile backup]\nregion = garage\n").unwrap();
    let mut cmd = s.cmd(&["--json", "snapshots"]);
    for (key, _) in garage.env() {
        if key.starts_with("AWS_") {
            cmd.env_remove(key);
        }
    }
    let out = cmd.env("HOME", &home).env("AWS_PROFILE", "backup").output().unwrap();
    assert!(out.status.success(), "{}", describe(&out));
}

#[test]
fn s3_transfers_keep_under_the_rate_limits() {
    // Lower bounds only: a limit that stopped working would finish these in a fraction.
    let Some(garage) = Garage::shared() else {
        return;
    };
    let s = remote_scratch(garage, "limits");
    let src = s.path("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("data"), noise(41, 4 << 20)).unwrap();
    let started = Instant::now();
    s.backup(&[&src], &["--limit-upload", "2048"]);
    let upload = started.elapsed();
    assert!(upload.as_secs_f64() >= 1.5, "4 MiB uploaded at 2 MiB/s in {upload:?}");
    let target = s.path("out");
    let started = Instant::now();
    s.ok(&["--limit-download", "2048", "restore", "latest", "--target", target.to_str().unwrap()]);
    let download = started.elapsed();
    assert!(download.as_secs_f64() >= 1.5, "4 MiB restored at 2 MiB/s in {download:?}");
}
