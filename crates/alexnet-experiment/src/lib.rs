//! The paper's claims checked on real images (`alexnet experiment NAME`): an experiment is a file
//! listing arms, each a set of recipe overrides; every arm is trained with every seed as an
//! ordinary, resumable run; the results are a table of each arm's mean and spread beside the
//! paper's figure, and a plot.
//!
//! - [`definition`]: the experiment file and its checks;
//! - [`runner`]: the runs it asks for, each skipped, resumed or started;
//! - [`jobs`]: several runs at a time, each an `alexnet train` process (`--jobs N`);
//! - [`evaluation`]: test-time arms (10-crop, ensembles) on the finished runs' checkpoints;
//! - [`classical`]: the classical methods beside the CNN (Table 1), on the same splits;
//! - [`summary`]: `results.json` and `results.md`;
//! - [`plot`]: the error curves of every arm in one picture.

pub mod classical;
pub mod definition;
pub mod evaluation;
pub mod jobs;
pub mod plot;
pub mod runner;
pub mod summary;

pub use classical::{evaluate_baselines, read_baselines};
pub use definition::{Experiment, list};
pub use evaluation::{Evaluation, evaluate_arm, read_evaluations};
pub use jobs::execute_in_parallel;
pub use runner::{PlannedRun, RunStatus, execute, plan};
pub use summary::{Results, collect};
