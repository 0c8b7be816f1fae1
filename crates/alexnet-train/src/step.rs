//! Section 5: one step of stochastic gradient descent, and one epoch of them. A step is the
//! forward pass over a batch, the cross-entropy loss, the backward pass, the gradients combined
//! over the ranks of a data-parallel run (a model-parallel tower's stay its own), and the paper's
//! update. `alexnet bench model` times this same function.

use std::io::IsTerminal;
use std::time::Instant;

use alexnet_data::{Batch, BatchLoader, progress_bar};
use alexnet_eval::top_k;
use alexnet_model::AlexNet;
use alexnet_run::checkpoint::{load_params, velocities_from_named};
use alexnet_run::schedule::step_lr;
use alexnet_run::{Checkpoint, Progress, Recipe, batch_tensors};
use burn::nn::loss::CrossEntropyLoss;
use burn::optim::GradientsParams;
use burn::tensor::Device;

use crate::data_parallel::{StepTotals, all_reduce_gradients};
use crate::error::TrainError;
use crate::model_parallel::Towers;
use crate::peers::Peers;
use crate::sgd::PaperSgd;

/// The device a run trains on, with and without autodiff.
pub struct Devices {
    pub plain: Device,
    pub autodiff: Device,
}

impl Devices {
    pub fn new(plain: Device) -> Self {
        Self {
            autodiff: plain.clone().autodiff(),
            plain,
        }
    }
}

/// The state that changes with every step.
pub struct Learner {
    pub model: AlexNet,
    pub sgd: PaperSgd,
    pub progress: Progress,
}

impl Learner {
    /// The network, its SGD velocities and its progress from a (new or resumed) run's state;
    /// with `towers`, this rank's tower and its part of the state.
    pub fn from_state(
        recipe: &Recipe,
        state: &Checkpoint,
        devices: &Devices,
        towers: Option<&Towers>,
    ) -> Result<Self, TrainError> {
        let parts;
        let (model, weights, velocities) = match towers {
            Some(towers) => {
                parts = (
                    towers.tower_tensors(&state.weights),
                    towers.tower_tensors(&state.velocities),
                );
                let tower = AlexNet::tower(&recipe.model, towers.link.clone(), &devices.autodiff)?;
                (tower, &parts.0, &parts.1)
            }
            None => (
                AlexNet::new(&recipe.model, &devices.autodiff)?,
                &state.weights,
                &state.velocities,
            ),
        };
        let mut sgd = PaperSgd::new(recipe.optim.momentum, recipe.optim.weight_decay);
        sgd.velocities = velocities_from_named(velocities, &devices.plain);
        Ok(Self {
            model: load_params(model, weights)?,
            sgd,
            progress: state.progress.clone(),
        })
    }
}

/// One step on `batch` (or on this rank's share of it, the gradients then combined over the
/// ranks). Returns the learner after the update and the whole batch's loss and misses.
pub fn train_step(
    mut learner: Learner,
    batch: Batch,
    loss_function: &CrossEntropyLoss,
    peers: &mut Peers,
    devices: &Devices,
) -> Result<(Learner, StepTotals), TrainError> {
    let (n, global_len) = (batch.len(), batch.global_len);
    let (mut gradients, mut totals) = (GradientsParams::new(), StepTotals::default());
    // A rank whose share of a short last batch is empty still takes part in the sum.
    if n > 0 {
        let labels = batch.labels.clone();
        let (images, targets) = batch_tensors(batch, &devices.autodiff);
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
                .zip(&labels)
                .filter(|&(row, &label)| top_k(row, 1)[0] != label)
                .count(),
            images: n,
        };
        gradients = GradientsParams::from_grads(loss.backward(), &learner.model);
    }
    // Data-parallel ranks combine their gradients; a tower's are its own half's (Section 3.2).
    if peers.world_size > 1 && learner.model.split.is_none() {
        (gradients, totals) = all_reduce_gradients(
            peers,
            &learner.model,
            gradients,
            totals,
            global_len,
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

/// What one pass over the training set adds up to.
pub struct EpochTotals {
    pub loss_sum: f64,
    pub misses: usize,
    /// Images trained on, over all ranks.
    pub seen: usize,
    /// Images this rank trained on.
    pub local: usize,
    pub seconds: f64,
}

impl EpochTotals {
    pub fn mean_loss(&self) -> f64 {
        self.loss_sum / self.seen.max(1) as f64
    }
    pub fn error(&self) -> f64 {
        self.misses as f64 / self.seen.max(1) as f64
    }
}

/// One epoch: every batch of `loader`, with a progress bar (or, without a terminal, a log line ten
/// times a long epoch, so that a run in the background still says how it goes).
pub fn train_epoch(
    mut learner: Learner,
    recipe: &Recipe,
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
        if let Some(lr) = step_lr(
            &recipe.schedule,
            recipe.optim.lr,
            learner.progress.step,
            batches,
            recipe.run.epochs,
        ) {
            learner.progress.schedule.lr = lr;
        }
        let (stepped, step) = train_step(learner, batch, loss_function, peers, devices)?;
        learner = stepped;
        totals.loss_sum += step.loss_sum;
        totals.misses += step.misses;
        totals.seen += step.images;
        bar.inc(step.images as u64);
        let status = format!(
            "loss {:.4} top-1 err {:.3} lr {:.0e}",
            totals.mean_loss(),
            totals.error(),
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
