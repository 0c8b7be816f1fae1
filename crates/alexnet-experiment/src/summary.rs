//! What an experiment found: each arm's mean and spread over its seeds (final validation top-1
//! and top-5 error, final training error and the gap between them, wall time, and the epochs to a
//! training-error target), beside the paper's figure, as `results.json` and `results.md`.

use std::path::Path;

use alexnet_run::metrics::last_validated;
use alexnet_run::{EpochMetrics, read_metrics};
use serde::Serialize;

use alexnet_baselines::BaselineResult;

use crate::definition::{BaselineArm, Experiment};
use crate::evaluation::Evaluation;
use crate::runner::{PlannedRun, sweep_winner};

/// Mean, sample standard deviation, least and most of a set of numbers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    pub mean: f64,
    pub std: f64,
    pub min: f64,
    pub max: f64,
    pub n: usize,
}

impl Spread {
    pub fn of(values: &[f64]) -> Option<Self> {
        let n = values.len();
        if n == 0 {
            return None;
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let var = if n > 1 {
            values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64
        } else {
            0.0
        };
        Some(Self {
            mean,
            std: var.sqrt(),
            min: values.iter().cloned().fold(f64::INFINITY, f64::min),
            max: values.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
            n,
        })
    }
}

/// One run's last epoch and its curve.
#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    pub arm: String,
    pub seed: u64,
    pub dir: String,
    pub command: String,
    pub epochs: usize,
    pub val_top1_error: f64,
    pub val_top5_error: f64,
    pub train_top1_error: f64,
    pub wall_seconds: f64,
    /// The first epoch whose training error is at or below the experiment's target, and the wall
    /// time by its end.
    pub target_epoch: Option<usize>,
    pub target_seconds: Option<f64>,
    #[serde(skip)]
    pub curve: Vec<EpochMetrics>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ArmResult {
    pub arm: String,
    pub paper: Option<String>,
    pub val_top1_error: Option<Spread>,
    pub val_top5_error: Option<Spread>,
    pub train_top1_error: Option<Spread>,
    /// Validation minus training top-1 error: how much the arm overfits.
    pub gap: Option<Spread>,
    pub wall_seconds: Option<Spread>,
    pub target_epoch: Option<Spread>,
    pub target_seconds: Option<Spread>,
    /// Runs of the arm with all their epochs, and runs planned.
    pub finished: usize,
    pub planned: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Results {
    pub experiment: String,
    pub claim: String,
    pub section: String,
    pub base: String,
    pub train_error_target: Option<f64>,
    pub arms: Vec<ArmResult>,
    pub runs: Vec<RunResult>,
    /// Test-time arms' figures, by arm.
    pub evaluations: Vec<(String, Vec<Evaluation>)>,
    /// The classical methods' results (also rows of `arms`, after the CNN's).
    pub baselines: Vec<BaselineResult>,
    pub sweeps: Vec<SweepResult>,
}

/// A sweep group's arms and the one that went on to every seed (`None`: not decided yet).
#[derive(Debug, Clone, Serialize)]
pub struct SweepResult {
    pub group: String,
    pub arms: Vec<String>,
    pub winner: Option<String>,
}

/// Reads what each planned run has recorded so far (a run not started has nothing); the
/// test-time arms' figures are `evaluations` (by arm name).
pub fn collect(
    experiment: &Experiment,
    runs: &[PlannedRun],
    evaluations: &[(String, Vec<Evaluation>)],
    baselines: &[(BaselineArm, BaselineResult)],
) -> Results {
    let results: Vec<RunResult> = runs
        .iter()
        .filter_map(|run| {
            let curve = read_metrics(&run.dir.join("metrics.jsonl")).ok()?;
            let last = curve.last()?.clone();
            // The last epoch of a finished run is always validated; an unfinished one's latest
            // validation stands in until it is.
            let (_, [val_top1_error, val_top5_error]) = last_validated(&curve)?;
            let reached = experiment
                .train_error_target
                .and_then(|target| curve.iter().find(|m| m.train_top1_error <= target).cloned());
            Some(RunResult {
                arm: run.arm.clone(),
                seed: run.seed,
                dir: run.dir.display().to_string(),
                command: run.command(&experiment.base),
                epochs: last.epoch,
                val_top1_error,
                val_top5_error,
                train_top1_error: last.train_top1_error,
                wall_seconds: last.wall_seconds,
                target_epoch: reached.as_ref().map(|m| m.epoch),
                target_seconds: reached.as_ref().map(|m| m.wall_seconds),
                curve,
            })
        })
        .collect();
    let arms = experiment
        .arms
        .iter()
        .map(|arm| {
            if arm.evaluated() {
                let found: &[Evaluation] = evaluations
                    .iter()
                    .find(|(name, _)| *name == arm.name)
                    .map_or(&[], |(_, e)| e);
                let spread = |value: fn(&Evaluation) -> f64| {
                    Spread::of(&found.iter().map(value).collect::<Vec<_>>())
                };
                let trained = runs.iter().filter(|r| r.arm == arm.trained_arm()).count();
                return ArmResult {
                    arm: arm.name.clone(),
                    paper: arm.paper.clone(),
                    val_top1_error: spread(|e| e.top1_error),
                    val_top5_error: spread(|e| e.top5_error),
                    train_top1_error: None,
                    gap: None,
                    wall_seconds: None,
                    target_epoch: None,
                    target_seconds: None,
                    finished: found.len(),
                    planned: trained / arm.ensemble_size(),
                };
            }
            let planned: Vec<&PlannedRun> = runs.iter().filter(|r| r.arm == arm.name).collect();
            let done: Vec<&RunResult> = results
                .iter()
                .filter(|r| {
                    r.arm == arm.name
                        && planned
                            .iter()
                            .any(|p| p.seed == r.seed && ran_its_course(p, r))
                })
                .collect();
            let spread = |value: fn(&RunResult) -> Option<f64>| {
                Spread::of(&done.iter().filter_map(|r| value(r)).collect::<Vec<_>>())
            };
            ArmResult {
                arm: arm.name.clone(),
                paper: arm.paper.clone(),
                val_top1_error: spread(|r| Some(r.val_top1_error)),
                val_top5_error: spread(|r| Some(r.val_top5_error)),
                train_top1_error: spread(|r| Some(r.train_top1_error)),
                gap: spread(|r| Some(r.val_top1_error - r.train_top1_error)),
                wall_seconds: spread(|r| Some(r.wall_seconds)),
                target_epoch: spread(|r| r.target_epoch.map(|e| e as f64)),
                target_seconds: spread(|r| r.target_seconds),
                finished: done.len(),
                planned: planned.len(),
            }
        })
        .collect::<Vec<_>>();
    let mut arms = arms;
    arms.extend(baselines.iter().map(|(arm, result)| {
        let one = |value: f64| Spread::of(&[value]);
        ArmResult {
            arm: result.method.name().into(),
            paper: arm.paper.clone(),
            val_top1_error: one(result.top1_error),
            val_top5_error: one(result.top5_error),
            train_top1_error: None,
            gap: None,
            wall_seconds: one(result.seconds),
            target_epoch: None,
            target_seconds: None,
            finished: 1,
            planned: 1,
        }
    }));
    let mut groups: Vec<&str> = experiment
        .arms
        .iter()
        .filter_map(|a| a.sweep.as_deref())
        .collect();
    groups.dedup();
    let sweeps = groups
        .into_iter()
        .map(|group| {
            let arms: Vec<String> = experiment
                .sweep_arms(group)
                .map(|a| a.name.clone())
                .collect();
            let group_runs: Vec<PlannedRun> = runs
                .iter()
                .filter(|r| r.seed == 0 && arms.contains(&r.arm))
                .cloned()
                .collect();
            SweepResult {
                group: group.to_string(),
                winner: sweep_winner(experiment, &group_runs),
                arms,
            }
        })
        .collect();
    Results {
        sweeps,
        experiment: experiment.name.clone(),
        claim: experiment.claim.clone(),
        section: experiment.section.clone(),
        base: experiment.base.display().to_string(),
        train_error_target: experiment.train_error_target,
        arms,
        runs: results,
        evaluations: evaluations.to_vec(),
        baselines: baselines.iter().map(|(_, r)| r.clone()).collect(),
    }
}

/// Whether `run` has all its epochs, or stopped at its training-error target.
fn ran_its_course(planned: &PlannedRun, run: &RunResult) -> bool {
    run.epochs >= planned.epochs
        || planned
            .stop_at_train_error
            .is_some_and(|target| run.train_top1_error <= target)
}

fn cell(spread: &Option<Spread>, percent: bool) -> String {
    match spread {
        None => "-".into(),
        // One figure has no spread to show.
        Some(s) if s.n == 1 && percent => format!("{:.2}%", 100.0 * s.mean),
        Some(s) if s.n == 1 => format!("{:.1}", s.mean),
        Some(s) if percent => format!(
            "{:.2}% ± {:.2} ({:.2}..{:.2})",
            100.0 * s.mean,
            100.0 * s.std,
            100.0 * s.min,
            100.0 * s.max
        ),
        Some(s) => format!("{:.1} ± {:.1}", s.mean, s.std),
    }
}

impl Results {
    /// The page a reader sees: the claim, one row per arm, the runs and their commands.
    pub fn markdown(&self, plots: &[String]) -> String {
        let mut md = format!(
            "# Experiment `{}`\n\nThe paper (Section {}): {}\n\nEvery run starts from `{}`. Each \
             cell is the mean over seeds ± their standard deviation (least..most), at each run's \
             last epoch. A test-time arm (10-crop, ensembles) has no training columns: its figures \
             are its networks' last checkpoints evaluated again, one figure per ensemble.\n\n",
            self.experiment, self.section, self.claim, self.base
        );
        md.push_str("| arm | paper | val top-1 error | val top-5 error | train top-1 error | gap (val - train) | wall s |");
        if self.train_error_target.is_some() {
            md.push_str(" epochs to target | s to target |");
        }
        md.push_str(" runs |\n|---|---|---|---|---|---|---|");
        if self.train_error_target.is_some() {
            md.push_str("---|---|");
        }
        md.push_str("---|\n");
        for arm in &self.arms {
            md.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} |",
                arm.arm,
                arm.paper.as_deref().unwrap_or("-"),
                cell(&arm.val_top1_error, true),
                cell(&arm.val_top5_error, true),
                cell(&arm.train_top1_error, true),
                cell(&arm.gap, true),
                cell(&arm.wall_seconds, false),
            ));
            if self.train_error_target.is_some() {
                md.push_str(&format!(
                    " {} | {} |",
                    cell(&arm.target_epoch, false),
                    cell(&arm.target_seconds, false)
                ));
            }
            md.push_str(&format!(" {}/{} |\n", arm.finished, arm.planned));
        }
        if let Some(target) = self.train_error_target {
            md.push_str(&format!(
                "\nTarget: the first epoch with a training top-1 error at or below {:.0}%.\n",
                100.0 * target
            ));
        }
        for sweep in &self.sweeps {
            md.push_str(&format!(
                "\nSweep `{}`: {} each trained seed 0; ",
                sweep.group,
                sweep.arms.join(", ")
            ));
            md.push_str(&match &sweep.winner {
                Some(winner) => format!(
                    "{winner} (fewest epochs to the target, then lowest validation error) \
                     trained the other seeds.\n"
                ),
                None => "the winner is decided once all of them have finished.\n".into(),
            });
        }
        for plot in plots {
            md.push_str(&format!("\n![{plot}]({plot})\n"));
        }
        md.push_str("\n## Runs\n\n| arm | seed | epochs | val top-1 | wall s | command |\n|---|---|---|---|---|---|\n");
        for run in &self.runs {
            md.push_str(&format!(
                "| {} | {} | {} | {:.4} | {:.0} | `{}` |\n",
                run.arm, run.seed, run.epochs, run.val_top1_error, run.wall_seconds, run.command
            ));
        }
        if self.evaluations.iter().any(|(_, e)| !e.is_empty()) {
            md.push_str("\n## Test-time evaluations\n\n| arm | seeds averaged | views | images | top-1 error | top-5 error |\n|---|---|---|---|---|---|\n");
            for (arm, evaluations) in &self.evaluations {
                for e in evaluations {
                    let seeds: Vec<String> = e.seeds.iter().map(u64::to_string).collect();
                    md.push_str(&format!(
                        "| {arm} | {} | {} | {} | {:.4} | {:.4} |\n",
                        seeds.join(", "),
                        e.views.label(),
                        e.images,
                        e.top1_error,
                        e.top5_error
                    ));
                }
            }
        }
        if !self.baselines.is_empty() {
            md.push_str("\n## Classical baselines\n\nFitted on the training split the CNN arms train on, measured on the split they are validated on (`alexnet baseline` does the same by hand).\n\n| method | what | features | train images | test images | top-1 error | top-5 error | s |\n|---|---|---|---|---|---|---|---|\n");
            for b in &self.baselines {
                md.push_str(&format!(
                    "| {} | {} | {} | {} | {} | {:.4} | {:.4} | {:.0} |\n",
                    b.method.name(),
                    b.description,
                    b.features,
                    b.train_images,
                    b.test_images,
                    b.top1_error,
                    b.top5_error,
                    b.seconds
                ));
            }
        }
        md
    }

    pub fn write(&self, dir: &Path, plots: &[String]) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let json = serde_json::to_string_pretty(self).expect("results serialize");
        alexnet_data::write_atomic(&dir.join("results.json"), json.as_bytes())
            .map_err(std::io::Error::other)?;
        alexnet_data::write_atomic(&dir.join("results.md"), self.markdown(plots).as_bytes())
            .map_err(std::io::Error::other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spread_of_three_seeds() {
        let s = Spread::of(&[0.2, 0.3, 0.4]).unwrap();
        assert!((s.mean - 0.3).abs() < 1e-12);
        // Sample standard deviation: sqrt((0.01 + 0 + 0.01) / 2) = 0.1.
        assert!((s.std - 0.1).abs() < 1e-12);
        assert_eq!((s.min, s.max, s.n), (0.2, 0.4, 3));
        assert_eq!(Spread::of(&[0.5]).unwrap().std, 0.0);
        assert!(Spread::of(&[]).is_none());
    }

    #[test]
    fn a_cell_shows_the_spread_of_several_figures_and_one_figure_alone() {
        let three = Spread::of(&[0.2, 0.3, 0.4]);
        assert_eq!(cell(&three, true), "30.00% ± 10.00 (20.00..40.00)");
        assert_eq!(cell(&Spread::of(&[0.4235]), true), "42.35%");
        assert_eq!(cell(&Spread::of(&[1878.4]), false), "1878.4");
        assert_eq!(cell(&None, true), "-");
    }
}
