//! Zeroed output buffers, zeroed by the rayon pool.
//!
//! A pass's output comes from the allocator's pool of large blocks (`alexnet-alloc`), which hands
//! back last step's block as it was, so `vec![0.0; n]` zeroes it with one `memset` on the calling
//! thread while the pool's threads wait: 3.6% of an alexnet-cifar step in bf16, all of it on the
//! main thread (`perf record`, `docs/results.md`), with both cores' worth of work stopped behind it.

use std::mem::MaybeUninit;

use rayon::prelude::*;

/// Values a task zeroes: large enough that the tasks cost nothing beside their writes.
const CHUNK: usize = 1 << 16;

/// `vec![T::default(); len]`, the values written by the pool's threads `CHUNK` at a time.
pub fn zeros<T: Copy + Default + Send + Sync>(len: usize) -> Vec<T> {
    if len <= CHUNK {
        return vec![T::default(); len];
    }
    zeroed(Vec::with_capacity(len), len)
}

/// `values` emptied and then `len` zeros in its place, whatever its memory held.
fn zeroed<T: Copy + Default + Send + Sync>(mut values: Vec<T>, len: usize) -> Vec<T> {
    values.clear();
    values.reserve(len);
    values.spare_capacity_mut()[..len]
        .par_chunks_mut(CHUNK)
        .for_each(|chunk| chunk.fill(MaybeUninit::new(T::default())));
    // SAFETY: the first `len` values were all written just above.
    unsafe { values.set_len(len) };
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_is_zero_whatever_the_block_held() {
        // The block's old values stay in its memory (a fresh allocation could be zero already,
        // from the OS, and hide a value left unwritten).
        for len in [0, 5, CHUNK, CHUNK + 1, 3 * CHUNK + 17] {
            let values = zeroed(vec![7.5f32; len], len);
            assert_eq!(values.len(), len);
            assert!(values.iter().all(|&v| v == 0.0), "length {len}");
            let positions = zeroed(vec![-3i32; len + 9], len);
            assert_eq!(positions.len(), len);
            assert!(positions.iter().all(|&v| v == 0), "length {len}");
            assert_eq!(zeros::<f32>(len), vec![0.0; len]);
        }
    }
}
