//! What can stop a report: each names the file or directory it is about.

use std::path::PathBuf;

use alexnet_data::DataError;
use alexnet_run::{BackendError, CheckpointError};

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{0}: not a run directory (no such directory)")]
    NoRunDir(PathBuf),
    #[error("{0}: no metrics.jsonl, so no epoch has finished yet (or this is not a run directory)")]
    NoMetrics(PathBuf),
    #[error("{0}: no checkpoint (best.safetensors or last.safetensors)")]
    NoCheckpoint(PathBuf),
    #[error("{path}: {reason}")]
    BadMetrics { path: PathBuf, reason: String },
    #[error("{path}: not a feature index: {reason}")]
    BadIndex { path: PathBuf, reason: String },
    #[error("no training images to search: {0}")]
    NoTrainingSplit(String),
    #[error("{0}: the split to evaluate holds no images")]
    EmptySplit(PathBuf),
    #[error("{path}: cannot write: {reason}")]
    Write { path: PathBuf, reason: String },
    #[error("{path}: {problem}")]
    Model {
        path: PathBuf,
        problem: CheckpointError,
    },
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error("drawing a plot: {0}")]
    Plot(String),
    #[error("the report template: {0}")]
    Template(String),
}
