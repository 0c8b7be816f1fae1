//! Max pooling without padding (Section 3.4's overlapping pooling: 3x3 windows, stride 2) as
//! direct loops over the CPU's memory, with the position of each window's maximum kept for the
//! backward pass, which sends each output's gradient to that one input.
//!
//! A window's rows are first reduced column by column (contiguous, so the compiler vectorises it,
//! compiled for the CPU's widest vectors: `vectorized.rs`), then the windows along the row read
//! those column maxima.

use rayon::prelude::*;

use crate::parallel_zeros::zeros;
use crate::vectorized::vectorized;

/// A pooling window (`[height, width]`) and the step it moves by: the one parameter struct of
/// the operation, from the layer through `pool_op.rs` to these loops. Section 3.4's overlapping
/// pooling is a 3x3 window moved by 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolWindow {
    pub size: [usize; 2],
    pub stride: [usize; 2],
}

impl PoolWindow {
    /// `[height, width]` of the output on an `input` plane, without padding.
    pub fn pooled_size(&self, input: [usize; 2]) -> [usize; 2] {
        [
            (input[0] - self.size[0]) / self.stride[0] + 1,
            (input[1] - self.size[1]) / self.stride[1] + 1,
        ]
    }
}

/// Whether `v` replaces the window's maximum so far, `m`: when larger, or a NaN over a number.
/// Written so that the selects using it compile without branches: with `&&` for the `&` (or `|`
/// for the `||`) the compiler branched again and pool1 took 15.7 ms again.
#[inline(always)]
fn takes_over(v: f32, m: f32) -> bool {
    v > m || (v.is_nan() & !m.is_nan())
}

/// The maxima of every window of every plane, and each one's position in its plane (as i32, the
/// integer tensors flex keeps them in; a plane of over 2^31 pixels would not fit).
/// `input` is `planes` contiguous planes of `size = [height, width]`.
pub fn max_pool_forward(
    input: &[f32],
    size: [usize; 2],
    window: PoolWindow,
) -> (Vec<f32>, Vec<i32>) {
    let [height, width] = size;
    let [ho, wo] = window.pooled_size(size);
    debug_assert_eq!(input.len() % (height * width), 0, "whole planes");
    let planes = input.len() / (height * width);
    let mut output = zeros::<f32>(planes * ho * wo);
    let mut positions = zeros::<i32>(planes * ho * wo);
    output
        .par_chunks_mut(ho * wo)
        .zip(positions.par_chunks_mut(ho * wo))
        .zip(input.par_chunks(height * width))
        .for_each_init(
            || ColumnMaxima::new(ho, width),
            |columns, ((out, at), plane)| {
                vectorized(
                    #[inline(always)]
                    || columns.pool_plane(plane, size, window, (out, at)),
                )
            },
        );
    (output, positions)
}

/// A plane pooled in two steps: the maxima over each window's rows, column by column, and where
/// each is (its index in the plane); then the maxima along the rows of those. For windows moved
/// by 2 along the rows (the paper's 3x3 at stride 2, and 2x2 at 2) the second step runs over all
/// the rows' columns as one array, with rows of an even number of columns (a padding column
/// where the plane's width is odd), 16 windows at a time (`pool_pairs_avx512`). pool1 at batch
/// 128 (`examples/norm_pool`): 7.75 ms with one loop of windows per row (29be5b1), 1.3-1.6 so.
#[derive(Clone)]
struct ColumnMaxima {
    /// `[rows of windows, row]`, rows `row` long.
    max: Vec<f32>,
    at: Vec<i32>,
    row: usize,
    /// The windows along the rows, `row / 2` a row, of which the first `wo` are the output's.
    pooled: Vec<f32>,
    pooled_at: Vec<i32>,
}

impl ColumnMaxima {
    fn new(rows: usize, width: usize) -> Self {
        let row = width.next_multiple_of(2);
        // Whole vectors of 16 windows: the last one's unused lanes read up to 2 x 16 + 2 values
        // past the last window (whose own third column is one past the last row).
        let windows = (rows * row / 2).next_multiple_of(16);
        let columns = 2 * windows + 2;
        ColumnMaxima {
            max: vec![0.0; columns],
            at: vec![0; columns],
            row,
            pooled: vec![0.0; windows],
            pooled_at: vec![0; windows],
        }
    }

