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
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use alexnet_data::Batch;
use alexnet_model::{
    Activations, AlexNet, Layer, ModelConfig, Precision, TowerLink, summary::summarize,
};
use alexnet_run::{Progress, device};
use alexnet_train::Peers;
use alexnet_train::sgd::PaperSgd;
use alexnet_train::step::{Devices, Learner, train_step};
use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::{Device, Distribution, Tensor};
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
    /// `false`: the 3x3 stride-1 layers by im2col too, instead of Winograd (model.winograd).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    winograd: bool,
    /// Under `mpirun -np 2`: the paper's two-GPU split (Section 3.2), one tower per rank, each
    /// on the whole batch (as `alexnet train --model-parallel 2`), instead of data parallelism.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(2..=2))]
    model_parallel: Option<u8>,
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
    /// Ranks of a data-parallel step (1 alone), and the time of its gradient all-reduce alone.
    ranks: usize,
    allreduce_ms: f64,
    /// Model parallel: the time a step spends in the towers' exchanges (sending, receiving and
    /// waiting for the other tower), and the megabytes each tower sends per step.
    model_parallel: bool,
    exchange_ms: f64,
    exchange_mb: f64,
    /// Large blocks a timed step took new from the OS (their pages faulted in and zeroed by the
    /// kernel), not from the allocator's pool.
    new_large_blocks_per_step: f64,
    layers: Vec<LayerTime>,
}

/// A tower's link that adds up the time spent in its exchanges and the values it sent.
#[derive(Debug)]
struct TimedLink {
    link: Arc<dyn TowerLink>,
    nanoseconds: AtomicU64,
    sent: AtomicU64,
}

