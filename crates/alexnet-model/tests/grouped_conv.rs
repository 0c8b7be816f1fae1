//! Section 3.2's two towers are a grouped convolution: each half of the kernels sees only its own
//! half of the input maps. Forward and gradients against a direct loop of that definition, for
//! both paths the network takes: our convolution on flex (`ConvBlock::convolve`, im2col and
//! matrix products) and Burn's `Conv2d` (other backends).

use alexnet_model::alexnet::ConvBlock;
use burn::module::Param;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2dConfig;
use burn::tensor::{Device, Tensor, TensorData};

mod common;
use common::values;

const SHAPE: [usize; 4] = [1, 4, 5, 5]; // batch, 4 input maps (2 per tower), 5x5
const KERNELS: usize = 6; // 3 per tower
const K: usize = 3;

/// Direct grouped convolution, padding 1, stride 1, no bias: output `[KERNELS, 5, 5]`.
fn reference(input: &[f32], weight: &[f32]) -> Vec<f64> {
    let [_, c, h, w] = SHAPE;
    let per_group_in = c / 2;
    let per_group_out = KERNELS / 2;
    let mut out = vec![0.0f64; KERNELS * h * w];
    for o in 0..KERNELS {
        let group = o / per_group_out;
        for y in 0..h {
            for x in 0..w {
                let mut sum = 0.0f64;
                for ci in 0..per_group_in {
                    let channel = group * per_group_in + ci;
                    for ky in 0..K {
                        for kx in 0..K {
                            let (iy, ix) =
                                (y as isize + ky as isize - 1, x as isize + kx as isize - 1);
                            if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                continue;
                            }
                            let v = input[(channel * h + iy as usize) * w + ix as usize] as f64;
                            sum += v * weight[((o * per_group_in + ci) * K + ky) * K + kx] as f64;
                        }
                    }
                }
                out[(o * h + y) * w + x] = sum;
            }
        }
    }
    out
}

#[test]
fn our_grouped_convolution_matches_the_definition() {
    check(true);
}

#[test]
fn burns_grouped_convolution_matches_the_definition() {
    check(false);
}

/// Forward and both gradients of a two-tower convolution, through our operation (`ours`) or
/// Burn's layer.
fn check(ours: bool) {
    let device = Device::flex().autodiff();
    let input = values(SHAPE.iter().product(), 1);
    let weight_shape = [KERNELS, SHAPE[1] / 2, K, K];
    let weight = values(weight_shape.iter().product(), 2);
    let upstream = values(KERNELS * 25, 3); // loss = sum(upstream * output)

    let mut conv = Conv2dConfig::new([SHAPE[1], KERNELS], [K, K])
        .with_groups(2)
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init(&device);
    conv.weight = Param::from_tensor(Tensor::from_data(
        TensorData::new(weight.clone(), weight_shape),
        &device,
    ));
    // Our operation is taken for convolutions with a bias (every one of the network's): a zero one.
    conv.bias = Some(Param::from_tensor(Tensor::zeros([KERNELS], &device)));
    let block = ConvBlock {
        conv,
        lrn: None,
        pool: None,
        bf16: false,
        winograd: false,
    };
    let x = Tensor::<4>::from_data(TensorData::new(input.clone(), SHAPE), &device).require_grad();
    let output = if ours {
        block.convolve(x.clone())
    } else {
        block.conv.forward(x.clone())
    };
    let conv = &block.conv;
    let got = output.clone().into_data().try_to_vec::<f32>().unwrap();
    let want = reference(&input, &weight);
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!((*g as f64 - w).abs() < 1e-5, "output {i}: {g} vs {w}");
    }

    let u = Tensor::<4>::from_data(
        TensorData::new(upstream.clone(), [1, KERNELS, 5, 5]),
        &device,
    );
    let grads = (output * u).sum().backward();
    let grad_w = conv
        .weight
        .grad(&grads)
        .unwrap()
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    let grad_x = x
        .grad(&grads)
        .unwrap()
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    let loss = |inp: &[f32], w: &[f32]| -> f64 {
        reference(inp, w)
            .iter()
            .zip(&upstream)
            .map(|(o, u)| o * *u as f64)
            .sum()
    };
    let step = 1e-3f32;
    for i in 0..weight.len() {
        let (mut plus, mut minus) = (weight.clone(), weight.clone());
        plus[i] += step;
        minus[i] -= step;
        let numeric = (loss(&input, &plus) - loss(&input, &minus)) / (2.0 * step as f64);
        assert!(
            (grad_w[i] as f64 - numeric).abs() < 1e-3,
            "dL/dw[{i}]: {} vs {numeric}",
            grad_w[i]
        );
    }
    for i in 0..input.len() {
        let (mut plus, mut minus) = (input.clone(), input.clone());
        plus[i] += step;
        minus[i] -= step;
        let numeric = (loss(&plus, &weight) - loss(&minus, &weight)) / (2.0 * step as f64);
        assert!(
            (grad_x[i] as f64 - numeric).abs() < 1e-3,
            "dL/dx[{i}]: {} vs {numeric}",
            grad_x[i]
        );
    }
}
