//! The allocator of the `alexnet` binary: a pool of large blocks in front of another allocator.
//!
//! A training step allocates the same large buffers every step (each layer's activations and
//! gradients, the im2col scratch, the SGD update's temporaries: 150 MB each for fc6). Given back
//! to the OS when freed, every one of them comes back next step as fresh pages that the kernel
//! faults in and zeroes one by one: 24-29% of a batch-32 `alexnet-owt` step was the kernel's
//! `clear_page_erms` (`docs/results.md`). Here a freed block of at least [`POOL_MIN_BYTES`] is
//! kept, and the next request of the same size and alignment gets it back, already mapped.
//!
//! The pool holds at most a byte budget (`ALEXNET_POOL_MB`, default [`DEFAULT_POOL_MB`]; `0`
//! turns it off) in at most [`POOL_SLOTS`] blocks; a block that does not fit pushes out the ones
//! freed longest ago, which go back to the inner allocator. Small requests go straight through.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Blocks below this go straight to the inner allocator (which keeps small blocks mapped itself).
pub const POOL_MIN_BYTES: usize = 1 << 20;
/// How many freed blocks the pool holds at most.
pub const POOL_SLOTS: usize = 96;
/// The default byte budget: a batch-128 `alexnet` step's repeated large blocks fit in it.
pub const DEFAULT_POOL_MB: usize = 2048;

/// Not yet read from the environment.
const BUDGET_UNSET: usize = usize::MAX;

#[derive(Clone, Copy)]
struct Slot {
    /// The block's address; 0 for an empty slot.
    address: usize,
    size: usize,
    align: usize,
    /// When it was freed, in frees since the start: the smallest goes first.
    freed_at: u64,
}

const EMPTY: Slot = Slot {
    address: 0,
    size: 0,
    align: 0,
    freed_at: 0,
};

struct Blocks {
    slots: [Slot; POOL_SLOTS],
    bytes: usize,
    frees: u64,
}

/// What the pool has done since the start, for tests and `bench model`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolStats {
    /// Large requests served from the pool.
    pub hits: u64,
    /// Large requests passed to the inner allocator.
    pub misses: u64,
    /// Bytes held now.
    pub held_bytes: usize,
}

/// `inner` with a pool of its large blocks; see the crate's documentation.
pub struct PooledAllocator<A> {
    inner: A,
    blocks: Mutex<Blocks>,
    /// The byte budget, [`BUDGET_UNSET`] until the first large free reads `ALEXNET_POOL_MB`.
    budget: AtomicUsize,
    hits: std::sync::atomic::AtomicU64,
    misses: std::sync::atomic::AtomicU64,
}

impl<A> PooledAllocator<A> {
    /// A pool whose budget comes from `ALEXNET_POOL_MB` (default [`DEFAULT_POOL_MB`]).
    pub const fn new(inner: A) -> Self {
        Self::with_budget(inner, BUDGET_UNSET)
    }

    /// A pool of at most `budget` bytes, whatever the environment says.
    pub const fn with_budget(inner: A, budget: usize) -> Self {
        PooledAllocator {
            inner,
            blocks: Mutex::new(Blocks {
                slots: [EMPTY; POOL_SLOTS],
                bytes: 0,
                frees: 0,
            }),
            budget: AtomicUsize::new(budget),
            hits: std::sync::atomic::AtomicU64::new(0),
            misses: std::sync::atomic::AtomicU64::new(0),
        }
    }

