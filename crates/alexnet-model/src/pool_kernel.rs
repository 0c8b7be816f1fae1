//! Max pooling without padding (Section 3.4's overlapping pooling: 3x3 windows, stride 2) as
//! direct loops over the CPU's memory, with the position of each window's maximum kept for the
//! backward pass, which sends each output's gradient to that one input.
//!
//! A window's rows are first reduced column by column (contiguous, so the compiler vectorises it),
//! then the windows along the row read those column maxima.

use rayon::prelude::*;

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
    let PoolWindow {
        size: kernel,
        stride,
    } = window;
    debug_assert_eq!(input.len() % (height * width), 0, "whole planes");
    let planes = input.len() / (height * width);
    let mut output = vec![0.0f32; planes * ho * wo];
    let mut positions = vec![0i32; planes * ho * wo];
    output
        .par_chunks_mut(ho * wo)
        .zip(positions.par_chunks_mut(ho * wo))
        .zip(input.par_chunks(height * width))
        .for_each_init(
            || (vec![0.0f32; width], vec![0i32; width]),
            |(column_max, column_at), ((out, at), plane)| {
                for oh in 0..ho {
                    let top = oh * stride[0];
                    // Column maxima over the window's rows, then the maximum of those: a tie
                    // goes to the leftmost column, then to its top row (PyTorch's row-major scan
                    // can pick another of equal value); a NaN wins over any number.
                    column_max.copy_from_slice(&plane[top * width..][..width]);
                    for (x, a) in column_at.iter_mut().enumerate() {
                        *a = (top * width + x) as i32;
                    }
                    for row in top + 1..top + kernel[0] {
                        let line = &plane[row * width..][..width];
                        let base = (row * width) as i32;
                        for (x, ((m, a), &v)) in column_max
                            .iter_mut()
                            .zip(column_at.iter_mut())
                            .zip(line)
                            .enumerate()
                        {
                            // Selects, not branches: on ReLU maps the comparison is a coin toss
                            // a branch predictor loses (pool1 at batch 128: 15.7 ms with `if`,
                            // 7.2 ms so, `examples/norm_pool`).
                            let take = takes_over(v, *m);
                            *m = if take { v } else { *m };
                            *a = if take { base + x as i32 } else { *a };
                        }
                    }
                    let out_row = &mut out[oh * wo..][..wo];
                    let at_row = &mut at[oh * wo..][..wo];
                    for ow in 0..wo {
                        let left = ow * stride[1];
                        let (mut best, mut best_at) = (column_max[left], column_at[left]);
                        for x in left + 1..left + kernel[1] {
                            let v = column_max[x];
                            let take = takes_over(v, best);
                            best = if take { v } else { best };
                            best_at = if take { column_at[x] } else { best_at };
                        }
                        out_row[ow] = best;
                        at_row[ow] = best_at;
                    }
                }
            },
        );
    (output, positions)
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
    let mut input_grad = vec![0.0f32; planes * plane];
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
