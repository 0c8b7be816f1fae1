//! Test-time arms: Section 4.1's ten views and Section 6's ensembles, measured on the last
//! checkpoints of an arm's finished runs. Each figure is one ensemble (of one network, unless the
//! arm says otherwise) evaluated on the validation split of the data set it was trained on. The
//! figures are kept in `<results>/<arm>-eval.json`, so a re-run evaluates only what is new.

use std::path::{Path, PathBuf};

use alexnet_data::{BadInputPolicy, TestViews, progress_bar, with_classes_of};
use alexnet_eval::{checkpoint_split, ensemble_members, evaluate};
use alexnet_run::{Checkpoint, device};
use serde::{Deserialize, Serialize};

use crate::definition::Arm;
use crate::runner::{PlannedRun, RunError, finished};

/// One figure of a test-time arm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// The seeds of the networks averaged.
    pub seeds: Vec<u64>,
    pub views: TestViews,
    pub images: usize,
    pub top1_error: f64,
    pub top5_error: f64,
}

/// The finished runs holding `arm`'s networks, by seed, cut into ensembles of the arm's size (a
/// remainder too small for a whole ensemble is left out).
pub fn ensembles<'a>(
    arm: &Arm,
    runs: &'a [PlannedRun],
) -> Result<Vec<Vec<&'a PlannedRun>>, RunError> {
    let mut done = Vec::new();
    for run in runs.iter().filter(|r| r.arm == arm.trained_arm()) {
        if finished(run)? {
            done.push(run);
        }
    }
    done.sort_by_key(|r| r.seed);
    Ok(done
        .chunks_exact(arm.ensemble_size())
        .map(<[_]>::to_vec)
        .collect())
}

fn cache_path(results_dir: &Path, arm: &Arm) -> PathBuf {
    results_dir.join(format!("{}-eval.json", arm.name))
}

/// What was evaluated before (nothing when the file is missing or unreadable: it is only a cache).
pub fn read_evaluations(results_dir: &Path, arm: &Arm) -> Vec<Evaluation> {
    std::fs::read(cache_path(results_dir, arm))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// Every ensemble of `arm` that the cache does not hold yet is evaluated; returns them all.
pub fn evaluate_arm(
    arm: &Arm,
    runs: &[PlannedRun],
    results_dir: &Path,
    quiet: bool,
) -> Result<Vec<Evaluation>, RunError> {
    let views = arm.views.unwrap_or_default();
    let cached = read_evaluations(results_dir, arm);
    let mut evaluations = Vec::new();
    for group in ensembles(arm, runs)? {
        let seeds: Vec<u64> = group.iter().map(|r| r.seed).collect();
        if let Some(done) = cached.iter().find(|e| e.seeds == seeds && e.views == views) {
            evaluations.push(done.clone());
            continue;
        }
        let failed = |reason: String| RunError::Evaluation {
            arm: arm.name.clone(),
            seeds: seeds.clone(),
            reason,
        };
        evaluations.push(evaluate_group(&group, views, quiet).map_err(failed)?);
        std::fs::create_dir_all(results_dir).map_err(|e| failed(e.to_string()))?;
        let json = serde_json::to_string_pretty(&evaluations).expect("evaluations serialize");
        alexnet_data::write_atomic(&cache_path(results_dir, arm), json.as_bytes())
            .map_err(|e| failed(e.to_string()))?;
    }
    Ok(evaluations)
}

fn evaluate_group(
    group: &[&PlannedRun],
    views: TestViews,
    quiet: bool,
) -> Result<Evaluation, String> {
    let checkpoints = group
        .iter()
        .map(|run| {
            let path = run.dir.join("last.safetensors");
            Checkpoint::load(&path)
                .map(|c| (path, c))
                .map_err(|e| e.to_string())
        })
        .collect::<Result<Vec<_>, _>>()?;
    let first = &checkpoints[0].1;
    let device = device(&first.recipe.run.backend, 0).map_err(|e| e.to_string())?;
    let load_set = |side: usize| {
        let (origin, set) = checkpoint_split(
            &first.recipe.data,
            None,
            None,
            side,
            &progress_bar(0, quiet, "decode"),
            BadInputPolicy::strict_if(first.recipe.data.strict),
        )?;
        let set = with_classes_of(set, &first.class_names, &origin)?;
        Ok((origin, set))
    };
    let plan = views.plan();
    let (members, _) =
        ensemble_members(&checkpoints, &device, plan, 100, load_set).map_err(|e| e.to_string())?;
    let report =
        evaluate(&members, &device, &progress_bar(0, quiet, "eval")).map_err(|e| e.to_string())?;
    Ok(Evaluation {
        seeds: group.iter().map(|r| r.seed).collect(),
        views,
        images: report.images,
        top1_error: report.top1_error,
        top5_error: report.top5_error,
    })
}
