//! Section 5's update rule on the parameters of torchvision's AlexNet (`alexnet-owt`, 61.1
//! million values in 16 tensors), best of 10, in ms: as tensor operations (`sgd::tensor_rule`,
//! what other backends run) and in one pass (`sgd_update.rs`, flex's), with the bytes each must
//! move at least (read weights, gradient and velocity, write two).
//!
//!     cargo run --release -p alexnet-cli --example sgd_update

use alexnet_model::alexnet::layer_table;
use alexnet_model::{Arch, ModelConfig};
use alexnet_train::sgd::{paper_rule, tensor_rule};
use alexnet_train::sgd_update::UpdateRates;
use burn::tensor::{Device, Distribution, Tensor};
use std::time::Instant;

mod common;

fn main() {
    let device = Device::flex();
    let table = layer_table(&ModelConfig::new(Arch::AlexnetOwt, 1000)).unwrap();
    let convs = table.convs.iter().map(|c| {
        let weights = c.out_channels * (c.in_channels / c.groups) * c.kernel * c.kernel;
        [weights, c.out_channels]
    });
    let fcs = table.fcs.iter().map(|f| [f.inputs * f.outputs, f.outputs]);
    let sizes: Vec<usize> = convs.chain(fcs).flatten().collect();
    let n: usize = sizes.iter().sum();
    let normal = |n, std| Tensor::<1>::random([n], Distribution::Normal(0.0, std), &device);
    let gradients: Vec<_> = sizes.iter().map(|&n| normal(n, 1.0)).collect();
    let rates = UpdateRates::new(0.01, 0.9, 0.0005);
    let gigabytes = (5 * n * 4) as f64 / 1e9;
    let run = |name: &str, rule: fn(_, _, _, _) -> (Tensor<1>, Tensor<1>)| {
        // Weights and velocities owned by the loop, as by a training run's model and optimizer.
        let mut state: Vec<_> = (sizes.iter())
            .map(|&n| (normal(n, 0.01), normal(n, 0.001)))
            .collect();
        let mut best = f64::MAX;
        for _ in 0..10 {
            let started = Instant::now();
            state = (state.into_iter().zip(&gradients))
                .map(|((w, v), g)| rule(w, g.clone(), Some(v), rates))
                .collect();
            best = best.min(started.elapsed().as_secs_f64() * 1e3);
        }
        println!(
            "{name:<18} {best:>8.1} ms {:>6.1} GB/s",
            gigabytes / best * 1e3
        );
    };
    println!("{n} weights, {gigabytes:.2} GB to move at least");
    run("tensor operations", tensor_rule);
    run("one pass", paper_rule);
}
