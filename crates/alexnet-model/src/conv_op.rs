//! A 2-D convolution whose forward pass and both gradients on flex are `conv_im2col.rs`'s
//! kernels, through Burn's backend-extension mechanism, as `lrn_op.rs` does for LRN.
//!
//! The weight gradient is where Burn's generic backward pass was slowest (see
//! `examples/conv_split.rs`); the input gradient is the same products the other way round, with
//! the columns added back into the image. Other backends get Burn's convolution and its
//! gradients from the trait's default bodies. The 3x3 stride-1 layers' forward pass and input
//! gradient go to `conv_winograd.rs` instead when `model.winograd` is on.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::ModuleOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Flex, backend_extension};
use burn::tensor::DType;
use burn::tensor::ops::ConvOptions;

use crate::autodiff_op::differentiable;
pub use crate::conv_im2col::ConvParams;
use crate::conv_im2col::{
    ConvGeometry, conv2d_bias_grad, conv2d_forward, conv2d_input_grad, conv2d_weight_grad,
};
use crate::conv_winograd;
use crate::flex_values::{dims, floats, tensor};

/// Symmetric padding, no dilation: the convolutions of AlexNet, in Burn's terms.
fn options(params: ConvParams) -> ConvOptions<2> {
    ConvOptions::new(params.stride, params.padding, [1, 1], params.groups)
}

#[backend_extension(Flex, Autodiff)]
pub trait ConvBackend: Backend {
    /// `conv2d(x, weight) + bias`.
    fn convolution(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        params: ConvParams,
    ) -> FloatTensor<Self> {
        // f32 (params.bf16 ignored) on backends without our kernels.
        Self::conv2d(x, weight, Some(bias), options(params))
    }

    /// The gradient of the loss with respect to `x`, given the output's gradient.
    fn convolution_input_grad(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        params: ConvParams,
    ) -> FloatTensor<Self> {
        Self::conv2d_x_backward(x, weight, output_grad, options(params))
    }

    /// The gradient of the loss with respect to `weight`, given the output's gradient.
    fn convolution_weight_grad(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        params: ConvParams,
    ) -> FloatTensor<Self> {
        Self::conv2d_weight_backward(x, weight, output_grad, options(params))
    }

    /// The gradient of the loss with respect to the bias: the output's gradient summed over the
    /// images and the positions of each map.
    fn convolution_bias_grad(
        x: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::conv2d_bias_backward(x, bias, output_grad)
    }
}

impl ConvBackend for Flex {
    fn convolution(
        x: FlexTensor,
        weight: FlexTensor,
        bias: FlexTensor,
        params: ConvParams,
    ) -> FlexTensor {
        if [&x, &weight, &bias].iter().any(|t| t.dtype() != DType::F32) {
            return Self::conv2d(x, weight, Some(bias), options(params));
        }
        let geometry = geometry(&x, &weight, params);
        let (x, weight, bias) = (
            x.to_contiguous(),
            weight.to_contiguous(),
            bias.to_contiguous(),
        );
        let (x, weight, bias) = (floats(&x), floats(&weight), floats(&bias));
        let output = if winograd(&geometry) {
            conv_winograd::conv2d_forward(x, weight, bias, &geometry)
        } else {
            conv2d_forward(x, weight, bias, &geometry)
        };
        let [ho, wo] = geometry.output_size();
        tensor(output, [geometry.input[0], geometry.weight[0], ho, wo])
    }

    fn convolution_input_grad(
        x: FlexTensor,
        weight: FlexTensor,
        output_grad: FlexTensor,
        params: ConvParams,
    ) -> FlexTensor {
        if weight.dtype() != DType::F32 || output_grad.dtype() != DType::F32 {
            return Self::conv2d_x_backward(x, weight, output_grad, options(params));
        }
        let geometry = geometry(&x, &weight, params);
        on_values(&weight, &output_grad, geometry.input, |w, dy| {
            if winograd(&geometry) {
                conv_winograd::conv2d_input_grad(w, dy, &geometry)
            } else {
                conv2d_input_grad(w, dy, &geometry)
            }
        })
    }

