//! The fully connected layers (Section 3.5: fc6, fc7, fc8) for up to 64 images, on flex,
//! through Burn's backend-extension mechanism.
//!
//! For one image a fully connected layer is a matrix-vector product: every weight is read once
//! and used once, so its time is that of reading the weights from memory (fc6 of both ImageNet
//! nets holds 151 MB). flex's matrix product (the `gemm` crate) reads them at about 20 GB/s
//! here, as PyTorch's `Linear` does, where a streaming read on both cores goes at 28-47
//! (`benchmarks/fully_connected_pytorch.py`). Here each
//! thread streams its own band of weight rows front to back into partial sums of its own, which
//! are added at the end, and each tile of four weight rows serves every image while it is in the
//! L1 cache. `cargo run --release -p alexnet-cli --example fully_connected -- ROWS` times both:
//! fc6 at 1 image 7.6 -> 4.4 ms, at 32 images 37 -> 27 ms, even at 64 and behind from 128. So
//! batches of up to [`FEW_ROWS`] images take this path, in inference and in training (where
//! the two gradients are Burn's products: fc6's forward and backward at batch 32 119-120 ms ->
//! 108-111 ms); larger ones keep Burn's `Linear`.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::nn::Linear;
use burn::tensor::{DType, Device, Shape, Tensor};
use rayon::prelude::*;

use crate::autodiff_op::differentiable;
use crate::flex_values::{floats, tensor};

/// Up to this many rows (images) a layer takes this path; from 128 on, the matrix product's
/// blocking is faster (`examples/fully_connected.rs`).
pub const FEW_ROWS: usize = 64;

/// Weight rows taken together: each output value is loaded and stored once for four of them.
const ROWS_AT_ONCE: usize = 4;

/// Weights below which a layer is one task (1 MiB of them).
const SMALL_LAYER: usize = 1 << 18;

/// Output columns per tile, so that four rows of a tile (16 KiB) stay in the L1 cache while
/// every input row is multiplied into them.
const TILE: usize = 1024;

/// `linear`'s output for the rows `x`: here where [`streams`] holds (with the gradients below
/// when the graph tracks them), Burn's `Linear` otherwise.
pub fn fully_connected(linear: &Linear, x: Tensor<2>) -> Tensor<2> {
    match &linear.bias {
        Some(bias) if streams(linear, &x) => {
            Tensor::from_dispatch(<Dispatch as LinearBackend>::fully_connected_few_rows(
                x.into_dispatch(),
                linear.weight.val().into_dispatch(),
                bias.val().into_dispatch(),
            ))
        }
        _ => linear.forward(x),
    }
}

/// Whether [`fully_connected`] takes this file's path: up to [`FEW_ROWS`] rows, f32, a bias, on
/// flex with or without autodiff (the device comparison ignores autodiff).
pub fn streams(linear: &Linear, x: &Tensor<2>) -> bool {
    let [rows, _] = x.dims();
    let f32s = [x.dtype(), linear.weight.val().dtype()]
        .into_iter()
        .chain(linear.bias.as_ref().map(|b| b.val().dtype()))
        .all(|dtype| dtype == DType::F32);
    rows <= FEW_ROWS && linear.bias.is_some() && f32s && x.device() == Device::flex()
}