    pub fn stats(&self) -> PoolStats {
        PoolStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            held_bytes: self.lock().bytes,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Blocks> {
        // Nothing panics while holding the lock; a poisoned one still holds valid slots.
        self.blocks.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn budget(&self) -> usize {
        let budget = self.budget.load(Ordering::Relaxed);
        if budget != BUDGET_UNSET {
            return budget;
        }
        // std::env::var allocates; only small blocks, which never come back here.
        let megabytes = std::env::var("ALEXNET_POOL_MB")
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(DEFAULT_POOL_MB);
        let budget = megabytes.saturating_mul(1 << 20);
        self.budget.store(budget, Ordering::Relaxed);
        budget
    }

    /// A held block of exactly this layout, taken out of the pool.
    fn take(&self, layout: Layout) -> Option<*mut u8> {
        let mut blocks = self.lock();
        // The block freed last: the likeliest still in the cache.
        let slot = blocks
            .slots
            .iter_mut()
            .filter(|s| s.address != 0 && s.size == layout.size() && s.align == layout.align())
            .max_by_key(|s| s.freed_at)?;
        let address = slot.address;
        *slot = EMPTY;
        blocks.bytes -= layout.size();
        Some(address as *mut u8)
    }
}

unsafe impl<A: GlobalAlloc> GlobalAlloc for PooledAllocator<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() < POOL_MIN_BYTES {
            return unsafe { self.inner.alloc(layout) };
        }
        if let Some(block) = self.take(layout) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return block;
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        unsafe { self.inner.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() < POOL_MIN_BYTES {
            return unsafe { self.inner.alloc_zeroed(layout) };
        }
        if let Some(block) = self.take(layout) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            // Zeroing mapped memory in place is cheaper than faulting in fresh zeroed pages.
            unsafe { block.write_bytes(0, layout.size()) };
            return block;
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        unsafe { self.inner.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let size = layout.size();
        if size < POOL_MIN_BYTES || size > self.budget() {
            return unsafe { self.inner.dealloc(ptr, layout) };
        }
        // Blocks pushed out to make room, given back after the lock is released.
        let mut evicted = [EMPTY; POOL_SLOTS];
        let mut evicted_count = 0;
        {
            let mut blocks = self.lock();
            let budget = self.budget();
            while blocks.bytes + size > budget || blocks.slots.iter().all(|s| s.address != 0) {
                let oldest = blocks
                    .slots
                    .iter_mut()
                    .filter(|s| s.address != 0)
                    .min_by_key(|s| s.freed_at)
                    .expect("a full pool holds a block");
                evicted[evicted_count] = *oldest;
                evicted_count += 1;
                let freed = oldest.size;
                *oldest = EMPTY;
                blocks.bytes -= freed;
            }
            blocks.frees += 1;
            let freed_at = blocks.frees;
            let slot = blocks
                .slots
                .iter_mut()
                .find(|s| s.address == 0)
                .expect("room was made above");
            *slot = Slot {
                address: ptr as usize,
                size,
                align: layout.align(),
                freed_at,
            };
            blocks.bytes += size;
        }
        for block in &evicted[..evicted_count] {
            // SAFETY: the slot recorded the layout this block was allocated with.
            unsafe {
                self.inner.dealloc(
                    block.address as *mut u8,
                    Layout::from_size_align_unchecked(block.size, block.align),
                )
            };
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.size() < POOL_MIN_BYTES && new_size < POOL_MIN_BYTES {
            return unsafe { self.inner.realloc(ptr, layout, new_size) };
        }
        // Across the threshold or between large sizes: a new block, the bytes copied.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::alloc::System;

    const MB: usize = 1 << 20;

    fn layout(megabytes: usize) -> Layout {
        Layout::from_size_align(megabytes * MB, 64).unwrap()
    }

    #[test]
    fn a_freed_large_block_serves_the_next_request_of_its_size_and_small_ones_pass_by() {
        let pool = PooledAllocator::with_budget(System, 64 * MB);
        unsafe {
            let a = pool.alloc(layout(4));
            a.write_bytes(7, 4 * MB);
            pool.dealloc(a, layout(4));
            assert_eq!(pool.stats().held_bytes, 4 * MB);
            // Another size does not get it.
            let b = pool.alloc(layout(5));
            assert_ne!(a, b);
            // The same size does, and zeroed when asked for zeros.
            let c = pool.alloc_zeroed(layout(4));
            assert_eq!(c, a);
            let bytes = std::slice::from_raw_parts(c, 4 * MB);
            assert!(bytes.iter().all(|&v| v == 0));
            assert_eq!(pool.stats().hits, 1);
            assert_eq!(pool.stats().held_bytes, 0);
            let small = Layout::from_size_align(1000, 8).unwrap();
            let s = pool.alloc(small);
            pool.dealloc(s, small);
            assert_eq!(pool.stats().held_bytes, 0, "small blocks are not held");
            pool.dealloc(b, layout(5));
            pool.dealloc(c, layout(4));
        }
    }

    #[test]
    fn the_budget_pushes_out_the_blocks_freed_longest_ago() {
        let pool = PooledAllocator::with_budget(System, 10 * MB);
        unsafe {
            let blocks: Vec<*mut u8> = (0..3).map(|_| pool.alloc(layout(4))).collect();
            for &b in &blocks {
                pool.dealloc(b, layout(4));
            }
            // 12 MB freed into 10: the first block went back to the system.
            assert_eq!(pool.stats().held_bytes, 8 * MB);
            let again = [pool.alloc(layout(4)), pool.alloc(layout(4))];
            assert_eq!(again, [blocks[2], blocks[1]], "the last freed first");
            // A block over the whole budget is never held.
            let big = pool.alloc(layout(11));
            pool.dealloc(big, layout(11));
            assert_eq!(pool.stats().held_bytes, 0);
            for b in again {
                pool.dealloc(b, layout(4));
            }
        }
        let off = PooledAllocator::with_budget(System, 0);
        unsafe {
            let a = off.alloc(layout(2));
            off.dealloc(a, layout(2));
        }
        assert_eq!(off.stats().held_bytes, 0, "a budget of 0 holds nothing");
    }

    /// Threads take and give back blocks of a few sizes, each filling its blocks with its own
    /// mark and checking the mark is intact before freeing: a block handed out twice while in
    /// use would carry another thread's mark.
    #[test]
    fn a_block_in_use_is_never_handed_out_again() {
        let pool = PooledAllocator::with_budget(System, 48 * MB);
        let clobbered = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for thread in 0..4u8 {
                let (pool, clobbered) = (&pool, &clobbered);
                scope.spawn(move || {
                    for round in 0..40usize {
                        let sizes = [1 + round % 3, 2, 1 + (round + thread as usize) % 4];
                        let held: Vec<(*mut u8, Layout, u8)> = sizes
                            .iter()
                            .enumerate()
                            .map(|(i, &mb)| unsafe {
                                let l = layout(mb);
                                let p = pool.alloc(l);
                                let mark = thread * 16 + i as u8 + 1;
                                p.write_bytes(mark, l.size());
                                (p, l, mark)
                            })
                            .collect();
                        std::thread::yield_now();
                        for (p, l, mark) in held {
                            unsafe {
                                let bytes = std::slice::from_raw_parts(p, l.size());
                                // Its first and last pages, and one in the middle.
                                let probes = [0, l.size() / 2, l.size() - 1];
                                if probes.iter().any(|&at| bytes[at] != mark) {
                                    clobbered.fetch_add(1, Ordering::Relaxed);
                                }
                                pool.dealloc(p, l);
                            }
                        }
                    }
                });
            }
        });
        assert_eq!(clobbered.load(Ordering::Relaxed), 0);
        let stats = pool.stats();
        assert!(stats.hits > 0, "the blocks were reused: {stats:?}");
        assert!(stats.held_bytes <= 48 * MB);
    }

    #[test]
    fn realloc_keeps_the_bytes_across_the_threshold() {
        let pool = PooledAllocator::with_budget(System, 64 * MB);
        unsafe {
            let small = Layout::from_size_align(1024, 8).unwrap();
            let p = pool.alloc(small);
            p.write_bytes(3, 1024);
            let q = pool.realloc(p, small, 2 * MB);
            let bytes = std::slice::from_raw_parts(q, 1024);
            assert!(bytes.iter().all(|&v| v == 3));
            let r = pool.realloc(q, Layout::from_size_align(2 * MB, 8).unwrap(), 3 * MB);
            assert_eq!(*r.add(1023), 3);
            pool.dealloc(r, Layout::from_size_align(3 * MB, 8).unwrap());
            // Both large blocks, the 2 MB one freed by the realloc, are held.
            assert_eq!(pool.stats().held_bytes, 5 * MB);
        }
    }
}
