//! Section 5 of the paper, "Details of learning", as code. The recipe, checkpoints and metrics
//! of a run live below this crate, in `alexnet-run`.
//!
//! - [`trainer`]: the loop: epoch, validation, schedule, checkpoint, metrics.
//! - [`step`]: one SGD step (forward, loss, backward, update) and one epoch of them.
//! - [`sgd`]: the paper's update rule, momentum and weight decay as written there;
//!   [`sgd_update`]: the same rule in one pass over memory on flex.
//! - [`start`]: a new run or a resumed one, on rank 0 and on the others.
//! - [`run_data`]: the training and validation sets and their statistics.
//! - [`stuck`]: the warning for a run stuck at chance with growing weights.
//! - [`peers`], [`messages`], [`data_parallel`]: one network trained by several processes, each
//!   on its share of every batch; `mpi_world` (feature `mpi`): MPI as the engine under them.
//! - [`model_parallel`]: the paper's two-GPU split (Section 3.2), one tower per rank.

pub mod data_parallel;
pub mod error;
pub mod messages;
pub mod model_parallel;
#[cfg(feature = "mpi")]
pub mod mpi_world;
pub mod peers;
pub mod run_data;
pub mod sgd;
pub mod sgd_update;
pub mod start;
pub mod step;
pub mod stuck;
pub mod trainer;

pub use error::TrainError;
pub use peers::{Peers, local_rank, mpi_launch};
pub use trainer::{MpiOptions, TrainOptions, train};
