//! The whole network against PyTorch, in the style of llm.c: for the paper's AlexNet and for
//! alexnet-cifar, with fixed weights and a fixed input, the logits, the cross-entropy loss and
//! every parameter's gradient must be PyTorch's. The reference is
//! `fixtures/pytorch-reference/whole-model.json`, written once by
//! `benchmarks/whole_model_reference.py`; this test needs no Python.
//!
//! Weights and inputs are an integer hash of each value's position (the rule below, the
//! script's): nothing random, nothing stored.

use std::collections::HashMap;

use alexnet_model::{AlexNet, Arch, ModelConfig};
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::Gradients;
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde_json::Value;

/// `count` values in [-0.5, 0.5): ((e * 2654435761 + seed * 40503) mod 2^32) / 2^32 - 0.5.
fn uniform(count: usize, seed: u64) -> Vec<f64> {
    (0..count as u64)
        .map(|e| {
            let h = (e * 2_654_435_761 + seed * 40_503) % (1 << 32);
            h as f64 / (1u64 << 32) as f64 - 0.5
        })
        .collect()
}

/// Burn keeps a linear layer's weight as `[inputs, outputs]`, PyTorch as `[outputs, inputs]`:
/// the position in Burn's layout of PyTorch's flat position `e`.
fn burn_position(e: usize, dims: &[usize]) -> usize {
    match *dims {
        [inputs, outputs] => (e % inputs) * outputs + e / inputs,
        _ => e,
    }
}

/// Sets parameter p (in the network's order, which is PyTorch's) to the script's values:
/// weights scaled by 1 / sqrt(fan-in), biases by 0.1, seed p + 1.
struct Fill {
    index: u64,
}

impl ModuleMapper for Fill {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        let dims = tensor.dims();
        let count: usize = dims.iter().product();
        let scale = match D {
            1 => 0.1,
            // A linear layer's fan-in is its inputs, Burn's first dimension.
            2 => 1.0 / (dims[0] as f64).sqrt(),
            // A convolution's: the input maps of its group times the kernel's area.
            _ => 1.0 / ((count / dims[0]) as f64).sqrt(),
        };
        self.index += 1;
        let mut values = vec![0.0f32; count];
        for (e, u) in uniform(count, self.index).iter().enumerate() {
            values[burn_position(e, &dims)] = (u * scale) as f32;
        }
        let value =
            Tensor::<D>::from_data(TensorData::new(values, dims.to_vec()), &tensor.device())
                .require_grad();
        Param::from_mapped_value(id, value, mapper)
    }
}

/// Every parameter's gradient, by path.
struct Collect<'a> {
    grads: &'a Gradients,
    path: Vec<String>,
    out: HashMap<String, Vec<f32>>,
}

impl ModuleVisitor for Collect<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let grad = param
            .val()
            .grad(self.grads)
            .expect("every parameter has a gradient");
        let dims = grad.dims().to_vec();
        let burn_order = grad
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .unwrap();
        // In PyTorch's order, so that the reference's positions index it directly.
        let pytorch_order = (0..burn_order.len())
            .map(|e| burn_order[burn_position(e, &dims)])
            .collect();
        self.out.insert(self.path.join("."), pytorch_order);
    }
}

fn reference() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/pytorch-reference/whole-model.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("the committed reference"))
        .expect("the reference is JSON")
}

/// Relative to the largest value compared. Measured here: logits within 3.2e-7, gradients within
/// 3.7e-6 (float rounding of two different convolution algorithms). LRN's alpha off by the
/// factor n = 5 (PyTorch's convention) moves the logits by 3.9e-4 and the gradients by 0.34.
const LOGIT_TOLERANCE: f64 = 1e-5;
const GRADIENT_TOLERANCE: f64 = 1e-4;

