//! File contents: every needed blob grouped by pack, each pack read once by a pool of
//! threads in offset order, every blob written to all the file ranges that use it. Files
//! that could not be written completely are removed afterwards.

use std::fs;
use std::io;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use cairn_format::BlobId;
use cairn_format::content::ContentEntry;
use cairn_format::index::BlobLocation;
use cairn_format::tree::NodeKind;

use super::create::Files;
use super::{Item, RestoreSummary, Run, Target, rel};

/// A blob to restore: where it is, and which `targets` want it (a range of the plan's list).
struct PlannedBlob {
    id: BlobId,
    location: BlobLocation,
    targets: std::ops::Range<usize>,
}

/// Groups every needed blob by pack and has a thread pool read each pack once. The plan is two
/// flat lists (targets sorted by blob, blobs sorted by pack and offset), about 100 bytes per
/// blob, instead of a map with a vector per blob.
pub(super) fn write_contents(run: &Run<'_>, items: &[Item], files: &Files) {
    let mut needs = needed_blobs(run, items, files);
    needs.sort_unstable_by_key(|(id, _)| *id);
    let mut blobs = locate(run, items, &needs);
    let targets: Vec<Target> = needs.into_iter().map(|(_, t)| t).collect();
    let pending = Pending::new(run, items.len(), files, &targets);
    blobs.sort_unstable_by_key(|b| (b.location.pack, b.location.offset));
    let queue = Mutex::new(by_pack(&blobs));
    let threads = std::thread::available_parallelism().map_or(2, usize::from) * 2;
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                // Sized once: reads never exceed MAX_READ, so it is never grown (and doubled).
                let mut buffer = Vec::with_capacity(MAX_READ as usize);
                loop {
                    let next = queue.lock().expect("pack queue").pop();
                    let Some(range) = next else { break };
                    if run.interrupted() {
                        break;
                    }
                    let pack =
                        PackWork { blobs: &blobs[range], targets: &targets, pending: &pending };
                    restore_pack(run, items, &pack, &mut buffer);
                }
            });
        }
    });
}

/// The blob writes each file still waits for: a file counts as done (the progress's file
/// counter) when its last one lands, at once when it has none.
struct Pending(Vec<AtomicU32>);

impl Pending {
    fn new(run: &Run<'_>, items: usize, files: &Files, targets: &[Target]) -> Self {
        let pending: Vec<AtomicU32> = (0..items).map(|_| AtomicU32::new(0)).collect();
        for t in targets {
            pending[t.file].fetch_add(1, Ordering::Relaxed);
        }
        let empty = (files.written.iter()).filter(|&&f| pending[f].load(Ordering::Relaxed) == 0);
        run.progress.add_done(empty.count() as u64, 0);
        Pending(pending)
    }

    fn wrote(&self, run: &Run<'_>, file: usize) {
        if self.0[file].fetch_sub(1, Ordering::Relaxed) == 1 {
            run.progress.add_done(1, 0);
        }
    }
}

/// One pack's share of the plan: its blobs (sorted by offset) and the targets they go to.
struct PackWork<'a> {
    blobs: &'a [PlannedBlob],
    targets: &'a [Target],
    pending: &'a Pending,
}

/// Every data blob each file wants, with where (zero runs only count as progress).
fn needed_blobs(run: &Run<'_>, items: &[Item], files: &Files) -> Vec<(BlobId, Target)> {
    let mut needs = Vec::new();
    let load = |id: &BlobId| run.repo.read_blob(id);
    for &file in &files.written {
        let NodeKind::File { content } = &items[file].node.kind else {
            continue;
        };
        let visited = content.for_each(&load, &mut |offset, entry| {
            match *entry {
                ContentEntry::Data { id, .. } => needs.push((id, Target { file, offset })),
                ContentEntry::Zero { length } => run.progress.add_bytes(length),
            }
            Ok(())
        });
        if let Err(e) = visited {
            run.fail_file(items, file, &format!("content list unreadable: {e}"));
        }
    }
    needs
}

/// One planned blob per distinct id of `needs` (sorted by id), located in the index; the
/// files wanting a blob that is nowhere fail.
fn locate(run: &Run<'_>, items: &[Item], needs: &[(BlobId, Target)]) -> Vec<PlannedBlob> {
    let mut blobs = Vec::new();
    let mut start = 0;
    while start < needs.len() {
        let id = needs[start].0;
        let end = start + needs[start..].partition_point(|(other, _)| *other == id);
        match run.repo.locate(&id) {
            Ok(location) => blobs.push(PlannedBlob { id, location, targets: start..end }),
            Err(e) => {
                for (_, t) in &needs[start..end] {
                    run.fail_file(items, t.file, &format!("{e}"));
                }
            }
        }
        start = end;
    }
    blobs
}

