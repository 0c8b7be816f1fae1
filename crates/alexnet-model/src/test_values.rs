//! Deterministic test inputs the kernel tests share.

/// `n` values in -1..1, spread by a multiplicative hash of the index and `seed`.
pub fn values(n: usize, seed: u32) -> Vec<f32> {
    (0..n)
        .map(|i| {
            let v = (i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) >> 8;
            (v % 2001) as f32 / 1000.0 - 1.0
        })
        .collect()
}
