//! Section 6: how well the network does. Error rates are top-1 and top-5 ("the fraction of test
//! images for which the correct label is not among the five labels considered most probable").
//!
//! - [`topk`]: top-k indices and errors, plain functions of probabilities.
//! - [`predictions`]: softmax of a model over a batch, averaged over views (10-crop) and over models
//!   (ensembles, "averaging the predictions of five similar CNNs").
//! - [`members`]: each checkpoint of an ensemble as a model and a loader over one split.
//! - [`report`]: one pass over a split: errors, per-class accuracy, confusion matrix.
//! - [`split`]: which images a checkpoint is evaluated on.

pub mod members;
pub mod predictions;
pub mod report;
pub mod split;
pub mod topk;

pub use members::{MemberError, ensemble_members};
pub use predictions::{average_views, ensemble_probabilities, softmax_rows};
pub use report::{EvalReport, ImageOutcome, evaluate};
pub use split::checkpoint_split;
pub use topk::{top_k, top_k_error};
