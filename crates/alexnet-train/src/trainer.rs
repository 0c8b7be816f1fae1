//! The training loop (Section 5): batches of 128 augmented images, forward, cross-entropy loss,
//! backward, the paper's SGD update; after each epoch the validation error (centre crop), the
//! learning-rate policy, a metrics line and a checkpoint.
//!
//! A run directory holds `recipe.toml`, `stats.safetensors` (mean image and PCA of the training
//! set, computed once), `metrics.jsonl`, `last.safetensors` and `best.safetensors` (lowest
//! validation top-1 error). `resume` continues from `last.safetensors` at the next epoch, with the
//! same weights, velocities, schedule, data order and dropout seed as an uninterrupted run.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use alexnet_data::{
    Batch, BatchLoader, DataError, DataFormat, DatasetStats, PatchSource, ViewPlan, load_split,
    write_report,
};
use alexnet_eval::{EvalReport, evaluate, top_k};
use alexnet_model::{AlexNet, ModelError};
use burn::module::Module;
use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Int, Tensor, TensorData};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::backend::{BackendError, device};
use crate::checkpoint::{
    Checkpoint, CheckpointError, Progress, copy_checkpoint, load_params, named_params,
    velocities_from_named, velocities_to_named,
};
use crate::metrics::{EpochMetrics, append};
use crate::recipe::{Recipe, RecipeError};
use crate::schedule::LrSchedule;
use crate::sgd::PaperSgd;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Recipe(#[from] RecipeError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error("{path}: {reason}")]
    Io { path: PathBuf, reason: String },
    #[error(
        "training diverged: the loss is {loss} at epoch {epoch}, step {step} (try a lower optim.lr)"
    )]
    Diverged { epoch: usize, step: u64, loss: f32 },
    #[error("cannot resume {0}: it has no last.safetensors")]
    NothingToResume(PathBuf),
    #[error("{0} already holds a run: continue it with --resume, or choose another --run-dir")]
    RunExists(PathBuf),
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> TrainError + '_ {
    move |e| TrainError::Io {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub run_dir: PathBuf,
    /// Continue the run in `run_dir` from its last checkpoint.
    pub resume: bool,
    /// Stop after this many epochs in this call (the run can be resumed), e.g. to split a long run.
    pub stop_after: Option<usize>,
    /// On resume: train until this many epochs are done instead of the saved recipe's `run.epochs`.
    pub resume_epochs: Option<usize>,
    /// Hide progress bars and per-epoch lines (tests).
    pub quiet: bool,
}

/// What a finished call of [`train`] reports.
#[derive(Debug, Clone)]
pub struct TrainSummary {
    pub epochs: Vec<EpochMetrics>,
    pub last_checkpoint: PathBuf,
    pub best_checkpoint: PathBuf,
}

/// Training and validation sets (in memory or in shards), with the training set's statistics.
pub struct RunData {
    pub train: Arc<dyn PatchSource>,
    pub val: Arc<dyn PatchSource>,
    pub stats: Arc<DatasetStats>,
}

pub fn progress_bar(length: u64, quiet: bool, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(length);
    if quiet {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{what:>8} [{{bar:30}}] {{pos}}/{{len}} {{per_sec}} ETA {{eta}} {{msg}}"
        ))
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar
}

