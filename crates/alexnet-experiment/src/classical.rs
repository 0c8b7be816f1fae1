//! The classical rows of an experiment (`[[baseline]]`, the paper's Table 1 comparison): each
//! method trained and measured by `alexnet-baselines` on the splits the CNN arms train and
//! validate on, kept in `<results>/baseline-<method>.json` so a re-run does not fit it again.

use std::path::{Path, PathBuf};

use alexnet_baselines::{BaselineResult, run};
use alexnet_data::progress_bar;
use alexnet_run::Recipe;
use alexnet_run::recipe::Override;
use alexnet_train::run_data::train_and_val_splits;

use crate::definition::{BaselineArm, Experiment};
use crate::runner::{RunError, data_overrides};

/// Every baseline of `experiment`, fitted unless its cached result has the same options.
pub fn evaluate_baselines(
    experiment: &Experiment,
    data: Option<&Path>,
    results_dir: &Path,
    quiet: bool,
) -> Result<Vec<(BaselineArm, BaselineResult)>, RunError> {
    let mut done = Vec::new();
    let mut splits = None;
    for baseline in &experiment.baselines {
        let method = baseline.method;
        let failed = |reason: String| RunError::Baseline {
            method: method.name().into(),
            reason,
        };
        if let Some(result) = cached(results_dir, baseline) {
            done.push((baseline.clone(), result));
            continue;
        }
        // The splits are read once, for the first baseline not in the cache.
        if splits.is_none() {
            let overrides: Vec<Override> = experiment
                .set
                .iter()
                .cloned()
                .chain(data_overrides(data))
                .map(|o| Override::set(&o))
                .collect();
            let recipe = Recipe::load(Some(&experiment.base), &overrides)
                .map_err(|e| failed(e.to_string()))?;
            splits = Some(train_and_val_splits(&recipe, quiet).map_err(|e| failed(e.to_string()))?);
        }
        let [train, test] = splits.as_ref().expect("read just above");
        let bar = progress_bar(0, quiet, method.name());
        let result = run(
            method,
            &baseline.options(),
            train.as_ref(),
            test.as_ref(),
            &bar,
        )
        .map_err(|e| failed(e.to_string()))?;
        bar.finish_and_clear();
        std::fs::create_dir_all(results_dir).map_err(|e| failed(e.to_string()))?;
        let json = serde_json::to_string_pretty(&result).expect("a result serializes");
        alexnet_data::write_atomic(&cache_path(results_dir, baseline), json.as_bytes())
            .map_err(|e| failed(e.to_string()))?;
        done.push((baseline.clone(), result));
    }
    Ok(done)
}

fn cache_path(results_dir: &Path, baseline: &BaselineArm) -> PathBuf {
    results_dir.join(format!("baseline-{}.json", baseline.method.name()))
}

/// The result fitted before with the same options, if any (an unreadable file is no result).
fn cached(results_dir: &Path, baseline: &BaselineArm) -> Option<BaselineResult> {
    let bytes = std::fs::read(cache_path(results_dir, baseline)).ok()?;
    serde_json::from_slice::<BaselineResult>(&bytes)
        .ok()
        .filter(|r| r.options == baseline.options())
}

/// The cached results only (for `--report-only`).
pub fn read_baselines(
    experiment: &Experiment,
    results_dir: &Path,
) -> Vec<(BaselineArm, BaselineResult)> {
    experiment
        .baselines
        .iter()
        .filter_map(|b| Some((b.clone(), cached(results_dir, b)?)))
        .collect()
}
