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
//!
//! The price is memory: at a step's peak (the end of the forward pass) the pool still holds the
//! previous step's backward buffers, idle, 0.7 GB at batch 128. With `ALEXNET_POOL_WITHIN_PEAK=1`
//! the held blocks never make the process larger than it has been: a request the pool cannot
//! serve first gives back idle blocks (the one freed last first) until the large blocks in use,
//! those held and the new one together are within the most ever in use at once. Peak memory is
//! then the pool-less one, and a third of the blocks are new each step again (`docs/results.md`).

use std::alloc::{GlobalAlloc, Layout};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

/// Blocks below this go straight to the inner allocator (the binary tells mimalloc to keep their
/// pages mapped: `alexnet-cli/src/allocator.rs`).
pub const POOL_MIN_BYTES: usize = 1 << 20;
/// How many freed blocks the pool holds at most.
pub const POOL_SLOTS: usize = 96;
/// The default byte budget: a batch-128 `alexnet` step's repeated large blocks fit in it.
pub const DEFAULT_POOL_MB: usize = 2048;

/// Not yet read from the environment.
const BUDGET_UNSET: usize = usize::MAX;
const WITHIN_PEAK_UNSET: u8 = 2;

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
    /// Bytes held (idle, in the slots).
    bytes: usize,
    frees: u64,
    /// Bytes of large blocks handed out and not yet freed.
    live: usize,
    /// The most `live` has been.
    peak_live: usize,
}

impl Blocks {
    /// Takes out the held block freed longest ago, if any.
    fn take_oldest(&mut self) -> Option<Slot> {
        self.take_by(|s| std::cmp::Reverse(s.freed_at))
    }

    /// Takes out the held block freed last, if any.
    fn take_newest(&mut self) -> Option<Slot> {
        self.take_by(|s| s.freed_at)
    }

    /// Takes out the held block with the largest `key`.
    fn take_by<K: Ord>(&mut self, key: impl Fn(&Slot) -> K) -> Option<Slot> {
        let chosen = self
            .slots
            .iter_mut()
            .filter(|s| s.address != 0)
            .max_by_key(|s| key(s))?;
        let slot = *chosen;
        *chosen = EMPTY;
        self.bytes -= slot.size;
        Some(slot)
    }
}

/// Blocks taken out of the pool under its lock, given back to the inner allocator after it.
struct Evicted {
    blocks: [Slot; POOL_SLOTS],
    count: usize,
}

impl Evicted {
    const NONE: Evicted = Evicted {
        blocks: [EMPTY; POOL_SLOTS],
        count: 0,
    };

    fn push(&mut self, slot: Slot) {
        self.blocks[self.count] = slot;
        self.count += 1;
    }
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
    /// Bytes of large blocks in use now.
    pub live_bytes: usize,
    /// The most bytes of large blocks ever in use at once.
    pub peak_live_bytes: usize,
}

/// `inner` with a pool of its large blocks; see the crate's documentation.
pub struct PooledAllocator<A> {
    inner: A,
    blocks: Mutex<Blocks>,
    /// The byte budget, [`BUDGET_UNSET`] until the first large free reads `ALEXNET_POOL_MB`.
    budget: AtomicUsize,
    /// 1: held blocks stay within the peak of the blocks in use (`ALEXNET_POOL_WITHIN_PEAK`);
    /// [`WITHIN_PEAK_UNSET`] until the first large request reads it.
    within_peak: AtomicU8,
    hits: std::sync::atomic::AtomicU64,
    misses: std::sync::atomic::AtomicU64,
}

impl<A> PooledAllocator<A> {
    /// A pool whose budget comes from `ALEXNET_POOL_MB` (default [`DEFAULT_POOL_MB`]), and its
    /// rule for the peak from `ALEXNET_POOL_WITHIN_PEAK` (default off).
    pub const fn new(inner: A) -> Self {
        Self::with_policy(inner, BUDGET_UNSET, WITHIN_PEAK_UNSET)
    }