#[backend_extension(Flex, Autodiff)]
pub trait LinearBackend: Backend {
    /// `x . weight + bias` for `x` `[rows, inputs]`, `weight` `[inputs, outputs]` (Burn's
    /// layout), `bias` `[outputs]`.
    fn fully_connected_few_rows(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
}

impl LinearBackend for Flex {
    fn fully_connected_few_rows(x: FlexTensor, weight: FlexTensor, bias: FlexTensor) -> FlexTensor {
        assert!(
            [&x, &weight, &bias].iter().all(|t| t.dtype() == DType::F32),
            "fully_connected_few_rows takes f32 tensors"
        );
        let (rows, inputs, outputs) = (x.shape()[0], x.shape()[1], weight.shape()[1]);
        let (x, weight, bias) = (
            x.to_contiguous(),
            weight.to_contiguous(),
            bias.to_contiguous(),
        );
        let y = streamed_product(
            floats(&x),
            floats(&weight),
            floats(&bias),
            [rows, inputs, outputs],
        );
        tensor(y, [rows, outputs])
    }
}

#[derive(Debug)]
struct FullyConnectedBackward;

impl<B: Backend + LinearBackend> Backward<B, 3> for FullyConnectedBackward {
    /// The input and the weights.
    type State = (FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_weight, node_bias] = ops.parents;
        let output_grad = grads.consume::<B>(&ops.node);
        let (x, weight) = ops.state;
        // Burn's products for both gradients: kernels of our own for them were slower than
        // `gemm` here (not kept).
        if let Some(node) = node_x {
            let grad = B::float_matmul(output_grad.clone(), B::float_transpose(weight));
            grads.register::<B>(node.id, grad);
        }
        if let Some(node) = node_weight {
            let grad = B::float_matmul(B::float_transpose(x), output_grad.clone());
            grads.register::<B>(node.id, grad);
        }
        if let Some(node) = node_bias {
            let outputs = output_grad.shape()[1];
            let grad = B::float_reshape(B::float_sum_dim(output_grad, 0), Shape::new([outputs]));
            grads.register::<B>(node.id, grad);
        }
    }
}

impl<B: Backend + LinearBackend, C: CheckpointStrategy> LinearBackend for Autodiff<B, C> {
    fn fully_connected_few_rows(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let saving = |[x, weight, bias]: [FloatTensor<B>; 3]| {
            let output = B::fully_connected_few_rows(x.clone(), weight.clone(), bias);
            (output, (x, weight), ())
        };
        let plain = |[x, weight, bias]: [FloatTensor<B>; 3]| {
            (B::fully_connected_few_rows(x, weight, bias), ())
        };
        differentiable::<B, C, _, _, 3>(FullyConnectedBackward, [x, weight, bias], saving, plain).0
    }
}

/// `y = x . weight + bias` (`x` `[rows, inputs]`, `weight` `[inputs, outputs]`, row-major),
/// reading `weight` once: each thread takes a band of its rows and sums into its own `y`.
pub fn streamed_product(
    x: &[f32],
    weight: &[f32],
    bias: &[f32],
    [rows, inputs, outputs]: [usize; 3],
) -> Vec<f32> {
    assert_eq!(x.len(), rows * inputs, "x is rows x inputs");
    assert_eq!(weight.len(), inputs * outputs, "weight is inputs x outputs");
    assert_eq!(bias.len(), outputs, "one bias an output");
    // A small layer (alexnet-cifar's) in one band: splitting it costs more than it saves.
    let tasks = if weight.len() < SMALL_LAYER {
        1
    } else {
        // Two a thread, so that a slow thread can be helped.
        2 * rayon::current_num_threads().max(1)
    };
    // Bands a multiple of ROWS_AT_ONCE rows.
    let band = inputs
        .div_ceil(tasks)
        .next_multiple_of(ROWS_AT_ONCE)
        .max(ROWS_AT_ONCE);
    let partial = weight
        .par_chunks(band * outputs)
        .enumerate()
        .map(|(b, weight_band)| {
            let mut sums = vec![0.0f32; rows * outputs];
            let share = Band {
                x,
                inputs,
                first: b * band,
                weight: weight_band,
                outputs,
            };
            accumulate_band(share, &mut sums);
            sums
        })
        .reduce_with(|mut total, sums| {
            total.iter_mut().zip(&sums).for_each(|(t, s)| *t += s);
            total
        });
    let mut y = partial.unwrap_or_else(|| vec![0.0f32; rows * outputs]);
    for row in y.chunks_exact_mut(outputs.max(1)) {
        row.iter_mut().zip(bias).for_each(|(v, b)| *v += b);
    }
    y
}

