//! `alexnet train`: the recipe from the defaults (the paper), a TOML file and overrides, then the loop.

use std::path::PathBuf;

use alexnet_data::Manifest;
use alexnet_train::{Recipe, TrainOptions, train};
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
    /// Data set root (sets data.dir): holds <train_split>/<class>/* and <val_split>/<class>/*.
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
    /// Stop at the first unusable image instead of skipping it (skips are listed in
    /// RUN_DIR/skipped.tsv).
    #[arg(long)]
    strict: bool,
    /// No progress bars.
    #[arg(long)]
    quiet: bool,
}

impl TrainArgs {
    /// The named flags are shorthands for `--set`; they are applied after it.
    fn all_overrides(&self) -> Vec<String> {
        let mut all = self.overrides.clone();
        let quote = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
        if let Some(dir) = &self.data {
            all.push(format!("data.dir={}", quote(&dir.display().to_string())));
            // A directory made by `alexnet prepare` is read as shards.
            if Manifest::is_prepared(dir) {
                all.push("data.format=\"shards\"".into());
            }
        }
        if self.strict {
            all.push("data.strict=true".into());
        }
        if let Some(model) = &self.model {
            all.push(format!("model.arch={}", quote(model)));
        }
        if let Some(backend) = &self.backend {
            all.push(format!("run.backend={}", quote(backend)));
        }
        let numbers = [
            ("run.epochs", self.epochs.map(|v| v.to_string())),
            ("optim.batch_size", self.batch_size.map(|v| v.to_string())),
            ("optim.lr", self.lr.map(|v| format!("{v:?}"))),
            ("run.seed", self.seed.map(|v| v.to_string())),
        ];
        all.extend(
            numbers
                .into_iter()
                .filter_map(|(k, v)| v.map(|v| format!("{k}={v}"))),
        );
        all
    }
}

pub fn run(args: TrainArgs) -> Result<()> {
    // A resumed run trains on with the recipe saved in its checkpoint; only --epochs may change.
    let recipe = match &args.resume {
        Some(_) => Recipe::default(),
        None => Recipe::load(args.recipe.as_deref(), &args.all_overrides())?,
    };
    let (run_dir, resume) = match &args.resume {
        Some(dir) => (dir.clone(), true),
        None => (args.run_dir.clone(), false),
    };
    if !resume {
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
        quiet: args.quiet,
    };
    let summary =
        train(recipe, &options).with_context(|| format!("training into {}", run_dir.display()))?;
    if let Some(last) = summary.epochs.last() {
        println!(
            "done: {} epochs, val top-1 error {:.4}, top-5 error {:.4}; checkpoints {} and {}",
            last.epoch,
            last.val_top1_error,
            last.val_top5_error,
            summary.last_checkpoint.display(),
            summary.best_checkpoint.display()
        );
    }
    Ok(())
}
