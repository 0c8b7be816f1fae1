//! Local response normalization, Section 3.3 of the paper.
//!
//! With a(i, x, y) the activity of kernel i at position (x, y) after the ReLU, and N kernels in the
//! layer, the response-normalized activity is
//!
//! ```text
//! b(i, x, y) = a(i, x, y) / ( k + alpha * sum_{j = max(0, i - n/2)}^{min(N - 1, i + n/2)} a(j, x, y)^2 )^beta
//! ```
//!
//! with k = 2, n = 5, alpha = 1e-4, beta = 0.75. Unlike PyTorch's and Burn's `LocalResponseNorm`,
//! alpha is *not* divided by n. The sum runs over the n/2 maps on either side (n/2 rounded down), and
//! is cut at the first and last map: maps beyond the edges count as zero.
//!
//! Shapes: input and output `[batch, channels, height, width]`. On flex the layer is one fused
//! operation with a hand-written backward pass (`lrn_op.rs` over `lrn_kernel.rs`); on other
//! backends it is the formula in tensor operations (`forward_composed`), differentiated by Burn's
//! autodiff. Tests hold both to the direct loop, to finite differences and to each other.
//!
//! `size` must be odd (the window is centred on map i), as the paper's n = 5 is.

use burn::backend::Dispatch;
use burn::module::Module;
use burn::tensor::{Device, Tensor};

use crate::config::LrnConfig;
use crate::lrn_op::LrnBackend;

#[derive(Module, Debug)]
pub struct LocalResponseNorm {
    /// The paper's n, k, alpha and beta: the one struct from the recipe to the kernel.
    #[module(skip)]
    config: LrnConfig,
}

impl LocalResponseNorm {
    pub fn new(config: &LrnConfig) -> Self {
        Self { config: *config }
    }

    /// How many maps on either side of a map its window takes in (n / 2).
    pub fn reach(&self) -> usize {
        self.config.size / 2
    }

    /// `[batch, channels, height, width]` -> same shape.
    pub fn forward(&self, activity: Tensor<4>) -> Tensor<4> {
        // On flex: one operation, direct loops with a hand-written backward pass (`lrn_op.rs`).
        if activity.device().inner() == Device::flex() {
            return Tensor::from_dispatch(<Dispatch as LrnBackend>::local_response_norm(
                activity.into_dispatch(),
                self.config,
            ));
        }
        self.forward_composed(activity)
    }

    /// The same function written with tensor operations, its backward pass left to autodiff: what
    /// other backends run (and what the tests hold the fused operation against).
    pub fn forward_composed(&self, activity: Tensor<4>) -> Tensor<4> {
        let LrnConfig {
            size,
            k,
            alpha,
            beta,
        } = self.config;
        let [batch, channels, height, width] = activity.dims();
        let half = size / 2;
        let squared = activity.clone().square();
        // Zero maps beyond both edges make the clipped sum of the formula a plain sliding window.
        // (Measured against an average pool along the channels and a 1x1 convolution with a band
        // matrix: neither is faster on flex.)
        let edge = Tensor::<4>::zeros([batch, half, height, width], &activity.device());
        let padded = Tensor::cat(vec![edge.clone(), squared, edge], 1);
        let mut window_sum = padded.clone().narrow(1, 0, channels);
        for offset in 1..=2 * half {
            window_sum = window_sum + padded.clone().narrow(1, offset, channels);
        }
        let base = window_sum.mul_scalar(alpha).add_scalar(k);
        if activity.is_require_grad() {
            // Training on other backends: base^-beta as exp(-beta ln base), whose derivatives are
            // cheap (the output itself, and 1 / base) where a power's (or a square root's) is
            // another power. norm1's forward + backward (batch 32): 211 ms with square roots,
            // 165 ms this way.
            activity * base.log().mul_scalar(-beta).exp()
        } else if beta == 0.75 {
            // Inference: the paper's beta = 3/4 as two square roots, the fastest forward pass
            // (norm1 at batch 32: 42 ms, against 85 ms through exp and ln, 158 ms with a power).
            let root = base.sqrt();
            activity / (root.clone() * root.sqrt())
        } else {
            activity / base.powf_scalar(beta)
        }
    }
}

/// The formula as a direct loop: the test oracle for [`LocalResponseNorm::forward`].
/// `input` is `[batch, channels, height, width]` in row-major order.
pub fn lrn_reference(input: &[f32], shape: [usize; 4], config: &LrnConfig) -> Vec<f32> {
    lrn_reference_f64(input, shape, config)
        .into_iter()
        .map(|v| v as f32)
        .collect()
}