/// The ranges of `blobs` (sorted by pack) that share a pack.
fn by_pack(blobs: &[PlannedBlob]) -> Vec<std::ops::Range<usize>> {
    let mut packs = Vec::new();
    let mut first = 0;
    for i in 1..=blobs.len() {
        if i == blobs.len() || blobs[i].location.pack != blobs[first].location.pack {
            packs.push(first..i);
            first = i;
        }
    }
    packs
}

/// Largest gap between two needed blobs that is read through rather than split into two reads.
const MAX_GAP: u64 = 1 << 20;

/// Largest single read, into a buffer each thread keeps: large enough for full disk speed,
/// small enough that four threads hold 16 MiB (8 MiB reads were no faster and held 32; 32 MiB
/// held 128).
const MAX_READ: u64 = 4 << 20;

/// Restores the blobs of one pack (sorted by offset), reading runs of them at once.
fn restore_pack(run: &Run<'_>, items: &[Item], work: &PackWork<'_>, buffer: &mut Vec<u8>) {
    let (blobs, targets) = (work.blobs, work.targets);
    let pack = blobs[0].location.pack;
    let mut start = 0;
    while start < blobs.len() {
        let end = read_run_end(blobs, start);
        let first = u64::from(blobs[start].location.offset);
        let last = &blobs[end - 1].location;
        let length = u64::from(last.offset) + u64::from(last.length) - first;
        match run.repo.read_pack_range_into(&pack, first, length, buffer) {
            Ok(()) => {
                for blob in &blobs[start..end] {
                    let at = (u64::from(blob.location.offset) - first) as usize;
                    let sealed = &buffer[at..at + blob.location.length as usize];
                    let wanted = &targets[blob.targets.clone()];
                    write_blob(run, items, blob, sealed, wanted, work.pending);
                }
            }
            Err(e) => {
                for t in blobs[start..end].iter().flat_map(|b| &targets[b.targets.clone()]) {
                    run.fail_file(items, t.file, &format!("cannot read pack: {e}"));
                }
            }
        }
        start = end;
    }
}

/// Where the read that starts at `blobs[start]` ends: it takes the following blobs while the
/// gap before each stays under [`MAX_GAP`] and the whole under [`MAX_READ`].
fn read_run_end(blobs: &[PlannedBlob], start: usize) -> usize {
    let first = u64::from(blobs[start].location.offset);
    let mut end = start + 1;
    while end < blobs.len() {
        let previous = &blobs[end - 1].location;
        let previous_end = u64::from(previous.offset) + u64::from(previous.length);
        let next = &blobs[end].location;
        let next_end = u64::from(next.offset) + u64::from(next.length);
        if u64::from(next.offset) > previous_end + MAX_GAP || next_end - first > MAX_READ {
            break;
        }
        end += 1;
    }
    end
}

fn write_blob(
    run: &Run<'_>,
    items: &[Item],
    blob: &PlannedBlob,
    sealed: &[u8],
    targets: &[Target],
    pending: &Pending,
) {
    let plain = match run.repo.open_blob(&blob.id, &blob.location, sealed) {
        Ok(plain) => plain,
        Err(e) => {
            for t in targets {
                run.fail_file(items, t.file, &format!("{e}"));
            }
            return;
        }
    };
    for t in targets {
        let path = run.options.target.join(rel(items, t.file));
        match run.options.sink.0.write_at(&path, &plain, t.offset) {
            Ok(()) => {
                run.bytes_written.fetch_add(plain.len() as u64, Ordering::Relaxed);
                run.progress.add_bytes(plain.len() as u64);
                pending.wrote(run, t.file);
            }
            Err(e) => run.fail_file(items, t.file, &format!("cannot write: {e}")),
        }
    }
}

/// Removes the files that failed (and drops the hardlinks to them, which would share the
/// loss), so that none is left at its full size looking complete: a later `--overwrite
/// if-changed` restores them again.
pub(super) fn discard_failed(
    run: &Run<'_>,
    items: &[Item],
    files: &mut Files,
    summary: &mut RestoreSummary,
) {
    let failed = std::mem::take(&mut *run.failed_files.lock().expect("failed files"));
    files.written.retain(|i| !failed.contains(i));
    let orphans: Vec<usize> = (files.links.iter())
        .filter(|(_, first)| failed.contains(first))
        .map(|(&link, _)| link)
        .collect();
    for link in orphans {
        files.links.remove(&link);
        let _ = fs::remove_file(run.options.target.join(rel(items, link)));
        run.warn(&rel(items, link), "hardlink not made: its file could not be restored");
    }
    for &i in &failed {
        summary.files_failed += 1;
        summary.total_bytes = summary.total_bytes.saturating_sub(items[i].node.size);
        let path = run.options.target.join(rel(items, i));
        match fs::remove_file(&path) {
            Ok(()) => run.observer.warning(&path, "removed: it could not be restored completely"),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => run.warn(&path, &format!("incomplete, and cannot be removed: {e}")),
        }
    }
}
