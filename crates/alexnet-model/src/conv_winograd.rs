//! Winograd's minimal filtering F(2x2, 3x3) (Lavin & Gray, 2016) for the 3x3, stride-1,
//! padding-1 convolutions (conv3-5, half of the network's multiply-adds).
//!
//! Each 2x2 block of outputs of one map is computed from the 4x4 input tile under it as
//! `Y = A^T [ (G g G^T) . (B^T d B) ] A`: sixteen products per (output, input) channel pair
//! instead of thirty-six, 2.25x fewer. Over a batch, the sixteen elementwise products become
//! sixteen matrix products, one per tile position `xi`:
//!
//! ```text
//! U[xi] (Cout/g x Cin/g) = (G g G^T)[xi] of every filter
//! V[xi] (Cin/g x T)      = (B^T d B)[xi] of every input tile (T = batch x tiles per map)
//! M[xi] (Cout/g x T)     = U[xi] . V[xi]  (the sixteen products shared among the threads)
//! Y                      = A^T M A, tile by tile
//! ```
//!
//! The input gradient of the same convolution is again a 3x3, stride-1, padding-1 convolution
//! (of the output gradient with the filters flipped and their channel axes swapped), so it runs
//! through the same kernel. The transforms add and subtract values of the tile: the error
//! against the direct sum is a few units in the last place of the largest terms (measured in
//! the tests below and in `docs/results.md`).

use rayon::prelude::*;

use crate::conv_im2col::{self, ConvGeometry};
use crate::parallel_zeros::zeros;

/// Whether the convolution is one this kernel computes: 3x3, stride 1, padding 1, f32.
pub fn applies(geometry: &ConvGeometry) -> bool {
    let p = geometry.params;
    geometry.weight[2..] == [3, 3] && p.stride == [1, 1] && p.padding == [1, 1] && !p.bf16
}

/// Whether the batch has tiles enough for Winograd to beat im2col: its sixteen products are
/// `tiles` wide, and narrow ones run the matrix kernel far below its rate. On alexnet-owt's
/// conv3-5 (13x13 maps, 49 tiles an image; `examples/winograd.rs`) batch 1 is 0.4-0.5x of
/// im2col, batch 8 0.6-1.1x, batch 32 (1,568 tiles) faster on every pass.
pub fn pays(geometry: &ConvGeometry) -> bool {
    const MIN_TILES: usize = 1024;
    let [batch, _, height, width] = geometry.input;
    batch * height.div_ceil(2) * width.div_ceil(2) >= MIN_TILES
}

/// `G v`, `G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1]`: one column (then one row) of a filter.
fn g_times([g0, g1, g2]: [f32; 3]) -> [f32; 4] {
    [g0, 0.5 * (g0 + g1 + g2), 0.5 * (g0 - g1 + g2), g2]
}

/// `B^T v`, `B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]`.
fn bt_times([d0, d1, d2, d3]: [f32; 4]) -> [f32; 4] {
    [d0 - d2, d1 + d2, d2 - d1, d1 - d3]
}

/// `A^T v`, `A^T = [1 1 1 0; 0 1 -1 -1]`.
fn at_times([m0, m1, m2, m3]: [f32; 4]) -> [f32; 2] {
    [m0 + m1 + m2, m1 - m2 - m3]
}

/// `G g G^T`: a 3x3 filter as the 4x4 tile it multiplies (`G` down the columns, then along the
/// rows), row-major.
fn filter_transform(g: &[f32]) -> [f32; 16] {
    let columns: [[f32; 4]; 3] = std::array::from_fn(|c| g_times([g[c], g[3 + c], g[6 + c]]));
    let mut u = [0.0f32; 16];
    for r in 0..4 {
        u[4 * r..4 * r + 4].copy_from_slice(&g_times([
            columns[0][r],
            columns[1][r],
            columns[2][r],
        ]));
    }
    u
}

