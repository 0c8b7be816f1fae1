//! Why a run stops: each error names the file, field, rank or step it is about.

use std::path::{Path, PathBuf};

use alexnet_data::DataError;
use alexnet_model::ModelError;
use alexnet_run::checkpoint::CheckpointFormatError;
use alexnet_run::{BackendError, CheckpointError, RecipeError};

use crate::peers::PeerError;

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
    #[error(
        "run.backend = \"{0}\": --model-parallel runs on the CPU backend (flex), where the towers' \
         exchange is written"
    )]
    TowersOffFlex(String),
    #[error("peers: the starting state rank 0 sent cannot be read: {0}")]
    BadStart(CheckpointFormatError),
    #[error("peers: rank 0 sent {found} bytes for {what}, which takes {expected}")]
    BadMessage {
        what: &'static str,
        found: usize,
        expected: usize,
    },
}

/// Maps an I/O error on `path` to [`TrainError::Io`].
pub fn io_error(path: &Path) -> impl Fn(std::io::Error) -> TrainError + '_ {
    move |e| TrainError::Io {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}
