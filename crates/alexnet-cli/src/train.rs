//! `alexnet train`: the recipe from the defaults (the paper), a TOML file and overrides, then the loop.

use std::path::PathBuf;
use std::time::Duration;

use alexnet_data::Manifest;
use alexnet_run::Recipe;
use alexnet_run::recipe::Override;
use alexnet_train::{MpiOptions, TrainOptions, local_rank, mpi_launch, train};
use anyhow::{Context, Result};
use clap::Args;

#[derive(Args)]
pub struct TrainArgs {
    /// Recipe file (TOML); fields it leaves out keep the paper's values.
    #[arg(long)]
    recipe: Option<PathBuf>,
    /// Override any recipe field, e.g. `--set optim.lr=0.02 --set model.lrn=false`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Data set root (sets data.dir): holds `<train_split>/<class>/*` and `<val_split>/<class>/*`.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Model name (sets model.arch).
    #[arg(long)]
    model: Option<String>,
    /// Sets run.epochs.
    #[arg(long)]
    epochs: Option<usize>,
    /// Sets optim.batch_size.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Sets optim.lr.
    #[arg(long)]
    lr: Option<f64>,
    /// Sets run.seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Sets run.backend (flex; cuda or wgpu when built with those features).
    #[arg(long)]
    backend: Option<String>,
    /// Where the run writes its recipe, statistics, metrics and checkpoints.
    #[arg(long, default_value = "runs/latest")]
    run_dir: PathBuf,
    /// Continue the run in RUN_DIR from its last checkpoint, with its saved recipe, until --epochs
    /// (default: the recipe's run.epochs) are done.
    #[arg(long, value_name = "RUN_DIR", conflicts_with_all = ["run_dir", "recipe", "overrides", "data", "model", "batch_size", "lr", "seed", "backend", "strict"])]
    resume: Option<PathBuf>,
    /// Stop after this many epochs of this invocation; --resume continues.
    #[arg(long)]
    stop_after: Option<usize>,
    /// Stop after the first epoch whose training top-1 error is at or below this (0..1).
    #[arg(long, value_parser = fraction)]
    stop_at_train_error: Option<f64>,
    /// Stop at the first unusable image instead of skipping it (skips are listed in
    /// RUN_DIR/skipped.tsv).
    #[arg(long)]
    strict: bool,
    /// No progress bars.
    #[arg(long)]
    quiet: bool,
    /// Data parallelism on this machine: train with N processes (one per device; on the CPU they
    /// share its cores), each on 1/N of every batch, as an `mpirun -np N` job (needs a build with
    /// `--features mpi`). optim.batch_size stays the whole batch. Across machines, start
    /// `alexnet train` with mpirun or srun yourself.
    #[arg(long, value_name = "N")]
    devices: Option<usize>,
    /// Model parallelism, the paper's two-GPU layout (Section 3.2): the 2 ranks of the MPI job
    /// (--devices 2, or mpirun -np 2) hold one tower of the two-tower network each and exchange
    /// maps where the paper's GPUs do, instead of splitting the batches. CPU backend only.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(2..=2))]
    model_parallel: Option<u8>,
    /// Under MPI: once training runs, how many seconds one rank may wait for the others in one
    /// collective before the job is ended (a rank stopped, frozen or cut off).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    peer_timeout: u64,
    /// Which device of the backend this process trains on (one GPU per rank).
    #[arg(long, default_value_t = 0)]
    device_index: usize,
}

impl TrainArgs {
    /// The named flags are shorthands for `--set`; they are applied after it. Each keeps the flag
    /// as typed, so that a bad value is reported against the flag.
    fn all_overrides(&self) -> Vec<Override> {
        let mut all: Vec<Override> = self.overrides.iter().map(|o| Override::set(o)).collect();
        let quote = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
        if let Some(dir) = &self.data {
            let flag = format!("--data {}", dir.display());
            let assignment = format!("data.dir={}", quote(&dir.display().to_string()));
            all.push(Override::flag(flag.clone(), assignment));
            // A directory made by `alexnet prepare` is read as shards.
            if Manifest::is_prepared(dir) {
                all.push(Override::flag(flag, "data.format=\"shards\"".into()));
            }
        }
        if self.strict {
            all.push(Override::flag("--strict".into(), "data.strict=true".into()));
        }
        let strings = [
            ("--model", "model.arch", &self.model),
            ("--backend", "run.backend", &self.backend),
        ];
        for (flag, key, value) in strings {
            if let Some(value) = value {
                all.push(Override::flag(
                    format!("{flag} {value}"),
                    format!("{key}={}", quote(value)),
                ));
            }
        }
        let numbers = [
            ("--epochs", "run.epochs", self.epochs.map(|v| v.to_string())),
            (
                "--batch-size",
                "optim.batch_size",
                self.batch_size.map(|v| v.to_string()),
            ),
            ("--lr", "optim.lr", self.lr.map(|v| format!("{v:?}"))),
            ("--seed", "run.seed", self.seed.map(|v| v.to_string())),
        ];
        for (flag, key, value) in numbers {
            if let Some(value) = value {
                all.push(Override::flag(
                    format!("{flag} {value}"),
                    format!("{key}={value}"),
                ));
            }
        }
        all
    }
}

