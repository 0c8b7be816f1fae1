//! What the kernel examples share: the binary's allocator, deterministic inputs and a timer.

// Not every example uses every helper.
#![allow(dead_code)]

use std::time::Instant;

/// The binary's allocator, so that repeated buffers cost what they cost in training.
#[global_allocator]
static ALLOCATOR: alexnet_alloc::PooledAllocator<mimalloc::MiMalloc> =
    alexnet_alloc::PooledAllocator::new(mimalloc::MiMalloc);

/// Deterministic values in -1..1.
pub fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

/// The best of 10 timed calls of `pass`, in milliseconds.
pub fn best_ms<T>(mut pass: impl FnMut() -> T) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..10 {
        let started = Instant::now();
        std::hint::black_box(pass());
        best = best.min(started.elapsed().as_secs_f64() * 1e3);
    }
    best
}