    /// A pool of at most `budget` bytes, whatever the environment says, without the peak rule.
    pub const fn with_budget(inner: A, budget: usize) -> Self {
        Self::with_policy(inner, budget, 0)
    }

    /// A pool of at most `budget` bytes whose held blocks stay within the peak of the blocks in
    /// use, whatever the environment says.
    pub const fn within_peak(inner: A, budget: usize) -> Self {
        Self::with_policy(inner, budget, 1)
    }

    const fn with_policy(inner: A, budget: usize, within_peak: u8) -> Self {
        PooledAllocator {
            inner,
            blocks: Mutex::new(Blocks {
                slots: [EMPTY; POOL_SLOTS],
                bytes: 0,
                frees: 0,
                live: 0,
                peak_live: 0,
            }),
            budget: AtomicUsize::new(budget),
            within_peak: AtomicU8::new(within_peak),
            hits: std::sync::atomic::AtomicU64::new(0),
            misses: std::sync::atomic::AtomicU64::new(0),
        }
    }

    pub fn stats(&self) -> PoolStats {
        let blocks = self.lock();
        PoolStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            held_bytes: blocks.bytes,
            live_bytes: blocks.live,
            peak_live_bytes: blocks.peak_live,
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

    fn within_peak_rule(&self) -> bool {
        let rule = self.within_peak.load(Ordering::Relaxed);
        if rule != WITHIN_PEAK_UNSET {
            return rule == 1;
        }
        // As for the budget: std::env::var allocates small blocks only.
        let on = std::env::var("ALEXNET_POOL_WITHIN_PEAK")
            .is_ok_and(|v| matches!(v.trim(), "1" | "true" | "yes"));
        self.within_peak.store(on as u8, Ordering::Relaxed);
        on
    }

    /// A held block of exactly this layout, taken out of the pool; or, when there is none (and
    /// under the peak rule), the held blocks to give back so that the new block keeps the
    /// process within its largest working set so far. Either way the request counts as in use
    /// from here on.
    fn reserve(&self, layout: Layout, evicted: &mut Evicted) -> Option<*mut u8> {
        let size = layout.size();
        let within_peak = self.within_peak_rule();
        let mut blocks = self.lock();
        blocks.live += size;
        // The block freed last: the likeliest still in the cache.
        let held = blocks
            .slots
            .iter_mut()
            .filter(|s| s.address != 0 && s.size == size && s.align == layout.align())
            .max_by_key(|s| s.freed_at);
        if let Some(slot) = held {
            let address = slot.address;
            *slot = EMPTY;
            blocks.bytes -= size;
            return Some(address as *mut u8);
        }
        // A step frees its blocks in about the order it will ask for them again next step: the
        // block freed last is the one needed last, so it goes back first.
        while within_peak && blocks.live + blocks.bytes > blocks.peak_live {
            match blocks.take_newest() {
                Some(slot) => evicted.push(slot),
                None => break,
            }
        }
        blocks.peak_live = blocks.peak_live.max(blocks.live);
        None
    }

    /// A request of `size` bytes that the inner allocator refused is not in use after all.
    fn unreserve(&self, size: usize) {
        self.lock().live -= size;
    }
}

impl<A: GlobalAlloc> PooledAllocator<A> {
    /// Gives `evicted` back to the inner allocator.
    fn release(&self, evicted: &Evicted) {
        for block in &evicted.blocks[..evicted.count] {
            // SAFETY: the slot recorded the layout this block was allocated with.
            unsafe {
                self.inner.dealloc(
                    block.address as *mut u8,
                    Layout::from_size_align_unchecked(block.size, block.align),
                )
            };
        }
    }

    /// A large block from the pool (`from_pool`: true) or from the inner allocator's `fresh`.
    unsafe fn large(&self, layout: Layout, fresh: impl FnOnce() -> *mut u8) -> (*mut u8, bool) {
        let mut evicted = Evicted::NONE;
        match self.reserve(layout, &mut evicted) {
            Some(block) => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                (block, true)
            }
            None => {
                self.release(&evicted);
                self.misses.fetch_add(1, Ordering::Relaxed);
                let block = fresh();
                if block.is_null() {
                    self.unreserve(layout.size());
                }
                (block, false)
            }
        }
    }
}