    fn convolution_weight_grad(
        x: FlexTensor,
        weight: FlexTensor,
        output_grad: FlexTensor,
        params: ConvParams,
    ) -> FlexTensor {
        if x.dtype() != DType::F32 || output_grad.dtype() != DType::F32 {
            return Self::conv2d_weight_backward(x, weight, output_grad, options(params));
        }
        let geometry = geometry(&x, &weight, params);
        on_values(&x, &output_grad, geometry.weight, |x, dy| {
            conv2d_weight_grad(x, dy, &geometry)
        })
    }

    /// Burn's default swaps the batch and channel axes of the whole output gradient (a copy of
    /// it) before it sums; here each map is summed where it lies.
    fn convolution_bias_grad(
        x: FlexTensor,
        bias: FlexTensor,
        output_grad: FlexTensor,
    ) -> FlexTensor {
        if output_grad.dtype() != DType::F32 {
            return Self::conv2d_bias_backward(x, bias, output_grad);
        }
        let [batch, channels, ho, wo] = dims(&output_grad);
        let output_grad = output_grad.to_contiguous();
        let grad = conv2d_bias_grad(floats(&output_grad), [batch, channels, ho * wo]);
        tensor(grad, [channels])
    }
}

/// Whether Winograd's kernel takes this convolution: switched on (`model.winograd`), a 3x3,
/// stride-1, padding-1 f32 one, and a batch with tiles enough for it to pay. The weight gradient
/// stays im2col's either way (Winograd's F(3x3, 2x2) for it is not written).
fn winograd(geometry: &ConvGeometry) -> bool {
    geometry.params.winograd && conv_winograd::applies(geometry) && conv_winograd::pays(geometry)
}

/// `kernel` on the f32 values of two tensors (copied to contiguous order where they are not), its
/// result as a tensor of `shape`.
fn on_values(
    a: &FlexTensor,
    b: &FlexTensor,
    shape: [usize; 4],
    kernel: impl Fn(&[f32], &[f32]) -> Vec<f32>,
) -> FlexTensor {
    let (a, b) = (a.to_contiguous(), b.to_contiguous());
    tensor(kernel(floats(&a), floats(&b)), shape)
}

fn geometry(x: &FlexTensor, weight: &FlexTensor, params: ConvParams) -> ConvGeometry {
    ConvGeometry {
        input: dims(x),
        weight: dims(weight),
        params,
    }
}

#[derive(Debug)]
struct ConvolutionBackward;

impl<B: Backend + ConvBackend> Backward<B, 3> for ConvolutionBackward {
    /// The input, the weights, the bias and the parameters.
    type State = (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>, ConvParams);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_weight, node_bias] = ops.parents;
        let output_grad = grads.consume::<B>(&ops.node);
        let (x, weight, bias, params) = ops.state;
        if let Some(node) = node_x {
            let grad =
                B::convolution_input_grad(x.clone(), weight.clone(), output_grad.clone(), params);
            grads.register::<B>(node.id, grad);
        }
        if let Some(node) = node_weight {
            let grad = B::convolution_weight_grad(x.clone(), weight, output_grad.clone(), params);
            grads.register::<B>(node.id, grad);
        }
        if let Some(node) = node_bias {
            grads.register::<B>(node.id, B::convolution_bias_grad(x, bias, output_grad));
        }
    }
}

