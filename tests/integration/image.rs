//! Sparse VM-style images (issue #5): holes are recorded without being read, and the image
//! comes back byte for byte with its holes.

use std::fs;
use std::os::unix::fs::{FileExt, MetadataExt};

use crate::util::{Scratch, noise};

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
    let pieces = [
        (0u64, 300_001usize),
        ((512 << 20) + 17, 2_000_003),
        (size - 70_000, 70_000),
    ];
    for (i, (offset, length)) in pieces.iter().enumerate() {
        file.write_all_at(&noise(60 + i as u64, *length), *offset)
            .unwrap();
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
        assert!(
            read < written + (8 << 20),
            "read {read} bytes for {written} of data"
        );
        assert_eq!(read + holes, size, "every byte is either read or a hole");
    }
    let restored = s.restore_latest_and_compare(&src);
    let copy = restored.join("vm.raw");
    let meta = fs::metadata(&copy).unwrap();
    assert_eq!(meta.len(), size, "apparent size");
    assert!(
        meta.blocks() * 512 < 32 << 20,
        "restored image lost its holes"
    );
    assert!(
        blake3::hash(&fs::read(&copy).unwrap()) == blake3::hash(&fs::read(&image).unwrap()),
        "restored bytes differ"
    );
    // An unchanged second backup reads nothing at all.
    let again = s.backup(&[&src], &[]);
    assert_eq!(again["bytes_read"].as_u64(), Some(0));
}