/// One thread's share of a layer: `weight`, `n` consecutive weight rows starting at row `first`
/// of the `inputs`, each `outputs` wide, and the rows `x` they multiply.
#[derive(Clone, Copy)]
struct Band<'a> {
    x: &'a [f32],
    inputs: usize,
    first: usize,
    weight: &'a [f32],
    outputs: usize,
}

/// `sums[r] += x[r, first..first + n] . weight` for every row `r` of `x`: with AVX2 and fused
/// multiply-adds where the CPU has them (the build targets plain x86-64).
fn accumulate_band(band: Band, sums: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has both features, checked just above.
        return unsafe { accumulate_band_fma(band, sums) };
    }
    accumulate_band_with::<false>(band, sums);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn accumulate_band_fma(band: Band, sums: &mut [f32]) {
    accumulate_band_with::<true>(band, sums);
}

/// The band's loops: four weight rows at a time, read front to back (so that memory sees one
/// stream), each tile of them multiplied into every row's sums while it is in the L1 cache.
/// `FUSED`: `mul_add`, which is one instruction only where FMA is enabled.
#[inline(always)]
fn accumulate_band_with<const FUSED: bool>(band: Band, sums: &mut [f32]) {
    let Band {
        x,
        inputs,
        first,
        weight: weight_band,
        outputs,
    } = band;
    let term = |sum: f32, c: f32, w: f32| {
        if FUSED {
            c.mul_add(w, sum)
        } else {
            sum + c * w
        }
    };
    let band_rows = weight_band.len() / outputs;
    let mut i = 0;
    while i < band_rows {
        let taken = ROWS_AT_ONCE.min(band_rows - i);
        for start in (0..outputs).step_by(TILE) {
            let width = TILE.min(outputs - start);
            let w = |q: usize| &weight_band[(i + q) * outputs + start..][..width];
            for (r, y) in sums.chunks_exact_mut(outputs).enumerate() {
                let y = &mut y[start..start + width];
                let c = |q: usize| x[r * inputs + first + i + q];
                if taken == ROWS_AT_ONCE {
                    let (c0, c1, c2, c3) = (c(0), c(1), c(2), c(3));
                    let columns = w(0).iter().zip(w(1)).zip(w(2)).zip(w(3));
                    for (v, (((a, b), e), d)) in y.iter_mut().zip(columns) {
                        *v = term(term(term(term(*v, c0, *a), c1, *b), c2, *e), c3, *d);
                    }
                } else {
                    for q in 0..taken {
                        let (cq, wq) = (c(q), w(q));
                        y.iter_mut()
                            .zip(wq)
                            .for_each(|(v, w)| *v = term(*v, cq, *w));
                    }
                }
            }
        }
        i += taken;
    }
}

#[cfg(test)]
mod tests {
    use burn::nn::LinearConfig;
    use burn::tensor::Distribution;

    use super::*;
    use crate::test_values::values;

    /// `x . weight + bias` in f64, by the definition.
    fn definition(
        x: &[f32],
        w: &[f32],
        b: &[f32],
        [rows, inputs, outputs]: [usize; 3],
    ) -> Vec<f64> {
        let mut y = vec![0.0f64; rows * outputs];
        for r in 0..rows {
            for o in 0..outputs {
                let dot: f64 = (0..inputs)
                    .map(|i| x[r * inputs + i] as f64 * w[i * outputs + o] as f64)
                    .sum();
                y[r * outputs + o] = dot + b[o] as f64;
            }
        }
        y
    }

