//! The training loop (Section 5): epoch after epoch of SGD on augmented batches of 128; after
//! each, the validation error (centre crop), the learning-rate policy, a checkpoint and a metrics
//! line.
//!
//! A run directory holds `recipe.toml`, `stats.safetensors` (mean image and PCA of the training
//! set, computed once), `metrics.jsonl`, `last.safetensors` and `best.safetensors` (lowest
//! validation top-1 error). `resume` continues from `last.safetensors` at the next epoch, with the
//! same weights, velocities, schedule, data order and dropout seed as an uninterrupted run.

use std::path::{Path, PathBuf};
use std::time::Instant;

use alexnet_data::{BatchLoader, DataError, ViewPlan, progress_bar};
use alexnet_eval::{EvalReport, evaluate};
use alexnet_model::AlexNet;
use alexnet_run::checkpoint::{NamedTensor, named_params, velocities_to_named};
use alexnet_run::crash_point::crash_point;
use alexnet_run::metrics::append;
use alexnet_run::schedule::sets_rate_every_step;
use alexnet_run::{Checkpoint, EpochMetrics, Progress, Recipe};
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::Device;

use crate::error::{TrainError, io_error};
use crate::model_parallel::Towers;
use crate::peers::Peers;
use crate::run_data::RunData;
use crate::start::{Start, start};
use crate::step::{Devices, EpochTotals, Learner, train_epoch};
use crate::stuck::{StuckWatch, weight_norm};

#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub run_dir: PathBuf,
    /// Continue the run in `run_dir` from its last checkpoint.
    pub resume: bool,
    /// Stop after this many epochs in this call (the run can be resumed), e.g. to split a long run.
    pub stop_after: Option<usize>,
    /// On resume: train until this many epochs are done instead of the saved recipe's `run.epochs`.
    pub resume_epochs: Option<usize>,
    /// Stop after the first epoch whose training top-1 error is at or below this (an experiment
    /// that measures the time to a training error, as Figure 1 does, needs nothing after it).
    pub stop_at_train_error: Option<f64>,
    /// Hide progress bars and per-epoch lines (tests).
    pub quiet: bool,
    /// Data parallelism: this process is one rank of the MPI job it was started in
    /// (`mpirun -np N alexnet train ...`); needs the cargo feature `mpi`. Once training runs, a
    /// collective that waits longer than `peer_timeout` for the others ends the job.
    pub mpi: Option<MpiOptions>,
    /// A rank other than 0 reads its training and validation images here instead of rank 0's
    /// `data.dir` (the same data set, prepared the same way, on another machine).
    pub local_data: Option<PathBuf>,
    /// Which device of the backend this process uses (one GPU per rank).
    pub device_index: usize,
    /// Section 3.2's split: the two ranks of the MPI job hold one tower each (`mpi` required)
    /// instead of splitting the batches.
    pub model_parallel: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MpiOptions {
    pub peer_timeout: std::time::Duration,
}

/// What the peers check they agree on before training together.
const PEER_IDENTITY: &str = concat!("alexnet ", env!("CARGO_PKG_VERSION"));

/// What a finished call of [`train`] reports.
#[derive(Debug, Clone)]
pub struct TrainSummary {
    /// Epochs done before this call (a resumed run's); `epochs` is empty when there was nothing
    /// left to do.
    pub epochs_done_before: usize,
    pub epochs: Vec<EpochMetrics>,
    /// Images trained on by all ranks, and by this process (all of them, or its rank's share).
    pub images: usize,
    pub local_images: usize,
    pub last_checkpoint: PathBuf,
    pub best_checkpoint: PathBuf,
}

/// Validation top-1/top-5 error of `model` on `loader`'s split, over its views of each image.
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

/// Trains `recipe` into `options.run_dir` (or resumes it), until `run.epochs` epochs are done;
/// with `options.mpi`, as one rank of a data-parallel run.
pub fn train(recipe: Recipe, options: &TrainOptions) -> Result<TrainSummary, TrainError> {
    let mut peers = match options.mpi {
        Some(_) => Peers::join_mpi(PEER_IDENTITY)?,
        None => Peers::alone(),
    };
    let trained = train_as_rank(recipe, options, &mut peers);
    if let Err(error) = &trained {
        peers.abort_on_error(error);
    }
    trained
}

