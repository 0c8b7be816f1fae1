//! The runs of an experiment: every arm with every seed, each an ordinary run directory
//! (`OUT/NAME/<arm>-seed<k>`) trained by the same trainer as `alexnet train`. A finished run is
//! skipped and an unfinished one resumed, so an experiment interrupted anywhere goes on where it
//! stopped when the command is given again.
//!
//! Many arms are the base recipe itself (the `lrn` arm of `lrn`, the `overlapping` arm of
//! `pooling`, ...): a run whose recipe and seed equal those of a finished run of another
//! experiment under the same output folder is not trained again; its directory becomes a link to
//! that run (`RunStatus::Shared`).

use std::path::{Path, PathBuf};

use alexnet_run::recipe::Override;
use alexnet_run::{Checkpoint, Recipe};
use alexnet_train::{TrainError, TrainOptions, train};

use crate::definition::{Arm, Experiment};

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
    #[error("{arm} (seeds {seeds:?}): evaluation: {reason}")]
    Evaluation {
        arm: String,
        seeds: Vec<u64>,
        reason: String,
    },
    #[error("baseline {method}: {reason}")]
    Baseline { method: String, reason: String },
    #[error("{dir}: cannot link it to its finished twin: {reason}")]
    Link { dir: PathBuf, reason: String },
    #[error("{arm} seed {seed}: alexnet train failed ({reason}); its output is in {log}")]
    Process {
        arm: String,
        seed: u64,
        log: PathBuf,
        reason: String,
    },
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
    /// The run ends at the first epoch with a training error at or below this.
    pub stop_at_train_error: Option<f64>,
}

impl PlannedRun {
    /// The arguments of `alexnet train` that start this run (`resume`: go on from its last
    /// checkpoint, whose recipe it keeps).
    pub fn train_arguments(&self, base: &Path, resume: bool) -> Vec<String> {
        let mut arguments = vec!["train".to_string()];
        if resume {
            arguments.extend([
                "--resume".into(),
                self.dir.display().to_string(),
                "--epochs".into(),
                self.epochs.to_string(),
            ]);
        } else {
            arguments.extend(["--recipe".into(), base.display().to_string()]);
            for set in &self.overrides {
                arguments.extend(["--set".into(), set.clone()]);
            }
        }
        if let Some(target) = self.stop_at_train_error {
            arguments.extend(["--stop-at-train-error".into(), target.to_string()]);
        }
        if !resume {
            arguments.extend(["--run-dir".into(), self.dir.display().to_string()]);
        }
        arguments
    }

    /// The `alexnet train` command that makes this run by hand (the overrides quoted for a shell).
    pub fn command(&self, base: &Path) -> String {
        let arguments = self.train_arguments(base, false);
        let mut command = String::from("alexnet");
        for (i, argument) in arguments.iter().enumerate() {
            if i > 0 && arguments[i - 1] == "--set" {
                command.push_str(&format!(" '{argument}'"));
            } else {
                command.push_str(&format!(" {argument}"));
            }
        }
        command
    }
}

/// What happened to a run in this call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunStatus {
    /// It had all its epochs already.
    Skipped,
    /// It went on from this many epochs.
    Resumed(usize),
    Started,
    /// A finished run of the same recipe and seed was found here, and linked to.
    Shared(PathBuf),
}

/// Two recipes that make the same run: equal once the model's defaults are written out (the
/// classes are the data set's, set when training starts).
fn same_run(a: &Recipe, b: &Recipe) -> bool {
    let resolved = |r: &Recipe| {
        let mut model = r.model.resolved();
        model.num_classes = 0;
        Recipe { model, ..r.clone() }
    };
    resolved(a) == resolved(b)
}

