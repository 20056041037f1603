//! How freed tensors' memory goes back to the allocator: kept in the process, not returned to
//! the system.
//!
//! Every operation here allocates its output (megabytes per tensor), and burn frees it a few
//! operations later. glibc's `malloc` by default serves such sizes with `mmap` or trims its heap
//! once a few megabytes at its top are free, so the next step's tensors are fresh pages: the
//! kernel zeroes each one on first touch, and in a virtual machine each such fault is dear.
//! Measured 2026-12-04 on a 2-core AMD EPYC Zen 3 (`echoseg bench --arch unet`, 30 steps): 223
//! 000–300 000 page faults and 1.1–1.5 s of system time per run, 27 000 and 0.5–0.6 s with
//! the settings below, training 105–118 → 125–141 img/s in three alternating pairs.

/// Largest request served from the heap rather than by its own `mmap` (glibc's upper bound for
/// this setting on 64-bit machines): a 64 px, 48-channel activation at batch 16 is 12 MiB.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const HEAP_UP_TO: usize = 32 << 20;

/// Asks the allocator to keep freed memory for the next tensors: requests up to 32 MiB come from
/// the heap, and the heap is never trimmed, so a training step reuses the pages of the last one.
/// The process's resident memory stays at its peak instead of falling between steps. Call it
/// once, before the first tensor; it does nothing where the C library is not glibc.
///
/// Every thread allocates from the one main heap. A study trains each run on a worker thread,
/// and glibc gives each such thread a heap of its own, which it unmaps whole once it is empty,
/// whatever the trim setting: measured 2026-12-04 on the 2-core Zen 3 (`echoseg bench --arch
/// unet --threads 2`, networks on a worker thread), 142 000–270 000 page faults per run with
/// per-thread heaps, 26 500 with the main heap alone (as many as on the main thread), and the
/// up-sampling and concatenation, which write fresh outputs, 2–3× slower with per-thread heaps.
/// Threads then share one lock, taken a few times per operation on tensors of kilobytes or more.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: `mallopt` only sets three of glibc's allocation parameters (plain integers); it is
    // called before any other thread starts allocating, and the values are within what glibc
    // accepts (it returns 0 and changes nothing otherwise, which is harmless).
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, HEAP_UP_TO as libc::c_int);
        libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX);
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// For tests: every block the allocator hands out from now on is first filled with the bytes
/// 0x7F (3.4e38 as an f32) and every request up to 32 MiB comes from the heap, where that applies
/// (glibc's `M_PERTURB`). An output value a kernel failed to write then reads as 3.4e38 instead
/// of the 0 that fresh pages happen to hold. Does nothing where the C library is not glibc.
pub fn fill_new_memory_with_garbage() {
    keep_freed_memory();
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: as in `keep_freed_memory`, one integer parameter of glibc's allocator (allocations
    // get the complement of the byte given, frees the byte itself). Tests call it while other
    // threads allocate: glibc reads the parameter per call, and either value is a valid one.
    unsafe {
        libc::mallopt(libc::M_PERTURB, 0x80);
    }
}
