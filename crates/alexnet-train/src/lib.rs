//! Section 5 of the paper, "Details of learning", as code.
//!
//! - [`recipe`]: every number of a run; the defaults are the paper's.
//! - [`sgd`]: the paper's update rule, momentum and weight decay as written there.
//! - [`schedule`]: divide the learning rate by 10 when validation error stops improving.
//! - [`trainer`]: the loop: batches, forward, backward, update, validation, checkpoint, metrics.
//! - [`checkpoint`], [`metrics`]: what a run leaves on disk.
//! - [`peers`], [`data_parallel`]: one network trained by several processes, each on its share of
//!   every batch.

pub mod backend;
pub mod checkpoint;
pub mod data_parallel;
pub mod metrics;
pub mod peers;
pub mod recipe;
pub mod schedule;
pub mod sgd;
pub mod trainer;

pub use checkpoint::Checkpoint;
pub use peers::{PeerConfig, Peers};
pub use recipe::Recipe;
pub use trainer::{TrainError, TrainOptions, train};
