//! Section 5, the update rule, exactly as the paper writes it:
//!
//! ```text
//! v := 0.9 * v - 0.0005 * lr * w - lr * dL/dw
//! w := w + v
//! ```
//!
//! Burn's (and PyTorch's) SGD keeps `v := 0.9 v + g + wd w` and steps `w := w - lr v`: the same
//! thing while lr is constant, but not when it changes, where the paper's velocity keeps the old
//! learning rate's scale and decays smoothly into the new one. Hence our own optimizer. Its velocities
//! are keyed by the parameter's path in the model (`features.1.conv.weight`), which is also how
//! checkpoints store them.

use std::collections::HashMap;

use burn::backend::Dispatch;
use burn::module::{Module, ModuleMapper, Param};
use burn::optim::GradientsParams;
use burn::tensor::{DType, Device, Tensor};

use crate::sgd_update::{SgdBackend, UpdateRates};

pub struct PaperSgd {
    pub momentum: f64,
    pub weight_decay: f64,
    /// One flattened velocity per parameter path; absent means zero (the first step).
    pub velocities: HashMap<String, Tensor<1>>,
}

impl PaperSgd {
    pub fn new(momentum: f64, weight_decay: f64) -> Self {
        Self {
            momentum,
            weight_decay,
            velocities: HashMap::new(),
        }
    }

    /// One step of the rule on every parameter of `model` that has a gradient in `grads`.
    pub fn step<M: Module>(&mut self, lr: f64, model: M, grads: GradientsParams) -> M {
        let mut mapper = StepMapper {
            sgd: self,
            grads,
            lr,
            path: Vec::new(),
        };
        model.map(&mut mapper)
    }
}

struct StepMapper<'a> {
    sgd: &'a mut PaperSgd,
    grads: GradientsParams,
    lr: f64,
    path: Vec<String>,
}

impl ModuleMapper for StepMapper<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        let Some(grad) = self.grads.remove::<D>(id) else {
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let require_grad = tensor.is_require_grad();
        let autodiff = tensor.is_autodiff();
        let weights = tensor.inner();
        let path = self.path.join(".");
        let previous = self.sgd.velocities.remove(&path);
        let (updated, velocity) = paper_rule(
            weights,
            grad,
            previous,
            UpdateRates::new(self.lr, self.sgd.momentum, self.sgd.weight_decay),
        );
        self.sgd.velocities.insert(path, velocity);
        let mut updated = if autodiff {
            updated.autodiff()
        } else {
            updated
        };
        if require_grad {
            updated = updated.require_grad();
        }
        Param::from_mapped_value(id, updated, mapper)
    }
}

/// The rule on one parameter: the new weights and the new velocity (flattened), from the
/// weights, their gradient and the last velocity (`None`: the first step). On flex in f32 one
/// pass over memory (`sgd_update.rs`); elsewhere tensor operations.
pub fn paper_rule<const D: usize>(
    weights: Tensor<D>,
    grad: Tensor<D>,
    previous: Option<Tensor<1>>,
    rates: UpdateRates,
) -> (Tensor<D>, Tensor<1>) {
    if one_pass_applies(&weights, &grad, previous.as_ref()) {
        let (weights, grad) = (weights.into_dispatch(), grad.into_dispatch());
        let (updated, velocity) = match previous {
            Some(previous) => <Dispatch as SgdBackend>::paper_sgd_update(
                weights,
                grad,
                previous.into_dispatch(),
                rates,
            ),
            None => <Dispatch as SgdBackend>::paper_sgd_first_update(weights, grad, rates),
        };
        return (
            Tensor::from_dispatch(updated),
            Tensor::from_dispatch(velocity),
        );
    }
    tensor_rule(weights, grad, previous, rates)
}

/// Whether `paper_rule` takes the one-pass kernel: f32 tensors on flex, outside the graph.
fn one_pass_applies<const D: usize>(
    weights: &Tensor<D>,
    grad: &Tensor<D>,
    previous: Option<&Tensor<1>>,
) -> bool {
    let f32s = weights.dtype() == DType::F32
        && grad.dtype() == DType::F32
        && previous.is_none_or(|v| v.dtype() == DType::F32);
    // The device comparison ignores autodiff.
    f32s && weights.device() == Device::flex() && !weights.is_autodiff()
}