    #[test]
    fn equals_the_definition_for_odd_shapes_and_every_row_count() {
        // Inputs not a multiple of the four rows taken together nor of the bands; outputs wider
        // than one tile and not a multiple of it; one and several rows; layers in one band and
        // (the last two, above SMALL_LAYER) in several.
        for (rows, inputs, outputs) in [
            (1, 1, 1),
            (1, 7, 3),
            (2, 37, 1030),
            (4, 9, 4096),
            (3, 130, 2051),
            (5, 517, 1030),
        ] {
            assert_eq!(inputs * outputs > SMALL_LAYER, inputs >= 130);
            let shape = [rows, inputs, outputs];
            let (x, w, b) = (
                values(rows * inputs, 1),
                values(inputs * outputs, 2),
                values(outputs, 3),
            );
            let ours = streamed_product(&x, &w, &b, shape);
            let exact = definition(&x, &w, &b, shape);
            for (k, (a, e)) in ours.iter().zip(&exact).enumerate() {
                // f32 sums of `inputs` products of at most 1 in size.
                let bound = 4.0 * f32::EPSILON as f64 * (inputs as f64 + 1.0);
                assert!(
                    (*a as f64 - e).abs() <= bound,
                    "{shape:?} output {k}: {a} against {e}"
                );
            }
        }
    }

    /// The output and the gradients of `sum(layer(x) * probe)` for x, the weights and the bias.
    fn outputs_and_gradients(
        linear: &Linear,
        x: &Tensor<2>,
        probe: &Tensor<2>,
        ours: bool,
    ) -> Vec<Vec<f32>> {
        let x = x.clone().require_grad();
        assert!(!ours || streams(linear, &x), "the path under test");
        let y = if ours {
            fully_connected(linear, x.clone())
        } else {
            linear.forward(x.clone())
        };
        let grads = (y.clone() * probe.clone()).sum().backward();
        let host = |t: Tensor<2>| t.into_data().try_to_vec::<f32>().unwrap();
        let bias = linear.bias.as_ref().unwrap().val();
        vec![
            host(y),
            host(x.grad(&grads).unwrap()),
            host(linear.weight.val().grad(&grads).unwrap()),
            bias.grad(&grads)
                .unwrap()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap(),
        ]
    }

    #[test]
    fn the_layer_gives_burns_linear_outputs_and_gradients() {
        let worst = |a: &[f32], b: &[f32]| {
            a.iter()
                .zip(b)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max)
        };
        let host = |t: Tensor<2>| t.into_data().try_to_vec::<f32>().unwrap();
        // Inference on flex, the first layer one band and the second several.
        let device = Device::flex();
        for (inputs, outputs) in [(300, 70), (600, 500)] {
            let linear = LinearConfig::new(inputs, outputs).init(&device);
            for rows in [1, FEW_ROWS, FEW_ROWS + 1] {
                let x =
                    Tensor::<2>::random([rows, inputs], Distribution::Normal(0.0, 1.0), &device);
                assert_eq!(streams(&linear, &x), rows <= FEW_ROWS);
                let (ours, burns) = (
                    host(fully_connected(&linear, x.clone())),
                    host(linear.forward(x)),
                );
                assert_eq!(ours.len(), rows * outputs);
                assert!(
                    worst(&ours, &burns) <= 1e-5,
                    "{rows} rows differ by {}",
                    worst(&ours, &burns)
                );
            }
        }
        // Training: the same output and the same three gradients as Burn's layer.
        let device = device.autodiff();
        for (rows, inputs, outputs) in [(1, 30, 5), (7, 300, 70), (32, 600, 500)] {
            let linear = LinearConfig::new(inputs, outputs).init(&device);
            let normal =
                |shape| Tensor::<2>::random(shape, Distribution::Normal(0.0, 1.0), &device);
            let (x, probe) = (normal([rows, inputs]), normal([rows, outputs]));
            let ours = outputs_and_gradients(&linear, &x, &probe, true);
            let burns = outputs_and_gradients(&linear, &x, &probe, false);
            for (k, (a, b)) in ours.iter().zip(&burns).enumerate() {
                assert_eq!(a.len(), b.len());
                assert!(
                    worst(a, b) <= 1e-4,
                    "{rows} rows, tensor {k} differs by {}",
                    worst(a, b)
                );
                assert!(
                    a.iter().any(|v| v.abs() > 1e-3),
                    "tensor {k} is not all zero"
                );
            }
        }
    }
}
