//! `alexnet report RUN_DIR`: one page that shows what a run learned. The run's best checkpoint
//! is evaluated on the validation split (centre crop, by the same code as `alexnet eval`); the
//! page shows the curves, the confusion matrix, the per-class accuracy, the conv1 kernels, and a
//! few validation images with their five most probable labels and their nearest training images.
//!
//! Everything is written into a temporary directory beside `--out` and renamed into place at the
//! end, so `--out` holds either the previous report or the new one, never half of one.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use alexnet_data::formats::ilsvrc::read_synset_words;
use alexnet_data::{
    BadInputPolicy, BatchLoader, DecodedSet, PatchSource, ViewPlan, load_split, progress_bar,
};
use alexnet_eval::{EvalReport, ImageOutcome, checkpoint_split, evaluate};
use alexnet_model::alexnet::layer_table;
use alexnet_run::{Checkpoint, EpochMetrics, device, model_from_checkpoint, read_metrics};
use burn::module::Module;
use rand::SeedableRng;
use rand::seq::SliceRandom;

use crate::confusion::{draw_confusion, draw_per_class};
use crate::curves::Curves;
use crate::error::ReportError;
use crate::filters::Kernels;
use crate::neighbours::{FeatureIndex, hidden_features, load_or_build};
use crate::page::{
    Bar, Example, HeaderRow, KernelGrid, KernelSection, NeighbourTile, Page, Picture,
};

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
    pub seconds: f64,
}