/// The rule as tensor operations, on any backend.
pub fn tensor_rule<const D: usize>(
    weights: Tensor<D>,
    grad: Tensor<D>,
    previous: Option<Tensor<1>>,
    rates: UpdateRates,
) -> (Tensor<D>, Tensor<1>) {
    let shape = weights.shape();
    let decay = weights.clone().mul_scalar(rates.decay);
    let mut velocity = grad.mul_scalar(rates.gradient) - decay;
    if let Some(previous) = previous {
        velocity = velocity + previous.reshape(shape).mul_scalar(rates.momentum);
    }
    let updated = weights + velocity.clone();
    (updated, velocity.flatten(0, D - 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    #[derive(Module, Debug)]
    struct Weights {
        w: Param<Tensor<1>>,
    }

    fn step_once(sgd: &mut PaperSgd, model: Weights, input: [f32; 2], lr: f64) -> Weights {
        // Loss = sum(w * x), so dL/dw = x.
        let device = model.w.val().device();
        let x = Tensor::<1>::from_data(TensorData::new(input.to_vec(), [2]), &device);
        let loss = (model.w.val() * x).sum();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        sgd.step(lr, model, grads)
    }

    #[test]
    fn two_steps_and_a_learning_rate_change_follow_the_papers_formula() {
        let device = Device::flex().autodiff();
        let w0 = [1.0f32, -2.0];
        let model = Weights {
            w: Param::from_tensor(Tensor::from_data(
                TensorData::new(w0.to_vec(), [2]),
                &device,
            )),
        };
        let mut sgd = PaperSgd::new(0.9, 0.0005);
        let g1 = [0.5f32, 0.25];
        let g2 = [-1.0f32, 2.0];
        let model = step_once(&mut sgd, model, g1, 0.01);
        let model = step_once(&mut sgd, model, g2, 0.001);
        let got = model.w.val().into_data().try_to_vec::<f32>().unwrap();

        // By hand: v1 = -wd lr1 w0 - lr1 g1; w1 = w0 + v1; v2 = 0.9 v1 - wd lr2 w1 - lr2 g2; w2 = w1 + v2.
        for i in 0..2 {
            let (w0, g1, g2) = (w0[i] as f64, g1[i] as f64, g2[i] as f64);
            let v1 = -0.0005 * 0.01 * w0 - 0.01 * g1;
            let w1 = w0 + v1;
            let v2 = 0.9 * v1 - 0.0005 * 0.001 * w1 - 0.001 * g2;
            let w2 = w1 + v2;
            assert!(
                (got[i] as f64 - w2).abs() < 1e-6,
                "w[{i}] = {}, want {w2}",
                got[i]
            );
            // PyTorch's form (and Burn's) would give w1 - lr2 (0.9 (g1 + wd w0) + g2 + wd w1):
            // what we computed is not that.
            let torch = w1 - 0.001 * (0.9 * (g1 + 0.0005 * w0) + g2 + 0.0005 * w1);
            assert!(
                (got[i] as f64 - torch).abs() > 1e-4,
                "w[{i}] took PyTorch's step"
            );
        }
        assert!(
            model.w.val().is_require_grad(),
            "the updated weights still train"
        );
        assert_eq!(sgd.velocities.len(), 1);
    }

    #[test]
    fn the_one_pass_update_gives_the_tensor_rules_bits() {
        use burn::tensor::Distribution;
        let device = Device::flex();
        let shape = [3, 5, 7, 131]; // an odd length, not a whole number of the kernel's chunks
        let normal = |std| Tensor::<4>::random(shape, Distribution::Normal(0.0, std), &device);
        let (weights, grad) = (normal(0.1), normal(1.0));
        let original = weights.clone().into_data();
        let original = Tensor::<4>::from_data(original, &device);
        let previous = normal(0.01).flatten::<1>(0, 3);
        let host = |t: Tensor<1>| t.into_data().try_to_vec::<f32>().unwrap();
        let rates = UpdateRates::new(0.013, 0.9, 0.0005);
        for previous in [None, Some(previous)] {
            assert!(one_pass_applies(&weights, &grad, previous.as_ref()));
            let (fused_w, fused_v) =
                paper_rule(weights.clone(), grad.clone(), previous.clone(), rates);
            let (tensor_w, tensor_v) = tensor_rule(weights.clone(), grad.clone(), previous, rates);
            assert_eq!(fused_w.dims(), shape);
            assert_eq!(host(fused_w.flatten(0, 3)), host(tensor_w.flatten(0, 3)));
            assert_eq!(host(fused_v), host(tensor_v));
        }
        // The one pass wrote into copies: the weights it was handed a shared view of are as
        // they were (flex's copy on write).
        assert_eq!(host(weights.flatten(0, 3)), host(original.flatten(0, 3)));
    }
}
