//! Section 5's update rule in one pass over memory, on flex, through Burn's backend-extension
//! mechanism: `v := 0.9 v - 0.0005 lr w - lr g; w := w + v` for every value at once.
//!
//! Written as tensor operations (`sgd.rs`'s generic path) the rule is six passes over each
//! parameter, reading nine tensors and writing six; the weights of torchvision's AlexNet are
//! 244 MB, so those passes take about 100 ms of a 1.5-s batch-32 step on the reference machine
//! (`examples/sgd_update`: 97-121 ms, against 24-25 ms here).
//! Here each value is read from `w`, `g` and `v` and written back to `w` and `v` once, in
//! place (the first step's velocity takes the gradient's buffer), so the step allocates
//! nothing. The arithmetic is the tensor path's, in its order, so the two give the same bits.

use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Flex, TensorMetadata, backend_extension};
use burn::tensor::{DType, Shape, TensorData};
use rayon::prelude::*;

/// The step's constants, as the tensor path rounds them to f32.
#[derive(Debug, Clone, Copy)]
pub struct UpdateRates {
    /// `-lr`.
    pub gradient: f32,
    /// `weight_decay * lr`.
    pub decay: f32,
    pub momentum: f32,
}

impl UpdateRates {
    pub fn new(lr: f64, momentum: f64, weight_decay: f64) -> Self {
        Self {
            gradient: -lr as f32,
            decay: (weight_decay * lr) as f32,
            momentum: momentum as f32,
        }
    }
}

#[backend_extension(Flex)]
pub trait SgdBackend: Backend {
    /// The new weights (the shape of `weights`) and the new velocity (flattened), from the
    /// weights, their gradient and the last velocity (flattened).
    fn paper_sgd_update(
        weights: FloatTensor<Self>,
        gradient: FloatTensor<Self>,
        velocity: FloatTensor<Self>,
        rates: UpdateRates,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    /// The same on the first step, whose last velocity is zero.
    fn paper_sgd_first_update(
        weights: FloatTensor<Self>,
        gradient: FloatTensor<Self>,
        rates: UpdateRates,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);
}

impl SgdBackend for Flex {
    fn paper_sgd_update(
        weights: FlexTensor,
        gradient: FlexTensor,
        velocity: FlexTensor,
        rates: UpdateRates,
    ) -> (FlexTensor, FlexTensor) {
        let (mut weights, mut velocity) = (owned(weights), owned(velocity));
        let gradient = gradient.to_contiguous();
        update_in_place(
            f32s_mut(&mut weights),
            f32s_mut(&mut velocity),
            Some(gradient.as_slice::<f32>().expect("a contiguous f32 tensor")),
            rates,
        );
        (weights, velocity)
    }

    fn paper_sgd_first_update(
        weights: FlexTensor,
        gradient: FlexTensor,
        rates: UpdateRates,
    ) -> (FlexTensor, FlexTensor) {
        // The gradient's buffer becomes the velocity.
        let (mut weights, mut velocity) = (owned(weights), owned(gradient));
        update_in_place(f32s_mut(&mut weights), f32s_mut(&mut velocity), None, rates);
        let n = velocity.shape().num_elements();
        (weights, velocity.reshape(Shape::new([n])))
    }
}

/// `tensor` as a contiguous f32 tensor whose storage starts at its first value, so that its
/// storage can be written in place (a view is copied first).
fn owned(tensor: FlexTensor) -> FlexTensor {
    assert_eq!(
        tensor.dtype(),
        DType::F32,
        "the SGD update takes f32 tensors"
    );
    let n = tensor.shape().num_elements();
    match tensor.layout().contiguous_offsets() {
        Some((0, end)) if end == n => tensor,
        _ => {
            let values = tensor.to_contiguous().as_slice::<f32>().unwrap().to_vec();
            FlexTensor::from_data(TensorData::new(values, tensor.shape()))
        }
    }
}

/// The values of an [`owned`] tensor, to write: in place when nothing else holds its buffer
/// (after the backward pass, the weights, their velocity and their gradient), otherwise on a
/// copy (flex's copy on write).
fn f32s_mut(tensor: &mut FlexTensor) -> &mut [f32] {
    let n = tensor.shape().num_elements();
    &mut tensor.storage_mut::<f32>()[..n]
}

/// Values a task: large enough that a thread streams, small enough that both cores share
/// the smaller layers too.
const CHUNK: usize = 1 << 16;

/// The rule on every value, in place: `velocity` holds the last velocity (`gradient` given) or,
/// on the first step, the gradient itself (`None`); both it and `weights` are overwritten.
pub fn update_in_place(
    weights: &mut [f32],
    velocity: &mut [f32],
    gradient: Option<&[f32]>,
    rates: UpdateRates,
) {
    let n = weights.len();
    assert_eq!(velocity.len(), n, "one velocity a weight");
    assert!(
        gradient.is_none_or(|g| g.len() == n),
        "one gradient a weight"
    );
    let UpdateRates {
        gradient: minus_lr,
        decay,
        momentum,
    } = rates;
    weights
        .par_chunks_mut(CHUNK)
        .zip(velocity.par_chunks_mut(CHUNK))
        .enumerate()
        .for_each(|(c, (w, v))| {
            // `sgd.rs`'s order: v = g (-lr) - w (wd lr) [+ v_old momentum]; w + v.
            match gradient {
                Some(g) => {
                    let g = &g[c * CHUNK..][..w.len()];
                    for ((w, v), &g) in w.iter_mut().zip(v.iter_mut()).zip(g) {
                        *v = (g * minus_lr - *w * decay) + *v * momentum;
                        *w += *v;
                    }
                }
                None => {
                    for (w, v) in w.iter_mut().zip(v.iter_mut()) {
                        *v = *v * minus_lr - *w * decay;
                        *w += *v;
                    }
                }
            }
        });
}