/// [`lrn_reference`] before rounding to f32 (finite differences need the digits).
fn lrn_reference_f64(input: &[f32], shape: [usize; 4], config: &LrnConfig) -> Vec<f64> {
    let [batch, channels, height, width] = shape;
    let plane = height * width;
    let half = config.size / 2;
    let mut output = vec![0.0; input.len()];
    for b in 0..batch {
        for i in 0..channels {
            for p in 0..plane {
                let at = |j: usize| input[(b * channels + j) * plane + p] as f64;
                let lo = i.saturating_sub(half);
                let hi = (i + half).min(channels - 1);
                let sum: f64 = (lo..=hi).map(|j| at(j) * at(j)).sum();
                let denominator = (config.k + config.alpha * sum).powf(config.beta);
                output[(b * channels + i) * plane + p] = at(i) / denominator;
            }
        }
    }
    output
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    fn pseudo_random(len: usize, seed: u64, scale: f32) -> Vec<f32> {
        let mut state = seed;
        (0..len)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 33) as f32 / (1u64 << 31) as f32 - 0.5) * 2.0 * scale
            })
            .collect()
    }

    #[test]
    fn forward_matches_the_formula_including_channel_edges() {
        // Large activities (as after a ReLU on 0..255 pixels) so that alpha * sum matters against k.
        let shape = [2, 7, 3, 4];
        let input = pseudo_random(shape.iter().product(), 1, 60.0);
        let config = LrnConfig::default();
        let device = Device::flex();
        // The paper's constants (beta = 3/4 has its own path) and others (the general power).
        let other = LrnConfig {
            size: 3,
            k: 1.0,
            alpha: 3e-4,
            beta: 0.5,
        };
        // Each also with a tensor that requires a gradient: training takes another path.
        let cases = [config, other]
            .into_iter()
            .flat_map(|c| [(c, false), (c, true)]);
        for (config, tracked) in cases {
            let got = if tracked {
                let tensor = Tensor::<4>::from_data(
                    TensorData::new(input.clone(), shape),
                    &device.clone().autodiff(),
                )
                .require_grad();
                // The fused operation and the composed one, both tracked, agree.
                let lrn = LocalResponseNorm::new(&config);
                let composed = lrn.forward_composed(tensor.clone()).inner();
                let fused = lrn.forward(tensor).inner();
                let gap = (fused.clone() - composed).abs().max().into_scalar::<f32>();
                assert!(gap < 1e-4, "{config:?}: fused and composed differ by {gap}");
                fused
            } else {
                // Inference: the direct loops on flex, and the composed form other backends run.
                let tensor = Tensor::<4>::from_data(TensorData::new(input.clone(), shape), &device);
                let lrn = LocalResponseNorm::new(&config);
                let composed = lrn.forward_composed(tensor.clone());
                let direct = lrn.forward(tensor);
                let gap = (direct.clone() - composed).abs().max().into_scalar::<f32>();
                assert!(
                    gap < 1e-4,
                    "{config:?}: direct and composed differ by {gap}"
                );
                direct
            }
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
            let want = lrn_reference(&input, shape, &config);
            for (index, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (g - w).abs() <= 1e-5 * w.abs().max(1.0),
                    "{config:?} tracked {tracked} element {index}: got {g}, want {w}"
                );
            }
        }
        let want = lrn_reference(&input, shape, &config);
        // The normalization must actually bite at this scale, or the test proves nothing.
        let changed = input
            .iter()
            .zip(&want)
            .filter(|(a, b)| ((*a / 2f32.powf(0.75)) - *b).abs() > 1e-2)
            .count();
        assert!(changed > input.len() / 2);
    }

    #[test]
    fn alpha_is_not_divided_by_n() {
        // One channel with value a: b = a / (k + alpha a^2)^beta exactly (window holds only itself).
        let config = LrnConfig::default();
        let a = 100.0f32;
        let device = Device::flex();
        let tensor = Tensor::<4>::from_data(TensorData::new(vec![a], [1, 1, 1, 1]), &device);
        let got = LocalResponseNorm::new(&config)
            .forward(tensor)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()[0];
        let want = a as f64 / (2.0 + 1e-4 * (a as f64).powi(2)).powf(0.75);
        assert!((got as f64 - want).abs() < 1e-4, "got {got}, want {want}");
    }

    #[test]
    fn gradient_matches_finite_differences() {
        // The paper's constants (beta = 3/4 has its own path) and others (the general power).
        gradient_matches_finite_differences_with(LrnConfig::default());
        gradient_matches_finite_differences_with(LrnConfig {
            size: 3,
            k: 1.0,
            alpha: 3e-4,
            beta: 0.5,
        });
    }

    fn gradient_matches_finite_differences_with(config: LrnConfig) {
        let shape = [2, 6, 2, 2];
        let input = pseudo_random(shape.iter().product(), 7, 80.0);
        let weights = pseudo_random(input.len(), 11, 1.0);
        // Loss = sum(w * lrn(x)), so dLoss/dx is a full vector-Jacobian product.
        let loss = |x: &[f32]| -> f64 {
            lrn_reference_f64(x, shape, &config)
                .iter()
                .zip(&weights)
                .map(|(y, w)| y * *w as f64)
                .sum()
        };
        let device = Device::flex().autodiff();
        let lrn = LocalResponseNorm::new(&config);
        // The fused operation's hand-written backward pass, and autodiff through the composed one.
        let gradient = |fused: bool| {
            let x = Tensor::<4>::from_data(TensorData::new(input.clone(), shape), &device)
                .require_grad();
            let w = Tensor::<4>::from_data(TensorData::new(weights.clone(), shape), &device);
            let y = if fused {
                lrn.forward(x.clone())
            } else {
                lrn.forward_composed(x.clone())
            };
            let grads = (y * w).sum().backward();
            x.grad(&grads)
                .unwrap()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap()
        };
        let composed = gradient(false);
        let analytic = gradient(true);
        for (a, b) in analytic.iter().zip(&composed) {
            assert!(
                (a - b).abs() <= 1e-4 * b.abs().max(1e-2),
                "fused {a} vs composed {b}"
            );
        }
        for index in 0..input.len() {
            let step = 1e-2f32;
            let mut plus = input.clone();
            plus[index] += step;
            let mut minus = input.clone();
            minus[index] -= step;
            let numeric = (loss(&plus) - loss(&minus)) / (2.0 * step as f64);
            let a = analytic[index] as f64;
            assert!(
                (a - numeric).abs() <= 1e-3 * numeric.abs().max(1e-2),
                "input {index}: autodiff {a}, finite difference {numeric}"
            );
        }
    }
}
