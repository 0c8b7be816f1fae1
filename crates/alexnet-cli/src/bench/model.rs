//! `alexnet bench model`: as `caffe time`. A training step is forward, cross-entropy, backward and
//! the paper's SGD update on a fixed random batch; inference is the forward pass in evaluation mode.
//! Each is run `--warmup` times untimed, then `--iterations` times; the median is reported.
//!
//! With `--layers`, every layer is also timed on its own, as Caffe does: its forward, and its
//! forward plus backward (of the sum of its output) on an input of the shape it sees in the network.
//!
//! FLOPs are 2 per multiply-add of the forward pass (from the layer table, `alexnet info`); a
//! training step counts three forward passes' worth (the backward pass computes two products per
//! forward one). The machine's peak is cores x clock x 32 FP32 FLOPs per cycle (two 256-bit FMA
//! pipes, as Zen 4 and recent Intel cores have) unless `--peak-gflops` says otherwise.

use std::path::PathBuf;
use std::time::Instant;

use alexnet_model::{AlexNet, ModelConfig, Precision, summary::summarize};
use alexnet_train::backend::device;
use alexnet_train::sgd::PaperSgd;
use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use clap::Args;
use serde::Serialize;

use super::median;

#[derive(Args)]
pub struct ModelBenchArgs {
    /// alexnet, alexnet-owt or alexnet-cifar.
    #[arg(long, default_value = "alexnet")]
    model: String,
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Classes of the last layer.
    #[arg(long, default_value_t = 1000)]
    classes: usize,
    /// `train` (forward, backward, update) or `inference` (forward in evaluation mode).
    #[arg(long, default_value = "train")]
    mode: String,
    /// Untimed steps first.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Timed steps; the median is reported.
    #[arg(long, default_value_t = 5)]
    iterations: usize,
    /// Also time every layer on its own.
    #[arg(long)]
    layers: bool,
    /// The machine's peak FP32 GFLOP/s (default: estimated from /proc/cpuinfo).
    #[arg(long)]
    peak_gflops: Option<f64>,
    #[arg(long, default_value = "flex")]
    backend: String,
    /// `f32`, or `bf16` for the convolutions' products (model.precision; needs AVX512-BF16).
    #[arg(long, default_value = "f32")]
    precision: String,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Serialize)]
struct LayerTime {
    name: String,
    forward_ms: f64,
    forward_backward_ms: f64,
    /// Forward GFLOP/s of the layer (0 for layers without multiply-adds counted).
    forward_gflops: f64,
}

#[derive(Serialize)]
struct ModelBench {
    model: String,
    mode: String,
    batch_size: usize,
    input_size: usize,
    threads: usize,
    step_ms: f64,
    images_per_second: f64,
    gflops: f64,
    peak_gflops: f64,
    share_of_peak: f64,
    peak_memory_mb: f64,
    layers: Vec<LayerTime>,
}

/// The process's peak resident memory (VmHWM), in MB.
fn peak_memory_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                let kb = line.strip_prefix("VmHWM:")?.trim().strip_suffix("kB")?;
                kb.trim().parse::<f64>().ok()
            })
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Cores x clock x 32 FP32 FLOPs per cycle, from /proc/cpuinfo.
fn estimated_peak_gflops(threads: usize) -> f64 {
    let mhz = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("cpu MHz"))
                .and_then(|l| l.split(':').nth(1))
                .and_then(|v| v.trim().parse::<f64>().ok())
        })
        .unwrap_or(3000.0);
    threads as f64 * mhz / 1000.0 * 32.0
}

