//! Local response normalization (Section 3.3) and its gradient as direct loops over the CPU's
//! memory: one pass over an image's maps with a sliding window sum, where the composed form makes
//! a padded copy, a sum of 2 x half + 1 shifted copies and several whole-tensor temporaries.
//!
//! With `s_i = k + alpha * sum_{j in W(i)} a_j^2` and `p_i = s_i^-beta`, the output is `a_i p_i`,
//! and
//!
//! ```text
//! dL/da_i = g_i p_i - 2 alpha beta a_i * sum_{j in W(i)} g_j a_j p_j / s_j
//! ```
//!
//! (`W(i)` is symmetric: map i is in map j's window exactly when j is in i's.) The window sums
//! slide from map to map: add the map entering the window, subtract the one leaving it. Both
//! passes run per image, compiled for the CPU's widest vectors (`vectorized.rs`).

use rayon::prelude::*;

use crate::config::LrnConfig;
use crate::parallel_zeros::zeros;
use crate::vectorized::vectorized;

/// `window[p] = sum over maps j in 0..=half.min(channels - 1) of f(map j)[p]`: the window of map 0.
#[inline(always)]
fn first_window(window: &mut [f32], maps: &[f32], plane: usize, half: usize, square: bool) {
    window.fill(0.0);
    for map in maps.chunks_exact(plane).take(half + 1) {
        add_map(window, map, 1.0, square);
    }
}

/// `window += sign * map` (or `map^2`).
#[inline(always)]
fn add_map(window: &mut [f32], map: &[f32], sign: f32, square: bool) {
    if square {
        for (w, a) in window.iter_mut().zip(map) {
            *w += sign * a * a;
        }
    } else {
        for (w, t) in window.iter_mut().zip(map) {
            *w += sign * t;
        }
    }
}

/// Moves the window of map `i` to map `i + 1`.
#[inline(always)]
fn slide(window: &mut [f32], maps: &[f32], plane: usize, half: usize, i: usize, square: bool) {
    let channels = maps.len() / plane;
    if i + half + 1 < channels {
        add_map(
            window,
            &maps[(i + half + 1) * plane..][..plane],
            1.0,
            square,
        );
    }
    if i >= half {
        add_map(window, &maps[(i - half) * plane..][..plane], -1.0, square);
    }
}

/// `p = s^-beta`, with the paper's beta = 3/4 as two square roots, far cheaper than a power. The
/// choice is a constant of each loop, outside it, so that each is one straight pass the compiler
/// vectorises (with the test inside, the forward pass ran 2x slower: 12.1 against 5.9 ms for
/// norm1 at batch 128, `examples/norm_pool`).
#[inline(always)]
fn power<const THREE_QUARTERS: bool>(s: f32, beta: f32) -> f32 {
    if THREE_QUARTERS {
        let root = s.sqrt();
        1.0 / (root * root.sqrt())
    } else {
        s.powf(-beta)
    }
}

/// `s = k + alpha * window`: a sliding sum of squares can dip a hair below zero; the window is
/// >= 0.
#[inline(always)]
fn scale(window: f32, [k, alpha, _]: [f32; 3]) -> f32 {
    k + alpha * window.max(0.0)
}

/// The constants as the loops use them.
fn constants(config: LrnConfig) -> (usize, [f32; 3]) {
    let LrnConfig {
        size,
        k,
        alpha,
        beta,
    } = config;
    (size / 2, [k as f32, alpha as f32, beta as f32])
}

/// Runs `pass::<true>` for the paper's beta = 3/4, `pass::<false>` otherwise.
macro_rules! by_beta {
    ($beta:expr, $pass:ident($($argument:expr),*)) => {
        if $beta == 0.75 {
            $pass::<true>($($argument),*)
        } else {
            $pass::<false>($($argument),*)
        }
    };
}

