//! The response normalization and max-pooling kernels on their own, at the shapes of
//! alexnet-cifar's first block in training (batch 128, or the first argument): norm1 on
//! `[B, 32, 32, 32]`, pool1 (3x3, stride 2) on the same maps. Each pass best of 10, in ms, with
//! the memory each streams, so a row can be read against the machine's bandwidth. These passes
//! are a quarter of an alexnet-cifar step (`alexnet bench model --model alexnet-cifar --layers`).
//!
//!     cargo run --release -p alexnet-cli --example norm_pool [-- BATCH]

use alexnet_model::config::LrnConfig;
use alexnet_model::lrn_kernel::{lrn_backward, lrn_forward};
use alexnet_model::pool_kernel::{PoolWindow, max_pool_backward, max_pool_forward};

mod common;
use common::{best_ms, values};

/// ReLU outputs: half of them zero.
fn activities(n: usize, seed: u64) -> Vec<f32> {
    values(n, seed).into_iter().map(|v| v.max(0.0)).collect()
}

fn row(name: &str, ms: f64, megabytes: f64) {
    println!(
        "{name:<14} {ms:>8.2} ms {megabytes:>8.1} MB {:>7.1} GB/s",
        megabytes / ms
    );
}

fn main() {
    let batch: usize = std::env::args()
        .nth(1)
        .map_or(128, |b| b.parse().expect("BATCH: a number"));
    let (channels, side) = (32, 32);
    let plane = side * side;
    let n = batch * channels * plane;
    let megabytes = |tensors: usize| (tensors * n * 4) as f64 / 1e6;
    let activity = activities(n, 1);
    let grad = values(n, 2);
    let lrn = LrnConfig::default();

    row(
        "norm forward",
        best_ms(|| lrn_forward(&activity, plane, channels, lrn)),
        megabytes(2),
    );
    row(
        "norm backward",
        best_ms(|| lrn_backward([&activity, &grad], plane, channels, lrn)),
        megabytes(3),
    );

    let window = PoolWindow {
        size: [3, 3],
        stride: [2, 2],
    };
    let pooled = window.pooled_size([side, side]);
    let (output, positions) = max_pool_forward(&activity, [side, side], window);
    let pooled_megabytes = (output.len() * 4) as f64 / 1e6;
    row(
        "pool forward",
        best_ms(|| max_pool_forward(&activity, [side, side], window)),
        megabytes(1) + 2.0 * pooled_megabytes,
    );
    let output_grad = values(output.len(), 3);
    row(
        "pool backward",
        best_ms(|| max_pool_backward(&output_grad, &positions, [side, side], pooled)),
        megabytes(1) + 2.0 * pooled_megabytes,
    );
}
