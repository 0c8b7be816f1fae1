//! `alexnet report RUN_DIR`: one page that shows what a run learned. The run's best checkpoint
//! is evaluated on the validation split (centre crop, by the same code as `alexnet eval`); the
//! page shows the curves, the confusion matrix, the per-class accuracy, the conv1 kernels, and a
//! few validation images with their five most probable labels and their nearest training images.
//!
//! Everything is written into a temporary directory beside `--out` and renamed into place at the
//! end, so `--out` holds either the previous report or the new one, never half of one.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use alexnet_data::{BadInputPolicy, BatchLoader, ViewPlan, progress_bar, with_classes_of};
use alexnet_eval::{EvalReport, checkpoint_split, evaluate};
use alexnet_run::schedule::sets_rate_every_step;
use burn::module::Module;

use crate::canvas::save_picture;
use crate::confusion::{draw_confusion, draw_per_class};
use crate::curves::Curves;
use crate::error::ReportError;
use crate::examples::{choose_examples, query_features, thumbnail};
use crate::header::header;
use crate::kernels::kernel_section;
use crate::page::{Bar, Example, NeighbourTile, Page};
use crate::run::{RunModel, display_names, run_metrics, training_split};
use crate::staging::Staging;

#[derive(Debug, Clone)]
pub struct ReportOptions {
    pub run_dir: PathBuf,
    /// The split to evaluate: a folder of class folders, or a prepared directory (its validation
    /// split; its training split then also serves the neighbours). Default: the run's own data.
    pub data: Option<PathBuf>,
    /// Where the page goes (default `RUN_DIR/report`).
    pub out: Option<PathBuf>,
    /// Validation images shown with their predictions and neighbours.
    pub examples: usize,
    /// Neighbours shown per image.
    pub neighbours: usize,
    /// Chooses the examples.
    pub seed: u64,
    /// A synset words file (`n01440764 tench, Tinca tinca` per line) naming the classes.
    pub synset_words: Option<PathBuf>,
    pub backend: String,
    pub batch_size: usize,
    pub quiet: bool,
}

impl ReportOptions {
    pub fn new(run_dir: PathBuf) -> Self {
        Self {
            run_dir,
            data: None,
            out: None,
            examples: 8,
            neighbours: 6,
            seed: 0,
            synset_words: None,
            backend: "flex".into(),
            batch_size: 64,
            quiet: false,
        }
    }
}

#[derive(Debug)]
pub struct ReportSummary {
    pub out: PathBuf,
    pub html: PathBuf,
    pub evaluation: EvalReport,
    /// Whether the feature index was built (false: reused; None: no neighbours).
    pub index_built: Option<bool>,
    /// How many of the neighbours shown share their image's true class, of how many.
    pub neighbours_sharing: Option<(usize, usize)>,
    pub seconds: f64,
}

