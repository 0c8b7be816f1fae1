//! Where a convolution's training time goes on flex: forward alone, forward + input gradient,
//! forward + weight gradient, and both, for the paper's conv2 and conv3 at batch 32 and
//! alexnet-cifar's three at batch 128 (best of 4); then each pass alone by
//! alexnet-model's im2col kernels, which the model uses on flex; the stride-1 input gradient also
//! as the forward pass of the flipped convolution (what Winograd's layers run), and the bias
//! gradient both Burn's way (batch and channel axes swapped, a copy, then a sum) and ours.
//! `benchmarks/conv_split_pytorch.py` measures the same in PyTorch.
//!
//!     cargo run --release -p alexnet-cli --example conv_split

use alexnet_model::bf16_gemm;
use alexnet_model::conv_im2col::{
    ConvGeometry, ConvParams, conv2d_bias_grad, conv2d_forward, conv2d_input_grad,
    conv2d_weight_grad, flipped,
};
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Distribution, Tensor};
use std::time::Instant;

fn main() {
    let device = Device::flex().autodiff();
    // The paper's conv2 (96 -> 256, 5x5, pad 2, two towers, 27x27) and conv3 (256 -> 384, 3x3);
    // alexnet-cifar's conv1 (3 -> 32, 5x5, 32x32), conv2 (32 -> 32, 16x16), conv3 (32 -> 64, 8x8).
    for (name, batch, cin, cout, k, pad, groups, side) in [
        ("conv2", 32, 96, 256, 5, 2, 2, 27),
        ("conv3", 32, 256, 384, 3, 1, 1, 13),
        ("cifar conv1", 128, 3, 32, 5, 2, 1, 32),
        ("cifar conv2", 128, 32, 32, 5, 2, 1, 16),
        ("cifar conv3", 128, 32, 64, 5, 2, 1, 8),
    ] {
        let x0 = Tensor::<4>::random(
            [batch, cin, side, side],
            Distribution::Normal(0.0, 1.0),
            &device,
        );
        let w0 = Tensor::<4>::random(
            [cout, cin / groups, k, k],
            Distribution::Normal(0.0, 0.01),
            &device,
        );
        let opts = || ConvOptions::new([1, 1], [pad, pad], [1, 1], groups);
        let time = |label: &str, input_grad: bool, weight_grad: bool| {
            let mut best = f64::MAX;
            for _ in 0..4 {
                let x = if input_grad {
                    x0.clone().detach().require_grad()
                } else {
                    x0.clone().detach()
                };
                let w = if weight_grad {
                    w0.clone().detach().require_grad()
                } else {
                    w0.clone().detach()
                };
                let t = Instant::now();
                let y = conv2d(x, w, None, opts());
                if input_grad || weight_grad {
                    let _ = y.sum().backward();
                } else {
                    let _ = y.sum().into_scalar::<f32>();
                }
                best = best.min(t.elapsed().as_secs_f64() * 1e3);
            }
            println!("{name} {label}: {best:.1} ms");
        };
        time("forward", false, false);
        time("forward + x grad", true, false);
        time("forward + w grad", false, true);
        time("forward + both", true, true);

        // The weight gradient alone, by alexnet-model's im2col + matrix-product kernel.
        let plain = Device::flex();
        let x = x0.clone().inner().to_device(&plain);
        let y = conv2d(x.clone(), w0.clone().inner(), None, opts());
        let dy = y.clone().ones_like();
        let geometry = ConvGeometry {
            input: x.dims(),
            weight: w0.dims(),
            params: ConvParams {
                stride: [1, 1],
                padding: [pad, pad],
                groups,
                bf16: false,
                winograd: false,
            },
        };
        let x_host = x.into_data().try_to_vec::<f32>().unwrap();
        let dy_host = dy.clone().into_data().try_to_vec::<f32>().unwrap();
        let w_host = w0.clone().inner().into_data().try_to_vec::<f32>().unwrap();
        let bias = vec![0.0f32; geometry.weight[0]];
        let best_of_4 = |pass: &dyn Fn() -> usize, expected: usize| {
            let mut best = f64::MAX;
            for _ in 0..4 {
                let t = Instant::now();
                let len = pass();
                best = best.min(t.elapsed().as_secs_f64() * 1e3);
                assert_eq!(len, expected);
            }
            best
        };
        let [batch, channels, ho, wo] = dy.dims();
        let burns_bias = best_of_4(
            &|| {
                let grad = dy
                    .clone()
                    .swap_dims(0, 1)
                    .reshape([channels as i64, -1])
                    .sum_dim(1);
                grad.into_data().num_elements()
            },
            channels,
        );
        let our_bias = best_of_4(
            &|| conv2d_bias_grad(&dy_host, [batch, channels, ho * wo]).len(),
            channels,
        );
        let (filters, transposed) = flipped(&w_host, &geometry).expect("stride 1");
        let zeros = vec![0.0f32; transposed.weight[0]];
        let flipped_input_grad = best_of_4(
            &|| conv2d_forward(&dy_host, &filters, &zeros, &transposed).len(),
            x_host.len(),
        );
        println!(
            "{name} bias grad: Burn's way {burns_bias:.2} ms, ours {our_bias:.2} ms; \
             x grad as the flipped convolution (f32) {flipped_input_grad:.1} ms"
        );
        let precisions: &[bool] = if bf16_gemm::available() {
            &[false, true]
        } else {
            &[false]
        };
        for &bf16 in precisions {
            let geometry = ConvGeometry {
                params: ConvParams {
                    bf16,
                    ..geometry.params
                },
                ..geometry
            };
            let label = if bf16 { "bf16" } else { "f32" };
            let forward = best_of_4(
                &|| conv2d_forward(&x_host, &w_host, &bias, &geometry).len(),
                dy_host.len(),
            );
            let input_grad = best_of_4(
                &|| conv2d_input_grad(&w_host, &dy_host, &geometry).len(),
                x_host.len(),
            );
            let weight_grad = best_of_4(
                &|| conv2d_weight_grad(&x_host, &dy_host, &geometry).len(),
                w_host.len(),
            );
            println!(
                "{name} im2col kernels, {label}: forward {forward:.1} ms, x grad {input_grad:.1} ms, \
                 w grad {weight_grad:.1} ms"
            );
        }
    }
}
