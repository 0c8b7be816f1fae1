//! The two-tower split (Section 3.2) against the whole network: two threads each hold one tower,
//! joined by channels as the link (MPI joins two processes the same way in training), and the
//! logits both towers compute, the loss's gradient of every parameter of each tower and of the
//! input (the sum of the towers') must be the whole network's, to float rounding.

use alexnet_model::tower_exchange::thread_link_pair;
use alexnet_model::towers::{join_towers, tower_part};
use alexnet_model::{AlexNet, Arch, Init, ModelConfig};
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::{Device, Gradients, Int, Tensor, TensorData};

mod common;
use common::values;

/// Every parameter as (shape, values), in the network's order.
struct Values(Vec<(Vec<usize>, Vec<f32>)>);

impl ModuleVisitor for Values {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let tensor = param.val();
        self.0.push((tensor.dims().to_vec(), host(tensor)));
    }
}

/// Every parameter's gradient, in the network's order.
struct Grads<'a>(&'a Gradients, Vec<(Vec<usize>, Vec<f32>)>);

impl ModuleVisitor for Grads<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let grad = param
            .val()
            .grad(self.0)
            .expect("every parameter has a gradient");
        self.1.push((grad.dims().to_vec(), host(grad)));
    }
}

/// Sets each parameter of a tower to its part of the whole network's.
struct LoadPart<'a> {
    whole: std::slice::Iter<'a, (Vec<usize>, Vec<f32>)>,
    tower: usize,
}

impl ModuleMapper for LoadPart<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        let (dims, values) = self.whole.next().expect("as many parameters as the whole");
        let (part_dims, part) = tower_part(dims, values, self.tower);
        assert_eq!(
            part_dims,
            tensor.dims().to_vec(),
            "a tower's parameter shape"
        );
        let value = Tensor::<D>::from_data(TensorData::new(part, part_dims), &tensor.device())
            .require_grad();
        Param::from_mapped_value(id, value, mapper)
    }
}

/// Replaces every parameter by fixed values of the scale of Kaiming's initialization: a weight
/// uniform within +-sqrt(6 / fan-in), a bias within 0..0.2.
struct FixedValues {
    seed: u64,
}

impl ModuleMapper for FixedValues {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        let dims = tensor.dims().to_vec();
        self.seed += 1;
        let raw = values(dims.iter().product(), self.seed);
        let fixed: Vec<f32> = match dims[..] {
            [_] => raw.into_iter().map(|v| (v + 0.5) * 0.2).collect(),
            // A convolution's weight is [out, in, kh, kw], a linear one's [in, out].
            _ => {
                let fan_in = if D == 4 {
                    dims[1..].iter().product()
                } else {
                    dims[0]
                };
                let bound = 2.0 * (6.0 / fan_in as f32).sqrt();
                raw.into_iter().map(|v| v * bound).collect()
            }
        };
        let value =
            Tensor::<D>::from_data(TensorData::new(fixed, dims), &tensor.device()).require_grad();
        Param::from_mapped_value(id, value, mapper)
    }
}

fn host<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap()
}

/// The largest difference relative to the largest value of `want`.
fn relative_error(got: &[f32], want: &[f32]) -> f64 {
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs())) as f64;
    let worst = got
        .iter()
        .zip(want)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs())) as f64;
    worst / scale.max(1e-30)
}

struct Pass {
    logits: Vec<f32>,
    grads: Vec<(Vec<usize>, Vec<f32>)>,
    input_grad: Vec<f32>,
}

/// The loss of `model` on `images`, its logits and gradients. (Each pass makes its own input
/// tensor: the towers' threads sharing one would share one autodiff graph, whose lock the first
/// backward pass holds while it waits for the other tower.)
fn pass(model: &AlexNet, images: &TensorData, classes: usize, device: &Device) -> Pass {
    let batch = images.shape()[0];
    let images = Tensor::<4>::from_data(images.clone(), device).require_grad();
    let targets: Vec<i64> = (0..batch).map(|i| (i * 3 % classes) as i64).collect();
    let targets = Tensor::<1, Int>::from_data(TensorData::new(targets, [batch]), device);
    let logits = model.forward(images.clone());
    let loss = CrossEntropyLossConfig::new()
        .init(device)
        .forward(logits.clone(), targets);
    let gradients = loss.backward();
    let mut grads = Grads(&gradients, Vec::new());
    model.visit(&mut grads);
    Pass {
        logits: host(logits),
        grads: grads.1,
        input_grad: host(images.grad(&gradients).unwrap()),
    }
}