unsafe impl<A: GlobalAlloc> GlobalAlloc for PooledAllocator<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() < POOL_MIN_BYTES {
            return unsafe { self.inner.alloc(layout) };
        }
        unsafe { self.large(layout, || self.inner.alloc(layout)).0 }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() < POOL_MIN_BYTES {
            return unsafe { self.inner.alloc_zeroed(layout) };
        }
        let (block, from_pool) = unsafe { self.large(layout, || self.inner.alloc_zeroed(layout)) };
        if from_pool {
            // Zeroing mapped memory in place is cheaper than faulting in fresh zeroed pages.
            unsafe { block.write_bytes(0, layout.size()) };
        }
        block
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let size = layout.size();
        if size < POOL_MIN_BYTES {
            return unsafe { self.inner.dealloc(ptr, layout) };
        }
        let budget = self.budget();
        let mut evicted = Evicted::NONE;
        let held = {
            let mut blocks = self.lock();
            blocks.live -= size;
            if size <= budget {
                // Room for it: the budget, and a free slot.
                while blocks.bytes + size > budget || blocks.slots.iter().all(|s| s.address != 0) {
                    let oldest = blocks.take_oldest().expect("a full pool holds a block");
                    evicted.push(oldest);
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
            size <= budget
        };
        self.release(&evicted);
        if !held {
            unsafe { self.inner.dealloc(ptr, layout) };
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
            let x = pool.alloc(layout(5));
            a.write_bytes(7, 4 * MB);
            pool.dealloc(x, layout(5));
            pool.dealloc(a, layout(4));
            assert_eq!(pool.stats().held_bytes, 9 * MB);
            // A request of another size does not get it.
            let b = pool.alloc(layout(5));
            assert_eq!(b, x);
            // One of its size does, and zeroed when asked for zeros.
            let c = pool.alloc_zeroed(layout(4));
            assert_eq!(c, a);
            let bytes = std::slice::from_raw_parts(c, 4 * MB);
            assert!(bytes.iter().all(|&v| v == 0));
            assert_eq!(pool.stats().hits, 2);
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
    fn under_the_peak_rule_held_blocks_never_take_the_process_past_its_largest_working_set() {
        let pool = PooledAllocator::within_peak(System, 64 * MB);
        unsafe {
            let first = [pool.alloc(layout(4)), pool.alloc(layout(4))];
            pool.dealloc(first[0], layout(4));
            pool.dealloc(first[1], layout(4));
            assert_eq!(pool.stats().peak_live_bytes, 8 * MB);
            // 3 MB in use beside 8 held would be 11 > 8: the block freed last goes back.
            let other = pool.alloc(layout(3));
            let stats = pool.stats();
            assert_eq!((stats.live_bytes, stats.held_bytes), (3 * MB, 4 * MB));
            assert_eq!(
                pool.alloc(layout(4)),
                first[0],
                "the one freed first is kept"
            );
            // 3 + 4 in use, nothing held: a 6 MB request is a new peak and gives back nothing.
            let big = pool.alloc(layout(6));
            let stats = pool.stats();
            assert_eq!((stats.peak_live_bytes, stats.held_bytes), (13 * MB, 0));
            for (p, mb) in [(other, 3), (first[0], 4), (big, 6)] {
                pool.dealloc(p, layout(mb));
            }
            assert_eq!(pool.stats().live_bytes, 0);
            assert_eq!(pool.stats().held_bytes, 13 * MB);
        }
        // Without the rule, the same 3 MB request leaves both 4 MB blocks held.
        let pool = PooledAllocator::with_budget(System, 64 * MB);
        unsafe {
            let first = [pool.alloc(layout(4)), pool.alloc(layout(4))];
            pool.dealloc(first[0], layout(4));
            pool.dealloc(first[1], layout(4));
            let other = pool.alloc(layout(3));
            assert_eq!(pool.stats().held_bytes, 8 * MB);
            pool.dealloc(other, layout(3));
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
