//! What the integration tests share.

/// `len` deterministic values, uniform in -0.5..0.5 (a linear congruential generator: the tests'
/// inputs are the same on every run and every thread count).
pub fn values(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed;
    (0..len)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect()
}