fn check(case: &Value) {
    let name = case["model"].as_str().unwrap();
    let arch: Arch = name.parse().unwrap();
    let classes = case["classes"].as_u64().unwrap() as usize;
    let batch = case["batch"].as_u64().unwrap() as usize;
    let side = case["side"].as_u64().unwrap() as usize;
    let device = Device::flex().autodiff();
    let config = ModelConfig {
        dropout: 0.0,
        ..ModelConfig::new(arch, classes)
    };
    let model = AlexNet::new(&config, &device)
        .unwrap()
        .map(&mut Fill { index: 0 });
    let images: Vec<f32> = uniform(batch * 3 * side * side, 1000)
        .iter()
        .map(|u| (u * 100.0) as f32)
        .collect();
    let images = Tensor::<4>::from_data(TensorData::new(images, [batch, 3, side, side]), &device);
    let targets: Vec<i64> = (0..batch).map(|i| (i % classes) as i64).collect();
    let targets = Tensor::<1, Int>::from_data(TensorData::new(targets, [batch]), &device);

    let logits = model.forward(images);
    let loss = CrossEntropyLossConfig::new()
        .init(&device)
        .forward(logits.clone(), targets);
    let ours: Vec<f32> = logits.clone().into_data().try_to_vec::<f32>().unwrap();
    let theirs: Vec<f64> = case["logits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(ours.len(), theirs.len());
    let largest = theirs.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let mut worst_logit = 0.0f64;
    for (a, b) in ours.iter().zip(&theirs) {
        worst_logit = worst_logit.max((*a as f64 - b).abs() / largest);
    }
    assert!(
        worst_logit < LOGIT_TOLERANCE,
        "{name}: logits differ by {worst_logit:e} of the largest"
    );
    let our_loss = loss.clone().into_scalar::<f32>() as f64;
    let their_loss = case["loss"].as_f64().unwrap();
    assert!(
        (our_loss - their_loss).abs() < 1e-4 * their_loss.abs().max(1.0),
        "{name}: loss {our_loss} against {their_loss}"
    );

    let grads = loss.backward();
    let mut collect = Collect {
        grads: &grads,
        path: Vec::new(),
        out: HashMap::new(),
    };
    model.visit(&mut collect);
    let expected = case["gradients"].as_object().unwrap();
    assert_eq!(collect.out.len(), expected.len(), "{name}: parameter count");
    let mut worst = (0.0f64, String::new());
    for (path, summary) in expected {
        let ours = collect
            .out
            .get(path)
            .unwrap_or_else(|| panic!("{name}: no parameter {path}"));
        let max_abs = summary["max_abs"].as_f64().unwrap().max(1e-12);
        let mut compare = |what: &str, a: f64, b: f64, scale: f64| {
            let error = (a - b).abs() / scale;
            if error > worst.0 {
                worst = (error, format!("{path} {what}: ours {a:e}, PyTorch {b:e}"));
            }
        };
        let our_sum_abs: f64 = ours.iter().map(|g| g.abs() as f64).sum();
        let their_sum_abs = summary["sum_abs"].as_f64().unwrap();
        compare(
            "sum |g|",
            our_sum_abs,
            their_sum_abs,
            their_sum_abs.max(1e-12),
        );
        let our_max = ours.iter().fold(0.0f64, |m, g| m.max(g.abs() as f64));
        compare("max |g|", our_max, max_abs, max_abs);
        for sample in summary["samples"].as_array().unwrap() {
            let index = sample[0].as_u64().unwrap() as usize;
            let value = sample[1].as_f64().unwrap();
            compare(&format!("[{index}]"), ours[index] as f64, value, max_abs);
        }
    }
    eprintln!(
        "{name}: logits within {worst_logit:.1e}, loss {our_loss} vs {their_loss}, worst gradient \
         difference {:.1e} ({})",
        worst.0, worst.1
    );
    assert!(
        worst.0 < GRADIENT_TOLERANCE,
        "{name}: gradients differ by {:e}: {}",
        worst.0,
        worst.1
    );
}

#[test]
fn alexnet_cifar_logits_loss_and_gradients_are_pytorchs() {
    check(&reference()["cases"][0]);
}

#[test]
fn the_papers_alexnet_logits_loss_and_gradients_are_pytorchs() {
    check(&reference()["cases"][1]);
}