/// [`train`], as this rank of `peers`.
fn train_as_rank(
    recipe: Recipe,
    options: &TrainOptions,
    peers: &mut Peers,
) -> Result<TrainSummary, TrainError> {
    let Start {
        lock: _lock,
        recipe,
        state,
        data,
        devices,
        last_epoch,
    } = start(recipe, options, peers)?;
    if let Some(mpi) = options.mpi {
        peers.watch_collectives(mpi.peer_timeout);
    }
    let towers = match options.model_parallel {
        true if devices.plain.clone().inner() != Device::flex() => {
            return Err(TrainError::TowersOffFlex(recipe.run.backend.clone()));
        }
        true => Some(Towers::new(peers.tower_link()?, &state.weights)),
        false => None,
    };
    let mut stuck = StuckWatch::new(state.class_names.len(), weight_norm(&state.weights));
    let mut learner = Learner::from_state(&recipe, &state, &devices, towers.as_ref())?;
    // Towers both see every image; data-parallel ranks each their share.
    let data_ranks = match towers {
        Some(_) => (0, 1),
        None => (peers.rank, peers.world_size),
    };
    let (train_loader, val_loader) = loaders(&recipe, &data, data_ranks)?;
    let smoothing = recipe.optim.label_smoothing;
    let loss_function = CrossEntropyLossConfig::new()
        .with_smoothing((smoothing > 0.0).then_some(smoothing as f32))
        .init(&devices.autodiff);
    let mut summary = TrainSummary::new(&options.run_dir, learner.progress.epochs_done);
    // Rank 0 speaks for the group.
    let quiet = options.quiet || !peers.is_root();
    while learner.progress.epochs_done < last_epoch {
        seed_dropout(&devices, &recipe, learner.progress.epochs_done, peers.rank);
        let lr_before = learner.progress.schedule.lr;
        let totals;
        (learner, totals) = train_epoch(
            learner,
            &recipe,
            &train_loader,
            &loss_function,
            peers,
            &devices,
            quiet,
        )?;

        // A rate set at every step is reported as its last step's.
        let lr = if sets_rate_every_step(recipe.schedule.policy) {
            learner.progress.schedule.lr
        } else {
            lr_before
        };

        // Rank 0's decision, so that every rank stops after the same epoch.
        let reached = options
            .stop_at_train_error
            .is_some_and(|target| totals.error() <= target);
        let reached = peers.from_root(peers.is_root().then_some(usize::from(reached)))? == 1;

        // Each rank validates its share of every validation batch; the counts are summed, so
        // every rank's schedule follows the errors of the whole split. Every
        // `run.validate_every` epochs, and always at the last epoch of the run (or of this
        // stretch of it), so that it ends on a measured checkpoint.
        let epochs_done = learner.progress.epochs_done + 1;
        let validated = epochs_done.is_multiple_of(recipe.run.validate_every)
            || epochs_done >= last_epoch
            || reached;
        let validation_started = Instant::now();
        let errors = match validated {
            false => None,
            true => {
                let report = validate(&learner.model, &val_loader, &devices.plain, quiet)?;
                Some(match towers {
                    Some(_) => [report.top1_error, report.top5_error],
                    None => errors_over_ranks(peers, &report)?,
                })
            }
        };
        let seconds = totals.seconds + validation_started.elapsed().as_secs_f64();

        // Section 5: divide the learning rate by 10 when the validation error stops improving.
        let progress = &mut learner.progress;
        progress.wall_seconds += seconds;
        progress.epochs_done = epochs_done;
        let dropped = progress.schedule.end_of_epoch(
            &recipe.schedule,
            progress.epochs_done,
            errors.map(|[top1, _]| top1),
        );
        let metrics = EpochMetrics {
            epoch: progress.epochs_done,
            step: progress.step,
            lr,
            train_loss: totals.mean_loss(),
            train_top1_error: totals.error(),
            val_top1_error: errors.map(|[top1, _]| top1),
            val_top5_error: errors.map(|[_, top5]| top5),
            images_per_second: totals.seen as f64 / totals.seconds,
            epoch_seconds: seconds,
            wall_seconds: progress.wall_seconds,
        };
        if let Some([weights, velocities]) = whole_state(&learner, towers.as_ref(), peers) {
            let norm = weight_norm(&weights);
            record_epoch(
                &recipe,
                &data,
                &learner.progress,
                [weights, velocities],
                &metrics,
                &options.run_dir,
            )?;
            if !options.quiet {
                print_epoch(&metrics, dropped);
            }
            if let Some(warning) = stuck.after_epoch(metrics.train_top1_error, norm, lr) {
                eprintln!("{warning}");
            }
        }
        summary.add(metrics, &totals);
        if reached {
            break;
        }
    }
    Ok(summary)
}

/// The whole network's weights and velocities, where rank 0 writes them: its own, or, for a
/// tower, both towers' joined (every tower takes part in the swap; only rank 0 gets them).
fn whole_state(
    learner: &Learner,
    towers: Option<&Towers>,
    peers: &Peers,
) -> Option<[Vec<NamedTensor>; 2]> {
    let state = || {
        [
            named_params(&learner.model),
            velocities_to_named(&learner.sgd.velocities),
        ]
    };
    match towers {
        Some(towers) => {
            let whole = state().map(|part| towers.whole_tensors(&part));
            peers.is_root().then_some(whole)
        }
        None => peers.is_root().then(state),
    }
}

/// Top-1 and top-5 error over every rank's share of the validation set (one rank: its own).
fn errors_over_ranks(peers: &mut Peers, report: &EvalReport) -> Result<[f64; 2], TrainError> {
    // Counts, exact in f32 below 2^24 images.
    let mut counts = [report.top1_misses, report.top5_misses, report.images].map(|n| n as f32);
    peers.all_reduce_sum(&mut counts)?;
    let total = f64::from(counts[2]).max(1.0);
    Ok([f64::from(counts[0]) / total, f64::from(counts[1]) / total])
}

