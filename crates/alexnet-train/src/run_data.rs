//! The data a run trains and validates on (in memory or in shards), with the training set's
//! statistics, and the report of the files left out as bad input.

use std::path::Path;
use std::sync::Arc;

use alexnet_data::{
    DataError, DataFormat, DatasetStats, PatchSource, load_split, progress_bar, with_classes_of,
    write_report,
};
use alexnet_run::Recipe;

use crate::error::TrainError;

/// Training and validation sets, with the training set's statistics (every rank of a
/// data-parallel run validates its share of the validation set).
pub struct RunData {
    pub train: Arc<dyn PatchSource>,
    pub val: Arc<dyn PatchSource>,
    pub stats: Arc<DatasetStats>,
}

/// Decodes both splits (or opens their shards). The training set's mean image and PCA come from
/// `saved_stats` (a resumed run's checkpoint), from the shards' `stats.safetensors`, or are computed
/// once, with `data.normalize`'s per-channel scale; they are written to
/// `run_dir/stats.safetensors`. Files skipped as bad input are listed in `run_dir/skipped.tsv`.
pub fn load_data(
    recipe: &Recipe,
    saved_stats: Option<DatasetStats>,
    run_dir: &Path,
    quiet: bool,
) -> Result<RunData, TrainError> {
    let data = &recipe.data;
    let [train, val] = train_and_val_splits(recipe, quiet)?;
    report_skipped(
        &[(&data.train_split, &train), (&data.val_split, &val)],
        Some(run_dir),
    )?;
    let stats = match saved_stats {
        Some(stats) => stats,
        None => {
            let stats = match data.format {
                DataFormat::Shards => DatasetStats::read(&data.dir)?,
                _ => DatasetStats::compute(train.as_ref())?,
            }
            .normalized(data.normalize);
            stats.write(run_dir)?;
            stats
        }
    };
    Ok(RunData {
        train,
        val,
        stats: Arc::new(stats),
    })
}

/// The recipe's training and validation splits, the validation labels numbered by the training
/// split's class list.
pub fn train_and_val_splits(
    recipe: &Recipe,
    quiet: bool,
) -> Result<[Arc<dyn PatchSource>; 2], DataError> {
    let data = &recipe.data;
    let train = load_recipe_split(recipe, &data.train_split, quiet)?;
    let val = load_recipe_split(recipe, &data.val_split, quiet)?;
    let val = with_classes_of(val, train.class_names(), &data.dir.join(&data.val_split))?;
    Ok([train, val])
}

/// One split of the recipe's data set, decoded (or its shards opened), with a progress bar.
pub fn load_recipe_split(
    recipe: &Recipe,
    split: &str,
    quiet: bool,
) -> Result<Arc<dyn PatchSource>, DataError> {
    let data = &recipe.data;
    load_split(
        data.format,
        &data.dir,
        split,
        data.resize,
        &progress_bar(0, quiet, "decode"),
        data.bad_input_policy(),
    )
}

/// Lists the files skipped as bad input in `run_dir/skipped.tsv` (a rank without a run directory
/// only says how many). Said even with --quiet: a data set with holes in it is worth a line.
pub fn report_skipped(
    splits: &[(&String, &Arc<dyn PatchSource>)],
    run_dir: Option<&Path>,
) -> Result<(), TrainError> {
    let skipped: Vec<_> = splits
        .iter()
        .flat_map(|(split, set)| set.skipped().iter().map(|s| ((*split).clone(), s.clone())))
        .collect();
    if skipped.is_empty() {
        return Ok(());
    }
    match run_dir {
        Some(run_dir) => {
            let report = run_dir.join("skipped.tsv");
            write_report(&report, &skipped)?;
            eprintln!(
                "warning: skipped {} unusable files, listed in {}",
                skipped.len(),
                report.display()
            );
        }
        None => eprintln!("warning: skipped {} unusable files", skipped.len()),
    }
    Ok(())
}