/// Median milliseconds of `run` over `iterations` after `warmup`.
fn time_ms(warmup: usize, iterations: usize, mut run: impl FnMut()) -> f64 {
    for _ in 0..warmup {
        run();
    }
    let times = (0..iterations.max(1))
        .map(|_| {
            let started = Instant::now();
            run();
            started.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    median(times)
}

/// Forces a tensor's computation to finish (flex is eager; this also covers lazy backends).
fn sync<const D: usize>(x: Tensor<D>) {
    let _ = x.sum().into_scalar::<f32>();
}

/// Times one layer on its own: `op` forward, and forward + backward of the sum of its output, on
/// a copy of `input` that asks for its gradient.
fn time_layer<const D: usize>(
    rows: &mut Vec<LayerTime>,
    name: String,
    macs: usize,
    input: &Tensor<D>,
    op: impl Fn(Tensor<D>) -> Tensor<D>,
    args: &ModelBenchArgs,
) {
    let input = input.clone().detach().require_grad();
    let iterations = args.iterations.max(1);
    let forward_ms = time_ms(1, iterations, || sync(op(input.clone())));
    let forward_backward_ms = time_ms(1, iterations, || {
        let _ = op(input.clone()).sum().backward();
    });
    rows.push(LayerTime {
        name,
        forward_ms,
        forward_backward_ms,
        forward_gflops: 2.0 * macs as f64 * args.batch_size as f64 / (forward_ms * 1e6),
    });
}

/// Times `op` on `input` as one layer (a row of `rows`), then applies it: the next layer's input.
fn timed_layer<const D: usize>(
    rows: &mut Vec<LayerTime>,
    name: String,
    macs: usize,
    input: Tensor<D>,
    op: impl Fn(Tensor<D>) -> Tensor<D>,
    args: &ModelBenchArgs,
) -> Tensor<D> {
    time_layer(rows, name, macs, &input, &op, args);
    op(input.detach())
}

/// Every layer on its own, on an input of the shape it sees in the network.
fn layer_times(
    model: &AlexNet,
    input: Tensor<4>,
    args: &ModelBenchArgs,
    macs: &[(String, usize)],
) -> Vec<LayerTime> {
    let mut rows = Vec::new();
    // Layer names as `alexnet info` gives them (conv1.., fc6..fc8); the layers inside a block
    // take its number.
    let name_of =
        |index: usize, fallback: String| macs.get(index).map_or(fallback, |m| m.0.clone());
    let macs_of = |index: usize| macs.get(index).map_or(0, |m| m.1);
    let mut x = input;
    for (i, block) in model.features.iter().enumerate() {
        let conv = name_of(i, format!("conv{}", i + 1));
        let n = conv.trim_start_matches("conv").to_string();
        x = timed_layer(&mut rows, conv, macs_of(i), x, |t| block.convolve(t), args);
        x = timed_layer(
            &mut rows,
            format!("relu{n}"),
            0,
            x,
            |t| model.activate(t),
            args,
        );
        if let Some(lrn) = &block.lrn {
            x = timed_layer(
                &mut rows,
                format!("norm{n}"),
                0,
                x,
                |t| lrn.forward(t),
                args,
            );
        }
        if block.pool.is_some() {
            x = timed_layer(
                &mut rows,
                format!("pool{n}"),
                0,
                x,
                |t| block.max_pool(t),
                args,
            );
        }
    }
    let mut h = x.detach().flatten::<2>(1, 3);
    let convs = model.features.len();
    for (j, block) in model.classifier.iter().enumerate() {
        let fc = name_of(convs + j, format!("fc{}", convs + j + 1));
        let n = fc.trim_start_matches("fc").to_string();
        h = timed_layer(
            &mut rows,
            fc,
            macs_of(convs + j),
            h,
            |t| block.linear.forward(t),
            args,
        );
        if j + 1 < model.classifier.len() {
            h = model.activate(h);
            if let Some(dropout) = &block.dropout {
                h = timed_layer(
                    &mut rows,
                    format!("drop{n}"),
                    0,
                    h,
                    |t| dropout.forward(t),
                    args,
                );
            }
        }
    }
    rows
}

pub fn bench_model(args: ModelBenchArgs) -> Result<()> {
    let arch = args
        .model
        .parse()
        .map_err(|e: alexnet_model::ModelError| anyhow::anyhow!(e))?;
    let mut config = ModelConfig::new(arch, args.classes);
    config.precision = match args.precision.as_str() {
        "f32" => Precision::F32,
        "bf16" => Precision::Bf16,
        other => bail!("--precision {other}: expected f32 or bf16"),
    };
    config.validate()?;
    let summary = summarize(&config)?;
    let side = config.input_size();
    let n = args.batch_size.max(1);
    let training = match args.mode.as_str() {
        "train" => true,
        "inference" => false,
        other => bail!("--mode {other}: expected train or inference"),
    };
    let plain: Device = device(&args.backend, 0)?;
    let autodiff = plain.clone().autodiff();
    plain.seed(0);
    let run_device = if training { &autodiff } else { &plain };
    let model = AlexNet::new(&config, run_device)?;
    let images = Tensor::<4>::random(
        [n, 3, side, side],
        Distribution::Normal(0.0, 50.0),
        run_device,
    );
    let labels: Vec<i64> = (0..n).map(|i| (i % args.classes) as i64).collect();
    let targets = Tensor::<1, Int>::from_data(TensorData::new(labels, [n]), run_device);

    let step_ms = if training {
        let loss_function = CrossEntropyLossConfig::new().init(run_device);
        let mut sgd = PaperSgd::new(0.9, 5e-4);
        let mut slot = Some(model.clone());
        time_ms(args.warmup, args.iterations, || {
            let model = slot.take().expect("the model is put back after each step");
            let logits = model.forward(images.clone());
            let loss = loss_function.forward(logits, targets.clone());
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            slot = Some(sgd.step(0.01, model, grads));
        })
    } else {
        let model = model.valid();
        time_ms(args.warmup, args.iterations, || {
            sync(model.forward(images.clone()));
        })
    };
    let macs: Vec<(String, usize)> = summary
        .layers
        .iter()
        .map(|l| (l.name.clone(), l.multiply_adds))
        .collect();
    let layers = if args.layers {
        let input = Tensor::<4>::random(
            [n, 3, side, side],
            Distribution::Normal(0.0, 50.0),
            &autodiff,
        );
        let model = AlexNet::new(&config, &autodiff)?;
        layer_times(&model, input, &args, &macs)
    } else {
        Vec::new()
    };

    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    let flops = 2.0 * summary.multiply_adds() as f64 * n as f64 * if training { 3.0 } else { 1.0 };
    let gflops = flops / (step_ms * 1e6);
    let peak = args
        .peak_gflops
        .unwrap_or_else(|| estimated_peak_gflops(threads));
    let result = ModelBench {
        model: args.model.clone(),
        mode: args.mode.clone(),
        batch_size: n,
        input_size: side,
        threads,
        step_ms,
        images_per_second: n as f64 / (step_ms / 1e3),
        gflops,
        peak_gflops: peak,
        share_of_peak: gflops / peak,
        peak_memory_mb: peak_memory_mb(),
        layers,
    };
    println!(
        "{} {} batch {} at {}x{} on {} threads ({}): {:.1} ms/step, {:.1} img/s, {:.1} GFLOP/s ({:.0}% of {:.0}), peak memory {:.0} MB",
        result.model,
        result.mode,
        n,
        side,
        side,
        threads,
        args.backend,
        result.step_ms,
        result.images_per_second,
        result.gflops,
        100.0 * result.share_of_peak,
        peak,
        result.peak_memory_mb
    );
    if !result.layers.is_empty() {
        let total: f64 = result.layers.iter().map(|l| l.forward_backward_ms).sum();
        println!(
            "{:<8} {:>12} {:>14} {:>8} {:>10}",
            "layer", "forward ms", "fwd+bwd ms", "share", "fwd GF/s"
        );
        for l in &result.layers {
            println!(
                "{:<8} {:>12.2} {:>14.2} {:>7.1}% {:>10.1}",
                l.name,
                l.forward_ms,
                l.forward_backward_ms,
                100.0 * l.forward_backward_ms / total,
                l.forward_gflops
            );
        }
        println!(
            "{:<8} {:>12.2} {:>14.2}",
            "sum",
            result.layers.iter().map(|l| l.forward_ms).sum::<f64>(),
            total
        );
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&result)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