    /// `out` and `at`: the maxima of `plane`'s windows and their positions, row by row.
    #[inline(always)]
    fn pool_plane(
        &mut self,
        plane: &[f32],
        size: [usize; 2],
        window: PoolWindow,
        (out, at): (&mut [f32], &mut [i32]),
    ) {
        let width = size[1];
        let [rows, wo] = window.pooled_size(size);
        for oh in 0..rows {
            let top = oh * window.stride[0];
            let columns = oh * self.row..oh * self.row + width;
            reduce_rows(
                &mut self.max[columns.clone()],
                &mut self.at[columns],
                plane,
                width,
                top..top + window.size[0],
            );
        }
        if window.stride[1] == 2 && window.size[1] <= 3 {
            let half = self.row / 2;
            let n = rows * half;
            if window.size[1] == 3 {
                self.pool_pairs::<3>(n);
            } else {
                self.pool_pairs::<2>(n);
            }
            for oh in 0..rows {
                let from = oh * half..oh * half + wo;
                out[oh * wo..][..wo].copy_from_slice(&self.pooled[from.clone()]);
                at[oh * wo..][..wo].copy_from_slice(&self.pooled_at[from]);
            }
        } else {
            for oh in 0..rows {
                let (max, max_at) = (&self.max[oh * self.row..], &self.at[oh * self.row..]);
                for ow in 0..wo {
                    let left = ow * window.stride[1];
                    let (best, best_at) = best_column(max, max_at, left, window.size[1]);
                    out[oh * wo + ow] = best;
                    at[oh * wo + ow] = best_at;
                }
            }
        }
    }

    /// `pooled[i]` = the best of columns `2i`, `2i + 1` (and `2i + 2` for a window 3 wide) of
    /// the column maxima, a tie to the leftmost.
    #[inline(always)]
    fn pool_pairs<const KERNEL: usize>(&mut self, n: usize) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX512F; `new` sized the buffers for whole vectors.
            return unsafe { self.pool_pairs_avx512::<KERNEL>(n) };
        }
        self.pool_pairs_portable::<KERNEL>(n);
    }

    #[inline(always)]
    fn pool_pairs_portable<const KERNEL: usize>(&mut self, n: usize) {
        let (max, max_at) = (&self.max[..2 * n + 1], &self.at[..2 * n + 1]);
        let (pooled, pooled_at) = (&mut self.pooled[..n], &mut self.pooled_at[..n]);
        for i in 0..n {
            (pooled[i], pooled_at[i]) = best_column(max, max_at, 2 * i, KERNEL);
        }
    }

    /// [`ColumnMaxima::pool_pairs`] 16 windows an iteration: the even and odd columns of 32
    /// split by two permutes (the compiler leaves a stride-2 loop scalar, with branches).
    ///
    /// # Safety
    ///
    /// The CPU has AVX512F.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn pool_pairs_avx512<const KERNEL: usize>(&mut self, n: usize) {
        use std::arch::x86_64::*;
        let vectors = n.div_ceil(16);
        assert!(
            self.max.len() >= 32 * vectors + 2 && self.pooled.len() >= 16 * vectors,
            "whole vectors"
        );
        let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        let odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
        let (max, at) = (self.max.as_ptr(), self.at.as_ptr());
        // `value` takes over `best` where larger, or a NaN over a number: `takes_over`.
        let takes_over = |value: __m512, best: __m512| {
            _mm512_cmp_ps_mask::<_CMP_GT_OQ>(value, best)
                | (_mm512_cmp_ps_mask::<_CMP_UNORD_Q>(value, value)
                    & _mm512_cmp_ps_mask::<_CMP_ORD_Q>(best, best))
        };
        for v in 0..vectors {
            let from = 32 * v;
            // SAFETY: from + 2 + 32 <= max.len() = at.len() (asserted above).
            let columns = |offset: usize, lanes: __m512i| unsafe {
                let (low, high) = (
                    _mm512_loadu_ps(max.add(from + offset)),
                    _mm512_loadu_ps(max.add(from + offset + 16)),
                );
                let (low_at, high_at) = (
                    _mm512_loadu_si512(at.add(from + offset).cast()),
                    _mm512_loadu_si512(at.add(from + offset + 16).cast()),
                );
                (
                    _mm512_permutex2var_ps(low, lanes, high),
                    _mm512_permutex2var_epi32(low_at, lanes, high_at),
                )
            };
            let (mut best, mut best_at) = columns(0, even);
            let (next, next_at) = columns(0, odd);
            let take = takes_over(next, best);
            best = _mm512_mask_blend_ps(take, best, next);
            best_at = _mm512_mask_blend_epi32(take, best_at, next_at);
            if KERNEL == 3 {
                let (next, next_at) = columns(2, even);
                let take = takes_over(next, best);
                best = _mm512_mask_blend_ps(take, best, next);
                best_at = _mm512_mask_blend_epi32(take, best_at, next_at);
            }
            // SAFETY: 16 * v + 16 <= pooled.len() = pooled_at.len() (asserted above).
            unsafe {
                _mm512_storeu_ps(self.pooled.as_mut_ptr().add(16 * v), best);
                _mm512_storeu_si512(self.pooled_at.as_mut_ptr().add(16 * v).cast(), best_at);
            }
        }
    }
}

