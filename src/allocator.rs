//! glibc malloc tuning. Both settings change only when memory goes back to the system, never
//! what a program computes, and both must be made before other threads start.

/// Blocks of 4 MiB and more (pack buffers, Argon2's 64 MiB, restore's pack reads) are mapped
/// and unmapped on their own, and arenas give back free memory above 1 MiB. glibc otherwise
/// raises both thresholds to the size of the largest block freed so far (Argon2's, at
/// start-up), after which 16 MiB pack buffers come from per-thread arenas and stay resident
/// when freed: an image backup peaked at 106 MiB resident instead of 78 MiB, with the same
/// wall time (docs/benchmarks.md, "Memory").
pub fn release_large_blocks() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: mallopt only changes allocator tuning; called from main before any thread.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
        // Setting one threshold fixes the other at 128 KiB, and arenas trimmed that eagerly
        // fault their pages in again and again (restore: +0.5 s of system time for 2 GiB).
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 20);
    }
}

/// glibc gives each of the mount's ~20 threads its own malloc arena, and freed chunk buffers
/// stay in them: reading a 1 GiB file left 650 MB resident with a 256 MiB cache. Two arenas
/// in all bring that to the cache plus about 100 MB, at no cost in throughput
/// (docs/benchmarks.md).
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: mallopt only changes allocator tuning; called before the mount's threads start.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}
