//! The tanh non-linearity of Figure 1's comparison (Section 3.1) as one backend operation with its
//! own backward pass, through Burn's backend-extension mechanism as `pool_op.rs` does.
//!
//! flex's own tanh calls the C library's scalar `tanhf` once per value: 44% of a tanh
//! `alexnet-cifar` epoch, which made the tanh arm of `relu-vs-tanh` 2.6x slower per epoch than
//! the ReLU arm for no reason of the paper's. Here the forward pass is eight values at a time
//! (`wide`'s `f32x8::tanh`, through `expm1`; within 2 units in the last place), and the backward
//! pass is `g (1 - y^2)` from the kept output, in one loop. Other backends get Burn's tanh.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, unary};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Flex, TensorMetadata, backend_extension};
use burn::tensor::{DType, TensorData};
use wide::f32x8;

use crate::autodiff_op::differentiable;
use crate::parallel_zeros::zeros;

#[backend_extension(Flex, Autodiff)]
pub trait TanhBackend: Backend {
    /// `tanh(x)`, element by element.
    fn tanh_activation(x: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::float_tanh(x)
    }

    /// `dL/dx = g (1 - y^2)` from the output `y` and its gradient `g`.
    fn tanh_activation_backward(
        output: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        burns_tanh_backward::<Self>(output, output_grad)
    }
}

/// `g (1 - y^2)` with Burn's tensor operations: the trait's default, and flex's for other dtypes.
fn burns_tanh_backward<B: Backend>(output: FloatTensor<B>, grad: FloatTensor<B>) -> FloatTensor<B> {
    let square = B::float_mul(output.clone(), output);
    let slope = B::float_add_scalar(B::float_neg(square), 1.0.into());
    B::float_mul(grad, slope)
}

/// Burn's own tanh (flex's for other dtypes).
fn burns_tanh<B: Backend>(x: FloatTensor<B>) -> FloatTensor<B> {
    B::float_tanh(x)
}

/// `tanh` of every value, eight at a time.
pub fn tanh_values(x: &[f32]) -> Vec<f32> {
    let mut y = zeros::<f32>(x.len());
    let mut chunks = x.chunks_exact(8);
    for (out, lanes) in y.chunks_exact_mut(8).zip(&mut chunks) {
        let lanes: [f32; 8] = lanes.try_into().expect("chunks of 8");
        out.copy_from_slice(&f32x8::from(lanes).tanh().to_array());
    }
    let done = x.len() - chunks.remainder().len();
    for (out, v) in y[done..].iter_mut().zip(chunks.remainder()) {
        *out = v.tanh();
    }
    y
}

/// `g (1 - y^2)` of every value.
pub fn tanh_grad_values(output: &[f32], output_grad: &[f32]) -> Vec<f32> {
    output
        .iter()
        .zip(output_grad)
        .map(|(y, g)| g * (1.0 - y * y))
        .collect()
}

fn flex_tensor(values: Vec<f32>, like: &FlexTensor) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, like.shape()))
}

impl TanhBackend for Flex {
    fn tanh_activation(x: FlexTensor) -> FlexTensor {
        if x.dtype() != DType::F32 {
            return burns_tanh::<Self>(x);
        }
        let x = x.to_contiguous();
        let values = tanh_values(x.as_slice::<f32>().expect("a contiguous f32 tensor"));
        flex_tensor(values, &x)
    }

    fn tanh_activation_backward(output: FlexTensor, output_grad: FlexTensor) -> FlexTensor {
        if output.dtype() != DType::F32 || output_grad.dtype() != DType::F32 {
            return burns_tanh_backward::<Self>(output, output_grad);
        }
        let (output, output_grad) = (output.to_contiguous(), output_grad.to_contiguous());
        let values = tanh_grad_values(
            output.as_slice::<f32>().expect("a contiguous f32 tensor"),
            output_grad
                .as_slice::<f32>()
                .expect("a contiguous f32 tensor"),
        );
        flex_tensor(values, &output)
    }
}

#[derive(Debug)]
struct TanhBackward;

impl<B: Backend + TanhBackend> Backward<B, 1> for TanhBackward {
    /// The output: tanh's derivative is `1 - y^2`.
    type State = FloatTensor<B>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let output = ops.state;
        unary::<B, _>(ops.parents, ops.node, grads, |grad| {
            B::tanh_activation_backward(output, grad)
        });
    }
}

impl<B: Backend + TanhBackend, C: CheckpointStrategy> TanhBackend for Autodiff<B, C> {
    fn tanh_activation(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let saving = |[x]: [FloatTensor<B>; 1]| {
            let output = B::tanh_activation(x);
            (output.clone(), output, ())
        };
        let plain = |[x]: [FloatTensor<B>; 1]| (B::tanh_activation(x), ());
        differentiable::<B, C, _, _, 1>(TanhBackward, [x], saving, plain).0
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::Dispatch;
    use burn::tensor::{Device, Distribution, Tensor};

    use super::*;

    #[test]
    fn the_values_are_tanh_to_two_units_in_the_last_place() {
        // Across tanh's whole range, its tails, tiny values and an odd length (a remainder).
        let mut x: Vec<f32> = (-2000..=2000).map(|i| i as f32 * 6e-3).collect();
        x.extend([1e-6, -3e-5, 2e-4, 15.0, -40.0, 0.0, 9.5, -9.0, 0.5493]);
        let y = tanh_values(&x);
        for (&v, &t) in x.iter().zip(&y) {
            let exact = (v as f64).tanh();
            let ulp = (exact.abs() as f32).max(f32::MIN_POSITIVE) * f32::EPSILON;
            assert!(
                ((t as f64) - exact).abs() <= 2.0 * ulp as f64,
                "tanh({v}) = {t}, exactly {exact}"
            );
        }
        assert_eq!(tanh_grad_values(&[0.5, -1.0], &[2.0, 3.0]), [1.5, 0.0]);
    }

    #[test]
    fn output_and_gradient_equal_burns_tanh() {
        let device = Device::flex().autodiff();
        let input = Tensor::<4>::random([2, 3, 5, 7], Distribution::Normal(0.0, 2.0), &device);
        let probe = Tensor::<4>::random([2, 3, 5, 7], Distribution::Normal(0.0, 1.0), &device);
        let run = |ours: bool| {
            let x = input.clone().require_grad();
            let y = if ours {
                Tensor::from_dispatch(<Dispatch as TanhBackend>::tanh_activation(
                    x.clone().into_dispatch(),
                ))
            } else {
                x.clone().tanh()
            };
            let grads = (y.clone() * probe.clone()).sum().backward();
            let host = |t: Tensor<4>| t.into_data().try_to_vec::<f32>().unwrap();
            (host(y.inner()), host(x.grad(&grads).unwrap()))
        };
        let (ours, burns) = (run(true), run(false));
        for (pair, tolerance) in [((&ours.0, &burns.0), 3e-7), ((&ours.1, &burns.1), 1e-6)] {
            let worst = pair
                .0
                .iter()
                .zip(pair.1)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(worst <= tolerance, "differs by {worst}");
        }
        assert!(ours.1.iter().any(|g| g.abs() > 0.1), "a real gradient");
    }
}