impl TimedLink {
    fn new(link: Arc<dyn TowerLink>) -> Self {
        Self {
            link,
            nanoseconds: AtomicU64::new(0),
            sent: AtomicU64::new(0),
        }
    }
    fn seconds(&self) -> f64 {
        self.nanoseconds.load(Ordering::Relaxed) as f64 * 1e-9
    }
    fn sent_values(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
}

impl TowerLink for TimedLink {
    fn tower(&self) -> usize {
        self.link.tower()
    }
    fn swap(&self, mine: &[f32], theirs: usize) -> Vec<f32> {
        let started = Instant::now();
        let received = self.link.swap(mine, theirs);
        let elapsed = started.elapsed().as_nanos() as u64;
        self.nanoseconds.fetch_add(elapsed, Ordering::Relaxed);
        self.sent.fetch_add(mine.len() as u64, Ordering::Relaxed);
        received
    }
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
fn time_ms(warmup: usize, iterations: usize, run: impl FnMut()) -> f64 {
    timed_steps(warmup, iterations, run).0
}

/// The median time of `run` after `warmup` untimed calls, and the large blocks (at least
/// `alexnet_alloc::POOL_MIN_BYTES`) each timed call took new from the OS rather than from the
/// allocator's pool.
fn timed_steps(warmup: usize, iterations: usize, mut run: impl FnMut()) -> (f64, f64) {
    for _ in 0..warmup {
        run();
    }
    let before = crate::allocator::ALLOCATOR.stats();
    let iterations = iterations.max(1);
    let times = (0..iterations)
        .map(|_| {
            let started = Instant::now();
            run();
            started.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    let new_blocks = crate::allocator::ALLOCATOR.stats().misses - before.misses;
    (median(times), new_blocks as f64 / iterations as f64)
}

/// Forces a computation to finish (flex is eager; this also covers lazy backends).
fn sync(x: Activations) {
    let _ = x.sum().into_scalar::<f32>();
}

/// Every layer of the network's own list ([`AlexNet::layers`]) timed on its own, on an input of
/// the shape it sees in the network: forward, and forward plus backward of the sum of its output.
fn layer_times(
    model: &AlexNet,
    input: Tensor<4>,
    args: &ModelBenchArgs,
    macs: &[(String, usize)],
) -> Vec<LayerTime> {
    let iterations = args.iterations.max(1);
    let mut rows = Vec::new();
    let mut x = Activations::Maps(input);
    for named in model.layers() {
        // The forward pass alone on an input outside the graph: on a tracked one the graph keeps
        // each call's saved state (LRN's scale and power) for a backward pass that never comes,
        // and every call's buffers were new pages (norm1 of alexnet-cifar at batch 128: 58-64 ms
        // a call, 1.9 new large blocks; untracked 7-11 ms, none).
        let untracked = x.detached();
        let input = x.detached_with_grad();
        let layer = named.layer;
        // Flattening is a view, not a layer Caffe times.
        if !matches!(layer, Layer::Flatten) {
            let forward_ms = time_ms(1, iterations, || {
                sync(model.apply(layer, untracked.clone()))
            });
            let forward_backward_ms = time_ms(1, iterations, || {
                let _ = model.apply(layer, input.clone()).sum().backward();
            });
            let macs = macs
                .iter()
                .find(|(name, _)| *name == named.name)
                .map_or(0, |m| m.1);
            rows.push(LayerTime {
                name: named.name,
                forward_ms,
                forward_backward_ms,
                forward_gflops: 2.0 * macs as f64 * args.batch_size as f64 / (forward_ms * 1e6),
            });
        }
        x = model.apply(layer, input);
    }
    rows
}

pub fn bench_model(args: ModelBenchArgs) -> Result<()> {
    let arch = args
        .model
        .parse()
        .map_err(|e: alexnet_model::ModelError| anyhow::anyhow!(e))?;
    let mut config = ModelConfig::new(arch, args.classes);
    let model_parallel = args.model_parallel.is_some();
    if model_parallel {
        config.towers = Some(2);
    }
    config.precision = match args.precision.as_str() {
        "f32" => Precision::F32,
        "bf16" => Precision::Bf16,
        other => bail!("--precision {other}: expected f32 or bf16"),
    };
    config.winograd = args.winograd;
    config.validate()?;
    let summary = summarize(&config)?;
    let side = config.input_size();
    let n = args.batch_size.max(1);
    let training = match args.mode.as_str() {
        "train" => true,
        "inference" => false,
        other => bail!("--mode {other}: expected train or inference"),
    };
    // Under mpirun: one rank of a data-parallel step (gradients summed by MPI every step).
    let mut peers = match alexnet_train::mpi_launch() {
        Some((_, ranks)) if ranks > 1 => Peers::join_mpi("alexnet bench model")?,
        _ => Peers::alone(),
    };
    // A tower's exchanges go through a link that times them.
    let exchanges = match model_parallel {
        true => Some(Arc::new(TimedLink::new(peers.tower_link()?))),
        false => None,
    };
    let plain: Device = device(&args.backend, 0)?;
    plain.seed(0);
    let images = Tensor::<4>::random([n, 3, side, side], Distribution::Normal(0.0, 50.0), &plain);
    let (step_ms, new_large_blocks_per_step) = if training {
        // The trainer's own step (`alexnet_train::step::train_step`) on a fixed batch.
        let devices = Devices::new(plain.clone());
        // This rank's share of the batch (all of it alone, or as a tower), as the data-parallel
        // trainer splits it.
        let share = match model_parallel {
            true => 0..n,
            false => n * peers.rank / peers.world_size..n * (peers.rank + 1) / peers.world_size,
        };
        let pixels = images
            .into_data()
            .try_into_vec::<f32>()
            .expect("f32 images");
        let view = 3 * side * side;
        let batch = Batch {
            images: pixels[share.start * view..share.end * view].to_vec(),
            labels: share.clone().map(|i| i % args.classes).collect(),
            indices: share.collect(),
            views_per_image: 1,
            crop: side,
            global_len: n,
        };
        let loss_function = CrossEntropyLossConfig::new().init(&devices.autodiff);
        let model = match &exchanges {
            Some(link) => AlexNet::tower(&config, link.clone(), &devices.autodiff)?,
            None => AlexNet::new(&config, &devices.autodiff)?,
        };
        let mut slot = Some(Learner {
            model,
            sgd: PaperSgd::new(0.9, 5e-4),
            // The update's arithmetic is the same at any rate; at a rate of 0 the weights stay
            // those of the first step, so random images cannot drive the loss to infinity.
            progress: Progress::fresh(0.0),
        });
        let mut failure = None;
        let timed = timed_steps(args.warmup, args.iterations, || {
            let learner = slot
                .take()
                .expect("the learner is put back after each step");
            match train_step(learner, batch.clone(), &loss_function, &mut peers, &devices) {
                Ok((learner, _)) => slot = Some(learner),
                Err(e) => failure = Some(e),
            }
        });
        if let Some(e) = failure {
            bail!("the benchmark's training step failed: {e}");
        }
        timed
    } else {
        let model = AlexNet::new(&config, &plain)?.valid();
        timed_steps(args.warmup, args.iterations, || {
            let _ = model.forward(images.clone()).sum().into_scalar::<f32>();
        })
    };
    let macs: Vec<(String, usize)> = summary
        .layers
        .iter()
        .map(|l| (l.name.clone(), l.multiply_adds))
        .collect();
    let layers = if args.layers {
        let autodiff = plain.clone().autodiff();
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

    let steps = (args.warmup + args.iterations) as f64;
    let (exchange_ms, exchange_mb) = exchanges.as_ref().map_or((0.0, 0.0), |link| {
        (
            link.seconds() * 1e3 / steps,
            link.sent_values() as f64 * 4e-6 / steps,
        )
    });
    // The step's all-reduce on its own: the communication share of a data-parallel step.
    let allreduce_ms = if peers.world_size > 1 && !model_parallel {
        1e3 * super::allreduce::timed_allreduce(&mut peers, summary.params(), 1, args.iterations)?
    } else {
        0.0
    };
    if !peers.is_root() {
        return Ok(());
    }
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    let flops = 2.0 * summary.multiply_adds() as f64 * n as f64 * if training { 3.0 } else { 1.0 };
    let gflops = flops / (step_ms * 1e6);
    let peak = args
        .peak_gflops
        // Data parallel: the figures are the whole batch's, over every rank's cores.
        .unwrap_or_else(|| estimated_peak_gflops(threads) * peers.world_size as f64);
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
        ranks: peers.world_size,
        allreduce_ms,
        model_parallel,
        exchange_ms,
        exchange_mb,
        new_large_blocks_per_step,
        layers,
    };
    println!(
        "{} {} batch {} at {}x{} on {} ({}): {:.1} ms/step, {:.1} img/s, {:.1} GFLOP/s ({:.0}% of {:.0}), peak memory {:.0} MB",
        result.model,
        result.mode,
        n,
        side,
        side,
        match result.ranks {
            1 => format!("{threads} threads"),
            ranks => format!("{ranks} ranks of {threads} threads"),
        },
        args.backend,
        result.step_ms,
        result.images_per_second,
        result.gflops,
        100.0 * result.share_of_peak,
        peak,
        result.peak_memory_mb
    );
    println!(
        "large blocks new from the OS: {:.1} a step (the rest from the allocator's pool; \
         ALEXNET_POOL_MB={} MB{})",
        result.new_large_blocks_per_step,
        std::env::var("ALEXNET_POOL_MB")
            .unwrap_or_else(|_| alexnet_alloc::DEFAULT_POOL_MB.to_string()),
        match std::env::var("ALEXNET_POOL_WITHIN_PEAK") {
            Ok(rule) => format!(", ALEXNET_POOL_WITHIN_PEAK={rule}"),
            Err(_) => String::new(),
        }
    );
    println!(
        "small blocks' pages: {} (MIMALLOC_PURGE_DELAY)",
        match crate::allocator::purge_delay() {
            -1 => "kept mapped".to_string(),
            ms => format!("given back {ms} ms after they fall empty"),
        }
    );
    if model_parallel {
        println!(
            "model parallel, one tower on each of 2 ranks (this rank's memory above): the \
             towers' exchanges take {exchange_ms:.1} ms of the step ({:.0}%), {exchange_mb:.1} MB \
             sent by each tower",
            100.0 * exchange_ms / step_ms
        );
    } else if result.ranks > 1 {
        println!(
            "data parallel over {} ranks (this rank's memory above): the gradient all-reduce \
             alone takes {:.1} ms, {:.0}% of the step",
            result.ranks,
            allreduce_ms,
            100.0 * allreduce_ms / step_ms
        );
    }
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
