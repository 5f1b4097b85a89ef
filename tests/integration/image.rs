//! Sparse VM-style images (issue #5): holes are recorded without being read, and the image
//! comes back byte for byte with its holes.

use std::fs;
use std::os::unix::fs::{FileExt, MetadataExt};

use std::process::Command;

use crate::util::{Scratch, describe, is_root, noise};

#[test]
fn holes_are_not_read_and_a_sparse_image_restores_exactly() {
    let s = Scratch::with_repo();
    let src = s.path("src");
    fs::create_dir(&src).unwrap();
    let image = src.join("vm.raw");
    let size: u64 = (1 << 30) + 4321;
    let file = fs::File::create(&image).unwrap();
    file.set_len(size).unwrap();
    // Data at the start, the middle and the end, with unaligned offsets and lengths.
    let pieces = [(0u64, 300_001usize), ((512 << 20) + 17, 2_000_003), (size - 70_000, 70_000)];
    for (i, (offset, length)) in pieces.iter().enumerate() {
        file.write_all_at(&noise(60 + i as u64, *length), *offset).unwrap();
    }
    drop(file);
    let written: u64 = pieces.iter().map(|p| p.1 as u64).sum();
    let summary = s.backup(&[&src], &[]);
    let read = summary["bytes_read"].as_u64().unwrap();
    let holes = summary["bytes_holes"].as_u64().unwrap();
    if holes == 0 {
        eprintln!("skipping the hole checks: this file system does not report holes");
    } else {
        // Each data run is read with its block rounding and folded small holes, no more.
        assert!(read < written + (8 << 20), "read {read} bytes for {written} of data");
        assert_eq!(read + holes, size, "every byte is either read or a hole");
    }
    let restored = s.restore_latest_and_compare(&src);
    let copy = restored.join("vm.raw");
    let meta = fs::metadata(&copy).unwrap();
    assert_eq!(meta.len(), size, "apparent size");
    assert!(meta.blocks() * 512 < 32 << 20, "restored image lost its holes");
    assert!(
        blake3::hash(&fs::read(&copy).unwrap()) == blake3::hash(&fs::read(&image).unwrap()),
        "restored bytes differ"
    );
    // dump streams the same bytes (chunks fetched ahead, holes as zeros).
    let out = s.cmd(&["dump", "latest", image.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        blake3::hash(&out.stdout) == blake3::hash(&fs::read(&image).unwrap()),
        "dumped bytes differ"
    );
    // --target-file writes the one file wherever asked, holes left as holes.
    let single = s.path("single.raw");
    let reference = format!("latest:{}", image.display());
    s.ok(&["restore", &reference, "--target-file", single.to_str().unwrap(), "--verify"]);
    let meta = fs::metadata(&single).unwrap();
    assert_eq!(meta.len(), size);
    assert!(meta.blocks() * 512 < 32 << 20, "--target-file lost the holes");
    assert!(blake3::hash(&fs::read(&single).unwrap()) == blake3::hash(&fs::read(&image).unwrap()));
    // An unchanged second backup reads nothing at all.
    let again = s.backup(&[&src], &[]);
    assert_eq!(again["bytes_read"].as_u64(), Some(0));
}

#[test]
fn stdin_from_command_saves_the_output_and_fails_with_the_command() {
    let s = Scratch::with_repo();
    let script = "head -c 3000000 /dev/urandom > \"$0\"; cat \"$0\"";
    let expected = s.path("expected.bin");
    let summary = s.backup(
        &[],
        &[
            "--stdin-from-command",
            "--stdin-filename",
            "vm.raw",
            "--",
            "sh",
            "-c",
            script,
            expected.to_str().unwrap(),
        ],
    );
    assert_eq!(summary["bytes_read"].as_u64(), Some(3_000_000));
    let out = s.cmd(&["dump", "latest", "vm.raw"]).output().unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    assert!(out.stdout == fs::read(&expected).unwrap(), "dumped bytes differ");

    let before = s.json_list(&["snapshots"]).as_array().unwrap().len();
    let out =
        s.run(&["backup", "--stdin-from-command", "--", "sh", "-c", "echo partial output; exit 3"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("exit status: 3"), "{stderr}");
    assert_eq!(s.json_list(&["snapshots"]).as_array().unwrap().len(), before, "no snapshot");

    let out = s.run(&["backup", "--stdin-from-command", "--", "/nonexistent/program"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot run"));
}

/// A loop device over an image file: the device's contents are backed up with
/// `--read-special` and dumped back byte for byte.
#[test]
fn read_special_backs_up_a_block_device_by_its_contents() {
    if !is_root() {
        eprintln!("skipping: attaching a loop device needs root");
        return;
    }
    let s = Scratch::with_repo();
    let image = s.path("disk.img");
    // Zeros longer than two maximal chunks, so whole chunks of them are found to be zero.
    let mut bytes = noise(70, 12 << 20);
    bytes[(2 << 20)..(9 << 20)].fill(0);
    fs::write(&image, &bytes).unwrap();
    let out = Command::new("losetup").args(["--find", "--show"]).arg(&image).output();
    let device = match out {
        Ok(out) if out.status.success() => {
            String::from_utf8(out.stdout).unwrap().trim().to_string()
        }
        Ok(out) => {
            eprintln!("skipping: losetup cannot attach a loop device here: {}", describe(&out));
            return;
        }
        Err(e) => {
            eprintln!("skipping: losetup is not available ({e})");
            return;
        }
    };
    let detach = || {
        let _ = Command::new("losetup").args(["-d", &device]).status();
    };
    let result = std::panic::catch_unwind(|| {
        let summary = s.backup(&[std::path::Path::new(&device)], &["--read-special"]);
        assert_eq!(summary["bytes_read"].as_u64(), Some(12 << 20));
        assert!(summary["bytes_zero"].as_u64().unwrap() >= 1 << 20, "zeros found: {summary}");
        let out = s.cmd(&["dump", "latest", &device]).output().unwrap();
        assert!(out.status.success(), "{}", describe(&out));
        assert!(out.stdout == bytes, "dumped device contents differ");
        // A second run reads the device again (its metadata says nothing about its contents).
        let again = s.backup(&[std::path::Path::new(&device)], &["--read-special"]);
        assert_eq!(again["bytes_read"].as_u64(), Some(12 << 20));
        assert_eq!(again["data_blobs"].as_u64(), Some(0), "nothing new to store");
        // Restoring into a device overwrites what was there, zeros included.
        let (_, other_device) = attach(&s, "other.img", 16 << 20);
        let (_, small_device) = attach(&s, "small.img", 4 << 20);
        let reference = format!("latest:{device}");
        let restored = s.run(&["restore", &reference, "--target-file", &other_device, "--verify"]);
        let written = fs::read(&other_device).unwrap();
        let too_small = s.run(&["restore", &reference, "--target-file", &small_device]);
        let small_contents = fs::read(&small_device).unwrap();
        for dev in [&other_device, &small_device] {
            let _ = Command::new("losetup").args(["-d", dev]).status();
        }
        assert!(restored.status.success(), "{}", describe(&restored));
        assert!(written[..bytes.len()] == bytes[..], "device contents differ");
        assert_eq!(too_small.status.code(), Some(1), "{}", describe(&too_small));
        assert!(String::from_utf8_lossy(&too_small.stderr).contains("nothing was written"));
        assert!(small_contents.iter().all(|&b| b == 0xAA), "the small device was touched");
    });
    detach();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

#[test]
fn dump_of_a_damaged_image_fails_instead_of_streaming_wrong_bytes() {
    let s = Scratch::with_repo();
    let src = s.path("src");
    fs::create_dir(&src).unwrap();
    let image = src.join("disk.raw");
    fs::write(&image, noise(80, 12 << 20)).unwrap();
    s.backup(&[&src], &[]);
    let (pack, mut bytes) = s
        .repository_files()
        .into_iter()
        .filter(|(p, _)| p.starts_with(s.repo().join("data")))
        .max_by_key(|(_, b)| b.len())
        .unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    fs::write(&pack, bytes).unwrap();
    let out = s.cmd(&["dump", "latest", image.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(out.stdout.len() < 12 << 20, "stopped at the damaged chunk");
    assert!(String::from_utf8_lossy(&out.stderr).contains("error"));
}

/// A loop device over a new file of `size` bytes of 0xAA (root only; panics otherwise).
fn attach(s: &Scratch, name: &str, size: usize) -> (std::path::PathBuf, String) {
    let path = s.path(name);
    fs::write(&path, vec![0xAA; size]).unwrap();
    let out = Command::new("losetup").args(["--find", "--show"]).arg(&path).output().unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    (path, String::from_utf8(out.stdout).unwrap().trim().to_string())
}

/// An image with 3 MiB of data in each 64 MiB: pieces at k*64 MiB (2 MiB) and k*64+32 MiB
/// (1 MiB), holes between.
fn pieced_image(path: &std::path::Path) -> fs::File {
    let file =
        fs::File::options().read(true).write(true).create(true).truncate(true).open(path).unwrap();
    file.set_len(256 << 20).unwrap();
    for k in 0..4u64 {
        file.write_all_at(&noise(90 + k, 2 << 20), k * (64 << 20)).unwrap();
        file.write_all_at(&noise(95 + k, 1 << 20), k * (64 << 20) + (32 << 20)).unwrap();
    }
    file
}

fn ranges_file(s: &Scratch, ranges: &[(u64, u64)]) -> std::path::PathBuf {
    let path = s.path("changed.json");
    let list: Vec<_> = ranges
        .iter()
        .map(|(offset, length)| serde_json::json!({"offset": offset, "length": length, "data": true}))
        .collect();
    fs::write(&path, serde_json::to_vec(&list).unwrap()).unwrap();
    path
}

fn restored_image(s: &Scratch, image: &std::path::Path) -> Vec<u8> {
    let out = s.path("check.raw");
    let reference = format!("latest:{}", image.display());
    s.ok(&["restore", &reference, "--target-file", out.to_str().unwrap()]);
    fs::read(out).unwrap()
}

#[test]
fn changed_ranges_read_only_around_the_changes_and_verify_catches_a_lying_map() {
    let s = Scratch::with_repo();
    let src = s.path("src");
    fs::create_dir(&src).unwrap();
    let image = src.join("vm.raw");
    let file = pieced_image(&image);
    s.backup(&[&src], &[]);
    if fs::metadata(&image).unwrap().blocks() * 512 > 64 << 20 {
        eprintln!("skipping: this file system does not keep the image sparse");
        return;
    }

    // An honest map: two 4 KiB writes, in the pieces at 64 MiB and at 96 MiB.
    file.write_all_at(&[1; 4096], (64 << 20) + 100_000).unwrap();
    file.write_all_at(&[2; 4096], (96 << 20) + 10).unwrap();
    let map = ranges_file(&s, &[((64 << 20) + 100_000, 4096), ((96 << 20) + 10, 4096)]);
    let summary = s.backup(&[&src], &["--changed-ranges", map.to_str().unwrap()]);
    // Only the chunks around each write are read again; the rest comes from the parent.
    let read = summary["bytes_read"].as_u64().unwrap();
    let unchanged = summary["bytes_unchanged"].as_u64().unwrap();
    assert!(read < 3 << 20, "{summary}");
    assert_eq!(read + unchanged, 12 << 20, "{summary}");
    assert!(restored_image(&s, &image) == fs::read(&image).unwrap());

    // Many writes, some crossing chunk boundaries and the edges of data extents, all mapped.
    let mut ranges = Vec::new();
    for i in 0..30u64 {
        let offset = (i % 4) * (64 << 20) + (i * 70_001) % (2 << 20);
        file.write_all_at(&noise(200 + i, 5000), offset).unwrap();
        ranges.push((offset, 5000));
    }
    let map = ranges_file(&s, &ranges);
    s.backup(&[&src], &["--changed-ranges", map.to_str().unwrap()]);
    assert!(restored_image(&s, &image) == fs::read(&image).unwrap());

    // A lying map: the write at 1 MiB is not in it. Trusted, the snapshot keeps stale bytes
    // (the documented trust model); --verify-unchanged reads everything and says so.
    file.write_all_at(&[3; 4096], 1 << 20).unwrap();
    let map = ranges_file(&s, &[((192 << 20) + 5, 100)]);
    s.backup(&[&src], &["--changed-ranges", map.to_str().unwrap()]);
    assert!(restored_image(&s, &image) != fs::read(&image).unwrap());
    let out = s.run(&[
        "backup",
        src.to_str().unwrap(),
        "--changed-ranges",
        map.to_str().unwrap(),
        "--verify-unchanged",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--changed-ranges map missed changes"));
    assert!(restored_image(&s, &image) == fs::read(&image).unwrap());

    let out = s.run(&["backup", src.to_str().unwrap(), "--changed-ranges", "/nonexistent"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read --changed-ranges"));
}

/// Files cut with the image profile are compressed at the image level (`init
/// --image-compression`), other files at the repository level, and `backup --compression`
/// overrides both.
#[test]
fn images_are_compressed_at_their_own_level() {
    let s = Scratch::new();
    s.ok(&[
        "init",
        "--argon2-memory",
        "256",
        "--argon2-iterations",
        "1",
        "--image-min-size",
        "1M",
        "--image-compression",
        "0",
    ]);
    let text = |seed: u64, len: usize| -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 64);
        let mut n = seed;
        while out.len() < len {
            n = n.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            out.extend_from_slice(format!("record {} value {}\n", n % 1000, n >> 54).as_bytes());
        }
        out.truncate(len);
        out
    };
    let stored_share = |summary: &serde_json::Value| {
        let added = summary["data_added"].as_f64().unwrap();
        let stored = summary["data_added_packed"].as_f64().unwrap();
        stored / added
    };
    let dir = s.path("src");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("image.raw"), text(1, 4 << 20)).unwrap();
    let image = s.backup(&[&dir], &[]);
    assert!(stored_share(&image) > 1.0, "image data stored raw at level 0: {image}");
    fs::write(dir.join("small.txt"), text(2, 512 << 10)).unwrap();
    let small = s.backup(&[&dir], &[]);
    assert!(stored_share(&small) < 0.5, "small files at the repository level 3: {small}");
    fs::write(dir.join("other.raw"), text(3, 4 << 20)).unwrap();
    let forced = s.backup(&[&dir], &["--compression", "3"]);
    assert!(stored_share(&forced) < 0.5, "--compression applies to images too: {forced}");
}