/// Writes the report of `options.run_dir`.
pub fn write_report(options: &ReportOptions) -> Result<ReportSummary, ReportError> {
    let started = Instant::now();
    let run_dir = &options.run_dir;
    let metrics = run_metrics(run_dir)?;
    let run = RunModel::load(run_dir, &options.backend)?;
    let RunModel {
        checkpoint_path,
        checkpoint,
        model,
        device,
    } = &run;
    let recipe = &checkpoint.recipe;
    let side = recipe.data.resize;
    let crop = recipe.model.input_size();
    let stats = Arc::new(checkpoint.stats.clone());

    // The evaluation, by `alexnet eval`'s code.
    let (split_origin, split) = checkpoint_split(
        &recipe.data,
        options.data.as_deref(),
        None,
        side,
        &progress_bar(0, options.quiet, "decode"),
        BadInputPolicy::Skip,
    )?;
    if split.is_empty() {
        return Err(ReportError::EmptySplit(split_origin));
    }
    let split = with_classes_of(split, &checkpoint.class_names, &split_origin)?;
    let loader = BatchLoader::new(
        split.clone(),
        stats.clone(),
        crop,
        options.batch_size,
        ViewPlan::Centre,
        0,
    )?;
    let evaluation = evaluate(
        &[(model.clone(), loader)],
        device,
        &progress_bar(0, options.quiet, "eval"),
    )?;

    let out = options
        .out
        .clone()
        .unwrap_or_else(|| run_dir.join("report"));
    let staging = Staging::new(&out)?;
    let dir = staging.dir.clone();

    let mut curves = Curves::from_metrics(&metrics);
    if sets_rate_every_step(recipe.schedule.policy) {
        // Its rate changes a little every step: there are no drops to mark.
        curves.lr_drops.clear();
    }
    let curves = curves.draw(&dir, "curves.png", 1100, 400)?;
    let classes = &display_names(&checkpoint.class_names, options.synset_words.as_deref())?;
    let confusion = draw_confusion(&evaluation.confusion, classes, &dir, "confusion.png")?;
    let per_class = draw_per_class(
        &evaluation.per_class_accuracy,
        classes,
        20,
        &dir,
        "per-class.png",
    )?;
    let kernels = kernel_section(checkpoint, &dir)?;

    // Predictions, and the training images nearest to each in the last hidden layer.
    let chosen = choose_examples(&evaluation.outcomes, options.examples, options.seed);
    let train = training_split(checkpoint, options.data.as_deref(), side, options.quiet);
    let (neighbour_sets, index_built, hidden_width, neighbours_note) = match &train {
        Ok(train) => {
            let (index, built) =
                run.feature_index(run_dir, train, options.batch_size, options.quiet)?;
            let queries =
                query_features(&split, &chosen, &evaluation, model, &stats, crop, device)?;
            let found = queries
                .chunks_exact(index.dims.max(1))
                .map(|query| index.nearest(query, options.neighbours))
                .collect::<Vec<_>>();
            (found, Some(built), index.dims, None)
        }
        Err(reason) => (
            Vec::new(),
            None,
            0,
            Some(format!("No neighbours: {reason}")),
        ),
    };
    let mut examples = Vec::new();
    let mut sharing = (0, 0);
    for (position, &outcome_index) in chosen.iter().enumerate() {
        let outcome = &evaluation.outcomes[outcome_index];
        let patch = split.patch(outcome.index)?;
        let picture = save_picture(
            &thumbnail(&patch, side, 144),
            &dir,
            &format!("val-{position}.png"),
        )?;
        let bars = outcome
            .top
            .iter()
            .map(|&(class, probability)| Bar {
                name: classes[class].clone(),
                percent: format!("{:.1}", 100.0 * probability),
                percent_text: format!("{:.1}%", 100.0 * probability),
                is_true: class == outcome.label,
            })
            .collect();
        let mut tiles = Vec::new();
        if let (Ok(train), Some(found)) = (&train, neighbour_sets.get(position)) {
            for (rank, neighbour) in found.iter().enumerate() {
                let patch = train.patch(neighbour.index)?;
                sharing.0 += usize::from(train.label(neighbour.index) == outcome.label);
                sharing.1 += 1;
                tiles.push(NeighbourTile {
                    name: classes[train.label(neighbour.index)].clone(),
                    distance: format!("{:.1}", neighbour.distance),
                    picture: save_picture(
                        &thumbnail(&patch, side, 96),
                        &dir,
                        &format!("val-{position}-neighbour-{rank}.png"),
                    )?,
                });
            }
        }
        examples.push(Example {
            true_name: classes[outcome.label].clone(),
            right: outcome.is_right(),
            picture,
            bars,
            neighbours: tiles,
        });
    }

    let parameters = model.num_params();
    let train_images = train.as_ref().ok().map(|t| t.len());
    let page = Page {
        title: format!(
            "{} on {}",
            recipe.model.arch,
            recipe
                .data
                .dir
                .file_name()
                .map_or("?".into(), |n| n.to_string_lossy().into_owned())
        ),
        run_dir: run_dir.display().to_string(),
        written: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        checkpoint: checkpoint_path.display().to_string(),
        checkpoint_epoch: checkpoint.progress.epochs_done,
        split: split_origin.display().to_string(),
        header: header(checkpoint, parameters, &metrics, &evaluation, train_images),
        still_training: metrics.last().is_some_and(|m| m.epoch < recipe.run.epochs),
        curves,
        confusion,
        per_class,
        kernels,
        seed: options.seed,
        hidden_width,
        neighbours_note,
        neighbours_sharing: (sharing.1 > 0).then_some(sharing),
        examples,
        recipe: recipe.to_toml(),
    };
    let html = page.render()?;
    let html_path = dir.join("report.html");
    std::fs::write(&html_path, html).map_err(|e| ReportError::Write {
        path: html_path.clone(),
        reason: e.to_string(),
    })?;
    staging.publish()?;
    Ok(ReportSummary {
        html: out.join("report.html"),
        out,
        evaluation,
        index_built,
        neighbours_sharing: (sharing.1 > 0).then_some(sharing),
        seconds: started.elapsed().as_secs_f64(),
    })
}