/// `B^T d B` of a 4x4 input tile, row-major.
fn input_transform(d: &[[f32; 4]; 4]) -> [f32; 16] {
    let columns: [[f32; 4]; 4] = std::array::from_fn(|c| bt_times(d.map(|row| row[c])));
    let mut v = [0.0f32; 16];
    for r in 0..4 {
        v[4 * r..4 * r + 4].copy_from_slice(&bt_times(columns.map(|column| column[r])));
    }
    v
}

/// `A^T m A`: the 2x2 outputs of a tile.
fn output_transform(m: &[f32; 16]) -> [[f32; 2]; 2] {
    let columns: [[f32; 2]; 4] =
        std::array::from_fn(|c| at_times([m[c], m[4 + c], m[8 + c], m[12 + c]]));
    std::array::from_fn(|r| at_times(columns.map(|column| column[r])))
}

/// `conv2d(x, weight) + bias` for a convolution where [`applies`] holds: `[batch, Cout, H, W]`,
/// flattened (the output has the input's height and width).
pub fn conv2d_forward(
    x: &[f32],
    weight: &[f32],
    bias: &[f32],
    geometry: &ConvGeometry,
) -> Vec<f32> {
    debug_assert!(applies(geometry));
    let [batch, in_channels, height, width] = geometry.input;
    let [out_channels, group_in, _, _] = geometry.weight;
    let groups = geometry.params.groups;
    let group_out = out_channels / groups;
    let (tiles_down, tiles_across) = (height.div_ceil(2), width.div_ceil(2));
    let tiles_per_map = tiles_down * tiles_across;
    let tiles = batch * tiles_per_map;
    let plane = height * width;

    // U: [xi][Cout][Cin/g].
    let mut u = vec![0.0f32; 16 * out_channels * group_in];
    let filters: Vec<[f32; 16]> = weight.par_chunks_exact(9).map(filter_transform).collect();
    for (f, transformed) in filters.iter().enumerate() {
        for (xi, value) in transformed.iter().enumerate() {
            u[xi * out_channels * group_in + f] = *value;
        }
    }

    // V: [Cin][xi][T], each input channel's rows written by one thread.
    let mut v = zeros::<f32>(in_channels * 16 * tiles);
    v.par_chunks_mut(16 * tiles)
        .enumerate()
        .for_each(|(c, rows)| {
            for n in 0..batch {
                let map = &x[(n * in_channels + c) * plane..][..plane];
                for i in 0..tiles_down {
                    for j in 0..tiles_across {
                        // The 4x4 tile whose top-left input is (2i - 1, 2j - 1): padding 1.
                        let mut d = [[0.0f32; 4]; 4];
                        for (r, row) in d.iter_mut().enumerate() {
                            let y = (2 * i + r) as isize - 1;
                            if y < 0 || y >= height as isize {
                                continue;
                            }
                            let line = &map[y as usize * width..][..width];
                            for (s, value) in row.iter_mut().enumerate() {
                                let xx = (2 * j + s) as isize - 1;
                                if xx >= 0 && xx < width as isize {
                                    *value = line[xx as usize];
                                }
                            }
                        }
                        let t = (n * tiles_down + i) * tiles_across + j;
                        for (xi, value) in input_transform(&d).into_iter().enumerate() {
                            rows[xi * tiles + t] = value;
                        }
                    }
                }
            }
        });

    // M: [xi][Cout][T] = U[xi] . V[xi], group by group: each thread takes whole tile positions
    // and runs their products on one core (as im2col's threads take whole images).
    let mut m = zeros::<f32>(16 * out_channels * tiles);
    m.par_chunks_mut(out_channels * tiles)
        .enumerate()
        .for_each(|(xi, products)| {
            for g in 0..groups {
                let lhs = &u[xi * out_channels * group_in + g * group_out * group_in..]
                    [..group_out * group_in];
                let rhs = &v[g * group_in * 16 * tiles + xi * tiles..];
                let dst = &mut products[g * group_out * tiles..][..group_out * tiles];
                // SAFETY: U's rows (stride Cin/g) and M's (stride T) are inside their slices
                // (sliced to size above); V's last row read, (Cin/g - 1) * 16 T + T, is too.
                assert!((group_in - 1) * 16 * tiles + tiles <= rhs.len());
                unsafe {
                    gemm::gemm(
                        group_out,
                        tiles,
                        group_in,
                        dst.as_mut_ptr(),
                        1,
                        tiles as isize,
                        false,
                        lhs.as_ptr(),
                        1,
                        group_in as isize,
                        rhs.as_ptr(),
                        1,
                        (16 * tiles) as isize,
                        0.0,
                        1.0,
                        false,
                        false,
                        false,
                        gemm::Parallelism::None,
                    );
                }
            }
        });

    // Y = A^T M A plus the bias, each map of the output (one image, one channel) written in
    // place by one thread.
    let mut output = zeros::<f32>(batch * out_channels * plane);
    output
        .par_chunks_mut(plane)
        .enumerate()
        .for_each(|(map_index, map)| {
            let (n, o) = (map_index / out_channels, map_index % out_channels);
            let rows: [&[f32]; 16] =
                std::array::from_fn(|xi| &m[(xi * out_channels + o) * tiles..][..tiles]);
            map.fill(bias[o]);
            for i in 0..tiles_down {
                for j in 0..tiles_across {
                    let t = (n * tiles_down + i) * tiles_across + j;
                    let tile: [f32; 16] = std::array::from_fn(|xi| rows[xi][t]);
                    for (r, values) in output_transform(&tile).iter().enumerate() {
                        let y = 2 * i + r;
                        for (s, value) in values.iter().enumerate() {
                            let xx = 2 * j + s;
                            if y < height && xx < width {
                                map[y * width + xx] += value;
                            }
                        }
                    }
                }
            }
        });
    output
}

