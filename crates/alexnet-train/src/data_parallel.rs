//! Data parallelism: every rank holds the same network, computes the gradient of its share of the
//! batch, and the shares' gradients are combined before the update, so that every rank takes the
//! step one process would take on the whole batch (the paper's 128 images stay the batch; the
//! ranks split it).
//!
//! The loss is a mean over the images a rank saw, so rank r's gradient is weighted by its share
//! n_r / n of the batch: sum_r (n_r / n) g_r is the gradient of the mean over all n images.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};

use crate::peers::{PeerError, Peers};

/// What a step adds to the epoch's totals, summed over ranks along with the gradients.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct StepTotals {
    /// The loss summed over the images (mean loss x images).
    pub loss_sum: f64,
    pub misses: usize,
    pub images: usize,
}

/// Replaces each rank's gradients of `model` with the batch's, and its step totals with the
/// batch's. `global_images` is the whole batch's size; this rank's share is `local.images`.
pub fn all_reduce_gradients<M: Module>(
    peers: &mut Peers,
    model: &M,
    mut gradients: GradientsParams,
    local: StepTotals,
    global_images: usize,
    device: &Device,
) -> Result<(GradientsParams, StepTotals), PeerError> {
    let weight = local.images as f32 / global_images as f32;
    let mut flatten = Flatten {
        gradients: &mut gradients,
        weight,
        values: Vec::new(),
        shapes: Vec::new(),
    };
    model.visit(&mut flatten);
    let Flatten {
        mut values, shapes, ..
    } = flatten;
    // The totals ride along in the same message. f32 holds these counts exactly (below 2^24).
    values.extend([
        local.loss_sum as f32,
        local.misses as f32,
        local.images as f32,
    ]);
    peers.all_reduce_sum(&mut values)?;
    let tail = values.len() - 3;
    let totals = StepTotals {
        loss_sum: values[tail] as f64,
        misses: values[tail + 1] as usize,
        images: values[tail + 2] as usize,
    };
    let mut restore = Restore {
        gradients: GradientsParams::new(),
        values: &values[..tail],
        shapes: shapes.into_iter(),
        device,
    };
    model.visit(&mut restore);
    Ok((restore.gradients, totals))
}

/// Takes every parameter's gradient out, weighted, into one flat buffer (zeros for a parameter
/// without one: a rank with an empty share has none, and still takes part).
struct Flatten<'a> {
    gradients: &'a mut GradientsParams,
    weight: f32,
    values: Vec<f32>,
    shapes: Vec<Vec<usize>>,
}

impl ModuleVisitor for Flatten<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let shape = param.val().shape().dims::<D>().to_vec();
        match self.gradients.remove::<D>(param.id) {
            Some(gradient) => {
                let host = gradient
                    .into_data()
                    .convert::<f32>()
                    .try_into_vec::<f32>()
                    .expect("f32 gradient");
                self.values.extend(host.iter().map(|g| g * self.weight));
            }
            None => self
                .values
                .extend(std::iter::repeat_n(0.0, shape.iter().product())),
        }
        self.shapes.push(shape);
    }
}

/// Puts the summed gradients back, parameter by parameter, in the order [`Flatten`] took them.
struct Restore<'a, S> {
    gradients: GradientsParams,
    values: &'a [f32],
    shapes: S,
    device: &'a Device,
}

impl<S: Iterator<Item = Vec<usize>>> ModuleVisitor for Restore<'_, S> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let shape = self.shapes.next().expect("one shape per parameter");
        let (mine, rest) = self.values.split_at(shape.iter().product());
        self.values = rest;
        let gradient = Tensor::<D>::from_data(TensorData::new(mine.to_vec(), shape), self.device);
        self.gradients.register::<D>(param.id, gradient);
    }
}