/// The best of the `width` column maxima from `left` on, and its position: a tie goes to the
/// leftmost column.
#[inline(always)]
fn best_column(max: &[f32], at: &[i32], left: usize, width: usize) -> (f32, i32) {
    let (mut best, mut best_at) = (max[left], at[left]);
    for x in left + 1..left + width {
        let take = takes_over(max[x], best);
        best = if take { max[x] } else { best };
        best_at = if take { at[x] } else { best_at };
    }
    (best, best_at)
}

/// `max`/`at`: the maxima of `plane`'s `rows`, column by column, and their positions: a tie goes
/// to the top row; a NaN wins over any number.
#[inline(always)]
fn reduce_rows(
    max: &mut [f32],
    at: &mut [i32],
    plane: &[f32],
    width: usize,
    rows: std::ops::Range<usize>,
) {
    let top = rows.start;
    max.copy_from_slice(&plane[top * width..][..width]);
    for (x, a) in at.iter_mut().enumerate() {
        *a = (top * width + x) as i32;
    }
    for row in rows.skip(1) {
        let line = &plane[row * width..][..width];
        let base = (row * width) as i32;
        for (x, ((m, a), &v)) in max.iter_mut().zip(at.iter_mut()).zip(line).enumerate() {
            // Selects, not branches: on ReLU maps the comparison is a coin toss a branch
            // predictor loses (pool1 at batch 128: 15.7 ms with `if`, 7.2 ms so).
            let take = takes_over(v, *m);
            *m = if take { v } else { *m };
            *a = if take { base + x as i32 } else { *a };
        }
    }
}