/// `dX` of a convolution where [`applies`] holds: the forward pass of its flipped convolution
/// ([`conv_im2col::flipped`]: 3x3, stride 1, padding 1 again) through [`conv2d_forward`].
pub fn conv2d_input_grad(weight: &[f32], output_grad: &[f32], geometry: &ConvGeometry) -> Vec<f32> {
    let (filters, transposed) =
        conv_im2col::flipped(weight, geometry).expect("Winograd's convolutions have stride 1");
    conv2d_forward(
        output_grad,
        &filters,
        &vec![0.0; transposed.weight[0]],
        &transposed,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conv_im2col::ConvParams;

    fn geometry(input: [usize; 4], out_channels: usize, groups: usize) -> ConvGeometry {
        ConvGeometry {
            input,
            weight: [out_channels, input[1] / groups, 3, 3],
            params: ConvParams {
                stride: [1, 1],
                padding: [1, 1],
                groups,
                bf16: false,
                winograd: false,
            },
        }
    }

    /// Deterministic values in -scale..scale.
    fn values(n: usize, seed: u64, scale: f32) -> Vec<f32> {
        let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        (0..n)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
            })
            .collect()
    }

    /// The definition in f64, and the sum of the magnitudes of each output's terms (the scale
    /// of the rounding error any f32 method makes).
    fn direct(x: &[f32], w: &[f32], b: &[f32], g: &ConvGeometry) -> (Vec<f64>, Vec<f64>) {
        let [batch, cin, h, wd] = g.input;
        let [cout, cg, _, _] = g.weight;
        let per_group = cout / g.params.groups;
        let mut y = vec![0.0f64; batch * cout * h * wd];
        let mut magnitude = y.clone();
        for n in 0..batch {
            for o in 0..cout {
                let group = o / per_group;
                for oh in 0..h {
                    for ow in 0..wd {
                        let (mut sum, mut size) = (b[o] as f64, (b[o] as f64).abs());
                        for c in 0..cg {
                            for i in 0..3 {
                                for j in 0..3 {
                                    let (yy, xx) = (oh as isize + i - 1, ow as isize + j - 1);
                                    if yy < 0 || xx < 0 || yy >= h as isize || xx >= wd as isize {
                                        continue;
                                    }
                                    let input = x[((n * cin + group * cg + c) * h + yy as usize)
                                        * wd
                                        + xx as usize]
                                        as f64;
                                    let weight =
                                        w[((o * cg + c) * 3 + i as usize) * 3 + j as usize] as f64;
                                    sum += input * weight;
                                    size += (input * weight).abs();
                                }
                            }
                        }
                        let at = ((n * cout + o) * h + oh) * wd + ow;
                        y[at] = sum;
                        magnitude[at] = size;
                    }
                }
            }
        }
        (y, magnitude)
    }

    /// The worst error relative to the magnitude of the output's terms.
    fn worst_error(ours: &[f32], exact: &[f64], magnitude: &[f64]) -> f64 {
        ours.iter()
            .zip(exact)
            .zip(magnitude)
            .map(|((o, e), m)| (*o as f64 - e).abs() / m.max(1e-30))
            .fold(0.0, f64::max)
    }

    #[test]
    fn the_forward_pass_is_the_convolution_on_odd_sizes_and_towers() {
        for (input, out_channels, groups) in [
            ([2, 3, 7, 5], 4, 1),
            ([3, 4, 13, 13], 6, 2),
            ([1, 2, 1, 2], 3, 1),
            ([2, 6, 6, 9], 4, 2),
        ] {
            let g = geometry(input, out_channels, groups);
            let x = values(input.iter().product(), 1, 1.0);
            let w = values(out_channels * g.weight[1] * 9, 2, 0.5);
            let b = values(out_channels, 3, 0.1);
            let (exact, magnitude) = direct(&x, &w, &b, &g);
            let ours = conv2d_forward(&x, &w, &b, &g);
            assert_eq!(ours.len(), exact.len());
            let error = worst_error(&ours, &exact, &magnitude);
            assert!(error < 4.0 * f32::EPSILON as f64, "{input:?}: {error:e}");
        }
    }

    #[test]
    fn large_and_cancelling_inputs_keep_the_error_bound() {
        // Magnitudes of 1e4 with alternating signs: the transforms' sums cancel, the case where
        // Winograd loses most against the direct sum.
        let g = geometry([2, 8, 13, 13], 8, 1);
        let x: Vec<f32> = values(2 * 8 * 169, 4, 1.0)
            .iter()
            .enumerate()
            .map(|(i, v)| if i % 2 == 0 { 1e4 + v } else { -1e4 + v })
            .collect();
        let w: Vec<f32> = (0..8 * 8 * 9)
            .map(|i| if i % 3 == 0 { 1e2 } else { -1e2 })
            .collect();
        let b = vec![0.0; 8];
        let (exact, magnitude) = direct(&x, &w, &b, &g);
        let error = worst_error(&conv2d_forward(&x, &w, &b, &g), &exact, &magnitude);
        assert!(error < 4.0 * f32::EPSILON as f64, "{error:e}");
    }

    #[test]
    fn the_input_gradient_is_im2cols() {
        for (input, out_channels, groups) in [([2, 4, 13, 11], 6, 2), ([1, 3, 5, 4], 2, 1)] {
            let g = geometry(input, out_channels, groups);
            let w = values(out_channels * g.weight[1] * 9, 5, 0.5);
            let dy = values(input[0] * out_channels * input[2] * input[3], 6, 1.0);
            let ours = conv2d_input_grad(&w, &dy, &g);
            let reference = crate::conv_im2col::conv2d_input_grad(&w, &dy, &g);
            let scale = reference.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let worst = ours
                .iter()
                .zip(&reference)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(worst <= 1e-5 * scale, "{input:?}: {worst} of {scale}");
        }
    }
}