/// The whole network and its two towers on the same weights and images.
fn compare(config: ModelConfig, batch: usize) {
    let device = Device::flex().autodiff();
    // Fixed weights and images, the same on every run: with fresh random ones, about one draw in
    // four put a ReLU's input or two pooled values within rounding of each other, and the towers'
    // different (equally right) order of summation then sent one unit's gradient the other way
    // (the input gradient 6.9e-3 off).
    let whole = AlexNet::new(&config, &device)
        .unwrap()
        .map(&mut FixedValues { seed: 1 });
    let mut parameters = Values(Vec::new());
    whole.visit(&mut parameters);
    let side = config.input_size();
    // Pixels of the size a mean-subtracted image has (-60..60), so that the response
    // normalization's denominator is far from its constant k (and the maps at the towers'
    // boundary matter).
    let pixels = values(batch * 3 * side * side, 99)
        .into_iter()
        .map(|v| v * 120.0)
        .collect::<Vec<_>>();
    let images = TensorData::new(pixels, [batch, 3, side, side]);
    let classes = config.num_classes;
    let reference = pass(&whole, &images, classes, &device);
    let towers: Vec<Pass> = std::thread::scope(|scope| {
        let handles: Vec<_> = thread_link_pair()
            .into_iter()
            .map(|link| {
                let (config, parameters, images, device) = (&config, &parameters, &images, &device);
                scope.spawn(move || {
                    let tower = link.tower();
                    let model = AlexNet::tower(config, link, device)
                        .unwrap()
                        .map(&mut LoadPart {
                            whole: parameters.0.iter(),
                            tower,
                        });
                    pass(&model, images, classes, device)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (tower, result) in towers.iter().enumerate() {
        let error = relative_error(&result.logits, &reference.logits);
        assert!(error < 1e-5, "tower {tower}'s logits off by {error:e}");
    }
    // Both towers' conv1 read the image: its gradient is the sum of theirs.
    let input_grad: Vec<f32> = (towers[0].input_grad.iter().zip(&towers[1].input_grad))
        .map(|(a, b)| a + b)
        .collect();
    let error = relative_error(&input_grad, &reference.input_grad);
    assert!(error < 1e-4, "the input gradient off by {error:e}");
    // Each parameter's gradient: the whole network's is the towers' parts, joined.
    assert_eq!(towers[0].grads.len(), reference.grads.len());
    for (index, want) in reference.grads.iter().enumerate() {
        let (first, second) = (&towers[0].grads[index], &towers[1].grads[index]);
        let (dims, joined) = join_towers((&first.0, &first.1), (&second.0, &second.1));
        assert_eq!(dims, want.0, "parameter {index}'s shape");
        let error = relative_error(&joined, &want.1);
        assert!(
            error < 1e-4,
            "parameter {index}'s gradient off by {error:e}"
        );
    }
}

#[test]
fn the_papers_two_towers_compute_the_whole_networks_logits_and_gradients() {
    let config = ModelConfig {
        dropout: 0.0,
        init: Init::Kaiming,
        ..ModelConfig::new(Arch::Alexnet, 10)
    };
    compare(config, 2);
}

#[test]
fn alexnet_cifar_with_two_towers_and_an_odd_number_of_classes_splits_the_same_way() {
    let config = ModelConfig {
        dropout: 0.0,
        init: Init::Kaiming,
        towers: Some(2),
        ..ModelConfig::new(Arch::AlexnetCifar, 7)
    };
    compare(config, 3);
}

#[test]
fn a_parameter_splits_along_its_outputs_and_joins_back() {
    // A linear weight [in = 2, out = 3]: tower 0 holds output columns 0 and 1, tower 1 column 2.
    let dims = [2, 3];
    let values = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    let first = tower_part(&dims, &values, 0);
    let second = tower_part(&dims, &values, 1);
    assert_eq!(first, (vec![2, 2], vec![1.0, 2.0, 4.0, 5.0]));
    assert_eq!(second, (vec![2, 1], vec![3.0, 6.0]));
    let joined = join_towers((&first.0, &first.1), (&second.0, &second.1));
    assert_eq!(joined, (dims.to_vec(), values.to_vec()));
    // A convolution's weight [out = 2, in = 1, 1, 2] splits by rows.
    let conv = tower_part(&[2, 1, 1, 2], &[1.0, 2.0, 3.0, 4.0], 1);
    assert_eq!(conv, (vec![1, 1, 1, 2], vec![3.0, 4.0]));
}

#[test]
fn a_one_tower_network_cannot_be_split() {
    let config = ModelConfig::new(Arch::AlexnetCifar, 10);
    let [link, _] = thread_link_pair();
    let error = AlexNet::tower(&config, link, &Device::flex()).unwrap_err();
    assert_eq!(error.field(), "model.towers");
}