/// Dropout draws from the backend's generator: seeding it per epoch makes a resumed run draw
/// what the uninterrupted one would have. Each rank draws its own masks.
fn seed_dropout(devices: &Devices, recipe: &Recipe, epoch: usize, rank: usize) {
    devices.plain.seed(
        recipe
            .run
            .seed
            .wrapping_mul(1_000_003)
            .wrapping_add(epoch as u64)
            .wrapping_add((rank as u64) << 32),
    );
}

impl TrainSummary {
    fn new(run_dir: &Path, epochs_done_before: usize) -> Self {
        Self {
            epochs_done_before,
            epochs: Vec::new(),
            images: 0,
            local_images: 0,
            last_checkpoint: run_dir.join("last.safetensors"),
            best_checkpoint: run_dir.join("best.safetensors"),
        }
    }

    fn add(&mut self, metrics: EpochMetrics, totals: &EpochTotals) {
        self.images += totals.seen;
        self.local_images += totals.local;
        self.epochs.push(metrics);
    }
}

/// The training and validation loaders, each building this rank's share of every batch.
fn loaders(
    recipe: &Recipe,
    data: &RunData,
    (rank, world_size): (usize, usize),
) -> Result<(BatchLoader, BatchLoader), TrainError> {
    let crop = recipe.model.input_size();
    let plan = ViewPlan::Train {
        flip: recipe.data.flip,
        pca_sigma: recipe.data.pca_sigma,
    };
    // optim.batch_size is the whole batch (the paper's 128); each rank builds its share.
    let batch_size = recipe.optim.batch_size;
    let seed = recipe.run.seed;
    let mut train = BatchLoader::new(
        data.train.clone(),
        data.stats.clone(),
        crop,
        batch_size,
        plan,
        seed,
    )?;
    train.prefetch = recipe.data.prefetch.max(1);
    (train.shuffle, train.shuffle_window) = (recipe.data.shuffle, recipe.data.shuffle_window);
    (train.rank, train.world_size) = (rank, world_size);
    // A validation batch holds as many views as a training batch holds images.
    let val_plan = recipe.data.val_views.plan();
    let mut val = BatchLoader::new(
        data.val.clone(),
        data.stats.clone(),
        crop,
        (batch_size / val_plan.views_per_image()).max(1),
        val_plan,
        seed,
    )?;
    (val.rank, val.world_size) = (rank, world_size);
    Ok((train, val))
}

/// Rank 0 after each epoch. The order makes the epoch's record whole or absent as a resumed run
/// sees it: the checkpoint is written under a temporary name; the metrics line is appended;
/// `best` is linked to the new checkpoint if this epoch is the best; only then does the
/// checkpoint become `last`. A crash anywhere before that leaves `last` at the previous epoch, and
/// the resume drops the metrics line written past it (`keep_epochs_up_to`) and trains the epoch
/// again, bit for bit: no line is lost or written twice, and `best` is never older than what
/// `last`'s progress calls best.
fn record_epoch(
    recipe: &Recipe,
    data: &RunData,
    progress: &Progress,
    [weights, velocities]: [Vec<NamedTensor>; 2],
    metrics: &EpochMetrics,
    run_dir: &Path,
) -> Result<(), TrainError> {
    let checkpoint = Checkpoint {
        recipe: recipe.clone(),
        class_names: data.train.class_names().to_vec(),
        progress: progress.clone(),
        weights,
        velocities,
        stats: (*data.stats).clone(),
    };
    let epoch = progress.epochs_done;
    let staged = checkpoint.stage(&run_dir.join("last.safetensors"))?;
    crash_point("checkpoint-written", epoch);
    let metrics_path = run_dir.join("metrics.jsonl");
    append(&metrics_path, metrics).map_err(io_error(&metrics_path))?;
    crash_point("metrics-written", epoch);
    if metrics.val_top1_error.is_some() && progress.schedule.best_error == metrics.val_top1_error {
        staged.link_to(&run_dir.join("best.safetensors"))?;
        crash_point("best-linked", epoch);
    }
    staged.commit()?;
    crash_point("last-committed", epoch);
    Ok(())
}

fn print_epoch(metrics: &EpochMetrics, dropped: bool) {
    let validation = match metrics.val_errors() {
        Some([top1, top5]) => format!("val top-1 err {top1:.4}  top-5 err {top5:.4}"),
        None => "not validated".to_string(),
    };
    println!(
        "epoch {:>3}  loss {:.4}  train top-1 err {:.4}  {validation}  lr {:.0e}  {:.1} img/s  {:.0} s{}",
        metrics.epoch,
        metrics.train_loss,
        metrics.train_top1_error,
        metrics.lr,
        metrics.images_per_second,
        metrics.epoch_seconds,
        if dropped { "  (lr / 10)" } else { "" }
    );
}