impl<B: Backend + ConvBackend, C: CheckpointStrategy> ConvBackend for Autodiff<B, C> {
    fn convolution(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        params: ConvParams,
    ) -> FloatTensor<Self> {
        let forward = |[x, weight, bias]: [FloatTensor<B>; 3]| {
            let output = B::convolution(x.clone(), weight.clone(), bias.clone(), params);
            (output, (x, weight, bias, params), ())
        };
        let plain =
            |[x, weight, bias]: [FloatTensor<B>; 3]| (B::convolution(x, weight, bias, params), ());
        differentiable::<B, C, _, _, 3>(ConvolutionBackward, [x, weight, bias], forward, plain).0
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::Dispatch;
    use burn::tensor::module::conv2d;
    use burn::tensor::{Device, Distribution, Tensor};

    use super::*;

    /// The output, and the gradients of `sum(conv(x, w, b) * probe)` for x, w and b.
    fn gradients(
        convolve: impl Fn(Tensor<4>, Tensor<4>, Tensor<1>) -> Tensor<4>,
        inputs: &(Tensor<4>, Tensor<4>, Tensor<1>, Tensor<4>),
    ) -> Vec<Vec<f32>> {
        let (x, w, b, probe) = inputs;
        let (x, w, b) = (
            x.clone().require_grad(),
            w.clone().require_grad(),
            b.clone().require_grad(),
        );
        let output = convolve(x.clone(), w.clone(), b.clone());
        let grads = (output.clone() * probe.clone()).sum().backward();
        let host = |t: Tensor<4>| t.into_data().try_to_vec::<f32>().unwrap();
        vec![
            host(output),
            host(x.grad(&grads).unwrap()),
            host(w.grad(&grads).unwrap()),
            b.grad(&grads)
                .unwrap()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap(),
        ]
    }

    /// Our operation against Burn's convolution on random values: output and all three gradients.
    fn check_against_burn(geometry: &ConvGeometry) {
        let device = Device::flex().autodiff();
        let params = geometry.params;
        let random =
            |shape: [usize; 4]| Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device);
        let x = random(geometry.input);
        let w = random(geometry.weight);
        let out_channels = geometry.weight[0];
        let b = Tensor::<1>::random([out_channels], Distribution::Normal(0.0, 1.0), &device);
        let [ho, wo] = geometry.output_size();
        let probe = random([geometry.input[0], out_channels, ho, wo]);
        let inputs = (x, w, b, probe);
        let ours = gradients(
            |x, w, b| {
                Tensor::from_dispatch(<Dispatch as ConvBackend>::convolution(
                    x.into_dispatch(),
                    w.into_dispatch(),
                    b.into_dispatch(),
                    params,
                ))
            },
            &inputs,
        );
        let burns = gradients(|x, w, b| conv2d(x, w, Some(b), options(params)), &inputs);
        for (what, (a, b)) in ["output", "x", "weight", "bias"]
            .iter()
            .zip(ours.iter().zip(&burns))
        {
            assert_eq!(a.len(), b.len());
            // Relative to the largest value: a gradient summed over thousands of positions
            // rounds differently in another summation order by more than 1e-5 of its small
            // entries, never of its scale.
            let scale = 1.0 + b.iter().fold(0.0f32, |m, q| m.max(q.abs()));
            let worst = a
                .iter()
                .zip(b)
                .map(|(p, q)| (p - q).abs() / scale)
                .fold(0.0f32, f32::max);
            assert!(
                worst < 1e-5,
                "{params:?}: {what} gradient differs by {worst}"
            );
        }
    }

    #[test]
    fn output_and_gradients_equal_burns_convolution() {
        // Two towers, stride 2, padding 1: every index path of the im2col kernel is exercised.
        let geometry = ConvGeometry {
            input: [3, 4, 9, 8],
            weight: [6, 2, 3, 3],
            params: ConvParams {
                stride: [2, 2],
                padding: [1, 1],
                groups: 2,
                bf16: false,
                winograd: true,
            },
        };
        check_against_burn(&geometry);
    }

    #[test]
    fn winograds_output_and_gradients_equal_burns_convolution() {
        // 3x3, stride 1, padding 1 (conv3-5's shape) with towers and odd sides, and tiles enough
        // (4 x 17 x 16 = 1,088) that Winograd's kernel takes it.
        let geometry = ConvGeometry {
            input: [4, 4, 33, 31],
            weight: [6, 2, 3, 3],
            params: ConvParams {
                stride: [1, 1],
                padding: [1, 1],
                groups: 2,
                bf16: false,
                winograd: true,
            },
        };
        assert!(winograd(&geometry), "the case is Winograd's");
        check_against_burn(&geometry);
    }
}
