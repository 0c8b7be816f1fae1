//! The binary's memory: mimalloc for small blocks, the pool of `alexnet-alloc` in front of it for
//! the large blocks of a training step, and mimalloc told to keep the pages it frees.
//!
//! With the system allocator every 77 MB batch (and every large tensor) is a fresh mapping whose
//! pages fault in one by one: 20 ms per batch of 128, half the time of building it. mimalloc gives
//! its largest blocks back to the OS, so the pool keeps those for the next step. mimalloc also
//! *purges* the pages of its freed small blocks a second after they fall empty (mimalloc 3's
//! `purge_delay`), and a training step frees and reallocates hundreds of them (the im2col buffers,
//! the smaller activations): each comes back as a fresh page that the kernel zeroes again. For the
//! paper's net at batch 128 that was about 5,800 page faults a step, and 13% of its speed
//! (`docs/results.md`).

use std::ffi::{c_int, c_long};

#[global_allocator]
pub static ALLOCATOR: alexnet_alloc::PooledAllocator<mimalloc::MiMalloc> =
    alexnet_alloc::PooledAllocator::new(mimalloc::MiMalloc);

/// `mi_option_purge_delay` in mimalloc's `mi_option_e` (`mimalloc.h`): milliseconds before the
/// pages of freed blocks go back to the OS; -1 never. The `mimalloc` crate names no constant for it.
const MI_OPTION_PURGE_DELAY: c_int = 15;

/// What a user sets to choose the delay themselves (mimalloc reads it at start-up).
const PURGE_DELAY_VARIABLE: &str = "MIMALLOC_PURGE_DELAY";

// In the static mimalloc that `libmimalloc-sys` builds and links into the binary.
unsafe extern "C" {
    fn mi_option_set(option: c_int, value: c_long);
    fn mi_option_get(option: c_int) -> c_long;
}

/// Keeps the pages of freed small blocks mapped for the rest of the process, unless the user chose
/// a delay in `MIMALLOC_PURGE_DELAY`. The memory is what the process has already needed at once,
/// so the peak moves little (a few percent: `docs/results.md`).
pub fn keep_freed_pages() {
    if std::env::var_os(PURGE_DELAY_VARIABLE).is_none() {
        // SAFETY: setting an option is thread-safe in mimalloc and takes plain integers.
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    }
}

/// mimalloc's purge delay now, in milliseconds (-1: never).
pub fn purge_delay() -> i64 {
    // SAFETY: reads an option; plain integers.
    unsafe { mi_option_get(MI_OPTION_PURGE_DELAY) as i64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freed_pages_are_kept_unless_the_user_chose_a_delay() {
        if std::env::var_os(PURGE_DELAY_VARIABLE).is_some() {
            eprintln!("skipped: {PURGE_DELAY_VARIABLE} is set, and wins");
            return;
        }
        // mimalloc 3's default (1,000 ms, `options.c`) shows that the index names the purge delay.
        assert_eq!(purge_delay(), 1000);
        keep_freed_pages();
        assert_eq!(purge_delay(), -1);
    }
}
