//! Where a run starts, the same on every rank: the recipe, the training state (a new network, or
//! the checkpoint a run resumes from), the data and the device. Rank 0 (or a run alone) reads
//! them; the other ranks of a data-parallel run are sent them by rank 0, all but the training
//! images, which each reads where they lie on its machine.

use std::sync::Arc;

use alexnet_data::{DirLock, PatchSource, with_classes_of};
use alexnet_model::AlexNet;
use alexnet_run::checkpoint::named_params;
use alexnet_run::metrics::keep_epochs_up_to;
use alexnet_run::{Checkpoint, Progress, Recipe, device};

use crate::error::{TrainError, io_error};
use crate::peers::Peers;
use crate::run_data::{RunData, load_data, load_recipe_split, report_skipped};
use crate::step::Devices;
use crate::trainer::TrainOptions;

pub struct Start {
    /// Rank 0's hold on the run directory, for the life of the run.
    pub lock: Option<DirLock>,
    pub recipe: Recipe,
    pub state: Checkpoint,
    pub data: RunData,
    pub devices: Devices,
    /// The run stops when this many epochs are done.
    pub last_epoch: usize,
}

/// Rank 0 reads, the others are sent: either way, every rank starts from the same state.
pub fn start(
    recipe: Recipe,
    options: &TrainOptions,
    peers: &mut Peers,
) -> Result<Start, TrainError> {
    if peers.is_root() {
        start_as_root(recipe, options, peers)
    } else {
        start_as_rank(options, peers)
    }
}

/// The run directory's lock, the recipe to train with and, when resuming, the checkpoint to start
/// from. The lock comes first, so that of two runs started into one directory exactly one goes
/// on. A resumed run keeps its own recipe, except perhaps for how many epochs it should reach, and
/// drops any metrics line written past its checkpoint by a crash; a fresh run refuses a
/// directory that already holds one.
fn start_or_resume(
    recipe: Recipe,
    options: &TrainOptions,
) -> Result<(DirLock, Recipe, Option<Checkpoint>), TrainError> {
    let run_dir = &options.run_dir;
    let last_path = run_dir.join("last.safetensors");
    if options.resume && !last_path.exists() {
        return Err(TrainError::NothingToResume(run_dir.clone()));
    }
    let lock = DirLock::acquire(run_dir, "train")?;
    let metrics_path = run_dir.join("metrics.jsonl");
    if !options.resume {
        if last_path.exists() {
            return Err(TrainError::RunExists(run_dir.clone()));
        }
        // No checkpoint: at most a first epoch whose record a crash cut short (its metrics line,
        // its `best`). Starting afresh replaces it.
        keep_epochs_up_to(&metrics_path, 0).map_err(io_error(&metrics_path))?;
        let best = run_dir.join("best.safetensors");
        if best.exists() {
            std::fs::remove_file(&best).map_err(io_error(&best))?;
        }
        return Ok((lock, recipe, None));
    }
    let checkpoint = Checkpoint::load(&last_path)?;
    keep_epochs_up_to(&metrics_path, checkpoint.progress.epochs_done)
        .map_err(io_error(&metrics_path))?;
    let mut saved = checkpoint.recipe.clone();
    saved.run.epochs = options.resume_epochs.unwrap_or(saved.run.epochs);
    Ok((lock, saved, Some(checkpoint)))
}

fn devices(recipe: &Recipe, options: &TrainOptions) -> Result<Devices, TrainError> {
    Ok(Devices::new(device(
        &recipe.run.backend,
        options.device_index,
    )?))
}

/// Rank 0, or a run alone: the recipe or the checkpoint it resumes, the data and its statistics,
/// a newly initialised network; then the other ranks are sent the state and the last epoch.
fn start_as_root(
    recipe: Recipe,
    options: &TrainOptions,
    peers: &mut Peers,
) -> Result<Start, TrainError> {
    let run_dir = &options.run_dir;
    let (lock, mut recipe, resumed) = start_or_resume(recipe, options)?;
    let devices = devices(&recipe, options)?;
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
                progress: Progress::fresh(recipe.optim.lr),
                weights: named_params(&model),
                velocities: Vec::new(),
                stats: (*data.stats).clone(),
            }
        }
    };
    let last_epoch = options.stop_after.map_or(recipe.run.epochs, |n| {
        recipe.run.epochs.min(state.progress.epochs_done + n)
    });
    let state = peers.from_root(Some(state))?;
    let last_epoch = peers.from_root(Some(last_epoch))?;
    Ok(Start {
        lock: Some(lock),
        recipe,
        state,
        data,
        devices,
        last_epoch,
    })
}

/// Any other rank: everything comes from rank 0 but the images (training and validation), read
/// from `options.local_data` or else from rank 0's `data.dir`.
fn start_as_rank(options: &TrainOptions, peers: &mut Peers) -> Result<Start, TrainError> {
    let state: Checkpoint = peers.from_root(None)?;
    let last_epoch: usize = peers.from_root(None)?;
    let mut recipe = state.recipe.clone();
    if let Some(dir) = &options.local_data {
        recipe.data.dir = dir.clone();
    }
    let devices = devices(&recipe, options)?;
    let data = &recipe.data;
    // Both splits (every rank validates its share), labelled by rank 0's class list.
    let split = |name: &String| -> Result<Arc<dyn PatchSource>, TrainError> {
        let set = load_recipe_split(&recipe, name, options.quiet)?;
        Ok(with_classes_of(
            set,
            &state.class_names,
            &data.dir.join(name),
        )?)
    };
    let (train, val) = (split(&data.train_split)?, split(&data.val_split)?);
    report_skipped(
        &[(&data.train_split, &train), (&data.val_split, &val)],
        None,
    )?;
    let data = RunData {
        train,
        val,
        stats: Arc::new(state.stats.clone()),
    };
    Ok(Start {
        lock: None,
        recipe,
        state,
        data,
        devices,
        last_epoch,
    })
}