/// A finished run under `out/<experiment>/<run>` (links excluded) whose saved recipe makes the same
/// run as `recipe`, as a path relative to `dir`'s parent (`../<experiment>/<run>`).
pub fn find_twin(out: &Path, dir: &Path, recipe: &Recipe) -> Option<PathBuf> {
    let experiments = std::fs::read_dir(out).ok()?;
    let mut candidates: Vec<PathBuf> = experiments
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read_dir(e.path()).ok())
        .flat_map(|runs| runs.filter_map(|r| r.ok().map(|r| r.path())))
        .filter(|p| p != dir && !p.is_symlink() && p.join("recipe.toml").is_file())
        .collect();
    // The same twin on every machine: the first by name.
    candidates.sort();
    candidates.into_iter().find_map(|candidate| {
        let saved = Recipe::load(Some(&candidate.join("recipe.toml")), &[]).ok()?;
        let last = candidate.join("last.safetensors");
        let done = Checkpoint::read_progress(&last).ok()?.epochs_done;
        if !same_run(&saved, recipe) || done < recipe.run.epochs {
            return None;
        }
        let experiment = candidate.parent()?.file_name()?;
        Some(
            Path::new("..")
                .join(experiment)
                .join(candidate.file_name()?),
        )
    })
}

/// The overrides that point a recipe at `data` instead of its own data set.
pub fn data_overrides(data: Option<&Path>) -> Vec<String> {
    let mut overrides = Vec::new();
    if let Some(dir) = data {
        overrides.push(format!("data.dir={:?}", dir.display().to_string()));
        // A directory made by `alexnet prepare` is read as shards, as `train --data` does.
        if alexnet_data::Manifest::is_prepared(dir) {
            overrides.push("data.format=\"shards\"".into());
        }
    }
    overrides
}

/// Every run: seeds `0..seeds`, each with every arm. `data` replaces the recipe's data set (a prepared
/// directory is read as shards). An arm of a sweep group has its seeds after 0 only once the
/// group's seed-0 runs are all finished and it is the group's winner ([`sweep_winner`]): plan
/// again after training to see them.
pub fn plan(
    experiment: &Experiment,
    full: bool,
    seeds: Option<usize>,
    out: &Path,
    data: Option<&Path>,
) -> Vec<PlannedRun> {
    let scale = experiment.scale(full);
    let seeds = seeds.unwrap_or(scale.seeds);
    let data_overrides = data_overrides(data);
    let planned = |arm: &Arm, seed: u64| {
        let mut overrides: Vec<String> = experiment.set.clone();
        overrides.extend(scale.set.iter().cloned());
        overrides.extend(arm.set.iter().cloned());
        overrides.extend(data_overrides.iter().cloned());
        overrides.push(format!("run.seed={seed}"));
        overrides.push(format!("run.epochs={}", scale.epochs));
        PlannedRun {
            arm: arm.name.clone(),
            seed,
            dir: out
                .join(&experiment.name)
                .join(format!("{}-seed{seed}", arm.name)),
            epochs: scale.epochs,
            overrides,
            stop_at_train_error: experiment
                .train_error_target
                .filter(|_| experiment.stop_at_target),
        }
    };
    // An arm that evaluates another's networks trains nothing of its own.
    let trained: Vec<&Arm> = experiment
        .arms
        .iter()
        .filter(|a| a.runs_of.is_none())
        .collect();
    let first: Vec<PlannedRun> = trained.iter().map(|arm| planned(arm, 0)).collect();
    let goes_on = |arm: &Arm| match &arm.sweep {
        None => true,
        Some(group) => {
            let group_runs: Vec<PlannedRun> = first
                .iter()
                .filter(|r| experiment.sweep_arms(group).any(|a| a.name == r.arm))
                .cloned()
                .collect();
            sweep_winner(experiment, &group_runs).as_deref() == Some(arm.name.as_str())
        }
    };
    let mut runs = Vec::new();
    // Seed by seed, every arm in each: an experiment stopped part way has compared its arms
    // on the seeds it did.
    for seed in 0..seeds as u64 {
        for arm in &trained {
            if seed == 0 || goes_on(arm) {
                runs.push(planned(arm, seed));
            }
        }
    }
    runs
}

