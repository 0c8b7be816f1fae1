//! Errors of the data side; each names the file or folder and the reason.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("dataset directory {0} does not exist")]
    MissingDir(PathBuf),
    #[error("{path}: cannot read: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("dataset directory {0} has no class folders (expected <dir>/<class>/<image>)")]
    NoClasses(PathBuf),
    #[error("class folder {0} has no images (.jpg, .jpeg, .png, .bmp, .webp)")]
    EmptyClass(PathBuf),
    #[error("{path}: cannot decode image: {reason}")]
    Undecodable { path: PathBuf, reason: String },
    #[error("{path}: class folders {found:?} differ from the training set's {expected:?}")]
    ClassMismatch {
        path: PathBuf,
        found: Vec<String>,
        expected: Vec<String>,
    },
    #[error("crop of {crop} does not fit in images of side {side}")]
    CropTooLarge { crop: usize, side: usize },
    #[error("{path}: cannot write: {reason}")]
    Write { path: PathBuf, reason: String },
    #[error("{path}: not a valid shard: {reason}")]
    BadShard { path: PathBuf, reason: String },
    #[error("{path}: {reason}")]
    BadLayout { path: PathBuf, reason: String },
    #[error("every image of {0} was skipped as bad input: nothing left to use")]
    NothingLeft(PathBuf),
    #[error("unknown data format {0:?} (image-folder, ilsvrc, cifar, idx, shards)")]
    UnknownFormat(String),
    #[error("{0}: an ILSVRC-2012 layout is read by `alexnet prepare`; train on what it prepares")]
    PrepareFirst(PathBuf),
}
