//! `check --read-data`: reads packs whole, in storage order, with several readers at once
//! (each reads one pack sequentially into memory: no temporary files), and verifies that a
//! pack hashes to its name, that its header agrees with the index, and that every blob opens
//! (AEAD) and hashes to its id. Each verified pack is recorded in the local index with the
//! time, so `--max-age` skips recent ones and an interrupted check picks up where it stopped.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::Mutex;
use std::sync::atomic::Ordering;

use anyhow::{Result, bail};
use cairn_format::pack::{self, PackEntry, TRAILER_LEN};
use cairn_format::{BlobId, PackId, Repository};

use super::{CheckOptions, CheckReport, DamagedPack, IndexedPackInfo, IndexedPacks, ReadSummary};
use crate::progress::Progress;

/// Which packs `--read-data-subset` reads.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Subset {
    /// Part `n` of `t` (1-based): a fixed partition by pack id, so running 1/t .. t/t reads
    /// every pack exactly once, whatever was added in between.
    Part { n: u64, t: u64 },
    /// A random share of the packs.
    Percent(f64),
    /// Random packs until this many bytes.
    Bytes(u64),
}

impl FromStr for Subset {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad =
            || format!("{text:?}: expected n/t (like 2/5), a percentage (10%) or a size (50G)");
        if let Some((n, t)) = text.split_once('/') {
            let (n, t) = (n.parse::<u64>(), t.parse::<u64>());
            return match (n, t) {
                (Ok(n), Ok(t)) if (1..=t).contains(&n) => Ok(Subset::Part { n, t }),
                _ => Err(bad()),
            };
        }
        if let Some(percent) = text.strip_suffix('%') {
            return match percent.parse::<f64>() {
                Ok(p) if p > 0.0 && p <= 100.0 => Ok(Subset::Percent(p)),
                _ => Err(bad()),
            };
        }
        match crate::size::parse_size(text) {
            Ok(bytes) if bytes > 0 => Ok(Subset::Bytes(bytes)),
            _ => Err(bad()),
        }
    }
}

impl Subset {
    /// The packs of this subset, from packs in storage order.
    fn select(self, packs: Vec<(PackId, u64)>) -> Vec<(PackId, u64)> {
        match self {
            Subset::Part { n, t } => packs
                .into_iter()
                .filter(|(id, _)| {
                    let number = u64::from_le_bytes(id.0[..8].try_into().expect("8 bytes"));
                    number % t == n - 1
                })
                .collect(),
            Subset::Percent(percent) => {
                let count = ((packs.len() as f64) * percent / 100.0).ceil() as usize;
                let mut chosen = shuffled(packs);
                chosen.truncate(count);
                storage_order(chosen)
            }
            Subset::Bytes(limit) => {
                let mut total = 0;
                let chosen = shuffled(packs)
                    .into_iter()
                    .take_while(|(_, size)| {
                        let take = total < limit;
                        total += size;
                        take
                    })
                    .collect();
                storage_order(chosen)
            }
        }
    }
}

fn shuffled(mut packs: Vec<(PackId, u64)>) -> Vec<(PackId, u64)> {
    let mut x = u64::from_le_bytes(cairn_format::id::random_bytes()) | 1;
    for i in (1..packs.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        packs.swap(i, (x % (i as u64 + 1)) as usize);
    }
    packs
}

/// Packs in the order a directory or bucket lists them in: by name, which is by id.
fn storage_order(mut packs: Vec<(PackId, u64)>) -> Vec<(PackId, u64)> {
    packs.sort_by_key(|(id, _)| *id);
    packs
}

/// What reading one pack found.
struct Verdict {
    /// Why the pack as a whole is damaged.
    reason: Option<String>,
    /// Damage beyond the blobs listed (header, size, presence).
    structural: bool,
    damaged_blobs: Vec<BlobId>,
    verified_blobs: u64,
}

/// Reads the selected packs; damaged ones go into the report. Returns the damaged copies
/// (pack, blob) found.
pub(super) fn read_packs(
    repo: &Repository,
    indexed: &IndexedPacks,
    listed: &HashMap<PackId, u64>,
    options: &CheckOptions,
    progress: &Progress,
    report: &mut CheckReport,
) -> Result<()> {
    let present: Vec<(PackId, u64)> = indexed
        .packs
        .iter()
        .filter(|(id, info)| listed.get(id) == Some(&info.size))
        .map(|(id, info)| (*id, info.size))
        .collect();
    let mut summary =
        ReadSummary { packs_in_repository: present.len() as u64, ..ReadSummary::default() };
    let selected = select(repo, present, options, &mut summary)?;
    progress.add_total(selected.len() as u64, selected.iter().map(|(_, size)| size).sum());
    let (results, complete) = read_in_parallel(repo, indexed, selected, options, progress)?;
    summary.complete = complete;
    for (id, size, verdict) in results {
        summary.packs_read += 1;
        summary.bytes_read += size;
        summary.blobs_verified += verdict.verified_blobs;
        record(report, id, verdict);
    }
    report.read = Some(summary);
    Ok(())
}

