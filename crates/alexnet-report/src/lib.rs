//! What the network learned, as pictures (the paper's Figures 3 and 4, and the curves every
//! training tool shows): `alexnet report` and `alexnet neighbours`.
//!
//! - [`curves`]: loss and errors against epochs from `metrics.jsonl`, learning-rate drops marked.
//! - [`confusion`]: the confusion matrix as a heat map, per-class accuracy as sorted bars.
//! - [`filters`]: the conv1 kernels as colour tiles, one grid per tower (Figure 3).
//! - [`neighbours`]: the last hidden layer of the training images, saved once, searched exactly
//!   (Figure 4, right).
//! - [`report`]: evaluates the run's best checkpoint, draws all of the above and writes
//!   `report.html` through the template in `templates/report.html` ([`page`]), into a
//!   [`staging`] directory renamed into place.
//! - [`run`]: a run directory as the report reads it; [`header`]: its numbers; [`kernels`]:
//!   the conv1 grids of a checkpoint; [`examples`]: the validation images shown.
//! - [`search`](mod@search): `alexnet neighbours`, the training images nearest to given image files.
//! - [`canvas`]: the bitmap the plots are drawn on, and the font they are drawn with.

pub mod canvas;
pub mod confusion;
pub mod curves;
pub mod error;
pub mod examples;
pub mod filters;
pub mod header;
pub mod kernels;
pub mod neighbours;
pub mod page;
pub mod report;
pub mod run;
pub mod search;
pub mod staging;

pub use error::ReportError;
pub use neighbours::{FeatureIndex, Neighbour};
pub use report::{ReportOptions, ReportSummary, write_report};
pub use search::{Found, SearchOptions, search};