/// The output `a p`. `activity` is `[batch, channels, height, width]`, contiguous; `plane` is
/// `height x width`. Nothing else is kept: the backward pass computes `s` and `p` again from
/// the input, cheaper than writing them here and reading them there, and two tensors the
/// input's size fewer to hold between the passes (norm1 at batch 128, `examples/norm_pool`:
/// 6.36 ms writing `a p`, `s` and `p` with SSE (29be5b1), 1.9 writing `a p` at vector width).
pub fn lrn_forward(activity: &[f32], plane: usize, channels: usize, config: LrnConfig) -> Vec<f32> {
    let image = channels * plane;
    let (half, constants) = constants(config);
    let mut output = zeros::<f32>(activity.len());
    output
        .par_chunks_mut(image)
        .zip(activity.par_chunks(image))
        .for_each_init(
            || vec![0.0f32; plane],
            |window, (out, a)| {
                vectorized(
                    #[inline(always)]
                    || by_beta!(constants[2], forward_image(out, a, window, half, constants)),
                )
            },
        );
    output
}

/// One image's output, `half` maps either side in each window.
#[inline(always)]
fn forward_image<const THREE_QUARTERS: bool>(
    out: &mut [f32],
    a: &[f32],
    window: &mut [f32],
    half: usize,
    constants: [f32; 3],
) {
    let plane = window.len();
    first_window(window, a, plane, half, true);
    for (i, (out, a_i)) in out
        .chunks_exact_mut(plane)
        .zip(a.chunks_exact(plane))
        .enumerate()
    {
        for ((o, &a), &w) in out.iter_mut().zip(a_i).zip(&*window) {
            *o = a * power::<THREE_QUARTERS>(scale(w, constants), constants[2]);
        }
        slide(window, a, plane, half, i, true);
    }
}

/// `dL/da` from the input `a` and the output's gradient.
pub fn lrn_backward(
    [activity, grad]: [&[f32]; 2],
    plane: usize,
    channels: usize,
    config: LrnConfig,
) -> Vec<f32> {
    let image = channels * plane;
    let (half, constants) = constants(config);
    let mut input_grad = zeros::<f32>(activity.len());
    input_grad
        .par_chunks_mut(image)
        .zip(activity.par_chunks(image))
        .zip(grad.par_chunks(image))
        .for_each_init(
            || (vec![0.0f32; plane], vec![0.0f32; 2 * image]),
            |(window, maps), ((da, a), g)| {
                let (powers, weighted) = maps.split_at_mut(image);
                let scratch = [window.as_mut_slice(), powers, weighted];
                vectorized(
                    #[inline(always)]
                    || {
                        by_beta!(
                            constants[2],
                            backward_image(da, [a, g], scratch, half, constants)
                        )
                    },
                )
            },
        );
    input_grad
}

/// One image's input gradient, with `p` of every map and `t` in the image-sized scratch.
#[inline(always)]
fn backward_image<const THREE_QUARTERS: bool>(
    da: &mut [f32],
    [a, g]: [&[f32]; 2],
    [window, powers, weighted]: [&mut [f32]; 3],
    half: usize,
    constants: [f32; 3],
) {
    let plane = window.len();
    let [_, alpha, beta] = constants;
    let factor = 2.0 * alpha * beta;
    // The forward pass again for p, and t_j = g_j a_j p_j / s_j.
    first_window(window, a, plane, half, true);
    for i in 0..da.len() / plane {
        let at = i * plane..(i + 1) * plane;
        for ((((t, p), &g), &a), &w) in weighted[at.clone()]
            .iter_mut()
            .zip(&mut powers[at.clone()])
            .zip(&g[at.clone()])
            .zip(&a[at])
            .zip(&*window)
        {
            let s = scale(w, constants);
            *p = power::<THREE_QUARTERS>(s, beta);
            *t = g * a * *p / s;
        }
        slide(window, a, plane, half, i, true);
    }
    // Then the window sums of t.
    first_window(window, weighted, plane, half, false);
    for i in 0..da.len() / plane {
        let at = i * plane..(i + 1) * plane;
        for ((((d, &g), &p), &a), &w) in da[at.clone()]
            .iter_mut()
            .zip(&g[at.clone()])
            .zip(&powers[at.clone()])
            .zip(&a[at])
            .zip(&*window)
        {
            *d = g * p - factor * a * w;
        }
        slide(window, weighted, plane, half, i, false);
    }
}
