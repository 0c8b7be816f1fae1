//! The runs of an experiment: every arm with every seed, each an ordinary run directory
//! (`OUT/NAME/<arm>-seed<k>`) trained by the same trainer as `alexnet train`. A finished run is
//! skipped and an unfinished one resumed, so an experiment interrupted anywhere goes on where it
//! stopped when the command is given again.

use std::path::{Path, PathBuf};

use alexnet_run::recipe::Override;
use alexnet_run::{Checkpoint, Recipe};
use alexnet_train::{TrainError, TrainOptions, train};

use crate::definition::Experiment;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{arm} seed {seed}: {source}")]
    Recipe {
        arm: String,
        seed: u64,
        source: alexnet_run::RecipeError,
    },
    #[error("{arm} seed {seed} ({dir}): {source}")]
    Train {
        arm: String,
        seed: u64,
        dir: PathBuf,
        source: Box<TrainError>,
    },
    #[error("{0}")]
    Checkpoint(#[from] alexnet_run::CheckpointError),
}

/// One run of the experiment.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedRun {
    pub arm: String,
    pub seed: u64,
    pub dir: PathBuf,
    pub epochs: usize,
    /// `KEY=VALUE` overrides on top of the base recipe, in the order they apply.
    pub overrides: Vec<String>,
}

impl PlannedRun {
    /// The `alexnet train` command that makes this run by hand.
    pub fn command(&self, base: &Path) -> String {
        let sets: String = self
            .overrides
            .iter()
            .map(|o| format!(" --set '{o}'"))
            .collect();
        format!(
            "alexnet train --recipe {}{sets} --run-dir {}",
            base.display(),
            self.dir.display()
        )
    }
}

/// What happened to a run in this call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    /// It had all its epochs already.
    Skipped,
    /// It went on from this many epochs.
    Resumed(usize),
    Started,
}

/// Every run, arm by arm, seeds `0..seeds`. `data` replaces the recipe's data set (a prepared
/// directory is read as shards).
pub fn plan(
    experiment: &Experiment,
    full: bool,
    seeds: Option<usize>,
    out: &Path,
    data: Option<&Path>,
) -> Vec<PlannedRun> {
    let scale = experiment.scale(full);
    let seeds = seeds.unwrap_or(scale.seeds);
    let mut data_overrides = Vec::new();
    if let Some(dir) = data {
        data_overrides.push(format!("data.dir={:?}", dir.display().to_string()));
        // A directory made by `alexnet prepare` is read as shards, as `train --data` does.
        if alexnet_data::Manifest::is_prepared(dir) {
            data_overrides.push("data.format=\"shards\"".into());
        }
    }
    let mut runs = Vec::new();
    for arm in &experiment.arms {
        for seed in 0..seeds as u64 {
            let mut overrides: Vec<String> = experiment.set.clone();
            overrides.extend(scale.set.iter().cloned());
            overrides.extend(arm.set.iter().cloned());
            overrides.extend(data_overrides.iter().cloned());
            overrides.push(format!("run.seed={seed}"));
            overrides.push(format!("run.epochs={}", scale.epochs));
            runs.push(PlannedRun {
                arm: arm.name.clone(),
                seed,
                dir: out
                    .join(&experiment.name)
                    .join(format!("{}-seed{seed}", arm.name)),
                epochs: scale.epochs,
                overrides,
            });
        }
    }
    runs
}

/// How far `run` has got: the epochs of its last checkpoint, if it has one.
pub fn epochs_done(run: &PlannedRun) -> Result<Option<usize>, RunError> {
    let last = run.dir.join("last.safetensors");
    if !last.exists() {
        return Ok(None);
    }
    Ok(Some(Checkpoint::load(&last)?.progress.epochs_done))
}

/// Trains `run` to its epochs: skipped when done, resumed when begun, started otherwise.
pub fn execute(run: &PlannedRun, base: &Path, quiet: bool) -> Result<RunStatus, RunError> {
    let done = epochs_done(run)?;
    let status = match done {
        Some(done) if done >= run.epochs => return Ok(RunStatus::Skipped),
        Some(done) => RunStatus::Resumed(done),
        None => RunStatus::Started,
    };
    let recipe = match status {
        RunStatus::Started => {
            let overrides: Vec<Override> = run.overrides.iter().map(|o| Override::set(o)).collect();
            Recipe::load(Some(base), &overrides).map_err(|source| RunError::Recipe {
                arm: run.arm.clone(),
                seed: run.seed,
                source,
            })?
        }
        // A resumed run keeps the recipe saved in its checkpoint.
        _ => Recipe::default(),
    };
    let options = TrainOptions {
        run_dir: run.dir.clone(),
        resume: status != RunStatus::Started,
        stop_after: None,
        resume_epochs: Some(run.epochs),
        quiet,
        peers: None,
        local_data: None,
        device_index: 0,
    };
    train(recipe, &options).map_err(|source| RunError::Train {
        arm: run.arm.clone(),
        seed: run.seed,
        dir: run.dir.clone(),
        source: Box::new(source),
    })?;
    Ok(status)
}
