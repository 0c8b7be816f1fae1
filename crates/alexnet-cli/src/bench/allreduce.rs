//! `alexnet bench allreduce`, run under `mpirun -np N`: the time of the step's gradient
//! all-reduce on its own (every parameter of the model, in one f32 buffer, as training sends it),
//! with the bandwidths NCCL's tests report: algorithm bandwidth (bytes / time) and bus bandwidth
//! (algorithm bandwidth x 2(N-1)/N, what each link carries in a ring all-reduce, comparable
//! across N). `docs/scaling.md` builds its model of many ranks on these figures.

use std::time::Instant;

use alexnet_model::alexnet::layer_table;
use alexnet_model::{Arch, ModelConfig};
use alexnet_train::Peers;
use anyhow::{Context, Result};
use clap::Args;
use serde::Serialize;

use super::median;

#[derive(Args)]
pub struct AllReduceBenchArgs {
    /// Whose gradients: alexnet, alexnet-owt or alexnet-cifar.
    #[arg(long, default_value = "alexnet")]
    model: Arch,
    #[arg(long, default_value_t = 1000)]
    classes: usize,
    /// Untimed all-reduces first.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Timed all-reduces; the median is reported.
    #[arg(long, default_value_t = 10)]
    iterations: usize,
}

#[derive(Serialize)]
struct Report {
    model: String,
    ranks: usize,
    values: usize,
    megabytes: f64,
    median_ms: f64,
    algorithm_gb_per_s: f64,
    bus_gb_per_s: f64,
}

/// Median seconds of an all-reduce of `values` floats over `peers`, after `warmup` untimed ones;
/// fails if a sum comes back wrong.
pub fn timed_allreduce(
    peers: &mut Peers,
    values: usize,
    warmup: usize,
    iterations: usize,
) -> Result<f64> {
    let mut buffer: Vec<f32> = (0..values).map(|i| (i % 7) as f32).collect();
    let mut seconds = Vec::new();
    for round in 0..warmup + iterations.max(1) {
        let started = Instant::now();
        peers.all_reduce_sum(&mut buffer)?;
        if round >= warmup {
            seconds.push(started.elapsed().as_secs_f64());
        }
        buffer
            .iter_mut()
            .for_each(|v| *v /= peers.world_size as f32);
    }
    // Each round summed N copies of the same small integers and divided by N: exactly them again.
    if let Some(i) = (0..values).find(|&i| buffer[i] != (i % 7) as f32) {
        anyhow::bail!(
            "the all-reduce returned {} at value {i}, where the sum over ranks is {}",
            buffer[i],
            i % 7
        );
    }
    Ok(median(seconds))
}

pub fn bench_allreduce(args: AllReduceBenchArgs) -> Result<()> {
    let config = ModelConfig::new(args.model, args.classes);
    let values = layer_table(&config)?.parameter_count();
    let mut peers = Peers::join_mpi("alexnet bench allreduce")
        .context("bench allreduce runs under mpirun -np N")?;
    if peers.world_size < 2 {
        anyhow::bail!(
            "bench allreduce needs at least 2 ranks: run it as mpirun -np N alexnet bench allreduce"
        );
    }
    // Every rank's median; rank 0's is reported (they wait for each other every round).
    let time = timed_allreduce(&mut peers, values, args.warmup, args.iterations)?;
    let bytes = (values * 4) as f64;
    let ranks = peers.world_size;
    let algorithm = bytes / time / 1e9;
    let report = Report {
        model: args.model.to_string(),
        ranks,
        values,
        megabytes: bytes / 1e6,
        median_ms: time * 1e3,
        algorithm_gb_per_s: algorithm,
        bus_gb_per_s: algorithm * 2.0 * (ranks - 1) as f64 / ranks as f64,
    };
    if peers.is_root() {
        println!(
            "all-reduce of {} gradients ({} values, {:.1} MB) over {} ranks: {:.2} ms median, \
             algorithm bandwidth {:.2} GB/s, bus bandwidth {:.2} GB/s",
            report.model,
            report.values,
            report.megabytes,
            report.ranks,
            report.median_ms,
            report.algorithm_gb_per_s,
            report.bus_gb_per_s
        );
        println!("{}", serde_json::to_string(&report)?);
    }
    Ok(())
}