/// The checkpoint a run is shown by: its best, else its last.
pub fn run_checkpoint(run_dir: &Path) -> Result<PathBuf, ReportError> {
    ["best.safetensors", "last.safetensors"]
        .iter()
        .map(|name| run_dir.join(name))
        .find(|path| path.exists())
        .ok_or_else(|| ReportError::NoCheckpoint(run_dir.to_path_buf()))
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

/// A directory filled in and then renamed to its final name; removed if dropped unpublished.
struct Staging {
    dir: PathBuf,
    published: bool,
}

impl Staging {
    fn new(out: &Path) -> Result<Self, ReportError> {
        let name = out
            .file_name()
            .map_or("report".into(), |n| n.to_string_lossy().into_owned());
        let dir = out.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
        let write_error = |e: std::io::Error| ReportError::Write {
            path: dir.clone(),
            reason: e.to_string(),
        };
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(write_error)?;
        }
        std::fs::create_dir_all(&dir).map_err(write_error)?;
        Ok(Self {
            dir,
            published: false,
        })
    }

    /// Renames the directory to `out`, replacing a previous report there.
    fn publish(mut self, out: &Path) -> Result<(), ReportError> {
        let write_error = |e: std::io::Error| ReportError::Write {
            path: out.to_path_buf(),
            reason: e.to_string(),
        };
        let old = out.with_file_name(format!(
            ".{}.old-{}",
            out.file_name()
                .map_or("report".into(), |n| n.to_string_lossy()),
            std::process::id()
        ));
        let replaced = out.exists();
        if replaced {
            std::fs::rename(out, &old).map_err(write_error)?;
        }
        std::fs::rename(&self.dir, out).map_err(write_error)?;
        self.published = true;
        if replaced {
            std::fs::remove_dir_all(&old).map_err(write_error)?;
        }
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.published {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// `[side, side, 3]` bytes as a picture `size` pixels wide (nearest neighbour when enlarging, so
/// CIFAR's 32x32 images stay sharp-edged; a smooth filter when shrinking).
pub fn thumbnail(patch: &[u8], side: usize, size: u32) -> image::RgbImage {
    let image = image::RgbImage::from_raw(side as u32, side as u32, patch.to_vec())
        .expect("a patch is side x side x 3");
    let filter = if size >= side as u32 {
        image::imageops::FilterType::Nearest
    } else {
        image::imageops::FilterType::Triangle
    };
    image::imageops::resize(&image, size, size, filter)
}

/// `examples` images: about half wrong, half right (as many as there are of each), in a seeded
/// random choice; the right ones first.
pub fn choose_examples(outcomes: &[ImageOutcome], examples: usize, seed: u64) -> Vec<usize> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let (mut right, mut wrong): (Vec<usize>, Vec<usize>) =
        (0..outcomes.len()).partition(|&i| outcomes[i].is_right());
    right.shuffle(&mut rng);
    wrong.shuffle(&mut rng);
    let wanted_wrong = examples.div_ceil(2).min(wrong.len());
    let wanted_right = (examples - wanted_wrong).min(right.len());
    let wanted_wrong = (examples - wanted_right).min(wrong.len());
    right.truncate(wanted_right);
    wrong.truncate(wanted_wrong);
    right.into_iter().chain(wrong).collect()
}

fn save_picture(
    image: &image::RgbImage,
    staging: &Path,
    file: &str,
) -> Result<Picture, ReportError> {
    crate::canvas::save_png(image, &staging.join(file))?;
    Ok(Picture {
        file: file.to_string(),
        width: image.width(),
        height: image.height(),
    })
}

fn hours_minutes_seconds(seconds: f64) -> String {
    let s = seconds.round() as u64;
    format!("{}h {:02}m {:02}s ({s} s)", s / 3600, s / 60 % 60, s % 60)
}

fn row(id: &str, label: &str, value: String) -> HeaderRow {
    HeaderRow {
        id: id.into(),
        label: label.into(),
        value,
    }
}

/// The header table: recipe, data, size, time, speed and errors.
fn header(
    checkpoint: &Checkpoint,
    parameters: usize,
    metrics: &[EpochMetrics],
    evaluation: &EvalReport,
    train_images: Option<usize>,
) -> Vec<HeaderRow> {
    let recipe = &checkpoint.recipe;
    let last = metrics.last().expect("a run with metrics has a last epoch");
    let best = metrics
        .iter()
        .min_by(|a, b| a.val_top1_error.total_cmp(&b.val_top1_error))
        .expect("a run with metrics has a best epoch");
    let trained: f64 = metrics
        .iter()
        .map(|m| m.images_per_second * (m.epoch_seconds.min(1e12)))
        .sum();
    let mean_rate = trained
        / metrics
            .iter()
            .map(|m| m.epoch_seconds)
            .sum::<f64>()
            .max(1e-9);
    let model = &recipe.model;
    vec![
        row(
            "model",
            "model",
            format!(
                "{} ({} classes, activation {}, dropout {})",
                model.arch,
                checkpoint.class_names.len(),
                format!("{:?}", model.activation).to_lowercase(),
                model.dropout
            ),
        ),
        row("parameters", "parameters", format_count(parameters)),
        row(
            "data",
            "data set",
            format!(
                "{} ({}{} classes)",
                recipe.data.dir.display(),
                train_images.map_or(String::new(), |n| format!(
                    "{} training images, ",
                    format_count(n)
                )),
                checkpoint.class_names.len()
            ),
        ),
        row(
            "recipe",
            "recipe",
            format!(
                "batch {}, lr {} (now {:.0e}), momentum {}, weight decay {}, {} / {} epochs",
                recipe.optim.batch_size,
                recipe.optim.lr,
                checkpoint.progress.schedule.lr,
                recipe.optim.momentum,
                recipe.optim.weight_decay,
                last.epoch,
                recipe.run.epochs
            ),
        ),
        row("epochs-done", "epochs done", last.epoch.to_string()),
        row(
            "wall-time",
            "wall time",
            hours_minutes_seconds(last.wall_seconds),
        ),
        row(
            "throughput",
            "training throughput",
            format!(
                "{mean_rate:.1} img/s (mean over epochs; last {:.1})",
                last.images_per_second
            ),
        ),
        row(
            "final-val-top1",
            "last epoch: val top-1 error",
            format!("{:.4}", last.val_top1_error),
        ),
        row(
            "final-val-top5",
            "last epoch: val top-5 error",
            format!("{:.4}", last.val_top5_error),
        ),
        row(
            "best-val-top1",
            "best epoch: val top-1 error",
            format!("{:.4} (epoch {})", best.val_top1_error, best.epoch),
        ),
        row(
            "eval-top1",
            "this evaluation: top-1 error",
            format!("{:.4}", evaluation.top1_error),
        ),
        row(
            "eval-top5",
            "this evaluation: top-5 error",
            format!("{:.4}", evaluation.top5_error),
        ),
        row(
            "eval-images",
            "images evaluated",
            evaluation.images.to_string(),
        ),
    ]
}

fn format_count(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The conv1 kernel grids, one per tower.
fn kernel_section(checkpoint: &Checkpoint, staging: &Path) -> Result<KernelSection, ReportError> {
    let weights = checkpoint
        .weights
        .iter()
        .find(|t| t.name == "features.0.conv.weight")
        .ok_or_else(|| {
            ReportError::Checkpoint(alexnet_run::CheckpointError::Mismatch(
                "no first-layer weights (features.0.conv.weight)".into(),
            ))
        })?;
    let kernels = Kernels::new(&weights.values, &weights.shape).ok_or_else(|| {
        ReportError::Checkpoint(alexnet_run::CheckpointError::Mismatch(format!(
            "features.0.conv.weight has shape {:?}, not [kernels, 3, k, k]",
            weights.shape
        )))
    })?;
    // A layer split in towers (conv2 grouped) takes the first half of conv1's maps into one
    // tower and the second half into the other (Section 3.2).
    let towers = layer_table(&checkpoint.recipe.model)
        .ok()
        .and_then(|table| table.convs.get(1).map(|c| c.groups))
        .unwrap_or(1)
        .max(1);
    let per_tower = kernels.count / towers;
    // Tiles about 4 pixels per weight for 11x11 kernels, more for small ones.
    let scale = (48 / kernels.side as u32).clamp(2, 8);
    let mut grids = Vec::new();
    for tower in 0..towers {
        let range = tower * per_tower..(tower + 1) * per_tower;
        let grid = kernels.grid(range.clone(), 8, scale);
        let file = format!("conv1-tower{}.png", tower + 1);
        grids.push(KernelGrid {
            name: if towers > 1 {
                format!("tower {}", tower + 1)
            } else {
                "conv1".into()
            },
            first: range.start + 1,
            last: range.end,
            colour_share: format!("{:.2}", kernels.mean_colour_share(range)),
            picture: save_picture(&grid, staging, &file)?,
        });
    }
    Ok(KernelSection {
        count: kernels.count,
        side: kernels.side,
        grids,
    })
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
    split.expect_classes(&checkpoint.class_names, &split_origin)?;
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

    let curves = Curves::from_metrics(&metrics);
    curves.draw(&dir.join("curves.png"), 1100, 400)?;
    let classes = &display_names(&checkpoint.class_names, options.synset_words.as_deref())?;
    let (w, h) = draw_confusion(&evaluation.confusion, classes, &dir.join("confusion.png"))?;
    let confusion = Picture {
        file: "confusion.png".into(),
        width: w,
        height: h,
    };
    let (w, h) = draw_per_class(
        &evaluation.per_class_accuracy,
        classes,
        20,
        &dir.join("per-class.png"),
    )?;
    let per_class = Picture {
        file: "per-class.png".into(),
        width: w,
        height: h,
    };
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
        curves: Picture {
            file: "curves.png".into(),
            width: 1100,
            height: 400,
        },
        confusion,
        per_class,
        kernels,
        seed: options.seed,
        hidden_width,
        neighbours_note,
        examples,
        recipe: recipe.to_toml(),
    };
    let html = page.render()?;
    let html_path = dir.join("report.html");
    std::fs::write(&html_path, html).map_err(|e| ReportError::Write {
        path: html_path.clone(),
        reason: e.to_string(),
    })?;
    staging.publish(&out)?;
    Ok(ReportSummary {
        html: out.join("report.html"),
        out,
        evaluation,
        index_built,
        seconds: started.elapsed().as_secs_f64(),
    })
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
    let (format, dir) = match data_dir {
        Some(dir) if alexnet_data::Manifest::is_prepared(dir) => {
            (alexnet_data::DataFormat::Shards, dir.to_path_buf())
        }
        _ => (data.format, data.dir.clone()),
    };
    let set = load_split(
        format,
        &dir,
        &data.train_split,
        side,
        &progress_bar(0, quiet, "decode"),
        BadInputPolicy::Skip,
    )
    .map_err(|e| format!("the training split cannot be read ({e})"))?;
    set.expect_classes(&checkpoint.class_names, &dir.join(&data.train_split))
        .map_err(|e| e.to_string())?;
    Ok(set)
}

/// The last hidden layer of the chosen validation images' centre crops, row after row.
fn query_features(
    split: &Arc<dyn PatchSource>,
    chosen: &[usize],
    evaluation: &EvalReport,
    model: &alexnet_model::AlexNet,
    stats: &Arc<alexnet_data::DatasetStats>,
    crop: usize,
    device: &burn::tensor::Device,
) -> Result<Vec<f32>, ReportError> {
    let side = split.side();
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for &i in chosen {
        let outcome = &evaluation.outcomes[i];
        pixels.extend_from_slice(&split.patch(outcome.index)?);
        labels.push(outcome.label);
    }
    if labels.is_empty() {
        return Ok(Vec::new());
    }
    let set = DecodedSet::from_patches(side, pixels, labels, split.class_names().to_vec());
    let loader = BatchLoader::new(Arc::new(set), stats.clone(), crop, 64, ViewPlan::Centre, 0)?;
    let hidden = progress_bar(0, true, "");
    Ok(hidden_features(model, &loader, device, &hidden)?.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(index: usize, label: usize, best: usize) -> ImageOutcome {
        ImageOutcome {
            index,
            label,
            top: vec![(best, 0.9), ((best + 1) % 3, 0.1)],
        }
    }

    #[test]
    fn examples_mix_right_and_wrong_and_follow_the_seed() {
        let outcomes: Vec<_> = (0..20)
            .map(|i| outcome(i, i % 3, if i < 5 { (i + 1) % 3 } else { i % 3 }))
            .collect();
        let chosen = choose_examples(&outcomes, 6, 7);
        assert_eq!(chosen.len(), 6);
        let wrong = chosen.iter().filter(|&&i| !outcomes[i].is_right()).count();
        assert_eq!(wrong, 3);
        assert_eq!(chosen, choose_examples(&outcomes, 6, 7), "seeded");
        assert_ne!(
            chosen,
            choose_examples(&outcomes, 6, 8),
            "another seed, another choice"
        );
        // Only 5 wrong: asking for 12 gives all 5 wrong and 7 right.
        let chosen = choose_examples(&outcomes, 12, 1);
        assert_eq!(
            chosen.iter().filter(|&&i| !outcomes[i].is_right()).count(),
            5
        );
        assert_eq!(chosen.len(), 12);
    }

    /// A checkpoint of the paper's two-tower net whose first kernel is a known pattern: a green
    /// diagonal on black (green 1 where y = x, every other weight 0).
    fn patterned_checkpoint() -> Checkpoint {
        use alexnet_model::{AlexNet, Arch, ModelConfig};
        use alexnet_run::checkpoint::named_params;
        let device = burn::tensor::Device::flex();
        let recipe = alexnet_run::Recipe {
            model: ModelConfig::new(Arch::Alexnet, 3),
            ..Default::default()
        };
        let model = AlexNet::new(&recipe.model, &device).unwrap();
        let mut weights = named_params(&model);
        let conv1 = weights
            .iter_mut()
            .find(|t| t.name == "features.0.conv.weight")
            .unwrap();
        assert_eq!(conv1.shape, [96, 3, 11, 11]);
        conv1.values[..3 * 121].fill(0.0);
        for d in 0..11 {
            conv1.values[121 + d * 11 + d] = 1.0;
        }
        Checkpoint {
            recipe,
            class_names: vec!["a".into(), "b".into(), "c".into()],
            progress: alexnet_run::Progress {
                epochs_done: 1,
                step: 1,
                schedule: alexnet_run::LrSchedule::new(0.01),
                wall_seconds: 1.0,
            },
            weights,
            velocities: Vec::new(),
            stats: alexnet_data::DatasetStats {
                side: 1,
                mean_image: vec![0.0; 3],
                eigenvalues: [1.0; 3],
                eigenvectors: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
            },
        }
    }

    #[test]
    fn a_checkpoints_first_kernel_is_drawn_as_its_pattern_one_grid_per_tower() {
        let dir = std::env::temp_dir().join(format!("alexnet-kernels-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let section = kernel_section(&patterned_checkpoint(), &dir).unwrap();
        // Two towers of 48 kernels (Section 3.2).
        assert_eq!(section.grids.len(), 2);
        assert_eq!((section.grids[1].first, section.grids[1].last), (49, 96));
        let grid = image::open(dir.join(&section.grids[0].picture.file))
            .unwrap()
            .to_rgb8();
        assert_eq!(
            (grid.width(), grid.height()),
            (
                section.grids[0].picture.width,
                section.grids[0].picture.height
            )
        );
        // 11x11 kernels are drawn 4 pixels a weight, after a 4-pixel gap.
        let pixel = |x: u32, y: u32| grid.get_pixel(4 + 4 * x + 1, 4 + 4 * y + 1).0;
        for d in 0..11 {
            assert_eq!(pixel(d, d), [0, 255, 0], "the diagonal is pure green");
        }
        assert_eq!(pixel(3, 7), [0, 0, 0]);
        assert_eq!(pixel(10, 0), [0, 0, 0]);
        assert_eq!(section.grids[0].colour_share.len(), 4, "two decimals");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn counts_are_grouped_by_thousands() {
        assert_eq!(format_count(60_965_224), "60,965,224");
        assert_eq!(format_count(999), "999");
        assert_eq!(format_count(1000), "1,000");
    }
}