pub fn run(mut args: TrainArgs) -> Result<()> {
    if args.epochs == Some(0) {
        anyhow::bail!("--epochs 0: nothing to train (give at least 1)");
    }
    if args.stop_after == Some(0) {
        anyhow::bail!("--stop-after 0: nothing to train (give at least 1)");
    }
    if let Some(devices) = args.devices {
        return run_on_local_devices(args, devices);
    }
    // Started by mpirun or srun: one rank of a data-parallel job, which MPI numbers.
    let (rank, world_size) = mpi_launch().unwrap_or((0, 1));
    if world_size > 1 && args.device_index == 0 {
        // One device per rank of a machine, unless told otherwise.
        args.device_index = local_rank().unwrap_or(0);
    }
    let is_root = rank == 0;
    // A resumed run trains on with the recipe saved in its checkpoint; only --epochs may change.
    // Ranks other than 0 are sent theirs.
    let recipe = match &args.resume {
        Some(_) => Recipe::default(),
        None if !is_root => Recipe::default(),
        None => Recipe::load(args.recipe.as_deref(), &args.all_overrides())?,
    };
    let (run_dir, resume) = match &args.resume {
        Some(dir) => (dir.clone(), true),
        None => (args.run_dir.clone(), false),
    };
    if !resume && is_root {
        println!(
            "# recipe (saved to {}/recipe.toml)\n{}",
            run_dir.display(),
            recipe.to_toml()
        );
    }
    let options = TrainOptions {
        run_dir: run_dir.clone(),
        resume,
        stop_after: args.stop_after,
        resume_epochs: args.epochs,
        stop_at_train_error: args.stop_at_train_error,
        quiet: args.quiet,
        mpi: (world_size > 1).then_some(MpiOptions {
            peer_timeout: Duration::from_secs(args.peer_timeout),
        }),
        local_data: if is_root { None } else { args.data.clone() },
        device_index: args.device_index,
        model_parallel: args.model_parallel.is_some(),
    };
    let summary = train(recipe, &options).with_context(|| match is_root {
        true => format!("training into {}", run_dir.display()),
        false => format!("training as rank {rank} of {world_size}"),
    })?;
    match summary.epochs.last() {
        Some(last) if is_root => println!(
            "done: {} epochs, {}; checkpoints {} and {}",
            last.epoch,
            // The last epoch of a run is always validated.
            last.val_errors()
                .map_or("not validated".into(), |[top1, top5]| format!(
                    "val top-1 error {top1:.4}, top-5 error {top5:.4}"
                )),
            summary.last_checkpoint.display(),
            summary.best_checkpoint.display()
        ),
        Some(last) => println!(
            "rank {rank} of {world_size} done: {} epochs, trained on {} images of {}; rank 0 keeps the run",
            last.epoch, summary.local_images, summary.images
        ),
        None => println!(
            "nothing to do: {} has {} epochs done already{}",
            run_dir.display(),
            summary.epochs_done_before,
            match args.epochs {
                Some(epochs) => format!(" (--epochs {epochs}); give more to train on"),
                None => "; give --epochs to train on".into(),
            }
        ),
    }
    Ok(())
}

/// `--devices N`: this very command, less `--devices`, as the N ranks of an `mpirun -np N` job on
/// this machine.
fn run_on_local_devices(mut args: TrainArgs, devices: usize) -> Result<()> {
    if devices <= 1 {
        args.devices = None;
        return run(args);
    }
    if cfg!(not(feature = "mpi")) {
        anyhow::bail!(
            "--devices {devices}: data parallelism runs on MPI, and this alexnet was built \
             without it (cargo build --release --features mpi, with Open MPI installed)"
        );
    }
    let program = std::env::current_exe().context("finding the alexnet program")?;
    let mut rest = Vec::new();
    let mut arguments = std::env::args().skip(1);
    while let Some(argument) = arguments.next() {
        match argument.as_str() {
            "--devices" => {
                arguments.next();
            }
            a if a.starts_with("--devices=") => {}
            _ => rest.push(argument),
        }
    }
    let status = std::process::Command::new("mpirun")
        .args(["-np", &devices.to_string(), "--oversubscribe"])
        .arg(&program)
        .args(&rest)
        // Open MPI refuses to start as root unless told to; --devices is asked for explicitly.
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .status()
        .context("starting mpirun (Open MPI: apt-get install openmpi-bin)")?;
    if !status.success() {
        anyhow::bail!("mpirun -np {devices} failed ({status})");
    }
    Ok(())
}

/// A share in 0..=1, for --stop-at-train-error.
fn fraction(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(value) if (0.0..=1.0).contains(&value) => Ok(value),
        _ => Err(format!("{text:?} is not an error rate in 0..1")),
    }
}
