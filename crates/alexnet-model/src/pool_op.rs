//! Max pooling (no padding) as one backend operation with its own backward pass, through Burn's
//! backend-extension mechanism, as `lrn_op.rs` and `conv_op.rs` do: on flex both passes are
//! `pool_kernel.rs`'s loops; other backends get Burn's max pooling from the default bodies.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, unary};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::{Autodiff, Backend, Flex, backend_extension};
use burn::tensor::{DType, IntDType};

use crate::autodiff_op::differentiable;
use crate::flex_values::{dims, floats, ints, tensor};
pub use crate::pool_kernel::PoolWindow;
use crate::pool_kernel::{max_pool_backward, max_pool_forward};

#[backend_extension(Flex, Autodiff)]
pub trait PoolBackend: Backend {
    /// The maximum of each `kernel` window moved by `stride`, and where each one was.
    fn max_pool_saving(
        x: FloatTensor<Self>,
        window: PoolWindow,
    ) -> (FloatTensor<Self>, IntTensor<Self>) {
        burns_max_pool::<Self>(x, window)
    }

    /// The input's gradient from the output's and the positions of the maxima.
    fn max_pool_backward(
        x: FloatTensor<Self>,
        positions: IntTensor<Self>,
        output_grad: FloatTensor<Self>,
        window: PoolWindow,
    ) -> FloatTensor<Self> {
        burns_max_pool_backward::<Self>(x, positions, output_grad, window)
    }
}

/// Burn's own max pooling without padding: the trait's default, and flex's for other dtypes.
fn burns_max_pool<B: Backend>(
    x: FloatTensor<B>,
    window: PoolWindow,
) -> (FloatTensor<B>, IntTensor<B>) {
    let pooled = B::max_pool2d_with_indices(
        x,
        window.size,
        window.stride,
        [0, 0],
        [1, 1],
        false,
        IntDType::I64,
    );
    (pooled.output, pooled.indices)
}

fn burns_max_pool_backward<B: Backend>(
    x: FloatTensor<B>,
    positions: IntTensor<B>,
    output_grad: FloatTensor<B>,
    window: PoolWindow,
) -> FloatTensor<B> {
    B::max_pool2d_with_indices_backward(
        x,
        window.size,
        window.stride,
        [0, 0],
        [1, 1],
        false,
        output_grad,
        positions,
    )
    .x_grad
}

impl PoolBackend for Flex {
    fn max_pool_saving(x: FlexTensor, window: PoolWindow) -> (FlexTensor, FlexTensor) {
        if x.dtype() != DType::F32 {
            return burns_max_pool::<Self>(x, window);
        }
        let [batch, channels, height, width] = dims(&x);
        let x = x.to_contiguous();
        let (output, positions) = max_pool_forward(floats(&x), [height, width], window);
        let [ho, wo] = window.pooled_size([height, width]);
        let shape = [batch, channels, ho, wo];
        (tensor(output, shape), tensor(positions, shape))
    }

    fn max_pool_backward(
        x: FlexTensor,
        positions: FlexTensor,
        output_grad: FlexTensor,
        window: PoolWindow,
    ) -> FlexTensor {
        if positions.dtype() != DType::I32 || output_grad.dtype() != DType::F32 {
            return burns_max_pool_backward::<Self>(x, positions, output_grad, window);
        }
        let shape = dims(&x);
        let [_, _, ho, wo] = dims(&output_grad);
        let (positions, output_grad) = (positions.to_contiguous(), output_grad.to_contiguous());
        let input_grad = max_pool_backward(
            floats(&output_grad),
            ints(&positions),
            [shape[2], shape[3]],
            [ho, wo],
        );
        tensor(input_grad, shape)
    }
}

#[derive(Debug)]
struct MaxPoolBackward;

impl<B: Backend + PoolBackend> Backward<B, 1> for MaxPoolBackward {
    /// The input, the positions of the maxima and the window.
    type State = (FloatTensor<B>, IntTensor<B>, PoolWindow);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (x, positions, window) = ops.state;
        unary::<B, _>(ops.parents, ops.node, grads, |grad| {
            B::max_pool_backward(x, positions, grad, window)
        });
    }
}

impl<B: Backend + PoolBackend, C: CheckpointStrategy> PoolBackend for Autodiff<B, C> {
    fn max_pool_saving(
        x: FloatTensor<Self>,
        window: PoolWindow,
    ) -> (FloatTensor<Self>, IntTensor<Self>) {
        let saving = |[x]: [FloatTensor<B>; 1]| {
            let (output, positions) = B::max_pool_saving(x.clone(), window);
            (output, (x, positions.clone(), window), positions)
        };
        let plain = |[x]: [FloatTensor<B>; 1]| B::max_pool_saving(x, window);
        differentiable::<B, C, _, _, 1>(MaxPoolBackward, [x], saving, plain)
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::Dispatch;
    use burn::nn::pool::MaxPool2dConfig;
    use burn::tensor::{Device, Distribution, Tensor};

    use super::*;

    #[test]
    fn output_and_gradient_equal_burns_max_pooling() {
        // Random values have no ties, so both agree on where every maximum is.
        let device = Device::flex().autodiff();
        let input = Tensor::<4>::random([2, 3, 9, 11], Distribution::Normal(0.0, 1.0), &device);
        let probe = Tensor::<4>::random([2, 3, 4, 5], Distribution::Normal(0.0, 1.0), &device);
        let run = |ours: bool| {
            let x = input.clone().require_grad();
            let y = if ours {
                let (output, _) = <Dispatch as PoolBackend>::max_pool_saving(
                    x.clone().into_dispatch(),
                    PoolWindow {
                        size: [3, 3],
                        stride: [2, 2],
                    },
                );
                Tensor::from_dispatch(output)
            } else {
                MaxPool2dConfig::new([3, 3])
                    .with_strides([2, 2])
                    .init()
                    .forward(x.clone())
            };
            let grads = (y.clone() * probe.clone()).sum().backward();
            let host = |t: Tensor<4>| t.into_data().try_to_vec::<f32>().unwrap();
            (host(y.inner()), host(x.grad(&grads).unwrap()))
        };
        let (ours, burns) = (run(true), run(false));
        assert_eq!(ours.0, burns.0);
        assert_eq!(ours.1, burns.1);
        // The gradient is not trivially zero: every output sent its probe value somewhere.
        assert!(ours.1.iter().filter(|g| **g != 0.0).count() >= 30);
    }
}
