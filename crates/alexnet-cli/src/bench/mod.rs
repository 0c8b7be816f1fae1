//! `alexnet bench`: what the machine does per second.
//!
//! - `bench data` ([`data`]): images/s of decoding and augmentation, from a JPEG folder and from
//!   shards, on one core and on all (`benchmarks/compare_data.py` sets it beside torchvision).
//! - `bench model` ([`model`]): as `caffe time`, the time of a training step (forward, backward,
//!   SGD update) or of inference, per step and per layer, with img/s, GFLOP/s, the share of the
//!   machine's peak and the peak memory (`benchmarks/compare_model.py` sets it beside PyTorch).
//! - `bench allreduce` ([`allreduce`], under `mpirun`): the time of one step's gradient
//!   all-reduce on its own, and its bandwidths.

mod allreduce;
mod data;
mod model;

use clap::{Args, Subcommand};

#[derive(Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    what: BenchWhat,
}

#[derive(Subcommand)]
enum BenchWhat {
    /// Images/s of decode + augmentation from a JPEG folder and from shards.
    Data(data::DataBenchArgs),
    /// Time of a training step or of inference, per step and per layer.
    Model(model::ModelBenchArgs),
    /// Under mpirun: the time of one step's gradient all-reduce, and its bandwidth.
    Allreduce(allreduce::AllReduceBenchArgs),
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.what {
        BenchWhat::Data(args) => data::bench_data(args),
        BenchWhat::Model(args) => model::bench_model(args),
        BenchWhat::Allreduce(args) => allreduce::bench_allreduce(args),
    }
}

/// Median of `values` (not empty).
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