/// The packs to read, in storage order: the subset asked for, less those verified within
/// `--max-age`.
fn select(
    repo: &Repository,
    present: Vec<(PackId, u64)>,
    options: &CheckOptions,
    summary: &mut ReadSummary,
) -> Result<Vec<(PackId, u64)>> {
    let mut selected = storage_order(present);
    if let Some(subset) = options.subset {
        selected = subset.select(selected);
    }
    let Some(max_age) = options.max_age else {
        return Ok(selected);
    };
    let since = now() - i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX);
    let before = selected.len();
    let mut kept = Vec::with_capacity(before);
    for pack in selected {
        if (repo.index().verified_at(&pack.0)?).is_none_or(|at| at < since) {
            kept.push(pack);
        }
    }
    summary.packs_skipped_recent = (before - kept.len()) as u64;
    Ok(kept)
}

/// A pack read whole: its id, its size, and what reading it found.
type PackRead = (PackId, u64, Verdict);

/// Each pack read and checked once, by as many reader threads as asked for. Returns the
/// verdicts and whether every pack was read (false when interrupted).
fn read_in_parallel(
    repo: &Repository,
    indexed: &IndexedPacks,
    selected: Vec<(PackId, u64)>,
    options: &CheckOptions,
    progress: &Progress,
) -> Result<(Vec<PackRead>, bool)> {
    let queue = Mutex::new(selected.into_iter().rev().collect::<Vec<_>>());
    let results = Mutex::new(Vec::new());
    let readers = if options.readers > 0 {
        options.readers
    } else {
        std::thread::available_parallelism().map_or(2, usize::from) + 1
    };
    let failure = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..readers {
            scope.spawn(|| {
                let read = read_from_queue(&queue, repo, indexed, options, progress, &results);
                if let Err(e) = read {
                    failure.lock().expect("failure").get_or_insert(e);
                }
            });
        }
    });
    if let Some(e) = failure.into_inner().expect("failure") {
        return Err(e);
    }
    let complete = queue.into_inner().expect("queue").is_empty();
    Ok((results.into_inner().expect("results"), complete))
}

/// One reader thread: takes packs off the queue until it is empty, the check is interrupted,
/// or a pack fails to read at all.
fn read_from_queue(
    queue: &Mutex<Vec<(PackId, u64)>>,
    repo: &Repository,
    indexed: &IndexedPacks,
    options: &CheckOptions,
    progress: &Progress,
    results: &Mutex<Vec<PackRead>>,
) -> Result<()> {
    // One pack-sized buffer per reader, reused: fresh 16 MiB buffers cost a page fault per
    // 4 KiB.
    let mut buffer = Vec::new();
    while !options.interrupt.load(Ordering::Relaxed) {
        let Some((id, size)) = queue.lock().expect("queue").pop() else {
            break;
        };
        progress.set_current(std::path::Path::new(&format!("pack {id}")));
        let verdict = verify_pack(repo, &id, &indexed.packs[&id], &mut buffer)?;
        progress.add_done(1, size);
        results.lock().expect("results").push((id, size, verdict));
    }
    Ok(())
}