/// Decodes both splits (or opens their shards). The training set's mean image and PCA come from
/// `saved_stats` (a resumed run's checkpoint), from the shards' `stats.safetensors`, or are computed
/// once; they are written to `run_dir/stats.safetensors`. Files skipped as bad input are listed in
/// `run_dir/skipped.tsv`.
pub fn load_data(
    recipe: &Recipe,
    saved_stats: Option<DatasetStats>,
    run_dir: &Path,
    quiet: bool,
) -> Result<RunData, TrainError> {
    let data = &recipe.data;
    let load = |split: &str| {
        load_split(
            data.format,
            &data.dir,
            split,
            data.resize,
            &progress_bar(0, quiet, "decode"),
            data.bad_input_policy(),
        )
    };
    let train = load(&data.train_split)?;
    let val = load(&data.val_split)?;
    val.expect_classes(train.class_names(), &data.dir.join(&data.val_split))?;
    let skipped: Vec<_> = [(&data.train_split, &train), (&data.val_split, &val)]
        .into_iter()
        .flat_map(|(split, set)| set.skipped().iter().map(|s| (split.clone(), s.clone())))
        .collect();
    if !skipped.is_empty() {
        let report = run_dir.join("skipped.tsv");
        write_report(&report, &skipped)?;
        // Said even with --quiet: a data set with holes in it is worth a line.
        eprintln!(
            "warning: skipped {} unusable files, listed in {}",
            skipped.len(),
            report.display()
        );
    }
    let stats = match saved_stats {
        Some(stats) => stats,
        None => {
            let stats = match data.format {
                DataFormat::Shards => DatasetStats::read(&data.dir)?,
                _ => DatasetStats::compute(train.as_ref())?,
            };
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

/// Validation top-1/top-5 error of `model` on the centre crops of `loader`'s split.
pub fn validate(
    model: &AlexNet,
    loader: &BatchLoader,
    device: &Device,
    quiet: bool,
) -> Result<EvalReport, DataError> {
    evaluate(
        &[(model.valid(), loader.clone())],
        device,
        &progress_bar(0, quiet, "val"),
    )
}

/// What one pass over the training set adds up to.
struct EpochTotals {
    loss_sum: f64,
    misses: usize,
    seen: usize,
    seconds: f64,
}

/// The state that changes with every step.
struct Learner {
    model: AlexNet,
    sgd: PaperSgd,
    progress: Progress,
}

/// Section 5: one step of stochastic gradient descent on one batch. Returns the batch's mean loss
/// and how many of its images the network got wrong (top-1).
fn train_step(
    mut learner: Learner,
    batch: Batch,
    loss_function: &CrossEntropyLoss,
    device: &Device,
) -> Result<(Learner, f32, usize), TrainError> {
    let n = batch.len();
    let labels: Vec<i64> = batch.labels.iter().map(|&l| l as i64).collect();
    let images = Tensor::<4>::from_data(
        TensorData::new(batch.images, [n, 3, batch.crop, batch.crop]),
        device,
    );
    let targets = Tensor::<1, Int>::from_data(TensorData::new(labels, [n]), device);
    let logits = learner.model.forward(images);
    let loss = loss_function.forward(logits.clone(), targets);
    let loss_value = loss.clone().into_scalar::<f32>();
    if !loss_value.is_finite() {
        return Err(TrainError::Diverged {
            epoch: learner.progress.epochs_done + 1,
            step: learner.progress.step,
            loss: loss_value,
        });
    }
    let host_logits = logits
        .inner()
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("f32 logits");
    let misses = host_logits
        .chunks_exact(host_logits.len() / n)
        .zip(&batch.labels)
        .filter(|&(row, &label)| top_k(row, 1)[0] != label)
        .count();
    let gradients = GradientsParams::from_grads(loss.backward(), &learner.model);
    // The model moves through the update, so its old weights can be freed (or updated in place).
    learner.model = learner
        .sgd
        .step(learner.progress.schedule.lr, learner.model, gradients);
    learner.progress.step += 1;
    Ok((learner, loss_value, misses))
}

/// One epoch: every batch of `loader`, with a progress bar (or, without a terminal, a log line ten
/// times a long epoch, so that a run in the background still says how it goes).
fn train_epoch(
    mut learner: Learner,
    loader: &BatchLoader,
    loss_function: &CrossEntropyLoss,
    device: &Device,
    quiet: bool,
) -> Result<(Learner, EpochTotals), TrainError> {
    let epoch = learner.progress.epochs_done;
    let images = loader.set.len();
    let bar = progress_bar(images as u64, quiet, &format!("epoch {}", epoch + 1));
    let batches = loader.batches_per_epoch();
    // (Short epochs need no such lines.)
    let log_every = (!quiet && !std::io::stderr().is_terminal() && batches >= 50)
        .then_some(batches.div_ceil(10));
    let started = Instant::now();
    let mut totals = EpochTotals {
        loss_sum: 0.0,
        misses: 0,
        seen: 0,
        seconds: 0.0,
    };
    for (index, batch) in loader.epoch(epoch, 0).into_iter().enumerate() {
        let batch = batch?;
        let n = batch.len();
        let (stepped, loss, misses) = train_step(learner, batch, loss_function, device)?;
        learner = stepped;
        totals.loss_sum += loss as f64 * n as f64;
        totals.misses += misses;
        totals.seen += n;
        bar.inc(n as u64);
        let status = format!(
            "loss {:.4} top-1 err {:.3} lr {:.0e}",
            totals.loss_sum / totals.seen as f64,
            totals.misses as f64 / totals.seen as f64,
            learner.progress.schedule.lr
        );
        if log_every.is_some_and(|every| (index + 1) % every == 0) {
            let rate = totals.seen as f64 / started.elapsed().as_secs_f64();
            let eta = (images - totals.seen) as f64 / rate;
            println!(
                "epoch {} batch {}/{batches} {status} {rate:.1} img/s ETA {eta:.0} s",
                epoch + 1,
                index + 1
            );
        }
        bar.set_message(status);
    }
    bar.finish_and_clear();
    totals.seconds = started.elapsed().as_secs_f64();
    Ok((learner, totals))
}

/// The recipe to train with and, when resuming, the checkpoint to start from. A resumed run keeps
/// its own recipe, except perhaps for how many epochs it should reach; a fresh run refuses a
/// directory that already holds one.
fn start_or_resume(
    recipe: Recipe,
    options: &TrainOptions,
) -> Result<(Recipe, Option<Checkpoint>), TrainError> {
    let run_dir = &options.run_dir;
    let last_path = run_dir.join("last.safetensors");
    if !options.resume {
        if last_path.exists() || run_dir.join("metrics.jsonl").exists() {
            return Err(TrainError::RunExists(run_dir.clone()));
        }
        return Ok((recipe, None));
    }
    if !last_path.exists() {
        return Err(TrainError::NothingToResume(run_dir.clone()));
    }
    let checkpoint = Checkpoint::load(&last_path)?;
    let mut saved = checkpoint.recipe.clone();
    saved.run.epochs = options.resume_epochs.unwrap_or(saved.run.epochs);
    Ok((saved, Some(checkpoint)))
}

/// Trains `recipe` into `options.run_dir` (or resumes it), until `run.epochs` epochs are done.
pub fn train(recipe: Recipe, options: &TrainOptions) -> Result<TrainSummary, TrainError> {
    let run_dir = &options.run_dir;
    let (mut recipe, resumed) = start_or_resume(recipe, options)?;
    let plain_device = device(&recipe.run.backend)?;
    let device = plain_device.clone().autodiff();
    std::fs::create_dir_all(run_dir).map_err(io_error(run_dir))?;

    let saved_stats = resumed.as_ref().map(|c| c.stats.clone());
    let data = load_data(&recipe, saved_stats, run_dir, options.quiet)?;
    recipe.model.num_classes = data.train.class_names().len();
    recipe.model.validate()?;
    let recipe_path = run_dir.join("recipe.toml");
    std::fs::write(&recipe_path, recipe.to_toml()).map_err(io_error(&recipe_path))?;

    let mut learner = Learner {
        model: AlexNet::new(&recipe.model, &device)?,
        sgd: PaperSgd::new(recipe.optim.momentum, recipe.optim.weight_decay),
        progress: Progress {
            epochs_done: 0,
            step: 0,
            schedule: LrSchedule::new(recipe.optim.lr),
            wall_seconds: 0.0,
        },
    };
    if let Some(checkpoint) = resumed {
        learner.model = load_params(learner.model, &checkpoint.weights)?;
        learner.sgd.velocities = velocities_from_named(&checkpoint.velocities, &plain_device);
        learner.progress = checkpoint.progress;
    }

    let crop = recipe.model.input_size();
    let seed = recipe.run.seed;
    let plan = ViewPlan::Train {
        flip: recipe.data.flip,
        pca_sigma: recipe.data.pca_sigma,
    };
    let batch_size = recipe.optim.batch_size;
    let mut train_loader = BatchLoader::new(
        data.train.clone(),
        data.stats.clone(),
        crop,
        batch_size,
        plan,
        seed,
    )?;
    train_loader.prefetch = recipe.data.prefetch.max(1);
    let val_loader = BatchLoader::new(
        data.val.clone(),
        data.stats.clone(),
        crop,
        batch_size,
        ViewPlan::Centre,
        seed,
    )?;
    let loss_function = CrossEntropyLossConfig::new().init(&device);

    let last_path = run_dir.join("last.safetensors");
    let best_path = run_dir.join("best.safetensors");
    let metrics_path = run_dir.join("metrics.jsonl");
    let mut epochs = Vec::new();
    let last_epoch = options.stop_after.map_or(recipe.run.epochs, |n| {
        recipe.run.epochs.min(learner.progress.epochs_done + n)
    });
    while learner.progress.epochs_done < last_epoch {
        let epoch = learner.progress.epochs_done;
        // Dropout draws from the backend's generator: seeding it per epoch makes a resumed run
        // draw what the uninterrupted one would have.
        plain_device.seed(seed.wrapping_mul(1_000_003).wrapping_add(epoch as u64));
        let lr = learner.progress.schedule.lr;
        let totals;
        (learner, totals) = train_epoch(
            learner,
            &train_loader,
            &loss_function,
            &device,
            options.quiet,
        )?;
        let validation_started = Instant::now();
        let report = validate(&learner.model, &val_loader, &plain_device, options.quiet)?;
        let epoch_seconds = totals.seconds + validation_started.elapsed().as_secs_f64();

        let progress = &mut learner.progress;
        progress.wall_seconds += epoch_seconds;
        progress.epochs_done = epoch + 1;
        let dropped = progress.schedule.end_of_epoch(
            &recipe.schedule,
            progress.epochs_done,
            report.top1_error,
        );
        let metrics = EpochMetrics {
            epoch: epoch + 1,
            step: progress.step,
            lr,
            train_loss: totals.loss_sum / totals.seen.max(1) as f64,
            train_top1_error: totals.misses as f64 / totals.seen.max(1) as f64,
            val_top1_error: report.top1_error,
            val_top5_error: report.top5_error,
            images_per_second: totals.seen as f64 / totals.seconds,
            epoch_seconds,
            wall_seconds: progress.wall_seconds,
        };

        let checkpoint = Checkpoint {
            recipe: recipe.clone(),
            class_names: data.train.class_names().to_vec(),
            progress: progress.clone(),
            weights: named_params(&learner.model),
            velocities: velocities_to_named(&learner.sgd.velocities),
            stats: (*data.stats).clone(),
        };
        checkpoint.save(&last_path)?;
        if progress.schedule.best_error == Some(report.top1_error) {
            copy_checkpoint(&last_path, &best_path)?;
        }
        append(&metrics_path, &metrics).map_err(io_error(&metrics_path))?;
        if !options.quiet {
            println!(
                "epoch {:>3}  loss {:.4}  train top-1 err {:.4}  val top-1 err {:.4}  top-5 err {:.4}  lr {:.0e}  {:.1} img/s  {:.0} s{}",
                metrics.epoch,
                metrics.train_loss,
                metrics.train_top1_error,
                metrics.val_top1_error,
                metrics.val_top5_error,
                lr,
                metrics.images_per_second,
                epoch_seconds,
                if dropped { "  (lr / 10)" } else { "" }
            );
        }
        epochs.push(metrics);
    }
    Ok(TrainSummary {
        epochs,
        last_checkpoint: last_path,
        best_checkpoint: best_path,
    })
}
