//! A run directory as the report reads it: its metrics, its checkpoint and the network that
//! rebuilds, its training images, and the names its classes are shown by.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use alexnet_data::formats::ilsvrc::read_synset_words;
use alexnet_data::{
    BadInputPolicy, BatchLoader, PatchSource, ViewPlan, progress_bar, with_classes_of,
};
use alexnet_eval::checkpoint_split;
use alexnet_run::{
    Checkpoint, EpochMetrics, device, model_from_checkpoint, read_metrics, resolve_checkpoint,
};

use crate::error::ReportError;
use crate::neighbours::{FeatureIndex, load_or_build};

/// The checkpoint a run is shown by: its best, else its last (as `eval` and `predict` pick it).
fn run_checkpoint(run_dir: &Path) -> Result<PathBuf, ReportError> {
    let path = resolve_checkpoint(run_dir);
    if path.exists() {
        Ok(path)
    } else {
        Err(ReportError::NoCheckpoint(run_dir.to_path_buf()))
    }
}

/// A run's checkpoint and the network it rebuilds, in evaluation mode on the device.
pub struct RunModel {
    pub checkpoint_path: PathBuf,
    pub checkpoint: Checkpoint,
    pub model: alexnet_model::AlexNet,
    pub device: burn::tensor::Device,
}

impl RunModel {
    pub fn load(run_dir: &Path, backend: &str) -> Result<Self, ReportError> {
        let checkpoint_path = run_checkpoint(run_dir)?;
        let checkpoint = Checkpoint::load(&checkpoint_path)?;
        let device = device(backend, 0)?;
        let model =
            model_from_checkpoint(&checkpoint, &device).map_err(|problem| ReportError::Model {
                path: checkpoint_path.clone(),
                problem,
            })?;
        Ok(Self {
            checkpoint_path,
            checkpoint,
            model,
            device,
        })
    }

    /// The feature index of `train` (centre crops) saved in `run_dir`, built if it is missing
    /// or was built with other weights; and whether it was built.
    pub fn feature_index(
        &self,
        run_dir: &Path,
        train: &Arc<dyn PatchSource>,
        batch_size: usize,
        quiet: bool,
    ) -> Result<(FeatureIndex, bool), ReportError> {
        let loader = BatchLoader::new(
            train.clone(),
            Arc::new(self.checkpoint.stats.clone()),
            self.checkpoint.recipe.model.input_size(),
            batch_size,
            ViewPlan::Centre,
            0,
        )?;
        load_or_build(
            run_dir,
            &self.checkpoint,
            &self.model,
            &loader,
            &self.device,
            &progress_bar(0, quiet, "features"),
        )
    }
}

/// How classes are shown: the first of their synset words when a words file names them, else
/// their folder names (ImageNet's WNIDs).
pub fn display_names(
    class_names: &[String],
    synset_words: Option<&Path>,
) -> Result<Vec<String>, ReportError> {
    let words = match synset_words {
        Some(path) => read_synset_words(path)?,
        None => Default::default(),
    };
    Ok(class_names
        .iter()
        .map(|class| match words.get(class) {
            Some(words) => words.split(',').next().unwrap_or(words).trim().to_string(),
            None => class.clone(),
        })
        .collect())
}

/// The run's metrics, refusing a directory that has none.
pub fn run_metrics(run_dir: &Path) -> Result<Vec<EpochMetrics>, ReportError> {
    if !run_dir.is_dir() {
        return Err(ReportError::NoRunDir(run_dir.to_path_buf()));
    }
    let path = run_dir.join("metrics.jsonl");
    if !path.exists() {
        return Err(ReportError::NoMetrics(run_dir.to_path_buf()));
    }
    let metrics = read_metrics(&path).map_err(|reason| ReportError::BadMetrics {
        path: path.clone(),
        reason,
    })?;
    if metrics.is_empty() {
        return Err(ReportError::NoMetrics(run_dir.to_path_buf()));
    }
    Ok(metrics)
}

/// The training split the neighbours come from: the prepared `--data` directory's, or the run's
/// own. A run whose training images are gone still gets a report, without neighbours.
pub fn training_split(
    checkpoint: &Checkpoint,
    data_dir: Option<&Path>,
    side: usize,
    quiet: bool,
) -> Result<Arc<dyn PatchSource>, String> {
    let data = &checkpoint.recipe.data;
    // A folder given with --data is one split to evaluate; only a prepared one has the training
    // split too.
    let prepared = data_dir.filter(|dir| alexnet_data::Manifest::is_prepared(dir));
    let (origin, set) = checkpoint_split(
        data,
        prepared,
        Some(&data.train_split),
        side,
        &progress_bar(0, quiet, "decode"),
        BadInputPolicy::Skip,
    )
    .map_err(|e| format!("the training split cannot be read ({e})"))?;
    with_classes_of(set, &checkpoint.class_names, &origin).map_err(|e| e.to_string())
}