/// Adds a pack that did not verify completely to the report.
fn record(report: &mut CheckReport, pack: PackId, verdict: Verdict) {
    if verdict.reason.is_none() && verdict.damaged_blobs.is_empty() {
        return;
    }
    let reason = verdict
        .reason
        .unwrap_or_else(|| format!("{} blobs do not verify", verdict.damaged_blobs.len()));
    report.damaged_packs.push(DamagedPack {
        pack,
        reason,
        structural: verdict.structural,
        damaged_blobs: verdict.damaged_blobs,
        lost_blobs: Vec::new(),
        harmless: false,
    });
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Reads one pack and checks everything in it. Only a failure to read at all (other than the
/// pack having vanished or shrunk) is an error.
fn verify_pack(
    repo: &Repository,
    id: &PackId,
    info: &IndexedPackInfo,
    buffer: &mut Vec<u8>,
) -> Result<Verdict> {
    match repo.read_pack_range_into(id, 0, info.size, buffer) {
        Ok(()) => {}
        Err(cairn_format::Error::ObjectNotFound { .. }) => {
            return Ok(whole_pack_lost(info, "missing (deleted during the check)"));
        }
        Err(cairn_format::Error::Corrupt { .. }) => {
            return Ok(whole_pack_lost(
                info,
                &format!("shorter than the {} bytes the index says", info.size),
            ));
        }
        Err(e) => bail!("cannot read pack {id}: {e}"),
    }
    let verdict = verify_bytes(repo, id, info, buffer);
    repo.index().record_verification(id, now(), &verdict.damaged_blobs)?;
    Ok(verdict)
}

/// Checks a pack's bytes: its name, its header against the index, and every blob.
fn verify_bytes(repo: &Repository, id: &PackId, info: &IndexedPackInfo, bytes: &[u8]) -> Verdict {
    let mut reasons = Vec::new();
    if PackId::hash_of(bytes) != *id {
        reasons.push("contents do not hash to the pack's name".to_string());
    }
    let header = match header_entries(repo, id, bytes) {
        Ok(header) if !same_entries(&header, &info.entries) => {
            Some("pack header disagrees with the index".to_string())
        }
        Ok(_) => None,
        Err(e) => Some(format!("pack header: {e}")),
    };
    let mut verdict = Verdict {
        reason: None,
        structural: header.is_some(),
        damaged_blobs: Vec::new(),
        verified_blobs: 0,
    };
    for entry in &info.entries {
        let start = entry.offset as usize;
        let sealed = bytes.get(start..start + entry.length as usize);
        match sealed.map(|sealed| pack::open_blob(repo.key(), entry, sealed)) {
            Some(Ok(_)) => verdict.verified_blobs += 1,
            _ => verdict.damaged_blobs.push(entry.id),
        }
    }
    reasons.extend(header);
    let damaged = verdict.damaged_blobs.len();
    if damaged > 0 {
        reasons.push(format!("{damaged} of {} blobs do not verify", info.entries.len()));
    }
    verdict.reason = (!reasons.is_empty()).then(|| reasons.join("; "));
    verdict
}

fn whole_pack_lost(info: &IndexedPackInfo, reason: &str) -> Verdict {
    Verdict {
        reason: Some(reason.to_string()),
        structural: true,
        damaged_blobs: info.entries.iter().map(|e| e.id).collect(),
        verified_blobs: 0,
    }
}

fn header_entries(repo: &Repository, id: &PackId, bytes: &[u8]) -> Result<Vec<PackEntry>> {
    let size = bytes.len() as u64;
    if bytes.len() < TRAILER_LEN {
        bail!("shorter than its trailer");
    }
    let length = pack::header_length(id, size, &bytes[bytes.len() - TRAILER_LEN..])? as usize;
    let end = bytes.len() - TRAILER_LEN;
    Ok(pack::decode_header(repo.key(), id, size, &bytes[end - length..end])?)
}

fn same_entries(a: &[PackEntry], b: &[PackEntry]) -> bool {
    let set = |entries: &[PackEntry]| -> HashSet<(BlobId, u32, u32, u32)> {
        entries.iter().map(|e| (e.id, e.offset, e.length, e.raw_length)).collect()
    };
    a.len() == b.len() && set(a) == set(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packs(count: u8) -> Vec<(PackId, u64)> {
        (0..count)
            .map(|i| {
                let mut id = [0u8; 32];
                id[0] = i.wrapping_mul(37);
                id[1] = i;
                (PackId(id), 100 + u64::from(i))
            })
            .collect()
    }

    #[test]
    fn subsets_parse() {
        assert_eq!("2/5".parse(), Ok(Subset::Part { n: 2, t: 5 }));
        assert_eq!("10%".parse(), Ok(Subset::Percent(10.0)));
        assert_eq!("50G".parse(), Ok(Subset::Bytes(50 << 30)));
        for bad in ["0/3", "4/3", "x/3", "0%", "101%", "", "-1"] {
            assert!(bad.parse::<Subset>().is_err(), "{bad}");
        }
    }

    #[test]
    fn parts_cover_every_pack_exactly_once() {
        let all = storage_order(packs(200));
        let mut seen: Vec<PackId> = (1..=3)
            .flat_map(|n| Subset::Part { n, t: 3 }.select(all.clone()))
            .map(|(id, _)| id)
            .collect();
        seen.sort();
        let mut expected: Vec<PackId> = all.iter().map(|(id, _)| *id).collect();
        expected.sort();
        assert_eq!(seen, expected);
    }

    #[test]
    fn percent_and_size_subsets_choose_that_much() {
        let all = storage_order(packs(200));
        assert_eq!(Subset::Percent(10.0).select(all.clone()).len(), 20);
        let chosen = Subset::Bytes(1000).select(all.clone());
        let total: u64 = chosen.iter().map(|(_, size)| size).sum();
        assert!((1000..1300).contains(&total), "{total}");
        assert_eq!(chosen, storage_order(chosen.clone()), "read in storage order");
    }
}
