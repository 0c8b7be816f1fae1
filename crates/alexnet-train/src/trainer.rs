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
use crate::data_parallel::{StepTotals, all_reduce_gradients};
use crate::metrics::{EpochMetrics, append};
use crate::peers::{PeerConfig, PeerError, Peers};
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
    #[error(transparent)]
    Peers(#[from] PeerError),
    #[error("peers: what rank 0 sent cannot be read: {0}")]
    BadStart(String),
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
    /// Data parallelism: this process is one rank of several, each training on its share of every
    /// batch. Rank 0 reads the recipe (or the checkpoint it resumes from), validates and writes
    /// the run; the other ranks start from what it sends them and write nothing.
    pub peers: Option<PeerConfig>,
    /// A rank other than 0 reads the training images here instead of rank 0's `data.dir` (the same
    /// data set, prepared the same way, on another machine).
    pub local_data: Option<PathBuf>,
    /// Which device of the backend this process uses (one GPU per rank).
    pub device_index: usize,
}

/// What the peers check they agree on before training together.
const PEER_IDENTITY: &str = concat!("alexnet ", env!("CARGO_PKG_VERSION"));

/// What a finished call of [`train`] reports.
#[derive(Debug, Clone)]
pub struct TrainSummary {
    pub epochs: Vec<EpochMetrics>,
    /// Images trained on by all ranks, and by this process (all of them, or its rank's share).
    pub images: usize,
    pub local_images: usize,
    pub last_checkpoint: PathBuf,
    pub best_checkpoint: PathBuf,
}

/// Training and validation sets (in memory or in shards), with the training set's statistics.
/// Ranks other than 0 of a data-parallel run do not validate, and have no validation set.
pub struct RunData {
    pub train: Arc<dyn PatchSource>,
    pub val: Option<Arc<dyn PatchSource>>,
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
    let train = load_recipe_split(recipe, &data.train_split, quiet)?;
    let val = load_recipe_split(recipe, &data.val_split, quiet)?;
    val.expect_classes(train.class_names(), &data.dir.join(&data.val_split))?;
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
            };
            stats.write(run_dir)?;
            stats
        }
    };
    Ok(RunData {
        train,
        val: Some(val),
        stats: Arc::new(stats),
    })
}

