//! Section 5's update rule in one pass over memory, on flex, through Burn's backend-extension
//! mechanism: `v := 0.9 v - 0.0005 lr w - lr g; w := w + v` for every value at once.
//!
//! Written as tensor operations (`sgd.rs`'s generic path) the rule is six passes over each
//! parameter, reading nine tensors and writing six; the weights of torchvision's AlexNet are
//! 244 MB, so those passes took 85-110 ms of a 1.5-s batch-32 step on the reference machine.
//! Here each value is read from `w`, `g` and `v` and written to the new `w` and `v` once. The
//! arithmetic is the tensor path's, in its order, so the two give the same bits.

use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Flex, TensorMetadata, backend_extension};
use burn::tensor::{DType, TensorData};
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
        flex_update(weights, gradient, Some(velocity), rates)
    }

    fn paper_sgd_first_update(
        weights: FlexTensor,
        gradient: FlexTensor,
        rates: UpdateRates,
    ) -> (FlexTensor, FlexTensor) {
        flex_update(weights, gradient, None, rates)
    }
}

fn values(tensor: &FlexTensor) -> &[f32] {
    tensor.as_slice::<f32>().expect("a contiguous f32 tensor")
}

fn flex_update(
    weights: FlexTensor,
    gradient: FlexTensor,
    velocity: Option<FlexTensor>,
    rates: UpdateRates,
) -> (FlexTensor, FlexTensor) {
    let all_f32 = [Some(&weights), Some(&gradient), velocity.as_ref()]
        .into_iter()
        .flatten()
        .all(|t| t.dtype() == DType::F32);
    assert!(all_f32, "the SGD update takes f32 tensors");
    let shape = weights.shape();
    let (weights, gradient) = (weights.to_contiguous(), gradient.to_contiguous());
    let velocity = velocity.map(|v| v.to_contiguous());
    let (updated, new_velocity) = update_values(
        values(&weights),
        values(&gradient),
        velocity.as_ref().map(values),
        rates,
    );
    let n = updated.len();
    (
        FlexTensor::from_data(TensorData::new(updated, shape)),
        FlexTensor::from_data(TensorData::new(new_velocity, [n])),
    )
}

/// Values a task: large enough that a thread streams, small enough that both cores share
/// the smaller layers too.
const CHUNK: usize = 1 << 16;

/// The rule on every value: (new weights, new velocity).
pub fn update_values(
    weights: &[f32],
    gradient: &[f32],
    velocity: Option<&[f32]>,
    rates: UpdateRates,
) -> (Vec<f32>, Vec<f32>) {
    let n = weights.len();
    assert_eq!(gradient.len(), n, "one gradient a weight");
    assert!(
        velocity.is_none_or(|v| v.len() == n),
        "one velocity a weight"
    );
    // Written once each, below: not zeroed first (a pass over 2 x 4n bytes for nothing).
    let (mut updated, mut new_velocity) = (Vec::with_capacity(n), Vec::with_capacity(n));
    updated.spare_capacity_mut()[..n]
        .par_chunks_mut(CHUNK)
        .zip(new_velocity.spare_capacity_mut()[..n].par_chunks_mut(CHUNK))
        .enumerate()
        .for_each(|(c, (w_out, v_out))| {
            let range = c * CHUNK..c * CHUNK + w_out.len();
            let (w, g) = (&weights[range.clone()], &gradient[range.clone()]);
            let outputs = w_out.iter_mut().zip(v_out.iter_mut());
            // `sgd.rs`'s order: v = g (-lr) - w (wd lr) [+ v_old momentum]; w + v.
            match velocity {
                Some(old) => {
                    let inputs = w.iter().zip(g).zip(&old[range]);
                    for ((w_new, v_new), ((&w, &g), &old)) in outputs.zip(inputs) {
                        let v = (g * rates.gradient - w * rates.decay) + old * rates.momentum;
                        v_new.write(v);
                        w_new.write(w + v);
                    }
                }
                None => {
                    for ((w_new, v_new), (&w, &g)) in outputs.zip(w.iter().zip(g)) {
                        let v = g * rates.gradient - w * rates.decay;
                        v_new.write(v);
                        w_new.write(w + v);
                    }
                }
            }
        });
    // SAFETY: the chunks above cover 0..n of both, and each value of each was written.
    unsafe {
        updated.set_len(n);
        new_velocity.set_len(n);
    }
    (updated, new_velocity)
}