/// The input's gradient: each output's gradient added at its window's maximum.
pub fn max_pool_backward(
    output_grad: &[f32],
    positions: &[i32],
    size: [usize; 2],
    pooled: [usize; 2],
) -> Vec<f32> {
    let plane = size[0] * size[1];
    let pooled_plane = pooled[0] * pooled[1];
    let planes = output_grad.len() / pooled_plane;
    let mut input_grad = zeros::<f32>(planes * plane);
    input_grad
        .par_chunks_mut(plane)
        .zip(output_grad.par_chunks(pooled_plane))
        .zip(positions.par_chunks(pooled_plane))
        .for_each(|((grad_in, grad_out), at)| {
            for (&g, &a) in grad_out.iter().zip(at) {
                grad_in[a as usize] += g;
            }
        });
    input_grad
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_windows_take_their_maxima_and_route_gradients_back() {
        // Two planes of 5x7, 3x3 windows, stride 2: 2x3 outputs per plane, windows share edges.
        let size = [5, 7];
        let window = PoolWindow {
            size: [3, 3],
            stride: [2, 2],
        };
        let input: Vec<f32> = (0..70)
            .map(|i| ((i * 37 + 11) % 70) as f32 - 35.0)
            .collect();
        let (output, positions) = max_pool_forward(&input, size, window);
        let pooled = window.pooled_size(size);
        assert_eq!(pooled, [2, 3]);
        for p in 0..2 {
            for oh in 0..2 {
                for ow in 0..3 {
                    let window = (0..3).flat_map(|i| (0..3).map(move |j| (oh * 2 + i, ow * 2 + j)));
                    let (y, x) = window
                        .max_by(|a, b| {
                            let v = |(y, x): (usize, usize)| input[p * 35 + y * 7 + x];
                            v(*a).total_cmp(&v(*b))
                        })
                        .unwrap();
                    let o = p * 6 + oh * 3 + ow;
                    assert_eq!(output[o], input[p * 35 + y * 7 + x]);
                    assert_eq!(positions[o] as usize, y * 7 + x);
                }
            }
        }
        // Backward: gradient o + 1 of each output lands on its maximum; a shared maximum sums.
        let grad: Vec<f32> = (0..12).map(|o| o as f32 + 1.0).collect();
        let input_grad = max_pool_backward(&grad, &positions, size, pooled);
        for p in 0..2 {
            for i in 0..35 {
                let want: f32 = (0..6)
                    .filter(|&o| positions[p * 6 + o] as usize == i)
                    .map(|o| grad[p * 6 + o])
                    .sum();
                assert_eq!(input_grad[p * 35 + i], want, "plane {p} input {i}");
            }
        }
        assert_eq!(input_grad.iter().sum::<f32>(), grad.iter().sum::<f32>());
    }

    /// The definition: every window scanned column by column, each column top to bottom, the
    /// first strict maximum kept (so a tie goes to the leftmost column, then the top row).
    fn pooled_by_definition(
        input: &[f32],
        [height, width]: [usize; 2],
        window: PoolWindow,
    ) -> (Vec<f32>, Vec<i32>) {
        let [ho, wo] = window.pooled_size([height, width]);
        let (mut output, mut positions) = (vec![], vec![]);
        for plane in input.chunks_exact(height * width) {
            for oh in 0..ho {
                for ow in 0..wo {
                    let (top, left) = (oh * window.stride[0], ow * window.stride[1]);
                    let mut best = (f32::NEG_INFINITY, -1);
                    for x in left..left + window.size[1] {
                        for y in top..top + window.size[0] {
                            let v = plane[y * width + x];
                            if best.1 < 0 || takes_over(v, best.0) {
                                best = (v, (y * width + x) as i32);
                            }
                        }
                    }
                    output.push(best.0);
                    positions.push(best.1);
                }
            }
        }
        (output, positions)
    }

    #[test]
    fn every_window_shape_and_plane_width_pools_as_the_definition() {
        // Stride 2 along the rows (the vector path) on even and odd widths, short and long rows
        // of windows and more windows than a vector holds; stride 1 (the general path).
        let shapes = [
            ([28, 28], [3, 3], [2, 2]),
            ([27, 27], [3, 3], [2, 2]),
            ([13, 13], [3, 3], [2, 2]),
            ([5, 7], [3, 3], [2, 2]),
            ([8, 8], [2, 2], [2, 2]),
            ([7, 9], [2, 2], [2, 2]),
            ([9, 11], [3, 3], [1, 1]),
            ([10, 12], [3, 2], [2, 3]),
        ];
        for (size, kernel, stride) in shapes {
            let window = PoolWindow {
                size: kernel,
                stride,
            };
            let n = 3 * size[0] * size[1];
            // Distinct values, then coarse ones with many ties.
            for levels in [n, 5] {
                let input: Vec<f32> = (0..n)
                    .map(|i| ((i * 7919 + 13) % n % levels) as f32 - 2.0)
                    .collect();
                let got = max_pool_forward(&input, size, window);
                let want = pooled_by_definition(&input, size, window);
                assert_eq!(got, want, "{size:?} window {kernel:?} stride {stride:?}");
            }
        }
    }

    #[test]
    fn the_vector_pairs_step_agrees_with_the_portable_one() {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            // Three rows of 30 columns: 45 windows, the last vector a third full; NaNs and ties.
            let mut columns = ColumnMaxima::new(3, 30);
            let values = columns.max.len();
            for (i, (m, a)) in columns.max.iter_mut().zip(&mut columns.at).enumerate() {
                *m = match i % 11 {
                    3 => f32::NAN,
                    k => (k % 4) as f32,
                };
                *a = i as i32;
            }
            let n = 45;
            for kernel in [2, 3] {
                let mut portable = columns.clone();
                match kernel {
                    2 => {
                        portable.pool_pairs_portable::<2>(n);
                        unsafe { columns.pool_pairs_avx512::<2>(n) };
                    }
                    _ => {
                        portable.pool_pairs_portable::<3>(n);
                        unsafe { columns.pool_pairs_avx512::<3>(n) };
                    }
                }
                assert!(values > 2 * n);
                assert_eq!(portable.pooled_at[..n], columns.pooled_at[..n], "{kernel}");
                let bits = |v: &[f32]| v[..n].iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&portable.pooled), bits(&columns.pooled), "{kernel}");
            }
        }
    }

    #[test]
    fn a_nan_wins_its_windows_and_ties_go_to_the_first_column_then_row() {
        // One 3x5 plane, 3x3 windows at stride 2: windows over columns 0..3 and 2..5.
        let window = PoolWindow {
            size: [3, 3],
            stride: [2, 2],
        };
        #[rustfmt::skip]
        let input = [
            1.0, 7.0, 2.0, 0.0, 0.0,
            7.0, 7.0, 0.0, f32::NAN, 0.0,
            0.0, 0.0, 3.0, 9.0, 0.0,
        ];
        let (output, positions) = max_pool_forward(&input, [3, 5], window);
        // The first window's maximum 7 is at (0, 1), (1, 0) and (1, 1): column 0 comes first.
        assert_eq!(output[0], 7.0);
        assert_eq!(positions[0], 5);
        // The second window holds a NaN (at (1, 3)) beside the 9: the NaN wins.
        assert!(output[1].is_nan());
        assert_eq!(positions[1], 8);
    }
}
