//! The fully connected layers of inference at a few images (batch 1 by default, or the first
//! argument), at the shapes of torchvision's and the paper's classifier: fc6 (9,216 -> 4,096),
//! fc7 (4,096 -> 4,096), fc8 (4,096 -> 1,000). Each layer best of 10, in ms, by Burn's `Linear`
//! on flex (the `gemm` crate) and by `linear_op.rs`'s streamed product, with the rate at which
//! each reads the weights: at one image a layer is the time of reading them once. Then the
//! same layers in training (forward and backward on the autodiff device), both ways.
//!
//!     cargo run --release -p alexnet-cli --example fully_connected [-- ROWS]

use alexnet_model::linear_op::{fully_connected, streamed_product};
use burn::nn::LinearConfig;
use burn::tensor::{Device, Distribution, Tensor};

mod common;
use common::{best_ms, values};

fn main() {
    let rows: usize = std::env::args()
        .nth(1)
        .map_or(1, |b| b.parse().expect("ROWS: a number"));
    let device = Device::flex();
    println!("{rows} row(s); ms and the weights' GB/s");
    println!(
        "{:<6} {:>16} {:>16} {:>16}",
        "layer", "Burn's Linear", "streamed", "streamed (raw)"
    );
    for (name, inputs, outputs) in [
        ("fc6", 9216, 4096),
        ("fc7", 4096, 4096),
        ("fc8", 4096, 1000),
    ] {
        let linear = LinearConfig::new(inputs, outputs).init(&device);
        let x = Tensor::<2>::random([rows, inputs], Distribution::Normal(0.0, 1.0), &device);
        let burns = best_ms(|| linear.forward(x.clone()).into_data());
        let ours = best_ms(|| fully_connected(&linear, x.clone()).into_data());
        let (xs, w, b) = (
            values(rows * inputs, 1),
            values(inputs * outputs, 2),
            values(outputs, 3),
        );
        let raw = best_ms(|| streamed_product(&xs, &w, &b, [rows, inputs, outputs]));
        let gigabytes = (inputs * outputs * 4) as f64 / 1e9;
        let cell = |ms: f64| format!("{ms:>6.2} {:>5.1} GB/s", gigabytes / ms * 1e3);
        println!(
            "{name:<6} {:>16} {:>16} {:>16}",
            cell(burns),
            cell(ours),
            cell(raw)
        );
    }
    let device = device.autodiff();
    println!("training, forward + backward, ms: Burn's Linear, ours");
    for (name, inputs, outputs) in [
        ("fc6", 9216, 4096),
        ("fc7", 4096, 4096),
        ("fc8", 4096, 1000),
    ] {
        let linear = LinearConfig::new(inputs, outputs).init(&device);
        let normal = |shape| Tensor::<2>::random(shape, Distribution::Normal(0.0, 1.0), &device);
        let (x, probe) = (normal([rows, inputs]), normal([rows, outputs]));
        let step = |ours: bool| {
            best_ms(|| {
                let x = x.clone().require_grad();
                let y = if ours {
                    fully_connected(&linear, x.clone())
                } else {
                    linear.forward(x.clone())
                };
                let grads = (y * probe.clone()).sum().backward();
                (x.grad(&grads), linear.weight.val().grad(&grads))
            })
        };
        println!("{name:<6} {:>8.2} {:>8.2}", step(false), step(true));
    }
}