/// The arm of a sweep group whose seed-0 run (`group_runs`) did best: fewest epochs to the
/// experiment's training-error target (a run that never reached it ranks after those that did),
/// then the lowest last validation top-1 error. `None` until every one of them is finished.
pub fn sweep_winner(experiment: &Experiment, group_runs: &[PlannedRun]) -> Option<String> {
    let mut ranked = Vec::new();
    for run in group_runs {
        if !finished(run).ok()? {
            return None;
        }
        let curve = alexnet_run::read_metrics(&run.dir.join("metrics.jsonl")).ok()?;
        let reached = experiment.train_error_target.and_then(|target| {
            curve
                .iter()
                .find(|m| m.train_top1_error <= target)
                .map(|m| m.epoch)
        });
        let last_error = alexnet_run::metrics::last_validated(&curve).map_or(f64::MAX, |v| v.1[0]);
        ranked.push((reached.unwrap_or(usize::MAX), last_error, run.arm.clone()));
    }
    ranked
        .into_iter()
        .min_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)))
        .map(|(_, _, arm)| arm)
}

/// Whether `run` has all it needs: its epochs, or its training-error target reached.
pub fn finished(run: &PlannedRun) -> Result<bool, RunError> {
    Ok(finished_after(run, epochs_done(run)?))
}

/// Whether `run`, with `done` epochs in its last checkpoint, has all it needs.
fn finished_after(run: &PlannedRun, done: Option<usize>) -> bool {
    match done {
        None => false,
        Some(done) if done >= run.epochs => true,
        Some(_) => run.stop_at_train_error.is_some_and(|target| {
            alexnet_run::read_metrics(&run.dir.join("metrics.jsonl"))
                .ok()
                .and_then(|curve| curve.last().map(|m| m.train_top1_error <= target))
                .unwrap_or(false)
        }),
    }
}

/// How far `run` has got: the epochs of its last checkpoint, if it has one.
pub fn epochs_done(run: &PlannedRun) -> Result<Option<usize>, RunError> {
    let last = run.dir.join("last.safetensors");
    if !last.exists() {
        return Ok(None);
    }
    // The header alone: a resumed run reads the whole checkpoint once, in the trainer.
    Ok(Some(Checkpoint::read_progress(&last)?.epochs_done))
}

/// What a run needs, once what is on disk has been looked at.
pub enum NextStep {
    /// Nothing: finished already, or linked to its finished twin.
    Done(RunStatus),
    /// Training, from the start (`Started`, with the recipe) or from its last checkpoint
    /// (`Resumed`, whose recipe is in the checkpoint).
    Train(RunStatus, Box<Recipe>),
}