/// One split of the recipe's data set, decoded (or its shards opened), with a progress bar.
fn load_recipe_split(
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
fn report_skipped(
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
    /// Images this rank trained on (`seen` is over all ranks).
    local: usize,
    seconds: f64,
}

/// The device a run trains on, with and without autodiff.
struct Devices {
    plain: Device,
    autodiff: Device,
}

/// The state that changes with every step.
struct Learner {
    model: AlexNet,
    sgd: PaperSgd,
    progress: Progress,
}

/// Section 5: one step of stochastic gradient descent on one batch (or on this rank's share of
/// it, the gradients then combined over the ranks). Returns the whole batch's loss and misses.
fn train_step(
    mut learner: Learner,
    batch: Batch,
    loss_function: &CrossEntropyLoss,
    peers: &mut Peers,
    devices: &Devices,
) -> Result<(Learner, StepTotals), TrainError> {
    let n = batch.len();
    let (mut gradients, mut totals) = (GradientsParams::new(), StepTotals::default());
    // A rank whose share of a short last batch is empty still takes part in the sum.
    if n > 0 {
        let labels: Vec<i64> = batch.labels.iter().map(|&l| l as i64).collect();
        let images = Tensor::<4>::from_data(
            TensorData::new(batch.images, [n, 3, batch.crop, batch.crop]),
            &devices.autodiff,
        );
        let targets = Tensor::<1, Int>::from_data(TensorData::new(labels, [n]), &devices.autodiff);
        let logits = learner.model.forward(images);
        let loss = loss_function.forward(logits.clone(), targets);
        let host_logits = logits
            .inner()
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .expect("f32 logits");
        totals = StepTotals {
            loss_sum: loss.clone().into_scalar::<f32>() as f64 * n as f64,
            misses: host_logits
                .chunks_exact(host_logits.len() / n)
                .zip(&batch.labels)
                .filter(|&(row, &label)| top_k(row, 1)[0] != label)
                .count(),
            images: n,
        };
        gradients = GradientsParams::from_grads(loss.backward(), &learner.model);
    }
    if peers.world_size > 1 {
        (gradients, totals) = all_reduce_gradients(
            peers,
            &learner.model,
            gradients,
            totals,
            batch.global_len,
            &devices.plain,
        )?;
    }
    let loss = totals.loss_sum / totals.images.max(1) as f64;
    if !loss.is_finite() {
        return Err(TrainError::Diverged {
            epoch: learner.progress.epochs_done + 1,
            step: learner.progress.step,
            loss: loss as f32,
        });
    }
    // The model moves through the update, so its old weights can be freed (or updated in place).
    learner.model = learner
        .sgd
        .step(learner.progress.schedule.lr, learner.model, gradients);
    learner.progress.step += 1;
    Ok((learner, totals))
}

/// One epoch: every batch of `loader`, with a progress bar (or, without a terminal, a log line ten
/// times a long epoch, so that a run in the background still says how it goes).
fn train_epoch(
    mut learner: Learner,
    loader: &BatchLoader,
    loss_function: &CrossEntropyLoss,
    peers: &mut Peers,
    devices: &Devices,
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
        local: 0,
        seconds: 0.0,
    };
    for (index, batch) in loader.epoch(epoch, 0).into_iter().enumerate() {
        let batch = batch?;
        totals.local += batch.len();
        let (stepped, step) = train_step(learner, batch, loss_function, peers, devices)?;
        learner = stepped;
        totals.loss_sum += step.loss_sum;
        totals.misses += step.misses;
        totals.seen += step.images;
        bar.inc(step.images as u64);
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

/// Where a run starts, the same on every rank: the recipe, the training state (fresh or resumed,
/// in the form of a checkpoint) and the data.
struct Start {
    recipe: Recipe,
    state: Checkpoint,
    data: RunData,
    devices: Devices,
    /// The run stops when this many epochs are done.
    last_epoch: usize,
}

fn devices(recipe: &Recipe, options: &TrainOptions) -> Result<Devices, TrainError> {
    let plain = device(&recipe.run.backend, options.device_index)?;
    Ok(Devices {
        autodiff: plain.clone().autodiff(),
        plain,
    })
}

/// Rank 0, or a run alone: the recipe or the checkpoint it resumes, the data and its statistics,
/// a newly initialised network; then the other ranks are sent the state and the last epoch.
fn start_as_root(
    recipe: Recipe,
    options: &TrainOptions,
    peers: &mut Peers,
) -> Result<Start, TrainError> {
    let run_dir = &options.run_dir;
    let (mut recipe, resumed) = start_or_resume(recipe, options)?;
    let devices = devices(&recipe, options)?;
    std::fs::create_dir_all(run_dir).map_err(io_error(run_dir))?;
    let saved_stats = resumed.as_ref().map(|c| c.stats.clone());
    let data = load_data(&recipe, saved_stats, run_dir, options.quiet)?;
    recipe.model.num_classes = data.train.class_names().len();
    recipe.model.validate()?;
    let recipe_path = run_dir.join("recipe.toml");
    std::fs::write(&recipe_path, recipe.to_toml()).map_err(io_error(&recipe_path))?;
    let state = match resumed {
        Some(checkpoint) => Checkpoint {
            recipe: recipe.clone(),
            ..checkpoint
        },
        None => {
            // Section 5's initialisation, drawn from the run's seed.
            devices.plain.seed(recipe.run.seed);
            let model = AlexNet::new(&recipe.model, &devices.plain)?;
            Checkpoint {
                recipe: recipe.clone(),
                class_names: data.train.class_names().to_vec(),
                progress: Progress {
                    epochs_done: 0,
                    step: 0,
                    schedule: LrSchedule::new(recipe.optim.lr),
                    wall_seconds: 0.0,
                },
                weights: named_params(&model),
                velocities: Vec::new(),
                stats: (*data.stats).clone(),
            }
        }
    };
    let last_epoch = options.stop_after.map_or(recipe.run.epochs, |n| {
        recipe.run.epochs.min(state.progress.epochs_done + n)
    });
    if peers.world_size > 1 {
        peers.broadcast(state.to_bytes().map_err(TrainError::BadStart)?)?;
        peers.broadcast((last_epoch as u64).to_le_bytes().to_vec())?;
    }
    Ok(Start {
        recipe,
        state,
        data,
        devices,
        last_epoch,
    })
}

/// Any other rank: everything comes from rank 0 but the training images, read from
/// `options.local_data` or else from rank 0's `data.dir`.
fn start_as_rank(options: &TrainOptions, peers: &mut Peers) -> Result<Start, TrainError> {
    let state =
        Checkpoint::from_bytes(&peers.broadcast(Vec::new())?).map_err(TrainError::BadStart)?;
    let last_epoch = peers.broadcast(Vec::new())?;
    let last_epoch = u64::from_le_bytes(
        last_epoch
            .try_into()
            .map_err(|_| TrainError::BadStart("the last epoch is not 8 bytes".into()))?,
    ) as usize;
    let mut recipe = state.recipe.clone();
    if let Some(dir) = &options.local_data {
        recipe.data.dir = dir.clone();
    }
    let devices = devices(&recipe, options)?;
    let data = &recipe.data;
    let train = load_recipe_split(&recipe, &data.train_split, options.quiet)?;
    train.expect_classes(&state.class_names, &data.dir.join(&data.train_split))?;
    report_skipped(&[(&data.train_split, &train)], None)?;
    let data = RunData {
        train,
        val: None,
        stats: Arc::new(state.stats.clone()),
    };
    Ok(Start {
        recipe,
        state,
        data,
        devices,
        last_epoch,
    })
}

/// Trains `recipe` into `options.run_dir` (or resumes it), until `run.epochs` epochs are done;
/// with `options.peers`, as one rank of a data-parallel run.
pub fn train(recipe: Recipe, options: &TrainOptions) -> Result<TrainSummary, TrainError> {
    let mut peers = match &options.peers {
        Some(config) => Peers::join(config, PEER_IDENTITY)?,
        None => Peers::alone(),
    };
    let Start {
        recipe,
        state,
        data,
        devices,
        last_epoch,
    } = if peers.is_root() {
        start_as_root(recipe, options, &mut peers)?
    } else {
        start_as_rank(options, &mut peers)?
    };
    let mut learner = Learner {
        model: load_params(
            AlexNet::new(&recipe.model, &devices.autodiff)?,
            &state.weights,
        )?,
        sgd: PaperSgd::new(recipe.optim.momentum, recipe.optim.weight_decay),
        progress: state.progress.clone(),
    };
    learner.sgd.velocities = velocities_from_named(&state.velocities, &devices.plain);

    let crop = recipe.model.input_size();
    let seed = recipe.run.seed;
    let plan = ViewPlan::Train {
        flip: recipe.data.flip,
        pca_sigma: recipe.data.pca_sigma,
    };
    // optim.batch_size is the whole batch (the paper's 128); each rank builds its share.
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
    (train_loader.rank, train_loader.world_size) = (peers.rank, peers.world_size);
    let val_loader = match &data.val {
        Some(val) => Some(BatchLoader::new(
            val.clone(),
            data.stats.clone(),
            crop,
            batch_size,
            ViewPlan::Centre,
            seed,
        )?),
        None => None,
    };
    let loss_function = CrossEntropyLossConfig::new().init(&devices.autodiff);

    let run_dir = &options.run_dir;
    let last_path = run_dir.join("last.safetensors");
    let best_path = run_dir.join("best.safetensors");
    let metrics_path = run_dir.join("metrics.jsonl");
    let mut epochs = Vec::new();
    let (mut images, mut local_images) = (0, 0);
    while learner.progress.epochs_done < last_epoch {
        let epoch = learner.progress.epochs_done;
        // Dropout draws from the backend's generator: seeding it per epoch makes a resumed run
        // draw what the uninterrupted one would have. Each rank draws its own masks.
        devices.plain.seed(
            seed.wrapping_mul(1_000_003)
                .wrapping_add(epoch as u64)
                .wrapping_add((peers.rank as u64) << 32),
        );
        let lr = learner.progress.schedule.lr;
        let totals;
        (learner, totals) = train_epoch(
            learner,
            &train_loader,
            &loss_function,
            &mut peers,
            &devices,
            options.quiet,
        )?;
        images += totals.seen;
        local_images += totals.local;
        let validation_started = Instant::now();
        let errors = match &val_loader {
            Some(loader) => {
                let report = validate(&learner.model, loader, &devices.plain, options.quiet)?;
                [report.top1_error, report.top5_error]
            }
            None => [0.0; 2],
        };
        // Rank 0 validates; every rank's schedule follows its errors.
        let [top1_error, top5_error] = if peers.world_size > 1 {
            let bytes = errors.iter().flat_map(|e| e.to_le_bytes()).collect();
            let bytes = peers.broadcast(bytes)?;
            let error =
                |i: usize| f64::from_le_bytes(bytes[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
            [error(0), error(1)]
        } else {
            errors
        };
        let epoch_seconds = totals.seconds + validation_started.elapsed().as_secs_f64();

        let progress = &mut learner.progress;
        progress.wall_seconds += epoch_seconds;
        progress.epochs_done = epoch + 1;
        let dropped =
            progress
                .schedule
                .end_of_epoch(&recipe.schedule, progress.epochs_done, top1_error);
        let metrics = EpochMetrics {
            epoch: epoch + 1,
            step: progress.step,
            lr,
            train_loss: totals.loss_sum / totals.seen.max(1) as f64,
            train_top1_error: totals.misses as f64 / totals.seen.max(1) as f64,
            val_top1_error: top1_error,
            val_top5_error: top5_error,
            images_per_second: totals.seen as f64 / totals.seconds,
            epoch_seconds,
            wall_seconds: progress.wall_seconds,
        };
        if peers.is_root() {
            let checkpoint = Checkpoint {
                recipe: recipe.clone(),
                class_names: data.train.class_names().to_vec(),
                progress: progress.clone(),
                weights: named_params(&learner.model),
                velocities: velocities_to_named(&learner.sgd.velocities),
                stats: (*data.stats).clone(),
            };
            checkpoint.save(&last_path)?;
            if progress.schedule.best_error == Some(top1_error) {
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
        }
        epochs.push(metrics);
    }
    Ok(TrainSummary {
        epochs,
        images,
        local_images,
        last_checkpoint: last_path,
        best_checkpoint: best_path,
    })
}
