//! What a run is, below both training and evaluation, so that `eval`, `predict` and `report` stand
//! on their own:
//!
//! - [`recipe`]: every number of a run; the defaults are the paper's (Section 5).
//! - [`schedule`]: the learning-rate policy and its state (divide by 10 on a plateau).
//! - [`checkpoint`]: one self-contained file per saved state: weights, velocities, statistics,
//!   classes, recipe, progress; and the network it rebuilds.
//! - [`metrics`]: `metrics.jsonl`, one line per epoch.
//! - [`crash_point`]: named places where a test may kill the process.
//! - [`device`](mod@device): the backend a run computes on (`run.backend`).
//! - [`batch`]: a batch of the loader as the model's input tensors.

pub mod batch;
pub mod checkpoint;
pub mod crash_point;
pub mod device;
pub mod metrics;
pub mod recipe;
pub mod schedule;

pub use batch::{batch_images, batch_targets, batch_tensors};
pub use checkpoint::{
    Checkpoint, CheckpointError, Progress, model_from_checkpoint, resolve_checkpoint,
};
pub use device::{BackendError, device};
pub use metrics::{EpochMetrics, read_metrics};
pub use recipe::{Recipe, RecipeError};
pub use schedule::LrSchedule;