/// Skips `run` when done, links it to a finished twin under `out` when there is one, and says
/// otherwise how it is to be trained.
pub fn prepare(run: &PlannedRun, base: &Path, out: &Path) -> Result<NextStep, RunError> {
    // The checkpoint's header, read once for both questions.
    let done = epochs_done(run)?;
    if finished_after(run, done) {
        return Ok(NextStep::Done(RunStatus::Skipped));
    }
    let status = match done {
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
    if status == RunStatus::Started
        && let Some(twin) = find_twin(out, &run.dir, &recipe)
    {
        link(&twin, &run.dir)?;
        return Ok(NextStep::Done(RunStatus::Shared(twin)));
    }
    Ok(NextStep::Train(status, Box::new(recipe)))
}

/// Trains `run` to its epochs in this process: skipped when done, resumed when begun, linked to
/// a finished twin under `out` when there is one, started otherwise.
pub fn execute(
    run: &PlannedRun,
    base: &Path,
    out: &Path,
    quiet: bool,
) -> Result<RunStatus, RunError> {
    let (status, recipe) = match prepare(run, base, out)? {
        NextStep::Done(status) => return Ok(status),
        NextStep::Train(status, recipe) => (status, recipe),
    };
    let options = TrainOptions {
        run_dir: run.dir.clone(),
        resume: status != RunStatus::Started,
        stop_after: None,
        resume_epochs: Some(run.epochs),
        stop_at_train_error: run.stop_at_train_error,
        quiet,
        mpi: None,
        local_data: None,
        device_index: 0,
        model_parallel: false,
    };
    train(*recipe, &options).map_err(|source| RunError::Train {
        arm: run.arm.clone(),
        seed: run.seed,
        dir: run.dir.clone(),
        source: Box::new(source),
    })?;
    Ok(status)
}

fn link(target: &Path, dir: &Path) -> Result<(), RunError> {
    let failed = |e: std::io::Error| RunError::Link {
        dir: dir.to_path_buf(),
        reason: e.to_string(),
    };
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent).map_err(failed)?;
    }
    // An empty directory left by a run that never wrote a checkpoint gives way to the link.
    if dir.is_dir() {
        std::fs::remove_dir(dir).map_err(failed)?;
    }
    #[cfg(unix)]
    return std::os::unix::fs::symlink(target, dir).map_err(failed);
    #[cfg(not(unix))]
    return Err(failed(std::io::Error::other(
        "links need a Unix file system",
    )));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definition::{Scale, Scales};

    #[test]
    fn runs_go_seed_by_seed_with_the_arms_overrides_after_the_experiments() {
        let arm = |name: &str, set: &str| Arm {
            name: name.into(),
            set: vec![set.into()],
            ..Arm::default()
        };
        let experiment = Experiment {
            claim: "c".into(),
            section: "3.3".into(),
            base: "recipes/demo.toml".into(),
            set: vec!["model.dropout=0.0".into()],
            train_error_target: None,
            stop_at_target: false,
            scale: Scales {
                small: Scale {
                    epochs: 2,
                    seeds: 2,
                    set: vec!["optim.lr=0.02".into()],
                },
                full: Scale {
                    epochs: 9,
                    seeds: 5,
                    set: Vec::new(),
                },
            },
            arms: vec![
                arm("a", "model.lrn=true"),
                arm("b", "model.lrn=false"),
                Arm {
                    name: "a-ten-crop".into(),
                    runs_of: Some("a".into()),
                    ..Arm::default()
                },
            ],
            baselines: Vec::new(),
            name: "x".into(),
        };
        let runs = plan(&experiment, false, None, Path::new("out"), None);
        let order: Vec<(&str, u64)> = runs.iter().map(|r| (r.arm.as_str(), r.seed)).collect();
        assert_eq!(order, [("a", 0), ("b", 0), ("a", 1), ("b", 1)]);
        assert_eq!(runs[3].dir, Path::new("out/x/b-seed1"));
        assert_eq!(
            runs[3].overrides,
            [
                "model.dropout=0.0",
                "optim.lr=0.02",
                "model.lrn=false",
                "run.seed=1",
                "run.epochs=2"
            ]
        );
        assert_eq!(
            plan(&experiment, true, Some(1), Path::new("o"), None).len(),
            2
        );
    }

    /// A finished seed-0 run on disk: `train_errors` by epoch, and a checkpoint header saying
    /// how many epochs it has.
    fn fake_run(dir: &Path, train_errors: &[f64], val_error: f64) {
        std::fs::create_dir_all(dir).unwrap();
        let _ = std::fs::remove_file(dir.join("metrics.jsonl"));
        for (i, &error) in train_errors.iter().enumerate() {
            let metrics = alexnet_run::EpochMetrics {
                epoch: i + 1,
                step: 0,
                lr: 0.01,
                train_loss: 1.0,
                train_top1_error: error,
                val_top1_error: Some(val_error),
                val_top5_error: Some(0.1),
                images_per_second: 1.0,
                epoch_seconds: 1.0,
                wall_seconds: (i + 1) as f64,
            };
            alexnet_run::metrics::append(&dir.join("metrics.jsonl"), &metrics).unwrap();
        }
        let progress = alexnet_run::Progress {
            epochs_done: train_errors.len(),
            ..alexnet_run::Progress::fresh(0.01)
        };
        let metadata = std::collections::HashMap::from([(
            "progress".to_string(),
            serde_json::to_string(&progress).unwrap(),
        )]);
        let empty: Vec<(&str, safetensors::tensor::TensorView)> = Vec::new();
        let bytes = safetensors::serialize(empty, Some(metadata)).unwrap();
        std::fs::write(dir.join("last.safetensors"), bytes).unwrap();
    }

    #[test]
    fn only_the_winner_of_a_sweep_goes_on_to_the_other_seeds() {
        let out = std::env::temp_dir().join(format!("alexnet-sweep-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        let arm = |name: &str, sweep: Option<&str>| Arm {
            name: name.into(),
            sweep: sweep.map(String::from),
            ..Arm::default()
        };
        let experiment = Experiment {
            claim: "c".into(),
            section: "3.1".into(),
            base: "recipes/demo.toml".into(),
            set: Vec::new(),
            train_error_target: Some(0.25),
            stop_at_target: true,
            scale: Scales {
                small: Scale {
                    epochs: 5,
                    seeds: 3,
                    set: Vec::new(),
                },
                full: Scale {
                    epochs: 5,
                    seeds: 3,
                    set: Vec::new(),
                },
            },
            arms: vec![
                arm("slow", Some("rate")),
                arm("fast", Some("rate")),
                arm("alone", None),
            ],
            baselines: Vec::new(),
            name: "s".into(),
        };
        let order = |runs: &[PlannedRun]| -> Vec<(String, u64)> {
            runs.iter().map(|r| (r.arm.clone(), r.seed)).collect()
        };
        let pairs = |list: &[(&str, u64)]| -> Vec<(String, u64)> {
            list.iter().map(|(a, s)| (a.to_string(), *s)).collect()
        };
        // Nothing trained yet: the sweep's arms have seed 0 only, the other arm every seed.
        let runs = plan(&experiment, false, None, &out, None);
        assert_eq!(
            order(&runs),
            pairs(&[
                ("slow", 0),
                ("fast", 0),
                ("alone", 0),
                ("alone", 1),
                ("alone", 2)
            ])
        );
        // One of the two finished: still undecided.
        fake_run(&out.join("s/slow-seed0"), &[0.5, 0.4, 0.3, 0.2], 0.3);
        assert_eq!(plan(&experiment, false, None, &out, None).len(), 5);
        // "fast" reaches 25% at epoch 2, "slow" at 4: "fast" goes on, though its last
        // validation error is higher.
        fake_run(&out.join("s/fast-seed0"), &[0.4, 0.24], 0.35);
        let runs = plan(&experiment, false, None, &out, None);
        assert_eq!(
            order(&runs),
            pairs(&[
                ("slow", 0),
                ("fast", 0),
                ("alone", 0),
                ("fast", 1),
                ("alone", 1),
                ("fast", 2),
                ("alone", 2)
            ])
        );
        // Neither reaches the target: the lower validation error wins.
        fake_run(&out.join("s/slow-seed0"), &[0.5, 0.4, 0.3, 0.3, 0.3], 0.3);
        fake_run(&out.join("s/fast-seed0"), &[0.4, 0.3, 0.3, 0.3, 0.3], 0.35);
        let group: Vec<PlannedRun> = runs
            .iter()
            .filter(|r| r.seed == 0)
            .take(2)
            .cloned()
            .collect();
        assert_eq!(sweep_winner(&experiment, &group).as_deref(), Some("slow"));
        std::fs::remove_dir_all(&out).unwrap();
    }
}
