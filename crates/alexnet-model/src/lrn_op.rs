//! Local response normalization as one backend operation with its own backward pass, through
//! Burn's backend-extension mechanism (`#[backend_extension]`), on the flex backend and its
//! autodiff wrapper.
//!
//! Written with tensor operations, LRN's backward pass is autodiff through a dozen of them: a
//! window sum of shifted copies (each copy's gradient a fresh zero tensor), a logarithm, an
//! exponential, products and quotients. By hand it is three products, a quotient, one window sum
//! and a difference. With `s_i = k + alpha * sum_{j in W(i)} a_j^2`, `p_i = s_i^-beta` and
//! `b_i = a_i p_i`:
//!
//! ```text
//! dL/da_i = g_i p_i - 2 alpha beta a_i * sum_{j in W(i)} g_j a_j p_j / s_j
//! ```
//!
//! (`W(i)` is symmetric: map i is in map j's window exactly when j is in i's.)
//!
//! The backward pass takes the input alone and computes `s` and `p` again: keeping them would
//! hold two more tensors the input's size from the forward pass to the backward. The trait's
//! default bodies write both passes with tensor operations (what a GPU backend would run); on
//! flex both are the direct loops of `lrn_kernel.rs`.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, unary};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Flex, TensorMetadata, backend_extension};
use burn::tensor::{DType, Shape, Slice};

use crate::autodiff_op::differentiable;
use crate::config::LrnConfig;
use crate::flex_values::{dims, floats, tensor};
use crate::lrn_kernel::{lrn_backward, lrn_forward};

#[backend_extension(Flex, Autodiff)]
pub trait LrnBackend: Backend {
    /// `[batch, channels, height, width]` -> `a * (k + alpha * window sum of a^2)^-beta`.
    fn local_response_norm(activity: FloatTensor<Self>, config: LrnConfig) -> FloatTensor<Self> {
        composed_forward::<Self>(activity, config)
    }

    /// `dL/da` from the input and the output's gradient: `s` and `p` are computed again, which
    /// costs less than keeping them (two more tensors the size of the input).
    fn local_response_norm_backward(
        activity: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        config: LrnConfig,
    ) -> FloatTensor<Self> {
        composed_backward::<Self>(activity, grad, config)
    }
}

/// The forward pass in tensor operations: the trait's default, and flex's for other dtypes.
fn composed_forward<B: Backend>(activity: FloatTensor<B>, config: LrnConfig) -> FloatTensor<B> {
    let (_, power) = scale_and_power::<B>(activity.clone(), config);
    B::float_mul(activity, power)
}

/// The backward pass in tensor operations, `s` and `p` computed again: the trait's default, and
/// flex's for other dtypes.
fn composed_backward<B: Backend>(
    activity: FloatTensor<B>,
    grad: FloatTensor<B>,
    config: LrnConfig,
) -> FloatTensor<B> {
    let (scale, power) = scale_and_power::<B>(activity.clone(), config);
    let weighted = B::float_div(
        B::float_mul(B::float_mul(grad.clone(), activity.clone()), power.clone()),
        scale,
    );
    let spread = B::float_mul(activity, window_sum::<B>(weighted, config.size));
    B::float_sub(
        B::float_mul(grad, power),
        B::float_mul_scalar(spread, (2.0 * config.alpha * config.beta).into()),
    )
}

/// On flex, the direct loops of `lrn_kernel.rs` (for f32; other dtypes take the tensor
/// operations of the trait's default bodies).
impl LrnBackend for Flex {
    fn local_response_norm(activity: FlexTensor, config: LrnConfig) -> FlexTensor {
        if activity.dtype() != DType::F32 {
            return composed_forward::<Self>(activity, config);
        }
        let shape = dims(&activity);
        let activity = activity.to_contiguous();
        let output = lrn_forward(floats(&activity), shape[2] * shape[3], shape[1], config);
        tensor(output, shape)
    }

    fn local_response_norm_backward(
        activity: FlexTensor,
        grad: FlexTensor,
        config: LrnConfig,
    ) -> FlexTensor {
        if [&activity, &grad].iter().any(|t| t.dtype() != DType::F32) {
            return composed_backward::<Self>(activity, grad, config);
        }
        let shape = dims(&activity);
        let (activity, grad) = (activity.to_contiguous(), grad.to_contiguous());
        let input_grad = lrn_backward(
            [floats(&activity), floats(&grad)],
            shape[2] * shape[3],
            shape[1],
            config,
        );
        tensor(input_grad, shape)
    }
}

fn window_sum<B: Backend>(tensor: FloatTensor<B>, size: usize) -> FloatTensor<B> {
    let shape = tensor.shape();
    let [batch, channels, height, width] = [shape[0], shape[1], shape[2], shape[3]];
    let half = size / 2;
    if half == 0 {
        return tensor;
    }
    let zeros = B::float_zeros(
        Shape::new([batch, half, height, width]),
        &tensor.device(),
        tensor.dtype().into(),
    );
    let padded = B::float_cat(vec![zeros.clone(), tensor, zeros], 1);
    let maps = |from: usize| {
        [
            Slice::from(0..batch),
            Slice::from(from..from + channels),
            Slice::from(0..height),
            Slice::from(0..width),
        ]
    };
    let mut sum = B::float_slice(padded.clone(), &maps(0));
    for offset in 1..=2 * half {
        sum = B::float_add(sum, B::float_slice(padded.clone(), &maps(offset)));
    }
    sum
}

/// `s = k + alpha * window sum of a^2` and `p = s^-beta` (as `exp(-beta ln s)`).
fn scale_and_power<B: Backend>(
    activity: FloatTensor<B>,
    LrnConfig {
        size,
        k,
        alpha,
        beta,
    }: LrnConfig,
) -> (FloatTensor<B>, FloatTensor<B>) {
    let squares = B::float_mul(activity.clone(), activity);
    let scale = B::float_add_scalar(
        B::float_mul_scalar(window_sum::<B>(squares, size), alpha.into()),
        k.into(),
    );
    let power = B::float_exp(B::float_mul_scalar(
        B::float_log(scale.clone()),
        (-beta).into(),
    ));
    (scale, power)
}

#[derive(Debug)]
struct LrnBackward;

impl<B: Backend + LrnBackend> Backward<B, 1> for LrnBackward {
    /// The input and the constants.
    type State = (FloatTensor<B>, LrnConfig);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (activity, config) = ops.state;
        unary::<B, _>(ops.parents, ops.node, grads, |grad| {
            B::local_response_norm_backward(activity, grad, config)
        });
    }
}

impl<B: Backend + LrnBackend, C: CheckpointStrategy> LrnBackend for Autodiff<B, C> {
    fn local_response_norm(activity: FloatTensor<Self>, config: LrnConfig) -> FloatTensor<Self> {
        let saving = |[activity]: [FloatTensor<B>; 1]| {
            let output = B::local_response_norm(activity.clone(), config);
            (output, (activity, config), ())
        };
        let plain =
            |[activity]: [FloatTensor<B>; 1]| (B::local_response_norm(activity, config), ());
        differentiable::<B, C, _, _, 1>(LrnBackward, [activity], saving, plain).0
    }
}
